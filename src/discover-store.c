/*
 * Discovery over the workstation store: the store's cache keeps discovered
 * certificates and "nothing found" entries with their lifetimes, and its
 * anchors for the address's domain judge the candidates.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "discover.h"
#include "store.h"

#define STORE_SOURCE "workstation store (discovered earlier)"

static enum p11mail_status store_get(void *arg, const char *address,
                                     long long now, unsigned char **der,
                                     size_t *len, char **source)
{
	struct p11mail_cert *certs = NULL;
	enum p11mail_status st;
	size_t count = 0;
	int negative = 0;

	*der = NULL;
	*len = 0;
	*source = NULL;
	st = p11mail_cache_is_negative(arg, address, &negative);
	if (st != P11MAIL_OK || negative)
		return st;

	st = p11mail_cache_find(arg, address, &certs, &count);
	if (st != P11MAIL_OK)
		return st;
	st = P11MAIL_ERR_NOT_FOUND;
	/* Only discoveries: certificates from signed mail are not ours. */
	for (size_t i = 0; i < count; i++) {
		if (certs[i].source != P11MAIL_CACHE_DISCOVERED ||
		    certs[i].expires_at <= now)
			continue;
		*source = strdup(STORE_SOURCE);
		if (*source == NULL) {
			st = P11MAIL_ERR_NOMEM;
			break;
		}
		*der = certs[i].cert;
		*len = certs[i].cert_len;
		certs[i].cert = NULL;
		st = P11MAIL_OK;
		break;
	}
	p11mail_certs_free(certs, count);
	return st;
}

/* Holds only address-bound certificates, as the store's cache requires. */
static int carries_address(const unsigned char *der, size_t len,
                           const char *address)
{
	const unsigned char *p = der;
	X509 *cert = d2i_X509(NULL, &p, (long)len);
	int yes = cert != NULL && p11m_cert_has_address(cert, address);

	X509_free(cert);
	return yes;
}

static enum p11mail_status store_put(void *arg, const char *address,
                                     const unsigned char *der, size_t len,
                                     const char *source, long long expires)
{
	(void)source;
	if (der == NULL)
		return p11mail_cache_put_negative(arg, address,
		                                  (int64_t)expires);
	if (!carries_address(der, len, address)) {
		p11m_trace("discover",
		           "%s: a domain-bound certificate is not "
		           "cached in the store",
		           address);
		return P11MAIL_OK;
	}
	/* A certificate found now replaces an older "nothing found". */
	p11mail_cache_put_negative(arg, address, 0);
	return p11mail_cache_put(arg, address, der, len,
	                         P11MAIL_CACHE_DISCOVERED, NULL, 0,
	                         (int64_t)expires);
}

void p11m_disc_store_cache(p11mail_store *store,
                           struct p11mail_discover_cache *out)
{
	out->get = store_get;
	out->put = store_put;
	out->arg = store;
}

enum p11mail_status p11m_disc_store_anchors(p11mail_store *store,
                                            const char *domain,
                                            X509_STORE *into, int *added)
{
	STACK_OF(X509_OBJECT) * objs;
	X509_STORE *xs = NULL;
	enum p11mail_status st;

	*added = 0;
	st = p11mail_store_anchors(store, domain, &xs);
	if (st != P11MAIL_OK)
		return st;
	objs = X509_STORE_get0_objects(xs);
	for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
		X509 *cert =
		        X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));

		if (cert == NULL)
			continue;
		if (!X509_STORE_add_cert(into, cert)) {
			st = P11MAIL_ERR_NOMEM;
			break;
		}
		*added = 1;
	}
	X509_STORE_free(xs);
	return st;
}
