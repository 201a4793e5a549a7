/*
 * SIGNATURE for token keys: RSA PKCS#1 v1.5 and PSS, and ECDSA.  Hashing
 * runs in software; only the hash (or DigestInfo) goes to the token.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "common.h"
#include "key.h"

struct sig_ctx {
	struct p11prov_ctx *prov;
	enum tok_key_type type;
	struct p11prov_key *key;
	char *propq;
	EVP_MD *md; /* NULL: sign the input as given */
	EVP_MD_CTX *mdctx;
	int pad;     /* RSA_PKCS1_PADDING or RSA_PKCS1_PSS_PADDING */
	int saltlen; /* bytes, or RSA_PSS_SALTLEN_DIGEST / _MAX / _AUTO */
	EVP_MD *mgf1_md;
	EVP_PKEY *pub; /* software public key, for verification */
};

static struct sig_ctx *sig_newctx(void *provctx, const char *propq,
                                  enum tok_key_type type)
{
	struct sig_ctx *ctx = calloc(1, sizeof(*ctx));

	if (ctx == NULL)
		return NULL;
	ctx->prov = provctx;
	ctx->type = type;
	ctx->pad = RSA_PKCS1_PADDING;
	ctx->saltlen = RSA_PSS_SALTLEN_MAX;
	if (propq != NULL && (ctx->propq = strdup(propq)) == NULL) {
		free(ctx);
		return NULL;
	}
	return ctx;
}

static void *rsa_newctx(void *provctx, const char *propq)
{
	return sig_newctx(provctx, propq, TOK_KEY_RSA);
}

static void *ecdsa_newctx(void *provctx, const char *propq)
{
	return sig_newctx(provctx, propq, TOK_KEY_EC);
}

static void sig_freectx(void *vctx)
{
	struct sig_ctx *ctx = vctx;

	if (ctx == NULL)
		return;
	p11prov_key_free(ctx->key);
	EVP_MD_CTX_free(ctx->mdctx);
	EVP_MD_free(ctx->md);
	EVP_MD_free(ctx->mgf1_md);
	EVP_PKEY_free(ctx->pub);
	free(ctx->propq);
	free(ctx);
}

/* EVP_DigestSignFinal works on a copy, so the running hash is copied too. */
static void *sig_dupctx(void *vctx)
{
	struct sig_ctx *src = vctx, *ctx;

	ctx = sig_newctx(src->prov, src->propq, src->type);
	if (ctx == NULL)
		return NULL;
	ctx->pad = src->pad;
	ctx->saltlen = src->saltlen;
	if ((src->key != NULL &&
	     (ctx->key = p11prov_key_dup(src->key, 1)) == NULL) ||
	    (src->md != NULL && !EVP_MD_up_ref(src->md)) ||
	    (src->mgf1_md != NULL && !EVP_MD_up_ref(src->mgf1_md)) ||
	    (src->pub != NULL && !EVP_PKEY_up_ref(src->pub)))
		goto fail;
	ctx->md = src->md;
	ctx->mgf1_md = src->mgf1_md;
	ctx->pub = src->pub;
	if (src->mdctx != NULL) {
		ctx->mdctx = EVP_MD_CTX_new();
		if (ctx->mdctx == NULL ||
		    !EVP_MD_CTX_copy_ex(ctx->mdctx, src->mdctx))
			goto fail;
	}
	return ctx;
fail:
	sig_freectx(ctx);
	return NULL;
}

/* Fetches a digest by name from the software providers. */
static EVP_MD *fetch_md(struct sig_ctx *ctx, const char *name)
{
	return p11prov_fetch_md(ctx->prov, name);
}

static int set_md(struct sig_ctx *ctx, const char *name)
{
	EVP_MD *md = fetch_md(ctx, name);

	if (md == NULL)
		return 0;
	EVP_MD_free(ctx->md);
	ctx->md = md;
	return 1;
}

static int set_mgf1_md(struct sig_ctx *ctx, const char *name)
{
	EVP_MD *md = fetch_md(ctx, name);

	if (md == NULL)
		return 0;
	EVP_MD_free(ctx->mgf1_md);
	ctx->mgf1_md = md;
	return 1;
}

static int set_pad(struct sig_ctx *ctx, const OSSL_PARAM *p)
{
	const char *name;
	int pad;

	if (p->data_type == OSSL_PARAM_UTF8_STRING) {
		if (!OSSL_PARAM_get_utf8_string_ptr(p, &name))
			return 0;
		if (strcmp(name, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0)
			pad = RSA_PKCS1_PADDING;
		else if (strcmp(name, OSSL_PKEY_RSA_PAD_MODE_PSS) == 0)
			pad = RSA_PKCS1_PSS_PADDING;
		else
			pad = -1;
	} else if (!OSSL_PARAM_get_int(p, &pad)) {
		return 0;
	}
	if (pad != RSA_PKCS1_PADDING && pad != RSA_PKCS1_PSS_PADDING) {
		p11prov_raise(ctx->prov, P11MAIL_ERR_MECHANISM,
		              "only PKCS#1 v1.5 and PSS padding are supported "
		              "for signatures with token keys");
		return 0;
	}
	ctx->pad = pad;
	return 1;
}

static int set_saltlen(struct sig_ctx *ctx, const OSSL_PARAM *p)
{
	const char *s;
	int len;

	if (p->data_type != OSSL_PARAM_UTF8_STRING) {
		if (!OSSL_PARAM_get_int(p, &len))
			return 0;
	} else if (!OSSL_PARAM_get_utf8_string_ptr(p, &s)) {
		return 0;
	} else if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST) == 0) {
		len = RSA_PSS_SALTLEN_DIGEST;
	} else if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_MAX) == 0) {
		len = RSA_PSS_SALTLEN_MAX;
	} else if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO) == 0) {
		len = RSA_PSS_SALTLEN_AUTO;
	} else {
		len = atoi(s);
		if (len == 0 && strcmp(s, "0") != 0)
			len = -4;
	}
	if (len < RSA_PSS_SALTLEN_MAX) {
		p11prov_raise(ctx->prov, P11MAIL_ERR_ARGS,
		              "invalid PSS salt length");
		return 0;
	}
	ctx->saltlen = len;
	return 1;
}

static int sig_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
	struct sig_ctx *ctx = vctx;
	const OSSL_PARAM *p;
	const char *name;

	if (params == NULL)
		return 1;
	p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
	if (p != NULL &&
	    (!OSSL_PARAM_get_utf8_string_ptr(p, &name) || !set_md(ctx, name)))
		return 0;
	if (ctx->type != TOK_KEY_RSA)
		return 1;
	p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
	if (p != NULL && !set_pad(ctx, p))
		return 0;
	p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
	if (p != NULL && !set_saltlen(ctx, p))
		return 0;
	p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
	if (p != NULL && (!OSSL_PARAM_get_utf8_string_ptr(p, &name) ||
	                  !set_mgf1_md(ctx, name)))
		return 0;
	return 1;
}

static const OSSL_PARAM *rsa_settable_ctx_params(void *vctx, void *provctx)
{
	static const OSSL_PARAM params[] = {
	        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
	        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL,
	                               0),
	        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
	        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL,
	                               0),
	        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL,
	                               0),
	        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_PROPERTIES,
	                               NULL, 0),
	        OSSL_PARAM_END};

	return params;
}

static const OSSL_PARAM *ecdsa_settable_ctx_params(void *vctx, void *provctx)
{
	static const OSSL_PARAM params[] = {
	        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
	        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL,
	                               0),
	        OSSL_PARAM_END};

	return params;
}

static int md_nid(const EVP_MD *md)
{
	return md != NULL ? EVP_MD_get_type(md) : NID_undef;
}

static int pss_salt_bytes(const struct sig_ctx *ctx);

/* Packs the MGF1 AlgorithmIdentifier naming a hash. */
static X509_ALGOR *mgf1_algorithm(const EVP_MD *md)
{
	X509_ALGOR *hash = X509_ALGOR_new(), *mgf1 = NULL;
	ASN1_STRING *param = NULL;

	if (hash == NULL)
		return NULL;
	X509_ALGOR_set_md(hash, md);
	param = ASN1_item_pack(hash, ASN1_ITEM_rptr(X509_ALGOR), NULL);
	mgf1 = X509_ALGOR_new();
	if (param == NULL || mgf1 == NULL ||
	    !X509_ALGOR_set0(mgf1, OBJ_nid2obj(NID_mgf1), V_ASN1_SEQUENCE,
	                     param)) {
		ASN1_STRING_free(param);
		X509_ALGOR_free(mgf1);
		mgf1 = NULL;
	}
	X509_ALGOR_free(hash);
	return mgf1;
}

/* Builds the RSASSA-PSS AlgorithmIdentifier (RFC 4055); SHA-1 is implied. */
static X509_ALGOR *pss_algorithm(const struct sig_ctx *ctx)
{
	const EVP_MD *mgf1 = ctx->mgf1_md != NULL ? ctx->mgf1_md : ctx->md;
	RSA_PSS_PARAMS *pss = RSA_PSS_PARAMS_new();
	ASN1_STRING *packed = NULL;
	X509_ALGOR *alg = NULL;
	int salt = pss_salt_bytes(ctx);

	if (pss == NULL || salt < 0)
		goto out;
	if (md_nid(ctx->md) != NID_sha1) {
		if ((pss->hashAlgorithm = X509_ALGOR_new()) == NULL)
			goto out;
		X509_ALGOR_set_md(pss->hashAlgorithm, ctx->md);
	}
	if (md_nid(mgf1) != NID_sha1 &&
	    (pss->maskGenAlgorithm = mgf1_algorithm(mgf1)) == NULL)
		goto out;
	if (salt != 20 && ((pss->saltLength = ASN1_INTEGER_new()) == NULL ||
	                   !ASN1_INTEGER_set(pss->saltLength, salt)))
		goto out;
	packed = ASN1_item_pack(pss, ASN1_ITEM_rptr(RSA_PSS_PARAMS), NULL);
	alg = X509_ALGOR_new();
	if (packed == NULL || alg == NULL ||
	    !X509_ALGOR_set0(alg, OBJ_nid2obj(NID_rsassaPss), V_ASN1_SEQUENCE,
	                     packed)) {
		ASN1_STRING_free(packed);
		X509_ALGOR_free(alg);
		alg = NULL;
	}
out:
	RSA_PSS_PARAMS_free(pss);
	return alg;
}

/* The AlgorithmIdentifier of PKCS#1 v1.5 and ECDSA signatures. */
static X509_ALGOR *plain_algorithm(const struct sig_ctx *ctx)
{
	int pkey_nid = ctx->type == TOK_KEY_RSA ? EVP_PKEY_RSA : EVP_PKEY_EC;
	X509_ALGOR *alg;
	int sig_nid;

	if (!OBJ_find_sigid_by_algs(&sig_nid, md_nid(ctx->md), pkey_nid))
		return NULL;
	alg = X509_ALGOR_new();
	if (alg != NULL &&
	    !X509_ALGOR_set0(alg, OBJ_nid2obj(sig_nid),
	                     ctx->type == TOK_KEY_RSA ? V_ASN1_NULL
	                                              : V_ASN1_UNDEF,
	                     NULL)) {
		X509_ALGOR_free(alg);
		alg = NULL;
	}
	return alg;
}

/* Writes the DER AlgorithmIdentifier that describes the signatures made. */
static int get_algorithm_id(struct sig_ctx *ctx, OSSL_PARAM *p)
{
	X509_ALGOR *alg;
	unsigned char *der = NULL;
	int len, ok = 0;

	if (ctx->md == NULL || ctx->key == NULL)
		return 0;
	if (ctx->type == TOK_KEY_RSA && ctx->pad == RSA_PKCS1_PSS_PADDING)
		alg = pss_algorithm(ctx);
	else
		alg = plain_algorithm(ctx);
	if (alg == NULL)
		return 0;
	len = i2d_X509_ALGOR(alg, &der);
	ok = len > 0 && OSSL_PARAM_set_octet_string(p, der, (size_t)len);
	OPENSSL_free(der);
	X509_ALGOR_free(alg);
	return ok;
}

static int set_md_name(OSSL_PARAM *p, const EVP_MD *md)
{
	return OSSL_PARAM_set_utf8_string(p, md != NULL ? OBJ_nid2sn(md_nid(md))
	                                                : "");
}

static int get_pad(const struct sig_ctx *ctx, OSSL_PARAM *p)
{
	if (p->data_type == OSSL_PARAM_INTEGER)
		return OSSL_PARAM_set_int(p, ctx->pad);
	return OSSL_PARAM_set_utf8_string(
	        p, ctx->pad == RSA_PKCS1_PSS_PADDING
	                   ? OSSL_PKEY_RSA_PAD_MODE_PSS
	                   : OSSL_PKEY_RSA_PAD_MODE_PKCSV15);
}

static int get_saltlen(const struct sig_ctx *ctx, OSSL_PARAM *p)
{
	char num[16];

	if (p->data_type == OSSL_PARAM_INTEGER)
		return OSSL_PARAM_set_int(p, ctx->saltlen);
	switch (ctx->saltlen) {
	case RSA_PSS_SALTLEN_DIGEST:
		return OSSL_PARAM_set_utf8_string(
		        p, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST);
	case RSA_PSS_SALTLEN_MAX:
		return OSSL_PARAM_set_utf8_string(
		        p, OSSL_PKEY_RSA_PSS_SALT_LEN_MAX);
	case RSA_PSS_SALTLEN_AUTO:
		return OSSL_PARAM_set_utf8_string(
		        p, OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO);
	default:
		snprintf(num, sizeof(num), "%d", ctx->saltlen);
		return OSSL_PARAM_set_utf8_string(p, num);
	}
}

static int sig_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
	struct sig_ctx *ctx = vctx;
	OSSL_PARAM *p;

	p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);
	if (p != NULL && !get_algorithm_id(ctx, p))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST);
	if (p != NULL && !set_md_name(p, ctx->md))
		return 0;
	if (ctx->type != TOK_KEY_RSA)
		return 1;
	p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
	if (p != NULL && !get_pad(ctx, p))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
	if (p != NULL && !get_saltlen(ctx, p))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
	if (p != NULL &&
	    !set_md_name(p, ctx->mgf1_md != NULL ? ctx->mgf1_md : ctx->md))
		return 0;
	return 1;
}

static const OSSL_PARAM *rsa_gettable_ctx_params(void *vctx, void *provctx)
{
	static const OSSL_PARAM params[] = {
	        OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL,
	                                0),
	        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
	        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
	        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL,
	                               0),
	        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL,
	                               0),
	        OSSL_PARAM_END};

	return params;
}

static const OSSL_PARAM *ecdsa_gettable_ctx_params(void *vctx, void *provctx)
{
	static const OSSL_PARAM params[] = {
	        OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL,
	                                0),
	        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
	        OSSL_PARAM_END};

	return params;
}

static int sig_sign_init(void *vctx, void *keydata, const OSSL_PARAM params[])
{
	struct sig_ctx *ctx = vctx;
	struct p11prov_key *key = keydata, *copy;

	if (key == NULL || key->tok == NULL || key->type != ctx->type) {
		p11prov_raise(ctx->prov, P11MAIL_ERR_NO_KEY,
		              "the key is not a private key on a token");
		return 0;
	}
	copy = p11prov_key_dup(key, 1);
	if (copy == NULL)
		return 0;
	p11prov_key_free(ctx->key);
	ctx->key = copy;
	return sig_set_ctx_params(ctx, params);
}

static int sig_digest_sign_init(void *vctx, const char *mdname, void *keydata,
                                const OSSL_PARAM params[])
{
	struct sig_ctx *ctx = vctx;

	if (!sig_sign_init(ctx, keydata, params))
		return 0;
	if (!set_md(ctx, mdname != NULL && *mdname != '\0' ? mdname : "SHA256"))
		return 0;
	if (ctx->mdctx == NULL && (ctx->mdctx = EVP_MD_CTX_new()) == NULL)
		return 0;
	return EVP_DigestInit_ex2(ctx->mdctx, ctx->md, NULL);
}

static int sig_digest_sign_update(void *vctx, const unsigned char *data,
                                  size_t datalen)
{
	struct sig_ctx *ctx = vctx;

	return ctx->mdctx != NULL &&
	       EVP_DigestUpdate(ctx->mdctx, data, datalen);
}

/* Wraps a hash in the DER DigestInfo that PKCS#1 v1.5 signs. */
static int digest_info(const EVP_MD *md, const unsigned char *hash, size_t len,
                       unsigned char **der, int *der_len)
{
	X509_SIG *sig;
	X509_ALGOR *alg;
	ASN1_OCTET_STRING *digest;
	int ok = 0;

	*der = NULL;
	sig = X509_SIG_new();
	if (sig == NULL)
		return 0;
	X509_SIG_getm(sig, &alg, &digest);
	if (X509_ALGOR_set0(alg, OBJ_nid2obj(md_nid(md)), V_ASN1_NULL, NULL) &&
	    ASN1_OCTET_STRING_set(digest, hash, (int)len)) {
		*der_len = i2d_X509_SIG(sig, der);
		ok = *der_len > 0;
	}
	X509_SIG_free(sig);
	return ok;
}

/* The longest PSS salt the key and hash leave room for. */
static int max_salt_bytes(const struct sig_ctx *ctx)
{
	int em_len = ((int)ctx->key->bits - 1 + 7) / 8;

	return em_len - EVP_MD_get_size(ctx->md) - 2;
}

/* The PSS salt length the settings stand for, in bytes. */
static int pss_salt_bytes(const struct sig_ctx *ctx)
{
	if (ctx->saltlen == RSA_PSS_SALTLEN_DIGEST)
		return EVP_MD_get_size(ctx->md);
	if (ctx->saltlen == RSA_PSS_SALTLEN_MAX ||
	    ctx->saltlen == RSA_PSS_SALTLEN_AUTO)
		return max_salt_bytes(ctx);
	return ctx->saltlen;
}

/* Fills in the token's signature parameters; 0 for impossible settings. */
static int sig_params(struct sig_ctx *ctx, size_t tbslen,
                      struct tok_sig_params *sp)
{
	memset(sp, 0, sizeof(*sp));
	if (ctx->md != NULL && tbslen != (size_t)EVP_MD_get_size(ctx->md)) {
		p11prov_raise(ctx->prov, P11MAIL_ERR_ARGS,
		              "the input is not a %s hash",
		              OBJ_nid2sn(md_nid(ctx->md)));
		return 0;
	}
	if (ctx->type == TOK_KEY_EC) {
		sp->scheme = TOK_SIG_ECDSA;
		return 1;
	}
	if (ctx->pad == RSA_PKCS1_PADDING) {
		sp->scheme = TOK_SIG_PKCS1;
		return 1;
	}
	if (ctx->md == NULL) {
		p11prov_raise(ctx->prov, P11MAIL_ERR_ARGS,
		              "RSA-PSS needs a digest");
		return 0;
	}
	sp->scheme = TOK_SIG_PSS;
	sp->md_nid = md_nid(ctx->md);
	sp->mgf1_md_nid = md_nid(ctx->mgf1_md != NULL ? ctx->mgf1_md : ctx->md);
	sp->salt_len = pss_salt_bytes(ctx);
	if (sp->salt_len < 0 || sp->salt_len > max_salt_bytes(ctx)) {
		p11prov_raise(ctx->prov, P11MAIL_ERR_ARGS,
		              "the PSS salt does not fit the key");
		return 0;
	}
	return 1;
}

/* Converts a token ECDSA signature (r || s) to DER. */
static int ecdsa_to_der(const unsigned char *rs, size_t rs_len,
                        unsigned char *sig, size_t *siglen, size_t sigsize)
{
	ECDSA_SIG *esig = ECDSA_SIG_new();
	BIGNUM *r, *s;
	unsigned char *p = sig;
	int len, ok = 0;

	if (esig == NULL)
		return 0;
	r = BN_bin2bn(rs, (int)(rs_len / 2), NULL);
	s = BN_bin2bn(rs + rs_len / 2, (int)(rs_len / 2), NULL);
	if (r == NULL || s == NULL || !ECDSA_SIG_set0(esig, r, s)) {
		BN_free(r);
		BN_free(s);
		goto out;
	}
	len = i2d_ECDSA_SIG(esig, NULL);
	if (len <= 0 || (size_t)len > sigsize)
		goto out;
	*siglen = (size_t)i2d_ECDSA_SIG(esig, &p);
	ok = 1;
out:
	ECDSA_SIG_free(esig);
	return ok;
}

static int token_sign(struct sig_ctx *ctx, const struct tok_sig_params *sp,
                      const unsigned char *tbs, size_t tbslen,
                      unsigned char *sig, size_t *siglen)
{
	CK_RV rv;

	rv = tok_key_sign(ctx->key->tok, sp, tbs, tbslen, sig, siglen);
	if (rv != CKR_OK) {
		p11prov_raise_rv(ctx->prov, rv, "signing failed");
		return 0;
	}
	return 1;
}

static int sig_sign(void *vctx, unsigned char *sig, size_t *siglen,
                    size_t sigsize, const unsigned char *tbs, size_t tbslen)
{
	struct sig_ctx *ctx = vctx;
	struct tok_sig_params sp;
	unsigned char *info = NULL, rs[2 * 66 + 2];
	size_t max = p11prov_key_max_size(ctx->key), rs_len = sizeof(rs);
	int info_len = 0, ok = 0;

	if (sig == NULL) {
		*siglen = max;
		return 1;
	}
	if (!sig_params(ctx, tbslen, &sp))
		return 0;
	if (ctx->type == TOK_KEY_EC) {
		if (!token_sign(ctx, &sp, tbs, tbslen, rs, &rs_len))
			return 0;
		return ecdsa_to_der(rs, rs_len, sig, siglen, sigsize);
	}
	if (sigsize < max) {
		p11prov_raise(ctx->prov, P11MAIL_ERR_ARGS,
		              "the signature buffer is too small");
		return 0;
	}

	/* PKCS#1 v1.5 over a hash signs its DigestInfo. */
	if (sp.scheme == TOK_SIG_PKCS1 && ctx->md != NULL) {
		if (!digest_info(ctx->md, tbs, tbslen, &info, &info_len))
			goto out;
		tbs = info;
		tbslen = (size_t)info_len;
	}
	*siglen = sigsize;
	ok = token_sign(ctx, &sp, tbs, tbslen, sig, siglen);
out:
	OPENSSL_free(info);
	return ok;
}

static int sig_digest_sign_final(void *vctx, unsigned char *sig, size_t *siglen,
                                 size_t sigsize)
{
	struct sig_ctx *ctx = vctx;
	unsigned char hash[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (ctx->mdctx == NULL)
		return 0;
	if (sig == NULL) {
		*siglen = p11prov_key_max_size(ctx->key);
		return 1;
	}
	if (!EVP_DigestFinal_ex(ctx->mdctx, hash, &len))
		return 0;
	return sig_sign(ctx, sig, siglen, sigsize, hash, len);
}

/*
 * Verification runs in software with the public key, so that OpenSSL code
 * holding a token key (CMS after signing, for example) can check a
 * signature with it.
 */
static int sig_verify_init(void *vctx, void *keydata, const OSSL_PARAM params[])
{
	struct sig_ctx *ctx = vctx;
	struct p11prov_key *key = keydata, *copy;

	if (key == NULL || key->type != ctx->type)
		return 0;
	copy = p11prov_key_dup(key, key->tok != NULL);
	if (copy == NULL)
		return 0;
	p11prov_key_free(ctx->key);
	ctx->key = copy;
	EVP_PKEY_free(ctx->pub);
	ctx->pub = p11prov_key_soft_public(key);
	if (ctx->pub == NULL) {
		p11prov_raise(ctx->prov, P11MAIL_ERR_CRYPTO,
		              "the public key cannot be used to verify");
		return 0;
	}
	return sig_set_ctx_params(ctx, params);
}

static int sig_digest_verify_init(void *vctx, const char *mdname, void *keydata,
                                  const OSSL_PARAM params[])
{
	struct sig_ctx *ctx = vctx;

	if (!sig_verify_init(ctx, keydata, params))
		return 0;
	if (!set_md(ctx, mdname != NULL && *mdname != '\0' ? mdname : "SHA256"))
		return 0;
	if (ctx->mdctx == NULL && (ctx->mdctx = EVP_MD_CTX_new()) == NULL)
		return 0;
	return EVP_DigestInit_ex2(ctx->mdctx, ctx->md, NULL);
}

/* Hands the settings of this context to the software verifier. */
static int soft_verify_params(struct sig_ctx *ctx, EVP_PKEY_CTX *pctx)
{
	OSSL_PARAM params[5], *p = params;
	char md[64] = "", mgf1[64] = "";

	if (ctx->md != NULL) {
		snprintf(md, sizeof(md), "%s", OBJ_nid2sn(md_nid(ctx->md)));
		*p++ = OSSL_PARAM_construct_utf8_string(
		        OSSL_SIGNATURE_PARAM_DIGEST, md, 0);
	}
	if (ctx->type == TOK_KEY_RSA) {
		*p++ = OSSL_PARAM_construct_int(OSSL_SIGNATURE_PARAM_PAD_MODE,
		                                &ctx->pad);
	}
	if (ctx->type == TOK_KEY_RSA && ctx->pad == RSA_PKCS1_PSS_PADDING) {
		*p++ = OSSL_PARAM_construct_int(
		        OSSL_SIGNATURE_PARAM_PSS_SALTLEN, &ctx->saltlen);
		if (ctx->mgf1_md != NULL) {
			snprintf(mgf1, sizeof(mgf1), "%s",
			         OBJ_nid2sn(md_nid(ctx->mgf1_md)));
			*p++ = OSSL_PARAM_construct_utf8_string(
			        OSSL_SIGNATURE_PARAM_MGF1_DIGEST, mgf1, 0);
		}
	}
	*p = OSSL_PARAM_construct_end();
	return EVP_PKEY_CTX_set_params(pctx, params) > 0;
}

static int sig_verify(void *vctx, const unsigned char *sig, size_t siglen,
                      const unsigned char *tbs, size_t tbslen)
{
	struct sig_ctx *ctx = vctx;
	EVP_PKEY_CTX *pctx;
	int ok = 0;

	pctx = EVP_PKEY_CTX_new_from_pkey(p11prov_libctx(ctx->prov), ctx->pub,
	                                  P11PROV_SOFT_PROPQ);
	if (pctx != NULL && EVP_PKEY_verify_init(pctx) > 0 &&
	    soft_verify_params(ctx, pctx))
		ok = EVP_PKEY_verify(pctx, sig, siglen, tbs, tbslen) == 1;
	EVP_PKEY_CTX_free(pctx);
	return ok;
}

static int sig_digest_verify_final(void *vctx, const unsigned char *sig,
                                   size_t siglen)
{
	struct sig_ctx *ctx = vctx;
	unsigned char hash[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (ctx->mdctx == NULL || !EVP_DigestFinal_ex(ctx->mdctx, hash, &len))
		return 0;
	return sig_verify(ctx, sig, siglen, hash, len);
}

/* Dispatch entries shared by RSA and ECDSA; the list ends each table. */
#define SIG_FN(id, fn)                                                         \
	{                                                                      \
		OSSL_FUNC_SIGNATURE_##id, (void (*)(void))fn                   \
	}
#define SIG_COMMON_FUNCTIONS                                                   \
	SIG_FN(FREECTX, sig_freectx), SIG_FN(DUPCTX, sig_dupctx),              \
	        SIG_FN(SIGN_INIT, sig_sign_init), SIG_FN(SIGN, sig_sign),      \
	        SIG_FN(DIGEST_SIGN_INIT, sig_digest_sign_init),                \
	        SIG_FN(DIGEST_SIGN_UPDATE, sig_digest_sign_update),            \
	        SIG_FN(DIGEST_SIGN_FINAL, sig_digest_sign_final),              \
	        SIG_FN(VERIFY_INIT, sig_verify_init),                          \
	        SIG_FN(VERIFY, sig_verify),                                    \
	        SIG_FN(DIGEST_VERIFY_INIT, sig_digest_verify_init),            \
	        SIG_FN(DIGEST_VERIFY_UPDATE, sig_digest_sign_update),          \
	        SIG_FN(DIGEST_VERIFY_FINAL, sig_digest_verify_final),          \
	        SIG_FN(GET_CTX_PARAMS, sig_get_ctx_params),                    \
	        SIG_FN(SET_CTX_PARAMS, sig_set_ctx_params)

const OSSL_DISPATCH p11prov_rsa_signature_functions[] = {
        SIG_FN(NEWCTX, rsa_newctx),
        SIG_COMMON_FUNCTIONS,
        SIG_FN(GETTABLE_CTX_PARAMS, rsa_gettable_ctx_params),
        SIG_FN(SETTABLE_CTX_PARAMS, rsa_settable_ctx_params),
        {0, NULL}};

const OSSL_DISPATCH p11prov_ecdsa_signature_functions[] = {
        SIG_FN(NEWCTX, ecdsa_newctx),
        SIG_COMMON_FUNCTIONS,
        SIG_FN(GETTABLE_CTX_PARAMS, ecdsa_gettable_ctx_params),
        SIG_FN(SETTABLE_CTX_PARAMS, ecdsa_settable_ctx_params),
        {0, NULL}};
