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

struct ci_token_owner;

/* Everything a subcommand may need, opened on demand by the helpers. */
struct ci {
	const struct tool_globals *g;
	int yes;                    /* --yes: never ask, accept offers */
	int system;                 /* --system: the machine-wide store */
	int any_token_pin;          /* --use-configured-pin */
	int replace;                /* --replace (install, import) */
	const char *token_uri;      /* --token, or "pkcs11:" */
	struct p11mail_config *cfg; /* loaded by ci_begin */
	p11mail_store *store;       /* ci_store */
	tok_core *core;             /* ci_token */
	/* The configured PIN source, used through ci_token's guard. */
	tok_pin_fn pin_fn;
	void *pin_arg;
	const char *identity; /* [identity] address the PIN belongs to */
	struct ci_token_owner *owners; /* whose each token is */
	size_t n_owners;
};

struct option;

/*
 * Parses the options every subcommand takes (--yes, --system, --token URI,
 * --use-configured-pin, --help) plus extra ones, whose values go to on_extra
 * (returning 0, or -1 for an unknown option), with tool_getopt: a usage
 * error is printed as one line and "Try ... --help".  Returns -1 to go on
 * with optind at the operands, or an exit status to return at once.
 */
int ci_parse_options(struct ci *ci, int argc, char **argv,
                     const struct option *extra, size_t n_extra,
                     int (*on_extra)(void *arg, int c, const char *value),
                     void *arg, int (*usage)(void));

/*
 * Loads the configuration; returns an exit status (0 on success).  Refuses
 * --system together with --store (they name different stores).
 */
int ci_begin(struct ci *ci, const struct tool_globals *g);

/* Closes what ci_begin and the helpers opened. */
void ci_end(struct ci *ci);

/* Opens the store chosen by --store, --system and the configuration. */
int ci_store(struct ci *ci);

/*
 * Opens that store for reading only, creating nothing: *missing is set (and
 * ci->store stays NULL) when there is no store, and *dir gets its directory
 * (free it) for messages.  Returns an exit status.
 */
int ci_store_read(struct ci *ci, int *missing, char **dir);

/*
 * Starts the token core from [token] of the configuration.  When the
 * configuration names an [identity] address and a [token] pin-source, that
 * PIN is the person's of that address: unless --use-configured-pin, it is
 * given only to a token that shows a certificate for the address, or that
 * shows no certificate and is named by --token.  Any other token is refused
 * before its login, with a message naming the addresses it shows.
 */
int ci_token(struct ci *ci);

/*
 * Prints the token core's reason for rv and returns TOOL_EXIT_FAILURE;
 * prints nothing more when ci_token's guard refused the PIN.
 */
int ci_token_error(const char *what, CK_RV rv);

/* True once ci_token's guard refused the configured PIN to a token. */
int ci_pin_refused(void);

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

/*
 * Opens path for reading, or prints "cannot read PATH: reason" and returns
 * NULL.
 */
BIO *ci_open_file(const char *path);

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
 * one line per address saying what changed, on the token too when
 * token_changed; returns an exit status.  Shared by install, import and
 * register.
 */
int ci_record_identity(struct ci *ci, X509 *leaf, STACK_OF(X509) * chain,
                       const char *key_uri, int token_changed);

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
 * unless it is already there.  Another certificate of the key is replaced,
 * unless it stays valid longer than leaf and --replace was not given (then
 * nothing changes and the command fails).  *written is 1 when a new object
 * was added, *replaced when another certificate was replaced.  Returns an
 * exit status.
 */
int ci_put_cert(struct ci *ci, tok_key *key, X509 *leaf, int *written,
                int *replaced);

/*
 * Deletes from key's token the objects with key's id of the classes in what
 * (TOK_DELETE_*), after a later step failed; prints what happened.
 */
void ci_take_back(struct ci *ci, tok_key *key, unsigned int what);

/*
 * Refuses (with the reason) a certificate that can serve S/MIME neither for
 * signing nor for encryption: outside its validity period, keyUsage or
 * extendedKeyUsage not for mail, a weak key or signature.
 */
int ci_check_usable(X509 *x);

#endif /* P11MAIL_CI_H */
