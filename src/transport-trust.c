/*
 * The S/MIME context for mail: trust comes from the workstation store (its
 * anchors, plus each individually trusted correspondent certificate), and
 * the certificates to encrypt to from its cache.  Everything is copied
 * into the context, so the store may be closed afterwards.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

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

enum p11mail_status p11mail_mail_smime_new_config(
        const struct p11mail_config *cfg, p11mail_store *store,
        const char *const *addresses, size_t count, p11mail_smime **out)
{
	p11mail_smime *smime = NULL;
	enum p11mail_status rc;

	if (out == NULL)
		return P11MAIL_ERR_ARGS;
	*out = NULL;
	if (store == NULL || (count > 0 && addresses == NULL))
		return P11MAIL_ERR_ARGS;
	rc = p11mail_smime_new_config(cfg, &smime);
	if (rc == P11MAIL_OK)
		rc = trust_add_anchors(smime, store);
	for (size_t i = 0; rc == P11MAIL_OK && i < count; i++)
		rc = trust_add_certs(smime, store, addresses[i]);
	if (rc != P11MAIL_OK)
		goto out;
	*out = smime;
	smime = NULL;
out:
	p11mail_smime_free(smime);
	return rc;
}

enum p11mail_status p11mail_mail_smime_new(p11mail_store *store,
                                           const char *const *addresses,
                                           size_t count, p11mail_smime **out)
{
	return p11mail_mail_smime_new_config(NULL, store, addresses, count,
	                                     out);
}

/* Writes the certificate then its chain (concatenated DER) as PEM. */
static enum p11mail_status trust_write_pem(FILE *f,
                                           const struct p11mail_identity *id)
{
	const unsigned char *p = id->cert;
	const unsigned char *end;
	enum p11mail_status rc = P11MAIL_ERR_FORMAT;
	X509 *x;

	x = d2i_X509(NULL, &p, (long)id->cert_len);
	if (x == NULL || PEM_write_X509(f, x) != 1)
		goto out;
	p = id->chain;
	end = id->chain != NULL ? id->chain + id->chain_len : NULL;
	while (p != NULL && p < end) {
		X509_free(x);
		x = d2i_X509(NULL, &p, (long)(end - p));
		if (x == NULL || PEM_write_X509(f, x) != 1)
			goto out;
	}
	rc = P11MAIL_OK;
out:
	X509_free(x);
	return rc;
}

/* A private temporary PEM file with the identity's certificates. */
static enum p11mail_status trust_cert_file(const struct p11mail_identity *id,
                                           char **path)
{
	const char *tmp = p11m_getenv("TMPDIR");
	enum p11mail_status rc;
	char buf[4096];
	FILE *f;
	int fd;

	*path = NULL;
	snprintf(buf, sizeof(buf), "%s/p11mail-identity-XXXXXX",
	         tmp != NULL && *tmp == '/' ? tmp : "/tmp");
	fd = mkstemp(buf);
	if (fd < 0)
		return P11MAIL_ERR_IO;
	f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		unlink(buf);
		return P11MAIL_ERR_IO;
	}
	rc = trust_write_pem(f, id);
	if (fclose(f) != 0 && rc == P11MAIL_OK)
		rc = P11MAIL_ERR_IO;
	if (rc == P11MAIL_OK && (*path = strdup(buf)) == NULL)
		rc = P11MAIL_ERR_NOMEM;
	if (rc != P11MAIL_OK)
		unlink(buf);
	return rc;
}

/* The key URI with the PIN source in its query, unless it has one. */
static char *trust_key_uri(const char *uri, const char *pin_source)
{
	size_t n;
	char *s;

	if (pin_source == NULL || strchr(uri, '?') != NULL)
		return strdup(uri);
	n = strlen(uri) + strlen(pin_source) + 13;
	s = malloc(n);
	if (s != NULL)
		snprintf(s, n, "%s?pin-source=%s", uri, pin_source);
	return s;
}

/* A token field of a URI without its padding; "" when the URI has none. */
static char *trust_uri_field(const unsigned char *field, size_t len)
{
	char *s = p11_kit_space_strdup(field, len);

	if (s != NULL)
		s[strnlen(s, len)] = '\0'; /* an absent field is all zeros */
	return s;
}

/*
 * Says which token to insert for address: the label and serial of the
 * identity's key URI, so that the user knows which card is wanted.
 */
static void trust_log_absent(const char *key_uri, const char *address)
{
	P11KitUri *u = p11_kit_uri_new();
	char *label = NULL, *serial = NULL;
	CK_TOKEN_INFO *ti;

	if (u == NULL || p11_kit_uri_parse(key_uri, P11_KIT_URI_FOR_ANY, u) !=
	                         P11_KIT_URI_OK)
		goto out;
	ti = p11_kit_uri_get_token_info(u);
	label = trust_uri_field(ti->label, sizeof(ti->label));
	serial = trust_uri_field(ti->serialNumber, sizeof(ti->serialNumber));
out:
	if (label != NULL && *label != '\0' && serial != NULL &&
	    *serial != '\0')
		p11m_log(P11MAIL_LOG_ERROR,
		         "insert the token %s (serial %s) for %s", label,
		         serial, address);
	else if (label != NULL && *label != '\0')
		p11m_log(P11MAIL_LOG_ERROR, "insert the token %s for %s", label,
		         address);
	else
		p11m_log(P11MAIL_LOG_ERROR, "insert the token of %s", address);
	free(label);
	free(serial);
	p11_kit_uri_free(u);
}

enum p11mail_status p11mail_mail_set_identity(p11mail_smime *smime,
                                              p11mail_store *store,
                                              const char *address,
                                              const char *pin_source,
                                              int need_key)
{
	struct p11mail_identity *ids = NULL;
	char *cert = NULL, *uri = NULL;
	enum p11mail_status rc;
	size_t n = 0;

	if (smime == NULL || store == NULL || address == NULL)
		return P11MAIL_ERR_ARGS;
	rc = p11mail_identity_find(store, address, &ids, &n);
	if (rc == P11MAIL_OK && n == 0) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "no identity for %s on this workstation: install it "
		         "with p11mail-certinstall",
		         address);
		rc = P11MAIL_ERR_NO_KEY;
	}
	if (rc != P11MAIL_OK)
		goto out;
	rc = trust_cert_file(&ids[0], &cert);
	if (rc == P11MAIL_OK && need_key &&
	    (uri = trust_key_uri(ids[0].key_uri, pin_source)) == NULL)
		rc = P11MAIL_ERR_NOMEM;
	if (rc == P11MAIL_OK)
		rc = p11mail_smime_set_identity(smime, uri, cert, NULL);
	if (p11mail_protect_can_wait(rc))
		trust_log_absent(ids[0].key_uri, address);
out:
	if (cert != NULL)
		unlink(cert);
	free(cert);
	p11mail_secret_free(uri);
	p11mail_identities_free(ids, n);
	return rc;
}

/*
 * Returns P11MAIL_OK when encryption to address would use der: a context
 * holding only the store's anchors, the sender's certificate and der
 * encrypts a tiny message to address.
 */
static enum p11mail_status trust_would_encrypt(p11mail_store *store,
                                               const char *sender,
                                               const char *address,
                                               const struct p11mail_cert *c)
{
	static const char probe[] = "Subject: probe\r\n\r\nprobe\r\n";
	unsigned char *out = NULL;
	p11mail_smime *smime = NULL;
	enum p11mail_status rc;
	size_t out_len = 0;

	rc = p11mail_smime_new(&smime);
	if (rc == P11MAIL_OK)
		rc = trust_add_anchors(smime, store);
	if (rc == P11MAIL_OK)
		rc = p11mail_smime_add_cert(smime, c->cert, c->cert_len);
	if (rc == P11MAIL_OK)
		rc = p11mail_mail_set_identity(smime, store, sender, NULL, 0);
	if (rc == P11MAIL_OK)
		rc = p11mail_smime_encrypt(smime, 0, &address, 1,
		                           (const unsigned char *)probe,
		                           sizeof(probe) - 1, &out, &out_len);
	p11mail_smime_release(out, out_len);
	p11mail_smime_free(smime);
	return rc;
}

/* Trusts the certificate that encryption to address uses, if any. */
static enum p11mail_status trust_recipient(p11mail_store *store,
                                           const char *sender,
                                           const char *address, int *added)
{
	enum p11mail_trust_outcome outcome = P11MAIL_TRUST_UNCHANGED;
	struct p11mail_cert *certs = NULL;
	char previous[65] = "";
	enum p11mail_status rc;
	size_t n = 0, i;

	*added = 0;
	rc = p11mail_cache_find(store, address, &certs, &n);
	for (i = 0; rc == P11MAIL_OK && i < n; i++)
		if (trust_would_encrypt(store, sender, address, &certs[i]) ==
		    P11MAIL_OK)
			break;
	if (rc == P11MAIL_OK && i < n)
		rc = p11mail_trust_add(store, address, certs[i].cert,
		                       certs[i].cert_len, P11MAIL_CACHE_SENT_TO,
		                       0, &outcome, previous);
	if (rc == P11MAIL_OK && outcome == P11MAIL_TRUST_CONFLICT)
		p11m_log(P11MAIL_LOG_WARNING,
		         "%s: another certificate (%s) is trusted for this "
		         "address; left unchanged",
		         address, previous);
	*added = rc == P11MAIL_OK && outcome == P11MAIL_TRUST_ADDED;
	p11mail_certs_free(certs, n);
	return rc;
}

enum p11mail_status p11mail_mail_trust_recipients(p11mail_store *store,
                                                  const char *sender,
                                                  const char *const *addresses,
                                                  size_t count, size_t *added)
{
	enum p11mail_status rc = P11MAIL_OK;
	int one;

	if (added == NULL)
		return P11MAIL_ERR_ARGS;
	*added = 0;
	if (store == NULL || sender == NULL || (count > 0 && addresses == NULL))
		return P11MAIL_ERR_ARGS;
	for (size_t i = 0; rc == P11MAIL_OK && i < count; i++) {
		rc = trust_recipient(store, sender, addresses[i], &one);
		*added += (size_t)one;
	}
	return rc;
}
