/*
 * Every private-key operation of the token core on a real token (SoftHSM2
 * or NSS softokn, named by argv[1]), each result checked with OpenSSL
 * against the certificate's public key, raw RSA fallbacks included.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/rsa.h>

#include "tap.h"
#include "test-token-util.h"
#include "tok-internal.h"

static struct tt_backend b;

/* How often the trace shows raw RSA (CKM_RSA_X_509); -1 without a trace. */
static int raw_rsa_uses(void)
{
	const char *path = getenv("P11MAIL_DEBUG");

	if (path == NULL || path[0] != '/')
		return -1;
	return tt_count_trace(path, "with mechanism 0x3");
}

/* Opens uri (with the PIN file) on a new core; masked mechanism optional. */
static tok_key *open_key(const char *base, CK_MECHANISM_TYPE mask,
                         tok_core **core)
{
	char *uri = tt_uri_pin(&b, base);
	tok_key *key = NULL;
	CK_RV rv;

	*core = tt_core(&b, NULL);
	if (*core == NULL || uri == NULL) {
		free(uri);
		return NULL;
	}
	if (mask != 0)
		tok_core_mask_mechanism(*core, mask);
	rv = tok_key_open(*core, uri, &key);
	if (rv != CKR_OK)
		tap_diag("tok_key_open: %s: %s", tok_rv_name(rv),
		         tok_last_error());
	free(uri);
	return key;
}

static void sign_rsa(enum tok_sig_scheme scheme, CK_MECHANISM_TYPE mask)
{
	struct tok_sig_params p = {scheme, NID_sha256, NID_sha256, 32};
	unsigned char hash[32], tbs[64], sig[512];
	size_t tbs_len = 32, sig_len = 0;
	EVP_PKEY *pub = tt_cert_key(b.rsa_cert);
	tok_core *core = NULL;
	tok_key *key = open_key(b.rsa_uri, mask, &core);
	int raw = raw_rsa_uses();

	tt_sha256("a message for the token", hash);
	memcpy(tbs, hash, 32);
	if (scheme == TOK_SIG_PKCS1)
		tbs_len = tt_digest_info(hash, tbs);
	if (!tap_check(key != NULL && pub != NULL))
		goto out;
	tap_check(tok_key_sign(key, &p, tbs, tbs_len, NULL, &sig_len) ==
	          CKR_OK);
	tap_check(sig_len == 256);
	sig_len = sizeof(sig);
	tap_check(tok_key_sign(key, &p, tbs, tbs_len, sig, &sig_len) == CKR_OK);
	tap_check(sig_len == 256);
	tap_check(tt_verify(pub, scheme, 32, hash, sig, sig_len));
	if (raw >= 0)
		tap_check((raw_rsa_uses() > raw) == (mask != 0));
	/* A signature over other data must not verify. */
	hash[0] ^= 1;
	tap_check(!tt_verify(pub, scheme, 32, hash, sig, sig_len));
out:
	EVP_PKEY_free(pub);
	tok_key_unref(key);
	tok_core_free(core);
}

static void test_sign_pkcs1(void)
{
	sign_rsa(TOK_SIG_PKCS1, 0);
}

static void test_sign_pss(void)
{
	sign_rsa(TOK_SIG_PSS, 0);
}

static void test_sign_pss_raw_fallback(void)
{
	sign_rsa(TOK_SIG_PSS, CKM_RSA_PKCS_PSS);
}

static void test_sign_ecdsa(void)
{
	struct tok_sig_params p = {TOK_SIG_ECDSA, NID_sha256, 0, 0};
	unsigned char hash[32], sig[132];
	size_t sig_len = 0;
	EVP_PKEY *pub = tt_cert_key(b.ec_cert);
	tok_core *core = NULL;
	tok_key *key = open_key(b.ec_uri, 0, &core);

	tt_sha256("an EC message", hash);
	if (!tap_check(key != NULL && pub != NULL))
		goto out;
	tap_check(tok_key_info(key)->type == TOK_KEY_EC);
	tap_check(tok_key_info(key)->bits == 256);
	tap_check(tok_key_sign(key, &p, hash, 32, NULL, &sig_len) == CKR_OK &&
	          sig_len == 64);
	sig_len = sizeof(sig);
	tap_check(tok_key_sign(key, &p, hash, 32, sig, &sig_len) == CKR_OK);
	tap_check(sig_len == 64);
	tap_check(tt_verify(pub, TOK_SIG_ECDSA, 0, hash, sig, sig_len));
	hash[5] ^= 0x40;
	tap_check(!tt_verify(pub, TOK_SIG_ECDSA, 0, hash, sig, sig_len));
out:
	EVP_PKEY_free(pub);
	tok_key_unref(key);
	tok_core_free(core);
}

static void test_sign_wrong_scheme(void)
{
	struct tok_sig_params p = {TOK_SIG_ECDSA, NID_sha256, 0, 0};
	unsigned char hash[32] = {0}, sig[512];
	size_t sig_len = sizeof(sig);
	tok_core *core = NULL;
	tok_key *key = open_key(b.rsa_uri, 0, &core);

	if (tap_check(key != NULL))
		tap_check(tok_key_sign(key, &p, hash, 32, sig, &sig_len) ==
		          CKR_KEY_TYPE_INCONSISTENT);
	sig_len = 10;
	p.scheme = TOK_SIG_PKCS1;
	if (key != NULL)
		tap_check(tok_key_sign(key, &p, hash, 32, sig, &sig_len) ==
		          CKR_BUFFER_TOO_SMALL);
	tok_key_unref(key);
	tok_core_free(core);
}

/* Encrypts secret with OpenSSL and decrypts it with the token. */
static void decrypt_rsa(const struct tok_dec_params *p, int pad,
                        const EVP_MD *md, CK_MECHANISM_TYPE mask)
{
	static const unsigned char secret[] = "content-encryption key 0123456";
	unsigned char ct[512], out[512];
	size_t ct_len = sizeof(ct), out_len = sizeof(out);
	EVP_PKEY *pub = tt_cert_key(b.rsa_cert);
	tok_core *core = NULL;
	tok_key *key = open_key(b.rsa_uri, mask, &core);
	int raw = raw_rsa_uses();
	CK_RV rv;

	if (!tap_check(key != NULL && pub != NULL))
		goto out;
	if (!tap_check(tt_encrypt(pub, pad, md, p->label, p->label_len, secret,
	                          sizeof(secret), ct, &ct_len)))
		goto out;
	rv = tok_key_decrypt(key, p, ct, ct_len, out, &out_len);
	if (!tap_check(rv == CKR_OK))
		tap_diag("decrypt: %s %s", tok_rv_name(rv), tok_last_error());
	tap_check(out_len == sizeof(secret) &&
	          memcmp(out, secret, sizeof(secret)) == 0);
	if (raw >= 0 && mask != 0)
		tap_check(raw_rsa_uses() > raw);

	/*
	 * A changed byte fails with the one generic error, or, on tokens
	 * that answer PKCS#1 v1.5 padding errors with implicit rejection
	 * (NSS softokn), yields a plaintext unrelated to the secret.
	 */
	ct[ct_len / 2] ^= 0x01;
	out_len = sizeof(out);
	memset(out, 0, sizeof(out));
	rv = tok_key_decrypt(key, p, ct, ct_len, out, &out_len);
	if (rv == CKR_OK && p->scheme == TOK_DEC_PKCS1) {
		tap_diag("implicit rejection: %zu bytes of noise", out_len);
		tap_check(out_len != sizeof(secret) ||
		          memcmp(out, secret, sizeof(secret)) != 0);
	} else {
		tap_check(rv == CKR_ENCRYPTED_DATA_INVALID);
		tap_check(tok_status(rv) == P11MAIL_ERR_DECRYPT);
	}
out:
	EVP_PKEY_free(pub);
	tok_key_unref(key);
	tok_core_free(core);
}

static void test_decrypt_pkcs1(void)
{
	struct tok_dec_params p = {TOK_DEC_PKCS1, 0, 0, NULL, 0};

	decrypt_rsa(&p, RSA_PKCS1_PADDING, NULL, 0);
}

static void test_decrypt_oaep_sha1(void)
{
	struct tok_dec_params p = {TOK_DEC_OAEP, NID_sha1, NID_sha1, NULL, 0};

	decrypt_rsa(&p, RSA_PKCS1_OAEP_PADDING, EVP_sha1(), 0);
}

static void test_decrypt_oaep_sha256_label(void)
{
	static const unsigned char label[] = "p11mail";
	struct tok_dec_params p = {TOK_DEC_OAEP, NID_sha256, NID_sha256, label,
	                           7};

	decrypt_rsa(&p, RSA_PKCS1_OAEP_PADDING, EVP_sha256(), 0);
}

static void test_decrypt_oaep_raw_fallback(void)
{
	struct tok_dec_params p = {TOK_DEC_OAEP, NID_sha256, NID_sha256, NULL,
	                           0};

	decrypt_rsa(&p, RSA_PKCS1_OAEP_PADDING, EVP_sha256(),
	            CKM_RSA_PKCS_OAEP);
}

static void test_decrypt_raw(void)
{
	struct tok_dec_params p = {TOK_DEC_RAW, 0, 0, NULL, 0};
	unsigned char msg[256], ct[256], out[256];
	size_t ct_len = sizeof(ct), out_len = sizeof(out);
	EVP_PKEY *pub = tt_cert_key(b.rsa_cert);
	tok_core *core = NULL;
	tok_key *key = open_key(b.rsa_uri, 0, &core);

	memset(msg, 0x5a, sizeof(msg));
	msg[0] = 0; /* below the modulus */
	msg[1] = 0x01;
	if (!tap_check(key != NULL && pub != NULL))
		goto out;
	tap_check(tt_encrypt(pub, RSA_NO_PADDING, NULL, NULL, 0, msg,
	                     sizeof(msg), ct, &ct_len));
	tap_check(tok_key_decrypt(key, &p, ct, ct_len, out, &out_len) ==
	          CKR_OK);
	tap_check(out_len == 256 && memcmp(out, msg, 256) == 0);
out:
	EVP_PKEY_free(pub);
	tok_key_unref(key);
	tok_core_free(core);
}

/* The peer's point, the shared secret by OpenSSL, and the token's. */
static void test_derive(void)
{
	EVP_PKEY *peer = EVP_EC_gen("P-256");
	EVP_PKEY *pub = tt_cert_key(b.ec_cert);
	EVP_PKEY_CTX *ctx = NULL;
	unsigned char pt[80], want[32], got[64];
	size_t pt_len = 0, want_len = sizeof(want), got_len = sizeof(got);
	tok_core *core = NULL;
	tok_key *key = open_key(b.ec_uri, 0, &core);
	CK_RV rv;

	if (!tap_check(key != NULL && peer != NULL && pub != NULL))
		goto out;
	tap_check(EVP_PKEY_get_octet_string_param(
	                  peer, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt,
	                  sizeof(pt), &pt_len) == 1);
	ctx = EVP_PKEY_CTX_new(peer, NULL);
	tap_check(ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
	          EVP_PKEY_derive_set_peer(ctx, pub) == 1 &&
	          EVP_PKEY_derive(ctx, want, &want_len) == 1);
	rv = tok_key_derive(key, pt, pt_len, got, &got_len);
	if (!tap_check(rv == CKR_OK))
		tap_diag("derive: %s %s", tok_rv_name(rv), tok_last_error());
	tap_check(got_len == want_len && memcmp(got, want, want_len) == 0);

	/* A point not on the curve is refused. */
	pt[10] ^= 0x01;
	got_len = sizeof(got);
	tap_check(tok_key_derive(key, pt, pt_len, got, &got_len) != CKR_OK);
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
	EVP_PKEY_free(pub);
	tok_key_unref(key);
	tok_core_free(core);
}

static void test_key_info(void)
{
	tok_core *core = NULL;
	tok_key *key = open_key(b.rsa_uri, 0, &core);
	const struct tok_key_info *info;
	unsigned char *der = NULL;
	size_t der_len = 0;

	if (!tap_check(key != NULL))
		goto out;
	info = tok_key_info(key);
	der = tt_cert_der(b.rsa_cert, &der_len);
	tap_check(info->type == TOK_KEY_RSA && info->bits == 2048);
	tap_check(info->modulus_len == 256 && info->exponent_len > 0);
	tap_check(info->cert_der != NULL && info->cert_der_len == der_len &&
	          memcmp(info->cert_der, der, der_len) == 0);
	tap_check(strstr(info->uri, "serial=") != NULL &&
	          strstr(info->uri, "id=") != NULL &&
	          strstr(info->uri, "type=private") != NULL);
	tap_check(info->always_authenticate == 0);
	tap_diag("canonical URI: %s", info->uri);
out:
	OPENSSL_free(der);
	tok_key_unref(key);
	tok_core_free(core);
}

static const struct tap_case cases[] = {
        {"test_key_info", test_key_info},
        {"test_sign_pkcs1", test_sign_pkcs1},
        {"test_sign_pss", test_sign_pss},
        {"test_sign_pss_raw_fallback", test_sign_pss_raw_fallback},
        {"test_sign_ecdsa", test_sign_ecdsa},
        {"test_sign_wrong_scheme", test_sign_wrong_scheme},
        {"test_decrypt_pkcs1", test_decrypt_pkcs1},
        {"test_decrypt_oaep_sha1", test_decrypt_oaep_sha1},
        {"test_decrypt_oaep_sha256_label", test_decrypt_oaep_sha256_label},
        {"test_decrypt_oaep_raw_fallback", test_decrypt_oaep_raw_fallback},
        {"test_decrypt_raw", test_decrypt_raw},
        {"test_derive", test_derive},
};

int main(int argc, char **argv)
{
	tt_backend(argc > 1 ? argv[1] : "softhsm", &b);
	return tap_run(cases, sizeof(cases) / sizeof(cases[0]));
}
