/*
 * p11mail doctor: checks of a workstation (configuration, PKCS#11 modules,
 * tokens, identities, anchors, the store and its cache, the mail account),
 * each giving findings with the next step to take.  The checks only read:
 * they never create a store, never write to a token and log in only when
 * asked.  They never print; the command prints the findings.
 */
#ifndef P11MAIL_DOCTOR_H
#define P11MAIL_DOCTOR_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "p11mail.h"

enum doctor_level { DOCTOR_OK = 0, DOCTOR_WARN, DOCTOR_FAIL };

/* One finding: what was checked, what was found, what to do next. */
struct doctor_finding {
	enum doctor_level level;
	char *check; /* "config", "module", "token", "identity", ... */
	char *text;  /* the finding, one line */
	char *next;  /* the next step for warn and FAIL, else NULL */
};

/* Findings collected so far, and what the checks share. */
struct doctor {
	struct doctor_finding *findings;
	size_t count;
	size_t room;
	int nomem;        /* a finding was lost for want of memory */
	int login;        /* identities: log in to see private keys */
	int pin_file_bad; /* [token] pin-source failed its check */
	int64_t now;
	const struct p11mail_config *cfg; /* NULL when it did not load */
	const char *config_path;          /* the file in use, or NULL */
	char last_log[512];               /* the library's last message */
};

/* Days under which a certificate's coming expiry is a warning. */
#define DOCTOR_EXPIRY_DAYS 30

/*
 * Records a finding; next (may be NULL) is the step to take.  Out of memory
 * sets d->nomem and drops the finding.
 */
void doctor_add(struct doctor *d, enum doctor_level level, const char *check,
                const char *next, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

/* Frees the findings; the structure may be reused. */
void doctor_clear(struct doctor *d);

/* Formats t as "YYYY-MM-DD" (UTC) into buf, or "?" when it cannot. */
void doctor_date(int64_t t, char buf[16]);

/* Whole days from d->now until t, negative when t has passed. */
long doctor_days_until(const struct doctor *d, int64_t t);

/* -- doctor-cert.c: certificates -- */

/*
 * Checks a certificate's validity period and, for own identities (own set),
 * its fitness for S/MIME (keyUsage, extendedKeyUsage).  who names it in
 * the findings.
 */
void doctor_check_cert(struct doctor *d, const char *check, const char *who,
                       X509 *cert, int own);

/* -- doctor-p11.c: modules, tokens and keys -- */

struct doctor_p11;

/*
 * Lists the p11-kit registry, starts the configured module (or the
 * registry's) and records every token with its PIN state.  Returns what
 * later checks need (free with doctor_p11_free), NULL when out of memory.
 */
struct doctor_p11 *doctor_check_tokens(struct doctor *d);

/*
 * Checks that key_uri names exactly one key on a present token and that
 * the certificate's public key matches the token's key.
 */
void doctor_check_key(struct doctor *d, struct doctor_p11 *p11, const char *who,
                      const char *key_uri, X509 *cert);

/* Finalizes the modules and frees; accepts NULL. */
void doctor_p11_free(struct doctor_p11 *p11);

/* -- doctor-store.c: the workstation store -- */

/*
 * Checks the store in dir: file and directory modes, integrity, schema,
 * then its identities (with p11 for their keys), anchors and cache.
 */
void doctor_check_store(struct doctor *d, struct doctor_p11 *p11,
                        const char *dir);

/* -- doctor-config.c: configuration and mail account -- */

/*
 * Loads the configuration (path may be NULL for the usual places) and
 * records the finding; *cfg gets it, or NULL when it did not load.
 */
void doctor_check_config(struct doctor *d, const char *path,
                         struct p11mail_config **cfg);

/*
 * Checks the PIN file of [token] pin-source as the token core reads it:
 * present, a regular file, readable by its owner only, not empty.
 */
void doctor_check_pin_source(struct doctor *d);

/* Checks the [account] settings and the password file's mode. */
void doctor_check_account(struct doctor *d);

#endif /* P11MAIL_DOCTOR_H */
