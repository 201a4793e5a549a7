/*
 * Deleting and replacing token objects, and listings that meet tokens no
 * key can be on (SoftHSM2's uninitialized spare slot); on SoftHSM2 and
 * NSS softokn (argv[1]).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/x509.h>

#include "tap.h"
#include "test-token-util.h"
#include "tok-internal.h"

static struct tt_backend b;
static char token_uri[1024], token_base[512];
static int is_nss;

/* A self-signed certificate for pk with a serial, DER in a new buffer. */
static unsigned char *self_signed(EVP_PKEY *pk, long serial, size_t *len)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	unsigned char *der = NULL;
	int n = -1;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                           (const unsigned char *)"deleted", -1, -1, 0);
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

/* What the token holds with this id: objects of each class, -1 on error. */
struct census {
	int priv, pub, cert;
	int cert_is; /* certificates whose DER is the one asked about */
};

static int count_id(tok_core *core, unsigned char id, const unsigned char *der,
                    size_t der_len, struct census *c)
{
	struct tok_object *objs = NULL;
	char uri[1200];
	size_t n = 0, i;

	memset(c, 0, sizeof(*c));
	snprintf(uri, sizeof(uri), "%s;id=%%%02x?pin-source=file:%s",
	         token_base, id, b.pin_file);
	if (tok_list_objects(core, uri, &objs, &n) != CKR_OK) {
		tap_diag("listing %s: %s", uri, tok_last_error());
		return -1;
	}
	for (i = 0; i < n; i++) {
		c->priv += objs[i].cls == CKO_PRIVATE_KEY;
		c->pub += objs[i].cls == CKO_PUBLIC_KEY;
		c->cert += objs[i].cls == CKO_CERTIFICATE;
		c->cert_is += objs[i].cls == CKO_CERTIFICATE && der != NULL &&
		              objs[i].der_len == der_len &&
		              memcmp(objs[i].der, der, der_len) == 0;
	}
	tok_objects_free(objs, n);
	return 0;
}

/* Imports a new P-256 key with id, and a certificate for it unless 0. */
static EVP_PKEY *put_key(tok_core *core, unsigned char id, long serial)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	unsigned char *der = NULL;
	size_t len = 0;
	CK_RV rv;

	if (pk == NULL)
		return NULL;
	rv = tok_import_key(core, token_uri, pk, &id, 1, "deleted", NULL);
	if (rv == CKR_OK && serial != 0) {
		der = self_signed(pk, serial, &len);
		rv = tok_write_certificate(core, token_uri, der, len, &id, 1,
		                           "deleted");
	}
	OPENSSL_free(der);
	if (rv != CKR_OK) {
		tap_diag("writing id %02x: %s", id, tok_last_error());
		EVP_PKEY_free(pk);
		pk = NULL;
	}
	return pk;
}

static void test_list_skips_blank_tokens(void)
{
	tok_core *core = tt_core(&b, NULL);
	struct tok_object *objs = NULL;
	size_t n = 0, i;
	int certs = 0;
	CK_RV rv;

	/* Every token of the module; SoftHSM2 adds an uninitialized one. */
	rv = tok_list_objects(core, "pkcs11:", &objs, &n);
	if (!tap_check(rv == CKR_OK))
		tap_diag("%s: %s", tok_rv_name(rv), tok_last_error());
	for (i = 0; i < n; i++)
		certs += objs[i].cls == CKO_CERTIFICATE;
	tap_check(certs >= 2);
	tok_objects_free(objs, n);
	objs = NULL;

	/* A URI naming only the model matches the blank token too. */
	rv = tok_list_objects(
	        core,
	        is_nss ? "pkcs11:manufacturer=Mozilla%20Foundation"
	               : "pkcs11:model=SoftHSM%20v2",
	        &objs, &n);
	if (!tap_check(rv == CKR_OK))
		tap_diag("%s: %s", tok_rv_name(rv), tok_last_error());
	tok_objects_free(objs, n);
	tok_core_free(core);
}

static void test_blank_token_never_matches(void)
{
	tok_core *core = tt_core(&b, NULL);
	struct tok_object *objs = NULL;
	size_t n = 0;
	CK_RV rv;

	if (is_nss) {
		tap_skip("NSS softokn has no uninitialized token");
		tok_core_free(core);
		return;
	}
	/* SoftHSM2's spare slot reports an empty label and serial. */
	rv = tok_list_objects(core, "pkcs11:token=", &objs, &n);
	tap_check(rv == CKR_TOKEN_NOT_PRESENT && objs == NULL && n == 0);
	rv = tok_generate_key(core,
	                      "pkcs11:model=SoftHSM%20v2;token=", TOK_KEY_EC,
	                      NID_X9_62_prime256v1,
	                      (const unsigned char *)"\x7f", 1, "x", NULL);
	tap_check(rv == CKR_TOKEN_NOT_PRESENT);
	tok_core_free(core);
}

static void test_delete_cert_then_keys(void)
{
	tok_core *core = tt_core(&b, NULL);
	unsigned char id = 0x71;
	EVP_PKEY *pk = put_key(core, id, 7101);
	struct census c;
	size_t n = 99;
	tok_key *key = NULL;
	char uri[1200];
	CK_RV rv;

	if (!tap_check(pk != NULL))
		goto out;
	tap_check(count_id(core, id, NULL, 0, &c) == 0 && c.priv == 1 &&
	          c.pub == 1 && c.cert == 1);

	rv = tok_delete_objects(core, token_uri, &id, 1, TOK_DELETE_CERT, &n);
	if (!tap_check(rv == CKR_OK && n == 1))
		tap_diag("%s: %s (%zu)", tok_rv_name(rv), tok_last_error(), n);
	tap_check(count_id(core, id, NULL, 0, &c) == 0 && c.priv == 1 &&
	          c.pub == 1 && c.cert == 0);

	/* Nothing left of that class: fine, and nothing counted. */
	rv = tok_delete_objects(core, token_uri, &id, 1, TOK_DELETE_CERT, &n);
	tap_check(rv == CKR_OK && n == 0);

	rv = tok_delete_objects(core, token_uri, &id, 1, TOK_DELETE_KEYS, &n);
	tap_check(rv == CKR_OK && n == 2);
	tap_check(count_id(core, id, NULL, 0, &c) == 0 && c.priv == 0 &&
	          c.pub == 0 && c.cert == 0);
	snprintf(uri, sizeof(uri), "%s;id=%%71;type=private?pin-source=file:%s",
	         token_base, b.pin_file);
	tap_check(tok_key_open(core, uri, &key) == CKR_KEY_HANDLE_INVALID &&
	          key == NULL);
out:
	EVP_PKEY_free(pk);
	tok_core_free(core);
}

static void test_delete_by_uri_id(void)
{
	tok_core *core = tt_core(&b, NULL);
	EVP_PKEY *pk = put_key(core, 0x72, 7201);
	struct census c;
	char uri[1200];
	size_t n = 0;
	CK_RV rv;

	if (!tap_check(pk != NULL))
		goto out;
	/* The key's URI, type and all, names what goes; id from the URI. */
	snprintf(uri, sizeof(uri), "%s;id=%%72;type=private?pin-source=file:%s",
	         token_base, b.pin_file);
	rv = tok_delete_objects(core, uri, NULL, 0, TOK_DELETE_ALL, &n);
	if (!tap_check(rv == CKR_OK && n == 3))
		tap_diag("%s: %s (%zu)", tok_rv_name(rv), tok_last_error(), n);
	tap_check(count_id(core, 0x72, NULL, 0, &c) == 0 &&
	          c.priv + c.pub + c.cert == 0);
out:
	EVP_PKEY_free(pk);
	tok_core_free(core);
}

/* The fixture's RSA key still signs: nothing was deleted by a refusal. */
static int rsa_key_intact(tok_core *core)
{
	char *uri = tt_uri_pin(&b, b.rsa_uri);
	tok_key *key = NULL;
	int ok;

	ok = uri != NULL && tok_key_open(core, uri, &key) == CKR_OK &&
	     tok_key_info(key)->cert_der != NULL;
	tok_key_unref(key);
	free(uri);
	return ok;
}

static void test_delete_refusals(void)
{
	tok_core *core = tt_core(&b, NULL);
	const unsigned char *rsa_id;
	tok_key *key = NULL;
	char *uri = tt_uri_pin(&b, b.rsa_uri);
	size_t n = 99, id_len;
	CK_RV rv;

	if (!tap_check(tok_key_open(core, uri, &key) == CKR_OK))
		goto out;
	rsa_id = tok_key_info(key)->id;
	id_len = tok_key_info(key)->id_len;

	/* No id at all: refused, never "everything on the token". */
	rv = tok_delete_objects(core, token_uri, NULL, 0, TOK_DELETE_ALL, &n);
	tap_check(rv == CKR_ARGUMENTS_BAD && n == 0);
	tap_check(strstr(tok_last_error(), "id") != NULL);
	rv = tok_delete_objects(core, token_uri, rsa_id, id_len, 0, &n);
	tap_check(rv == CKR_ARGUMENTS_BAD && n == 0);
	rv = tok_delete_objects(core, "pkcs11:serial=00000000deadbeef", rsa_id,
	                        id_len, TOK_DELETE_ALL, &n);
	tap_check(rv == CKR_TOKEN_NOT_PRESENT && n == 0);
	rv = tok_delete_objects(core, "pkcs11:;;=bad", rsa_id, id_len,
	                        TOK_DELETE_ALL, &n);
	tap_check(rv == CKR_ARGUMENTS_BAD && n == 0);
	/* One softokn database holds one key token: nothing ambiguous. */
	if (!is_nss) {
		/* Alice's and Bob's tokens both have an id 01: refused. */
		rv = tok_delete_objects(core, "pkcs11:model=SoftHSM%20v2",
		                        rsa_id, id_len, TOK_DELETE_ALL, &n);
		tap_check(rv == CKR_ARGUMENTS_BAD && n == 0);
		tap_check(strstr(tok_last_error(), "2 tokens") != NULL);
	}
	tok_key_unref(key);
	key = NULL;
	tap_check(rsa_key_intact(core));
out:
	tok_key_unref(key);
	free(uri);
	tok_core_free(core);
}

static void test_replace_certificate(void)
{
	static const unsigned char junk[] = "not a certificate";
	tok_core *core = tt_core(&b, NULL);
	unsigned char id = 0x73, *a = NULL, *bb = NULL;
	EVP_PKEY *pk = put_key(core, id, 0);
	size_t a_len = 0, b_len = 0;
	tok_key *key = NULL;
	struct census c;
	char uri[1200];
	CK_RV rv;

	if (!tap_check(pk != NULL))
		goto out;
	a = self_signed(pk, 7301, &a_len);
	bb = self_signed(pk, 7302, &b_len);
	/* With no certificate yet, replacing is writing. */
	rv = tok_replace_certificate(core, token_uri, a, a_len, &id, 1,
	                             "replaced");
	if (!tap_check(rv == CKR_OK))
		tap_diag("%s: %s", tok_rv_name(rv), tok_last_error());
	tap_check(count_id(core, id, a, a_len, &c) == 0 && c.cert == 1 &&
	          c.cert_is == 1);

	rv = tok_replace_certificate(core, token_uri, bb, b_len, &id, 1,
	                             "replaced");
	if (!tap_check(rv == CKR_OK))
		tap_diag("%s: %s", tok_rv_name(rv), tok_last_error());
	tap_check(count_id(core, id, bb, b_len, &c) == 0 && c.cert == 1 &&
	          c.cert_is == 1 && c.priv == 1);

	/* The same one again changes nothing. */
	rv = tok_replace_certificate(core, token_uri, bb, b_len, &id, 1,
	                             "replaced");
	tap_check(rv == CKR_OK);
	tap_check(count_id(core, id, bb, b_len, &c) == 0 && c.cert == 1 &&
	          c.cert_is == 1);

	/* Junk is refused before the token is touched. */
	rv = tok_replace_certificate(core, token_uri, junk, sizeof(junk), &id,
	                             1, "replaced");
	tap_check(rv == CKR_ARGUMENTS_BAD);
	tap_check(tok_replace_certificate(core, token_uri, a, a_len, NULL, 0,
	                                  "replaced") == CKR_ARGUMENTS_BAD);
	tap_check(count_id(core, id, bb, b_len, &c) == 0 && c.cert == 1 &&
	          c.cert_is == 1);

	/* The key, opened afresh, pairs with the new certificate. */
	snprintf(uri, sizeof(uri), "%s;id=%%73;type=private?pin-source=file:%s",
	         token_base, b.pin_file);
	tap_check(tok_key_open(core, uri, &key) == CKR_OK &&
	          tok_key_info(key)->cert_der_len == b_len &&
	          memcmp(tok_key_info(key)->cert_der, bb, b_len) == 0);
	tok_key_unref(key);
	tap_check(tok_delete_objects(core, uri, NULL, 0, TOK_DELETE_ALL,
	                             NULL) == CKR_OK);
out:
	OPENSSL_free(a);
	OPENSSL_free(bb);
	EVP_PKEY_free(pk);
	tok_core_free(core);
}

static const struct tap_case cases[] = {
        {"test_list_skips_blank_tokens", test_list_skips_blank_tokens},
        {"test_blank_token_never_matches", test_blank_token_never_matches},
        {"test_delete_cert_then_keys", test_delete_cert_then_keys},
        {"test_delete_by_uri_id", test_delete_by_uri_id},
        {"test_delete_refusals", test_delete_refusals},
        {"test_replace_certificate", test_replace_certificate},
};

int main(int argc, char **argv)
{
	tt_backend(argc > 1 ? argv[1] : "softhsm", &b);
	is_nss = strcmp(b.name, "nss") == 0;
	if (is_nss)
		snprintf(token_base, sizeof(token_base),
		         "pkcs11:token=NSS%%20Certificate%%20DB");
	else
		snprintf(token_base, sizeof(token_base), "pkcs11:serial=%s",
		         tt_env("ALICE_TOKEN_SERIAL"));
	snprintf(token_uri, sizeof(token_uri), "%s?pin-source=file:%s",
	         token_base, b.pin_file);
	return tap_run(cases, sizeof(cases) / sizeof(cases[0]));
}
