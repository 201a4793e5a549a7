/*
 * Private-key operations per second on one SoftHSM2 token, in one process:
 * through the p11mail provider (EVP_PKEY from OSSL_STORE), through raw
 * PKCS#11 calls, and through libp11's ENGINE.  Prints JSON.  A check
 * program, not a test: run it by hand, with an optional iteration count.
 */
#include "config.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <p11-kit/pkcs11.h>

#include "bench-provider.h"
#include "fixture.h"

/* Operations run before the clock starts (key caches, lazy loading). */
#define WARM_UP 10

enum bench_op { OP_RSA_SIGN, OP_EC_SIGN, OP_RSA_DECRYPT, OP_COUNT };

static const char *const op_names[OP_COUNT] = {"rsa2048-sign-pkcs1-sha256",
                                               "ecdsa-p256-sign-sha256",
                                               "rsa2048-decrypt-pkcs1"};

struct bench_input {
	unsigned char hash[32];
	unsigned char ct[256]; /* RSA PKCS#1 v1.5 ciphertext of hash */
	size_t ct_len;
	int iterations;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL ? v : "";
}

/* One EVP operation on a key, as an application would run it. */
static int evp_once(EVP_PKEY *key, enum bench_op op,
                    const struct bench_input *in, OSSL_LIB_CTX *libctx)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(libctx, key, NULL);
	unsigned char out[512];
	size_t len = sizeof(out);
	int ok = 0;

	if (ctx == NULL)
		return 0;
	if (op == OP_RSA_DECRYPT)
		ok = EVP_PKEY_decrypt_init(ctx) > 0 &&
		     EVP_PKEY_decrypt(ctx, out, &len, in->ct, in->ct_len) > 0;
	else
		ok = EVP_PKEY_sign_init(ctx) > 0 &&
		     EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0 &&
		     EVP_PKEY_sign(ctx, out, &len, in->hash, sizeof(in->hash)) >
		             0;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

/* Operations per second of n EVP operations, or -1 on a failure. */
static double evp_rate(EVP_PKEY *key, enum bench_op op,
                       const struct bench_input *in, OSSL_LIB_CTX *libctx)
{
	double start;
	int i;

	if (key == NULL)
		return -1;
	for (i = 0; i < WARM_UP; i++)
		if (!evp_once(key, op, in, libctx))
			return -1;
	start = now();
	for (i = 0; i < in->iterations; i++)
		if (!evp_once(key, op, in, libctx))
			return -1;
	return in->iterations / (now() - start);
}

static const char *uri_for(enum bench_op op)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf), "%s?pin-value=%s",
	         env(op == OP_EC_SIGN ? "ALICE_EC_URI" : "ALICE_RSA_URI"),
	         env("ALICE_PIN"));
	return buf;
}

static EVP_PKEY *store_key(OSSL_LIB_CTX *libctx, const char *uri)
{
	OSSL_STORE_CTX *store;
	OSSL_STORE_INFO *info;
	EVP_PKEY *key = NULL;

	store = OSSL_STORE_open_ex(uri, libctx, NULL, NULL, NULL, NULL, NULL,
	                           NULL);
	if (store == NULL)
		return NULL;
	OSSL_STORE_expect(store, OSSL_STORE_INFO_PKEY);
	while (key == NULL && (info = OSSL_STORE_load(store)) != NULL) {
		key = OSSL_STORE_INFO_get1_PKEY(info);
		OSSL_STORE_INFO_free(info);
	}
	OSSL_STORE_close(store);
	return key;
}

/* The provider from P11MAIL_TEST_PROVIDER_DIR in a library context. */
static void bench_provider(const struct bench_input *in, double *rates)
{
	OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
	OSSL_PROVIDER *dflt, *p11;
	int op;

	setenv("P11MAIL_MODULE", env("SOFTHSM_MODULE"), 1);
	OSSL_PROVIDER_set_default_search_path(libctx,
	                                      env("P11MAIL_TEST_PROVIDER_DIR"));
	dflt = OSSL_PROVIDER_load(libctx, "default");
	p11 = OSSL_PROVIDER_load(libctx, "p11mail");
	for (op = 0; op < OP_COUNT; op++) {
		EVP_PKEY *key =
		        p11 != NULL ? store_key(libctx, uri_for(op)) : NULL;

		rates[op] = evp_rate(key, op, in, libctx);
		EVP_PKEY_free(key);
	}
	OSSL_PROVIDER_unload(p11);
	OSSL_PROVIDER_unload(dflt);
	OSSL_LIB_CTX_free(libctx);
}

static void bench_engine(const struct bench_input *in, double *rates)
{
	void *e = bench_engine_open(env("SOFTHSM_MODULE"));
	int op;

	for (op = 0; op < OP_COUNT; op++) {
		EVP_PKEY *key = bench_engine_key(e, uri_for(op));

		rates[op] = evp_rate(key, op, in, NULL);
		EVP_PKEY_free(key);
	}
	bench_engine_close(e);
}

/* Raw PKCS#11: the token found by serial, the key found by CKA_ID. */
struct raw {
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	CK_SESSION_HANDLE s;
	int finalize;
};

static int raw_open(struct raw *r)
{
	CK_C_GetFunctionList get;
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16, i;
	CK_TOKEN_INFO ti;
	CK_RV rv;
	const char *serial = env("ALICE_TOKEN_SERIAL");
	const char *pin = env("ALICE_PIN");

	memset(r, 0, sizeof(*r));
	r->dl = dlopen(env("SOFTHSM_MODULE"), RTLD_NOW);
	if (r->dl == NULL)
		return 0;
	*(void **)&get = dlsym(r->dl, "C_GetFunctionList");
	if (get == NULL || get(&r->f) != CKR_OK)
		return 0;
	rv = r->f->C_Initialize(NULL);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
		return 0;
	r->finalize = rv == CKR_OK;
	if (r->f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return 0;
	for (i = 0; i < n; i++) {
		if (r->f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    memcmp(ti.serialNumber, serial, strlen(serial)) == 0)
			break;
	}
	if (i == n || r->f->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL,
	                                  NULL, &r->s) != CKR_OK)
		return 0;
	rv = r->f->C_Login(r->s, CKU_USER, (CK_UTF8CHAR_PTR)(uintptr_t)pin,
	                   strlen(pin));
	return rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN;
}

static CK_OBJECT_HANDLE raw_key(struct raw *r, unsigned char id)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)},
	                       {CKA_ID, &id, 1}};
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ULONG found = 0;

	if (r->f->C_FindObjectsInit(r->s, tmpl, 2) != CKR_OK)
		return CK_INVALID_HANDLE;
	r->f->C_FindObjects(r->s, &h, 1, &found);
	r->f->C_FindObjectsFinal(r->s);
	return found == 1 ? h : CK_INVALID_HANDLE;
}

static int raw_once(struct raw *r, CK_OBJECT_HANDLE key, enum bench_op op,
                    const struct bench_input *in)
{
	static const unsigned char sha256_prefix[] = {
	        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
	        0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
	unsigned char tbs[64], out[512];
	CK_ULONG out_len = sizeof(out);
	CK_MECHANISM mech = {CKM_RSA_PKCS, NULL, 0};

	if (op == OP_RSA_DECRYPT)
		return r->f->C_DecryptInit(r->s, &mech, key) == CKR_OK &&
		       r->f->C_Decrypt(r->s, (CK_BYTE_PTR)(uintptr_t)in->ct,
		                       in->ct_len, out, &out_len) == CKR_OK;
	if (op == OP_EC_SIGN) {
		mech.mechanism = CKM_ECDSA;
		return r->f->C_SignInit(r->s, &mech, key) == CKR_OK &&
		       r->f->C_Sign(r->s, (CK_BYTE_PTR)(uintptr_t)in->hash,
		                    sizeof(in->hash), out, &out_len) == CKR_OK;
	}
	memcpy(tbs, sha256_prefix, sizeof(sha256_prefix));
	memcpy(tbs + sizeof(sha256_prefix), in->hash, sizeof(in->hash));
	return r->f->C_SignInit(r->s, &mech, key) == CKR_OK &&
	       r->f->C_Sign(r->s, tbs, sizeof(sha256_prefix) + sizeof(in->hash),
	                    out, &out_len) == CKR_OK;
}

static void bench_raw(const struct bench_input *in, double *rates)
{
	struct raw r;
	int op, i;
	int ok = raw_open(&r);

	for (op = 0; op < OP_COUNT; op++) {
		CK_OBJECT_HANDLE key =
		        ok ? raw_key(&r, op == OP_EC_SIGN ? 2 : 1)
		           : CK_INVALID_HANDLE;
		double start;

		rates[op] = -1;
		if (key == CK_INVALID_HANDLE)
			continue;
		for (i = 0; i < WARM_UP; i++)
			raw_once(&r, key, op, in);
		start = now();
		for (i = 0; i < in->iterations; i++)
			if (!raw_once(&r, key, op, in))
				break;
		if (i == in->iterations)
			rates[op] = in->iterations / (now() - start);
	}
	if (r.f != NULL && r.s != 0)
		r.f->C_CloseSession(r.s);
	if (r.f != NULL && r.finalize)
		r.f->C_Finalize(NULL);
}

/* The hash to sign, and its encryption to Alice's RSA certificate. */
static int make_input(struct bench_input *in)
{
	FILE *f = fopen(env("ALICE_RSA_CERT"), "r");
	X509 *cert = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	EVP_PKEY_CTX *ctx = NULL;
	int ok = 0;

	if (f != NULL)
		fclose(f);
	EVP_Digest("p11mail", 7, in->hash, NULL, EVP_sha256(), NULL);
	in->ct_len = sizeof(in->ct);
	if (cert != NULL)
		ctx = EVP_PKEY_CTX_new(X509_get0_pubkey(cert), NULL);
	ok = ctx != NULL && EVP_PKEY_encrypt_init(ctx) > 0 &&
	     EVP_PKEY_encrypt(ctx, in->ct, &in->ct_len, in->hash,
	                      sizeof(in->hash)) > 0;
	EVP_PKEY_CTX_free(ctx);
	X509_free(cert);
	return ok;
}

static void print_rate(const char *name, double rate, int last)
{
	if (rate < 0)
		printf("\"%s\": null%s", name, last ? "" : ", ");
	else
		printf("\"%s\": %.1f%s", name, rate, last ? "" : ", ");
}

int main(int argc, char **argv)
{
	struct bench_input in;
	double prov[OP_COUNT], raw[OP_COUNT], eng[OP_COUNT];
	int op;

	memset(&in, 0, sizeof(in));
	in.iterations = argc > 1 ? atoi(argv[1]) : 200;
	if (in.iterations <= 0 || fixture_setup() != 0) {
		fprintf(stderr, "bench-provider: no fixture: %s\n",
		        fixture_reason());
		return 77;
	}
	if (!make_input(&in)) {
		fprintf(stderr, "bench-provider: cannot prepare the input\n");
		fixture_teardown();
		return 1;
	}
	bench_raw(&in, raw);
	bench_provider(&in, prov);
	bench_engine(&in, eng);

	printf("{\"token\": \"SoftHSM2\", \"iterations\": %d, "
	       "\"unit\": \"operations per second\", \"results\": [\n",
	       in.iterations);
	for (op = 0; op < OP_COUNT; op++) {
		printf("  {\"operation\": \"%s\", ", op_names[op]);
		print_rate("raw_pkcs11", raw[op], 0);
		print_rate("p11mail_provider", prov[op], 0);
		print_rate("libp11_engine", eng[op], 1);
		printf("}%s\n", op + 1 < OP_COUNT ? "," : "");
	}
	printf("]}\n");
	fflush(stdout);
	fixture_teardown();
	return 0;
}
