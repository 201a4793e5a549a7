/*
 * ASYM_CIPHER for RSA token keys: decryption only (encryption uses the
 * recipient's certificate in software).  PKCS#1 v1.5 is the default, as
 * CMS sets no padding; OAEP takes a digest, an MGF1 digest and a label.
 * Every decryption failure raises the same error, so nothing tells a
 * padding failure from another one.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#include "common.h"
#include "key.h"

struct cipher_ctx {
	struct p11prov_ctx *prov;
	struct p11prov_key *key;
	int pad;
	int md_nid;
	int mgf1_nid; /* NID_undef: same as md_nid */
	unsigned char *label;
	size_t label_len;
};

static void *cipher_newctx(void *provctx)
{
	struct cipher_ctx *ctx = calloc(1, sizeof(*ctx));

	if (ctx == NULL)
		return NULL;
	ctx->prov = provctx;
	ctx->pad = RSA_PKCS1_PADDING;
	ctx->md_nid = NID_sha1;
	ctx->mgf1_nid = NID_undef;
	return ctx;
}

static void cipher_freectx(void *vctx)
{
	struct cipher_ctx *ctx = vctx;

	if (ctx == NULL)
		return;
	p11prov_key_free(ctx->key);
	free(ctx->label);
	free(ctx);
}

static void *cipher_dupctx(void *vctx)
{
	struct cipher_ctx *src = vctx, *ctx;

	ctx = cipher_newctx(src->prov);
	if (ctx == NULL)
		return NULL;
	ctx->pad = src->pad;
	ctx->md_nid = src->md_nid;
	ctx->mgf1_nid = src->mgf1_nid;
	if (src->key != NULL &&
	    (ctx->key = p11prov_key_dup(src->key, 1)) == NULL)
		goto fail;
	if (src->label != NULL) {
		ctx->label = malloc(src->label_len);
		if (ctx->label == NULL)
			goto fail;
		memcpy(ctx->label, src->label, src->label_len);
		ctx->label_len = src->label_len;
	}
	return ctx;
fail:
	cipher_freectx(ctx);
	return NULL;
}

/* The NID of a digest name, checked against the software providers. */
static int digest_nid(struct cipher_ctx *ctx, const OSSL_PARAM *p)
{
	const char *name;
	EVP_MD *md;
	int nid;

	if (!OSSL_PARAM_get_utf8_string_ptr(p, &name))
		return NID_undef;
	md = p11prov_fetch_md(ctx->prov, name);
	if (md == NULL)
		return NID_undef;
	nid = EVP_MD_get_type(md);
	EVP_MD_free(md);
	return nid;
}

static int set_pad(struct cipher_ctx *ctx, const OSSL_PARAM *p)
{
	const char *name;
	int pad = -1;

	if (p->data_type == OSSL_PARAM_UTF8_STRING) {
		if (!OSSL_PARAM_get_utf8_string_ptr(p, &name))
			return 0;
		if (strcmp(name, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0)
			pad = RSA_PKCS1_PADDING;
		else if (strcmp(name, OSSL_PKEY_RSA_PAD_MODE_OAEP) == 0)
			pad = RSA_PKCS1_OAEP_PADDING;
	} else if (!OSSL_PARAM_get_int(p, &pad)) {
		return 0;
	}

	/*
	 * No raw RSA: its output is the padded block, and PKCS#1 v1.5
	 * unpadding must stay on the token.
	 */
	if (pad != RSA_PKCS1_PADDING && pad != RSA_PKCS1_OAEP_PADDING) {
		p11prov_raise(ctx->prov, P11MAIL_ERR_MECHANISM,
		              "token decryption takes only PKCS#1 v1.5 and "
		              "OAEP padding, never no padding");
		return 0;
	}
	ctx->pad = pad;
	return 1;
}

static int set_label(struct cipher_ctx *ctx, const OSSL_PARAM *p)
{
	void *label = NULL;
	size_t len = 0;

	if (!OSSL_PARAM_get_octet_string(p, &label, 0, &len))
		return 0;
	free(ctx->label);
	ctx->label = NULL;
	ctx->label_len = 0;
	if (len == 0) {
		OPENSSL_free(label);
		return 1;
	}
	ctx->label = malloc(len);
	if (ctx->label != NULL) {
		memcpy(ctx->label, label, len);
		ctx->label_len = len;
	}
	OPENSSL_free(label);
	return ctx->label != NULL;
}

static int cipher_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
	struct cipher_ctx *ctx = vctx;
	const OSSL_PARAM *p;
	int nid;

	if (params == NULL)
		return 1;
	p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE);
	if (p != NULL && !set_pad(ctx, p))
		return 0;
	p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST);
	if (p != NULL) {
		if ((nid = digest_nid(ctx, p)) == NID_undef)
			return 0;
		ctx->md_nid = nid;
	}
	p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST);
	if (p != NULL) {
		if ((nid = digest_nid(ctx, p)) == NID_undef)
			return 0;
		ctx->mgf1_nid = nid;
	}
	p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL);
	if (p != NULL && !set_label(ctx, p))
		return 0;
	return 1;
}

static const OSSL_PARAM *cipher_settable_ctx_params(void *vctx, void *provctx)
{
	static const OSSL_PARAM params[] = {
	        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL,
	                               0),
	        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, NULL,
	                               0),
	        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST_PROPS,
	                               NULL, 0),
	        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, NULL,
	                               0),
	        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST_PROPS,
	                               NULL, 0),
	        OSSL_PARAM_octet_string(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, NULL,
	                                0),
	        OSSL_PARAM_END};

	return params;
}

static int cipher_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
	struct cipher_ctx *ctx = vctx;
	OSSL_PARAM *p;
	int mgf1 = ctx->mgf1_nid != NID_undef ? ctx->mgf1_nid : ctx->md_nid;

	p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE);
	if (p != NULL && p->data_type == OSSL_PARAM_INTEGER &&
	    !OSSL_PARAM_set_int(p, ctx->pad))
		return 0;
	if (p != NULL && p->data_type == OSSL_PARAM_UTF8_STRING &&
	    !OSSL_PARAM_set_utf8_string(
	            p, ctx->pad == RSA_PKCS1_OAEP_PADDING
	                       ? OSSL_PKEY_RSA_PAD_MODE_OAEP
	                       : OSSL_PKEY_RSA_PAD_MODE_PKCSV15))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST);
	if (p != NULL &&
	    !OSSL_PARAM_set_utf8_string(p, OBJ_nid2sn(ctx->md_nid)))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST);
	if (p != NULL && !OSSL_PARAM_set_utf8_string(p, OBJ_nid2sn(mgf1)))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL);
	if (p != NULL &&
	    !OSSL_PARAM_set_octet_ptr(p, ctx->label, ctx->label_len))
		return 0;
	return 1;
}

static const OSSL_PARAM *cipher_gettable_ctx_params(void *vctx, void *provctx)
{
	static const OSSL_PARAM params[] = {
	        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL,
	                               0),
	        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, NULL,
	                               0),
	        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, NULL,
	                               0),
	        OSSL_PARAM_octet_ptr(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, NULL,
	                             0),
	        OSSL_PARAM_END};

	return params;
}

static int cipher_decrypt_init(void *vctx, void *keydata,
                               const OSSL_PARAM params[])
{
	struct cipher_ctx *ctx = vctx;
	struct p11prov_key *key = keydata, *copy;

	if (key == NULL || key->tok == NULL || key->type != TOK_KEY_RSA) {
		p11prov_raise(ctx->prov, P11MAIL_ERR_NO_KEY,
		              "the key is not an RSA private key on a token");
		return 0;
	}
	copy = p11prov_key_dup(key, 1);
	if (copy == NULL)
		return 0;
	p11prov_key_free(ctx->key);
	ctx->key = copy;
	return cipher_set_ctx_params(ctx, params);
}

static void dec_params(const struct cipher_ctx *ctx, struct tok_dec_params *dp)
{
	memset(dp, 0, sizeof(*dp));
	if (ctx->pad == RSA_PKCS1_PADDING) {
		dp->scheme = TOK_DEC_PKCS1;
		return;
	}
	dp->scheme = TOK_DEC_OAEP;
	dp->md_nid = ctx->md_nid;
	dp->mgf1_md_nid =
	        ctx->mgf1_nid != NID_undef ? ctx->mgf1_nid : ctx->md_nid;
	dp->label = ctx->label;
	dp->label_len = ctx->label_len;
}

static int cipher_decrypt(void *vctx, unsigned char *out, size_t *outlen,
                          size_t outsize, const unsigned char *in, size_t inlen)
{
	struct cipher_ctx *ctx = vctx;
	struct tok_dec_params dp;
	size_t room = p11prov_key_max_size(ctx->key), len;
	unsigned char *buf;
	CK_RV rv;
	int ok = 0;

	if (out == NULL) {
		*outlen = room;
		return 1;
	}

	/* The token needs a modulus-sized buffer; the caller's may be less. */
	buf = malloc(room);
	if (buf == NULL)
		return 0;
	dec_params(ctx, &dp);
	len = room;
	rv = tok_key_decrypt(ctx->key->tok, &dp, in, inlen, buf, &len);
	if (rv != CKR_OK) {
		p11prov_raise_rv(ctx->prov, rv, "decryption failed");
		goto out;
	}
	if (len > outsize) {
		p11prov_raise(ctx->prov, P11MAIL_ERR_DECRYPT,
		              "the output buffer is too small");
		goto out;
	}
	memcpy(out, buf, len);
	*outlen = len;
	ok = 1;
out:
	p11m_secure_free(buf, room);
	return ok;
}

const OSSL_DISPATCH p11prov_rsa_cipher_functions[] = {
        {OSSL_FUNC_ASYM_CIPHER_NEWCTX, (void (*)(void))cipher_newctx},
        {OSSL_FUNC_ASYM_CIPHER_FREECTX, (void (*)(void))cipher_freectx},
        {OSSL_FUNC_ASYM_CIPHER_DUPCTX, (void (*)(void))cipher_dupctx},
        {OSSL_FUNC_ASYM_CIPHER_DECRYPT_INIT,
         (void (*)(void))cipher_decrypt_init},
        {OSSL_FUNC_ASYM_CIPHER_DECRYPT, (void (*)(void))cipher_decrypt},
        {OSSL_FUNC_ASYM_CIPHER_GET_CTX_PARAMS,
         (void (*)(void))cipher_get_ctx_params},
        {OSSL_FUNC_ASYM_CIPHER_GETTABLE_CTX_PARAMS,
         (void (*)(void))cipher_gettable_ctx_params},
        {OSSL_FUNC_ASYM_CIPHER_SET_CTX_PARAMS,
         (void (*)(void))cipher_set_ctx_params},
        {OSSL_FUNC_ASYM_CIPHER_SETTABLE_CTX_PARAMS,
         (void (*)(void))cipher_settable_ctx_params},
        {0, NULL}};
