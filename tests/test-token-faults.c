/*
 * The token core against a token that misbehaves on purpose (the
 * libp11faulty proxy in front of SoftHSM2): removal and re-insertion
 * during use, lost sessions, renumbered slots, the PIN flags read before
 * login, missing mechanisms, and no object search per operation.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/obj_mac.h>
#include <openssl/rsa.h>

#include "tap.h"
#include "test-token-util.h"
#include "tok-internal.h"

static struct tt_backend b;
static const char *control_path, *counts_path;

static void control(const char *text)
{
	FILE *f = fopen(control_path, "w");

	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
}

/* How often this process called name, by the proxy's counts. */
static long calls(const char *name)
{
	FILE *f = fopen(counts_path, "r");
	char fn[64];
	long n, found = 0;

	if (f == NULL)
		return 0;
	while (fscanf(f, "%63s %ld", fn, &n) == 2)
		if (strcmp(fn, name) == 0)
			found = n;
	fclose(f);
	return found;
}

static tok_key *open_key(const char *base, struct tok_options *o,
                         tok_core **core)
{
	char *uri = tt_uri_pin(&b, base);
	tok_key *key = NULL;
	CK_RV rv;

	*core = tt_core(&b, o);
	rv = tok_key_open(*core, uri, &key);
	if (rv != CKR_OK)
		tap_diag("open: %s %s", tok_rv_name(rv), tok_last_error());
	free(uri);
	return key;
}

static CK_RV sign_rv(tok_key *key, enum tok_sig_scheme scheme)
{
	struct tok_sig_params p = {scheme, NID_sha256, NID_sha256, 32};
	unsigned char hash[32], tbs[64], sig[512];
	size_t sig_len = sizeof(sig), n = 32;
	EVP_PKEY *pub;
	CK_RV rv;

	tt_sha256("fault test", hash);
	memcpy(tbs, hash, 32);
	if (scheme == TOK_SIG_PKCS1)
		n = tt_digest_info(hash, tbs);
	rv = tok_key_sign(key, &p, tbs, n, sig, &sig_len);
	if (rv != CKR_OK)
		return rv;
	pub = tt_cert_key(b.rsa_cert);
	if (!tt_verify(pub, scheme, 32, hash, sig, sig_len))
		rv = CKR_SIGNATURE_INVALID;
	EVP_PKEY_free(pub);
	return rv;
}

static void *reinsert_later(void *arg)
{
	struct timespec ts = {0, 700 * 1000 * 1000};

	(void)arg;
	nanosleep(&ts, NULL);
	control("");
	return NULL;
}

static void test_removed_and_reinserted(void)
{
	struct tok_options o = {0};
	tok_core *core;
	tok_key *key;
	pthread_t t;
	long logins;
	CK_RV rv;

	control("");
	o.wait_seconds = 5;
	key = open_key(b.rsa_uri, &o, &core);
	if (!tap_check(key != NULL))
		goto out;
	tap_check(sign_rv(key, TOK_SIG_PKCS1) == CKR_OK);
	logins = calls("C_Login");

	control("removed\n");
	pthread_create(&t, NULL, reinsert_later, NULL);
	rv = sign_rv(key, TOK_SIG_PKCS1);
	pthread_join(t, NULL);
	if (!tap_check(rv == CKR_OK))
		tap_diag("%s: %s", tok_rv_name(rv), tok_last_error());
	/* Logged in again, once, with the URI's PIN source. */
	tap_check(calls("C_Login") == logins + 1);
	tap_check(sign_rv(key, TOK_SIG_PKCS1) == CKR_OK);
out:
	tok_key_unref(key);
	tok_core_free(core);
}

static void test_removed_for_good(void)
{
	tok_core *core;
	tok_key *key;
	char want[128];
	CK_RV rv;

	control("");
	key = open_key(b.rsa_uri, NULL, &core);
	if (!tap_check(key != NULL))
		goto out;
	control("removed\n");
	rv = sign_rv(key, TOK_SIG_PKCS1);
	tap_check(rv != CKR_OK);
	tap_check(tok_status(rv) == P11MAIL_ERR_TOKEN_REMOVED);
	snprintf(want, sizeof(want), "insert the token alice-token (serial %s)",
	         tt_env("ALICE_TOKEN_SERIAL"));
	tap_check(strstr(tok_last_error(), want) != NULL);
	tap_diag("%s", tok_last_error());

	/* Back again: the next call reconnects by itself. */
	control("");
	tap_check(sign_rv(key, TOK_SIG_PKCS1) == CKR_OK);
out:
	control("");
	tok_key_unref(key);
	tok_core_free(core);
}

static void test_lost_sessions_and_renumber(void)
{
	tok_core *core;
	tok_key *key;
	CK_RV rv;

	control("");
	key = open_key(b.rsa_uri, NULL, &core);
	if (!tap_check(key != NULL))
		goto out;
	tap_check(sign_rv(key, TOK_SIG_PKCS1) == CKR_OK);
	control("lose-sessions\n");
	rv = sign_rv(key, TOK_SIG_PKCS1);
	if (!tap_check(rv == CKR_OK))
		tap_diag("%s: %s", tok_rv_name(rv), tok_last_error());

	/* Slots renumbered and sessions gone: found again by serial. */
	control("renumber 7\n");
	tap_check(sign_rv(key, TOK_SIG_PKCS1) == CKR_OK);
	control("renumber 7\nlose-sessions\n");
	rv = sign_rv(key, TOK_SIG_PKCS1);
	if (!tap_check(rv == CKR_OK))
		tap_diag("%s: %s", tok_rv_name(rv), tok_last_error());
out:
	control("");
	tok_key_unref(key);
	tok_core_free(core);
}

static void test_no_search_per_operation(void)
{
	tok_core *core;
	tok_key *key;
	long finds, logins, opens;
	int i, good = 0;

	control("");
	key = open_key(b.rsa_uri, NULL, &core);
	if (!tap_check(key != NULL))
		goto out;
	finds = calls("C_FindObjectsInit");
	logins = calls("C_Login");
	opens = calls("C_OpenSession");
	for (i = 0; i < 20; i++)
		good += sign_rv(key, TOK_SIG_PKCS1) == CKR_OK;
	tap_check(good == 20);
	tap_check(calls("C_FindObjectsInit") == finds);
	tap_check(calls("C_Login") == logins);
	tap_check(calls("C_OpenSession") <= opens + 1);
out:
	tok_key_unref(key);
	tok_core_free(core);
}

/* Opens with a PIN flag set; the login must be refused before C_Login. */
static void pin_flag(const char *line, CK_RV want_rv, enum p11mail_status want,
                     const char *words)
{
	char *uri = tt_uri_pin(&b, b.rsa_uri);
	tok_core *core = tt_core(&b, NULL);
	long logins = calls("C_Login");
	tok_key *key = NULL;
	CK_RV rv;

	control(line);
	rv = tok_key_open(core, uri, &key);
	control("");
	tap_check(rv == want_rv && key == NULL);
	tap_check(tok_status(rv) == want);
	tap_check(strstr(tok_last_error(), words) != NULL);
	tap_check(calls("C_Login") == logins);
	tap_diag("%s", tok_last_error());
	tok_key_unref(key);
	tok_core_free(core);
	free(uri);
}

static void test_pin_locked(void)
{
	pin_flag("pin-locked\n", CKR_PIN_LOCKED, P11MAIL_ERR_PIN_LOCKED,
	         "locked");
}

static void test_pin_final_try(void)
{
	pin_flag("pin-final-try\n", CKR_PIN_INCORRECT,
	         P11MAIL_ERR_PIN_FINAL_TRY, "one try left");
}

static void test_pin_to_be_changed(void)
{
	pin_flag("pin-to-be-changed\n", CKR_PIN_EXPIRED,
	         P11MAIL_ERR_PIN_EXPIRED, "changed first");
}

static int low_seen;

static int pin_cb(void *arg, const struct tok_pin_request *req, char *buf,
                  size_t size)
{
	low_seen = req->count_low;
	snprintf(buf, size, "%s", (const char *)arg);
	return 0;
}

static void test_pin_count_low(void)
{
	struct tok_options o = {0};
	tok_core *core;
	tok_key *key = NULL;

	o.pin_fn = pin_cb;
	o.pin_arg = (void *)(uintptr_t)b.pin;
	core = tt_core(&b, &o);
	control("pin-count-low\n");
	tap_check(tok_key_open(core, b.rsa_uri, &key) == CKR_OK);
	control("");
	tap_check(low_seen == 1);
	tok_key_unref(key);
	tok_core_free(core);
}

static void test_token_without_pss_and_oaep(void)
{
	static const unsigned char secret[] = "key transport";
	struct tok_dec_params p = {TOK_DEC_OAEP, NID_sha256, NID_sha256, NULL,
	                           0};
	unsigned char ct[512], out[512];
	size_t ct_len = sizeof(ct), out_len = sizeof(out);
	EVP_PKEY *pub = tt_cert_key(b.rsa_cert);
	tok_core *core;
	tok_key *key;
	CK_RV rv;

	control("no-mechanism CKM_RSA_PKCS_PSS\n"
	        "no-mechanism CKM_RSA_PKCS_OAEP\n");
	key = open_key(b.rsa_uri, NULL, &core);
	if (!tap_check(key != NULL))
		goto out;
	rv = sign_rv(key, TOK_SIG_PSS);
	if (!tap_check(rv == CKR_OK))
		tap_diag("%s: %s", tok_rv_name(rv), tok_last_error());
	tap_check(tt_encrypt(pub, RSA_PKCS1_OAEP_PADDING, EVP_sha256(), NULL, 0,
	                     secret, sizeof(secret), ct, &ct_len));
	rv = tok_key_decrypt(key, &p, ct, ct_len, out, &out_len);
	tap_check(rv == CKR_OK && out_len == sizeof(secret) &&
	          memcmp(out, secret, out_len) == 0);
out:
	control("");
	EVP_PKEY_free(pub);
	tok_key_unref(key);
	tok_core_free(core);
}

static const struct tap_case cases[] = {
        {"test_removed_and_reinserted", test_removed_and_reinserted},
        {"test_removed_for_good", test_removed_for_good},
        {"test_lost_sessions_and_renumber", test_lost_sessions_and_renumber},
        {"test_no_search_per_operation", test_no_search_per_operation},
        {"test_pin_locked", test_pin_locked},
        {"test_pin_final_try", test_pin_final_try},
        {"test_pin_to_be_changed", test_pin_to_be_changed},
        {"test_pin_count_low", test_pin_count_low},
        {"test_token_without_pss_and_oaep", test_token_without_pss_and_oaep},
};

int main(void)
{
	tt_backend("softhsm", &b);
	b.module = tt_env("P11FAULTY_MODULE");
	control_path = tt_env("P11FAULTY_CONTROL");
	counts_path = tt_env("P11FAULTY_COUNTS");
	return tap_run(cases, sizeof(cases) / sizeof(cases[0]));
}
