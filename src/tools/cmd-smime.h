/*
 * What the sign, verify, encrypt and decrypt commands share: the options
 * naming keys and certificates, reading the message, writing the result
 * all at once, and reporting a verification.
 */
#ifndef P11MAIL_CMD_SMIME_H
#define P11MAIL_CMD_SMIME_H

#include <limits.h>
#include <stddef.h>
#include <stdio.h>

#include "p11mail.h"
#include "tool.h"

#define SMIME_MAX_FILES 32

/* Options of the S/MIME commands; which ones apply depends on the command. */
struct smime_opts {
	const char *key;   /* --key URI or file */
	const char *cert;  /* --cert FILE */
	const char *chain; /* --chain FILE */
	const char *out;   /* --out FILE; NULL: stdout */
	const char *in;    /* input file; NULL or "-": stdin */
	const char *anchors[SMIME_MAX_FILES];
	size_t anchor_count;
	const char *recipient_certs[SMIME_MAX_FILES];
	size_t recipient_cert_count;
	const char *to[SMIME_MAX_FILES]; /* --to addresses */
	char *to_owned[SMIME_MAX_FILES]; /* the same, to free */
	size_t to_count;
	unsigned int flags; /* enum p11mail_smime_flag */
	int json;
	int require_aead;
	const char *content_out;    /* verify --content FILE */
	const char *from;           /* --from ADDRESS: the store's identity */
	size_t max_size;            /* --max-size BYTES: sign, encrypt */
	struct p11mail_config *cfg; /* loaded by smime_setup */
	p11mail_store *store;       /* opened by smime_setup, or NULL */
	int setup_exit;             /* smime_setup failed: the exit status */
};

/* What an operation needs of its own identity. */
enum smime_need {
	SMIME_NEED_NOTHING = 0, /* verify */
	SMIME_NEED_CERT,        /* encrypt: the sender's certificate */
	SMIME_NEED_KEY          /* sign, decrypt, encrypt --sign */
};

/*
 * Parses the options a command allows (letters of "kcCoatAsSPOgrjenfm" as
 * listed in cmd-smime.c) into o.  Returns TOOL_EXIT_OK, or a usage error
 * already printed.  help is printed for --help with exit status -1.
 */
int smime_parse_opts(const struct tool_globals *g, int argc, char **argv,
                     const char *allowed, const char *help,
                     struct smime_opts *o);

/*
 * Makes the S/MIME context: the token from the configuration's [token]
 * section (else P11MAIL_MODULE, P11MAIL_INIT_ARGS), anchors and
 * certificates from the files in o and, when a store is in use, from its
 * anchors and certificate cache; the identity from --key/--cert, else the
 * store's identity for --from or [identity] address.  Keeps the
 * configuration and store in o (smime_opts_clear after freeing the
 * context).  Prints the error and returns NULL on failure, with the exit
 * status in o->setup_exit (TOOL_EXIT_USAGE for options that do not go
 * together, else TOOL_EXIT_FAILURE).
 */
p11mail_smime *smime_setup(const struct tool_globals *g, struct smime_opts *o,
                           enum smime_need need);

/*
 * Closes the store and frees the configuration smime_setup kept in o and
 * the --to addresses.
 */
void smime_opts_clear(struct smime_opts *o);

/* Reads all of the input (file or stdin) into a new buffer (free()). */
int smime_read_input(const char *path, unsigned char **out, size_t *len);

/*
 * Writes buf to path through a temporary file renamed into place, or to
 * stdout; nothing is left behind on failure.  Returns 0 or -1 (printed).
 */
int smime_write_output(const char *path, const unsigned char *buf, size_t len);

/*
 * Opens the input (file, or stdin when path is NULL or "-") as a regular
 * file descriptor, copying a pipe into a private temporary file first.
 * Returns the descriptor (close() it) or -1 after printing why.
 */
int smime_open_input(const char *path);

/* An output being written: a temporary file renamed into place at the end. */
struct smime_output {
	const char *path; /* NULL: stdout */
	char tmp[PATH_MAX];
	int fd;
};

/* Starts writing path (NULL or "-": stdout).  0, or -1 after printing. */
int smime_output_open(struct smime_output *out, const char *path);

/*
 * Puts the finished output in place (or copies it to stdout).  Returns 0,
 * or -1 after printing and removing the temporary file.
 */
int smime_output_commit(struct smime_output *out);

/* Drops an unfinished output; nothing is left behind. */
void smime_output_abort(struct smime_output *out);

/*
 * Prints a verification (summary lines or JSON, with extra_json appended
 * to the object) on fp and returns the matching exit status.
 */
int smime_report(const struct p11mail_verify_result *r, int json,
                 const char *extra_json, FILE *fp);

/* The four commands, registered in commands.def. */
int cmd_sign(const struct tool_globals *g, int argc, char **argv);
int cmd_verify(const struct tool_globals *g, int argc, char **argv);
int cmd_encrypt(const struct tool_globals *g, int argc, char **argv);
int cmd_decrypt(const struct tool_globals *g, int argc, char **argv);

#endif /* P11MAIL_CMD_SMIME_H */
