/*
 * Sending through the outbox: a message is queued first, submitted, and
 * removed from the queue only when the server accepted it.  Without an
 * SMTP server the outbox is where sent mail stays.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "maildir.h"
#include "transport.h"

/*
 * Submissions from one outbox take turns: a queue run and a single send
 * running side by side would otherwise both submit the same message.
 */
static int send_lock(const char *outbox)
{
	return maildir_lock(outbox, ".p11mail-lock");
}

static void send_unlock(int fd)
{
	maildir_unlock(fd);
}

enum p11mail_status p11mail_send_message(struct p11mail_account *acct,
                                         const struct p11mail_envelope *env,
                                         const unsigned char *msg, size_t len,
                                         int *sent, char **queued_id)
{
	struct p11mail_server srv;
	enum p11mail_status rc;
	char *id = NULL;
	int lock = -1, no_server;

	if (sent == NULL || queued_id == NULL)
		return P11MAIL_ERR_ARGS;
	*sent = 0;
	*queued_id = NULL;
	if (acct == NULL || env == NULL || msg == NULL)
		return P11MAIL_ERR_ARGS;

	/*
	 * A configuration fault queues nothing: retrying would not help.
	 * Only a fault of the moment (server unreachable, a temporary
	 * refusal) leaves the message queued.
	 */
	rc = p11mail_account_server(acct, P11MAIL_SERVICE_SMTP, &srv);
	if (rc == P11MAIL_OK)
		rc = transport_check(&srv, TRANSPORT_SMTP);
	if (rc != P11MAIL_OK && rc != P11MAIL_ERR_NOT_FOUND)
		goto out;
	no_server = rc == P11MAIL_ERR_NOT_FOUND;
	rc = p11mail_queue_add(p11mail_account_outbox(acct), env, msg, len,
	                       &id);
	if (rc != P11MAIL_OK || no_server)
		goto out; /* no server: the outbox is the destination */
	lock = send_lock(p11mail_account_outbox(acct));
	rc = lock >= 0 ? p11mail_smtp_submit(&srv, env, msg, len)
	               : P11MAIL_ERR_IO;
	if (rc == P11MAIL_ERR_CONFIG &&
	    p11mail_maildir_remove(p11mail_account_outbox(acct), id) ==
	            P11MAIL_OK) {
		free(id);
		id = NULL;
	}
	if (rc != P11MAIL_OK)
		goto out; /* stays queued: the caller names it */
	*sent = 1;
	if (p11mail_maildir_remove(p11mail_account_outbox(acct), id) !=
	    P11MAIL_OK)
		p11m_log(P11MAIL_LOG_WARNING,
		         "sent, but %s could not be removed from the outbox: "
		         "remove it by hand or it will be sent again",
		         id);
out:
	send_unlock(lock);
	if (*sent)
		free(id);
	else
		*queued_id = id; /* NULL when nothing was queued */
	return rc;
}

/*
 * A held message signed and/or encrypted as it asked, in place; on
 * failure it stays held and the reason is logged.
 */
static enum p11mail_status send_protect_held(struct p11mail_account *acct,
                                             const char *id,
                                             const struct p11mail_envelope *env,
                                             unsigned int how,
                                             unsigned char **msg, size_t *len)
{
	unsigned char *out = NULL;
	enum p11mail_status rc;
	size_t out_len = 0;
	int encrypted = 0;

	rc = p11mail_mail_protect(account_config(acct), account_store_dir(acct),
	                          env, how, *msg, *len, &out, &out_len,
	                          &encrypted);
	if (rc != P11MAIL_OK) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "%s stays in the outbox: it could not be %s (%s)", id,
		         (how & P11MAIL_PROTECT_ENCRYPT) ? "encrypted"
		                                         : "signed",
		         p11mail_strerror(rc));
		goto out;
	}
	p11mail_wipe(*msg, *len);
	free(*msg);
	*msg = out;
	*len = out_len;
out:
	return rc;
}

/*
 * Submits one queued message, first signed and/or encrypted when it was
 * held for its token, and removes it once accepted.
 */
static enum p11mail_status send_queued(struct p11mail_account *acct,
                                       const struct p11mail_server *srv,
                                       const struct p11mail_maildir_entry *e)
{
	const char *id = e->id;
	const char *outbox = p11mail_account_outbox(acct);
	struct p11mail_envelope *env = NULL;
	unsigned char *msg = NULL;
	enum p11mail_status rc;
	unsigned int how = 0;
	size_t len = 0;

	rc = p11mail_queue_read_held(outbox, id, &env, &how, &msg, &len);
	if (rc == P11MAIL_ERR_FORMAT) {
		/* Retrying can never send it: say how to be rid of it. */
		p11m_log(P11MAIL_LOG_ERROR,
		         "%s can never be sent: remove the file %s (or move "
		         "it out of the outbox to keep it)",
		         id, e->path);
		goto out;
	}
	if (rc == P11MAIL_OK && how != 0) {
		rc = send_protect_held(acct, id, env, how, &msg, &len);
		if (rc != P11MAIL_OK)
			goto out; /* logged, naming it */
	}
	if (rc == P11MAIL_OK)
		rc = p11mail_smtp_submit(srv, env, msg, len);
	if (rc == P11MAIL_OK)
		rc = p11mail_maildir_remove(outbox, id);
	else
		p11m_log(P11MAIL_LOG_ERROR, "%s stays in the outbox", id);
out:
	p11mail_envelope_free(env);
	if (msg != NULL)
		p11mail_wipe(msg, len);
	free(msg);
	return rc;
}

enum p11mail_status p11mail_send_queue(struct p11mail_account *acct,
                                       size_t *sent, size_t *failed)
{
	struct p11mail_maildir_list *list = NULL;
	const char *outbox = p11mail_account_outbox(acct);
	struct p11mail_server srv;
	enum p11mail_status rc, one;
	int lock = -1;

	if (sent == NULL || failed == NULL)
		return P11MAIL_ERR_ARGS;
	*sent = 0;
	*failed = 0;
	if (acct == NULL)
		return P11MAIL_ERR_ARGS;
	rc = p11mail_account_server(acct, P11MAIL_SERVICE_SMTP, &srv);
	if (rc == P11MAIL_OK)
		rc = transport_check(&srv, TRANSPORT_SMTP);
	if (rc == P11MAIL_OK && (lock = send_lock(outbox)) < 0)
		rc = P11MAIL_ERR_IO;
	if (rc == P11MAIL_OK)
		rc = p11mail_maildir_list(outbox, &list);
	if (rc != P11MAIL_OK)
		goto out;
	for (size_t i = 0; i < list->count; i++) {
		one = send_queued(acct, &srv, &list->entries[i]);
		if (one == P11MAIL_OK)
			(*sent)++;
		else
			(*failed)++;
		/*
		 * Refused credentials, or a configuration fault, will fail
		 * the rest too.
		 */
		if (one == P11MAIL_ERR_AUTH || one == P11MAIL_ERR_CONFIG) {
			*failed += list->count - i - 1;
			rc = one;
			break;
		}
		if (one != P11MAIL_OK)
			rc = one;
	}
out:
	/*
	 * Without a server (the outbox is then the destination) or with a
	 * configuration fault, every message stays.
	 */
	if (rc != P11MAIL_OK && list == NULL &&
	    p11mail_maildir_list(outbox, &list) == P11MAIL_OK)
		*failed = list->count;
	send_unlock(lock);
	p11mail_maildir_list_free(list);
	return rc;
}
