/*
 * libp11mail's private library context: the built-in provider loads token
 * keys and their certificates by URI, CMS signs and decrypts with them,
 * software keys keep working, failures come back as statuses, and the
 * process-wide default context never sees the provider.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>

#include "fixture.h"
#include "libctx.h"
#include "tap.h"

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL ? v : "";
}

/* A URI from the fixture with the PIN file of its token appended. */
static char *uri_with_pin(const char *uri_var, const char *pin_var)
{
	static char buf[4][1024];
	static int next;
	char *out = buf[next++ % 4];

	snprintf(out, sizeof(buf[0]), "%s?pin-source=file:%s", env(uri_var),
	         env(pin_var));
	return out;
}

static int pin_calls;
static const char *pin_answer;

/* The application's PIN callback: counts calls, answers pin_answer. */
static int app_pin(void *arg, const struct tok_pin_request *req, char *buf,
                   size_t size)
{
	pin_calls++;
	if (pin_answer == NULL)
		return -1;
	snprintf(buf, size, "%s", pin_answer);
	return 0;
}

static p11m_libctx *softhsm_ctx(void)
{
	struct tok_options opts = {0};
	p11m_libctx *lc = NULL;

	opts.module_path = env("SOFTHSM_MODULE");
	opts.pin_fn = app_pin;
	tap_check(p11m_libctx_new(&opts, &lc) == P11MAIL_OK);
	return lc;
}

static X509 *read_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	if (f == NULL)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

static void test_default_context_untouched(void)
{
	p11m_libctx *lc = softhsm_ctx();

	tap_check(lc != NULL);
	tap_check(OSSL_PROVIDER_available(p11m_libctx_get(lc), "p11mail"));
	tap_check(OSSL_PROVIDER_available(p11m_libctx_get(lc), "default"));
	tap_check(!OSSL_PROVIDER_available(NULL, "p11mail"));
	p11m_libctx_free(lc);
}

/* Signs "msg" with CMS in the private context; verifies in the default. */
static int cms_roundtrip(p11m_libctx *lc, EVP_PKEY *key, X509 *cert)
{
	const char msg[] = "signed through the private context\r\n";
	BIO *in = BIO_new_mem_buf(msg, (int)strlen(msg));
	BIO *out = BIO_new(BIO_s_mem());
	X509_STORE *store = X509_STORE_new();
	CMS_ContentInfo *cms = NULL;
	X509 *ca = read_cert(env("CA_CERT"));
	int ok = 0;

	cms = CMS_sign_ex(cert, key, NULL, in, CMS_BINARY, p11m_libctx_get(lc),
	                  NULL);
	if (cms == NULL || ca == NULL || store == NULL)
		goto out;
	X509_STORE_add_cert(store, ca);
	(void)BIO_reset(in);
	ok = CMS_verify(cms, NULL, store, NULL, out, CMS_BINARY) == 1;
out:
	if (!ok)
		ERR_print_errors_fp(stdout);
	CMS_ContentInfo_free(cms);
	X509_STORE_free(store);
	X509_free(ca);
	BIO_free(in);
	BIO_free(out);
	return ok;
}

static void check_key(const char *uri_var, const char *cert_var,
                      const char *type)
{
	p11m_libctx *lc = softhsm_ctx();
	EVP_PKEY *key = NULL;
	X509 *cert = NULL, *file_cert = read_cert(env(cert_var));
	const char *uri = uri_with_pin(uri_var, "ALICE_PIN_FILE");

	if (!tap_check(lc != NULL))
		goto out;
	tap_check(p11m_libctx_load_key(lc, uri, &key) == P11MAIL_OK);
	tap_check(p11m_libctx_load_cert(lc, uri, &cert) == P11MAIL_OK);
	if (!tap_check(key != NULL && cert != NULL && file_cert != NULL))
		goto out;
	tap_check(EVP_PKEY_is_a(key, type));
	tap_check(X509_cmp(cert, file_cert) == 0);
	tap_check(X509_check_private_key(cert, key) == 1);
	tap_check(cms_roundtrip(lc, key, cert));
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	X509_free(file_cert);
	p11m_libctx_free(lc);
}

static void test_rsa_key_and_cert(void)
{
	check_key("ALICE_RSA_URI", "ALICE_RSA_CERT", "RSA");
}

static void test_ec_key_and_cert(void)
{
	check_key("ALICE_EC_URI", "ALICE_EC_CERT", "EC");
}

/* Encrypts in the default context, decrypts with the token key. */
static void test_decrypt(void)
{
	const char *names[][2] = {{"ALICE_RSA_URI", "ALICE_RSA_CERT"},
	                          {"ALICE_EC_URI", "ALICE_EC_CERT"}};
	const char msg[] = "for alice only";
	p11m_libctx *lc = softhsm_ctx();
	size_t i;

	for (i = 0; lc != NULL && i < 2; i++) {
		X509 *cert = read_cert(env(names[i][1]));
		STACK_OF(X509) *recips = sk_X509_new_null();
		BIO *in = BIO_new_mem_buf(msg, (int)strlen(msg));
		BIO *out = BIO_new(BIO_s_mem());
		CMS_ContentInfo *cms = NULL;
		EVP_PKEY *key = NULL;
		char *plain = NULL;
		long len = 0;

		sk_X509_push(recips, cert);
		cms = CMS_encrypt(recips, in, EVP_aes_256_cbc(), CMS_BINARY);
		tap_check(cms != NULL);
		tap_check(p11m_libctx_load_key(
		                  lc,
		                  uri_with_pin(names[i][0], "ALICE_PIN_FILE"),
		                  &key) == P11MAIL_OK);
		tap_check(cms != NULL && key != NULL &&
		          CMS_decrypt(cms, key, cert, NULL, out, 0) == 1);
		len = BIO_get_mem_data(out, &plain);
		tap_check(len == (long)strlen(msg) &&
		          memcmp(plain, msg, strlen(msg)) == 0);
		EVP_PKEY_free(key);
		CMS_ContentInfo_free(cms);
		sk_X509_free(recips);
		X509_free(cert);
		BIO_free(in);
		BIO_free(out);
	}
	p11m_libctx_free(lc);
}

static void test_failures_map_to_statuses(void)
{
	p11m_libctx *lc = softhsm_ctx();
	EVP_PKEY *key = NULL;
	char uri[1024];

	if (!tap_check(lc != NULL))
		return;

	/* First, while nobody is logged in to the token. */
	snprintf(uri, sizeof(uri), "%s?pin-value=999999", env("ALICE_RSA_URI"));
	tap_check(p11m_libctx_load_key(lc, uri, &key) ==
	          P11MAIL_ERR_PIN_INCORRECT);
	tap_check(key == NULL);
	snprintf(uri, sizeof(uri),
	         "pkcs11:serial=%s;id=%%09;type=private?pin-source=file:%s",
	         env("ALICE_TOKEN_SERIAL"), env("ALICE_PIN_FILE"));
	tap_check(p11m_libctx_load_key(lc, uri, &key) == P11MAIL_ERR_NO_KEY);
	snprintf(uri, sizeof(uri),
	         "pkcs11:serial=%s;type=private?pin-source=file:%s",
	         env("ALICE_TOKEN_SERIAL"), env("ALICE_PIN_FILE"));
	tap_check(p11m_libctx_load_key(lc, uri, &key) == P11MAIL_ERR_AMBIGUOUS);
	tap_check(key == NULL);
	tap_check(ERR_peek_error() == 0);
	p11m_libctx_free(lc);
}

/* The application's callback gives the PIN; a wrong one is asked once. */
static void test_app_pin_callback(void)
{
	p11m_libctx *lc = softhsm_ctx();
	EVP_PKEY *key = NULL;

	pin_calls = 0;
	pin_answer = "999999";
	tap_check(p11m_libctx_load_key(lc, env("BOB_RSA_URI"), &key) ==
	          P11MAIL_ERR_PIN_INCORRECT);
	tap_check(pin_calls == 1);
	p11m_libctx_free(lc);

	lc = softhsm_ctx();
	pin_calls = 0;
	pin_answer = env("BOB_PIN");
	tap_check(p11m_libctx_load_key(lc, env("BOB_RSA_URI"), &key) ==
	          P11MAIL_OK);
	tap_check(pin_calls == 1 && key != NULL);
	EVP_PKEY_free(key);
	pin_answer = NULL;
	p11m_libctx_free(lc);
}

/* Software keys keep going to the default provider in the context. */
static void test_software_key(void)
{
	p11m_libctx *lc = softhsm_ctx();
	FILE *f = fopen(env("DAVE_KEY"), "r");
	EVP_PKEY *key = NULL;
	X509 *cert = read_cert(env("DAVE_CERT"));

	if (f != NULL) {
		key = PEM_read_PrivateKey_ex(f, NULL, NULL, NULL,
		                             p11m_libctx_get(lc), NULL);
		fclose(f);
	}
	tap_check(key != NULL && cert != NULL);
	tap_check(key != NULL &&
	          strcmp(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(key)),
	                 "default") == 0);
	tap_check(key != NULL && cert != NULL && cms_roundtrip(lc, key, cert));
	EVP_PKEY_free(key);
	X509_free(cert);
	p11m_libctx_free(lc);
}

static const struct tap_case cases[] = {
        {"test_default_context_untouched", test_default_context_untouched},
        {"test_rsa_key_and_cert", test_rsa_key_and_cert},
        {"test_ec_key_and_cert", test_ec_key_and_cert},
        {"test_decrypt", test_decrypt},
        {"test_failures_map_to_statuses", test_failures_map_to_statuses},
        {"test_app_pin_callback", test_app_pin_callback},
        {"test_software_key", test_software_key},
};

int main(void)
{
	int rc;

	if (fixture_setup() != 0)
		tap_skip_all(fixture_reason());
	rc = tap_run(cases, sizeof(cases) / sizeof(cases[0]));
	fixture_teardown();
	return rc;
}
