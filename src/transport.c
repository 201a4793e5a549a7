/*
 * The libcurl side of the mail transport: one connection setup for SMTP,
 * IMAP and POP3 (TLS required unless explicitly off, certificates always
 * verified), error mapping, a trace that never shows credentials, and SMTP
 * submission.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* The name of a protocol, for messages. */
static const char *transport_proto_name(enum transport_proto proto)
{
	static const char *const names[] = {"SMTP", "IMAP", "POP3"};

	return names[proto];
}

/* Whether the first line of a server could open a dialogue of proto. */
static int transport_greeting_ok(enum transport_proto proto, const char *s,
                                 size_t n)
{
	switch (proto) {
	case TRANSPORT_SMTP:
		return n >= 3 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' &&
		       s[1] <= '9' && s[2] >= '0' && s[2] <= '9';
	case TRANSPORT_IMAP:
		return n >= 2 && s[0] == '*' && s[1] == ' ';
	default:
		return (n >= 3 && strncmp(s, "+OK", 3) == 0) ||
		       (n >= 4 && strncmp(s, "-ERR", 4) == 0);
	}
}

/*
 * Watches the dialogue (a first server line not of the protocol makes the
 * connection give up) and traces it when asked: server lines in full; of
 * our own lines only the IMAP tag and a known verb, because AUTH, LOGIN,
 * PASS and the lines that follow AUTH carry credentials.
 */
static int transport_debug_cb(CURL *curl, curl_infotype type, char *data,
                              size_t size, void *arg)
{
	struct transport_conn *conn = arg;
	size_t n, tag = 0;

	(void)curl;
	if (type == CURLINFO_HEADER_IN && !conn->heard) {
		conn->heard = 1;
		conn->weird = !transport_greeting_ok(conn->proto, data, size);
	}
	if (!p11m_trace_enabled())
		return 0;
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

/* Stops a transfer whose server does not speak the protocol. */
static int transport_progress_cb(void *arg, curl_off_t dltotal,
                                 curl_off_t dlnow, curl_off_t ultotal,
                                 curl_off_t ulnow)
{
	const struct transport_conn *conn = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return conn->weird;
}

static long transport_timeout(const struct p11mail_server *srv)
{
	return srv->timeout > 0 ? srv->timeout : TRANSPORT_TIMEOUT;
}

static enum p11mail_status transport_setup(struct transport_conn *conn,
                                           enum transport_proto proto)
{
	const struct p11mail_server *srv = conn->srv;
	long timeout = transport_timeout(srv);
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
	/* The debug callback sees the greeting, even without tracing. */
	rc |= curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, transport_debug_cb);
	rc |= curl_easy_setopt(c, CURLOPT_DEBUGDATA, conn);
	rc |= curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
	rc |= curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION,
	                       transport_progress_cb);
	rc |= curl_easy_setopt(c, CURLOPT_XFERINFODATA, conn);
	rc |= curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	rc |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, transport_write_cb);
	/* Until a request names its buffer, whatever arrives is dropped. */
	rc |= curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
	return rc == CURLE_OK ? P11MAIL_OK : P11MAIL_ERR_INTERNAL;
}

/* A CA file that cannot be read is a configuration fault. */
static enum p11mail_status transport_ca_file_check(const char *path)
{
	struct stat sb;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		err = errno;
	else if (fstat(fd, &sb) != 0)
		err = errno;
	else if (!S_ISREG(sb.st_mode))
		err = EISDIR;
	if (fd >= 0)
		close(fd);
	if (err == 0)
		return P11MAIL_OK;
	p11m_log(P11MAIL_LOG_ERROR, "cannot read the CA file %s: %s", path,
	         err == EISDIR ? "not a regular file" : strerror(err));
	return P11MAIL_ERR_CONFIG;
}

enum p11mail_status transport_check(const struct p11mail_server *srv,
                                    enum transport_proto proto)
{
	enum p11mail_status rc;
	char *base = NULL;

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
	rc = transport_base_url(srv, proto, &base);
	free(base);
	if (rc == P11MAIL_OK && srv->ca_file != NULL)
		rc = transport_ca_file_check(srv->ca_file);
	return rc;
}

enum p11mail_status transport_open(const struct p11mail_server *srv,
                                   enum transport_proto proto,
                                   struct transport_conn *conn)
{
	enum p11mail_status rc;

	memset(conn, 0, sizeof(*conn));
	rc = transport_check(srv, proto);
	if (rc != P11MAIL_OK)
		return rc;
	pthread_once(&transport_once, transport_global_init);
	if (transport_init_result != CURLE_OK)
		return P11MAIL_ERR_INTERNAL;

	conn->srv = srv;
	conn->proto = proto;
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

/* Whether the last transfer got a TCP connection to the server. */
static int transport_connected(struct transport_conn *conn)
{
	double t = 0;

	if (conn->heard)
		return 1;
	return curl_easy_getinfo(conn->curl, CURLINFO_CONNECT_TIME, &t) ==
	               CURLE_OK &&
	       t > 0;
}

enum p11mail_status transport_result(struct transport_conn *conn, CURLcode code)
{
	const char *host = conn->srv->host;
	const char *why =
	        conn->errbuf[0] ? conn->errbuf : curl_easy_strerror(code);

	if (code != CURLE_OK && conn->weird) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "%s did not answer as an %s server: check the host "
		         "and the port",
		         host, transport_proto_name(conn->proto));
		return P11MAIL_ERR_TRANSPORT;
	}
	switch (code) {
	case CURLE_OK:
		return P11MAIL_OK;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_GOT_NOTHING:
		p11m_log(P11MAIL_LOG_ERROR,
		         "%s did not answer as an %s server (%s): check the "
		         "host and the port",
		         host, transport_proto_name(conn->proto), why);
		return P11MAIL_ERR_TRANSPORT;
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
	case CURLE_SSL_CACERT_BADFILE:
		p11m_log(P11MAIL_LOG_ERROR, "cannot use the CA file %s (%s)",
		         conn->srv->ca_file ? conn->srv->ca_file : "(default)",
		         why);
		return P11MAIL_ERR_CONFIG;
	case CURLE_PEER_FAILED_VERIFICATION:
		p11m_log(P11MAIL_LOG_ERROR,
		         "the TLS certificate of %s is not trusted (%s): "
		         "check the CA file",
		         host, why);
		return P11MAIL_ERR_TRANSPORT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
		if (code == CURLE_OPERATION_TIMEDOUT &&
		    transport_connected(conn)) {
			p11m_log(P11MAIL_LOG_ERROR,
			         "no answer from %s within %ld s", host,
			         transport_timeout(conn->srv));
			return P11MAIL_ERR_TRANSPORT;
		}
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
