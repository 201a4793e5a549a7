/*
 * The list of fetched certificates, and the three forms a server may hand
 * one over in: DER, PEM, or a CMS certs-only bundle.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common.h"
#include "discover.h"

enum p11mail_status p11m_disc_list_add(struct p11m_disc_list *list,
                                       const unsigned char *der, size_t len,
                                       const char *source, const char *origin)
{
	struct p11m_disc_item item = {0};
	enum p11mail_status st = P11MAIL_ERR_NOMEM;

	if (len > P11M_DISC_MAX_CERT)
		return P11MAIL_ERR_LIMIT;
	/* The same certificate under two attributes or records counts once. */
	for (size_t i = 0; i < list->count; i++)
		if (list->items[i].len == len &&
		    memcmp(list->items[i].der, der, len) == 0)
			return P11MAIL_OK;
	if (list->count >= P11M_DISC_MAX_ITEMS)
		return P11MAIL_ERR_LIMIT;
	if (list->count == list->cap) {
		size_t cap = list->cap != 0 ? list->cap * 2 : 8;
		struct p11m_disc_item *items;

		items = realloc(list->items, cap * sizeof(*items));
		if (items == NULL)
			goto out;
		list->items = items;
		list->cap = cap;
	}

	item.der = malloc(len > 0 ? len : 1);
	item.source = strdup(source);
	item.origin = strdup(origin);
	if (item.der == NULL || item.source == NULL || item.origin == NULL)
		goto out;
	memcpy(item.der, der, len);
	item.len = len;
	list->items[list->count++] = item;
	item = (struct p11m_disc_item){0};
	st = P11MAIL_OK;
out:
	free(item.der);
	free(item.source);
	free(item.origin);
	return st;
}

/* Appends one parsed certificate in DER form. */
static enum p11mail_status add_x509(struct p11m_disc_list *list, X509 *cert,
                                    const char *source, const char *origin)
{
	unsigned char *der = NULL;
	enum p11mail_status st;
	int len;

	len = i2d_X509(cert, &der);
	if (len <= 0)
		return P11MAIL_ERR_FORMAT;
	st = p11m_disc_list_add(list, der, (size_t)len, source, origin);
	OPENSSL_free(der);
	return st;
}

/* Appends the certificates of a CMS SignedData bundle (certs-only). */
static enum p11mail_status add_bundle(struct p11m_disc_list *list,
                                      const unsigned char *buf, size_t len,
                                      const char *source, const char *origin)
{
	const unsigned char *p = buf;
	STACK_OF(X509) *certs = NULL;
	CMS_ContentInfo *cms;
	enum p11mail_status st = P11MAIL_ERR_FORMAT;

	cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
	if (cms == NULL)
		goto out;
	certs = CMS_get1_certs(cms);
	for (int i = 0; i < sk_X509_num(certs); i++) {
		st = add_x509(list, sk_X509_value(certs, i), source, origin);
		if (st != P11MAIL_OK)
			goto out;
	}
out:
	sk_X509_pop_free(certs, X509_free);
	CMS_ContentInfo_free(cms);
	return st;
}

enum p11mail_status p11m_disc_list_add_any(struct p11m_disc_list *list,
                                           const unsigned char *buf, size_t len,
                                           const char *source,
                                           const char *origin)
{
	const unsigned char *p = buf;
	enum p11mail_status st;
	X509 *cert = NULL;
	BIO *bio = NULL;

	if (len > P11M_DISC_MAX_CERT)
		return P11MAIL_ERR_LIMIT;

	/* A lone DER certificate must span the whole value. */
	cert = d2i_X509(NULL, &p, (long)len);
	if (cert != NULL && p == buf + len) {
		st = p11m_disc_list_add(list, buf, len, source, origin);
		goto out;
	}
	X509_free(cert);
	cert = NULL;

	st = add_bundle(list, buf, len, source, origin);
	if (st != P11MAIL_ERR_FORMAT)
		goto out;

	bio = BIO_new_mem_buf(buf, (int)len);
	if (bio == NULL) {
		st = P11MAIL_ERR_NOMEM;
		goto out;
	}
	cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	st = cert != NULL ? add_x509(list, cert, source, origin)
	                  : P11MAIL_ERR_FORMAT;
out:
	X509_free(cert);
	BIO_free(bio);
	return st;
}

void p11m_disc_list_clear(struct p11m_disc_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		free(list->items[i].der);
		free(list->items[i].source);
		free(list->items[i].origin);
	}
	free(list->items);
	*list = (struct p11m_disc_list){0};
}
