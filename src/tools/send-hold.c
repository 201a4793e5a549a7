/*
 * Protecting outgoing mail for send and sendmail.  While the message is
 * signed or encrypted, the library's error lines are held back: when the
 * token is absent they all say so in their own words (module, provider,
 * key loading), and one line naming the token is what the user needs.
 * Any other failure prints them as they came.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "send-hold.h"

/* The log callback while capturing: errors are kept, the rest printed. */
static void send_capture_log(void *arg, enum p11mail_log_level level,
                             const char *text)
{
	struct send_capture *c = arg;
	char **grown;

	if (level == P11MAIL_LOG_ERROR) {
		grown = realloc(c->lines, (c->count + 1) * sizeof(*grown));
		if (grown != NULL) {
			c->lines = grown;
			c->lines[c->count] = strdup(text);
			if (c->lines[c->count] != NULL) {
				c->count++;
				return;
			}
		}
		tool_error("%s", text); /* out of memory: print it now */
	} else if (level == P11MAIL_LOG_WARNING) {
		tool_warn("%s", text);
	} else if ((level == P11MAIL_LOG_INFO && !c->g->quiet) ||
	           (level == P11MAIL_LOG_DEBUG && c->g->verbose)) {
		tool_error("%s", text); /* the same "p11mail: " form */
	}
}

/* Library messages after the capture, as the tool scaffold prints them. */
static void send_plain_log(void *arg, enum p11mail_log_level level,
                           const char *text)
{
	const struct tool_globals *g = arg;

	if (level == P11MAIL_LOG_WARNING)
		tool_warn("%s", text);
	else if (level == P11MAIL_LOG_ERROR ||
	         (level == P11MAIL_LOG_INFO && !g->quiet) ||
	         (level == P11MAIL_LOG_DEBUG && g->verbose))
		tool_error("%s", text);
}

void send_capture_begin(struct send_capture *c, const struct tool_globals *g)
{
	memset(c, 0, sizeof(*c));
	c->g = g;
	p11mail_set_log(send_capture_log, c);
}

/* Whether a held line is kept when the absent token explains the rest. */
static int send_capture_keep(const char *line, int *token_said)
{
	if (strncmp(line, "insert the token", 16) == 0 && !*token_said) {
		*token_said = 1;
		return 1;
	}
	return strstr(line, " stays in the outbox") != NULL;
}

void send_capture_end(struct send_capture *c, enum send_replay replay)
{
	int token_said = 0;
	int all = replay == SEND_REPLAY_ALL || c->g->verbose;

	/* The callback only reads the options. */
	p11mail_set_log(send_plain_log, (void *)(uintptr_t)c->g);
	for (size_t i = 0; i < c->count; i++) {
		if (all || (replay == SEND_REPLAY_TOKEN &&
		            send_capture_keep(c->lines[i], &token_said)))
			tool_error("%s", c->lines[i]);
		free(c->lines[i]);
	}
	free(c->lines);
	c->lines = NULL;
	c->count = 0;
}

/* The token line the library logged last ("insert the token ..."). */
static const char *send_capture_token_line(const struct send_capture *c)
{
	for (size_t i = c->count; i > 0; i--)
		if (strncmp(c->lines[i - 1], "insert the token", 16) == 0)
			return c->lines[i - 1];
	return NULL;
}

/* Queues the message unprotected with the mark; prints the two lines. */
static enum p11mail_status send_hold(struct send_capture *c,
                                     struct p11mail_account *acct,
                                     const struct p11mail_envelope *env,
                                     unsigned int how, const char *prefix,
                                     const unsigned char *msg, size_t len,
                                     char **held_id)
{
	const char *line = send_capture_token_line(c);
	const char *what = (how & P11MAIL_PROTECT_ENCRYPT) ? "encrypt" : "sign";
	char *token = strdup(line != NULL ? line : "insert the token");
	enum p11mail_status st;

	st = p11mail_queue_add_held(p11mail_account_outbox(acct), env, how, msg,
	                            len, held_id);
	if (st != P11MAIL_OK) {
		send_capture_end(c, SEND_REPLAY_ALL);
		tool_error("%snot sent: the token is absent and the message "
		           "could not be queued: %s",
		           prefix, p11mail_strerror(st));
		goto out;
	}
	send_capture_end(c, SEND_REPLAY_NONE);
	tool_error("%snot sent yet: %s; the message waits in the outbox as "
	           "%s",
	           prefix, token != NULL ? token : "insert the token",
	           *held_id);
	tool_error("%sthen run 'p11mail send --queue' to %s and send it",
	           prefix, what);
out:
	free(token);
	return st;
}

enum p11mail_status send_protect_or_hold(const struct tool_globals *g,
                                         const struct p11mail_config *cfg,
                                         struct p11mail_account *acct,
                                         const struct p11mail_envelope *env,
                                         unsigned int how, const char *prefix,
                                         unsigned char **msg, size_t *len,
                                         enum send_fate *fate, char **held_id)
{
	struct send_capture c;
	unsigned char *out = NULL;
	enum p11mail_status st;
	size_t out_len = 0;
	int encrypted = 0;

	*fate = SEND_REFUSED;
	*held_id = NULL;
	send_capture_begin(&c, g);
	st = p11mail_mail_protect(cfg, g->store, env, how, *msg, *len, &out,
	                          &out_len, &encrypted);
	if (p11mail_protect_can_wait(st)) {
		if (send_hold(&c, acct, env, how, prefix, *msg, *len,
		              held_id) == P11MAIL_OK)
			*fate = SEND_HELD;
		return st;
	}
	send_capture_end(&c, SEND_REPLAY_ALL);
	if (st != P11MAIL_OK) {
		tool_error("%snot sent: the message could not be %s (%s)",
		           prefix,
		           (how & P11MAIL_PROTECT_ENCRYPT) ? "encrypted"
		                                           : "signed",
		           p11mail_strerror(st));
		return st;
	}
	p11mail_wipe(*msg, *len);
	free(*msg);
	*msg = out;
	*len = out_len;
	*fate = SEND_PROTECTED;
	return P11MAIL_OK;
}
