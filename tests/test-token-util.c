/* Helpers shared by the token core tests. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "tap.h"
#include "test-token-util.h"

const char *tt_env(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0') {
		char why[128];

		snprintf(why, sizeof(why),
		         "%s is not set: run under the fixture", name);
		tap_skip_all(why);
	}
	return v;
}

void tt_backend(const char *name, struct tt_backend *b)
{
	memset(b, 0, sizeof(*b));
	b->name = name;
	if (strcmp(name, "nss") == 0) {
		b->module = tt_env("NSS_MODULE");
		b->init_args = tt_env("NSS_INIT_ARGS");
		b->rsa_uri = tt_env("NSS_RSA_URI");
		b->ec_uri = tt_env("NSS_EC_URI");
		b->rsa_cert = tt_env("NSS_RSA_CERT");
		b->ec_cert = tt_env("NSS_EC_CERT");
		b->pin = tt_env("NSS_PIN");
		b->pin_file = tt_env("NSS_PIN_FILE");
		return;
	}
	b->module = tt_env("SOFTHSM_MODULE");
	b->rsa_uri = tt_env("ALICE_RSA_URI");
	b->ec_uri = tt_env("ALICE_EC_URI");
	b->rsa_cert = tt_env("ALICE_RSA_CERT");
	b->ec_cert = tt_env("ALICE_EC_CERT");
	b->pin = tt_env("ALICE_PIN");
	b->pin_file = tt_env("ALICE_PIN_FILE");
}

tok_core *tt_core(const struct tt_backend *b, struct tok_options *opts)
{
	struct tok_options o;
	tok_core *core = NULL;

	memset(&o, 0, sizeof(o));
	if (opts != NULL)
		o = *opts;
	o.module_path = b->module;
	o.init_args = b->init_args;
	if (tok_core_new(&o, &core) != CKR_OK)
		return NULL;
	return core;
}

char *tt_uri(const char *base, const char *query)
{
	size_t len = strlen(base) + strlen(query) + 2;
	char *s = malloc(len);

	if (s != NULL)
		snprintf(s, len, "%s?%s", base, query);
	return s;
}

char *tt_uri_pin(const struct tt_backend *b, const char *base)
{
	char q[1024];

	snprintf(q, sizeof(q), "pin-source=file:%s", b->pin_file);
	return tt_uri(base, q);
}

static X509 *read_cert(const char *pem_path)
{
	FILE *f = fopen(pem_path, "r");
	X509 *x;

	if (f == NULL)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

EVP_PKEY *tt_cert_key(const char *pem_path)
{
	X509 *x = read_cert(pem_path);
	EVP_PKEY *k = x ? X509_get_pubkey(x) : NULL;

	X509_free(x);
	return k;
}

unsigned char *tt_cert_der(const char *pem_path, size_t *len)
{
	X509 *x = read_cert(pem_path);
	unsigned char *der = NULL;
	int n = x ? i2d_X509(x, &der) : -1;

	X509_free(x);
	*len = n > 0 ? (size_t)n : 0;
	return n > 0 ? der : NULL;
}

void tt_sha256(const char *msg, unsigned char out[32])
{
	unsigned int n = 32;

	EVP_Digest(msg, strlen(msg), out, &n, EVP_sha256(), NULL);
}

size_t tt_digest_info(const unsigned char hash[32], unsigned char *out)
{
	static const unsigned char prefix[] = {
	        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
	        0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};

	memcpy(out, prefix, sizeof(prefix));
	memcpy(out + sizeof(prefix), hash, 32);
	return sizeof(prefix) + 32;
}

/* r || s to the DER ECDSA-Sig-Value OpenSSL verifies. */
static unsigned char *ecdsa_der(const unsigned char *sig, size_t len,
                                int *der_len)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, (int)(len / 2), NULL);
	BIGNUM *s = BN_bin2bn(sig + len / 2, (int)(len / 2), NULL);
	unsigned char *der = NULL;

	*der_len = -1;
	if (es != NULL && r != NULL && s != NULL &&
	    ECDSA_SIG_set0(es, r, s) == 1) {
		r = s = NULL;
		*der_len = i2d_ECDSA_SIG(es, &der);
	}
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return der;
}

int tt_verify(EVP_PKEY *pub, enum tok_sig_scheme scheme, int salt,
              const unsigned char hash[32], const unsigned char *sig,
              size_t sig_len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);
	unsigned char *der = NULL;
	int ok = 0, der_len = 0;

	if (ctx == NULL || EVP_PKEY_verify_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1)
		goto out;
	if (scheme == TOK_SIG_PKCS1 &&
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1)
		goto out;
	if (scheme == TOK_SIG_PSS &&
	    (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, salt) != 1 ||
	     EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) != 1))
		goto out;
	if (scheme == TOK_SIG_ECDSA) {
		der = ecdsa_der(sig, sig_len, &der_len);
		if (der == NULL)
			goto out;
		sig = der;
		sig_len = (size_t)der_len;
	}
	ok = EVP_PKEY_verify(ctx, sig, sig_len, hash, 32) == 1;
out:
	OPENSSL_free(der);
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

int tt_encrypt(EVP_PKEY *pub, int pad, const EVP_MD *md,
               const unsigned char *label, size_t label_len,
               const unsigned char *in, size_t in_len, unsigned char *out,
               size_t *out_len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);
	int ok = 0;

	if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, pad) != 1)
		goto out;
	if (pad == RSA_PKCS1_OAEP_PADDING &&
	    (EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) != 1 ||
	     EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) != 1))
		goto out;
	if (label != NULL) {
		unsigned char *copy = OPENSSL_memdup(label, label_len);
		if (copy == NULL || EVP_PKEY_CTX_set0_rsa_oaep_label(
		                            ctx, copy, (int)label_len) != 1) {
			OPENSSL_free(copy);
			goto out;
		}
	}
	ok = EVP_PKEY_encrypt(ctx, out, out_len, in, in_len) == 1;
out:
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

int tt_count_trace(const char *path, const char *word)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	int n = 0;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, word) != NULL)
			n++;
	fclose(f);
	return n;
}
