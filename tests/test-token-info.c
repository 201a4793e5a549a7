/*
 * The token core's diagnostics (tok-info.c) on SoftHSM2 and through the
 * libp11faulty proxy: modules and their state, tokens with their PIN
 * flags, and key URIs probed with and without a login.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "test-token-util.h"

static struct tt_backend b;
static const char *faulty, *control_path, *alice_serial;

static void control(const char *text)
{
	FILE *f = fopen(control_path, "w");

	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
}

static int give_pin(void *arg, const struct tok_pin_request *req, char *buf,
                    size_t size)
{
	(void)req;
	snprintf(buf, size, "%s", (const char *)arg);
	return 0;
}

/* A core on module with its modules started; NULL on failure. */
static tok_core *started_core(const char *module)
{
	struct tok_options o;
	struct tok_module_info *mods = NULL;
	tok_core *core = NULL;
	size_t n = 0;

	memset(&o, 0, sizeof(o));
	o.module_path = module;
	o.pin_fn = give_pin;
	o.pin_arg = (void *)(uintptr_t)b.pin;
	if (tok_core_new(&o, &core) != CKR_OK)
		return NULL;
	if (tok_list_modules(core, NULL, &mods, &n) != CKR_OK)
		tap_diag("modules: %s", tok_last_error());
	tok_modules_free(mods, n);
	return core;
}

/* Alice's token in a fresh listing; *flags gets its bits, 0 if absent. */
static int alice_flags(tok_core *core, unsigned int *flags)
{
	struct tok_token_info *toks = NULL;
	size_t n = 0;
	int found = 0;

	*flags = 0;
	if (tok_list_tokens(core, &toks, &n) != CKR_OK)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (strcmp(toks[i].serial, alice_serial) == 0) {
			*flags = toks[i].flags;
			found = 1;
		}
	tok_tokens_free(toks, n);
	return found;
}

static void test_module_by_path(void)
{
	struct tok_module_info *mods = NULL;
	tok_core *core = NULL;
	struct tok_options o;
	size_t n = 0;
	CK_RV rv;

	memset(&o, 0, sizeof(o));
	o.module_path = b.module;
	if (!tap_check(tok_core_new(&o, &core) == CKR_OK))
		return;
	rv = tok_list_modules(core, NULL, &mods, &n);
	tap_check(rv == CKR_OK);
	if (tap_check(n == 1)) {
		tap_check(strcmp(mods[0].name, b.module) == 0);
		tap_check(mods[0].loaded && mods[0].started);
		tap_check(mods[0].error == NULL);
		tap_check(mods[0].has_info &&
		          strncmp(mods[0].manufacturer, "SoftHSM", 7) == 0);
		/* alice, bob and the spare slot SoftHSM2 always offers */
		tap_check(mods[0].slots_rv == CKR_OK && mods[0].slots >= 3);
	}
	tok_modules_free(mods, n);
	tok_core_free(core);
}

static void test_module_missing(void)
{
	struct tok_module_info *mods = NULL;
	struct tok_token_info *toks = NULL;
	tok_core *core = NULL;
	struct tok_options o;
	size_t n = 0, nt = 0;
	CK_RV rv;

	memset(&o, 0, sizeof(o));
	o.module_path = "/nonexistent/libno-such-module.so";
	if (!tap_check(tok_core_new(&o, &core) == CKR_OK))
		return;
	rv = tok_list_modules(core, NULL, &mods, &n);
	tap_check(rv != CKR_OK);
	if (tap_check(n == 1)) {
		tap_check(!mods[0].loaded && !mods[0].started);
		tap_check(mods[0].error != NULL &&
		          strstr(mods[0].error, "libno-such-module") != NULL);
	}
	tap_check(tok_list_tokens(core, &toks, &nt) == CKR_OK && nt == 0);
	tok_tokens_free(toks, nt);
	tok_modules_free(mods, n);
	tok_core_free(core);
}

static void test_tokens_before_modules(void)
{
	struct tok_token_info *toks = NULL;
	tok_core *core = tt_core(&b, NULL);
	size_t n = 5;

	if (!tap_check(core != NULL))
		return;
	/* nothing started yet: nothing listed, and no module started now */
	tap_check(tok_list_tokens(core, &toks, &n) == CKR_OK && n == 0);
	tok_tokens_free(toks, n);
	tok_core_free(core);
}

static void test_tokens_softhsm(void)
{
	struct tok_token_info *toks = NULL;
	tok_core *core = started_core(b.module);
	size_t n = 0, blank = 0, alice = 0;
	const unsigned int want = TOK_TF_PRESENT | TOK_TF_INITIALIZED |
	                          TOK_TF_LOGIN_REQUIRED | TOK_TF_USER_PIN_SET;

	if (!tap_check(core != NULL))
		return;
	tap_check(tok_list_tokens(core, &toks, &n) == CKR_OK);
	for (size_t i = 0; i < n; i++) {
		if ((toks[i].flags & TOK_TF_INITIALIZED) == 0)
			blank++;
		if (strcmp(toks[i].serial, alice_serial) != 0)
			continue;
		alice++;
		tap_check(strcmp(toks[i].label, "alice-token") == 0);
		tap_check(strncmp(toks[i].manufacturer, "SoftHSM", 7) == 0);
		tap_check(toks[i].flags == want);
		tap_check(strcmp(toks[i].module, b.module) == 0);
		tap_check(toks[i].module_path != NULL &&
		          strcmp(toks[i].module_path, b.module) == 0);
	}
	tap_check(alice == 1);
	/* the spare slot is listed, not hidden as URIs' lookups hide it */
	tap_check(blank == 1);
	tok_tokens_free(toks, n);
	tok_core_free(core);
}

static const struct {
	const char *control;
	unsigned int bit;
} pin_cases[] = {
        {"pin-locked\n", TOK_TF_PIN_LOCKED},
        {"pin-final-try\n", TOK_TF_PIN_FINAL_TRY},
        {"pin-to-be-changed\n", TOK_TF_PIN_TO_BE_CHANGED},
        {"pin-count-low\n", TOK_TF_PIN_COUNT_LOW},
};

static void test_pin_flags_through_proxy(void)
{
	const unsigned int pin_bits = TOK_TF_PIN_LOCKED | TOK_TF_PIN_FINAL_TRY |
	                              TOK_TF_PIN_TO_BE_CHANGED |
	                              TOK_TF_PIN_COUNT_LOW;
	tok_core *core = started_core(faulty);
	unsigned int flags = 0;

	if (!tap_check(core != NULL))
		return;
	control("");
	tap_check(alice_flags(core, &flags) == 1 && (flags & pin_bits) == 0);
	for (size_t i = 0; i < sizeof(pin_cases) / sizeof(pin_cases[0]); i++) {
		control(pin_cases[i].control);
		/* each listing reads the flags afresh */
		if (!tap_check(alice_flags(core, &flags) == 1) ||
		    !tap_check((flags & pin_bits) == pin_cases[i].bit))
			tap_diag("%s: flags 0x%x", pin_cases[i].control, flags);
	}
	control("");
	tap_check(alice_flags(core, &flags) == 1 && (flags & pin_bits) == 0);
	tok_core_free(core);
}

static void test_removed_through_proxy(void)
{
	struct tok_token_info *toks = NULL;
	tok_core *core = started_core(faulty);
	unsigned int flags = 0;
	size_t n = 1;

	if (!tap_check(core != NULL))
		return;
	control("removed\n");
	tap_check(tok_list_tokens(core, &toks, &n) == CKR_OK && n == 0);
	tok_tokens_free(toks, n);
	control("");
	tap_check(alice_flags(core, &flags) == 1);
	tok_core_free(core);
}

static void test_probe_key(void)
{
	tok_core *core = started_core(b.module);
	size_t len = 0, other_len = 0;
	unsigned char *der = tt_cert_der(b.rsa_cert, &len);
	unsigned char *other = tt_cert_der(tt_env("BOB_RSA_CERT"), &other_len);
	struct tok_key_probe p;
	CK_RV rv;

	if (!tap_check(core != NULL && der != NULL && other != NULL))
		goto out;
	/* without login the private key hides; the public parts match */
	rv = tok_probe_key(core, b.rsa_uri, 0, der, len, &p);
	tap_check(rv == CKR_OK && p.tokens == 1 && p.holding == 1);
	tap_check(strcmp(p.token_serial, alice_serial) == 0);
	tap_check(p.login_required && !p.logged_in);
	tap_check(p.private_keys == 0 && p.certificates == 1);
	tap_check(p.matches == 1);
	/* another certificate's key is told apart */
	rv = tok_probe_key(core, b.rsa_uri, 0, other, other_len, &p);
	tap_check(rv == CKR_OK && p.matches == 0);
	/* with login: exactly one private key, compared directly */
	rv = tok_probe_key(core, b.rsa_uri, 1, der, len, &p);
	tap_check(rv == CKR_OK && p.login_rv == CKR_OK && p.logged_in);
	tap_check(p.private_keys == 1 && p.matches == 1);
	/* a URI naming every key of the token names several */
	rv = tok_probe_key(core, "pkcs11:token=alice-token;type=private", 0,
	                   NULL, 0, &p);
	tap_check(rv == CKR_OK && p.private_keys > 1 && p.matches == -1);
out:
	free(der);
	free(other);
	tok_core_free(core);
}

static void test_probe_key_failures(void)
{
	tok_core *core = started_core(b.module);
	struct tok_key_probe p;
	CK_RV rv;

	if (!tap_check(core != NULL))
		return;
	rv = tok_probe_key(core, "pkcs11:id=%zz", 0, NULL, 0, &p);
	tap_check(rv == CKR_ARGUMENTS_BAD && tok_status(rv) == P11MAIL_ERR_URI);
	rv = tok_probe_key(core, "pkcs11:serial=0000000000000000;id=%01", 0,
	                   NULL, 0, &p);
	tap_check(rv == CKR_TOKEN_NOT_PRESENT && p.holding == 0);
	/* no token attributes: the one token holding the id is meant */
	rv = tok_probe_key(core, "pkcs11:id=%03;type=private", 0, NULL, 0, &p);
	tap_check(rv == CKR_OK && p.tokens >= 2 && p.holding == 1 &&
	          strcmp(p.token_label, "alice-token") == 0);
	/* id 01 is on both fixture tokens: ambiguous */
	rv = tok_probe_key(core, "pkcs11:id=%01", 0, NULL, 0, &p);
	tap_check(rv == CKR_OK && p.holding == 2);
	tok_core_free(core);
}

static const struct tap_case cases[] = {
        {"test_module_by_path", test_module_by_path},
        {"test_module_missing", test_module_missing},
        {"test_tokens_before_modules", test_tokens_before_modules},
        {"test_tokens_softhsm", test_tokens_softhsm},
        {"test_pin_flags_through_proxy", test_pin_flags_through_proxy},
        {"test_removed_through_proxy", test_removed_through_proxy},
        {"test_probe_key", test_probe_key},
        {"test_probe_key_failures", test_probe_key_failures},
};

int main(void)
{
	tt_backend("softhsm", &b);
	faulty = tt_env("P11FAULTY_MODULE");
	control_path = tt_env("P11FAULTY_CONTROL");
	alice_serial = tt_env("ALICE_TOKEN_SERIAL");
	return tap_run(cases, sizeof(cases) / sizeof(cases[0]));
}
