/* S/MIME certificate policy; see certcheck.h. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "certcheck.h"
#include "common.h"

/* Appends one address to a comma-separated list held in *list. */
static int append_address(char **list, const unsigned char *addr, int len)
{
	size_t old = *list != NULL ? strlen(*list) : 0;
	char *grown;

	if (len <= 0 || memchr(addr, '\0', (size_t)len) != NULL ||
	    memchr(addr, ',', (size_t)len) != NULL)
		return 1; /* not an address anyone could send from: skip */
	grown = realloc(*list, old + (size_t)len + 2);
	if (grown == NULL)
		return 0;
	if (old > 0)
		grown[old++] = ',';
	memcpy(grown + old, addr, (size_t)len);
	grown[old + (size_t)len] = '\0';
	*list = grown;
	return 1;
}

static int san_addresses(X509 *cert, char **list)
{
	GENERAL_NAMES *names;
	int ok = 1;

	names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; ok && i < sk_GENERAL_NAME_num(names); i++) {
		GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);

		if (gn->type != GEN_EMAIL)
			continue;
		ok = append_address(list,
		                    ASN1_STRING_get0_data(gn->d.rfc822Name),
		                    ASN1_STRING_length(gn->d.rfc822Name));
	}
	GENERAL_NAMES_free(names);
	return ok;
}

static int dn_addresses(X509 *cert, char **list)
{
	X509_NAME *name = X509_get_subject_name(cert);
	int pos = -1;

	while ((pos = X509_NAME_get_index_by_NID(name, NID_pkcs9_emailAddress,
	                                         pos)) >= 0) {
		ASN1_STRING *v = X509_NAME_ENTRY_get_data(
		        X509_NAME_get_entry(name, pos));

		if (!append_address(list, ASN1_STRING_get0_data(v),
		                    ASN1_STRING_length(v)))
			return 0;
	}
	return 1;
}

char *certcheck_addresses(X509 *cert)
{
	char *list = NULL;

	if (!san_addresses(cert, &list))
		goto fail;
	if (list == NULL && !dn_addresses(cert, &list))
		goto fail;
	if (list == NULL)
		list = strdup("");
	return list;

fail:
	free(list);
	return NULL;
}

/* Local part exact, domain case-insensitive (RFC 8550, section 3). */
static int address_equal(const char *a, size_t alen, const char *b)
{
	const char *at_a, *at_b = strrchr(b, '@');
	size_t local;

	if (alen != strlen(b) || at_b == NULL)
		return 0;
	at_a = memrchr(a, '@', alen);
	if (at_a == NULL)
		return 0;
	local = (size_t)(at_a - a);
	if (local != (size_t)(at_b - b) || memcmp(a, b, local) != 0)
		return 0;
	return strncasecmp(at_a, at_b, alen - local) == 0;
}

int certcheck_address_match(X509 *cert, const char *addr)
{
	char *list = certcheck_addresses(cert);
	const char *p = list;
	int found = 0;

	while (p != NULL && *p != '\0' && !found) {
		const char *end = strchr(p, ',');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

		found = address_equal(p, len, addr);
		p = end != NULL ? end + 1 : NULL;
	}
	free(list);
	return found;
}

static enum p11mail_status check_time(X509 *cert, char *problem, size_t size)
{
	if (X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0) {
		snprintf(problem, size, "certificate is not yet valid");
		return P11MAIL_ERR_CERT_EXPIRED;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0) {
		snprintf(problem, size, "certificate has expired");
		return P11MAIL_ERR_CERT_EXPIRED;
	}
	return P11MAIL_OK;
}

static enum p11mail_status check_usage(X509 *cert, enum certcheck_use use,
                                       char *problem, size_t size)
{
	uint32_t ku = X509_get_key_usage(cert);
	uint32_t xku = X509_get_extended_key_usage(cert);
	int is_ec = EVP_PKEY_get_base_id(X509_get0_pubkey(cert)) == EVP_PKEY_EC;
	uint32_t need;
	const char *what;

	if (use == CERTCHECK_SIGN) {
		need = KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION;
		what = "digitalSignature or nonRepudiation";
	} else if (is_ec) {
		need = KU_KEY_AGREEMENT;
		what = "keyAgreement";
	} else {
		need = KU_KEY_ENCIPHERMENT;
		what = "keyEncipherment";
	}
	if ((ku & need) == 0) {
		snprintf(problem, size, "keyUsage lacks %s", what);
		return P11MAIL_ERR_NO_CERT;
	}
	if ((xku & (XKU_SMIME | XKU_ANYEKU)) == 0) {
		snprintf(problem, size,
		         "extendedKeyUsage lacks emailProtection");
		return P11MAIL_ERR_NO_CERT;
	}
	return P11MAIL_OK;
}

static enum p11mail_status check_strength(X509 *cert, char *problem,
                                          size_t size)
{
	EVP_PKEY *pub = X509_get0_pubkey(cert);
	int mdnid = NID_undef;

	if (pub == NULL) {
		snprintf(problem, size, "certificate public key is unusable");
		return P11MAIL_ERR_NO_CERT;
	}
	if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA &&
	    EVP_PKEY_get_bits(pub) < 2048) {
		snprintf(problem, size, "RSA key of %d bits is too weak",
		         EVP_PKEY_get_bits(pub));
		return P11MAIL_ERR_NO_CERT;
	}
	if (X509_get_signature_info(cert, &mdnid, NULL, NULL, NULL) &&
	    (mdnid == NID_sha1 || mdnid == NID_md5)) {
		snprintf(problem, size, "certificate is signed with %s",
		         OBJ_nid2sn(mdnid));
		return P11MAIL_ERR_NO_CERT;
	}
	return P11MAIL_OK;
}

enum p11mail_status certcheck_policy(X509 *cert, enum certcheck_use use,
                                     char *problem, size_t size)
{
	enum p11mail_status st;

	problem[0] = '\0';
	st = check_time(cert, problem, size);
	if (st == P11MAIL_OK)
		st = check_usage(cert, use, problem, size);
	if (st == P11MAIL_OK)
		st = check_strength(cert, problem, size);
	return st;
}

/* Errors that mean "no anchor found", as opposed to a broken link. */
static int is_missing_anchor(int err)
{
	switch (err) {
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		return 1;
	default:
		return 0;
	}
}

enum certcheck_chain certcheck_chain(OSSL_LIB_CTX *libctx, X509_STORE *anchors,
                                     X509 *cert, STACK_OF(X509) * untrusted,
                                     enum certcheck_use use, char *problem,
                                     size_t size)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new_ex(libctx, NULL);
	enum certcheck_chain res = CERTCHECK_BROKEN;
	int err;

	problem[0] = '\0';
	if (ctx == NULL ||
	    !X509_STORE_CTX_init(ctx, anchors, cert, untrusted)) {
		snprintf(problem, size, "cannot check the certificate chain");
		goto out;
	}
	/*
	 * OpenSSL's S/MIME encryption purpose demands keyEncipherment even of
	 * EC keys; certcheck_policy judges the leaf's usage instead.
	 */
	X509_STORE_CTX_set_purpose(ctx, use == CERTCHECK_SIGN
	                                        ? X509_PURPOSE_SMIME_SIGN
	                                        : X509_PURPOSE_ANY);
	if (X509_verify_cert(ctx) == 1) {
		res = CERTCHECK_TRUSTED;
		goto out;
	}
	err = X509_STORE_CTX_get_error(ctx);
	res = is_missing_anchor(err) ? CERTCHECK_NO_ANCHOR : CERTCHECK_BROKEN;
	snprintf(problem, size, "%s: %s",
	         res == CERTCHECK_NO_ANCHOR ? "no trust anchor"
	                                    : "certificate chain invalid",
	         X509_verify_cert_error_string(err));

out:
	X509_STORE_CTX_free(ctx);
	return res;
}

void certcheck_fingerprint(X509 *cert, char hex[65])
{
	unsigned char md[32];
	unsigned int len = 0;

	hex[0] = '\0';
	if (!X509_digest(cert, EVP_sha256(), md, &len) || len != sizeof(md))
		return;
	for (unsigned int i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

char *certcheck_subject(X509 *cert)
{
	char *line = X509_NAME_oneline(X509_get_subject_name(cert), NULL, 0);
	char *copy;

	if (line == NULL)
		return NULL;
	copy = strdup(line);
	OPENSSL_free(line);
	return copy;
}
