/*
 * A program that signs and exits, the way the tools do: argv[1] says how
 * the core ends ("free": tok_core_free before returning; "atexit": freed
 * from an exit handler, as a provider torn down at exit would; "keep":
 * never freed).  It prints one TAP line and exits 0 only when the
 * signature was made; the test runs it under valgrind.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/obj_mac.h>

#include "tap.h"
#include "test-token-util.h"

static tok_core *core;
static tok_key *key;

static void free_at_exit(void)
{
	tok_key_unref(key);
	tok_core_free(core);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "free";
	struct tok_sig_params p = {TOK_SIG_ECDSA, NID_sha256, 0, 0};
	struct tt_backend b;
	unsigned char hash[32], sig[132];
	size_t sig_len = sizeof(sig);
	EVP_PKEY *pub;
	char *uri;
	int ok;

	tt_backend(argc > 2 ? argv[2] : "softhsm", &b);
	uri = tt_uri_pin(&b, b.ec_uri);
	core = tt_core(&b, NULL);
	if (strcmp(mode, "atexit") == 0)
		atexit(free_at_exit);
	tt_sha256("exit test", hash);
	pub = tt_cert_key(b.ec_cert);
	ok = core != NULL && tok_key_open(core, uri, &key) == CKR_OK &&
	     tok_key_sign(key, &p, hash, 32, sig, &sig_len) == CKR_OK &&
	     tt_verify(pub, TOK_SIG_ECDSA, 0, hash, sig, sig_len);
	printf("%s signed before exit (%s)\n", ok ? "yes" : "no", mode);
	EVP_PKEY_free(pub);
	free(uri);
	if (strcmp(mode, "free") == 0)
		free_at_exit();
	return ok ? 0 : 1;
}
