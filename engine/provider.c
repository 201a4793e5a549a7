/*
 * Provider life cycle: configuration, the token core of the instance, the
 * algorithm tables and error reporting through the OpenSSL core.
 */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "common.h"
#include "provider.h"

struct p11prov_ctx {
	const OSSL_CORE_HANDLE *handle;
	OSSL_LIB_CTX *libctx;
	OSSL_FUNC_core_new_error_fn *new_error;
	OSSL_FUNC_core_set_error_debug_fn *set_error_debug;
	OSSL_FUNC_core_vset_error_fn *vset_error;

	pthread_mutex_t lock;
	tok_core *core;
	CK_RV core_rv; /* why the core could not be made, once tried */

	/* Token options, used when the core is made. */
	char *module_path;
	char *init_args;
	char *pin_source;
	char *pinentry;
	tok_pin_fn app_pin_fn;
	void *app_pin_arg;
	int in_library; /* configured by libp11mail (p11prov_configure) */
	int allow_prompt;
	enum tok_auth_policy auth_policy;
	int wait_seconds;

	/* Digests fetched for software work, kept for the next operations. */
	pthread_mutex_t md_lock;
	struct {
		char name[32];
		EVP_MD *md;
	} mds[P11PROV_MD_CACHE];
	size_t md_count;
};

/* Reason strings: the library's status sentences, filled in at init. */
static OSSL_ITEM reason_strings[P11MAIL_ERR_INTERNAL + 2];

static pthread_once_t reason_strings_once = PTHREAD_ONCE_INIT;

static void fill_reason_strings(void)
{
	int i;

	for (i = 1; i <= P11MAIL_ERR_INTERNAL; i++) {
		reason_strings[i - 1].id = (unsigned int)i;
		reason_strings[i - 1].ptr =
		        (void *)(uintptr_t)p11mail_strerror(i);
	}
}

void p11prov_raise_at(const struct p11prov_ctx *ctx, const char *file, int line,
                      const char *func, int reason, const char *fmt, ...)
{
	va_list ap;

	if (ctx == NULL || ctx->new_error == NULL || ctx->vset_error == NULL)
		return;
	ctx->new_error(ctx->handle);
	if (ctx->set_error_debug != NULL)
		ctx->set_error_debug(ctx->handle, file, line, func);
	va_start(ap, fmt);
	ctx->vset_error(ctx->handle, (uint32_t)reason, fmt, ap);
	va_end(ap);
}

void p11prov_raise_rv_at(const struct p11prov_ctx *ctx, const char *file,
                         int line, const char *func, CK_RV rv, const char *what)
{
	const char *detail = tok_last_error();
	int reason = (int)tok_status(rv);

	if (reason == P11MAIL_OK)
		reason = P11MAIL_ERR_TOKEN;
	if (detail == NULL || *detail == '\0')
		detail = p11mail_strerror(reason);
	if (what != NULL)
		p11prov_raise_at(ctx, file, line, func, reason, "%s: %s", what,
		                 detail);
	else
		p11prov_raise_at(ctx, file, line, func, reason, "%s", detail);
}

/* The OpenSSL passphrase callback of the STORE load running in a thread. */
static _Thread_local OSSL_PASSPHRASE_CALLBACK *pw_cb;
static _Thread_local void *pw_arg;

void p11prov_pw_push(OSSL_PASSPHRASE_CALLBACK *cb, void *arg)
{
	pw_cb = cb;
	pw_arg = arg;
}

void p11prov_pw_pop(void)
{
	pw_cb = NULL;
	pw_arg = NULL;
}

/*
 * Reads the first line of a pin-source file ("file:" prefix optional)
 * straight into the caller's buffer, so no stdio buffer keeps a copy.
 */
static int pin_from_file(const char *source, char *buf, size_t size)
{
	ssize_t n;
	size_t len;
	int fd;

	if (strncmp(source, "file:", 5) == 0)
		source += 5;
	fd = open(source, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0) {
		p11mail_wipe(buf, size);
		return -1;
	}
	buf[n] = '\0';
	len = strcspn(buf, "\r\n");
	p11mail_wipe(buf + len, size - len);
	return len > 0 ? 0 : -1;
}

/*
 * True when the error OpenSSL's passphrase callback just queued says it
 * has no way to ask: the application opened the store without a UI method
 * or passphrase callback of its own.
 */
static int callback_cannot_ask(void)
{
	const char *data = NULL;
	int flags = 0;
	unsigned long e = ERR_peek_last_error_data(&data, &flags);

	return e != 0 && ERR_GET_LIB(e) == ERR_LIB_CRYPTO &&
	       ERR_GET_REASON(e) == ERR_R_PASSED_INVALID_ARGUMENT &&
	       (flags & ERR_TXT_STRING) && data != NULL &&
	       strstr(data, "No password method") != NULL;
}

/*
 * Asks OpenSSL's passphrase callback of this thread for the PIN; returns
 * TOK_PIN_ASK_NEXT, without the callback's error, when it cannot ask.
 */
static int pin_from_callback(const struct tok_pin_request *req, char *buf,
                             size_t size)
{
	char info[256];
	OSSL_PARAM params[2];
	size_t len = 0;
	int ok;

	snprintf(info, sizeof(info), "%s%s%s",
	         req->key_label != NULL ? req->key_label : "",
	         req->key_label != NULL ? " on " : "",
	         req->token_label != NULL ? req->token_label : "the token");
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PASSPHRASE_PARAM_INFO,
	                                             info, 0);
	params[1] = OSSL_PARAM_construct_end();
	ERR_set_mark();
	ok = pw_cb(buf, size - 1, &len, params, pw_arg);
	if (!ok && callback_cannot_ask()) {
		ERR_pop_to_mark();
		p11mail_wipe(buf, size);
		return TOK_PIN_ASK_NEXT;
	}
	ERR_clear_last_mark();
	if (!ok || len == 0) {
		p11mail_wipe(buf, size);
		return -1;
	}
	buf[len] = '\0';
	return 0;
}

/*
 * The PIN source of the token core: the configured pin-source file, then
 * the callback libp11mail's application gave, then OpenSSL's passphrase
 * callback (which OpenSSL passes even when it has no way to ask).  When
 * none of them can ask, the token core goes on to the terminal and the
 * pinentry program.  Inside libp11mail, which opens its stores without a
 * UI method, OpenSSL's callback could only fail and is not called.
 */
static int provider_pin_fn(void *arg, const struct tok_pin_request *req,
                           char *buf, size_t size)
{
	struct p11prov_ctx *ctx = arg;

	if (size < 2)
		return -1;
	if (ctx->pin_source != NULL && !req->context_specific)
		return pin_from_file(ctx->pin_source, buf, size);
	if (ctx->app_pin_fn != NULL)
		return ctx->app_pin_fn(ctx->app_pin_arg, req, buf, size);
	if (pw_cb != NULL && !ctx->in_library)
		return pin_from_callback(req, buf, size);
	return TOK_PIN_ASK_NEXT;
}

tok_core *p11prov_core(struct p11prov_ctx *ctx)
{
	struct tok_options opts = {0};
	tok_core *core;

	pthread_mutex_lock(&ctx->lock);
	if (ctx->core == NULL && ctx->core_rv == CKR_OK) {
		opts.module_path = ctx->module_path;
		opts.init_args = ctx->init_args;
		opts.pin_fn = provider_pin_fn;
		opts.pin_arg = ctx;
		opts.pinentry = ctx->pinentry;
		opts.allow_prompt = ctx->allow_prompt;
		opts.auth_policy = ctx->auth_policy;
		opts.wait_seconds = ctx->wait_seconds;
		ctx->core_rv = tok_core_new(&opts, &ctx->core);
		if (ctx->core_rv == CKR_OK)
			p11m_trace("provider", "token core made (module %s)",
			           ctx->module_path != NULL
			                   ? ctx->module_path
			                   : "from the p11-kit registry");
	}
	core = ctx->core;
	pthread_mutex_unlock(&ctx->lock);
	if (core == NULL)
		p11prov_raise_rv(ctx, ctx->core_rv,
		                 "cannot start the token core");
	return core;
}

OSSL_LIB_CTX *p11prov_libctx(const struct p11prov_ctx *ctx)
{
	return ctx->libctx;
}

/* The cached digest of that name, up-referenced, or NULL; lock held. */
static EVP_MD *md_cached(struct p11prov_ctx *ctx, const char *name)
{
	size_t i;

	for (i = 0; i < ctx->md_count; i++)
		if (strcmp(ctx->mds[i].name, name) == 0 &&
		    EVP_MD_up_ref(ctx->mds[i].md))
			return ctx->mds[i].md;
	return NULL;
}

/* Keeps md under name when there is room; lock held. */
static void md_keep(struct p11prov_ctx *ctx, const char *name, EVP_MD *md)
{
	size_t n = ctx->md_count;

	if (n == P11PROV_MD_CACHE || strlen(name) >= sizeof(ctx->mds[n].name) ||
	    !EVP_MD_up_ref(md))
		return;
	snprintf(ctx->mds[n].name, sizeof(ctx->mds[n].name), "%s", name);
	ctx->mds[n].md = md;
	ctx->md_count = n + 1;
}

EVP_MD *p11prov_fetch_md(struct p11prov_ctx *ctx, const char *name)
{
	EVP_MD *md;

	pthread_mutex_lock(&ctx->md_lock);
	md = md_cached(ctx, name);
	if (md == NULL) {
		md = EVP_MD_fetch(ctx->libctx, name, P11PROV_SOFT_PROPQ);
		if (md != NULL)
			md_keep(ctx, name, md);
	}
	pthread_mutex_unlock(&ctx->md_lock);
	if (md == NULL)
		p11prov_raise(ctx, P11MAIL_ERR_ARGS, "unknown digest \"%s\"",
		              name);
	return md;
}

/* Replaces *dst with a copy of src (NULL or empty clears it). */
static int set_string(char **dst, const char *src)
{
	char *copy = NULL;

	if (src != NULL && *src != '\0') {
		copy = strdup(src);
		if (copy == NULL)
			return 0;
	}
	free(*dst);
	*dst = copy;
	return 1;
}

int p11prov_configure(struct p11prov_ctx *ctx, const struct tok_options *opts)
{
	int ok = 0;

	pthread_mutex_lock(&ctx->lock);
	if (ctx->core != NULL)
		goto out;
	if (!set_string(&ctx->module_path, opts->module_path) ||
	    !set_string(&ctx->init_args, opts->init_args) ||
	    !set_string(&ctx->pinentry, opts->pinentry))
		goto out;
	ctx->app_pin_fn = opts->pin_fn;
	ctx->app_pin_arg = opts->pin_arg;
	ctx->in_library = 1;
	ctx->allow_prompt = opts->allow_prompt;
	ctx->auth_policy = opts->auth_policy;
	ctx->wait_seconds = opts->wait_seconds;
	ctx->core_rv = CKR_OK;
	ok = 1;
out:
	pthread_mutex_unlock(&ctx->lock);
	return ok;
}

static void provider_teardown(void *provctx)
{
	struct p11prov_ctx *ctx = provctx;

	if (ctx == NULL)
		return;
	p11m_trace("provider", "teardown");
	while (ctx->md_count > 0)
		EVP_MD_free(ctx->mds[--ctx->md_count].md);
	pthread_mutex_destroy(&ctx->md_lock);
	tok_core_free(ctx->core);
	OSSL_LIB_CTX_free(ctx->libctx);
	free(ctx->module_path);
	free(ctx->init_args);
	free(ctx->pin_source);
	free(ctx->pinentry);
	pthread_mutex_destroy(&ctx->lock);
	free(ctx);
}

static const OSSL_ALGORITHM store_algs[] = {
        {"pkcs11", P11PROV_PROPS, p11prov_store_functions,
         "PKCS#11 URIs (RFC 7512) naming keys and certificates on tokens"},
        {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM keymgmt_algs[] = {
        {"RSA:rsaEncryption", P11PROV_PROPS, p11prov_rsa_keymgmt_functions,
         "RSA private keys on PKCS#11 tokens"},
        {"EC:id-ecPublicKey", P11PROV_PROPS, p11prov_ec_keymgmt_functions,
         "EC private keys on PKCS#11 tokens"},
        {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM signature_algs[] = {
        {"RSA:rsaEncryption", P11PROV_PROPS, p11prov_rsa_signature_functions,
         "RSA PKCS#1 v1.5 and PSS signatures on tokens"},
        {"ECDSA", P11PROV_PROPS, p11prov_ecdsa_signature_functions,
         "ECDSA signatures on tokens"},
        {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM cipher_algs[] = {
        {"RSA:rsaEncryption", P11PROV_PROPS, p11prov_rsa_cipher_functions,
         "RSA PKCS#1 v1.5 and OAEP decryption on tokens"},
        {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM keyexch_algs[] = {
        {"ECDH", P11PROV_PROPS, p11prov_ecdh_keyexch_functions,
         "ECDH on tokens, X9.63 KDF in software"},
        {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM *provider_query(void *provctx, int operation_id,
                                            int *no_cache)
{
	*no_cache = 0;
	switch (operation_id) {
	case OSSL_OP_STORE:
		return store_algs;
	case OSSL_OP_KEYMGMT:
		return keymgmt_algs;
	case OSSL_OP_SIGNATURE:
		return signature_algs;
	case OSSL_OP_ASYM_CIPHER:
		return cipher_algs;
	case OSSL_OP_KEYEXCH:
		return keyexch_algs;
	default:
		return NULL;
	}
}

static const OSSL_PARAM *provider_gettable_params(void *provctx)
{
	static const OSSL_PARAM params[] = {
	        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_NAME, NULL, 0),
	        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_VERSION, NULL, 0),
	        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, NULL, 0),
	        OSSL_PARAM_int(OSSL_PROV_PARAM_STATUS, NULL), OSSL_PARAM_END};

	return params;
}

static int provider_get_params(void *provctx, OSSL_PARAM params[])
{
	OSSL_PARAM *p;

	p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME);
	if (p != NULL &&
	    !OSSL_PARAM_set_utf8_ptr(p, "p11mail PKCS#11 provider"))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION);
	if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, PACKAGE_VERSION))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO);
	if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, PACKAGE_STRING))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS);
	if (p != NULL && !OSSL_PARAM_set_int(p, 1))
		return 0;
	return 1;
}

static const OSSL_ITEM *provider_reason_strings(void *provctx)
{
	return reason_strings;
}

static const OSSL_DISPATCH provider_functions[] = {
        {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))provider_teardown},
        {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))provider_query},
        {OSSL_FUNC_PROVIDER_GETTABLE_PARAMS,
         (void (*)(void))provider_gettable_params},
        {OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))provider_get_params},
        {OSSL_FUNC_PROVIDER_GET_REASON_STRINGS,
         (void (*)(void))provider_reason_strings},
        {0, NULL}};

/* Takes the core functions the provider uses from the dispatch table. */
static void take_core_functions(struct p11prov_ctx *ctx,
                                const OSSL_DISPATCH *in,
                                OSSL_FUNC_core_get_params_fn **get_params)
{
	for (; in->function_id != 0; in++) {
		switch (in->function_id) {
		case OSSL_FUNC_CORE_GET_PARAMS:
			*get_params = OSSL_FUNC_core_get_params(in);
			break;
		case OSSL_FUNC_CORE_NEW_ERROR:
			ctx->new_error = OSSL_FUNC_core_new_error(in);
			break;
		case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
			ctx->set_error_debug =
			        OSSL_FUNC_core_set_error_debug(in);
			break;
		case OSSL_FUNC_CORE_VSET_ERROR:
			ctx->vset_error = OSSL_FUNC_core_vset_error(in);
			break;
		default:
			break;
		}
	}
}

/*
 * Reads the settings: the provider section of openssl.cnf, overridden by
 * P11MAIL_MODULE and P11MAIL_INIT_ARGS in the environment.  The names
 * carry a prefix because "module" already means the provider's own file
 * there.
 */
static int read_settings(struct p11prov_ctx *ctx,
                         OSSL_FUNC_core_get_params_fn *get_params)
{
	char *module = NULL, *init_args = NULL, *pin_source = NULL;
	char *prompt = NULL;
	const char *env;
	OSSL_PARAM params[5];

	params[0] = OSSL_PARAM_construct_utf8_ptr("pkcs11-module", &module, 0);
	params[1] = OSSL_PARAM_construct_utf8_ptr("pkcs11-init-args",
	                                          &init_args, 0);
	params[2] = OSSL_PARAM_construct_utf8_ptr("pkcs11-pin-source",
	                                          &pin_source, 0);
	params[3] = OSSL_PARAM_construct_utf8_ptr("pkcs11-allow-prompt",
	                                          &prompt, 0);
	params[4] = OSSL_PARAM_construct_end();
	if (get_params != NULL && !get_params(ctx->handle, params))
		return 0;

	env = p11m_getenv("P11MAIL_MODULE");
	if (!set_string(&ctx->module_path,
	                env != NULL && *env != '\0' ? env : module))
		return 0;
	env = p11m_getenv("P11MAIL_INIT_ARGS");
	if (!set_string(&ctx->init_args,
	                env != NULL && *env != '\0' ? env : init_args))
		return 0;
	ctx->allow_prompt = prompt == NULL || strcmp(prompt, "no") != 0;
	return set_string(&ctx->pin_source, pin_source);
}

int p11prov_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                 const OSSL_DISPATCH **out, void **provctx)
{
	OSSL_FUNC_core_get_params_fn *get_params = NULL;
	struct p11prov_ctx *ctx;

	*provctx = NULL;
	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL)
		return 0;
	ctx->handle = handle;
	pthread_mutex_init(&ctx->lock, NULL);
	pthread_mutex_init(&ctx->md_lock, NULL);
	pthread_once(&reason_strings_once, fill_reason_strings);
	take_core_functions(ctx, in, &get_params);

	/* A child context sees the parent's providers, for software work. */
	ctx->libctx = OSSL_LIB_CTX_new_child(handle, in);
	if (ctx->libctx == NULL || !read_settings(ctx, get_params)) {
		provider_teardown(ctx);
		return 0;
	}
	/* libp11mail may choose the module later: named when the core is. */
	p11m_trace("provider", "initialised");
	*out = provider_functions;
	*provctx = ctx;
	return 1;
}
