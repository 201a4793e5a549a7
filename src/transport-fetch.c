/*
 * Fetching into a local Maildir.  IMAP: the mailbox is examined for its
 * UIDVALIDITY, UIDs above the last one fetched are searched and fetched one
 * by one.  POP3: UIDL lists the messages, those whose UIDL was not fetched
 * before are retrieved.  Nothing is deleted on the server.  The state is
 * saved after every stored message, so an interrupted run neither loses
 * nor repeats more than the message in flight.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "maildir.h"
#include "transport.h"

/* Bounds on what a server may send. */
#define FETCH_MAX_MESSAGE (64u * 1024 * 1024)
#define FETCH_MAX_LISTING (16u * 1024 * 1024)

/* Mailbox names go into IMAP commands and URLs: keep them plain. */
static int fetch_mailbox_ok(const char *mb)
{
	if (mb == NULL || *mb == '\0' || strlen(mb) > 200)
		return 0;
	for (const char *p = mb; *p != '\0'; p++)
		if (!(*p == '.' || *p == '-' || *p == '_' || *p == '/' ||
		      (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z')))
			return 0;
	return 1;
}

/* "user@host:port/mailbox": the state key of one server account. */
static char *fetch_key(const struct p11mail_server *srv, const char *mailbox)
{
	size_t n = strlen(srv->host) + strlen(mailbox) + 32 +
	           (srv->user != NULL ? strlen(srv->user) : 0);
	char *key = malloc(n);

	if (key == NULL)
		return NULL;
	snprintf(key, n, "%s@%s:%u/%s", srv->user != NULL ? srv->user : "",
	         srv->host, srv->port, mailbox);
	for (char *p = key; *p != '\0'; p++)
		if ((unsigned char)*p < ' ')
			*p = '_';
	return key;
}

static int fetch_is_known(const struct fetch_known *known,
                          const struct transport_buf *msg)
{
	char *mid;
	int found = 0;

	if (known == NULL || known->count == 0)
		return 0;
	mid = message_id_of(msg->data, msg->len);
	for (size_t i = 0; mid != NULL && !found && i < known->count; i++)
		found = strcmp(known->ids[i], mid) == 0;
	free(mid);
	return found;
}

enum p11mail_status fetch_store(const char *maildir, const char *what,
                                const struct transport_buf *msg,
                                const struct fetch_known *known,
                                struct p11mail_fetch_stats *stats)
{
	const char *why = NULL;
	enum p11mail_status rc;
	char *id = NULL;

	rc = p11mail_message_check(msg->data, msg->len, &why);
	if (rc == P11MAIL_ERR_FORMAT) {
		p11m_log(P11MAIL_LOG_WARNING, "skipped %s: %s", what, why);
		stats->skipped++;
		return P11MAIL_OK;
	}
	if (rc == P11MAIL_OK && fetch_is_known(known, msg)) {
		p11m_trace("mail", "%s is already in the Maildir", what);
		stats->known++;
		return P11MAIL_OK;
	}
	if (rc == P11MAIL_OK)
		rc = p11mail_maildir_deliver(maildir, msg->data, msg->len, &id);
	if (rc == P11MAIL_OK) {
		p11m_trace("mail", "stored %s as %s", what, id);
		stats->fetched++;
	}
	free(id);
	return rc;
}

/* ---- IMAP -----------------------------------------------------------------
 */

static enum p11mail_status imap_uidvalidity(struct transport_conn *conn,
                                            const char *mailbox,
                                            uint64_t *validity)
{
	struct transport_buf buf = {.max = FETCH_MAX_LISTING};
	enum p11mail_status rc;
	char cmd[256];
	const char *p;

	*validity = 0;
	snprintf(cmd, sizeof(cmd), "EXAMINE \"%s\"", mailbox);
	rc = transport_request(conn, "", cmd, &buf);
	if (rc != P11MAIL_OK)
		goto out;
	p = buf.data != NULL ? strstr((char *)buf.data, "[UIDVALIDITY ") : NULL;
	if (p == NULL || sscanf(p + 13, "%" SCNu64, validity) != 1 ||
	    *validity == 0) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "%s did not report the UIDVALIDITY of %s",
		         conn->srv->host, mailbox);
		rc = P11MAIL_ERR_TRANSPORT;
	}
out:
	transport_buf_reset(&buf);
	return rc;
}

/* Parses "* SEARCH 3 7 9" into the UIDs above last, ascending. */
static enum p11mail_status imap_parse_search(const char *text, uint64_t last,
                                             uint64_t **uids, size_t *count)
{
	const char *p = text != NULL ? strstr(text, "* SEARCH") : NULL;
	uint64_t *list = NULL, *grown;
	enum p11mail_status rc = P11MAIL_OK;
	size_t n = 0;

	*uids = NULL;
	*count = 0;
	if (p == NULL)
		goto out;
	p += 8;
	while (*p == ' ') {
		char *end;
		uint64_t u = strtoull(p + 1, &end, 10);

		if (end == p + 1)
			break;
		p = end;
		if (u <= last)
			continue; /* "n:*" always matches the highest UID */
		grown = realloc(list, (n + 1) * sizeof(*grown));
		if (grown == NULL) {
			rc = P11MAIL_ERR_NOMEM;
			goto out;
		}
		list = grown;
		list[n++] = u;
	}
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && list[j - 1] > list[j]; j--) {
			uint64_t t = list[j];

			list[j] = list[j - 1];
			list[j - 1] = t;
		}
	*uids = list;
	*count = n;
	list = NULL;
out:
	free(list);
	return rc;
}

static enum p11mail_status imap_search(struct transport_conn *conn,
                                       const char *mailbox, uint64_t last,
                                       uint64_t **uids, size_t *count)
{
	struct transport_buf buf = {.max = FETCH_MAX_LISTING};
	enum p11mail_status rc;
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "UID SEARCH UID %" PRIu64 ":*", last + 1);
	rc = transport_request(conn, mailbox, cmd, &buf);
	if (rc == P11MAIL_OK)
		rc = imap_parse_search((char *)buf.data, last, uids, count);
	transport_buf_reset(&buf);
	return rc;
}

static void fetch_known_free(struct fetch_known *known)
{
	for (size_t i = 0; i < known->count; i++)
		free(known->ids[i]);
	free(known->ids);
	known->ids = NULL;
	known->count = 0;
}

/* Collects the Message-IDs of every message in the Maildir. */
static enum p11mail_status fetch_known_load(const char *maildir,
                                            struct fetch_known *known)
{
	struct p11mail_maildir_list *list = NULL;
	enum p11mail_status rc;

	rc = p11mail_maildir_list(maildir, &list);
	if (rc == P11MAIL_OK && list->count > 0) {
		known->ids = calloc(list->count, sizeof(*known->ids));
		if (known->ids == NULL)
			rc = P11MAIL_ERR_NOMEM;
	}
	for (size_t i = 0; rc == P11MAIL_OK && i < list->count; i++) {
		unsigned char *msg = NULL;
		size_t len = 0;
		char *mid;

		if (maildir_read_file(list->entries[i].path, FETCH_MAX_MESSAGE,
		                      &msg, &len) != P11MAIL_OK)
			continue; /* unreadable: cannot be a duplicate */
		mid = message_id_of(msg, len);
		if (mid != NULL)
			known->ids[known->count++] = mid;
		free(msg);
	}
	p11mail_maildir_list_free(list);
	return rc;
}

static enum p11mail_status imap_fetch_one(struct transport_conn *conn,
                                          const char *mailbox,
                                          uint64_t validity, uint64_t uid,
                                          const char *maildir,
                                          const struct fetch_known *known,
                                          struct p11mail_fetch_stats *stats)
{
	struct transport_buf buf = {.max = FETCH_MAX_MESSAGE};
	enum p11mail_status rc;
	char path[300], what[64];

	snprintf(path, sizeof(path), "%s;UIDVALIDITY=%" PRIu64 "/;UID=%" PRIu64,
	         mailbox, validity, uid);
	snprintf(what, sizeof(what), "IMAP message UID %" PRIu64, uid);
	rc = transport_request(conn, path, NULL, &buf);
	if (rc == P11MAIL_OK)
		rc = fetch_store(maildir, what, &buf, known, stats);
	transport_buf_reset(&buf);
	return rc;
}

static enum p11mail_status imap_fetch(struct transport_conn *conn,
                                      const char *mailbox, const char *maildir,
                                      struct fetch_state *st, const char *key,
                                      struct p11mail_fetch_stats *stats)
{
	uint64_t validity, known_validity, last, *uids = NULL;
	struct fetch_known known = {0};
	enum p11mail_status rc;
	size_t count = 0;

	rc = imap_uidvalidity(conn, mailbox, &validity);
	if (rc != P11MAIL_OK)
		return rc;
	fetch_state_imap_get(st, key, &known_validity, &last);
	if (known_validity != 0 && known_validity != validity) {
		p11m_log(P11MAIL_LOG_WARNING,
		         "%s: the mailbox %s was recreated (UIDVALIDITY "
		         "changed); looking at all of it again",
		         conn->srv->host, mailbox);
		last = 0;

		/* Its UIDs mean nothing now: recognise mail by Message-ID. */
		rc = fetch_known_load(maildir, &known);
	}
	if (rc == P11MAIL_OK)
		rc = imap_search(conn, mailbox, last, &uids, &count);
	stats->listed = count;
	for (size_t i = 0; rc == P11MAIL_OK && i < count; i++) {
		rc = imap_fetch_one(conn, mailbox, validity, uids[i], maildir,
		                    &known, stats);
		if (rc == P11MAIL_OK)
			rc = fetch_state_imap_set(st, key, validity, uids[i]);
		if (rc == P11MAIL_OK)
			rc = fetch_state_save(st);
	}
	if (rc == P11MAIL_OK && count == 0 && known_validity != validity)
		rc = fetch_state_imap_set(st, key, validity, last);
	if (rc == P11MAIL_OK && count == 0)
		rc = fetch_state_save(st);
	fetch_known_free(&known);
	free(uids);
	return rc;
}

/* ---- POP3 -----------------------------------------------------------------
 */

struct pop3_entry {
	unsigned long num;
	char *uidl;
};

static void pop3_entries_free(struct pop3_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].uidl);
	free(e);
}

/* Parses UIDL lines "NUM UIDL"; a UIDL is printable ASCII (RFC 1939). */
static enum p11mail_status pop3_parse_uidl(char *text, struct pop3_entry **out,
                                           size_t *count)
{
	struct pop3_entry *list = NULL, *grown;
	char *save = NULL, uidl[71];
	unsigned long num;
	size_t n = 0;

	*out = NULL;
	*count = 0;
	for (char *line = strtok_r(text, "\r\n", &save); line != NULL;
	     line = strtok_r(NULL, "\r\n", &save)) {
		if (sscanf(line, "%lu %70[!-~]", &num, uidl) != 2)
			continue;
		grown = realloc(list, (n + 1) * sizeof(*grown));
		if (grown == NULL)
			goto nomem;
		list = grown;
		list[n].num = num;
		list[n].uidl = strdup(uidl);
		if (list[n++].uidl == NULL)
			goto nomem;
	}
	*out = list;
	*count = n;
	return P11MAIL_OK;
nomem:
	pop3_entries_free(list, n);
	return P11MAIL_ERR_NOMEM;
}

static enum p11mail_status pop3_list(struct transport_conn *conn,
                                     struct pop3_entry **entries, size_t *count)
{
	struct transport_buf buf = {.max = FETCH_MAX_LISTING};
	enum p11mail_status rc;

	*entries = NULL;
	*count = 0;
	rc = transport_request(conn, "", "UIDL", &buf);
	if (rc == P11MAIL_OK && buf.data != NULL)
		rc = pop3_parse_uidl((char *)buf.data, entries, count);
	transport_buf_reset(&buf);
	return rc;
}

static enum p11mail_status pop3_fetch_one(struct transport_conn *conn,
                                          const struct pop3_entry *e,
                                          const char *maildir,
                                          struct p11mail_fetch_stats *stats)
{
	struct transport_buf buf = {.max = FETCH_MAX_MESSAGE};
	enum p11mail_status rc;
	char path[32], what[100];

	snprintf(path, sizeof(path), "%lu", e->num);
	snprintf(what, sizeof(what), "POP3 message %lu (UIDL %s)", e->num,
	         e->uidl);
	rc = transport_request(conn, path, NULL, &buf);
	if (rc == P11MAIL_OK)
		rc = fetch_store(maildir, what, &buf, NULL, stats);
	transport_buf_reset(&buf);
	return rc;
}

static enum p11mail_status pop3_fetch(struct transport_conn *conn,
                                      const char *maildir,
                                      struct fetch_state *st, const char *key,
                                      struct p11mail_fetch_stats *stats)
{
	struct pop3_entry *entries = NULL;
	enum p11mail_status rc;
	char **present = NULL;
	size_t count = 0;

	rc = pop3_list(conn, &entries, &count);
	for (size_t i = 0; rc == P11MAIL_OK && i < count; i++) {
		if (fetch_state_pop3_seen(st, key, entries[i].uidl))
			continue;
		stats->listed++;
		rc = pop3_fetch_one(conn, &entries[i], maildir, stats);
		if (rc == P11MAIL_OK)
			rc = fetch_state_pop3_add(st, key, entries[i].uidl);
		if (rc == P11MAIL_OK)
			rc = fetch_state_save(st);
	}
	if (rc != P11MAIL_OK)
		goto out;

	/* Forget what the server no longer holds, so the state stays small. */
	present = calloc(count + 1, sizeof(*present));
	if (present == NULL) {
		rc = P11MAIL_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < count; i++)
		present[i] = entries[i].uidl;
	fetch_state_pop3_keep(st, key, present, count);
	rc = fetch_state_save(st);
out:
	free(present);
	pop3_entries_free(entries, count);
	return rc;
}

/* ---- the public entry -----------------------------------------------------
 */

/* "dir/name", or NULL without memory. */
static char *fetch_path(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p != NULL)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/*
 * Removes the Maildir a failed first fetch created: its lock and state
 * files and its empty directories.  Anything else keeps it.
 */
static void fetch_undo_maildir(const char *maildir, const char *state_file)
{
	static const char *const names[] = {".p11mail-fetch-lock", "tmp", "new",
	                                    "cur"};
	char *p;

	unlink(state_file);
	for (size_t i = 0; i < P11M_ARRAY_SIZE(names); i++) {
		p = fetch_path(maildir, names[i]);
		if (p != NULL && i == 0)
			unlink(p);
		else if (p != NULL)
			rmdir(p);
		free(p);
	}
	rmdir(maildir);
}

enum p11mail_status p11mail_fetch(const struct p11mail_server *srv,
                                  enum p11mail_fetch_proto proto,
                                  const char *mailbox, const char *maildir,
                                  const char *state_file,
                                  struct p11mail_fetch_stats *stats)
{
	struct transport_conn conn = {0};
	struct fetch_state *st = NULL;
	enum p11mail_status rc;
	char *key = NULL;
	int lock = -1, created;

	if (stats == NULL)
		return P11MAIL_ERR_ARGS;
	memset(stats, 0, sizeof(*stats));
	if (srv == NULL || maildir == NULL || state_file == NULL)
		return P11MAIL_ERR_ARGS;
	if (mailbox == NULL)
		mailbox = "INBOX";
	if (proto == P11MAIL_FETCH_IMAP && !fetch_mailbox_ok(mailbox)) {
		p11m_log(P11MAIL_LOG_ERROR, "unsupported mailbox name '%s'",
		         mailbox);
		return P11MAIL_ERR_ARGS;
	}
	/* Two fetches into one Maildir would both take the same messages. */
	created = access(maildir, F_OK) != 0;
	lock = maildir_lock(maildir, ".p11mail-fetch-lock");
	rc = lock >= 0 ? P11MAIL_OK : P11MAIL_ERR_IO;
	if (rc == P11MAIL_OK)
		rc = fetch_state_load(state_file, &st);
	if (rc != P11MAIL_OK)
		goto out;
	key = fetch_key(srv, proto == P11MAIL_FETCH_IMAP ? mailbox : "");
	if (key == NULL) {
		rc = P11MAIL_ERR_NOMEM;
		goto out;
	}
	rc = transport_open(srv,
	                    proto == P11MAIL_FETCH_IMAP ? TRANSPORT_IMAP
	                                                : TRANSPORT_POP3,
	                    &conn);
	if (rc != P11MAIL_OK)
		goto out;
	if (proto == P11MAIL_FETCH_IMAP)
		rc = imap_fetch(&conn, mailbox, maildir, st, key, stats);
	else
		rc = pop3_fetch(&conn, maildir, st, key, stats);
out:
	/* A first fetch that failed before any message leaves no Maildir. */
	if (rc != P11MAIL_OK && created && stats->fetched == 0 && lock >= 0)
		fetch_undo_maildir(maildir, state_file);
	maildir_unlock(lock);
	transport_close(&conn);
	fetch_state_free(st);
	free(key);
	return rc;
}
