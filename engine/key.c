/*
 * Key objects of the provider.  A token key is shared by reference with the
 * token core, which caches its handle and public attributes, so copying a
 * key object never touches the token.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/core_names.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>

#include "common.h"
#include "key.h"

#define P11PROV_KEY_MAGIC 0x70313170u

struct p11prov_key *p11prov_key_new(struct p11prov_ctx *ctx,
                                    enum tok_key_type type)
{
	struct p11prov_key *key = calloc(1, sizeof(*key));

	if (key == NULL)
		return NULL;
	key->magic = P11PROV_KEY_MAGIC;
	key->ctx = ctx;
	key->type = type;
	key->nid = NID_undef;
	return key;
}

/* The NID of the curve whose DER-encoded OID the token reported. */
static int curve_nid(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	ASN1_OBJECT *oid;
	int nid;

	if (der == NULL || len == 0 || len > 64)
		return NID_undef;
	oid = d2i_ASN1_OBJECT(NULL, &p, (long)len);
	if (oid == NULL)
		return NID_undef;
	nid = OBJ_obj2nid(oid);
	ASN1_OBJECT_free(oid);
	return nid;
}

struct p11prov_key *p11prov_key_from_tok(struct p11prov_ctx *ctx, tok_key *tok)
{
	const struct tok_key_info *info = tok_key_info(tok);
	struct p11prov_key *key;

	key = p11prov_key_new(ctx, info->type);
	if (key == NULL) {
		p11prov_raise(ctx, P11MAIL_ERR_NOMEM, "no memory for a key");
		return NULL;
	}
	key->bits = info->bits;
	if (info->type == TOK_KEY_EC) {
		key->nid = curve_nid(info->ec_params, info->ec_params_len);
		if (key->nid == NID_undef) {
			p11prov_raise(ctx, P11MAIL_ERR_MECHANISM,
			              "the curve of %s is not supported",
			              info->uri);
			free(key);
			return NULL;
		}
	}
	key->tok = tok_key_ref(tok);
	return key;
}

struct p11prov_key *p11prov_key_dup(const struct p11prov_key *key,
                                    int with_private)
{
	struct p11prov_key *copy;
	size_t len;
	const unsigned char *point;

	copy = p11prov_key_new(key->ctx, key->type);
	if (copy == NULL)
		return NULL;
	copy->nid = key->nid;
	copy->bits = key->bits;
	if (with_private && key->tok != NULL) {
		copy->tok = tok_key_ref(key->tok);
		return copy;
	}

	/* Without the private half a token key becomes a public-only one. */
	point = key->type == TOK_KEY_EC ? p11prov_key_point(key, &len) : NULL;
	if (point != NULL) {
		copy->point = malloc(len);
		if (copy->point == NULL) {
			p11prov_key_free(copy);
			return NULL;
		}
		memcpy(copy->point, point, len);
		copy->point_len = len;
	}
	return copy;
}

void p11prov_key_free(struct p11prov_key *key)
{
	if (key == NULL)
		return;
	tok_key_unref(key->tok);
	free(key->point);
	key->magic = 0;
	free(key);
}

struct p11prov_key *p11prov_key_from_reference(const void *ref, size_t ref_size)
{
	struct p11prov_key *key;

	if (ref == NULL || ref_size != sizeof(key))
		return NULL;
	memcpy(&key, ref, sizeof(key));
	if (key == NULL || key->magic != P11PROV_KEY_MAGIC)
		return NULL;
	return key;
}

int p11prov_key_set_curve(struct p11prov_key *key, int nid)
{
	EC_GROUP *group;

	group = EC_GROUP_new_by_curve_name_ex(p11prov_libctx(key->ctx),
	                                      P11PROV_SOFT_PROPQ, nid);
	if (group == NULL)
		return 0;
	key->nid = nid;
	key->bits = (unsigned int)EC_GROUP_get_degree(group);
	EC_GROUP_free(group);
	return 1;
}

/* True when point encodes a point on the curve nid (not infinity). */
static int point_valid(OSSL_LIB_CTX *libctx, int nid,
                       const unsigned char *point, size_t len)
{
	EC_GROUP *group = NULL;
	EC_POINT *pt = NULL;
	int ok = 0;

	group = EC_GROUP_new_by_curve_name_ex(libctx, P11PROV_SOFT_PROPQ, nid);
	if (group == NULL)
		goto out;
	pt = EC_POINT_new(group);
	if (pt == NULL)
		goto out;

	/* oct2point refuses points that are not on the curve. */
	if (!EC_POINT_oct2point(group, pt, point, len, NULL))
		goto out;
	ok = !EC_POINT_is_at_infinity(group, pt);
out:
	EC_POINT_free(pt);
	EC_GROUP_free(group);
	return ok;
}

int p11prov_key_set_point(struct p11prov_key *key, const unsigned char *point,
                          size_t len)
{
	unsigned char *copy;

	if (key->tok != NULL || key->nid == NID_undef || len == 0)
		return 0;
	if (!point_valid(p11prov_libctx(key->ctx), key->nid, point, len))
		return 0;
	copy = malloc(len);
	if (copy == NULL)
		return 0;
	memcpy(copy, point, len);
	free(key->point);
	key->point = copy;
	key->point_len = len;
	return 1;
}

const unsigned char *p11prov_key_point(const struct p11prov_key *key,
                                       size_t *len)
{
	const struct tok_key_info *info;

	*len = 0;
	if (key->type != TOK_KEY_EC)
		return NULL;
	if (key->tok == NULL) {
		*len = key->point_len;
		return key->point;
	}
	info = tok_key_info(key->tok);
	*len = info->ec_point_len;
	return info->ec_point;
}

const unsigned char *p11prov_key_modulus(const struct p11prov_key *key,
                                         size_t *len)
{
	const struct tok_key_info *info;

	*len = 0;
	if (key->type != TOK_KEY_RSA || key->tok == NULL)
		return NULL;
	info = tok_key_info(key->tok);
	*len = info->modulus_len;
	return info->modulus;
}

const unsigned char *p11prov_key_exponent(const struct p11prov_key *key,
                                          size_t *len)
{
	const struct tok_key_info *info;

	*len = 0;
	if (key->type != TOK_KEY_RSA || key->tok == NULL)
		return NULL;
	info = tok_key_info(key->tok);
	*len = info->exponent_len;
	return info->exponent;
}

/* Length of a DER length field for content of n bytes. */
static size_t der_len_size(size_t n)
{
	size_t size = 1;

	if (n < 128)
		return 1;
	while (n > 0) {
		size++;
		n >>= 8;
	}
	return size;
}

size_t p11prov_key_max_size(const struct p11prov_key *key)
{
	size_t field = (key->bits + 7) / 8;
	size_t integer, seq;

	if (key->type == TOK_KEY_RSA)
		return field;

	/* ECDSA-Sig-Value: two INTEGERs, each possibly one byte longer. */
	integer = 1 + der_len_size(field + 1) + field + 1;
	seq = 2 * integer;
	return 1 + der_len_size(seq) + seq;
}

int p11prov_key_security_bits(const struct p11prov_key *key)
{
	if (key->type == TOK_KEY_RSA)
		return BN_security_bits((int)key->bits, -1);

	/* Generic attacks on a curve cost about the square root. */
	if (key->bits >= 512)
		return 256;
	if (key->bits >= 384)
		return 192;
	if (key->bits >= 256)
		return 128;
	if (key->bits >= 224)
		return 112;
	return key->bits >= 160 ? 80 : 0;
}

static int bytes_eq(const unsigned char *a, size_t alen, const unsigned char *b,
                    size_t blen)
{
	/* Leading zeros do not change a big-endian number. */
	while (alen > 0 && *a == 0) {
		a++;
		alen--;
	}
	while (blen > 0 && *b == 0) {
		b++;
		blen--;
	}
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

int p11prov_key_public_eq(const struct p11prov_key *a,
                          const struct p11prov_key *b)
{
	const unsigned char *pa, *pb;
	size_t la, lb;

	if (a->type != b->type)
		return 0;
	if (a->type == TOK_KEY_EC) {
		pa = p11prov_key_point(a, &la);
		pb = p11prov_key_point(b, &lb);
		return a->nid == b->nid && pa != NULL && pb != NULL &&
		       la == lb && memcmp(pa, pb, la) == 0;
	}
	pa = p11prov_key_modulus(a, &la);
	pb = p11prov_key_modulus(b, &lb);
	if (pa == NULL || pb == NULL || !bytes_eq(pa, la, pb, lb))
		return 0;
	pa = p11prov_key_exponent(a, &la);
	pb = p11prov_key_exponent(b, &lb);
	return pa != NULL && pb != NULL && bytes_eq(pa, la, pb, lb);
}

/*
 * Pushes the public parts onto a builder.  The builder keeps pointers to
 * the numbers, so they live in bn[] until it is done.
 */
static int push_public(const struct p11prov_key *key, OSSL_PARAM_BLD *bld,
                       int selection, BIGNUM *bn[2])
{
	const unsigned char *n, *e, *point;
	size_t n_len, e_len, point_len;

	if (key->type == TOK_KEY_EC) {
		point = p11prov_key_point(key, &point_len);
		if (!OSSL_PARAM_BLD_push_utf8_string(bld,
		                                     OSSL_PKEY_PARAM_GROUP_NAME,
		                                     OBJ_nid2sn(key->nid), 0))
			return 0;
		if (!(selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY))
			return 1;
		return point != NULL &&
		       OSSL_PARAM_BLD_push_octet_string(
		               bld, OSSL_PKEY_PARAM_PUB_KEY, point, point_len);
	}
	if (!(selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY))
		return 1;

	n = p11prov_key_modulus(key, &n_len);
	e = p11prov_key_exponent(key, &e_len);
	if (n == NULL || e == NULL)
		return 0;
	bn[0] = BN_bin2bn(n, (int)n_len, NULL);
	bn[1] = BN_bin2bn(e, (int)e_len, NULL);
	return bn[0] != NULL && bn[1] != NULL &&
	       OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn[0]) &&
	       OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn[1]);
}

OSSL_PARAM *p11prov_key_public_params(const struct p11prov_key *key,
                                      int selection)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	BIGNUM *bn[2] = {NULL, NULL};

	if (bld != NULL && push_public(key, bld, selection, bn))
		params = OSSL_PARAM_BLD_to_param(bld);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn[0]);
	BN_free(bn[1]);
	return params;
}

EVP_PKEY *p11prov_key_soft_public(const struct p11prov_key *key)
{
	EVP_PKEY_CTX *pctx = NULL;
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM *params;

	params = p11prov_key_public_params(key, OSSL_KEYMGMT_SELECT_PUBLIC_KEY);
	if (params == NULL)
		return NULL;
	pctx = EVP_PKEY_CTX_new_from_name(
	        p11prov_libctx(key->ctx),
	        key->type == TOK_KEY_RSA ? "RSA" : "EC", P11PROV_SOFT_PROPQ);
	if (pctx == NULL || EVP_PKEY_fromdata_init(pctx) <= 0 ||
	    EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pkey = NULL;
	EVP_PKEY_CTX_free(pctx);
	OSSL_PARAM_free(params);
	return pkey;
}

int p11prov_key_set(const struct p11prov_key *key, int with_private,
                    struct p11prov_key **slot)
{
	struct p11prov_key *copy = p11prov_key_dup(key, with_private);

	if (copy == NULL)
		return 0;
	p11prov_key_free(*slot);
	*slot = copy;
	return 1;
}

int p11prov_key_set_private(const struct p11prov_ctx *prov,
                            const struct p11prov_key *key,
                            enum tok_key_type type, const char *what,
                            struct p11prov_key **slot)
{
	if (key == NULL || key->tok == NULL || key->type != type) {
		p11prov_raise(prov, P11MAIL_ERR_NO_KEY, "the key is not %s",
		              what);
		return 0;
	}
	return p11prov_key_set(key, 1, slot);
}

int p11prov_bytes_dup(const unsigned char *src, size_t len, unsigned char **dst,
                      size_t *dst_len)
{
	*dst = NULL;
	*dst_len = 0;
	if (src == NULL)
		return 1;
	*dst = malloc(len > 0 ? len : 1);
	if (*dst == NULL)
		return 0;
	memcpy(*dst, src, len);
	*dst_len = len;
	return 1;
}
