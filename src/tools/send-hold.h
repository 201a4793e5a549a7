/*
 * Shared by send and sendmail: protecting an outgoing message, and holding
 * it in the outbox when its token is absent, with one clear message
 * instead of every line the layers below logged on the way.
 */
#ifndef P11MAIL_SEND_HOLD_H
#define P11MAIL_SEND_HOLD_H

#include <stddef.h>

#include "tool.h"

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
