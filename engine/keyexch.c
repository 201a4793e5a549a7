/*
 * KEYEXCH (ECDH) for EC token keys, as CMS key agreement uses it.  The
 * token computes the plain shared secret (CKD_NULL); the X9.63 KDF that
 * CMS asks for runs in software, and the shared secret is wiped after.
 * The NIST curves have cofactor 1, so cofactor mode changes nothing.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "common.h"
#include "key.h"

struct kex_ctx {
	struct p11prov_ctx *prov;
	struct p11prov_key *key;
	struct p11prov_key *peer;
	int cofactor_mode;
	int use_kdf; /* X9.63 KDF */
	char kdf_md[64];
	size_t kdf_outlen;
	unsigned char *ukm;
	size_t ukm_len;
};

static void *kex_newctx(void *provctx)
{
	struct kex_ctx *ctx = calloc(1, sizeof(*ctx));

	if (ctx == NULL)
		return NULL;
	ctx->prov = provctx;
	ctx->cofactor_mode = -1;
	return ctx;
}

static void kex_freectx(void *vctx)
{
	struct kex_ctx *ctx = vctx;

	if (ctx == NULL)
		return;
	p11prov_key_free(ctx->key);
	p11prov_key_free(ctx->peer);
	free(ctx->ukm);
	free(ctx);
}

static void *kex_dupctx(void *vctx)
{
	struct kex_ctx *src = vctx, *ctx;

	ctx = kex_newctx(src->prov);
	if (ctx == NULL)
		return NULL;
	ctx->cofactor_mode = src->cofactor_mode;
	ctx->use_kdf = src->use_kdf;
	memcpy(ctx->kdf_md, src->kdf_md, sizeof(ctx->kdf_md));
	ctx->kdf_outlen = src->kdf_outlen;
	if ((src->key != NULL && !p11prov_key_set(src->key, 1, &ctx->key)) ||
	    (src->peer != NULL && !p11prov_key_set(src->peer, 0, &ctx->peer)) ||
	    !p11prov_bytes_dup(src->ukm, src->ukm_len, &ctx->ukm,
	                       &ctx->ukm_len))
		goto fail;
	return ctx;
fail:
	kex_freectx(ctx);
	return NULL;
}

static int set_kdf_type(struct kex_ctx *ctx, const OSSL_PARAM *p)
{
	const char *name;

	if (!OSSL_PARAM_get_utf8_string_ptr(p, &name))
		return 0;
	if (*name == '\0') {
		ctx->use_kdf = 0;
		return 1;
	}
	if (OPENSSL_strcasecmp(name, OSSL_KDF_NAME_X963KDF) != 0) {
		p11prov_raise(ctx->prov, P11MAIL_ERR_MECHANISM,
		              "unsupported ECDH KDF \"%s\"", name);
		return 0;
	}
	ctx->use_kdf = 1;
	return 1;
}

static int set_ukm(struct kex_ctx *ctx, const OSSL_PARAM *p)
{
	void *ukm = NULL;
	size_t len = 0;

	if (!OSSL_PARAM_get_octet_string(p, &ukm, 0, &len))
		return 0;
	free(ctx->ukm);
	ctx->ukm = NULL;
	ctx->ukm_len = 0;
	if (len > 0) {
		ctx->ukm = malloc(len);
		if (ctx->ukm == NULL) {
			OPENSSL_free(ukm);
			return 0;
		}
		memcpy(ctx->ukm, ukm, len);
		ctx->ukm_len = len;
	}
	OPENSSL_free(ukm);
	return 1;
}

static int kex_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
	struct kex_ctx *ctx = vctx;
	const OSSL_PARAM *p;
	int mode;

	if (params == NULL)
		return 1;
	p = OSSL_PARAM_locate_const(params,
	                            OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE);
	if (p != NULL) {
		if (!OSSL_PARAM_get_int(p, &mode) || mode < -1 || mode > 1)
			return 0;
		ctx->cofactor_mode = mode;
	}
	p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_KDF_TYPE);
	if (p != NULL && !set_kdf_type(ctx, p))
		return 0;
	p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_KDF_DIGEST);
	if (p != NULL) {
		char *name = ctx->kdf_md;

		if (!OSSL_PARAM_get_utf8_string(p, &name, sizeof(ctx->kdf_md)))
			return 0;
	}
	p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_KDF_OUTLEN);
	if (p != NULL && !OSSL_PARAM_get_size_t(p, &ctx->kdf_outlen))
		return 0;
	p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_KDF_UKM);
	if (p != NULL && !set_ukm(ctx, p))
		return 0;
	return 1;
}

static const OSSL_PARAM *kex_settable_ctx_params(void *vctx, void *provctx)
{
	static const OSSL_PARAM params[] = {
	        OSSL_PARAM_int(OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE, NULL),
	        OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_TYPE, NULL, 0),
	        OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_DIGEST, NULL, 0),
	        OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_DIGEST_PROPS,
	                               NULL, 0),
	        OSSL_PARAM_size_t(OSSL_EXCHANGE_PARAM_KDF_OUTLEN, NULL),
	        OSSL_PARAM_octet_string(OSSL_EXCHANGE_PARAM_KDF_UKM, NULL, 0),
	        OSSL_PARAM_END};

	return params;
}

static int kex_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
	struct kex_ctx *ctx = vctx;
	OSSL_PARAM *p;

	p = OSSL_PARAM_locate(params,
	                      OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE);
	if (p != NULL && !OSSL_PARAM_set_int(p, ctx->cofactor_mode == 1))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_KDF_TYPE);
	if (p != NULL && !OSSL_PARAM_set_utf8_string(
	                         p, ctx->use_kdf ? OSSL_KDF_NAME_X963KDF : ""))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_KDF_DIGEST);
	if (p != NULL && !OSSL_PARAM_set_utf8_string(p, ctx->kdf_md))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_KDF_OUTLEN);
	if (p != NULL && !OSSL_PARAM_set_size_t(p, ctx->kdf_outlen))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_KDF_UKM);
	if (p != NULL && !OSSL_PARAM_set_octet_ptr(p, ctx->ukm, ctx->ukm_len))
		return 0;
	return 1;
}

static const OSSL_PARAM *kex_gettable_ctx_params(void *vctx, void *provctx)
{
	static const OSSL_PARAM params[] = {
	        OSSL_PARAM_int(OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE, NULL),
	        OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_TYPE, NULL, 0),
	        OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_DIGEST, NULL, 0),
	        OSSL_PARAM_size_t(OSSL_EXCHANGE_PARAM_KDF_OUTLEN, NULL),
	        OSSL_PARAM_octet_ptr(OSSL_EXCHANGE_PARAM_KDF_UKM, NULL, 0),
	        OSSL_PARAM_END};

	return params;
}

static int kex_init(void *vctx, void *keydata, const OSSL_PARAM params[])
{
	struct kex_ctx *ctx = vctx;

	if (!p11prov_key_set_private(ctx->prov, keydata, TOK_KEY_EC,
	                             "an EC private key on a token", &ctx->key))
		return 0;
	return kex_set_ctx_params(ctx, params);
}

static int kex_set_peer(void *vctx, void *peerdata)
{
	struct kex_ctx *ctx = vctx;
	struct p11prov_key *peer = peerdata;
	size_t len;

	if (peer == NULL || peer->type != TOK_KEY_EC ||
	    p11prov_key_point(peer, &len) == NULL ||
	    (ctx->key != NULL && peer->nid != ctx->key->nid)) {
		p11prov_raise(ctx->prov, P11MAIL_ERR_ARGS,
		              "the ECDH peer key is not on the same curve");
		return 0;
	}
	return p11prov_key_set(peer, 0, &ctx->peer);
}

/* Runs the X9.63 KDF over the shared secret z. */
static int x963_kdf(struct kex_ctx *ctx, const unsigned char *z, size_t zlen,
                    unsigned char *out, size_t outlen)
{
	EVP_KDF *kdf;
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM params[4], *p = params;
	int ok = 0;

	kdf = EVP_KDF_fetch(p11prov_libctx(ctx->prov), OSSL_KDF_NAME_X963KDF,
	                    P11PROV_SOFT_PROPQ);
	if (kdf == NULL || (kctx = EVP_KDF_CTX_new(kdf)) == NULL)
		goto out;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
	                                        ctx->kdf_md, 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
	                                         (void *)(uintptr_t)z, zlen);
	if (ctx->ukm != NULL)
		*p++ = OSSL_PARAM_construct_octet_string(
		        OSSL_KDF_PARAM_INFO, ctx->ukm, ctx->ukm_len);
	*p = OSSL_PARAM_construct_end();
	ok = EVP_KDF_derive(kctx, out, outlen, params) > 0;
out:
	if (!ok)
		p11prov_raise(ctx->prov, P11MAIL_ERR_CRYPTO,
		              "the X9.63 KDF with %s failed", ctx->kdf_md);
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return ok;
}

static int kex_derive(void *vctx, unsigned char *secret, size_t *secretlen,
                      size_t outlen)
{
	struct kex_ctx *ctx = vctx;
	unsigned char z[133];
	const unsigned char *point;
	size_t zlen = sizeof(z), point_len, size;
	CK_RV rv;
	int ok = 0;

	if (ctx->key == NULL || ctx->peer == NULL)
		return 0;
	size = ctx->use_kdf ? ctx->kdf_outlen : (ctx->key->bits + 7) / 8;
	if (secret == NULL) {
		*secretlen = size;
		return 1;
	}
	if (ctx->use_kdf && (outlen < size || size == 0))
		return 0;

	point = p11prov_key_point(ctx->peer, &point_len);
	rv = tok_key_derive(ctx->key->tok, point, point_len, z, &zlen);
	if (rv != CKR_OK) {
		p11prov_raise_rv(ctx->prov, rv, "key agreement failed");
		goto out;
	}
	if (ctx->use_kdf) {
		ok = x963_kdf(ctx, z, zlen, secret, size);
		*secretlen = size;
		goto out;
	}

	/* Like ECDH_compute_key, a short buffer takes the leading bytes. */
	size = zlen < outlen ? zlen : outlen;
	memcpy(secret, z, size);
	*secretlen = size;
	ok = 1;
out:
	p11mail_wipe(z, sizeof(z));
	return ok;
}

const OSSL_DISPATCH p11prov_ecdh_keyexch_functions[] = {
        {OSSL_FUNC_KEYEXCH_NEWCTX, (void (*)(void))kex_newctx},
        {OSSL_FUNC_KEYEXCH_FREECTX, (void (*)(void))kex_freectx},
        {OSSL_FUNC_KEYEXCH_DUPCTX, (void (*)(void))kex_dupctx},
        {OSSL_FUNC_KEYEXCH_INIT, (void (*)(void))kex_init},
        {OSSL_FUNC_KEYEXCH_SET_PEER, (void (*)(void))kex_set_peer},
        {OSSL_FUNC_KEYEXCH_DERIVE, (void (*)(void))kex_derive},
        {OSSL_FUNC_KEYEXCH_SET_CTX_PARAMS, (void (*)(void))kex_set_ctx_params},
        {OSSL_FUNC_KEYEXCH_SETTABLE_CTX_PARAMS,
         (void (*)(void))kex_settable_ctx_params},
        {OSSL_FUNC_KEYEXCH_GET_CTX_PARAMS, (void (*)(void))kex_get_ctx_params},
        {OSSL_FUNC_KEYEXCH_GETTABLE_CTX_PARAMS,
         (void (*)(void))kex_gettable_ctx_params},
        {0, NULL}};
