/* p11mail decrypt: decrypt with the key on the token, then verify. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd-smime.h"

static const char decrypt_help[] =
        "Usage: p11mail decrypt [OPTIONS] [MESSAGE]\n"
        "Decrypt a message whose root is encrypted (from MESSAGE or stdin)\n"
        "and verify a signature inside it.  Nothing is written unless all\n"
        "of it decrypted.\n\n"
        "  -k, --key URI        the recipient key: a pkcs11: URI (or a key "
        "file)\n"
        "  -c, --cert FILE      its certificate (selects the "
        "RecipientInfo)\n"
        "  -a, --anchor FILE    trust anchor for an inner signature\n"
        "      --require-aead   refuse unauthenticated (AES-CBC) "
        "encryption\n"
        "  -o, --out FILE       write the plaintext to FILE (default: "
        "stdout)\n"
        "      --json           report as JSON on stdout (needs --out)\n\n"
        "Exit status: 0 decrypted (and, when signed, valid and trusted),\n"
        "3 or 4 as for verify when the signature inside is not, 1 "
        "failure.\n";

/* Checks a signature inside the plaintext; 0 when there is none. */
static int verify_inner(p11mail_smime *smime, const unsigned char *plain,
                        size_t len, int json, int authenticated, FILE *fp)
{
	struct p11mail_verify_result *r = NULL;
	const char *extra = authenticated ? ",\"encryption\":\"aes-gcm\""
	                                  : ",\"encryption\":\"aes-cbc\"";
	int rc;

	if (p11mail_smime_verify(smime, plain, len, &r) != P11MAIL_OK) {
		tool_error("decrypted, but the content cannot be checked");
		return TOOL_EXIT_INVALID;
	}
	if (r->verdict == P11MAIL_VERDICT_UNSIGNED && r->signer_count == 0 &&
	    r->signed_part == NULL) {
		if (json)
			fprintf(fp,
			        "{\"verdict\":\"unsigned\",\"signers\":[]%s}\n",
			        extra);
		p11mail_verify_result_free(r);
		return TOOL_EXIT_OK;
	}
	rc = smime_report(r, json, extra, fp);
	p11mail_verify_result_free(r);
	return rc;
}

int cmd_decrypt(const struct tool_globals *g, int argc, char **argv)
{
	struct smime_opts o;
	p11mail_smime *smime = NULL;
	unsigned char *in = NULL, *out = NULL;
	size_t in_len = 0, out_len = 0;
	enum p11mail_status st;
	int rc, auth = 0;

	rc = smime_parse_opts(g, argc, argv, "kcaeojf", decrypt_help, &o);
	if (rc != TOOL_EXIT_OK)
		return rc < 0 ? TOOL_EXIT_OK : rc;
	if (o.json && o.out == NULL)
		return tool_usage_error("--json needs --out FILE for the "
		                        "plaintext");
	rc = TOOL_EXIT_FAILURE;
	smime = smime_setup(g, &o, SMIME_NEED_KEY);
	if (smime == NULL || smime_read_input(o.in, &in, &in_len) != 0)
		goto out;
	st = p11mail_smime_decrypt(smime, in, in_len, &out, &out_len, &auth);
	if (st != P11MAIL_OK) {
		tool_error("%s", p11mail_strerror(st));
		goto out;
	}
	if (!auth && o.require_aead) {
		tool_error("the message uses unauthenticated encryption "
		           "(AES-CBC) and --require-aead was given; nothing "
		           "was written");
		goto out;
	}
	if (!auth && !o.json)
		tool_warn("unauthenticated encryption (AES-CBC): the content "
		          "may have been altered in transit");
	if (smime_write_output(o.out, out, out_len) != 0)
		goto out;
	/* the report must not mix with plaintext written to stdout */
	rc = verify_inner(smime, out, out_len, o.json, auth,
	                  o.out != NULL ? stdout : stderr);

out:
	p11mail_smime_release(out, out_len);
	free(in);
	p11mail_smime_free(smime);
	smime_opts_clear(&o);
	return rc;
}
