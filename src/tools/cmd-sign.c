/* p11mail sign: sign a message with a key that stays on the token. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cmd-smime.h"

static const char sign_help[] =
        "Usage: p11mail sign [OPTIONS] [MESSAGE]\n"
        "Sign a message (RFC 5322, from MESSAGE or stdin) and write it as\n"
        "multipart/signed with CRLF line ends.\n\n"
        "  -k, --key URI      the signing key: a pkcs11: URI (or a key "
        "file)\n"
        "  -c, --cert FILE    its certificate (default: the one on the "
        "token)\n"
        "      --chain FILE   intermediate certificates to include\n"
        "      --opaque       application/pkcs7-mime signed-data instead\n"
        "      --pss          RSA-PSS instead of PKCS#1 v1.5\n"
        "      --sha512       SHA-512 instead of SHA-256\n"
        "      --from ADDRESS the store's identity for ADDRESS (default:\n"
        "                     [identity] address)\n"
        "      --max-size N   refuse input over N bytes (default 64 GiB)\n"
        "  -o, --out FILE     write to FILE (default: stdout)\n"
        "      --json         with --out, print {\"signed\":true} when "
        "done\n";

int cmd_sign(const struct tool_globals *g, int argc, char **argv)
{
	struct smime_opts o;
	struct smime_output out = {.fd = -1};
	p11mail_smime *smime = NULL;
	enum p11mail_status st;
	int rc, in = -1;

	rc = smime_parse_opts(g, argc, argv, "kcCoOPSjfm", sign_help, &o);
	if (rc != TOOL_EXIT_OK)
		return rc < 0 ? TOOL_EXIT_OK : rc;
	rc = TOOL_EXIT_FAILURE;
	smime = smime_setup(g, &o, SMIME_NEED_KEY);
	if (smime == NULL) {
		rc = o.setup_exit;
		goto out;
	}
	if ((in = smime_open_input(o.in)) < 0 ||
	    smime_output_open(&out, o.out) != 0)
		goto out;
	st = p11mail_smime_sign_fd(smime, o.flags, in, out.fd);
	if (st != P11MAIL_OK) {
		tool_error("cannot sign: %s", p11mail_strerror(st));
		rc = tool_exit_status(st);
		goto out;
	}
	if (smime_output_commit(&out) == 0)
		rc = TOOL_EXIT_OK;
	if (rc == TOOL_EXIT_OK && o.json && o.out != NULL)
		printf("{\"signed\":true}\n");

out:
	smime_output_abort(&out);
	if (in >= 0)
		close(in);
	p11mail_smime_free(smime);
	smime_opts_clear(&o);
	return rc;
}
