/*
 * What the transport needs to know about a message: its envelope (GMime
 * parses the address headers), Bcc removed before submission, a check that
 * it is a message at all, and the summary the inbox shows.  The body is
 * never rewritten: a signed message must reach the server byte for byte.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "common.h"
#include "transport.h"

/* Bound on the header block of one message. */
#define MESSAGE_MAX_HEADER (256u * 1024)

static int envelope_addr_ok(const char *a)
{
	const char *at;

	if (a == NULL || *a == '\0' || strlen(a) > 320)
		return 0;
	for (const char *p = a; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || *p == '<' || *p == '>' ||
		    *p == ',' || *p == 0x7f)
			return 0;
	at = strrchr(a, '@');
	return at != NULL && at != a && at[1] != '\0';
}

enum p11mail_status envelope_check(const struct p11mail_envelope *env)
{
	if (!envelope_addr_ok(env->from)) {
		p11m_log(P11MAIL_LOG_ERROR, "invalid envelope sender '%s'",
		         env->from != NULL ? env->from : "");
		return P11MAIL_ERR_ARGS;
	}
	if (env->rcpt_count == 0) {
		p11m_log(P11MAIL_LOG_ERROR, "the message has no recipients");
		return P11MAIL_ERR_ARGS;
	}
	for (size_t i = 0; i < env->rcpt_count; i++)
		if (!envelope_addr_ok(env->rcpt[i])) {
			p11m_log(P11MAIL_LOG_ERROR, "invalid recipient '%s'",
			         env->rcpt[i]);
			return P11MAIL_ERR_ARGS;
		}
	return P11MAIL_OK;
}

enum p11mail_status p11mail_envelope_new(const char *from,
                                         struct p11mail_envelope **out)
{
	struct p11mail_envelope *env;
	enum p11mail_status rc = P11MAIL_ERR_NOMEM;

	if (out == NULL)
		return P11MAIL_ERR_ARGS;
	*out = NULL;
	env = calloc(1, sizeof(*env));
	if (env == NULL)
		goto out;
	if (from != NULL && (env->from = strdup(from)) == NULL)
		goto out;
	*out = env;
	env = NULL;
	rc = P11MAIL_OK;
out:
	p11mail_envelope_free(env);
	return rc;
}

enum p11mail_status p11mail_envelope_add_rcpt(struct p11mail_envelope *env,
                                              const char *addr)
{
	char **grown;

	if (env == NULL || addr == NULL)
		return P11MAIL_ERR_ARGS;
	if (!envelope_addr_ok(addr)) {
		p11m_log(P11MAIL_LOG_ERROR, "invalid recipient address '%s'",
		         addr);
		return P11MAIL_ERR_ARGS;
	}
	for (size_t i = 0; i < env->rcpt_count; i++)
		if (strcasecmp(env->rcpt[i], addr) == 0)
			return P11MAIL_OK;
	grown = realloc(env->rcpt, (env->rcpt_count + 1) * sizeof(*grown));
	if (grown == NULL)
		return P11MAIL_ERR_NOMEM;
	env->rcpt = grown;
	env->rcpt[env->rcpt_count] = strdup(addr);
	if (env->rcpt[env->rcpt_count] == NULL)
		return P11MAIL_ERR_NOMEM;
	env->rcpt_count++;
	return P11MAIL_OK;
}

void p11mail_envelope_free(struct p11mail_envelope *env)
{
	if (env == NULL)
		return;
	for (size_t i = 0; i < env->rcpt_count; i++)
		free(env->rcpt[i]);
	free(env->rcpt);
	free(env->from);
	free(env);
}

/* ---- parsing with GMime ------------------------------------------------- */

static GMimeMessage *message_parse(const unsigned char *msg, size_t len)
{
	GMimeStream *stream;
	GMimeParser *parser;
	GMimeMessage *m;

	g_mime_init();
	stream = g_mime_stream_mem_new_with_buffer((const char *)msg, len);
	parser = g_mime_parser_new_with_stream(stream);
	m = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	g_object_unref(stream);
	return m;
}

/* Adds every mailbox of list (groups flattened) to env. */
static enum p11mail_status message_add_list(struct p11mail_envelope *env,
                                            InternetAddressList *list)
{
	enum p11mail_status rc = P11MAIL_OK;
	int n = list != NULL ? internet_address_list_length(list) : 0;

	for (int i = 0; rc == P11MAIL_OK && i < n; i++) {
		InternetAddress *a = internet_address_list_get_address(list, i);

		if (INTERNET_ADDRESS_IS_GROUP(a))
			rc = message_add_list(
			        env, internet_address_group_get_members(
			                     INTERNET_ADDRESS_GROUP(a)));
		else
			rc = p11mail_envelope_add_rcpt(
			        env, internet_address_mailbox_get_addr(
			                     INTERNET_ADDRESS_MAILBOX(a)));
	}
	return rc;
}

/* The one mailbox of a From or Sender list, or NULL. */
static const char *message_single_addr(InternetAddressList *list)
{
	InternetAddress *a;

	if (list == NULL || internet_address_list_length(list) != 1)
		return NULL;
	a = internet_address_list_get_address(list, 0);
	if (!INTERNET_ADDRESS_IS_MAILBOX(a))
		return NULL;
	return internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
}

static enum p11mail_status message_sender(GMimeMessage *m, const char *from,
                                          struct p11mail_envelope *env)
{
	const char *addr = from;

	if (addr == NULL)
		addr = message_single_addr(g_mime_message_get_sender(m));
	if (addr == NULL)
		addr = message_single_addr(g_mime_message_get_from(m));
	if (addr == NULL) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "the message names no single sender: give one "
		         "with -f ADDRESS");
		return P11MAIL_ERR_FORMAT;
	}
	env->from = strdup(addr);
	return env->from != NULL ? P11MAIL_OK : P11MAIL_ERR_NOMEM;
}

enum p11mail_status p11mail_message_envelope(const unsigned char *msg,
                                             size_t len, const char *from,
                                             struct p11mail_envelope **out)
{
	static const GMimeAddressType kinds[] = {GMIME_ADDRESS_TYPE_TO,
	                                         GMIME_ADDRESS_TYPE_CC,
	                                         GMIME_ADDRESS_TYPE_BCC};
	struct p11mail_envelope *env = NULL;
	GMimeMessage *m = NULL;
	enum p11mail_status rc;

	if (out == NULL)
		return P11MAIL_ERR_ARGS;
	*out = NULL;
	if (msg == NULL)
		return P11MAIL_ERR_ARGS;
	rc = p11mail_message_check(msg, len, NULL);
	if (rc != P11MAIL_OK)
		return rc;
	m = message_parse(msg, len);
	rc = m != NULL ? p11mail_envelope_new(NULL, &env) : P11MAIL_ERR_FORMAT;
	if (rc != P11MAIL_OK)
		goto out;
	rc = message_sender(m, from, env);
	for (size_t i = 0; rc == P11MAIL_OK && i < P11M_ARRAY_SIZE(kinds); i++)
		rc = message_add_list(
		        env, g_mime_message_get_addresses(m, kinds[i]));
	if (rc == P11MAIL_OK && env->rcpt_count == 0) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "the message has no To, Cc or Bcc recipient");
		rc = P11MAIL_ERR_FORMAT;
	}
	if (rc != P11MAIL_OK)
		goto out;
	*out = env;
	env = NULL;
out:
	p11mail_envelope_free(env);
	if (m != NULL)
		g_object_unref(m);
	return rc;
}

char *message_id_of(const unsigned char *msg, size_t len)
{
	GMimeMessage *m = message_parse(msg, len);
	const char *id = m != NULL ? g_mime_message_get_message_id(m) : NULL;
	char *copy = id != NULL && *id != '\0' ? strdup(id) : NULL;

	if (m != NULL)
		g_object_unref(m);
	return copy;
}

/* ---- the header block, handled as text -------------------------------- */

/* Offset of the blank line ending the header block, or len when none. */
static size_t message_header_end(const unsigned char *msg, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (i == 0 && (msg[0] == '\n' || msg[0] == '\r'))
			return 0;
		if (msg[i] != '\n' || i + 1 >= len)
			continue;
		if (msg[i + 1] == '\n' ||
		    (msg[i + 1] == '\r' && i + 2 < len && msg[i + 2] == '\n'))
			return i + 1;
	}
	return len;
}

/* Length of the header field at p, continuation lines included. */
static size_t message_field_len(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		const unsigned char *nl = memchr(p + i, '\n', n - i);

		i = nl != NULL ? (size_t)(nl - p) + 1 : n;
		if (i >= n || (p[i] != ' ' && p[i] != '\t'))
			break;
	}
	return i;
}

static int message_field_is(const unsigned char *p, size_t n, const char *name)
{
	size_t k = strlen(name);

	return n > k && strncasecmp((const char *)p, name, k) == 0 &&
	       (p[k] == ':' || p[k] == ' ' || p[k] == '\t');
}

/* Copies src to dst turning lone LF into CRLF; returns the bytes written. */
static size_t message_crlf_copy(unsigned char *dst, const unsigned char *src,
                                size_t n, int *prev_cr)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (src[i] == '\n' && !*prev_cr)
			dst[o++] = '\r';
		dst[o++] = src[i];
		*prev_cr = src[i] == '\r';
	}
	return o;
}

enum p11mail_status p11mail_message_strip_bcc(const unsigned char *msg,
                                              size_t len, unsigned char **out,
                                              size_t *out_len)
{
	size_t end, off = 0, o = 0;
	unsigned char *buf;
	int prev_cr = 0;

	if (out == NULL || out_len == NULL)
		return P11MAIL_ERR_ARGS;
	*out = NULL;
	*out_len = 0;
	if (msg == NULL)
		return P11MAIL_ERR_ARGS;
	if (len > (SIZE_MAX - 3) / 2)
		return P11MAIL_ERR_LIMIT;
	buf = malloc(len * 2 + 3);
	if (buf == NULL)
		return P11MAIL_ERR_NOMEM;

	end = message_header_end(msg, len);
	while (off < end) {
		size_t f = message_field_len(msg + off, end - off);

		if (!message_field_is(msg + off, f, "Bcc") &&
		    !message_field_is(msg + off, f, "Resent-Bcc"))
			o += message_crlf_copy(buf + o, msg + off, f, &prev_cr);
		off += f;
	}
	o += message_crlf_copy(buf + o, msg + end, len - end, &prev_cr);
	if (o > 0 && buf[o - 1] != '\n') {
		buf[o++] = '\r';
		buf[o++] = '\n';
	}
	*out = buf;
	*out_len = o;
	return P11MAIL_OK;
}

/* A header field name: printable ASCII without ':' followed by ':'. */
static int message_starts_with_field(const unsigned char *msg, size_t len)
{
	size_t i = 0;

	while (i < len && msg[i] > ' ' && msg[i] < 0x7f && msg[i] != ':')
		i++;
	return i > 0 && i < len && msg[i] == ':';
}

enum p11mail_status p11mail_message_check(const unsigned char *msg, size_t len,
                                          const char **reason)
{
	const char *why = NULL;
	GMimeMessage *m = NULL;
	size_t end;

	if (reason != NULL)
		*reason = NULL;
	if (msg == NULL)
		return P11MAIL_ERR_ARGS;
	end = message_header_end(msg, len);
	if (len == 0)
		why = "the message is empty";
	else if (!message_starts_with_field(msg, len))
		why = "it does not start with a header field";
	else if (end > MESSAGE_MAX_HEADER)
		why = "its header is larger than 256 KiB";
	else if (memchr(msg, '\0', end) != NULL)
		why = "its header contains a NUL byte";
	else if ((m = message_parse(msg, len)) == NULL)
		why = "it cannot be parsed as a MIME message";
	else if (g_mime_object_get_header(GMIME_OBJECT(m), "From") == NULL)
		why = "it has no From header";
	if (m != NULL)
		g_object_unref(m);
	if (why == NULL)
		return P11MAIL_OK;
	if (reason != NULL)
		*reason = why;
	else
		p11m_log(P11MAIL_LOG_ERROR, "not a mail message: %s", why);
	return P11MAIL_ERR_FORMAT;
}

/* ---- the inbox summary ------------------------------------------------- */

static enum p11mail_message_kind message_kind(GMimeMessage *m)
{
	GMimeObject *part = g_mime_message_get_mime_part(m);
	GMimeContentType *ct;
	const char *smime;

	if (part == NULL)
		return P11MAIL_MESSAGE_PLAIN;
	ct = g_mime_object_get_content_type(part);
	if (g_mime_content_type_is_type(ct, "multipart", "signed"))
		return P11MAIL_MESSAGE_SIGNED;
	if (!g_mime_content_type_is_type(ct, "application", "pkcs7-mime") &&
	    !g_mime_content_type_is_type(ct, "application", "x-pkcs7-mime"))
		return P11MAIL_MESSAGE_PLAIN;
	smime = g_mime_content_type_get_parameter(ct, "smime-type");
	if (smime != NULL && g_ascii_strcasecmp(smime, "signed-data") == 0)
		return P11MAIL_MESSAGE_SIGNED;
	if (smime != NULL && g_ascii_strcasecmp(smime, "certs-only") == 0)
		return P11MAIL_MESSAGE_PLAIN;
	return P11MAIL_MESSAGE_ENCRYPTED;
}

static char *message_from_text(GMimeMessage *m)
{
	InternetAddressList *from = g_mime_message_get_from(m);
	char *s, *copy;

	if (from == NULL || internet_address_list_length(from) == 0)
		return strdup("");
	s = internet_address_list_to_string(from, NULL, FALSE);
	copy = strdup(s != NULL ? s : "");
	g_free(s);
	return copy;
}

static char *message_date_text(GMimeMessage *m, int64_t *when)
{
	GDateTime *date = g_mime_message_get_date(m);
	GDateTime *utc;
	char *s, *copy;

	*when = 0;
	if (date == NULL)
		return strdup("");
	*when = g_date_time_to_unix(date);
	utc = g_date_time_to_utc(date);
	s = utc != NULL ? g_date_time_format(utc, "%Y-%m-%d %H:%M") : NULL;
	copy = strdup(s != NULL ? s : "");
	g_free(s);
	if (utc != NULL)
		g_date_time_unref(utc);
	return copy;
}

/* Replaces control characters so that a summary stays on one line. */
static void message_one_line(char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			*s = ' ';
}

enum p11mail_status
p11mail_message_summarize(const unsigned char *msg, size_t len,
                          struct p11mail_message_summary **out)
{
	struct p11mail_message_summary *s = NULL;
	enum p11mail_status rc;
	GMimeMessage *m = NULL;
	const char *subject;

	if (out == NULL)
		return P11MAIL_ERR_ARGS;
	*out = NULL;
	rc = p11mail_message_check(msg, len, NULL);
	if (rc != P11MAIL_OK)
		return rc;
	m = message_parse(msg, len);
	s = calloc(1, sizeof(*s));
	if (m == NULL || s == NULL) {
		rc = m == NULL ? P11MAIL_ERR_FORMAT : P11MAIL_ERR_NOMEM;
		goto out;
	}
	subject = g_mime_message_get_subject(m);
	s->kind = message_kind(m);
	s->from = message_from_text(m);
	s->date = message_date_text(m, &s->time);
	s->subject = strdup(subject != NULL ? subject : "");
	if (s->from == NULL || s->date == NULL || s->subject == NULL) {
		rc = P11MAIL_ERR_NOMEM;
		goto out;
	}
	message_one_line(s->from);
	message_one_line(s->subject);
	*out = s;
	s = NULL;
out:
	p11mail_message_summary_free(s);
	if (m != NULL)
		g_object_unref(m);
	return rc;
}

void p11mail_message_summary_free(struct p11mail_message_summary *s)
{
	if (s == NULL)
		return;
	free(s->from);
	free(s->date);
	free(s->subject);
	free(s);
}

enum p11mail_status p11mail_message_load(const char *path, size_t max,
                                         unsigned char **out, size_t *out_len)
{
	enum p11mail_status rc = P11MAIL_ERR_IO;
	unsigned char *buf = NULL, *grown;
	size_t size = 0, used = 0, n;
	FILE *f = stdin;
	int is_stdin = path == NULL || strcmp(path, "-") == 0;

	if (out == NULL || out_len == NULL)
		return P11MAIL_ERR_ARGS;
	*out = NULL;
	*out_len = 0;
	if (!is_stdin && (f = fopen(path, "rbe")) == NULL) {
		p11m_log(P11MAIL_LOG_ERROR, "cannot read %s: %s", path,
		         strerror(errno));
		return errno == ENOENT ? P11MAIL_ERR_NOT_FOUND : P11MAIL_ERR_IO;
	}
	do {
		if (used == size) {
			size = size ? size * 2 : 65536;
			grown = used <= max ? realloc(buf, size + 1) : NULL;
			if (grown == NULL) {
				rc = used > max ? P11MAIL_ERR_LIMIT
				                : P11MAIL_ERR_NOMEM;
				goto out;
			}
			buf = grown;
		}
		n = fread(buf + used, 1, size - used, f);
		used += n;
	} while (n > 0);
	if (ferror(f) || used > max) {
		rc = used > max ? P11MAIL_ERR_LIMIT : P11MAIL_ERR_IO;
		goto out;
	}
	buf[used] = '\0';
	*out = buf;
	*out_len = used;
	buf = NULL;
	rc = P11MAIL_OK;
out:
	if (rc == P11MAIL_ERR_LIMIT)
		p11m_log(P11MAIL_LOG_ERROR,
		         "the message is larger than %zu bytes", max);
	else if (rc != P11MAIL_OK)
		p11m_log(P11MAIL_LOG_ERROR, "cannot read the message: %s",
		         strerror(errno));
	free(buf);
	if (!is_stdin)
		fclose(f);
	return rc;
}

enum p11mail_status p11mail_message_sender(const unsigned char *msg, size_t len,
                                           char **out)
{
	GMimeMessage *m;
	const char *addr;

	if (out == NULL)
		return P11MAIL_ERR_ARGS;
	*out = NULL;
	if (msg == NULL || p11mail_message_check(msg, len, NULL) != P11MAIL_OK)
		return P11MAIL_ERR_FORMAT;
	m = message_parse(msg, len);
	if (m == NULL)
		return P11MAIL_ERR_FORMAT;
	addr = message_single_addr(g_mime_message_get_sender(m));
	if (addr == NULL)
		addr = message_single_addr(g_mime_message_get_from(m));
	if (addr != NULL)
		*out = strdup(addr);
	g_object_unref(m);
	if (addr == NULL)
		return P11MAIL_ERR_NOT_FOUND;
	return *out != NULL ? P11MAIL_OK : P11MAIL_ERR_NOMEM;
}
