/*
 * STORE for the pkcs11 URI scheme.  A URI resolves to at most one private
 * key, returned by reference for this provider's KEYMGMT, and to the
 * certificates it matches, returned as DER.  A URI matching several keys
 * is an error that lists the candidates; so is a URI matching nothing.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/params.h>
#include <openssl/store.h>

#include "common.h"
#include "key.h"

struct store_ctx {
	struct p11prov_ctx *prov;
	char *uri;
	int expect; /* OSSL_STORE_INFO_PKEY, _CERT, or 0 for both */
	int resolved;
	int eof;
	struct p11prov_key *key;
	int key_sent;
	struct tok_object *objects;
	size_t count;
	size_t next;
	int certs_sent;
};

static void *store_open(void *provctx, const char *uri)
{
	struct store_ctx *ctx;

	if (uri == NULL || strncasecmp(uri, "pkcs11:", 7) != 0)
		return NULL;
	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL)
		return NULL;
	ctx->prov = provctx;
	ctx->uri = strdup(uri);
	if (ctx->uri == NULL) {
		free(ctx);
		return NULL;
	}
	return ctx;
}

static const OSSL_PARAM *store_settable_ctx_params(void *provctx)
{
	static const OSSL_PARAM params[] = {
	        OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
	        OSSL_PARAM_utf8_string(OSSL_STORE_PARAM_PROPERTIES, NULL, 0),
	        OSSL_PARAM_END};

	return params;
}

static int store_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
	struct store_ctx *ctx = vctx;
	const OSSL_PARAM *p;

	if (params == NULL)
		return 1;
	p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_EXPECT);
	if (p != NULL && !OSSL_PARAM_get_int(p, &ctx->expect))
		return 0;
	return 1;
}

/* True when the attribute name of len bytes at name mentions a PIN. */
static int pin_named(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i + 3 <= len; i++)
		if (strncasecmp(name + i, "pin", 3) == 0)
			return 1;
	return 0;
}

/*
 * Writes uri into buf as messages may show it: without its query (which
 * may carry pin-value or pin-source), and with the value of any path
 * attribute named like a PIN replaced by ***.  Truncates; returns buf.
 */
static const char *uri_shown(const char *uri, char *buf, size_t size)
{
	size_t plen = strcspn(uri, "?");
	size_t used = 0;
	const char *p = uri;

	buf[0] = '\0';
	while (p < uri + plen && used + 1 < size) {
		size_t alen = strcspn(p, ";?");
		const char *eq = memchr(p, '=', alen);
		int pin = eq != NULL && pin_named(p, (size_t)(eq - p));
		int n = pin ? (int)(eq - p) : (int)alen;

		snprintf(buf + used, size - used, "%s%.*s%s",
		         p == uri ? "" : ";", n, p, pin ? "=***" : "");
		used = strlen(buf);
		p += alen + (p[alen] == ';');
	}
	if (uri[plen] == '?' && used + 1 < size)
		snprintf(buf + used, size - used, "?...");
	return buf;
}

static int wants(const struct store_ctx *ctx, int type)
{
	return ctx->expect == 0 || ctx->expect == type;
}

/* Opens the key the URI names; 0 only for failures that must stop. */
static int resolve_key(struct store_ctx *ctx, tok_core *core)
{
	tok_key *tok = NULL;
	CK_RV rv;

	rv = tok_key_open(core, ctx->uri, &tok);
	if (rv == CKR_OK) {
		ctx->key = p11prov_key_from_tok(ctx->prov, tok);
		tok_key_unref(tok);
		return ctx->key != NULL;
	}

	/* A URI naming only certificates is fine when keys are optional. */
	if (tok_status(rv) == P11MAIL_ERR_NO_KEY &&
	    ctx->expect != OSSL_STORE_INFO_PKEY)
		return 1;
	p11prov_raise_rv(ctx->prov, rv, NULL);
	return 0;
}

static int count_certs(const struct store_ctx *ctx)
{
	size_t i;
	int n = 0;

	for (i = 0; i < ctx->count; i++)
		n += ctx->objects[i].cls == CKO_CERTIFICATE;
	return n;
}

/* Resolves the URI once: the key, then the certificates. */
static int resolve(struct store_ctx *ctx)
{
	tok_core *core = p11prov_core(ctx->prov);
	CK_RV rv;

	if (core == NULL)
		return 0;
	if (wants(ctx, OSSL_STORE_INFO_PKEY) && !resolve_key(ctx, core))
		return 0;
	if (!wants(ctx, OSSL_STORE_INFO_CERT))
		return 1;
	rv = tok_list_objects(core, ctx->uri, &ctx->objects, &ctx->count);
	if (rv != CKR_OK && ctx->key == NULL) {
		p11prov_raise_rv(ctx->prov, rv, NULL);
		return 0;
	}

	/* Asked for a certificate by the key's URI: the one paired with it. */
	if (ctx->expect == OSSL_STORE_INFO_CERT && count_certs(ctx) == 0)
		return resolve_key(ctx, core);
	return 1;
}

static int send_key(struct store_ctx *ctx, OSSL_CALLBACK *cb, void *cbarg)
{
	OSSL_PARAM params[5];
	int type = OSSL_OBJECT_PKEY;
	char data_type[4];
	const struct tok_key_info *info = tok_key_info(ctx->key->tok);

	snprintf(data_type, sizeof(data_type), "%s",
	         ctx->key->type == TOK_KEY_RSA ? "RSA" : "EC");
	params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &type);
	params[1] = OSSL_PARAM_construct_utf8_string(
	        OSSL_OBJECT_PARAM_DATA_TYPE, data_type, 0);
	params[2] = OSSL_PARAM_construct_octet_string(
	        OSSL_OBJECT_PARAM_REFERENCE, &ctx->key, sizeof(ctx->key));
	params[3] = OSSL_PARAM_construct_utf8_string(
	        OSSL_OBJECT_PARAM_DESC, (char *)(uintptr_t)info->uri, 0);
	params[4] = OSSL_PARAM_construct_end();
	ctx->key_sent = 1;
	return cb(params, cbarg);
}

static int send_cert(const unsigned char *der, size_t len, OSSL_CALLBACK *cb,
                     void *cbarg)
{
	OSSL_PARAM params[3];
	int type = OSSL_OBJECT_CERT;

	params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &type);
	params[1] = OSSL_PARAM_construct_octet_string(
	        OSSL_OBJECT_PARAM_DATA, (void *)(uintptr_t)der, len);
	params[2] = OSSL_PARAM_construct_end();
	return cb(params, cbarg);
}

/* Sends the next certificate; 0 when there is none left. */
static int next_cert(struct store_ctx *ctx, OSSL_CALLBACK *cb, void *cbarg,
                     int *ok)
{
	const struct tok_key_info *info;

	while (ctx->next < ctx->count) {
		const struct tok_object *obj = &ctx->objects[ctx->next++];

		if (obj->cls == CKO_CERTIFICATE && obj->der != NULL) {
			*ok = send_cert(obj->der, obj->der_len, cb, cbarg);
			return 1;
		}
	}

	/* A URI naming the key alone still finds the certificate paired. */
	if (ctx->certs_sent || ctx->key == NULL || count_certs(ctx) > 0)
		return 0;
	ctx->certs_sent = 1;
	info = tok_key_info(ctx->key->tok);
	if (info->cert_der == NULL)
		return 0;
	*ok = send_cert(info->cert_der, info->cert_der_len, cb, cbarg);
	return 1;
}

static int store_load(void *vctx, OSSL_CALLBACK *object_cb, void *object_cbarg,
                      OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
	struct store_ctx *ctx = vctx;
	int ok = 1;

	if (!ctx->resolved) {
		ctx->resolved = 1;
		p11prov_pw_push(pw_cb, pw_cbarg);
		ok = resolve(ctx);
		p11prov_pw_pop();
		if (ok && ctx->key == NULL && count_certs(ctx) == 0) {
			char shown[256];

			p11prov_raise(
			        ctx->prov, P11MAIL_ERR_NOT_FOUND,
			        "nothing on the tokens matches %s",
			        uri_shown(ctx->uri, shown, sizeof(shown)));
			ok = 0;
		}
		if (!ok) {
			ctx->eof = 1;
			return 0;
		}
	}
	if (ctx->key != NULL && !ctx->key_sent &&
	    wants(ctx, OSSL_STORE_INFO_PKEY))
		return send_key(ctx, object_cb, object_cbarg);
	if (wants(ctx, OSSL_STORE_INFO_CERT) &&
	    next_cert(ctx, object_cb, object_cbarg, &ok))
		return ok;
	ctx->eof = 1;
	return 0;
}

static int store_eof(void *vctx)
{
	struct store_ctx *ctx = vctx;

	return ctx->eof;
}

static int store_close(void *vctx)
{
	struct store_ctx *ctx = vctx;

	if (ctx == NULL)
		return 1;
	p11prov_key_free(ctx->key);
	tok_objects_free(ctx->objects, ctx->count);
	/* The query of the URI may hold a pin-value. */
	p11mail_secret_free(ctx->uri);
	free(ctx);
	return 1;
}

const OSSL_DISPATCH p11prov_store_functions[] = {
        {OSSL_FUNC_STORE_OPEN, (void (*)(void))store_open},
        {OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS,
         (void (*)(void))store_settable_ctx_params},
        {OSSL_FUNC_STORE_SET_CTX_PARAMS, (void (*)(void))store_set_ctx_params},
        {OSSL_FUNC_STORE_LOAD, (void (*)(void))store_load},
        {OSSL_FUNC_STORE_EOF, (void (*)(void))store_eof},
        {OSSL_FUNC_STORE_CLOSE, (void (*)(void))store_close},
        {0, NULL}};
