/*
 * The S/MIME context for mail: trust comes from the workstation store (its
 * anchors, plus each individually trusted correspondent certificate), and
 * the certificates to encrypt to from its cache.  Everything is copied
 * into the context, so the store may be closed afterwards.
 */
#include "config.h"

#include <stdlib.h>

#include "common.h"
#include "transport.h"

static enum p11mail_status trust_add_anchors(p11mail_smime *smime,
                                             p11mail_store *store)
{
	struct p11mail_anchor *anchors = NULL;
	struct p11mail_cert *trusted = NULL;
	size_t n_anchors = 0, n_trusted = 0;
	enum p11mail_status rc;

	rc = p11mail_anchor_list(store, &anchors, &n_anchors);
	for (size_t i = 0; rc == P11MAIL_OK && i < n_anchors; i++)
		rc = p11mail_smime_add_anchor(smime, anchors[i].cert,
		                              anchors[i].cert_len);
	if (rc == P11MAIL_OK)
		rc = p11mail_trust_list(store, NULL, &trusted, &n_trusted);
	for (size_t i = 0; rc == P11MAIL_OK && i < n_trusted; i++)
		rc = p11mail_smime_add_anchor(smime, trusted[i].cert,
		                              trusted[i].cert_len);
	p11mail_anchors_free(anchors, n_anchors);
	p11mail_certs_free(trusted, n_trusted);
	return rc;
}

static enum p11mail_status
trust_add_certs(p11mail_smime *smime, p11mail_store *store, const char *address)
{
	struct p11mail_cert *certs = NULL;
	enum p11mail_status rc;
	size_t n = 0;

	rc = p11mail_cache_find(store, address, &certs, &n);
	for (size_t i = 0; rc == P11MAIL_OK && i < n; i++)
		rc = p11mail_smime_add_cert(smime, certs[i].cert,
		                            certs[i].cert_len);
	p11mail_certs_free(certs, n);
	return rc;
}

enum p11mail_status p11mail_mail_smime_new(p11mail_store *store,
                                           const char *const *addresses,
                                           size_t count, p11mail_smime **out)
{
	p11mail_smime *smime = NULL;
	enum p11mail_status rc;

	if (out == NULL)
		return P11MAIL_ERR_ARGS;
	*out = NULL;
	if (store == NULL || (count > 0 && addresses == NULL))
		return P11MAIL_ERR_ARGS;
	rc = p11mail_smime_new(&smime);
	if (rc == P11MAIL_OK)
		rc = trust_add_anchors(smime, store);
	for (size_t i = 0; rc == P11MAIL_OK && i < count; i++)
		rc = trust_add_certs(smime, store, addresses[i]);
	if (rc != P11MAIL_OK) {
		p11mail_smime_free(smime);
		return rc;
	}
	*out = smime;
	return P11MAIL_OK;
}
