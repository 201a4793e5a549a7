/*
 * Inside the mail transport of libp11mail: the libcurl connection shared by
 * SMTP, IMAP and POP3, a growable receive buffer, and the fetch state file.
 * The public calls are in p11mail.h.
 */
#ifndef P11MAIL_TRANSPORT_H
#define P11MAIL_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "p11mail.h"

/* Bytes received from a server, bounded by max. */
struct transport_buf {
	unsigned char *data; /* NUL-terminated for convenience */
	size_t len;
	size_t cap;
	size_t max;
};

/* Which protocol a connection speaks. */
enum transport_proto { TRANSPORT_SMTP = 0, TRANSPORT_IMAP, TRANSPORT_POP3 };

/* One connection to one server; reused across requests. */
struct transport_conn {
	CURL *curl;
	const struct p11mail_server *srv;
	enum transport_proto proto;
	char *base; /* "imaps://127.0.0.1:993/" */
	int heard;  /* the server sent a line */
	int weird;  /* its first line was not of the protocol: give up */
	char errbuf[CURL_ERROR_SIZE];
};

/*
 * Checks what the configuration alone decides for srv: a valid host and
 * port, a readable CA file, no password without TLS except on loopback.
 * Logs what is wrong; P11MAIL_ERR_CONFIG then.  Nothing is sent.
 */
enum p11mail_status transport_check(const struct p11mail_server *srv,
                                    enum transport_proto proto);

/*
 * Prepares a connection to srv for proto: URL base, TLS policy, CA file,
 * credentials, timeouts and tracing.  Nothing is sent yet.  Close with
 * transport_close.  Refuses a login without TLS except on loopback.
 */
enum p11mail_status transport_open(const struct p11mail_server *srv,
                                   enum transport_proto proto,
                                   struct transport_conn *conn);

/* Releases the connection; accepts a zeroed or closed one. */
void transport_close(struct transport_conn *conn);

/*
 * Runs one request: path is appended to the base URL (already escaped),
 * custom is a raw protocol command or NULL; what the server sends is
 * appended to out.  Logs why and maps the failure to a status.
 */
enum p11mail_status transport_request(struct transport_conn *conn,
                                      const char *path, const char *custom,
                                      struct transport_buf *out);

/* Maps a libcurl result to a status and logs one line about it. */
enum p11mail_status transport_result(struct transport_conn *conn,
                                     CURLcode code);

/* Releases a buffer's memory and clears it (max is kept). */
void transport_buf_reset(struct transport_buf *buf);

/* The resolved store directory and the configuration of an account
 * (borrowed). */
const char *account_store_dir(const struct p11mail_account *acct);
const struct p11mail_config *account_config(const struct p11mail_account *acct);

/* Checks that an envelope has a sender and recipients without CR or LF. */
enum p11mail_status envelope_check(const struct p11mail_envelope *env);

/*
 * The fetch state: for each IMAP mailbox its UIDVALIDITY and the last UID
 * fetched, for each POP3 account the UIDLs already fetched.  Kept in a
 * small text file rewritten atomically.
 */
struct fetch_state;

/* Loads the state file (a missing file is an empty state). */
enum p11mail_status fetch_state_load(const char *path,
                                     struct fetch_state **out);

/* Releases a state; accepts NULL. */
void fetch_state_free(struct fetch_state *st);

/* Writes the state back: a new file renamed over the old one. */
enum p11mail_status fetch_state_save(struct fetch_state *st);

/* The UIDVALIDITY and last UID recorded for key; 0 and 0 when none. */
void fetch_state_imap_get(const struct fetch_state *st, const char *key,
                          uint64_t *validity, uint64_t *last);

/* Records the UIDVALIDITY and last UID for key. */
enum p11mail_status fetch_state_imap_set(struct fetch_state *st,
                                         const char *key, uint64_t validity,
                                         uint64_t last);

/* Returns 1 when uidl was already fetched for key. */
int fetch_state_pop3_seen(const struct fetch_state *st, const char *key,
                          const char *uidl);

/* Records uidl as fetched for key. */
enum p11mail_status fetch_state_pop3_add(struct fetch_state *st,
                                         const char *key, const char *uidl);

/*
 * Forgets the UIDLs of key that are not in present (count of them): the
 * server no longer has those messages.
 */
void fetch_state_pop3_keep(struct fetch_state *st, const char *key,
                           char *const *present, size_t count);

/* Message-IDs already in a Maildir, to recognise mail fetched before. */
struct fetch_known {
	char **ids;
	size_t count;
};

/*
 * Stores one fetched message in the Maildir after checking its form; a
 * malformed one is logged with what, and skipped (counted in stats).  One
 * whose Message-ID is in known (may be NULL) is counted and not stored.
 */
enum p11mail_status fetch_store(const char *maildir, const char *what,
                                const struct transport_buf *msg,
                                const struct fetch_known *known,
                                struct p11mail_fetch_stats *stats);

/* The Message-ID of a message, without its angle brackets (free()), or
 * NULL when it has none. */
char *message_id_of(const unsigned char *msg, size_t len);

#endif /* P11MAIL_TRANSPORT_H */
