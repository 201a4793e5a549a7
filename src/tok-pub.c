/*
 * Public keys as tokens store them and as certificates carry them: a key
 * and a certificate belong together only when their public keys are equal.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "common.h"
#include "tok-internal.h"

const unsigned char *tok_ec_point_raw(const unsigned char *p, size_t len,
                                      size_t *raw_len)
{
	size_t hdr = 2, body;

	*raw_len = len;
	if (len < 3 || p[0] != 0x04)
		return p;
	/* An uncompressed raw point has odd length (04 || X || Y). */
	if (len % 2 == 1 && p[1] != len - 2 && !(p[1] & 0x80))
		return p;
	if (p[1] < 0x80) {
		body = p[1];
	} else if (p[1] == 0x81 && len > 3) {
		body = p[2];
		hdr = 3;
	} else if (p[1] == 0x82 && len > 4) {
		body = ((size_t)p[2] << 8) | p[3];
		hdr = 4;
	} else {
		return p;
	}
	if (hdr + body != len || body == 0 || p[hdr] != 0x04)
		return p;
	*raw_len = body;
	return p + hdr;
}

unsigned int tok_ec_bits(const unsigned char *params, size_t len)
{
	const unsigned char *p = params;
	ASN1_OBJECT *obj = d2i_ASN1_OBJECT(NULL, &p, (long)len);
	EC_GROUP *group = NULL;
	unsigned int bits = 0;

	if (obj == NULL)
		return 0;
	group = EC_GROUP_new_by_curve_name(OBJ_obj2nid(obj));
	if (group != NULL)
		bits = (unsigned int)EC_GROUP_get_degree(group);
	EC_GROUP_free(group);
	ASN1_OBJECT_free(obj);
	return bits;
}

CK_RV tok_ec_params_for_nid(int nid, unsigned char **out, size_t *len)
{
	const ASN1_OBJECT *obj = OBJ_nid2obj(nid);
	unsigned char *der = NULL;
	int n;

	*out = NULL;
	*len = 0;
	if (obj == NULL || OBJ_length(obj) == 0)
		return CKR_CURVE_NOT_SUPPORTED;
	n = i2d_ASN1_OBJECT(obj, &der);
	if (n <= 0)
		return CKR_HOST_MEMORY;
	*out = der;
	*len = (size_t)n;
	return CKR_OK;
}

static int bn_equals_bytes(const BIGNUM *bn, const unsigned char *b, size_t len)
{
	BIGNUM *other = BN_bin2bn(b, (int)len, NULL);
	int eq = other != NULL && BN_cmp(bn, other) == 0;

	BN_free(other);
	return eq;
}

static int rsa_matches(EVP_PKEY *pk, const struct tok_key_info *info)
{
	BIGNUM *n = NULL, *e = NULL;
	int eq = 0;

	if (info->modulus == NULL || info->exponent == NULL)
		return 0;
	if (EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
	    EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e) == 1)
		eq = bn_equals_bytes(n, info->modulus, info->modulus_len) &&
		     bn_equals_bytes(e, info->exponent, info->exponent_len);
	BN_free(n);
	BN_free(e);
	return eq;
}

static int ec_matches(EVP_PKEY *pk, const struct tok_key_info *info)
{
	unsigned char pt[256];
	size_t len = 0;

	if (info->ec_point == NULL)
		return 0;
	if (EVP_PKEY_get_octet_string_param(pk,
	                                    OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
	                                    pt, sizeof(pt), &len) != 1)
		return 0;
	return len == info->ec_point_len &&
	       memcmp(pt, info->ec_point, len) == 0;
}

int tok_pub_cert_matches(const struct tok_key_info *info,
                         const unsigned char *der, size_t der_len)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)der_len);
	EVP_PKEY *pk;
	int eq = 0;

	if (x == NULL)
		return 0;
	pk = X509_get0_pubkey(x);
	if (pk != NULL && info->type == TOK_KEY_RSA && EVP_PKEY_is_a(pk, "RSA"))
		eq = rsa_matches(pk, info);
	else if (pk != NULL && info->type == TOK_KEY_EC &&
	         EVP_PKEY_is_a(pk, "EC"))
		eq = ec_matches(pk, info);
	X509_free(x);
	return eq;
}

static CK_RV bn_to_buf(const BIGNUM *bn, unsigned char **out, size_t *len)
{
	int n = BN_num_bytes(bn);

	*out = malloc(n > 0 ? (size_t)n : 1);
	if (*out == NULL)
		return CKR_HOST_MEMORY;
	*len = (size_t)BN_bn2bin(bn, *out);
	return CKR_OK;
}

static CK_RV rsa_from_pkey(EVP_PKEY *pk, unsigned char **a, size_t *a_len,
                           unsigned char **b, size_t *b_len)
{
	BIGNUM *n = NULL, *e = NULL;
	CK_RV rv = CKR_KEY_TYPE_INCONSISTENT;

	if (EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
	    EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e) != 1)
		goto out;
	rv = bn_to_buf(n, a, a_len);
	if (rv == CKR_OK)
		rv = bn_to_buf(e, b, b_len);
	if (rv != CKR_OK) {
		free(*a);
		*a = NULL;
	}
out:
	BN_free(n);
	BN_free(e);
	return rv;
}

static CK_RV ec_from_pkey(EVP_PKEY *pk, unsigned char **a, size_t *a_len)
{
	unsigned char pt[256];
	size_t len = 0;

	if (EVP_PKEY_get_octet_string_param(pk,
	                                    OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
	                                    pt, sizeof(pt), &len) != 1)
		return CKR_KEY_TYPE_INCONSISTENT;
	*a = malloc(len);
	if (*a == NULL)
		return CKR_HOST_MEMORY;
	memcpy(*a, pt, len);
	*a_len = len;
	return CKR_OK;
}

CK_RV tok_pub_from_cert(const unsigned char *der, size_t der_len,
                        CK_KEY_TYPE ktype, unsigned char **a, size_t *a_len,
                        unsigned char **b, size_t *b_len)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)der_len);
	EVP_PKEY *pk;
	CK_RV rv = CKR_KEY_TYPE_INCONSISTENT;

	*a = NULL;
	*a_len = 0;
	if (b != NULL) {
		*b = NULL;
		*b_len = 0;
	}
	if (x == NULL)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	pk = X509_get0_pubkey(x);
	if (pk != NULL && ktype == CKK_RSA && EVP_PKEY_is_a(pk, "RSA") &&
	    b != NULL)
		rv = rsa_from_pkey(pk, a, a_len, b, b_len);
	else if (pk != NULL && ktype == CKK_EC && EVP_PKEY_is_a(pk, "EC"))
		rv = ec_from_pkey(pk, a, a_len);
	X509_free(x);
	return rv;
}
