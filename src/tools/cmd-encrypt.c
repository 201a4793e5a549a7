/* p11mail encrypt: encrypt a message to its recipients and the sender. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "cmd-smime.h"

static const char encrypt_help[] =
        "Usage: p11mail encrypt [OPTIONS] [MESSAGE]\n"
        "Encrypt a message (from MESSAGE or stdin) to every recipient and\n"
        "to the sender, with AES-256-GCM (AuthEnvelopedData).  Fails, naming\n"
        "each one, when any recipient lacks a usable certificate.\n\n"
        "  -t, --to ADDRESS         a recipient; repeatable (default: To and "
        "Cc)\n"
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
        "  -o, --out FILE           write to FILE (default: stdout)\n";

int cmd_encrypt(const struct tool_globals *g, int argc, char **argv)
{
	struct smime_opts o;
	p11mail_smime *smime = NULL;
	unsigned char *in = NULL, *out = NULL;
	size_t in_len = 0, out_len = 0;
	enum p11mail_status st;
	int rc;

	rc = smime_parse_opts(g, argc, argv, "tAackCsPSgroj", encrypt_help, &o);
	if (rc != TOOL_EXIT_OK)
		return rc < 0 ? TOOL_EXIT_OK : rc;
	if (o.cert == NULL && o.key == NULL)
		return tool_usage_error("--cert FILE (the sender's "
		                        "certificate) is required");
	rc = TOOL_EXIT_FAILURE;
	smime = smime_setup(&o, (o.flags & P11MAIL_SMIME_SIGN) != 0);
	if (smime == NULL || smime_read_input(o.in, &in, &in_len) != 0)
		goto out;
	st = p11mail_smime_encrypt(smime, o.flags, o.to, o.to_count, in, in_len,
	                           &out, &out_len);
	if (st != P11MAIL_OK) {
		tool_error("nothing was encrypted: %s", p11mail_strerror(st));
		rc = tool_exit_status(st);
		goto out;
	}
	if (smime_write_output(o.out, out, out_len) == 0)
		rc = TOOL_EXIT_OK;
	if (rc == TOOL_EXIT_OK && o.json && o.out != NULL)
		printf("{\"encrypted\":true}\n");

out:
	p11mail_smime_release(out, out_len);
	p11mail_smime_release(in, in_len);
	p11mail_smime_free(smime);
	return rc;
}
