/*
 * URI matching on two SoftHSM2 tokens: tokens by serial or label, keys by
 * id with the label as a hint; no match and several matches are errors
 * that list the candidates; the core survives slots renumbering.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/obj_mac.h>

#include "tap.h"
#include "test-token-util.h"
#include "tok-internal.h"

static struct tt_backend b;
static const char *alice_serial, *bob_serial;

/* Opens text on a fresh core; returns the CK_RV, key in *out or freed. */
static CK_RV try_open(const char *text, tok_key **out, tok_core **core)
{
	tok_key *key = NULL;
	CK_RV rv;

	*core = tt_core(&b, NULL);
	rv = tok_key_open(*core, text, &key);
	if (out != NULL)
		*out = key;
	else
		tok_key_unref(key);
	return rv;
}

static int sign_ok(tok_key *key)
{
	struct tok_sig_params p = {TOK_SIG_PKCS1, NID_sha256, 0, 0};
	unsigned char hash[32], tbs[64], sig[512];
	size_t sig_len = sizeof(sig), n;

	tt_sha256("uri test", hash);
	n = tt_digest_info(hash, tbs);
	if (tok_key_info(key)->type == TOK_KEY_EC) {
		p.scheme = TOK_SIG_ECDSA;
		return tok_key_sign(key, &p, hash, 32, sig, &sig_len) == CKR_OK;
	}
	return tok_key_sign(key, &p, tbs, n, sig, &sig_len) == CKR_OK;
}

static void test_no_token(void)
{
	char uri[256];
	tok_core *core;
	CK_RV rv;

	snprintf(uri, sizeof(uri),
	         "pkcs11:serial=00000000deadbeef;id=%%01?pin-value=%s", b.pin);
	rv = try_open(uri, NULL, &core);
	tap_check(rv == CKR_TOKEN_NOT_PRESENT);
	tap_check(tok_status(rv) == P11MAIL_ERR_NO_TOKEN);
	tap_check(strstr(tok_last_error(), "no token matches") != NULL);
	tok_core_free(core);
}

static void test_wait_for_token(void)
{
	struct tok_options o = {0};
	struct timespec t0, t1;
	tok_core *core;
	tok_key *key = NULL;
	CK_RV rv;

	o.wait_seconds = 1;
	core = tt_core(&b, &o);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rv = tok_key_open(core, "pkcs11:serial=00000000deadbeef", &key);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	tap_check(rv == CKR_TOKEN_NOT_PRESENT && key == NULL);
	tap_check(t1.tv_sec - t0.tv_sec >= 1 || t1.tv_nsec >= t0.tv_nsec);
	tap_check(t1.tv_sec - t0.tv_sec < 4);
	tok_core_free(core);
}

static void test_no_key_lists_candidates(void)
{
	char uri[256];
	tok_core *core;
	CK_RV rv;

	snprintf(uri, sizeof(uri), "pkcs11:serial=%s;id=%%77?pin-value=%s",
	         alice_serial, b.pin);
	rv = try_open(uri, NULL, &core);
	tap_check(rv == CKR_KEY_HANDLE_INVALID);
	tap_check(tok_status(rv) == P11MAIL_ERR_NO_KEY);
	tap_check(strstr(tok_last_error(), "id=%01") != NULL);
	tap_check(strstr(tok_last_error(), "id=%02") != NULL);
	tap_check(strstr(tok_last_error(), "id=%03") != NULL);
	tap_diag("%s", tok_last_error());
	tok_core_free(core);
}

static void test_ambiguous_tokens(void)
{
	char uri[256];
	tok_core *core;
	CK_RV rv;

	/* Both tokens hold an object with id 01. */
	snprintf(uri, sizeof(uri), "pkcs11:id=%%01;type=private?pin-value=%s",
	         b.pin);
	rv = try_open(uri, NULL, &core);
	tap_check(rv == CKR_ARGUMENTS_BAD);
	tap_check(tok_status(rv) == P11MAIL_ERR_AMBIGUOUS);
	tap_check(strstr(tok_last_error(), alice_serial) != NULL);
	tap_check(strstr(tok_last_error(), bob_serial) != NULL);
	tap_diag("%s", tok_last_error());
	tok_core_free(core);
}

static void test_ambiguous_keys(void)
{
	char uri[256];
	tok_core *core;
	CK_RV rv;

	snprintf(uri, sizeof(uri), "pkcs11:serial=%s;type=private?pin-value=%s",
	         alice_serial, b.pin);
	rv = try_open(uri, NULL, &core);
	tap_check(rv == CKR_ARGUMENTS_BAD);
	tap_check(tok_status(rv) == P11MAIL_ERR_AMBIGUOUS);
	tap_check(strstr(tok_last_error(), "id=%01") != NULL &&
	          strstr(tok_last_error(), "id=%03") != NULL);
	tok_core_free(core);
}

static void test_label_hint(void)
{
	char uri[256];
	tok_core *core;
	tok_key *key = NULL;

	/* The label alone picks the key when there is no id. */
	snprintf(uri, sizeof(uri),
	         "pkcs11:serial=%s;object=alice-ec;type=private?pin-value=%s",
	         alice_serial, b.pin);
	tap_check(try_open(uri, &key, &core) == CKR_OK);
	tap_check(key != NULL && tok_key_info(key)->type == TOK_KEY_EC);
	tok_key_unref(key);
	tok_core_free(core);

	/* With an id, the id decides; the label is only a hint. */
	snprintf(uri, sizeof(uri),
	         "pkcs11:serial=%s;id=%%01;object=alice-ec?pin-value=%s",
	         alice_serial, b.pin);
	key = NULL;
	tap_check(try_open(uri, &key, &core) == CKR_OK);
	tap_check(key != NULL && tok_key_info(key)->type == TOK_KEY_RSA);
	tok_key_unref(key);
	tok_core_free(core);
}

static void test_token_by_label(void)
{
	char uri[256];
	tok_core *core;
	tok_key *key = NULL;

	snprintf(uri, sizeof(uri),
	         "pkcs11:token=bob-token;id=%%02?pin-value=%s",
	         tt_env("BOB_PIN"));
	tap_check(try_open(uri, &key, &core) == CKR_OK);
	tap_check(key != NULL &&
	          strcmp(tok_key_info(key)->token_serial, bob_serial) == 0);
	tap_check(key != NULL && sign_ok(key));
	tok_key_unref(key);
	tok_core_free(core);
}

static void test_bad_uris(void)
{
	static const char *const bad[] = {
	        "pkcs11:serial=%zz",
	        "pkcs11:tokn=alice-token;id=%01",
	        "file:///etc/passwd",
	};
	tok_core *core = tt_core(&b, NULL);
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tok_key *key = NULL;
		CK_RV rv = tok_key_open(core, bad[i], &key);

		tap_check(rv == CKR_ARGUMENTS_BAD && key == NULL);
		tap_check(tok_status(rv) == P11MAIL_ERR_URI);
	}

	/* A URI for a certificate names no key (callers may list instead). */
	{
		tok_key *key = NULL;
		CK_RV rv = tok_key_open(
		        core, "pkcs11:token=alice-token;id=%01;type=cert",
		        &key);

		tap_check(rv == CKR_KEY_HANDLE_INVALID && key == NULL);
		tap_check(tok_status(rv) == P11MAIL_ERR_NO_KEY);
	}
	tok_core_free(core);
}

/* The canonical URI a key reports opens the same key again. */
static void test_canonical_roundtrip(void)
{
	char *uri = tt_uri_pin(&b, b.ec_uri), *again = NULL;
	tok_core *core;
	tok_key *key = NULL, *key2 = NULL;

	tap_check(try_open(uri, &key, &core) == CKR_OK && key != NULL);
	if (key != NULL) {
		again = tt_uri_pin(&b, tok_key_info(key)->uri);
		tap_check(tok_key_open(core, again, &key2) == CKR_OK);
		tap_check(key2 != NULL && tok_key_info(key2)->id_len == 1 &&
		          tok_key_info(key2)->id[0] == 0x02);
	}
	tok_key_unref(key2);
	tok_key_unref(key);
	tok_core_free(core);
	free(again);
	free(uri);
}

static void test_module_path_in_uri(void)
{
	char uri[512];
	tok_core *core = NULL;
	tok_key *key = NULL;

	/* No module in the options: the URI names it. */
	tap_check(tok_core_new(NULL, &core) == CKR_OK);
	snprintf(uri, sizeof(uri), "%s?module-path=%s&pin-value=%s", b.rsa_uri,
	         b.module, b.pin);
	tap_check(tok_key_open(core, uri, &key) == CKR_OK);
	tap_check(key != NULL && sign_ok(key));
	tok_key_unref(key);
	tok_core_free(core);
}

static void test_module_name_registry(void)
{
	char uri[512];
	tok_core *core = NULL;
	tok_key *key = NULL;
	CK_RV rv;

	tap_check(tok_core_new(NULL, &core) == CKR_OK);
	snprintf(uri, sizeof(uri), "%s?module-name=softhsm2&pin-value=%s",
	         b.rsa_uri, b.pin);
	rv = tok_key_open(core, uri, &key);
	if (rv != CKR_OK)
		tap_diag("%s: %s", tok_rv_name(rv), tok_last_error());
	tap_check(rv == CKR_OK && key != NULL && sign_ok(key));
	tok_key_unref(key);

	snprintf(uri, sizeof(uri), "%s?module-name=no-such-module", b.rsa_uri);
	key = NULL;
	rv = tok_key_open(core, uri, &key);
	tap_check(rv != CKR_OK && tok_status(rv) == P11MAIL_ERR_MODULE);
	tok_core_free(core);
}

/* Every module p11-kit knows, none named: the token is found by serial. */
static void test_registry_all_modules(void)
{
	char uri[512];
	tok_core *core = NULL;
	tok_key *key = NULL;
	CK_RV rv;

	tap_check(tok_core_new(NULL, &core) == CKR_OK);
	snprintf(uri, sizeof(uri), "%s?pin-value=%s", b.ec_uri, b.pin);
	rv = tok_key_open(core, uri, &key);
	if (rv != CKR_OK)
		tap_diag("%s: %s", tok_rv_name(rv), tok_last_error());
	tap_check(rv == CKR_OK && key != NULL && sign_ok(key));
	tok_key_unref(key);
	tok_core_free(core);
}

/* OpenSC's module with no reader: a clear "no token", no crash. */
static void test_opensc_without_card(void)
{
	static const char *const path =
	        "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
	struct tok_options o = {0};
	tok_core *core = NULL;
	tok_key *key = NULL;
	FILE *f = fopen(path, "r");
	CK_RV rv;

	if (f == NULL) {
		tap_skip("opensc-pkcs11 is not installed");
		return;
	}
	fclose(f);
	o.module_path = path;
	tap_check(tok_core_new(&o, &core) == CKR_OK);
	rv = tok_key_open(core, "pkcs11:token=no-card;id=%01", &key);
	tap_check(key == NULL && tok_status(rv) == P11MAIL_ERR_NO_TOKEN);
	tok_core_free(core);
}

/* The slot the core knew is gone: it finds the token again by serial. */
static void test_slot_renumbered(void)
{
	char *uri = tt_uri_pin(&b, b.rsa_uri);
	char cmd[1024];
	tok_core *core;
	tok_key *key = NULL;
	struct tok_token *tok;

	tap_check(try_open(uri, &key, &core) == CKR_OK);
	if (key == NULL)
		goto out;
	tap_check(sign_ok(key));

	/* A new token appears; the core's idea of the slot is made stale. */
	snprintf(cmd, sizeof(cmd),
	         "softhsm2-util --init-token --free --label extra-token "
	         "--so-pin 5555 --pin 5555 >/dev/null 2>&1");
	tap_check(system(cmd) == 0);
	tok = key->tok;
	pthread_mutex_lock(&tok->lock);
	tok_session_flush(tok, 1);
	tok->slot = 0x7fff1234;
	pthread_mutex_unlock(&tok->lock);

	tap_check(sign_ok(key));
	tap_check(tok->slot != 0x7fff1234);
out:
	tok_key_unref(key);
	tok_core_free(core);
	free(uri);
}

static const struct tap_case cases[] = {
        {"test_no_token", test_no_token},
        {"test_wait_for_token", test_wait_for_token},
        {"test_no_key_lists_candidates", test_no_key_lists_candidates},
        {"test_ambiguous_tokens", test_ambiguous_tokens},
        {"test_ambiguous_keys", test_ambiguous_keys},
        {"test_label_hint", test_label_hint},
        {"test_token_by_label", test_token_by_label},
        {"test_bad_uris", test_bad_uris},
        {"test_canonical_roundtrip", test_canonical_roundtrip},
        {"test_module_path_in_uri", test_module_path_in_uri},
        {"test_module_name_registry", test_module_name_registry},
        {"test_registry_all_modules", test_registry_all_modules},
        {"test_opensc_without_card", test_opensc_without_card},
        {"test_slot_renumbered", test_slot_renumbered},
};

int main(void)
{
	tt_backend("softhsm", &b);
	alice_serial = tt_env("ALICE_TOKEN_SERIAL");
	bob_serial = tt_env("BOB_TOKEN_SERIAL");
	return tap_run(cases, sizeof(cases) / sizeof(cases[0]));
}
