/* p11mail decrypt: decrypt with the key on the token, then verify. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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
        "      --max-size N     refuse input over N bytes (default 64 "
        "GiB)\n"
        "      --from ADDRESS   the store's identity for ADDRESS\n"
        "  -o, --out FILE       write the plaintext to FILE (default: "
        "stdout)\n"
        "      --json           report as JSON on stdout (needs --out)\n\n"
        "Exit status: 0 decrypted (and, when signed, valid and trusted),\n"
        "3 or 4 as for verify when the signature inside is not, 1 "
        "failure.\n";

/*
 * Plaintext that cannot be read.  Unauthenticated (CBC) plaintext that does
 * not parse fails exactly as a bad key or bad padding does, so that an
 * altered ciphertext teaches nothing about the plaintext or the key.
 */
static int unreadable(int authenticated)
{
	if (!authenticated) {
		tool_error("%s", p11mail_strerror(P11MAIL_ERR_DECRYPT));
		return -1;
	}
	tool_error("decrypted, but the content cannot be checked");
	return TOOL_EXIT_INVALID;
}

/* Checks a signature inside the plaintext; 0 when there is none. */
static int verify_inner(p11mail_smime *smime, const unsigned char *plain,
                        size_t len, int json, int authenticated, FILE *fp)
{
	struct p11mail_verify_result *r = NULL;
	const char *extra = authenticated ? ",\"encryption\":\"aes-gcm\""
	                                  : ",\"encryption\":\"aes-cbc\"";
	enum p11mail_status st;
	int rc;

	tool_mute_log(!authenticated);
	st = p11mail_smime_verify(smime, plain, len, &r);
	tool_mute_log(0);
	if (st != P11MAIL_OK)
		return unreadable(authenticated);
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

/* Checks the signature inside the decrypted output, mapped read-only. */
static int verify_output(p11mail_smime *smime, int fd, int json, int auth,
                         FILE *fp)
{
	struct stat sb;
	void *map;
	int rc;

	if (fstat(fd, &sb) != 0 || sb.st_size == 0)
		return unreadable(auth);
	map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		return unreadable(auth);
	/* all of it decrypted: the size bound for messages no longer applies */
	if ((uintmax_t)sb.st_size > 64u << 20) {
		struct p11mail_smime_limits limits = {
		        .max_size = (size_t)sb.st_size};

		p11mail_smime_set_limits(smime, &limits);
	}
	rc = verify_inner(smime, map, (size_t)sb.st_size, json, auth, fp);
	munmap(map, (size_t)sb.st_size);
	return rc;
}

/*
 * --require-aead is decided before the key is opened: a CBC message never
 * reaches the token, not even for a login.
 */
static int require_aead(int in)
{
	p11mail_smime *check = NULL;
	enum p11mail_status st;

	st = p11mail_smime_new(&check);
	if (st == P11MAIL_OK)
		st = p11mail_smime_check_aead_fd(check, in);
	p11mail_smime_free(check);
	if (st == P11MAIL_OK)
		return 0;
	if (st == P11MAIL_ERR_FORMAT)
		tool_error("the message is not decrypted: --require-aead "
		           "accepts only authenticated encryption (AES-GCM)");
	else
		tool_error("%s", p11mail_strerror(st));
	return -1;
}

int cmd_decrypt(const struct tool_globals *g, int argc, char **argv)
{
	struct smime_opts o;
	struct smime_output out = {.fd = -1};
	p11mail_smime *smime = NULL;
	enum p11mail_status st;
	int rc, auth = 0, in = -1, checked;

	rc = smime_parse_opts(g, argc, argv, "kcaeojfm", decrypt_help, &o);
	if (rc != TOOL_EXIT_OK)
		return rc < 0 ? TOOL_EXIT_OK : rc;
	if (o.json && o.out == NULL)
		return tool_usage_error("--json needs --out FILE for the "
		                        "plaintext");
	rc = TOOL_EXIT_FAILURE;
	if ((in = smime_open_input(o.in)) < 0 ||
	    (o.require_aead && require_aead(in) != 0))
		goto out;
	smime = smime_setup(g, &o, SMIME_NEED_KEY);
	if (smime == NULL) {
		rc = o.setup_exit;
		goto out;
	}
	if (smime_output_open(&out, o.out) != 0)
		goto out;
	p11mail_smime_set_require_aead(smime, o.require_aead);
	st = p11mail_smime_decrypt_fd(smime, in, out.fd, &auth);
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
	/* the report must not mix with plaintext written to stdout */
	checked = verify_output(smime, out.fd, o.json, auth,
	                        o.out != NULL ? stdout : stderr);
	if (checked >= 0 && !auth && !o.json)
		tool_warn("unauthenticated encryption (AES-CBC): the content "
		          "may have been altered in transit");
	if (checked >= 0 && smime_output_commit(&out) == 0)
		rc = checked;

out:
	smime_output_abort(&out);
	if (in >= 0)
		close(in);
	p11mail_smime_free(smime);
	smime_opts_clear(&o);
	return rc;
}
