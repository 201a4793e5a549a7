/*
 * The outbox queue: a Maildir whose messages each start with the envelope
 * they were submitted with, as "X-P11mail-Envelope-From:" and
 * "X-P11mail-Envelope-To:" lines.  A message is queued before any server
 * sees it and removed only once a server accepted it, so a failure at any
 * point leaves it in the queue.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "maildir.h"
#include "transport.h"

#define QUEUE_FROM "X-P11mail-Envelope-From: "
#define QUEUE_TO   "X-P11mail-Envelope-To: "

/* Bound on a queued message, envelope included. */
#define QUEUE_MAX_MESSAGE (64u * 1024 * 1024)

static size_t queue_envelope_size(const struct p11mail_envelope *env)
{
	size_t n = strlen(QUEUE_FROM) + strlen(env->from) + 2;

	for (size_t i = 0; i < env->rcpt_count; i++)
		n += strlen(QUEUE_TO) + strlen(env->rcpt[i]) + 2;
	return n + 1;
}

static char *queue_envelope_text(const struct p11mail_envelope *env)
{
	size_t size = queue_envelope_size(env);
	char *text = malloc(size);
	size_t used;

	if (text == NULL)
		return NULL;
	used = (size_t)snprintf(text, size, "%s%s\r\n", QUEUE_FROM, env->from);
	for (size_t i = 0; i < env->rcpt_count; i++)
		used += (size_t)snprintf(text + used, size - used, "%s%s\r\n",
		                         QUEUE_TO, env->rcpt[i]);
	return text;
}

enum p11mail_status p11mail_queue_add(const char *outbox,
                                      const struct p11mail_envelope *env,
                                      const unsigned char *msg, size_t len,
                                      char **id)
{
	const unsigned char *parts[2];
	enum p11mail_status rc;
	size_t lens[2];
	char *text;

	if (id == NULL)
		return P11MAIL_ERR_ARGS;
	*id = NULL;
	if (outbox == NULL || env == NULL || msg == NULL)
		return P11MAIL_ERR_ARGS;
	rc = envelope_check(env);
	if (rc != P11MAIL_OK)
		return rc;
	text = queue_envelope_text(env);
	if (text == NULL)
		return P11MAIL_ERR_NOMEM;
	parts[0] = (const unsigned char *)text;
	lens[0] = strlen(text);
	parts[1] = msg;
	lens[1] = len;
	rc = maildir_deliver_parts(outbox, parts, lens, 2, id);
	free(text);
	return rc;
}

/* Returns the value when line (of n bytes) starts with prefix, else NULL. */
static char *queue_line_value(const char *line, size_t n, const char *prefix)
{
	size_t plen = strlen(prefix);

	if (n < plen || strncmp(line, prefix, plen) != 0)
		return NULL;
	n -= plen;
	if (n > 0 && line[plen + n - 1] == '\r')
		n--;
	return strndup(line + plen, n);
}

/* Reads the envelope lines at the start of buf; *body_off follows them. */
static enum p11mail_status queue_parse(const unsigned char *buf, size_t len,
                                       struct p11mail_envelope *env,
                                       size_t *body_off)
{
	enum p11mail_status rc = P11MAIL_OK;
	size_t off = 0;

	while (rc == P11MAIL_OK && off < len) {
		const char *line = (const char *)buf + off;
		const char *nl = memchr(line, '\n', len - off);
		size_t n = nl != NULL ? (size_t)(nl - line) : len - off;
		char *v;

		if ((v = queue_line_value(line, n, QUEUE_FROM)) != NULL) {
			free(env->from);
			env->from = v;
		} else if ((v = queue_line_value(line, n, QUEUE_TO)) != NULL) {
			rc = p11mail_envelope_add_rcpt(env, v);
			free(v);
		} else {
			break;
		}
		off += n + (nl != NULL);
	}
	*body_off = off;
	if (rc == P11MAIL_OK && (env->from == NULL || env->rcpt_count == 0))
		rc = P11MAIL_ERR_FORMAT;
	return rc;
}

enum p11mail_status p11mail_queue_read(const char *outbox, const char *id,
                                       struct p11mail_envelope **env,
                                       unsigned char **msg, size_t *len)
{
	struct p11mail_envelope *e = NULL;
	unsigned char *buf = NULL;
	enum p11mail_status rc;
	size_t buf_len = 0, off = 0;

	if (env == NULL || msg == NULL || len == NULL)
		return P11MAIL_ERR_ARGS;
	*env = NULL;
	*msg = NULL;
	*len = 0;
	rc = p11mail_maildir_read(outbox, id, &buf, &buf_len);
	if (rc != P11MAIL_OK)
		goto out;
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		rc = P11MAIL_ERR_NOMEM;
		goto out;
	}
	rc = queue_parse(buf, buf_len, e, &off);
	if (rc != P11MAIL_OK) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "queued message %s has no envelope; it was not "
		         "written by p11mail",
		         id);
		goto out;
	}

	/* The message moves to the front of its buffer: one allocation. */
	memmove(buf, buf + off, buf_len - off);
	*len = buf_len - off;
	*msg = buf;
	*env = e;
	buf = NULL;
	e = NULL;
out:
	free(buf);
	p11mail_envelope_free(e);
	return rc;
}
