/*
 * What the sign, verify, encrypt and decrypt commands share: the options
 * naming keys and certificates, reading the message, writing the result
 * all at once, and reporting a verification.
 */
#ifndef P11MAIL_CMD_SMIME_H
#define P11MAIL_CMD_SMIME_H

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
	const char *to[SMIME_MAX_FILES];
	size_t to_count;
	unsigned int flags; /* enum p11mail_smime_flag */
	int json;
	int require_aead;
	const char *content_out; /* verify --content FILE */
};

/*
 * Parses the options a command allows (letters of "kcCoatAsSPOgrjen" as
 * listed in cmd-smime.c) into o.  Returns TOOL_EXIT_OK, or a usage error
 * already printed.  help is printed for --help with exit status -1.
 */
int smime_parse_opts(const struct tool_globals *g, int argc, char **argv,
                     const char *allowed, const char *help,
                     struct smime_opts *o);

/*
 * Makes the S/MIME context with anchors, recipient certificates and the
 * identity from o.  Prints the error and returns NULL on failure.
 */
p11mail_smime *smime_setup(const struct smime_opts *o, int need_key);

/* Reads all of the input (file or stdin) into a new buffer (free()). */
int smime_read_input(const char *path, unsigned char **out, size_t *len);

/*
 * Writes buf to path through a temporary file renamed into place, or to
 * stdout; nothing is left behind on failure.  Returns 0 or -1 (printed).
 */
int smime_write_output(const char *path, const unsigned char *buf, size_t len);

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
