/*
 * Helpers shared by the token core tests: the fixture's variables, cores
 * on SoftHSM2 or NSS softokn, and OpenSSL checks of what the token made.
 */
#ifndef P11MAIL_TEST_TOKEN_UTIL_H
#define P11MAIL_TEST_TOKEN_UTIL_H

#include <stddef.h>

#include <openssl/evp.h>

#include "token.h"

/* The token a test runs on, as the fixture describes it. */
struct tt_backend {
	const char *name; /* "softhsm" or "nss" */
	const char *module;
	const char *init_args; /* NULL for SoftHSM2 */
	const char *rsa_uri;
	const char *ec_uri;
	const char *rsa_cert;
	const char *ec_cert;
	const char *pin;
	const char *pin_file;
};

/* A fixture variable; skips the whole program when it is not set. */
const char *tt_env(const char *name);

/* Fills b for "softhsm" or "nss" from the fixture's variables. */
void tt_backend(const char *name, struct tt_backend *b);

/* A core on b's module with the given options (module and init args set). */
tok_core *tt_core(const struct tt_backend *b, struct tok_options *opts);

/* "base?query" in a new string; the caller frees it. */
char *tt_uri(const char *base, const char *query);

/* The URI of base with the backend's PIN file appended; caller frees. */
char *tt_uri_pin(const struct tt_backend *b, const char *base);

/* The public key of a PEM certificate file; EVP_PKEY_free it. */
EVP_PKEY *tt_cert_key(const char *pem_path);

/* The DER of a PEM certificate file in a new buffer. */
unsigned char *tt_cert_der(const char *pem_path, size_t *len);

/* SHA-256 of msg into out (32 bytes). */
void tt_sha256(const char *msg, unsigned char out[32]);

/* A DER DigestInfo around a SHA-256 hash; writes 51 bytes. */
size_t tt_digest_info(const unsigned char hash[32], unsigned char *out);

/* Verifies sig over hash: PKCS#1 v1.5, PSS (salt) or ECDSA r || s. */
int tt_verify(EVP_PKEY *pub, enum tok_sig_scheme scheme, int salt,
              const unsigned char hash[32], const unsigned char *sig,
              size_t sig_len);

/* Encrypts with OpenSSL: pad is RSA_PKCS1_PADDING, ..._OAEP_ or NO_. */
int tt_encrypt(EVP_PKEY *pub, int pad, const EVP_MD *md,
               const unsigned char *label, size_t label_len,
               const unsigned char *in, size_t in_len, unsigned char *out,
               size_t *out_len);

/* Counts lines containing word in the trace file at path. */
int tt_count_trace(const char *path, const char *word);

#endif /* P11MAIL_TEST_TOKEN_UTIL_H */
