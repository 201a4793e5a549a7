/*
 * In-process rates on one SoftHSM2 token, each measured against a peer in
 * alternating rounds so that the machine's load hits both sides alike.
 *
 *   bench-lib token ROUNDS SECONDS   raw C_Sign/C_Decrypt against
 *                                    libp11mail's S/MIME sign and decrypt
 *   bench-lib evp ROUNDS SECONDS     the p11mail provider against libp11's
 *                                    ENGINE: EVP signatures and CMS_sign
 *
 * Run under the fixture's variables (tests/fixture/README); evp also wants
 * P11MAIL_TEST_PROVIDER_DIR.  Prints one "NAME A B RATIO" line per pair:
 * the medians of the A and B rates (operations per second) and the median
 * of the per-round ratios B/A.  Exit 1 when an operation fails.
 */
#include "config.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <p11-kit/pkcs11.h>

#include "bench-provider.h"
#include "p11mail.h"

#define MAX_ROUNDS 64

/* One side of a pair: an operation run again and again. */
typedef int (*bench_fn)(void *arg);

struct side {
	bench_fn fn;
	void *arg;
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

/* Operations per second for about secs seconds, or -1 on a failure. */
static double rate(const struct side *s, double secs)
{
	double start = now(), t;
	long n = 0;

	do {
		if (!s->fn(s->arg))
			return -1;
		n++;
		t = now() - start;
	} while (t < secs);
	return (double)n / t;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Runs a against b for rounds rounds, the first side alternating, and
 * prints the medians.  Returns 0, or -1 when either side failed.
 */
static int pair(const char *name, const struct side *a, const struct side *b,
                int rounds, double secs)
{
	double ra[MAX_ROUNDS], rb[MAX_ROUNDS], ratio[MAX_ROUNDS];
	int i;

	/* One untimed call each: key look-up, login, lazy loading. */
	if (!a->fn(a->arg) || !b->fn(b->arg))
		goto fail;
	for (i = 0; i < rounds; i++) {
		if (i % 2 == 0) {
			ra[i] = rate(a, secs);
			rb[i] = rate(b, secs);
		} else {
			rb[i] = rate(b, secs);
			ra[i] = rate(a, secs);
		}
		if (ra[i] <= 0 || rb[i] <= 0)
			goto fail;
		ratio[i] = rb[i] / ra[i];
	}
	printf("%s %.2f %.2f %.4f\n", name, median(ra, rounds),
	       median(rb, rounds), median(ratio, rounds));
	fflush(stdout);
	return 0;

fail:
	fprintf(stderr, "bench-lib: %s failed\n", name);
	return -1;
}

/* ---- raw PKCS#11 ------------------------------------------------------ */

struct raw {
	CK_FUNCTION_LIST_PTR f;
	CK_SESSION_HANDLE s;
};

struct raw_op {
	struct raw *r;
	CK_OBJECT_HANDLE key;
	CK_MECHANISM_TYPE mech;
	int decrypt;
	const unsigned char *in;
	size_t in_len;
};

static CK_SLOT_ID raw_slot(CK_FUNCTION_LIST_PTR f, const char *serial)
{
	CK_SLOT_ID slots[32];
	CK_ULONG n = 32, i;
	CK_TOKEN_INFO ti;

	if (f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return (CK_SLOT_ID)-1;
	for (i = 0; i < n; i++)
		if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    strlen(serial) <= sizeof(ti.serialNumber) &&
		    memcmp(ti.serialNumber, serial, strlen(serial)) == 0)
			return slots[i];
	return (CK_SLOT_ID)-1;
}

/*
 * A session of our own on Alice's token.  The module may already be
 * initialized and logged in by the library in this process: both are
 * fine, and it is never finalized here for the same reason.
 */
static int raw_open(struct raw *r)
{
	void *dl = dlopen(env("SOFTHSM_MODULE"), RTLD_NOW);
	CK_C_GetFunctionList get;
	CK_SLOT_ID slot;
	CK_RV rv;
	const char *pin = env("ALICE_PIN");

	memset(r, 0, sizeof(*r));
	if (dl == NULL)
		return 0;
	*(void **)&get = dlsym(dl, "C_GetFunctionList");
	if (get == NULL || get(&r->f) != CKR_OK)
		return 0;
	rv = r->f->C_Initialize(NULL);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
		return 0;
	slot = raw_slot(r->f, env("ALICE_TOKEN_SERIAL"));
	if (slot == (CK_SLOT_ID)-1 ||
	    r->f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &r->s) !=
	            CKR_OK)
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
	if (r->f->C_FindObjects(r->s, &h, 1, &found) != CKR_OK)
		found = 0;
	r->f->C_FindObjectsFinal(r->s);
	return found == 1 ? h : CK_INVALID_HANDLE;
}

static int raw_once(void *arg)
{
	struct raw_op *op = arg;
	CK_FUNCTION_LIST_PTR f = op->r->f;
	CK_MECHANISM mech = {op->mech, NULL, 0};
	CK_BYTE_PTR in = (CK_BYTE_PTR)(uintptr_t)op->in;
	unsigned char out[512];
	CK_ULONG out_len = sizeof(out);

	if (op->decrypt)
		return f->C_DecryptInit(op->r->s, &mech, op->key) == CKR_OK &&
		       f->C_Decrypt(op->r->s, in, op->in_len, out, &out_len) ==
		               CKR_OK;
	return f->C_SignInit(op->r->s, &mech, op->key) == CKR_OK &&
	       f->C_Sign(op->r->s, in, op->in_len, out, &out_len) == CKR_OK;
}

/* ---- libp11mail ------------------------------------------------------- */

struct lib_op {
	p11mail_smime *smime;
	int decrypt;
	const unsigned char *in;
	size_t in_len;
};

static int lib_once(void *arg)
{
	struct lib_op *op = arg;
	unsigned char *out = NULL;
	size_t out_len = 0;
	int aead = 0;
	enum p11mail_status st;

	if (op->decrypt)
		st = p11mail_smime_decrypt(op->smime, op->in, op->in_len, &out,
		                           &out_len, &aead);
	else
		st = p11mail_smime_sign(op->smime, 0, op->in, op->in_len, &out,
		                        &out_len);
	p11mail_smime_release(out, out_len);
	return st == P11MAIL_OK;
}

/* A 1 KiB message from Alice to Bob: headers and a text body. */
static void make_message(char *buf, size_t size)
{
	static const char head[] = "From: alice@north-clinic.test\r\n"
	                           "To: bob@south-lab.test\r\n"
	                           "Subject: Befund\r\n"
	                           "MIME-Version: 1.0\r\n"
	                           "Content-Type: text/plain; charset=us-ascii"
	                           "\r\n\r\n";
	size_t used = strlen(head);

	memcpy(buf, head, used);
	while (used + 66 < size) {
		memcpy(buf + used,
		       "The results are attached below; please call the lab.",
		       52);
		memset(buf + used + 52, '.', 12);
		memcpy(buf + used + 64, "\r\n", 2);
		used += 66;
	}
	memset(buf + used, 'x', size - used - 2);
	memcpy(buf + size - 2, "\r\n", 2);
}

static p11mail_smime *lib_context(const char *uri, const char *cert)
{
	char key[2048];
	p11mail_smime *smime = NULL;

	snprintf(key, sizeof(key), "%s?pin-value=%s", uri, env("ALICE_PIN"));
	if (p11mail_smime_new(&smime) != P11MAIL_OK)
		return NULL;
	if (p11mail_smime_set_identity(smime, key, cert, NULL) != P11MAIL_OK ||
	    p11mail_smime_add_anchor_file(smime, env("CA_CERT")) !=
	            P11MAIL_OK ||
	    p11mail_smime_add_cert_file(smime, cert) != P11MAIL_OK) {
		p11mail_smime_free(smime);
		return NULL;
	}
	return smime;
}

/* The digest a signature covers: DigestInfo for RSA, the hash for EC. */
static size_t make_tbs(int ec, unsigned char *tbs)
{
	static const unsigned char prefix[] = {
	        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
	        0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
	unsigned char hash[32];

	EVP_Digest("p11mail", 7, hash, NULL, EVP_sha256(), NULL);
	if (ec) {
		memcpy(tbs, hash, 32);
		return 32;
	}
	memcpy(tbs, prefix, sizeof(prefix));
	memcpy(tbs + sizeof(prefix), hash, 32);
	return sizeof(prefix) + 32;
}

/* PKCS#1 v1.5 encryption of 32 bytes to the certificate's key. */
static size_t rsa_encrypt(const char *cert_file, unsigned char *ct)
{
	FILE *f = fopen(cert_file, "r");
	X509 *cert = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	EVP_PKEY_CTX *ctx = NULL;
	unsigned char secret[32];
	size_t len = 512;

	if (f != NULL)
		fclose(f);
	memset(secret, 0x5a, sizeof(secret));
	if (cert != NULL)
		ctx = EVP_PKEY_CTX_new(X509_get0_pubkey(cert), NULL);
	if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) <= 0 ||
	    EVP_PKEY_encrypt(ctx, ct, &len, secret, sizeof(secret)) <= 0)
		len = 0;
	EVP_PKEY_CTX_free(ctx);
	X509_free(cert);
	return len;
}

static int run_token(int rounds, double secs)
{
	char msg[1024];
	unsigned char tbs_rsa[64], tbs_ec[64], ct[512];
	unsigned char *enc = NULL;
	size_t enc_len = 0;
	p11mail_smime *rsa =
	        lib_context(env("ALICE_RSA_URI"), env("ALICE_RSA_CERT"));
	p11mail_smime *ec =
	        lib_context(env("ALICE_EC_URI"), env("ALICE_EC_CERT"));
	const char *to = "alice@north-clinic.test";
	struct raw r;
	struct raw_op raw_rsa = {&r, 0, CKM_RSA_PKCS, 0, tbs_rsa, 0};
	struct raw_op raw_ec = {&r, 0, CKM_ECDSA, 0, tbs_ec, 0};
	struct raw_op raw_dec = {&r, 0, CKM_RSA_PKCS, 1, ct, 0};
	struct lib_op lib_rsa = {rsa, 0, (unsigned char *)msg, sizeof(msg)};
	struct lib_op lib_ec = {ec, 0, (unsigned char *)msg, sizeof(msg)};
	struct lib_op lib_dec = {rsa, 1, NULL, 0};
	enum p11mail_status st;
	int rc = 1;

	make_message(msg, sizeof(msg));
	raw_rsa.in_len = make_tbs(0, tbs_rsa);
	raw_ec.in_len = make_tbs(1, tbs_ec);
	raw_dec.in_len = rsa_encrypt(env("ALICE_RSA_CERT"), ct);
	if (rsa == NULL || ec == NULL || raw_dec.in_len == 0) {
		fprintf(stderr, "bench-lib: cannot use Alice's keys\n");
		goto out;
	}
	st = p11mail_smime_encrypt(rsa, 0, &to, 1, (unsigned char *)msg,
	                           sizeof(msg), &enc, &enc_len);
	if (st != P11MAIL_OK) {
		fprintf(stderr, "bench-lib: cannot encrypt: %s\n",
		        p11mail_strerror(st));
		goto out;
	}
	lib_dec.in = enc;
	lib_dec.in_len = enc_len;

	/* The library logs in first; the raw session shares that login. */
	if (!lib_once(&lib_rsa) || !raw_open(&r)) {
		fprintf(stderr, "bench-lib: cannot open the token\n");
		goto out;
	}
	raw_rsa.key = raw_dec.key = raw_key(&r, 1);
	raw_ec.key = raw_key(&r, 2);
	if (pair("lib_sign_rsa", &(struct side){raw_once, &raw_rsa},
	         &(struct side){lib_once, &lib_rsa}, rounds, secs) == 0 &&
	    pair("lib_sign_ec", &(struct side){raw_once, &raw_ec},
	         &(struct side){lib_once, &lib_ec}, rounds, secs) == 0 &&
	    pair("lib_decrypt_rsa", &(struct side){raw_once, &raw_dec},
	         &(struct side){lib_once, &lib_dec}, rounds, secs) == 0)
		rc = 0;

out:
	p11mail_smime_release(enc, enc_len);
	p11mail_smime_free(rsa);
	p11mail_smime_free(ec);
	return rc;
}

/* ---- provider against ENGINE ------------------------------------------ */

struct evp_op {
	EVP_PKEY *key;
	OSSL_LIB_CTX *libctx; /* NULL: the default context (the ENGINE) */
	X509 *cert;           /* set: CMS_sign of msg instead of a hash */
	const unsigned char *in;
	size_t in_len;
};

static int evp_once(void *arg)
{
	struct evp_op *op = arg;
	EVP_PKEY_CTX *ctx =
	        EVP_PKEY_CTX_new_from_pkey(op->libctx, op->key, NULL);
	unsigned char out[512];
	size_t len = sizeof(out);
	int ok = ctx != NULL && EVP_PKEY_sign_init(ctx) > 0 &&
	         EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0 &&
	         EVP_PKEY_sign(ctx, out, &len, op->in, op->in_len) > 0;

	EVP_PKEY_CTX_free(ctx);
	return ok;
}

/* A detached CMS signature of the message, as openssl cms -sign makes. */
static int cms_once(void *arg)
{
	struct evp_op *op = arg;
	BIO *in = BIO_new_mem_buf(op->in, (int)op->in_len);
	CMS_ContentInfo *cms = NULL;
	unsigned char *der = NULL;
	int len = 0;

	if (in != NULL)
		cms = CMS_sign_ex(op->cert, op->key, NULL, in,
		                  CMS_DETACHED | CMS_BINARY, op->libctx, NULL);
	if (cms != NULL)
		len = i2d_CMS_ContentInfo(cms, &der);
	OPENSSL_free(der);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	return len > 0;
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

static X509 *read_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *cert = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

	if (f != NULL)
		fclose(f);
	return cert;
}

static const char *key_uri(const char *var)
{
	static char buf[2][2048];
	static int which;

	which ^= 1;
	snprintf(buf[which], sizeof(buf[which]), "%s?pin-value=%s", env(var),
	         env("ALICE_PIN"));
	return buf[which];
}

struct evp_keys {
	EVP_PKEY *p_rsa, *p_ec, *e_rsa, *e_ec;
};

static int evp_pairs(const struct evp_keys *k, OSSL_LIB_CTX *libctx, X509 *cert,
                     int rounds, double secs)
{
	char msg[1024];
	unsigned char hash[32];
	struct evp_op p_rsa = {k->p_rsa, libctx, NULL, hash, 32};
	struct evp_op e_rsa = {k->e_rsa, NULL, NULL, hash, 32};
	struct evp_op p_ec = {k->p_ec, libctx, NULL, hash, 32};
	struct evp_op e_ec = {k->e_ec, NULL, NULL, hash, 32};
	struct evp_op p_cms = {k->p_rsa, libctx, cert, (unsigned char *)msg,
	                       sizeof(msg)};
	struct evp_op e_cms = {k->e_rsa, NULL, cert, (unsigned char *)msg,
	                       sizeof(msg)};

	make_message(msg, sizeof(msg));
	EVP_Digest(msg, sizeof(msg), hash, NULL, EVP_sha256(), NULL);
	if (pair("evp_sign_rsa", &(struct side){evp_once, &e_rsa},
	         &(struct side){evp_once, &p_rsa}, rounds, secs) != 0 ||
	    pair("evp_sign_ec", &(struct side){evp_once, &e_ec},
	         &(struct side){evp_once, &p_ec}, rounds, secs) != 0 ||
	    pair("cms_sign_rsa", &(struct side){cms_once, &e_cms},
	         &(struct side){cms_once, &p_cms}, rounds, secs) != 0)
		return 1;
	return 0;
}

static int run_evp(int rounds, double secs)
{
	OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
	OSSL_PROVIDER *dflt = NULL, *p11 = NULL;
	void *engine = NULL;
	X509 *cert = read_cert(env("ALICE_RSA_CERT"));
	struct evp_keys k = {NULL, NULL, NULL, NULL};
	int rc = 1;

	if (libctx == NULL || cert == NULL)
		goto out;
	OSSL_PROVIDER_set_default_search_path(libctx,
	                                      env("P11MAIL_TEST_PROVIDER_DIR"));
	dflt = OSSL_PROVIDER_load(libctx, "default");
	p11 = OSSL_PROVIDER_load(libctx, "p11mail");
	if (dflt == NULL || p11 == NULL) {
		fprintf(stderr, "bench-lib: cannot load the p11mail provider "
		                "from P11MAIL_TEST_PROVIDER_DIR\n");
		goto out;
	}
	k.p_rsa = store_key(libctx, key_uri("ALICE_RSA_URI"));
	k.p_ec = store_key(libctx, key_uri("ALICE_EC_URI"));
	engine = bench_engine_open(env("SOFTHSM_MODULE"));
	k.e_rsa = bench_engine_key(engine, key_uri("ALICE_RSA_URI"));
	k.e_ec = bench_engine_key(engine, key_uri("ALICE_EC_URI"));
	if (k.p_rsa == NULL || k.p_ec == NULL || k.e_rsa == NULL ||
	    k.e_ec == NULL) {
		fprintf(stderr,
		        "bench-lib: cannot load the keys (provider "
		        "%s, ENGINE %s)\n",
		        k.p_rsa && k.p_ec ? "ok" : "failed",
		        k.e_rsa && k.e_ec ? "ok" : "failed");
		goto out;
	}
	rc = evp_pairs(&k, libctx, cert, rounds, secs);

out:
	EVP_PKEY_free(k.p_rsa);
	EVP_PKEY_free(k.p_ec);
	EVP_PKEY_free(k.e_rsa);
	EVP_PKEY_free(k.e_ec);
	X509_free(cert);
	bench_engine_close(engine);
	OSSL_PROVIDER_unload(p11);
	OSSL_PROVIDER_unload(dflt);
	OSSL_LIB_CTX_free(libctx);
	return rc;
}

int main(int argc, char **argv)
{
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	double secs = argc > 3 ? atof(argv[3]) : 1.0;

	if (argc < 2 || rounds < 1 || rounds > MAX_ROUNDS || secs <= 0) {
		fprintf(stderr, "usage: bench-lib token|evp [ROUNDS [SECONDS]]"
		                "\n");
		return 2;
	}
	if (getenv("SOFTHSM_MODULE") == NULL) {
		fprintf(stderr, "bench-lib: run under the test fixture\n");
		return 2;
	}
	/* The library and the provider load the fixture's module. */
	setenv("P11MAIL_MODULE", env("SOFTHSM_MODULE"), 1);
	if (strcmp(argv[1], "token") == 0)
		return run_token(rounds, secs);
	if (strcmp(argv[1], "evp") == 0)
		return run_evp(rounds, secs);
	fprintf(stderr, "bench-lib: unknown mode %s\n", argv[1]);
	return 2;
}
