/*
 * The provider's key object: a reference to a key resolved by the token
 * core, or a public-only EC key (the peer of an ECDH derivation, which
 * OpenSSL's CMS code builds from the parameters of the token key).
 */
#ifndef P11MAIL_PROVIDER_KEY_H
#define P11MAIL_PROVIDER_KEY_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/params.h>

#include "provider.h"

struct p11prov_key {
	unsigned int magic;
	struct p11prov_ctx *ctx;
	enum tok_key_type type;
	tok_key *tok;         /* NULL for a public-only key */
	int nid;              /* EC curve, NID_undef when unknown */
	unsigned int bits;    /* modulus or field size */
	unsigned char *point; /* public-only EC: 04 || X || Y */
	size_t point_len;
};

/* Makes an empty public-only key of a type; NULL when out of memory. */
struct p11prov_key *p11prov_key_new(struct p11prov_ctx *ctx,
                                    enum tok_key_type type);

/*
 * Makes a key object holding a new reference to a token key.  Returns NULL
 * (with an error queued) when out of memory or the curve is unknown.
 */
struct p11prov_key *p11prov_key_from_tok(struct p11prov_ctx *ctx, tok_key *tok);

/* Copies a key object; the token key, if any, gains a reference. */
struct p11prov_key *p11prov_key_dup(const struct p11prov_key *key,
                                    int with_private);

/* Releases a key object; accepts NULL. */
void p11prov_key_free(struct p11prov_key *key);

/* Returns the key object a STORE reference points to, or NULL. */
struct p11prov_key *p11prov_key_from_reference(const void *ref,
                                               size_t ref_size);

/*
 * Sets the curve (by NID) of a public-only key.  Returns 1, or 0 for a
 * curve OpenSSL does not know.
 */
int p11prov_key_set_curve(struct p11prov_key *key, int nid);

/*
 * Sets the point of a public-only EC key after checking that it lies on
 * the key's curve.  Returns 1 or 0.
 */
int p11prov_key_set_point(struct p11prov_key *key, const unsigned char *point,
                          size_t len);

/* The public point of an EC key (borrowed), or NULL with *len 0. */
const unsigned char *p11prov_key_point(const struct p11prov_key *key,
                                       size_t *len);

/* RSA modulus and exponent (borrowed, big-endian); NULL when absent. */
const unsigned char *p11prov_key_modulus(const struct p11prov_key *key,
                                         size_t *len);
const unsigned char *p11prov_key_exponent(const struct p11prov_key *key,
                                          size_t *len);

/* Size in bytes of a signature or of a decryption output buffer. */
size_t p11prov_key_max_size(const struct p11prov_key *key);

/* Security strength in bits of the key, as OpenSSL reports it. */
int p11prov_key_security_bits(const struct p11prov_key *key);

/* True when two keys have the same public parts (and curve). */
int p11prov_key_public_eq(const struct p11prov_key *a,
                          const struct p11prov_key *b);

/*
 * The public parts of a key as OpenSSL key parameters (RSA n and e; EC
 * group name and point), limited by an OSSL_KEYMGMT_SELECT_* selection.
 * Free with OSSL_PARAM_free; NULL when out of memory or parts are missing.
 */
OSSL_PARAM *p11prov_key_public_params(const struct p11prov_key *key,
                                      int selection);

/*
 * A software copy of the public key, made by the providers other than this
 * one, for verifying signatures.  Free with EVP_PKEY_free; NULL on failure.
 */
EVP_PKEY *p11prov_key_soft_public(const struct p11prov_key *key);

/*
 * Makes *slot a copy of key (the private half kept when with_private and
 * the key has one), freeing what *slot held.  Returns 1, or 0 when out of
 * memory with *slot unchanged.
 */
int p11prov_key_set(const struct p11prov_key *key, int with_private,
                    struct p11prov_key **slot);

/*
 * Like p11prov_key_set for an operation that needs the private key of a
 * token: a key of another type or without a token half is refused with
 * "the key is not <what>" on prov's error queue.  Returns 1 or 0.
 */
int p11prov_key_set_private(const struct p11prov_ctx *prov,
                            const struct p11prov_key *key,
                            enum tok_key_type type, const char *what,
                            struct p11prov_key **slot);

/*
 * Copies len bytes of src into a new buffer in *dst (NULL and 0 when src
 * is NULL).  Returns 1, or 0 when out of memory.
 */
int p11prov_bytes_dup(const unsigned char *src, size_t len, unsigned char **dst,
                      size_t *dst_len);

#endif /* P11MAIL_PROVIDER_KEY_H */
