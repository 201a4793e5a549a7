/*
 * p11mail: S/MIME email whose private keys never leave a smart card or USB
 * token.  This is the public API of libp11mail.
 *
 * Conventions: functions return enum p11mail_status (P11MAIL_OK is 0);
 * out-parameters come last, are cleared on entry and set only on success;
 * objects made by *_new are released by the matching *_free, which accepts
 * NULL.  The library never writes to stdout or stderr: messages reach the
 * application through the log callback.
 */
#ifndef P11MAIL_H
#define P11MAIL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(P11MAIL_BUILDING)
#define P11MAIL_EXPORT __attribute__((visibility("default")))
#else
#define P11MAIL_EXPORT
#endif

/* Result of every library call.  p11mail_strerror() names each one. */
enum p11mail_status {
	P11MAIL_OK = 0,
	P11MAIL_ERR_NOMEM,     /* out of memory */
	P11MAIL_ERR_ARGS,      /* invalid argument (a programming error) */
	P11MAIL_ERR_IO,        /* a file or stream could not be read/written */
	P11MAIL_ERR_CONFIG,    /* configuration is missing or malformed */
	P11MAIL_ERR_URI,       /* a PKCS#11 URI is malformed */
	P11MAIL_ERR_MODULE,    /* a PKCS#11 module failed to load or start */
	P11MAIL_ERR_NO_TOKEN,  /* no token matches (card not inserted?) */
	P11MAIL_ERR_NO_KEY,    /* no key matches the URI */
	P11MAIL_ERR_AMBIGUOUS, /* the URI matches more than one object */
	P11MAIL_ERR_PIN_INCORRECT, /* the token rejected the PIN */
	P11MAIL_ERR_PIN_LOCKED,    /* the PIN is locked */
	P11MAIL_ERR_PIN_FINAL_TRY, /* one try left: login refused */
	P11MAIL_ERR_PIN_EXPIRED,   /* the PIN must be changed first */
	P11MAIL_ERR_PIN_CANCELLED, /* no PIN was given */
	P11MAIL_ERR_TOKEN_REMOVED, /* the token went away during the operation
	                            */
	P11MAIL_ERR_MECHANISM,     /* the token cannot do this operation */
	P11MAIL_ERR_TOKEN,         /* any other token failure */
	P11MAIL_ERR_CRYPTO,        /* a cryptographic operation failed */
	P11MAIL_ERR_DECRYPT,       /* decryption failed (one generic error) */
	P11MAIL_ERR_FORMAT,  /* input is not a well-formed message or object */
	P11MAIL_ERR_LIMIT,   /* input exceeds a configured bound */
	P11MAIL_ERR_NO_CERT, /* no usable certificate for a party */
	P11MAIL_ERR_CERT_EXPIRED, /* a certificate is expired or not yet valid
	                           */
	P11MAIL_ERR_UNTRUSTED, /* a certificate does not chain to an anchor */
	P11MAIL_ERR_SIGNATURE, /* a signature is invalid or cannot be checked */
	P11MAIL_ERR_STORE,     /* the workstation store failed */
	P11MAIL_ERR_STORE_BUSY, /* the store stayed locked by another process */
	P11MAIL_ERR_EXISTS,     /* the object is already present */
	P11MAIL_ERR_NOT_FOUND,  /* the object is not present */
	P11MAIL_ERR_TRANSPORT,  /* a mail server could not be reached */
	P11MAIL_ERR_AUTH,       /* a mail server refused the credentials */
	P11MAIL_ERR_DISCOVERY,  /* certificate discovery failed */
	P11MAIL_ERR_INTERNAL    /* a bug: please report it */
};

/* Returns a static English sentence for a status; never NULL. */
P11MAIL_EXPORT const char *p11mail_strerror(enum p11mail_status status);

/* Returns the library version string, for example "0.1.0". */
P11MAIL_EXPORT const char *p11mail_version(void);

/* Severity of a message passed to the log callback. */
enum p11mail_log_level {
	P11MAIL_LOG_ERROR = 0,
	P11MAIL_LOG_WARNING,
	P11MAIL_LOG_INFO,
	P11MAIL_LOG_DEBUG
};

/*
 * Receives every message the library has for people.  The text is one line
 * without a newline and is valid only during the call.
 */
typedef void (*p11mail_log_fn)(void *arg, enum p11mail_log_level level,
                               const char *text);

/*
 * Installs the process-wide log callback (NULL discards messages).  Debug
 * tracing is separate: P11MAIL_DEBUG=1 traces to stderr, P11MAIL_DEBUG=/path
 * appends to that file.  Not thread-safe: call it before starting threads.
 */
P11MAIL_EXPORT void p11mail_set_log(p11mail_log_fn fn, void *arg);

/* Overwrites len bytes at ptr with zeros in a way the compiler keeps. */
P11MAIL_EXPORT void p11mail_wipe(void *ptr, size_t len);

/* Wipes a NUL-terminated secret string and frees it; accepts NULL. */
P11MAIL_EXPORT void p11mail_secret_free(char *secret);

/*
 * Configuration and the workstation store.
 *
 * The configuration file is described in p11mail.conf(5).  The store is one
 * SQLite database per scope (per user or machine-wide) holding the three
 * roles of a workstation: identities (own certificates and the PKCS#11 URI
 * of their keys, never the keys), anchors (trusted CA certificates and
 * individually trusted certificates) and the certificate cache of
 * correspondents.  Fingerprints are SHA-256 of the DER, 64 lowercase hex
 * digits.  Times are seconds since the epoch; 0 means "none".
 */
struct p11mail_config;

/*
 * Loads the configuration from path (--config), or when NULL from
 * P11MAIL_CONFIG, $XDG_CONFIG_HOME/p11mail/p11mail.conf or
 * /etc/p11mail/p11mail.conf; no file at all gives an empty configuration.
 * Unknown keys and bad values fail with P11MAIL_ERR_CONFIG, logging
 * "FILE:LINE: reason".  Free with p11mail_config_free.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_config_load(const char *path, struct p11mail_config **out);

/* Parses configuration text; name stands for the file in messages. */
P11MAIL_EXPORT enum p11mail_status
p11mail_config_parse(const char *text, const char *name,
                     struct p11mail_config **out);

/* Releases a configuration; accepts NULL. */
P11MAIL_EXPORT void p11mail_config_free(struct p11mail_config *cfg);

/* The file the configuration came from, or NULL when there was none. */
P11MAIL_EXPORT const char *
p11mail_config_path(const struct p11mail_config *cfg);

/* The value of section.key, borrowed from cfg, or NULL when unset. */
P11MAIL_EXPORT const char *p11mail_config_get(const struct p11mail_config *cfg,
                                              const char *section,
                                              const char *key);

/* A yes/no key as 1 or 0, or def when unset. */
P11MAIL_EXPORT int p11mail_config_get_bool(const struct p11mail_config *cfg,
                                           const char *section, const char *key,
                                           int def);

/* A numeric key (a port, seconds), or def when unset. */
P11MAIL_EXPORT long p11mail_config_get_long(const struct p11mail_config *cfg,
                                            const char *section,
                                            const char *key, long def);

/*
 * Reads the secret a source names ("file:/path": the file's first line),
 * refusing a file that group or others may read.  Free the result with
 * p11mail_secret_free.  Fails with P11MAIL_ERR_CONFIG and a logged reason.
 */
P11MAIL_EXPORT enum p11mail_status p11mail_secret_read(const char *source,
                                                       char **out);

typedef struct p11mail_store p11mail_store;

/*
 * Decides the store directory: dir (--store) if given, else
 * /var/lib/p11mail when system (--system) is set, else P11MAIL_STORE, else
 * /var/lib/p11mail for [store] system = yes, else [store] path, else
 * $XDG_DATA_HOME/p11mail.  cfg may be NULL.  Free the result with free().
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_store_dir(const struct p11mail_config *cfg, const char *dir, int system,
                  char **out);

/*
 * Opens the store in dir, creating dir (0700) and the database (0600) when
 * missing.  A damaged or foreign file is reported (P11MAIL_ERR_STORE) and
 * never overwritten.  One thread at a time may use the handle; processes
 * share the store safely.  Close with p11mail_store_close.
 */
P11MAIL_EXPORT enum p11mail_status p11mail_store_open(const char *dir,
                                                      p11mail_store **out);

/* Closes the store; accepts NULL. */
P11MAIL_EXPORT void p11mail_store_close(p11mail_store *store);

/*
 * Sets how long a change waits for another process holding the store before
 * failing with P11MAIL_ERR_STORE_BUSY (default 10 s, or P11MAIL_STORE_WAIT
 * seconds).
 */
P11MAIL_EXPORT void p11mail_store_set_wait(p11mail_store *store, int millis);

/* One of this workstation's own identities. */
struct p11mail_identity {
	char *address;       /* lowercase */
	unsigned char *cert; /* DER */
	size_t cert_len;
	unsigned char *chain; /* issuers' DER certificates, concatenated */
	size_t chain_len;
	char *key_uri; /* RFC 7512 URI of the private key */
	char fingerprint[65];
	int64_t not_before;
	int64_t not_after;
	int64_t added;
};

/*
 * Records an identity (address, cert, chain, key_uri are read; the rest is
 * computed).  The certificate must carry the address.  The same identity
 * again changes nothing and returns P11MAIL_ERR_EXISTS.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_identity_add(p11mail_store *store, const struct p11mail_identity *id);

/*
 * The identities for address (all when NULL), valid ones first, newest
 * first.  An empty result is P11MAIL_OK with *count 0.  Free with
 * p11mail_identities_free.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_identity_find(p11mail_store *store, const char *address,
                      struct p11mail_identity **ids, size_t *count);

/*
 * Removes the identities of address, only the one with that fingerprint
 * when fingerprint is not NULL.  P11MAIL_ERR_NOT_FOUND when none matched.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_identity_remove(p11mail_store *store, const char *address,
                        const char *fingerprint);

/* Frees a list of identities; accepts NULL. */
P11MAIL_EXPORT void p11mail_identities_free(struct p11mail_identity *ids,
                                            size_t count);

/* A trust anchor: a CA certificate or one individually trusted one. */
struct p11mail_anchor {
	unsigned char *cert; /* DER */
	size_t cert_len;
	char fingerprint[65];
	char *subject; /* one line, RFC 2253 */
	char *domain;  /* the mail domain it is limited to, or NULL */
	int is_ca;
	int64_t not_after;
};

/*
 * Trusts a certificate as an anchor, for every domain (domain NULL) or for
 * one mail domain.  The same anchor again returns P11MAIL_ERR_EXISTS.
 */
P11MAIL_EXPORT enum p11mail_status p11mail_anchor_add(p11mail_store *store,
                                                      const unsigned char *der,
                                                      size_t der_len,
                                                      const char *domain);

/*
 * Removes the anchor with that fingerprint (or unique prefix of at least 8
 * digits), for every domain when domain is NULL.  P11MAIL_ERR_NOT_FOUND
 * or P11MAIL_ERR_AMBIGUOUS when the prefix does not name exactly one.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_anchor_remove(p11mail_store *store, const char *fingerprint,
                      const char *domain);

/* Every anchor; free with p11mail_anchors_free. */
P11MAIL_EXPORT enum p11mail_status
p11mail_anchor_list(p11mail_store *store, struct p11mail_anchor **anchors,
                    size_t *count);

/* Frees a list of anchors; accepts NULL. */
P11MAIL_EXPORT void p11mail_anchors_free(struct p11mail_anchor *anchors,
                                         size_t count);

struct x509_store_st;

/*
 * The anchors that apply to mail of domain (every anchor when NULL) as a
 * new OpenSSL X509_STORE for path validation; free with X509_STORE_free.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_store_anchors(p11mail_store *store, const char *domain,
                      struct x509_store_st **out);

/* Where a correspondent's certificate came from. */
enum p11mail_cache_source {
	P11MAIL_CACHE_EXCHANGED = 1, /* a verified signed message */
	P11MAIL_CACHE_DISCOVERED,    /* DNS CERT or LDAP */
	P11MAIL_CACHE_SENT_TO        /* a recipient of sent mail */
};

/* One certificate of the correspondents' cache. */
struct p11mail_cert {
	char *address;       /* lowercase */
	unsigned char *cert; /* DER */
	size_t cert_len;
	char fingerprint[65];
	int64_t not_before;
	int64_t not_after;
	unsigned int key_usage;    /* X509v3_KU_* bits; 0xffff when absent */
	unsigned char *smime_caps; /* SMIMECapabilities DER, may be NULL */
	size_t smime_caps_len;
	enum p11mail_cache_source source;
	int trusted;
	int64_t first_seen;
	int64_t last_used;
	int64_t expires_at; /* end of a discovery's lifetime, 0 for none */
};

/*
 * Caches a correspondent's certificate for address, or refreshes it (caps,
 * lifetime, last use) when already cached; the trusted flag is untouched.
 * The certificate must carry the address.  caps may be NULL.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_cache_put(p11mail_store *store, const char *address,
                  const unsigned char *der, size_t der_len,
                  enum p11mail_cache_source source, const unsigned char *caps,
                  size_t caps_len, int64_t expires_at);

/*
 * The cached certificates for address, valid now first and newest first;
 * discoveries past their lifetime are left out.  Free with
 * p11mail_certs_free.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_cache_find(p11mail_store *store, const char *address,
                   struct p11mail_cert **certs, size_t *count);

/* Notes that a cached certificate was just used (for sending). */
P11MAIL_EXPORT enum p11mail_status p11mail_cache_touch(p11mail_store *store,
                                                       const char *address,
                                                       const char *fingerprint);

/*
 * Records that discovery found nothing for address until expires_at
 * (a negative entry), or, with expires_at 0, forgets that.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_cache_put_negative(p11mail_store *store, const char *address,
                           int64_t expires_at);

/* Sets *negative to 1 when a live negative entry exists for address. */
P11MAIL_EXPORT enum p11mail_status
p11mail_cache_is_negative(p11mail_store *store, const char *address,
                          int *negative);

/* Frees a list of cached certificates; accepts NULL. */
P11MAIL_EXPORT void p11mail_certs_free(struct p11mail_cert *certs,
                                       size_t count);

/* What p11mail_trust_add did. */
enum p11mail_trust_outcome {
	P11MAIL_TRUST_ADDED = 1, /* the certificate is now trusted */
	P11MAIL_TRUST_UNCHANGED, /* it already was: nothing changed */
	P11MAIL_TRUST_CONFLICT   /* another one is trusted: nothing changed */
};

/* Flags of p11mail_trust_add. */
#define P11MAIL_TRUST_REPLACE 0x1 /* confirmed: replaces a trusted one */

/*
 * Trusts der as the certificate of address (which it must carry), caching
 * it if needed.  When a different certificate is already trusted for the
 * address, nothing changes unless flags has P11MAIL_TRUST_REPLACE:
 * *outcome is P11MAIL_TRUST_CONFLICT and previous gets its fingerprint.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_trust_add(p11mail_store *store, const char *address,
                  const unsigned char *der, size_t der_len,
                  enum p11mail_cache_source source, unsigned int flags,
                  enum p11mail_trust_outcome *outcome, char previous[65]);

/*
 * Withdraws trust from the certificates of address (only the one with that
 * fingerprint or prefix when not NULL); they stay cached.
 * P11MAIL_ERR_NOT_FOUND when nothing trusted matched.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_trust_remove(p11mail_store *store, const char *address,
                     const char *fingerprint);

/*
 * The trusted certificates, of address or all when NULL, sorted by address.
 * Free with p11mail_certs_free.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_trust_list(p11mail_store *store, const char *address,
                   struct p11mail_cert **certs, size_t *count);

/* One certificate that expires soon or has expired. */
struct p11mail_expiring {
	int identity; /* 1: own identity, 0: a correspondent's */
	int trusted;  /* correspondents: trusted flag */
	char *address;
	char fingerprint[65];
	int64_t not_after;
	int expired;    /* validity already ended */
	long days_left; /* whole days until the end, 0 when expired */
};

/*
 * Identities and cached certificates whose validity ends within days from
 * now (or already ended), soonest first.  Free with p11mail_expiring_free.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_certs_expiring(p11mail_store *store, int days,
                       struct p11mail_expiring **items, size_t *count);

/* Frees a list from p11mail_certs_expiring; accepts NULL. */
P11MAIL_EXPORT void p11mail_expiring_free(struct p11mail_expiring *items,
                                          size_t count);

/*
 * Certificate discovery (DNS CERT records and LDAP).  A discovered
 * certificate is only a candidate: it is chosen when it carries the address
 * (or its domain), is valid now, allows encryption and chains to an anchor
 * configured for the domain.
 */
struct x509_store_st;

/* Why a candidate was accepted or skipped. */
enum p11mail_candidate_verdict {
	P11MAIL_CAND_ACCEPTED = 0,  /* usable for the address */
	P11MAIL_CAND_MALFORMED,     /* not a parsable X.509 certificate */
	P11MAIL_CAND_WRONG_BINDING, /* names neither the address nor domain */
	P11MAIL_CAND_EXPIRED,       /* expired or not yet valid */
	P11MAIL_CAND_WRONG_USAGE,   /* key usage or EKU forbids S/MIME */
	P11MAIL_CAND_REVOKED,       /* listed in a configured CRL */
	P11MAIL_CAND_UNTRUSTED      /* no chain to an anchor, or weak */
};

/* One certificate found during discovery; owned by its result. */
struct p11mail_candidate {
	const char *source;  /* "dns", "ldap" or "cache" */
	const char *origin;  /* record or server and entry it came from */
	const char *binding; /* "address", "domain" or NULL */
	enum p11mail_candidate_verdict verdict;
	const char *reason;       /* one line explaining the verdict */
	const char *subject;      /* one-line subject DN, or NULL */
	const char *fingerprint;  /* SHA-256, colon-separated hex, or NULL */
	long long not_after;      /* end of validity (Unix time), or 0 */
	const unsigned char *der; /* the certificate */
	size_t der_len;
};

/*
 * Where discovery results are kept between runs; a store implements it.
 * get: returns P11MAIL_OK and sets *der and *len (malloc'd; NULL and 0 for
 * a cached "nothing found") and *source (malloc'd) for an entry still alive
 * at now; P11MAIL_ERR_NOT_FOUND when there is none.
 * put: records a result that lives until expires (der NULL: nothing found).
 */
struct p11mail_discover_cache {
	enum p11mail_status (*get)(void *arg, const char *address,
	                           long long now, unsigned char **der,
	                           size_t *len, char **source);
	enum p11mail_status (*put)(void *arg, const char *address,
	                           const unsigned char *der, size_t len,
	                           const char *source, long long expires);
	void *arg;
};

/* Settings of a discovery: resolver, anchors, CRLs, cache, limits. */
struct p11mail_discover;

/* The outcome of one discovery: every candidate and the chosen one. */
struct p11mail_discovery;

/* Makes discovery settings with defaults; free with p11mail_discover_free. */
P11MAIL_EXPORT enum p11mail_status
p11mail_discover_new(struct p11mail_discover **out);

/* Frees discovery settings; accepts NULL. */
P11MAIL_EXPORT void p11mail_discover_free(struct p11mail_discover *disc);

/*
 * Sends DNS queries to server ("HOST:PORT", "HOST", or "[V6]:PORT")
 * instead of the resolvers in /etc/resolv.conf; NULL restores them.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_discover_set_dns_server(struct p11mail_discover *disc,
                                const char *server);

/*
 * Adds the certificates and CRLs of store (the domain's trust anchors) to
 * those that judge candidates; they are copied, the store stays the caller's.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_discover_set_anchors(struct p11mail_discover *disc,
                             struct x509_store_st *store);

/* Adds the PEM certificates in path as anchors. */
P11MAIL_EXPORT enum p11mail_status
p11mail_discover_add_anchor_file(struct p11mail_discover *disc,
                                 const char *path);

/* Adds the PEM CRLs in path; candidates are then checked for revocation. */
P11MAIL_EXPORT enum p11mail_status
p11mail_discover_add_crl_file(struct p11mail_discover *disc, const char *path);

/*
 * Uses the workstation store (borrowed; it must outlive disc): its anchors
 * for the address's domain judge candidates, and its cache keeps results
 * (address-bound certificates and "nothing found").  NULL stops using it.
 */
struct p11mail_store;
P11MAIL_EXPORT enum p11mail_status
p11mail_discover_use_store(struct p11mail_discover *disc,
                           struct p11mail_store *store);

/* Sets the network timeout per query or connection, in seconds (1-60). */
P11MAIL_EXPORT enum p11mail_status
p11mail_discover_set_timeout(struct p11mail_discover *disc, int seconds);

/*
 * Keeps results in cache (copied; its arg must outlive disc): a chosen
 * certificate for ttl seconds, "nothing found" for negative_ttl seconds
 * (defaults 3600 and 300).  A cached certificate is judged again on use.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_discover_set_cache(struct p11mail_discover *disc,
                           const struct p11mail_discover_cache *cache, int ttl,
                           int negative_ttl);

/*
 * Looks up the certificates for address in DNS then LDAP, judges each one
 * and sets *out (free with p11mail_discovery_free).  Returns P11MAIL_OK
 * even when nothing was chosen: see p11mail_discovery_chosen.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_discover_run(struct p11mail_discover *disc, const char *address,
                     struct p11mail_discovery **out);

/* Returns how many candidates a discovery examined. */
P11MAIL_EXPORT size_t
p11mail_discovery_count(const struct p11mail_discovery *result);

/* Returns candidate i (owned by result), or NULL when out of range. */
P11MAIL_EXPORT const struct p11mail_candidate *
p11mail_discovery_get(const struct p11mail_discovery *result, size_t i);

/* Returns the chosen candidate (owned by result), or NULL for none. */
P11MAIL_EXPORT const struct p11mail_candidate *
p11mail_discovery_chosen(const struct p11mail_discovery *result);

/* Returns 1 when the result came from the cache without a lookup. */
P11MAIL_EXPORT int
p11mail_discovery_cached(const struct p11mail_discovery *result);

/* Returns how many lookups failed (server unreachable, bad answer). */
P11MAIL_EXPORT size_t
p11mail_discovery_failures(const struct p11mail_discovery *result);

/* Frees a discovery result; accepts NULL. */
P11MAIL_EXPORT void p11mail_discovery_free(struct p11mail_discovery *result);

/* Returns a short English word for a verdict ("accepted", "expired"...). */
P11MAIL_EXPORT const char *
p11mail_candidate_verdict_name(enum p11mail_candidate_verdict verdict);

/* ---- S/MIME: sign, verify, encrypt, decrypt ---------------------------- */

typedef struct p11mail_smime p11mail_smime;

/* Options of one operation, or'ed together; 0 means the defaults. */
enum p11mail_smime_flag {
	P11MAIL_SMIME_OPAQUE = 1u << 0, /* sign: signed-data, not multipart */
	P11MAIL_SMIME_PSS = 1u << 1,    /* sign: RSA-PSS instead of v1.5 */
	P11MAIL_SMIME_SHA512 = 1u << 2, /* sign: SHA-512 instead of SHA-256 */
	P11MAIL_SMIME_OAEP = 1u << 3,   /* encrypt: RSA-OAEP key transport */
	P11MAIL_SMIME_CBC = 1u << 4,    /* encrypt: AES-256-CBC, not GCM */
	P11MAIL_SMIME_SIGN = 1u << 5    /* encrypt: sign first */
};

/*
 * Where anchors and correspondents' certificates come from (the
 * workstation store).  anchors() hands every anchor to
 * p11mail_smime_add_anchor(); lookup() hands the certificates known for an
 * address to p11mail_smime_add_cert().  Either may be NULL.
 */
struct p11mail_cert_source {
	void *arg;
	enum p11mail_status (*anchors)(void *arg, p11mail_smime *smime);
	enum p11mail_status (*lookup)(void *arg, p11mail_smime *smime,
	                              const char *address);
};

/* Bounds on a message; 0 in a field keeps the default. */
struct p11mail_smime_limits {
	size_t max_size;      /* bytes of input (default 64 MiB) */
	size_t max_depth;     /* MIME nesting (default 16) */
	size_t max_parts;     /* MIME parts (default 256) */
	size_t max_header;    /* bytes of one header field (default 64 KiB) */
	size_t max_certs;     /* certificates in one CMS object (default 16) */
	size_t max_file_size; /* a file signed or encrypted by the _fd
	                         functions, which stream (default 64 GiB) */
};

/* Creates an S/MIME context.  Free with p11mail_smime_free. */
P11MAIL_EXPORT enum p11mail_status p11mail_smime_new(p11mail_smime **out);

/*
 * The same with the token module, C_Initialize arguments, PIN source and
 * PIN policy of cfg's [token] section (cfg may be NULL; unset values fall
 * back to P11MAIL_MODULE and P11MAIL_INIT_ARGS).  cfg must outlive the
 * context.
 */
struct p11mail_config;
P11MAIL_EXPORT enum p11mail_status
p11mail_smime_new_config(const struct p11mail_config *cfg, p11mail_smime **out);

/* Releases the context and the key it holds; accepts NULL. */
P11MAIL_EXPORT void p11mail_smime_free(p11mail_smime *smime);

/* Uses src (copied) for anchors and recipient certificates. */
P11MAIL_EXPORT void
p11mail_smime_set_source(p11mail_smime *smime,
                         const struct p11mail_cert_source *src);

/* Changes the bounds; fields left 0 keep their defaults. */
P11MAIL_EXPORT void
p11mail_smime_set_limits(p11mail_smime *smime,
                         const struct p11mail_smime_limits *limits);

/* Adds one trust anchor (DER or PEM); a CA or a single trusted cert. */
P11MAIL_EXPORT enum p11mail_status
p11mail_smime_add_anchor(p11mail_smime *smime, const unsigned char *cert,
                         size_t len);

/* Adds every certificate of a PEM or DER file as a trust anchor. */
P11MAIL_EXPORT enum p11mail_status
p11mail_smime_add_anchor_file(p11mail_smime *smime, const char *path);

/*
 * Adds a candidate certificate (DER or PEM) for encryption, filed under
 * each of its addresses.  Fails with P11MAIL_ERR_NO_CERT when it has none.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_smime_add_cert(p11mail_smime *smime, const unsigned char *cert,
                       size_t len);

/*
 * The same with the SMIMECapabilities (DER, may be NULL) the correspondent
 * last announced: encryption to it uses AES-256-CBC when they list no
 * AES-GCM.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_smime_add_cert_caps(p11mail_smime *smime, const unsigned char *cert,
                            size_t len, const unsigned char *caps,
                            size_t caps_len);

/* Adds every certificate of a PEM or DER file as a candidate. */
P11MAIL_EXPORT enum p11mail_status
p11mail_smime_add_cert_file(p11mail_smime *smime, const char *path);

/*
 * Sets the identity that signs and decrypts: key is a pkcs11: URI (or a
 * key file, for tests and software identities), cert_file its certificate
 * (NULL: the certificate stored next to the key on the token), chain_file
 * intermediates to include (may be NULL).  key may be NULL when only
 * encrypting: the certificate then gives the sender's own copy.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_smime_set_identity(p11mail_smime *smime, const char *key,
                           const char *cert_file, const char *chain_file);

/*
 * Adds every certificate of a PEM or DER file to the intermediates that
 * signing includes, next to those of the identity (for example one from
 * p11mail_mail_set_identity).  P11MAIL_ERR_FORMAT when it holds none.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_smime_add_chain_file(p11mail_smime *smime, const char *path);

/*
 * Signs a message (RFC 5322 headers and body).  The body is canonicalized
 * (CRLF, 7-bit transfer encodings) and signed; out receives the whole
 * signed message with CRLF line ends.  Free out with p11mail_smime_release.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_smime_sign(p11mail_smime *smime, unsigned int flags,
                   const unsigned char *in, size_t in_len, unsigned char **out,
                   size_t *out_len);

/*
 * Signs the message in the regular file in_fd (read from its start; it must
 * not change meanwhile) and writes the result to out_fd at its offset.
 * Memory stays flat in the message size: the canonical body goes through
 * a private temporary file.  On failure out_fd may hold partial output.
 */
P11MAIL_EXPORT enum p11mail_status p11mail_smime_sign_fd(p11mail_smime *smime,
                                                         unsigned int flags,
                                                         int in_fd, int out_fd);

/*
 * Encrypts a message to the addresses in to (none: its To and Cc) plus
 * the identity itself, signing it first with P11MAIL_SMIME_SIGN.  Every address
 * without a usable certificate is logged and the call fails with
 * P11MAIL_ERR_NO_CERT before anything is encrypted.  Free out with
 * p11mail_smime_release.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_smime_encrypt(p11mail_smime *smime, unsigned int flags,
                      const char *const *to, size_t to_count,
                      const unsigned char *in, size_t in_len,
                      unsigned char **out, size_t *out_len);

/*
 * The same from the regular file in_fd to out_fd (as p11mail_smime_sign_fd),
 * streaming: the plaintext and the ciphertext pass through private
 * temporary files that have no name, never through memory as a whole.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_smime_encrypt_fd(p11mail_smime *smime, unsigned int flags,
                         const char *const *to, size_t to_count, int in_fd,
                         int out_fd);

/*
 * Decrypts a message whose root (or single wrapper) is encrypted, with the
 * identity's key and certificate.  Every cryptographic failure is
 * P11MAIL_ERR_DECRYPT.  *authenticated is 1 for AES-GCM, 0 for CBC.
 * Nothing is released unless all of it decrypted.  Free out with
 * p11mail_smime_release, which wipes it.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_smime_decrypt(p11mail_smime *smime, const unsigned char *in,
                      size_t in_len, unsigned char **out, size_t *out_len,
                      int *authenticated);

/*
 * The same from the regular file in_fd (a message or bare CMS) to out_fd,
 * with memory bounded by about twice the ciphertext: the plaintext goes
 * to a private temporary file that has no name and reaches out_fd only
 * after all of it decrypted and, for GCM, the tag checked.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_smime_decrypt_fd(p11mail_smime *smime, int in_fd, int out_fd,
                         int *authenticated);

/* Wipes and frees a buffer returned by the functions above; accepts NULL. */
P11MAIL_EXPORT void p11mail_smime_release(unsigned char *buf, size_t len);

/* How far a signer is trusted. */
enum p11mail_trust {
	P11MAIL_TRUST_TRUSTED = 0,    /* chains to an anchor */
	P11MAIL_TRUST_NOT_TRUSTED,    /* valid, but no anchor vouches for it */
	P11MAIL_TRUST_UNTRUSTED_CHAIN /* the chain itself is broken */
};

/* The finding for one SignerInfo. */
struct p11mail_signer {
	char *addresses;      /* certificate addresses, comma-separated */
	char *subject;        /* certificate subject, one line */
	char fingerprint[65]; /* SHA-256, 64 lowercase hex digits, or "" */
	int valid;            /* signature, attributes, certificate policy */
	enum p11mail_trust trust;
	int sender_match;        /* From/Sender is one of the addresses */
	char *problem;           /* why not valid or not trusted, or NULL */
	int64_t signing_time;    /* claimed (never used for checks), or -1 */
	unsigned char *cert_der; /* the signer certificate, or NULL */
	size_t cert_der_len;
	unsigned char
	        *smime_caps; /* signed SMIMECapabilities (DER) of an
	                        intact signature, for the cache; or NULL */
	size_t smime_caps_len;
};

/* What the message as a whole amounts to. */
enum p11mail_verdict {
	P11MAIL_VERDICT_VALID = 0,   /* every signer valid and trusted */
	P11MAIL_VERDICT_NOT_TRUSTED, /* every signer valid, one not trusted */
	P11MAIL_VERDICT_INVALID,     /* a signer is invalid or uncheckable */
	P11MAIL_VERDICT_UNSIGNED     /* the message as a whole is not signed */
};

struct p11mail_verify_result {
	enum p11mail_verdict verdict;
	char *sender;      /* addr-spec of Sender, else From, or NULL */
	int opaque;        /* signed-data carried its own content */
	char *signed_part; /* "" the root; "2.1" when only a part is */
	char *problem;     /* message-level problem, or NULL */
	size_t signer_count;
	struct p11mail_signer *signers;
	unsigned char *content; /* the signed entity's bytes */
	size_t content_len;
};

/*
 * Verifies a message: multipart/signed, application/(x-)pkcs7-mime
 * signed-data, or bare DER.  Each SignerInfo is judged now against the
 * anchors.  Returns P11MAIL_OK whenever a verdict was reached (even an
 * invalid one); errors mean the input could not be examined at all.
 * Free the result with p11mail_verify_result_free.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_smime_verify(p11mail_smime *smime, const unsigned char *in,
                     size_t in_len, struct p11mail_verify_result **out);

/* Releases a verification result; accepts NULL. */
P11MAIL_EXPORT void
p11mail_verify_result_free(struct p11mail_verify_result *result);

/* ---- end of S/MIME ---------------------------------------------------- */

/* ---- Mail transport: SMTP submission, IMAP/POP3 fetch, Maildir -------- */

/* How the connection to a mail server is protected. */
enum p11mail_tls {
	P11MAIL_TLS_STARTTLS = 0, /* plain, then STARTTLS; refused without */
	P11MAIL_TLS_IMPLICIT,     /* TLS from the first byte (smtps, imaps) */
	P11MAIL_TLS_NONE          /* no TLS; a password only to loopback */
};

/*
 * One mail server.  Strings are borrowed; the server certificate is always
 * verified, against ca_file when set, else the system's anchors.
 */
struct p11mail_server {
	const char *host;
	unsigned int port; /* 0: the protocol's port for tls */
	enum p11mail_tls tls;
	const char *user;     /* NULL: no login */
	const char *password; /* secret; never logged or traced */
	const char *ca_file;  /* PEM file of anchors, or NULL */
	long timeout;         /* seconds to connect or stall; 0: 30 */
};

/* The SMTP envelope: sender and recipients (addr-specs, deduplicated). */
struct p11mail_envelope {
	char *from;
	char **rcpt;
	size_t rcpt_count;
};

/* Makes an envelope with sender from (may be NULL for now); free it with
 * p11mail_envelope_free. */
P11MAIL_EXPORT enum p11mail_status
p11mail_envelope_new(const char *from, struct p11mail_envelope **out);

/* Adds a recipient unless already there; P11MAIL_ERR_ARGS when invalid. */
P11MAIL_EXPORT enum p11mail_status
p11mail_envelope_add_rcpt(struct p11mail_envelope *env, const char *addr);

/* Releases an envelope; accepts NULL. */
P11MAIL_EXPORT void p11mail_envelope_free(struct p11mail_envelope *env);

/*
 * Reads the envelope of an RFC 5322 message: the sender is from when given,
 * else Sender, else the single From; recipients are To, Cc and Bcc.
 * P11MAIL_ERR_FORMAT (logged) when there is no sender or no recipient.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_message_envelope(const unsigned char *msg, size_t len, const char *from,
                         struct p11mail_envelope **out);

/*
 * The sender of a message (Sender, else the single From) as an addr-spec
 * in *out (free()); P11MAIL_ERR_NOT_FOUND when there is none.  Logs only
 * when the message is malformed.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_message_sender(const unsigned char *msg, size_t len, char **out);

/*
 * Copies a message without its Bcc and Resent-Bcc fields, with CRLF line
 * ends and a final CRLF; nothing else changes.  Free out with free().
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_message_strip_bcc(const unsigned char *msg, size_t len,
                          unsigned char **out, size_t *out_len);

/*
 * Checks that msg is a mail message (starts with a header field, parses,
 * has From).  P11MAIL_ERR_FORMAT with a static reason in *reason when not;
 * with reason NULL the reason is logged instead.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_message_check(const unsigned char *msg, size_t len,
                      const char **reason);

/* What the root of a message is, from its Content-Type alone. */
enum p11mail_message_kind {
	P11MAIL_MESSAGE_PLAIN = 0,
	P11MAIL_MESSAGE_SIGNED,   /* multipart/signed or signed-data */
	P11MAIL_MESSAGE_ENCRYPTED /* enveloped or authEnveloped data */
};

/* What the inbox shows of a message: one-line texts, UTF-8. */
struct p11mail_message_summary {
	char *from;    /* the From field as display text */
	char *date;    /* "YYYY-MM-DD HH:MM" UTC, or "" */
	int64_t time;  /* the Date as Unix time, or 0 */
	char *subject; /* decoded */
	enum p11mail_message_kind kind;
};

/* Summarizes a message (P11MAIL_ERR_FORMAT when malformed, logged). */
P11MAIL_EXPORT enum p11mail_status
p11mail_message_summarize(const unsigned char *msg, size_t len,
                          struct p11mail_message_summary **out);

/* Releases a summary; accepts NULL. */
P11MAIL_EXPORT void
p11mail_message_summary_free(struct p11mail_message_summary *summary);

/*
 * Submits msg (CRLF line ends) over SMTP with env.  One refused recipient
 * fails the whole submission.  P11MAIL_ERR_TRANSPORT when the server
 * cannot be reached or refuses, P11MAIL_ERR_AUTH for refused credentials.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_smtp_submit(const struct p11mail_server *srv,
                    const struct p11mail_envelope *env,
                    const unsigned char *msg, size_t len);

/*
 * Delivers msg into the Maildir dir (created when missing): written into
 * tmp/, flushed, moved into new/.  Sets *id, the unique name (free()).
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_maildir_deliver(const char *dir, const unsigned char *msg, size_t len,
                        char **id);

/* One message of a Maildir. */
struct p11mail_maildir_entry {
	char *id;      /* unique name, without the ":2," flags */
	char *path;    /* the file in new/ or cur/ */
	int64_t mtime; /* delivery time */
	size_t size;
	int seen; /* the S flag is set */
};

/* The messages of a Maildir, oldest first. */
struct p11mail_maildir_list {
	size_t count;
	struct p11mail_maildir_entry *entries;
};

/* Lists new/ and cur/ (a missing Maildir is empty); free the list with
 * p11mail_maildir_list_free. */
P11MAIL_EXPORT enum p11mail_status
p11mail_maildir_list(const char *dir, struct p11mail_maildir_list **out);

/* Releases a list; accepts NULL. */
P11MAIL_EXPORT void
p11mail_maildir_list_free(struct p11mail_maildir_list *list);

/* Reads message id (64 MiB at most) into out (free()); NOT_FOUND if gone. */
P11MAIL_EXPORT enum p11mail_status p11mail_maildir_read(const char *dir,
                                                        const char *id,
                                                        unsigned char **out,
                                                        size_t *out_len);

/* Removes message id from the Maildir. */
P11MAIL_EXPORT enum p11mail_status p11mail_maildir_remove(const char *dir,
                                                          const char *id);

/*
 * Queues msg with its envelope in the outbox Maildir; *id names it
 * (free()).  The envelope is stored as X-P11mail-Envelope-* lines first.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_queue_add(const char *outbox, const struct p11mail_envelope *env,
                  const unsigned char *msg, size_t len, char **id);

/* Reads a queued message: its envelope and the message (free() both). */
P11MAIL_EXPORT enum p11mail_status
p11mail_queue_read(const char *outbox, const char *id,
                   struct p11mail_envelope **env, unsigned char **msg,
                   size_t *len);

/* Which protocol a fetch speaks. */
enum p11mail_fetch_proto {
	P11MAIL_FETCH_IMAP = 0, /* UIDs above the last one fetched */
	P11MAIL_FETCH_POP3      /* UIDLs not fetched before */
};

/* What one fetch did; filled even when it stopped on an error. */
struct p11mail_fetch_stats {
	size_t listed;  /* new messages on the server */
	size_t fetched; /* stored in the Maildir */
	size_t skipped; /* malformed, reported and left on the server */
	size_t known;   /* already in the Maildir (same Message-ID) */
};

/*
 * Fetches new messages of mailbox (IMAP; NULL: INBOX) into maildir,
 * remembering in state_file what was fetched so that a re-run fetches
 * nothing twice.  Nothing is deleted on the server.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_fetch(const struct p11mail_server *srv, enum p11mail_fetch_proto proto,
              const char *mailbox, const char *maildir, const char *state_file,
              struct p11mail_fetch_stats *stats);

/* The mail account of the configuration ([account]). */
struct p11mail_account;

/* The servers of an account. */
enum p11mail_service {
	P11MAIL_SERVICE_SMTP = 0,
	P11MAIL_SERVICE_IMAP,
	P11MAIL_SERVICE_POP3
};

/*
 * Reads [account] of cfg (borrowed: it must outlive the account).  The
 * Maildir and outbox default to store_dir/Maildir and store_dir/outbox.
 * Free with p11mail_account_free, which wipes the password.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_account_load(const struct p11mail_config *cfg, const char *store_dir,
                     struct p11mail_account **out);

/* Releases an account and wipes its password; accepts NULL. */
P11MAIL_EXPORT void p11mail_account_free(struct p11mail_account *acct);

/* The account's address, Maildir, outbox and fetch state file (borrowed;
 * the address may be NULL). */
P11MAIL_EXPORT const char *
p11mail_account_address(const struct p11mail_account *acct);
P11MAIL_EXPORT const char *
p11mail_account_maildir(const struct p11mail_account *acct);
P11MAIL_EXPORT const char *
p11mail_account_outbox(const struct p11mail_account *acct);
P11MAIL_EXPORT const char *
p11mail_account_state_file(const struct p11mail_account *acct);

/* Overrides the CA file, the Maildir, or a server's TLS mode. */
P11MAIL_EXPORT enum p11mail_status
p11mail_account_set_ca_file(struct p11mail_account *acct, const char *path);
P11MAIL_EXPORT enum p11mail_status
p11mail_account_set_maildir(struct p11mail_account *acct, const char *dir);
P11MAIL_EXPORT enum p11mail_status
p11mail_account_set_tls(struct p11mail_account *acct,
                        enum p11mail_service service, enum p11mail_tls tls);

/*
 * Describes one server of the account in *out (strings borrowed from
 * acct), reading the password from its source on first use.
 * P11MAIL_ERR_NOT_FOUND when that server is not configured.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_account_server(struct p11mail_account *acct,
                       enum p11mail_service service,
                       struct p11mail_server *out);

/*
 * Sends msg: queues it in the outbox, submits it when an SMTP server is
 * configured and removes it from the queue once accepted (*sent = 1).
 * Whenever the message stays in the outbox, even on failure, *queued_id
 * names it (free()).
 */
P11MAIL_EXPORT enum p11mail_status p11mail_send_message(
        struct p11mail_account *acct, const struct p11mail_envelope *env,
        const unsigned char *msg, size_t len, int *sent, char **queued_id);

/*
 * Retries every queued message; each one the server accepts is removed.
 * Counts are set even on failure; the status is that of the last failure.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_send_queue(struct p11mail_account *acct, size_t *sent, size_t *failed);

/*
 * Loads the configuration (config_path, or the default search), decides
 * the store directory (store_dir, or the default) and reads the account.
 * Free *cfg after *out: the account borrows from it.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_account_open(const char *config_path, const char *store_dir,
                     struct p11mail_config **cfg, struct p11mail_account **out);

/*
 * Reads a whole message from path ("-" or NULL: standard input), at most
 * max bytes (P11MAIL_ERR_LIMIT beyond).  Free out with free().
 */
P11MAIL_EXPORT enum p11mail_status p11mail_message_load(const char *path,
                                                        size_t max,
                                                        unsigned char **out,
                                                        size_t *out_len);

/*
 * Makes an S/MIME context for mail: the store's anchors and individually
 * trusted certificates are its anchors; the cached certificates of each
 * address are candidates for encryption.  All is copied; free the context
 * with p11mail_smime_free.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_mail_smime_new(p11mail_store *store, const char *const *addresses,
                       size_t count, p11mail_smime **out);

/*
 * Gives smime the identity of address from the store: its certificate and
 * chain, and with need_key its key URI, with "?pin-source=" pin_source
 * added when the URI has no query.  P11MAIL_ERR_NO_KEY when none.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_mail_set_identity(p11mail_smime *smime, p11mail_store *store,
                          const char *address, const char *pin_source,
                          int need_key);

/*
 * Auto-trust of the mail workstation: trusts, for each address, the cached
 * certificate that encryption to it uses (one that validates against the
 * anchors now), recorded as a recipient of sent mail.  A different
 * certificate already trusted is left alone (logged).  *added counts the
 * new ones.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_mail_trust_recipients(p11mail_store *store, const char *sender,
                              const char *const *addresses, size_t count,
                              size_t *added);

/* How p11mail_mail_protect treats a message; or'ed together. */
enum p11mail_protect {
	P11MAIL_PROTECT_SIGN = 1u << 0,    /* sign with the sender's identity */
	P11MAIL_PROTECT_ENCRYPT = 1u << 1, /* encrypt; fail without certs */
	P11MAIL_PROTECT_AUTO = 1u << 2     /* sign; encrypt when possible */
};

/*
 * Signs and/or encrypts msg (Bcc already removed) for env with the store
 * in store_dir (NULL: the default): the identity of env->from, the cached
 * certificates of the recipients, the PIN from [token] pin-source.  Sets
 * *out (free()) and *encrypted.  Encryption names every recipient without
 * a usable certificate and fails with P11MAIL_ERR_NO_CERT, unless AUTO,
 * which then signs only and logs a warning.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_mail_protect(const struct p11mail_config *cfg, const char *store_dir,
                     const struct p11mail_envelope *env, unsigned int how,
                     const unsigned char *msg, size_t len, unsigned char **out,
                     size_t *out_len, int *encrypted);

/* ---- end of mail transport -------------------------------------------- */

/* ---- examining a store (src/store-check.c) ---------------------------- */

/*
 * The database file of the store in dir, which may not exist, in a new
 * string (free()).  NULL when out of memory or dir is NULL.
 */
P11MAIL_EXPORT char *p11mail_store_file(const char *dir);

/*
 * Opens the existing store in dir read-only: nothing is created, migrated
 * or repaired, so that a damaged, foreign or newer file can be examined.
 * P11MAIL_ERR_NOT_FOUND when there is none.  Close with p11mail_store_close.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_store_open_readonly(const char *dir, p11mail_store **out);

/* What p11mail_store_check found. */
struct p11mail_store_report {
	int foreign;        /* an SQLite database of another program */
	int damaged;        /* unreadable, or SQLite's check failed */
	char detail[256];   /* what SQLite said when damaged */
	int schema;         /* the file's schema version; -1 when unknown */
	int schema_current; /* the version this p11mail writes */
};

/*
 * Checks that the store is p11mail's, intact, and of which schema version,
 * into *report.  Returns P11MAIL_OK when the checks ran, whatever they found.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_store_check(p11mail_store *store, struct p11mail_store_report *report);

/*
 * Every cached certificate of address (all addresses when NULL), expired
 * ones and discoveries past their lifetime included, by address then newest
 * first.  Free with p11mail_certs_free.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_cache_list(p11mail_store *store, const char *address,
                   struct p11mail_cert **certs, size_t *count);

/* ---- end of examining a store ------------------------------------------ */

/* ---- mail held for its token (src/queue.c, src/transport-send.c) ---- */

/*
 * Queues msg unprotected in the outbox with a mark asking for how
 * (P11MAIL_PROTECT_*; 0 is p11mail_queue_add): p11mail_send_queue signs
 * and/or encrypts it before submitting it.  *id names it (free()).
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_queue_add_held(const char *outbox, const struct p11mail_envelope *env,
                       unsigned int how, const unsigned char *msg, size_t len,
                       char **id);

/*
 * Reads a queued message and the protection it waits for (*how, 0 for
 * none); free() *msg after wiping it, free *env.  p11mail_queue_read
 * refuses a held message with P11MAIL_ERR_FORMAT.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_queue_read_held(const char *outbox, const char *id,
                        struct p11mail_envelope **env, unsigned int *how,
                        unsigned char **msg, size_t *len);

/*
 * True when p11mail_mail_protect failed with st only because the token
 * is not there: the message can be held with p11mail_queue_add_held.
 */
P11MAIL_EXPORT int p11mail_protect_can_wait(enum p11mail_status st);

/*
 * p11mail_mail_smime_new with the token of cfg's [token] section (module,
 * init-args, PIN policy) for signing and decryption; cfg NULL: the
 * environment, as p11mail_mail_smime_new does.
 */
P11MAIL_EXPORT enum p11mail_status p11mail_mail_smime_new_config(
        const struct p11mail_config *cfg, p11mail_store *store,
        const char *const *addresses, size_t count, p11mail_smime **out);

/* ---- end of mail held for its token ----------------------------------- */

/* ---- checking a workstation (p11mail doctor) ------------------------- */

/* How one check came out. */
enum p11mail_doctor_level {
	P11MAIL_DOCTOR_OK = 0, /* as it should be */
	P11MAIL_DOCTOR_WARN,   /* works, but needs attention */
	P11MAIL_DOCTOR_FAIL    /* does not work */
};

/* What to check; a zeroed structure checks the usual places. */
struct p11mail_doctor_options {
	const char *config_path; /* NULL: as p11mail_config_load */
	const char *store_dir;   /* NULL: [store] path or the default */
	int login;               /* log in to the tokens to see private keys */
};

/* One finding; its strings belong to the report. */
struct p11mail_doctor_finding {
	enum p11mail_doctor_level level;
	const char *check; /* "config", "module", "token", "identity"... */
	const char *text;  /* what was found, one line */
	const char *next;  /* the next step for warn and fail, else NULL */
};

typedef struct p11mail_doctor_report p11mail_doctor_report;

/*
 * Checks the configuration, PKCS#11 modules, tokens, identities and their
 * keys, anchors, the store, its cache and the mail account, into *out.
 * The checks only read; they log in only when options->login.  Library
 * messages during the run go into the findings, not to the log callback.
 * P11MAIL_OK whatever was found.  Free with p11mail_doctor_report_free.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_doctor_run(const struct p11mail_doctor_options *options,
                   p11mail_doctor_report **out);

/* Number of findings in report, in the order the checks made them. */
P11MAIL_EXPORT size_t p11mail_doctor_count(const p11mail_doctor_report *report);

/*
 * Finding i of report into *out; its strings live as long as the report.
 * P11MAIL_ERR_ARGS when i is not below p11mail_doctor_count.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_doctor_finding(const p11mail_doctor_report *report, size_t i,
                       struct p11mail_doctor_finding *out);

/*
 * True when findings were lost for want of memory: the report is then
 * incomplete and should count as failed.
 */
P11MAIL_EXPORT int
p11mail_doctor_incomplete(const p11mail_doctor_report *report);

/* Frees a report and its findings; accepts NULL. */
P11MAIL_EXPORT void p11mail_doctor_report_free(p11mail_doctor_report *report);

/* ---- end of checking a workstation ----------------------------------- */

/* ---- S/MIME: decryption policy and remembered capabilities ------------- */

/*
 * When on is non-zero, decryption refuses unauthenticated (AES-CBC)
 * EnvelopedData before any key operation, with P11MAIL_ERR_FORMAT.
 */
P11MAIL_EXPORT void p11mail_smime_set_require_aead(p11mail_smime *smime,
                                                   int on);

/*
 * Checks, without any key, that the message or bare CMS in the regular
 * file in_fd is AuthEnvelopedData (AES-GCM).  Returns P11MAIL_OK if so,
 * P11MAIL_ERR_FORMAT for CBC or anything else, P11MAIL_ERR_LIMIT when it
 * is larger than the limits allow.
 */
P11MAIL_EXPORT enum p11mail_status
p11mail_smime_check_aead_fd(p11mail_smime *smime, int in_fd);

/* ---- end of S/MIME decryption policy and remembered capabilities ------- */

#ifdef __cplusplus
}
#endif

#endif /* P11MAIL_H */
