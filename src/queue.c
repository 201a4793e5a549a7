/*
 * The outbox queue: a Maildir whose messages each start with the envelope
 * they were submitted with, as "X-P11mail-Envelope-From:" and
 * "X-P11mail-Envelope-To:" lines.  A message is queued before any server
 * sees it and removed only once a server accepted it, so a failure at any
 * point leaves it in the queue.  A message held for its token carries an
 * "X-P11mail-Envelope-Protect:" line too: it is queued as written and is
 * signed and/or encrypted when the queue is run, never sent as it is.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "maildir.h"
#include "transport.h"

#define QUEUE_FROM    "X-P11mail-Envelope-From: "
#define QUEUE_TO      "X-P11mail-Envelope-To: "
#define QUEUE_PROTECT "X-P11mail-Envelope-Protect: "

/* The words of the protect line and the P11MAIL_PROTECT_* bit of each. */
static const struct {
	const char *word;
	unsigned int bit;
} queue_protect_words[] = {
        {"sign", P11MAIL_PROTECT_SIGN},
        {"encrypt", P11MAIL_PROTECT_ENCRYPT},
        {"auto", P11MAIL_PROTECT_AUTO},
};

#define QUEUE_NWORDS P11M_ARRAY_SIZE(queue_protect_words)

/* Bound on a queued message, envelope included. */
#define QUEUE_MAX_MESSAGE (64u * 1024 * 1024)

static size_t queue_envelope_size(const struct p11mail_envelope *env)
{
	size_t n = strlen(QUEUE_FROM) + strlen(env->from) + 2;

	n += strlen(QUEUE_PROTECT) + 2;
	for (size_t i = 0; i < QUEUE_NWORDS; i++)
		n += strlen(queue_protect_words[i].word) + 1;

	for (size_t i = 0; i < env->rcpt_count; i++)
		n += strlen(QUEUE_TO) + strlen(env->rcpt[i]) + 2;
	return n + 1;
}

/* The protect line for how (none when 0), appended at text + used. */
static size_t queue_protect_text(char *text, size_t size, size_t used,
                                 unsigned int how)
{
	const char *sep = "";

	if (how == 0)
		return used;
	used += (size_t)snprintf(text + used, size - used, "%s", QUEUE_PROTECT);
	for (size_t i = 0; i < QUEUE_NWORDS; i++) {
		if ((how & queue_protect_words[i].bit) == 0)
			continue;
		used += (size_t)snprintf(text + used, size - used, "%s%s", sep,
		                         queue_protect_words[i].word);
		sep = " ";
	}
	return used + (size_t)snprintf(text + used, size - used, "\r\n");
}

static char *queue_envelope_text(const struct p11mail_envelope *env,
                                 unsigned int how)
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
	queue_protect_text(text, size, used, how);
	return text;
}

enum p11mail_status p11mail_queue_add_held(const char *outbox,
                                           const struct p11mail_envelope *env,
                                           unsigned int how,
                                           const unsigned char *msg, size_t len,
                                           char **id)
{
	const unsigned char *parts[2];
	enum p11mail_status rc;
	size_t lens[2];
	char *text = NULL;

	if (id == NULL)
		return P11MAIL_ERR_ARGS;
	*id = NULL;
	if (outbox == NULL || env == NULL || msg == NULL ||
	    (how &
	     ~(unsigned int)(P11MAIL_PROTECT_SIGN | P11MAIL_PROTECT_ENCRYPT |
	                     P11MAIL_PROTECT_AUTO)) != 0)
		return P11MAIL_ERR_ARGS;
	rc = envelope_check(env);
	if (rc != P11MAIL_OK)
		goto out;
	text = queue_envelope_text(env, how);
	if (text == NULL) {
		rc = P11MAIL_ERR_NOMEM;
		goto out;
	}
	parts[0] = (const unsigned char *)text;
	lens[0] = strlen(text);
	parts[1] = msg;
	lens[1] = len;
	rc = maildir_deliver_parts(outbox, parts, lens, 2, id);
out:
	free(text);
	return rc;
}

enum p11mail_status p11mail_queue_add(const char *outbox,
                                      const struct p11mail_envelope *env,
                                      const unsigned char *msg, size_t len,
                                      char **id)
{
	return p11mail_queue_add_held(outbox, env, 0, msg, len, id);
}

/*
 * The P11MAIL_PROTECT_* bits of a protect line's value; an unknown word
 * is P11MAIL_ERR_FORMAT, since sending without the protection asked for
 * is worse than not sending.
 */
static enum p11mail_status queue_protect_parse(const char *value,
                                               unsigned int *how)
{
	const char *p = value;

	*how = 0;
	while (*p != '\0') {
		size_t n = strcspn(p, " ");
		size_t i;

		for (i = 0; i < QUEUE_NWORDS; i++)
			if (strlen(queue_protect_words[i].word) == n &&
			    strncmp(p, queue_protect_words[i].word, n) == 0)
				break;
		if (n > 0 && i == QUEUE_NWORDS)
			return P11MAIL_ERR_FORMAT;
		if (n > 0)
			*how |= queue_protect_words[i].bit;
		p += n + (p[n] == ' ');
	}
	return *how != 0 ? P11MAIL_OK : P11MAIL_ERR_FORMAT;
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
                                       unsigned int *how, size_t *body_off)
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
		} else if ((v = queue_line_value(line, n, QUEUE_PROTECT)) !=
		           NULL) {
			rc = queue_protect_parse(v, how);
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

enum p11mail_status p11mail_queue_read_held(const char *outbox, const char *id,
                                            struct p11mail_envelope **env,
                                            unsigned int *how,
                                            unsigned char **msg, size_t *len)
{
	struct p11mail_envelope *e = NULL;
	unsigned char *buf = NULL;
	enum p11mail_status rc;
	size_t buf_len = 0, off = 0;
	unsigned int h = 0;

	if (env == NULL || how == NULL || msg == NULL || len == NULL)
		return P11MAIL_ERR_ARGS;
	*env = NULL;
	*how = 0;
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
	rc = queue_parse(buf, buf_len, e, &h, &off);
	if (rc != P11MAIL_OK) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "queued message %s has no valid envelope; it was not "
		         "written by this version of p11mail",
		         id);
		goto out;
	}

	/* The message moves to the front of its buffer: one allocation. */
	memmove(buf, buf + off, buf_len - off);
	*len = buf_len - off;
	*msg = buf;
	*env = e;
	*how = h;
	buf = NULL;
	e = NULL;
out:
	if (buf != NULL)
		p11mail_wipe(buf, buf_len); /* may be a held plaintext */
	free(buf);
	p11mail_envelope_free(e);
	return rc;
}

enum p11mail_status p11mail_queue_read(const char *outbox, const char *id,
                                       struct p11mail_envelope **env,
                                       unsigned char **msg, size_t *len)
{
	enum p11mail_status rc;
	unsigned int how = 0;

	rc = p11mail_queue_read_held(outbox, id, env, &how, msg, len);
	if (rc == P11MAIL_OK && how != 0) {
		/* Its reader would send it without the protection asked for. */
		p11m_log(P11MAIL_LOG_ERROR,
		         "queued message %s waits for its token to be signed "
		         "or encrypted",
		         id);
		p11mail_envelope_free(*env);
		*env = NULL;
		p11mail_wipe(*msg, *len);
		free(*msg);
		*msg = NULL;
		*len = 0;
		rc = P11MAIL_ERR_FORMAT;
	}
	return rc;
}
