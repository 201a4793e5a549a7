/*
 * The private library context of libp11mail, with the provider built in.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/store.h>

#include "common.h"
#include "libctx.h"
#include "provider.h"

struct p11m_libctx {
	OSSL_LIB_CTX *libctx;
	OSSL_PROVIDER *dflt;
	OSSL_PROVIDER *p11;
};

enum p11mail_status p11m_libctx_take_errors(enum p11mail_status fallback)
{
	enum p11mail_status status = fallback, found = P11MAIL_OK;
	const char *data, *lib;
	unsigned long err;
	int flags, reason;

	while ((err = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) !=
	       0) {
		int ours;

		lib = ERR_lib_error_string(err);
		reason = ERR_GET_REASON(err);
		ours = lib != NULL && strcmp(lib, P11PROV_NAME) == 0 &&
		       reason > 0 && reason <= P11MAIL_ERR_INTERNAL;
		if (ours && found == P11MAIL_OK)
			found = (enum p11mail_status)reason;
		/* the provider's text is the whole reason: no prefix */
		if (ours && (flags & ERR_TXT_STRING) && *data != '\0') {
			p11m_log(P11MAIL_LOG_ERROR, "%s", data);
			continue;
		}
		p11m_log(P11MAIL_LOG_ERROR, "%s%s%s",
		         ERR_reason_error_string(err) != NULL
		                 ? ERR_reason_error_string(err)
		                 : "OpenSSL error",
		         (flags & ERR_TXT_STRING) && *data != '\0' ? ": " : "",
		         (flags & ERR_TXT_STRING) ? data : "");
	}
	if (found != P11MAIL_OK)
		status = found;
	return status;
}

enum p11mail_status p11m_libctx_new(const struct tok_options *opts,
                                    p11m_libctx **out)
{
	p11m_libctx *lc;
	enum p11mail_status status = P11MAIL_ERR_CRYPTO;

	*out = NULL;
	lc = calloc(1, sizeof(*lc));
	if (lc == NULL)
		return P11MAIL_ERR_NOMEM;
	lc->libctx = OSSL_LIB_CTX_new();
	if (lc->libctx == NULL)
		goto out;

	/* Default first: software keys keep going to it. */
	lc->dflt = OSSL_PROVIDER_load(lc->libctx, "default");
	if (lc->dflt == NULL ||
	    !OSSL_PROVIDER_add_builtin(lc->libctx, P11PROV_NAME, p11prov_init))
		goto out;
	lc->p11 = OSSL_PROVIDER_load(lc->libctx, P11PROV_NAME);
	if (lc->p11 == NULL ||
	    !p11prov_configure(OSSL_PROVIDER_get0_provider_ctx(lc->p11), opts))
		goto out;
	*out = lc;
	lc = NULL;
	status = P11MAIL_OK;
out:
	if (status != P11MAIL_OK)
		status = p11m_libctx_take_errors(status);
	p11m_libctx_free(lc);
	return status;
}

void p11m_libctx_free(p11m_libctx *lc)
{
	if (lc == NULL)
		return;
	OSSL_PROVIDER_unload(lc->p11);
	OSSL_PROVIDER_unload(lc->dflt);
	OSSL_LIB_CTX_free(lc->libctx);
	free(lc);
}

OSSL_LIB_CTX *p11m_libctx_get(const p11m_libctx *lc)
{
	return lc->libctx;
}

/* Loads the first object of a type a URI yields; NULL with errors queued. */
static OSSL_STORE_INFO *load_first(p11m_libctx *lc, const char *uri, int type)
{
	OSSL_STORE_CTX *store;
	OSSL_STORE_INFO *info = NULL;

	store = OSSL_STORE_open_ex(uri, lc->libctx, NULL, NULL, NULL, NULL,
	                           NULL, NULL);
	if (store == NULL)
		return NULL;
	if (!OSSL_STORE_expect(store, type))
		goto out;
	while (info == NULL && !OSSL_STORE_eof(store)) {
		info = OSSL_STORE_load(store);
		if (info == NULL && OSSL_STORE_error(store))
			break;
		if (info != NULL && OSSL_STORE_INFO_get_type(info) != type) {
			OSSL_STORE_INFO_free(info);
			info = NULL;
		}
	}
out:
	OSSL_STORE_close(store);
	return info;
}

enum p11mail_status p11m_libctx_load_key(p11m_libctx *lc, const char *uri,
                                         EVP_PKEY **out)
{
	OSSL_STORE_INFO *info;

	*out = NULL;
	ERR_clear_error();
	info = load_first(lc, uri, OSSL_STORE_INFO_PKEY);
	if (info == NULL)
		return p11m_libctx_take_errors(P11MAIL_ERR_NO_KEY);
	*out = OSSL_STORE_INFO_get1_PKEY(info);
	OSSL_STORE_INFO_free(info);
	return *out != NULL ? P11MAIL_OK : P11MAIL_ERR_NOMEM;
}

enum p11mail_status p11m_libctx_load_cert(p11m_libctx *lc, const char *uri,
                                          X509 **out)
{
	OSSL_STORE_INFO *info;

	*out = NULL;
	ERR_clear_error();
	info = load_first(lc, uri, OSSL_STORE_INFO_CERT);
	if (info == NULL)
		return p11m_libctx_take_errors(P11MAIL_ERR_NO_CERT);
	*out = OSSL_STORE_INFO_get1_CERT(info);
	OSSL_STORE_INFO_free(info);
	return *out != NULL ? P11MAIL_OK : P11MAIL_ERR_NOMEM;
}
