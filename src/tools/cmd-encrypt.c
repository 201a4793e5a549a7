/* p11mail encrypt: encrypt a message to its recipients and the sender. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cmd-smime.h"

static const char encrypt_help[] =
        "Usage: p11mail encrypt [OPTIONS] [MESSAGE]\n"
        "Encrypt a message (from MESSAGE or stdin) to every recipient and\n"
        "to the sender, with AES-256-GCM (AuthEnvelopedData).  Fails, naming\n"
        "each one, when any recipient lacks a usable certificate.\n\n"
        "  -t, --to ADDRESS         a recipient, name@domain or Name "
        "<name@domain>;\n"
        "                           repeatable (default: To and Cc)\n"
        "      --recipient-cert FILE  a recipient certificate; repeatable\n"
        "  -a, --anchor FILE        trust anchor for recipient certificates\n"
        "  -c, --cert FILE          the sender's certificate (own copy)\n"
        "  -k, --key URI            the sender's key, needed with --sign\n"
        "      --chain FILE         intermediates to include when signing\n"
        "      --sign               sign first (sign-then-encrypt)\n"
        "      --pss, --sha512      signature options as for sign\n"
        "      --cbc                AES-256-CBC EnvelopedData, for peers "
        "without GCM\n"
        "      --oaep               RSA-OAEP (SHA-256) key transport\n"
        "      --from ADDRESS       the store's identity for ADDRESS\n"
        "      --max-size N         refuse input over N bytes (default 64 "
        "GiB)\n"
        "  -o, --out FILE           write to FILE (default: stdout)\n"
        "      --json               with --out, print {\"encrypted\":true} "
        "when done\n\n"
        "With a store, recipients' certificates come from its cache and its\n"
        "anchors judge them; AES-CBC is used for a recipient whose\n"
        "capabilities lack AES-GCM.\n";

int cmd_encrypt(const struct tool_globals *g, int argc, char **argv)
{
	struct smime_opts o;
	struct smime_output out = {.fd = -1};
	p11mail_smime *smime = NULL;
	enum p11mail_status st;
	int rc, in = -1;

	rc = smime_parse_opts(g, argc, argv, "tAackCsPSgrojfm", encrypt_help,
	                      &o);
	if (rc != TOOL_EXIT_OK)
		return rc < 0 ? TOOL_EXIT_OK : rc;
	rc = TOOL_EXIT_FAILURE;
	smime = smime_setup(g, &o,
	                    (o.flags & P11MAIL_SMIME_SIGN) ? SMIME_NEED_KEY
	                                                   : SMIME_NEED_CERT);
	if (smime == NULL) {
		rc = o.setup_exit;
		goto out;
	}
	if ((in = smime_open_input(o.in)) < 0)
		goto out;
	if (smime_output_open(&out, o.out) != 0)
		goto out;
	st = p11mail_smime_encrypt_fd(smime, o.flags, o.to, o.to_count, in,
	                              out.fd);
	if (st != P11MAIL_OK) {
		tool_error("nothing was encrypted: %s", p11mail_strerror(st));
		rc = tool_exit_status(st);
		goto out;
	}
	if (smime_output_commit(&out) == 0)
		rc = TOOL_EXIT_OK;
	if (rc == TOOL_EXIT_OK && o.json && o.out != NULL)
		printf("{\"encrypted\":true}\n");

out:
	smime_output_abort(&out);
	if (in >= 0)
		close(in);
	p11mail_smime_free(smime);
	smime_opts_clear(&o);
	return rc;
}
