/*
 * The libcurl side of the mail transport: one connection setup for SMTP,
 * IMAP and POP3 (TLS required unless explicitly off, certificates always
 * verified), error mapping, a trace that never shows credentials, and SMTP
 * submission.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "transport.h"

/* Seconds for connecting and for a stalled transfer, unless configured. */
#define TRANSPORT_TIMEOUT 30L

static pthread_once_t transport_once = PTHREAD_ONCE_INIT;
static CURLcode transport_init_result;

static void transport_global_init(void)
{
	transport_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void transport_buf_reset(struct transport_buf *buf)
{
	free(buf->data);
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
}

static size_t transport_write_cb(char *ptr, size_t size, size_t n, void *arg)
{
	struct transport_buf *buf = arg;
	size_t len = size * n;
	unsigned char *grown;
	size_t cap;

	if (buf == NULL)
		return len;
	if (len > buf->max - buf->len)
		return 0; /* over the bound: libcurl stops the transfer */
	if (buf->len + len + 1 > buf->cap) {
		cap = buf->cap ? buf->cap : 4096;
		while (cap < buf->len + len + 1)
			cap *= 2;
		grown = realloc(buf->data, cap);
		if (grown == NULL)
			return 0;
		buf->data = grown;
		buf->cap = cap;
	}
	memcpy(buf->data + buf->len, ptr, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
	return len;
}

/* Protocol verbs that may appear in a trace; anything else is data. */
static int transport_known_verb(const char *w, size_t n)
{
	static const char *const verbs[] = {
	        "EHLO",       "HELO",     "MAIL",         "RCPT",   "DATA",
	        "QUIT",       "STARTTLS", "AUTH",         "RSET",   "NOOP",
	        "CAPABILITY", "LOGIN",    "AUTHENTICATE", "SELECT", "EXAMINE",
	        "UID",        "FETCH",    "SEARCH",       "LOGOUT", "USER",
	        "PASS",       "STAT",     "LIST",         "UIDL",   "RETR",
	        "TOP",        "STLS",     "CAPA"};

	for (size_t i = 0; i < P11M_ARRAY_SIZE(verbs); i++)
		if (strlen(verbs[i]) == n && strncmp(w, verbs[i], n) == 0)
			return 1;
	return 0;
}

/* Length of the word at the start of s (up to size bytes). */
static size_t transport_word(const char *s, size_t size)
{
	size_t n = 0;

	while (n < size && s[n] != ' ' && s[n] != '\r' && s[n] != '\n')
		n++;
	return n;
}

/*
 * Traces the dialogue: server lines in full; of our own lines only the
 * IMAP tag and a known verb, because AUTH, LOGIN, PASS and the lines that
 * follow AUTH carry credentials.
 */
static int transport_debug_cb(CURL *curl, curl_infotype type, char *data,
                              size_t size, void *arg)
{
	size_t n, tag = 0;

	switch (type) {
	case CURLINFO_TEXT:
	case CURLINFO_HEADER_IN:
		n = 0;
		while (n < size && data[n] != '\r' && data[n] != '\n')
			n++;
		p11m_trace("mail", "%s %.*s", type == CURLINFO_TEXT ? "*" : "<",
		           (int)n, data);
		break;
	case CURLINFO_HEADER_OUT:
		n = transport_word(data, size);
		if (n > 1 && data[0] == 'A' && data[1] >= '0' &&
		    data[1] <= '9' && n < size) {
			tag = n + 1;
			n = transport_word(data + tag, size - tag);
		}
		if (transport_known_verb(data + tag, n))
			p11m_trace("mail", "> %.*s ...", (int)(tag + n), data);
		else
			p11m_trace("mail", "> (data)");
		break;
	default:
		break;
	}
	return 0;
}

static int transport_is_loopback(const char *host)
{
	return strcmp(host, "localhost") == 0 ||
	       strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
	       strcmp(host, "[::1]") == 0;
}

static const char *transport_scheme(enum transport_proto proto, int tls)
{
	static const char *const schemes[][2] = {
	        {"smtp", "smtps"}, {"imap", "imaps"}, {"pop3", "pop3s"}};

	return schemes[proto][tls != 0];
}

static unsigned int transport_default_port(enum transport_proto proto,
                                           enum p11mail_tls tls)
{
	static const unsigned int ports[][2] = {
	        {587, 465}, {143, 993}, {110, 995}};

	return ports[proto][tls == P11MAIL_TLS_IMPLICIT];
}

/* Host names go into URLs: refuse anything that could change the URL. */
static int transport_host_ok(const char *host)
{
	if (host == NULL || *host == '\0' || strlen(host) > 253)
		return 0;
	for (const char *p = host; *p != '\0'; p++)
		if (!(*p == '.' || *p == '-' || *p == ':' || *p == '_' ||
		      (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z')))
			return 0;
	return 1;
}

static enum p11mail_status transport_base_url(const struct p11mail_server *srv,
                                              enum transport_proto proto,
                                              char **out)
{
	const int v6 = strchr(srv->host, ':') != NULL;
	unsigned int port =
	        srv->port ? srv->port : transport_default_port(proto, srv->tls);
	size_t n = strlen(srv->host) + 32;
	char *url;

	*out = NULL;
	if (!transport_host_ok(srv->host) || port > 65535) {
		p11m_log(P11MAIL_LOG_ERROR, "invalid mail server '%s'",
		         srv->host != NULL ? srv->host : "");
		return P11MAIL_ERR_CONFIG;
	}
	url = malloc(n);
	if (url == NULL)
		return P11MAIL_ERR_NOMEM;
	snprintf(url, n, "%s://%s%s%s:%u/",
	         transport_scheme(proto, srv->tls == P11MAIL_TLS_IMPLICIT),
	         v6 ? "[" : "", srv->host, v6 ? "]" : "", port);
	*out = url;
	return P11MAIL_OK;
}

static enum p11mail_status transport_setup(struct transport_conn *conn,
                                           enum transport_proto proto)
{
	const struct p11mail_server *srv = conn->srv;
	long timeout = srv->timeout > 0 ? srv->timeout : TRANSPORT_TIMEOUT;
	CURL *c = conn->curl;
	CURLcode rc = CURLE_OK;
	static const char *const protocols[] = {"smtp,smtps", "imap,imaps",
	                                        "pop3,pop3s"};

	rc |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, conn->errbuf);
	rc |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	rc |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protocols[proto]);
#endif
	rc |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, timeout);
	rc |= curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	rc |= curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, timeout);
	rc |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	rc |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (srv->tls == P11MAIL_TLS_STARTTLS)
		rc |= curl_easy_setopt(c, CURLOPT_USE_SSL,
		                       (long)CURLUSESSL_ALL);
	if (srv->ca_file != NULL)
		rc |= curl_easy_setopt(c, CURLOPT_CAINFO, srv->ca_file);
	if (srv->user != NULL) {
		rc |= curl_easy_setopt(c, CURLOPT_USERNAME, srv->user);
		rc |= curl_easy_setopt(c, CURLOPT_PASSWORD,
		                       srv->password != NULL ? srv->password
		                                             : "");
	}
	if (p11m_trace_enabled()) {
		rc |= curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION,
		                       transport_debug_cb);
		rc |= curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
	}
	rc |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, transport_write_cb);
	/* Until a request names its buffer, whatever arrives is dropped. */
	rc |= curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
	return rc == CURLE_OK ? P11MAIL_OK : P11MAIL_ERR_INTERNAL;
}

enum p11mail_status transport_open(const struct p11mail_server *srv,
                                   enum transport_proto proto,
                                   struct transport_conn *conn)
{
	enum p11mail_status rc;

	memset(conn, 0, sizeof(*conn));
	if (srv == NULL || srv->host == NULL)
		return P11MAIL_ERR_ARGS;
	if (srv->tls == P11MAIL_TLS_NONE && srv->user != NULL &&
	    !transport_is_loopback(srv->host)) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "refusing to send a password to %s without TLS; "
		         "use starttls or implicit",
		         srv->host);
		return P11MAIL_ERR_CONFIG;
	}
	pthread_once(&transport_once, transport_global_init);
	if (transport_init_result != CURLE_OK)
		return P11MAIL_ERR_INTERNAL;

	conn->srv = srv;
	rc = transport_base_url(srv, proto, &conn->base);
	if (rc != P11MAIL_OK)
		goto out;
	conn->curl = curl_easy_init();
	if (conn->curl == NULL) {
		rc = P11MAIL_ERR_NOMEM;
		goto out;
	}
	rc = transport_setup(conn, proto);
out:
	if (rc != P11MAIL_OK)
		transport_close(conn);
	return rc;
}

void transport_close(struct transport_conn *conn)
{
	if (conn->curl != NULL)
		curl_easy_cleanup(conn->curl);
	free(conn->base);
	memset(conn, 0, sizeof(*conn));
}

enum p11mail_status transport_result(struct transport_conn *conn, CURLcode code)
{
	const char *host = conn->srv->host;
	const char *why =
	        conn->errbuf[0] ? conn->errbuf : curl_easy_strerror(code);

	switch (code) {
	case CURLE_OK:
		return P11MAIL_OK;
	case CURLE_LOGIN_DENIED:
		p11m_log(P11MAIL_LOG_ERROR,
		         "%s refused the login of %s: check the user and the "
		         "password source",
		         host, conn->srv->user ? conn->srv->user : "(none)");
		return P11MAIL_ERR_AUTH;
	case CURLE_USE_SSL_FAILED:
		p11m_log(P11MAIL_LOG_ERROR,
		         "%s does not offer STARTTLS: use implicit TLS or "
		         "another server",
		         host);
		return P11MAIL_ERR_TRANSPORT;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		p11m_log(P11MAIL_LOG_ERROR,
		         "the TLS certificate of %s is not trusted (%s): "
		         "check the CA file",
		         host, why);
		return P11MAIL_ERR_TRANSPORT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
		p11m_log(P11MAIL_LOG_ERROR, "cannot reach %s (%s)", conn->base,
		         why);
		return P11MAIL_ERR_TRANSPORT;
	case CURLE_WRITE_ERROR:
		p11m_log(P11MAIL_LOG_ERROR,
		         "%s sent more than the size limit allows", host);
		return P11MAIL_ERR_LIMIT;
	default:
		p11m_log(P11MAIL_LOG_ERROR, "mail server %s: %s", host, why);
		return P11MAIL_ERR_TRANSPORT;
	}
}

enum p11mail_status transport_request(struct transport_conn *conn,
                                      const char *path, const char *custom,
                                      struct transport_buf *out)
{
	size_t n = strlen(conn->base) + strlen(path) + 1;
	CURLcode code = CURLE_OK;
	char *url = malloc(n);

	if (url == NULL)
		return P11MAIL_ERR_NOMEM;
	snprintf(url, n, "%s%s", conn->base, path);
	conn->errbuf[0] = '\0';
	code |= curl_easy_setopt(conn->curl, CURLOPT_URL, url);
	code |= curl_easy_setopt(conn->curl, CURLOPT_CUSTOMREQUEST, custom);
	code |= curl_easy_setopt(conn->curl, CURLOPT_WRITEDATA, out);
	if (code == CURLE_OK)
		code = curl_easy_perform(conn->curl);
	free(url);
	return transport_result(conn, code);
}

/* ---- SMTP submission ---------------------------------------------------- */

struct smtp_reader {
	const unsigned char *data;
	size_t len;
	size_t off;
};

static size_t smtp_read_cb(char *ptr, size_t size, size_t n, void *arg)
{
	struct smtp_reader *r = arg;
	size_t want = size * n;

	if (want > r->len - r->off)
		want = r->len - r->off;
	memcpy(ptr, r->data + r->off, want);
	r->off += want;
	return want;
}

/* "<addr>" for MAIL FROM and RCPT TO. */
static char *smtp_angle(const char *addr)
{
	size_t n = strlen(addr) + 3;
	char *s = malloc(n);

	if (s != NULL)
		snprintf(s, n, "<%s>", addr);
	return s;
}

static enum p11mail_status smtp_rcpt_list(const struct p11mail_envelope *env,
                                          struct curl_slist **out)
{
	struct curl_slist *list = NULL, *next;

	*out = NULL;
	for (size_t i = 0; i < env->rcpt_count; i++) {
		char *a = smtp_angle(env->rcpt[i]);

		next = a != NULL ? curl_slist_append(list, a) : NULL;
		free(a);
		if (next == NULL) {
			curl_slist_free_all(list);
			return P11MAIL_ERR_NOMEM;
		}
		list = next;
	}
	*out = list;
	return P11MAIL_OK;
}

enum p11mail_status p11mail_smtp_submit(const struct p11mail_server *srv,
                                        const struct p11mail_envelope *env,
                                        const unsigned char *msg, size_t len)
{
	struct smtp_reader reader = {msg, len, 0};
	struct curl_slist *rcpts = NULL;
	struct transport_conn conn;
	enum p11mail_status rc;
	CURLcode code = CURLE_OK;
	char *from = NULL;

	if (srv == NULL || env == NULL || msg == NULL)
		return P11MAIL_ERR_ARGS;
	rc = envelope_check(env);
	if (rc != P11MAIL_OK)
		return rc;
	rc = transport_open(srv, TRANSPORT_SMTP, &conn);
	if (rc != P11MAIL_OK)
		return rc;
	from = smtp_angle(env->from);
	rc = from != NULL ? smtp_rcpt_list(env, &rcpts) : P11MAIL_ERR_NOMEM;
	if (rc != P11MAIL_OK)
		goto out;

	/*
	 * Without CURLOPT_MAIL_RCPT_ALLOWFAILS one refused recipient aborts
	 * the whole transaction: a message never reaches some recipients
	 * and not others.
	 */
	code |= curl_easy_setopt(conn.curl, CURLOPT_URL, conn.base);
	code |= curl_easy_setopt(conn.curl, CURLOPT_MAIL_FROM, from);
	code |= curl_easy_setopt(conn.curl, CURLOPT_MAIL_RCPT, rcpts);
	code |= curl_easy_setopt(conn.curl, CURLOPT_UPLOAD, 1L);
	code |= curl_easy_setopt(conn.curl, CURLOPT_READFUNCTION, smtp_read_cb);
	code |= curl_easy_setopt(conn.curl, CURLOPT_READDATA, &reader);
	code |= curl_easy_setopt(conn.curl, CURLOPT_INFILESIZE_LARGE,
	                         (curl_off_t)len);
	if (code == CURLE_OK)
		code = curl_easy_perform(conn.curl);
	rc = transport_result(&conn, code);
	if (rc == P11MAIL_OK)
		p11m_trace("mail", "submitted %zu bytes to %zu recipients", len,
		           env->rcpt_count);
out:
	free(from);
	curl_slist_free_all(rcpts);
	transport_close(&conn);
	return rc;
}
