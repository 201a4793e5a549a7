/*
 * Signatures per second on one SoftHSM2 token: raw C_SignInit + C_Sign on
 * a session of our own against tok_key_sign, for RSA-2048 (PKCS#1 v1.5)
 * and P-256 (ECDSA), printed as JSON.  Run it under the fixture's
 * variables; BENCH_SECONDS sets the time per key and method (default 3).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/obj_mac.h>

#include "test-token-util.h"
#include "tok-internal.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The plain PKCS#11 loop, with the handle the core resolved. */
static double raw_rate(tok_key *key, CK_MECHANISM_TYPE mech,
                       const unsigned char *tbs, size_t tbs_len, double secs)
{
	CK_FUNCTION_LIST *fl = key->tok->mod->fl;
	CK_MECHANISM m = {mech, NULL, 0};
	CK_SESSION_HANDLE h;
	unsigned char sig[512];
	CK_ULONG sig_len;
	double start = now();
	long n = 0;

	if (fl->C_OpenSession(key->tok->slot, CKF_SERIAL_SESSION, NULL, NULL,
	                      &h) != CKR_OK)
		return -1;
	do {
		sig_len = sizeof(sig);
		if (fl->C_SignInit(h, &m, key->handle) != CKR_OK ||
		    fl->C_Sign(h, tok_mut(tbs), tbs_len, sig, &sig_len) !=
		            CKR_OK)
			break;
		n++;
	} while (now() - start < secs);
	fl->C_CloseSession(h);
	return n / (now() - start);
}

static double core_rate(tok_key *key, const struct tok_sig_params *p,
                        const unsigned char *tbs, size_t tbs_len, double secs)
{
	unsigned char sig[512];
	size_t sig_len;
	double start = now();
	long n = 0;

	do {
		sig_len = sizeof(sig);
		if (tok_key_sign(key, p, tbs, tbs_len, sig, &sig_len) != CKR_OK)
			break;
		n++;
	} while (now() - start < secs);
	return n / (now() - start);
}

static int measure(tok_core *core, struct tt_backend *b, const char *base,
                   const char *name, int ec, double secs, int last)
{
	struct tok_sig_params p = {ec ? TOK_SIG_ECDSA : TOK_SIG_PKCS1,
	                           NID_sha256, 0, 0};
	unsigned char hash[32], tbs[64];
	size_t tbs_len = 32;
	char *uri = tt_uri_pin(b, base);
	tok_key *key = NULL;
	double raw, lib;
	int round;

	tt_sha256("benchmark", hash);
	memcpy(tbs, hash, 32);
	if (!ec)
		tbs_len = tt_digest_info(hash, tbs);
	if (tok_key_open(core, uri, &key) != CKR_OK) {
		fprintf(stderr, "bench-token: %s\n", tok_last_error());
		free(uri);
		return -1;
	}
	/* Alternating rounds, best of each: the machine's load is shared. */
	for (round = 0, raw = lib = 0; round < 3; round++) {
		double r = raw_rate(key, ec ? CKM_ECDSA : CKM_RSA_PKCS, tbs,
		                    tbs_len, secs / 3);
		double l = core_rate(key, &p, tbs, tbs_len, secs / 3);

		raw = r > raw ? r : raw;
		lib = l > lib ? l : lib;
	}
	printf("  \"%s\": {\"raw_c_sign_per_s\": %.1f, "
	       "\"tok_key_sign_per_s\": %.1f, \"ratio\": %.3f}%s\n",
	       name, raw, lib, raw > 0 ? lib / raw : 0.0, last ? "" : ",");
	tok_key_unref(key);
	free(uri);
	return 0;
}

int main(void)
{
	const char *s = getenv("BENCH_SECONDS");
	double secs = s != NULL ? atof(s) : 3.0;
	struct tt_backend b;
	tok_core *core;
	int rc;

	if (getenv("SOFTHSM_MODULE") == NULL) {
		fprintf(stderr, "bench-token: run under the test fixture\n");
		return 2;
	}
	tt_backend("softhsm", &b);
	core = tt_core(&b, NULL);
	printf("{\n  \"token\": \"SoftHSM2\",\n  \"seconds\": %.1f,\n", secs);
	rc = measure(core, &b, b.rsa_uri, "rsa2048_pkcs1", 0, secs, 0);
	if (rc == 0)
		rc = measure(core, &b, b.ec_uri, "p256_ecdsa", 1, secs, 1);
	printf("}\n");
	tok_core_free(core);
	return rc == 0 ? 0 : 1;
}
