/*
 * Shared by send and sendmail: protecting an outgoing message, and holding
 * it in the outbox when its token is absent, with one clear message
 * instead of every line the layers below logged on the way.
 */
#ifndef P11MAIL_SEND_HOLD_H
#define P11MAIL_SEND_HOLD_H

#include <stddef.h>

#include "tool.h"

/* Library error lines held back while a step runs, in order. */
struct send_capture {
	const struct tool_globals *g;
	char **lines;
	size_t count;
};

/* Starts holding back the library's error lines (others are printed). */
void send_capture_begin(struct send_capture *c, const struct tool_globals *g);

/* What send_capture_end prints of the held lines. */
enum send_replay {
	SEND_REPLAY_ALL = 0, /* every line, in order */
	SEND_REPLAY_NONE,    /* nothing: the caller says it in one line */
	SEND_REPLAY_TOKEN    /* the first "insert the token" line and those
	                        naming a message that stays in the outbox */
};

/* Stops holding back and prints what replay says; --verbose prints all. */
void send_capture_end(struct send_capture *c, enum send_replay replay);

/* What became of a message given to send_protect_or_hold. */
enum send_fate {
	SEND_PROTECTED = 0, /* *msg is the protected message: submit it */
	SEND_HELD,          /* queued unprotected as *held_id, waits for the
	                       token; the messages are printed */
	SEND_REFUSED        /* not protected, not queued; the error printed */
};

/*
 * Signs and/or encrypts *msg (replaced, the old one wiped) as how asks.
 * When only the token is missing, queues the unprotected message in the
 * outbox marked with how and prints which token to insert and how to send
 * it later; *held_id (free()) names it.  prefix starts the messages
 * ("" or "sendmail: ").  Returns the library status of the protection.
 */
enum p11mail_status send_protect_or_hold(const struct tool_globals *g,
                                         const struct p11mail_config *cfg,
                                         struct p11mail_account *acct,
                                         const struct p11mail_envelope *env,
                                         unsigned int how, const char *prefix,
                                         unsigned char **msg, size_t *len,
                                         enum send_fate *fate, char **held_id);

#endif /* P11MAIL_SEND_HOLD_H */
