/*
 * Inside the workstation store: the SQLite handle, transactions and the
 * certificate helpers shared by store*.c.  The API is in p11mail.h.
 */
#ifndef P11MAIL_STORE_H
#define P11MAIL_STORE_H

#include <stdint.h>

#include <openssl/x509.h>
#include <sqlite3.h>

#include "p11mail.h"

struct p11mail_store {
	sqlite3 *db;
	char *path;  /* the database file */
	int wait_ms; /* bounded wait for another process's lock */
};

/* The store's application_id: "P11M". */
#define P11M_STORE_APP_ID 0x5031314d

/* Current time in seconds; P11MAIL_STORE_NOW overrides it for tests. */
int64_t p11m_store_now(void);

/*
 * Starts a write transaction (BEGIN IMMEDIATE), waiting at most the store's
 * bounded time.  P11MAIL_ERR_STORE_BUSY after logging when it stays locked.
 */
enum p11mail_status p11m_store_begin(p11mail_store *st);

/* Commits (ok == P11MAIL_OK) or rolls back; returns ok or the commit error. */
enum p11mail_status p11m_store_end(p11mail_store *st, enum p11mail_status ok);

/* Maps an SQLite result to a status, logging what went wrong with what. */
enum p11mail_status p11m_store_fail(p11mail_store *st, int rc,
                                    const char *what);

/* Prepares sql; on failure logs and returns a status. */
enum p11mail_status p11m_store_prepare(p11mail_store *st, const char *sql,
                                       sqlite3_stmt **out);

/* What the store keeps about a certificate, taken from its DER. */
struct p11m_cert_facts {
	X509 *x509;
	char fingerprint[65];
	int64_t not_before;
	int64_t not_after;
	unsigned int key_usage;
	int is_ca;
	char *subject; /* RFC 2253, one line */
};

/* Parses der into facts; P11MAIL_ERR_FORMAT after logging if it is not. */
enum p11mail_status p11m_cert_facts(const unsigned char *der, size_t der_len,
                                    struct p11m_cert_facts *facts);

/* Releases what p11m_cert_facts allocated; accepts zeroed facts. */
void p11m_cert_facts_clear(struct p11m_cert_facts *facts);

/*
 * True when the certificate names address (SAN rfc822Name, or the DN
 * emailAddress when the certificate has no SAN addresses), case-blind.
 */
int p11m_cert_has_address(X509 *x509, const char *address);

/* Lower-cases an address into a new string; NULL when it is malformed. */
char *p11m_address_normalize(const char *address);

/* Fills hex (65 bytes) with the SHA-256 of der in lowercase hex. */
void p11m_fingerprint(const unsigned char *der, size_t der_len, char hex[65]);

/*
 * Normalizes a fingerprint or prefix given by a person (hex, colons
 * allowed, 8 to 64 digits) into out, lowercase.  Returns 0, or -1.
 */
int p11m_fingerprint_prefix(const char *in, char out[65]);

/*
 * Steps a change statement once.  Returns the store's error after logging
 * when the step fails, none when no row changed, P11MAIL_OK otherwise.
 */
enum p11mail_status p11m_store_change(p11mail_store *st, sqlite3_stmt *stmt,
                                      const char *what,
                                      enum p11mail_status none);

/*
 * Steps a query once and puts the integer in its first column into *value
 * (0 when there is no row).  Returns a status; what names it in messages.
 */
enum p11mail_status p11m_store_step_int(p11mail_store *st, sqlite3_stmt *stmt,
                                        const char *what, int *value);

/* Fills the zeroed elem from the current row; 0, or -1 out of memory. */
typedef int (*p11m_row_decode)(sqlite3_stmt *stmt, void *elem, void *arg);

/* Frees an array of n elements with what they point to. */
typedef void (*p11m_rows_free)(void *list, size_t n);

/* One kind of row a query returns, and how to collect it. */
struct p11m_row_kind {
	size_t size; /* of one element */
	p11m_row_decode decode;
	p11m_rows_free release;
	const char *what; /* names the rows in messages */
};

/*
 * Steps through stmt collecting every row into a new array of kind's
 * elements, decoded with arg.  On success the caller frees *out (with
 * kind->release); on failure nothing is left.  Returns a status.
 */
enum p11mail_status p11m_store_rows(p11mail_store *st, sqlite3_stmt *stmt,
                                    const struct p11m_row_kind *kind, void *arg,
                                    void **out, size_t *count);

/*
 * Runs sql with ?1 the address (normalized here; NULL binds NULL) and ?2
 * the current time if sql uses it, collecting every row as
 * p11m_store_rows does.  P11MAIL_ERR_ARGS for a malformed address.
 */
enum p11mail_status p11m_store_select(p11mail_store *st, const char *sql,
                                      const char *address,
                                      const struct p11m_row_kind *kind,
                                      void **out, size_t *count);

/* Copies a column blob into a new buffer; 0 or -1 when out of memory. */
int p11m_column_blob(sqlite3_stmt *stmt, int col, unsigned char **out,
                     size_t *len);

/* Copies a column text into a new string (NULL for SQL NULL). */
int p11m_column_text(sqlite3_stmt *stmt, int col, char **out);

/* Copies a fingerprint column into hex (65 bytes); "" for SQL NULL. */
void p11m_column_fingerprint(sqlite3_stmt *stmt, int col, char hex[65]);

/* The columns p11m_cert_collect expects, in order. */
#define P11M_CERT_COLUMNS                                                      \
	"address, fingerprint, cert, not_before, not_after, key_usage, "       \
	"smime_caps, source, trusted, first_seen, last_used, expires_at"

/*
 * Inserts or refreshes one cache row inside the caller's transaction;
 * address is normalized and f describes der.
 */
enum p11mail_status p11m_cache_upsert(p11mail_store *st, const char *address,
                                      const unsigned char *der, size_t der_len,
                                      const struct p11m_cert_facts *f,
                                      enum p11mail_cache_source source,
                                      const unsigned char *caps,
                                      size_t caps_len, int64_t expires_at);

/*
 * Runs sql, a query of P11M_CERT_COLUMNS with ?1 the address (normalized
 * here; NULL binds NULL) and ?2 the current time if it uses it, collecting
 * every row.  Free *certs with p11mail_certs_free; returns a status.
 */
enum p11mail_status p11m_cert_query(p11mail_store *st, const char *sql,
                                    const char *address,
                                    struct p11mail_cert **certs, size_t *count);

/*
 * Runs one statement (?1 address, ?2 text, ?3 value) inside the caller's
 * transaction; *changed (may be NULL) gets the number of rows changed.
 */
enum p11mail_status p11m_cache_change(p11mail_store *st, const char *sql,
                                      const char *address, const char *text,
                                      int64_t value, int *changed);

/* The same in a transaction of its own. */
enum p11mail_status p11m_cache_change_tx(p11mail_store *st, const char *sql,
                                         const char *address, const char *text,
                                         int64_t value, int *changed);

/*
 * The anchors that apply to mail of domain (those for every domain and
 * those limited to it; all of them when domain is NULL) as a new
 * X509_STORE.  Individually trusted certificates are accepted as anchors.
 */
enum p11mail_status p11m_store_anchors_x509(p11mail_store *st,
                                            const char *domain,
                                            X509_STORE **out);

/* The database file inside a store directory. */
#define P11M_STORE_FILE "store.db"

/*
 * The schema version this p11mail writes; store.c's migrations end there,
 * and store-check.c compares a file's version with it.
 */
#define P11M_STORE_SCHEMA 1

#endif /* P11MAIL_STORE_H */
