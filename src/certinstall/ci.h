/*
 * p11mail-certinstall: what its subcommands share.  Each subcommand is in
 * its own ci-*.c file; main.c holds the command table.
 */
#ifndef P11MAIL_CI_H
#define P11MAIL_CI_H

#include <stdio.h>

#include <openssl/x509.h>

#include "p11mail.h"
#include "token.h"
#include "tools/tool.h"

/* Everything a subcommand may need, opened on demand by the helpers. */
struct ci {
	const struct tool_globals *g;
	int yes;                    /* --yes: never ask, accept offers */
	int system;                 /* --system: the machine-wide store */
	const char *token_uri;      /* --token, or "pkcs11:" */
	struct p11mail_config *cfg; /* loaded by ci_begin */
	p11mail_store *store;       /* ci_store */
	tok_core *core;             /* ci_token */
};

struct option;

/*
 * Parses the options every subcommand takes (--yes, --system, --token URI,
 * --help) plus extra ones, whose values go to on_extra (returning 0, or -1
 * for an unknown option).  Returns -1 to go on with optind at the operands,
 * or an exit status to return at once.
 */
int ci_parse_options(struct ci *ci, int argc, char **argv,
                     const struct option *extra, size_t n_extra,
                     int (*on_extra)(void *arg, int c, const char *value),
                     void *arg, int (*usage)(void));

/* Loads the configuration; returns an exit status (0 on success). */
int ci_begin(struct ci *ci, const struct tool_globals *g);

/* Closes what ci_begin and the helpers opened. */
void ci_end(struct ci *ci);

/* Opens the store chosen by --store, --system and the configuration. */
int ci_store(struct ci *ci);

/* Starts the token core from [token] of the configuration. */
int ci_token(struct ci *ci);

/* Prints the token core's reason for rv and returns TOOL_EXIT_FAILURE. */
int ci_token_error(const char *what, CK_RV rv);

/*
 * Reads the certificates of a PEM or DER file, the first one being the
 * leaf.  Returns a new stack (free with
 * sk_X509_pop_free(sk, X509_free)) or NULL
 * after printing why.
 */
STACK_OF(X509) * ci_read_certs(const char *path);

/* DER of one certificate in a new buffer; returns 0 or -1. */
int ci_der(X509 *x, unsigned char **der, size_t *len);

/* The addresses a certificate names, as a stack of new strings. */
STACK_OF(OPENSSL_STRING) * ci_cert_addresses(X509 *x);

/* Frees what ci_cert_addresses returned; accepts NULL. */
void ci_addresses_free(STACK_OF(OPENSSL_STRING) * addresses);

/* Colon-separated uppercase SHA-256 of der for people (96 bytes). */
void ci_fingerprint_text(const unsigned char *der, size_t len, char text[96]);

/*
 * Asks a yes/no question on the terminal.  --yes answers yes; without a
 * terminal the answer is no.  Returns 1 for yes.
 */
int ci_confirm(const struct ci *ci, const char *question);

/* Prints a JSON string (quoted and escaped) to f. */
void ci_json_string(FILE *f, const char *s);

/* Writes the UTC date of t (YYYY-MM-DD, or "?") into buf. */
void ci_date_text(int64_t t, char buf[16]);

/* The subcommands. */
int ci_cmd_keygen(const struct tool_globals *g, int argc, char **argv);
int ci_cmd_install(const struct tool_globals *g, int argc, char **argv);
int ci_cmd_import(const struct tool_globals *g, int argc, char **argv);
int ci_cmd_register(const struct tool_globals *g, int argc, char **argv);
int ci_cmd_anchor(const struct tool_globals *g, int argc, char **argv);
int ci_cmd_list(const struct tool_globals *g, int argc, char **argv);
int ci_cmd_remove(const struct tool_globals *g, int argc, char **argv);
int ci_cmd_export(const struct tool_globals *g, int argc, char **argv);

/*
 * Records an identity for every address of leaf, with key_uri.  Prints
 * what changed; returns an exit status.  Shared by install, import and
 * register.
 */
int ci_record_identity(struct ci *ci, X509 *leaf, STACK_OF(X509) * chain,
                       const char *key_uri);

/*
 * Finds the private key on the tokens ci->token_uri matches whose public
 * key is the certificate's.  The tokens' public key and certificate
 * objects are compared without logging in; only a token whose object
 * matches is logged in to (and, when --token names a token and none
 * matches, that one token).  On success *key is referenced
 * (tok_key_unref).  Returns an exit status, having printed why on failure
 * unless quiet (a failure to open a matching key is always printed).
 */
int ci_find_key_for(struct ci *ci, X509 *cert, int quiet, tok_key **key);

/*
 * Writes the certificate to the token next to key (same id and label)
 * unless it is already there; an older certificate of the key is replaced.
 * *written is 1 when a new object was added.  Returns an exit status.
 */
int ci_put_cert(struct ci *ci, tok_key *key, X509 *leaf, int *written);

/*
 * Deletes from key's token the objects with key's id of the classes in what
 * (TOK_DELETE_*), after a later step failed; prints what happened.
 */
void ci_take_back(struct ci *ci, tok_key *key, unsigned int what);

/* Refuses (with a message) a certificate outside its validity period. */
int ci_check_validity(X509 *x);

#endif /* P11MAIL_CI_H */
