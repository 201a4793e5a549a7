/*
 * What the store needs to know about a certificate: fingerprint, validity,
 * key usage, the addresses it names, and the anchors as an X509_STORE.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "common.h"
#include "store.h"

void p11m_fingerprint(const unsigned char *der, size_t der_len, char hex[65])
{
	unsigned char md[32];
	unsigned int len = 0;

	hex[0] = '\0';
	if (!EVP_Digest(der, der_len, md, &len, EVP_sha256(), NULL) ||
	    len != sizeof(md))
		return;
	for (size_t i = 0; i < sizeof(md); i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static int64_t asn1_time_to_unix(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

static char *cert_subject(X509 *x509)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *res = NULL;
	char *data;
	long len;

	if (bio == NULL)
		return NULL;
	if (X509_NAME_print_ex(bio, X509_get_subject_name(x509), 0,
	                       XN_FLAG_RFC2253) >= 0) {
		len = BIO_get_mem_data(bio, &data);
		res = strndup(data, (size_t)len);
	}
	BIO_free(bio);
	return res;
}

enum p11mail_status p11m_cert_facts(const unsigned char *der, size_t der_len,
                                    struct p11m_cert_facts *facts)
{
	const unsigned char *p = der;
	uint32_t ku;

	memset(facts, 0, sizeof(*facts));
	if (der == NULL || der_len == 0 || der_len > 1024 * 1024)
		goto bad;
	facts->x509 = d2i_X509(NULL, &p, (long)der_len);
	if (facts->x509 == NULL || p != der + der_len)
		goto bad;

	p11m_fingerprint(der, der_len, facts->fingerprint);
	facts->not_before = asn1_time_to_unix(X509_get0_notBefore(facts->x509));
	facts->not_after = asn1_time_to_unix(X509_get0_notAfter(facts->x509));
	ku = X509_get_key_usage(facts->x509);
	facts->key_usage = ku == UINT32_MAX ? 0xffff : (unsigned int)ku;
	facts->is_ca = X509_check_ca(facts->x509) != 0;
	facts->subject = cert_subject(facts->x509);
	if (facts->subject == NULL || facts->fingerprint[0] == '\0') {
		p11m_cert_facts_clear(facts);
		return P11MAIL_ERR_NOMEM;
	}
	return P11MAIL_OK;
bad:
	p11m_cert_facts_clear(facts);
	p11m_log(P11MAIL_LOG_ERROR, "not a DER X.509 certificate");
	return P11MAIL_ERR_FORMAT;
}

void p11m_cert_facts_clear(struct p11m_cert_facts *facts)
{
	X509_free(facts->x509);
	free(facts->subject);
	memset(facts, 0, sizeof(*facts));
}

char *p11m_address_normalize(const char *address)
{
	const char *at;
	char *res;

	if (address == NULL)
		return NULL;
	at = strchr(address, '@');
	if (at == NULL || at == address || at[1] == '\0' ||
	    strchr(at + 1, '@') != NULL || strlen(address) > 320)
		return NULL;
	for (const char *p = address; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || strchr("<>,;\"()[]\\", *p))
			return NULL;
	res = strdup(address);
	for (char *p = res; res != NULL && *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return res;
}

static int asn1_string_is(const ASN1_STRING *s, const char *address)
{
	size_t len = strlen(address);

	return s != NULL && (size_t)ASN1_STRING_length(s) == len &&
	       strncasecmp((const char *)ASN1_STRING_get0_data(s), address,
	                   len) == 0;
}

/* Checks SAN rfc822Names; *any tells whether there were any at all. */
static int san_has_address(X509 *x509, const char *address, int *any)
{
	GENERAL_NAMES *names;
	int found = 0;

	*any = 0;
	names = X509_get_ext_d2i(x509, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);

		if (gn->type != GEN_EMAIL)
			continue;
		*any = 1;
		if (asn1_string_is(gn->d.rfc822Name, address))
			found = 1;
	}
	GENERAL_NAMES_free(names);
	return found;
}

int p11m_cert_has_address(X509 *x509, const char *address)
{
	X509_NAME *name = X509_get_subject_name(x509);
	int any, idx = -1;

	if (san_has_address(x509, address, &any))
		return 1;
	if (any)
		return 0;
	while ((idx = X509_NAME_get_index_by_NID(name, NID_pkcs9_emailAddress,
	                                         idx)) >= 0) {
		X509_NAME_ENTRY *e = X509_NAME_get_entry(name, idx);

		if (asn1_string_is(X509_NAME_ENTRY_get_data(e), address))
			return 1;
	}
	return 0;
}

int p11m_fingerprint_prefix(const char *in, char out[65])
{
	size_t n = 0;

	out[0] = '\0';
	if (in == NULL)
		return -1;
	for (; *in != '\0'; in++) {
		if (*in == ':')
			continue;
		if (!isxdigit((unsigned char)*in) || n == 64)
			return -1;
		out[n++] = (char)tolower((unsigned char)*in);
	}
	out[n] = '\0';
	return n >= 8 ? 0 : -1;
}
