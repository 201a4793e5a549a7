/*
 * Writing to tokens for p11mail-certinstall: key generation on the token,
 * importing a software key (sensitive, non-extractable), writing its
 * certificate, and listing what a URI matches; on SoftHSM2 and NSS
 * softokn (argv[1]).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "tap.h"
#include "test-token-util.h"
#include "tok-internal.h"

static struct tt_backend b;
static char token_uri[1024], token_base[512];

/* The public key a token key reports, as an OpenSSL key. */
static EVP_PKEY *info_pubkey(const struct tok_key_info *info)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY_CTX *ctx = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY *pk = NULL;
	BIGNUM *n = NULL, *e = NULL;

	if (info->type == TOK_KEY_RSA) {
		n = BN_bin2bn(info->modulus, (int)info->modulus_len, NULL);
		e = BN_bin2bn(info->exponent, (int)info->exponent_len, NULL);
		OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n);
		OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	} else {
		OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
		                                "prime256v1", 0);
		OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
		                                 info->ec_point,
		                                 info->ec_point_len);
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	}
	params = OSSL_PARAM_BLD_to_param(bld);
	if (ctx != NULL && params != NULL && EVP_PKEY_fromdata_init(ctx) == 1)
		EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	BN_free(n);
	BN_free(e);
	return pk;
}

static int sign_verify(tok_key *key, EVP_PKEY *pub)
{
	int ec = tok_key_info(key)->type == TOK_KEY_EC;
	struct tok_sig_params p = {ec ? TOK_SIG_ECDSA : TOK_SIG_PKCS1,
	                           NID_sha256, 0, 0};
	unsigned char hash[32], tbs[64], sig[512];
	size_t sig_len = sizeof(sig), n = 32;

	tt_sha256("written key", hash);
	memcpy(tbs, hash, 32);
	if (!ec)
		n = tt_digest_info(hash, tbs);
	return pub != NULL &&
	       tok_key_sign(key, &p, tbs, n, sig, &sig_len) == CKR_OK &&
	       tt_verify(pub, p.scheme, 0, hash, sig, sig_len);
}

/* Reads a boolean attribute of the key's private object. */
static int key_bool(tok_key *key, CK_ATTRIBUTE_TYPE type)
{
	CK_BBOOL v = CK_FALSE;
	CK_ATTRIBUTE a = {type, &v, sizeof(v)};
	CK_SESSION_HANDLE h;

	if (tok_session_get(key->tok, &h) != CKR_OK)
		return -1;
	if (key->tok->mod->fl->C_GetAttributeValue(h, key->handle, &a, 1) !=
	    CKR_OK)
		v = 0xff;
	tok_session_put(key->tok, h, CKR_OK);
	return v == 0xff ? -1 : v == CK_TRUE;
}

static void generate(enum tok_key_type type, unsigned int arg, unsigned char id)
{
	tok_core *core = tt_core(&b, NULL);
	tok_key *key = NULL;
	EVP_PKEY *pub = NULL;
	CK_RV rv;

	rv = tok_generate_key(core, token_uri, type, arg, &id, 1, "generated",
	                      &key);
	if (!tap_check(rv == CKR_OK && key != NULL)) {
		tap_diag("%s: %s", tok_rv_name(rv), tok_last_error());
		goto out;
	}
	pub = info_pubkey(tok_key_info(key));
	tap_check(sign_verify(key, pub));
	tap_check(key_bool(key, CKA_SENSITIVE) == 1);
	tap_check(key_bool(key, CKA_EXTRACTABLE) == 0);

	/* The same id again is refused: lookups stay unambiguous. */
	tok_key_unref(key);
	key = NULL;
	rv = tok_generate_key(core, token_uri, type, arg, &id, 1, "again",
	                      &key);
	tap_check(rv != CKR_OK && key == NULL);
out:
	EVP_PKEY_free(pub);
	tok_key_unref(key);
	tok_core_free(core);
}

static void test_generate_rsa(void)
{
	generate(TOK_KEY_RSA, 2048, 0x41);
}

static void test_generate_ec(void)
{
	generate(TOK_KEY_EC, NID_X9_62_prime256v1, 0x42);
}

/* A self-signed certificate for pk, DER in a new buffer. */
static unsigned char *self_signed(EVP_PKEY *pk, long serial, size_t *len)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	unsigned char *der = NULL;
	int n = -1;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                           (const unsigned char *)"imported", -1, -1,
	                           0);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, name);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, pk);
	if (X509_sign(x, pk, EVP_sha256()) > 0)
		n = i2d_X509(x, &der);
	X509_NAME_free(name);
	X509_free(x);
	*len = n > 0 ? (size_t)n : 0;
	return der;
}

static void import(EVP_PKEY *pk, unsigned char id)
{
	tok_core *core = tt_core(&b, NULL);
	struct tok_object *objs = NULL;
	tok_key *key = NULL, *again = NULL;
	unsigned char *der = NULL;
	size_t der_len = 0, n = 0, i;
	char uri[1200];
	int certs = 0, keys = 0;
	CK_RV rv;

	if (!tap_check(pk != NULL))
		goto out;
	rv = tok_import_key(core, token_uri, pk, &id, 1, "imported", &key);
	if (!tap_check(rv == CKR_OK && key != NULL)) {
		tap_diag("%s: %s", tok_rv_name(rv), tok_last_error());
		goto out;
	}
	tap_check(sign_verify(key, pk));
	tap_check(key_bool(key, CKA_SENSITIVE) == 1);
	tap_check(key_bool(key, CKA_EXTRACTABLE) == 0);

	der = self_signed(pk, 4700 + id, &der_len);
	rv = tok_write_certificate(core, token_uri, der, der_len, &id, 1,
	                           "imported");
	if (!tap_check(rv == CKR_OK))
		tap_diag("%s: %s", tok_rv_name(rv), tok_last_error());
	tap_check(tok_write_certificate(core, token_uri, der, der_len, &id, 1,
	                                "imported") != CKR_OK);

	/* Opened afresh, the key finds the certificate by its public key. */
	snprintf(uri, sizeof(uri), "%s?pin-source=file:%s",
	         tok_key_info(key)->uri, b.pin_file);
	tap_check(tok_key_open(core, uri, &again) == CKR_OK);
	tap_check(again != NULL &&
	          tok_key_info(again)->cert_der_len == der_len &&
	          memcmp(tok_key_info(again)->cert_der, der, der_len) == 0);

	/* The listing shows private key, public key and certificate. */
	rv = tok_list_objects(core, uri, &objs, &n);
	tap_check(rv == CKR_OK);
	tap_diag("listing: %zu objects", n);
	for (i = 0; i < n; i++) {
		if (objs[i].cls == CKO_CERTIFICATE &&
		    objs[i].der_len == der_len)
			certs++;
		if (objs[i].cls == CKO_PRIVATE_KEY && objs[i].id_len == 1 &&
		    objs[i].id[0] == id)
			keys++;
	}
	tap_check(certs == 0 && keys == 1); /* type=private in the URI */
	tok_objects_free(objs, n);
	objs = NULL;
	snprintf(uri, sizeof(uri), "%s;id=%%%02x?pin-source=file:%s",
	         token_base, id, b.pin_file);
	rv = tok_list_objects(core, uri, &objs, &n);
	tap_check(rv == CKR_OK && n == 3);
	for (i = 0, certs = 0; i < n; i++)
		certs += objs[i].cls == CKO_CERTIFICATE &&
		         objs[i].der_len == der_len &&
		         memcmp(objs[i].der, der, der_len) == 0;
	tap_check(certs == 1);
out:
	tok_objects_free(objs, n);
	OPENSSL_free(der);
	tok_key_unref(again);
	tok_key_unref(key);
	tok_core_free(core);
}

static void test_import_rsa(void)
{
	EVP_PKEY *pk = EVP_RSA_gen(2048);

	import(pk, 0x51);
	EVP_PKEY_free(pk);
}

static void test_import_ec(void)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");

	import(pk, 0x52);
	EVP_PKEY_free(pk);
}

static void test_write_bad_input(void)
{
	static const unsigned char junk[] = "not a certificate";
	unsigned char id = 0x61;
	tok_core *core = tt_core(&b, NULL);

	tap_check(tok_write_certificate(core, token_uri, junk, sizeof(junk),
	                                &id, 1, "junk") == CKR_ARGUMENTS_BAD);
	tap_check(tok_generate_key(core, "pkcs11:serial=00000000deadbeef",
	                           TOK_KEY_EC, NID_X9_62_prime256v1, &id, 1,
	                           "x", NULL) == CKR_TOKEN_NOT_PRESENT);
	tok_core_free(core);
}

static const struct tap_case cases[] = {
        {"test_generate_rsa", test_generate_rsa},
        {"test_generate_ec", test_generate_ec},
        {"test_import_rsa", test_import_rsa},
        {"test_import_ec", test_import_ec},
        {"test_write_bad_input", test_write_bad_input},
};

int main(int argc, char **argv)
{
	tt_backend(argc > 1 ? argv[1] : "softhsm", &b);
	if (strcmp(b.name, "nss") == 0)
		snprintf(token_base, sizeof(token_base),
		         "pkcs11:token=NSS%%20Certificate%%20DB");
	else
		snprintf(token_base, sizeof(token_base), "pkcs11:serial=%s",
		         tt_env("ALICE_TOKEN_SERIAL"));
	/* The writing calls log in through the URI's PIN source. */
	snprintf(token_uri, sizeof(token_uri), "%s?pin-source=file:%s",
	         token_base, b.pin_file);
	return tap_run(cases, sizeof(cases) / sizeof(cases[0]));
}
