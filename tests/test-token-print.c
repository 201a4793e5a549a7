/*
 * Prints the canonical URI the token core writes for the key a URI names
 * (argv[1]), using the module in argv[2] and init args in argv[3]: for
 * checks with other PKCS#11 consumers such as libp11's ENGINE.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "token.h"

int main(int argc, char **argv)
{
	struct tok_options o = {0};
	tok_core *core = NULL;
	tok_key *key = NULL;
	CK_RV rv;

	if (argc < 3) {
		fprintf(stderr,
		        "usage: token-print URI MODULE [INIT-ARGS [prompt]]\n");
		return 2;
	}
	o.module_path = argv[2];
	o.init_args = argc > 3 && argv[3][0] != '\0' ? argv[3] : NULL;
	/* "prompt" as a fourth argument allows the terminal prompt. */
	o.allow_prompt = argc > 4 && strcmp(argv[4], "prompt") == 0;
	rv = tok_core_new(&o, &core);
	if (rv == CKR_OK)
		rv = tok_key_open(core, argv[1], &key);
	if (rv == CKR_OK)
		printf("%s\n", tok_key_info(key)->uri);
	else
		fprintf(stderr, "token-print: %s\n", tok_last_error());
	tok_key_unref(key);
	tok_core_free(core);
	return rv == CKR_OK ? 0 : 1;
}
