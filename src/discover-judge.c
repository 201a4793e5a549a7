/*
 * Judging a discovered certificate.  The DNS or LDAP answer alone is never
 * trust: a candidate must name the address (or its domain), be valid now,
 * allow S/MIME encryption, and chain to an anchor for the domain.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common.h"
#include "discover.h"

/* Sets the verdict and its reason; returns P11MAIL_ERR_NOMEM on failure. */
static enum p11mail_status P11M_PRINTF(3, 4)
        verdict_set(struct p11m_verdict *v, enum p11mail_candidate_verdict what,
                    const char *fmt, ...)
{
	va_list ap;
	int n;

	free(v->reason);
	va_start(ap, fmt);
	n = vasprintf(&v->reason, fmt, ap);
	va_end(ap);
	if (n < 0) {
		v->reason = NULL;
		return P11MAIL_ERR_NOMEM;
	}
	v->verdict = what;
	return P11MAIL_OK;
}

/* Compares addresses: local part exactly, domain without regard to case. */
static int address_equal(const char *a, size_t alen, const char *b)
{
	const char *at_a = memchr(a, '@', alen), *at_b = strchr(b, '@');
	size_t local = at_a != NULL ? (size_t)(at_a - a) : 0;

	if (at_a == NULL || at_b == NULL || strlen(b) != alen ||
	    (size_t)(at_b - b) != local)
		return 0;
	return memcmp(a, b, local) == 0 &&
	       strncasecmp(at_a, at_b, alen - local) == 0;
}

static int domain_equal(const char *a, size_t alen, const char *domain)
{
	return strlen(domain) == alen && strncasecmp(a, domain, alen) == 0;
}

/* Looks for the address in the DN emailAddress, used when SAN has none. */
static int dn_has_address(X509 *cert, const char *address)
{
	X509_NAME *name = X509_get_subject_name(cert);
	int i = -1;

	while ((i = X509_NAME_get_index_by_NID(name, NID_pkcs9_emailAddress,
	                                       i)) >= 0) {
		ASN1_STRING *s =
		        X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));

		if (address_equal((const char *)ASN1_STRING_get0_data(s),
		                  (size_t)ASN1_STRING_length(s), address))
			return 1;
	}
	return 0;
}

/* Returns "address", "domain" or NULL: what the certificate is bound to. */
static const char *cert_binding(X509 *cert, const char *address,
                                const char *domain)
{
	GENERAL_NAMES *names;
	int has_email = 0, has_address = 0, has_domain = 0;

	names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
		const char *s;
		size_t n;

		if (gn->type != GEN_EMAIL && gn->type != GEN_DNS)
			continue;
		s = (const char *)ASN1_STRING_get0_data(gn->d.ia5);
		n = (size_t)ASN1_STRING_length(gn->d.ia5);
		if (gn->type == GEN_EMAIL) {
			has_email = 1;
			has_address |= address_equal(s, n, address);
		} else
			has_domain |= domain_equal(s, n, domain);
	}
	GENERAL_NAMES_free(names);

	if (has_address || (!has_email && dn_has_address(cert, address)))
		return "address";
	return has_domain ? "domain" : NULL;
}

/* Checks keyUsage and EKU for encrypting to this key; NULL when fine. */
static const char *usage_problem(X509 *cert)
{
	uint32_t flags = X509_get_extension_flags(cert);
	EVP_PKEY *key = X509_get0_pubkey(cert);
	uint32_t ku = X509_get_key_usage(cert);
	int type = key != NULL ? EVP_PKEY_get_base_id(key) : 0;

	if (type != EVP_PKEY_RSA && type != EVP_PKEY_EC)
		return "its key type cannot be encrypted to";
	if ((flags & EXFLAG_KUSAGE) && type == EVP_PKEY_RSA &&
	    !(ku & KU_KEY_ENCIPHERMENT))
		return "keyUsage lacks keyEncipherment";
	if ((flags & EXFLAG_KUSAGE) && type == EVP_PKEY_EC &&
	    !(ku & KU_KEY_AGREEMENT))
		return "keyUsage lacks keyAgreement";
	if ((flags & EXFLAG_XKUSAGE) &&
	    !(X509_get_extended_key_usage(cert) & (XKU_SMIME | XKU_ANYEKU)))
		return "extendedKeyUsage lacks emailProtection";
	return NULL;
}

/* Formats the subject DN on one line. */
static char *subject_text(X509 *cert)
{
	char *text = NULL, *data;
	BIO *bio = BIO_new(BIO_s_mem());
	long n;

	if (bio == NULL)
		return NULL;
	if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0,
	                       XN_FLAG_RFC2253) >= 0) {
		n = BIO_get_mem_data(bio, &data);
		text = strndup(data, (size_t)n);
	}
	BIO_free(bio);
	return text;
}

/* Formats the SHA-256 fingerprint as colon-separated upper-case hex. */
static char *fingerprint_text(X509 *cert)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char *text;

	if (X509_digest(cert, EVP_sha256(), md, &n) != 1 || n == 0)
		return NULL;
	text = malloc(n * 3);
	if (text == NULL)
		return NULL;
	for (unsigned int i = 0; i < n; i++)
		snprintf(text + 3 * i, 4, "%02X%s", md[i],
		         i + 1 < n ? ":" : "");
	return text;
}

static long long time_of(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (long long)timegm(&tm);
}

/* Validity now, before the chain, so that the reason names it plainly. */
static enum p11mail_status judge_validity(X509 *cert, struct p11m_verdict *v,
                                          int *ok)
{
	*ok = 0;
	if (X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0)
		return verdict_set(
		        v, P11MAIL_CAND_EXPIRED,
		        "not valid yet (notBefore is in the future)");
	if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0)
		return verdict_set(v, P11MAIL_CAND_EXPIRED,
		                   "expired (notAfter is in the past)");
	*ok = 1;
	return P11MAIL_OK;
}

/* Path validation to the domain's anchors, with CRLs when configured. */
static enum p11mail_status judge_chain(const struct p11m_judge *judge,
                                       X509 *cert, struct p11m_verdict *v)
{
	X509_STORE_CTX *ctx = NULL;
	enum p11mail_status st = P11MAIL_ERR_NOMEM;
	X509_VERIFY_PARAM *param;
	int err;

	if (judge->anchors == NULL)
		return verdict_set(v, P11MAIL_CAND_UNTRUSTED,
		                   "no trust anchor is configured for %s",
		                   judge->domain);
	ctx = X509_STORE_CTX_new();
	if (ctx == NULL || X509_STORE_CTX_init(ctx, judge->anchors, cert,
	                                       judge->untrusted) != 1)
		goto out;
	param = X509_STORE_CTX_get0_param(ctx);
	/*
	 * 112-bit security: refuses RSA under 2048 bits and SHA-1.  No
	 * X509_PURPOSE: OpenSSL 3.0's S/MIME encryption purpose wants
	 * keyEncipherment even from EC keys; usage_problem() judges that.
	 */
	X509_VERIFY_PARAM_set_auth_level(param, 2);
	if (judge->check_crl)
		X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CRL_CHECK);

	if (X509_verify_cert(ctx) == 1) {
		st = verdict_set(v, P11MAIL_CAND_ACCEPTED,
		                 "valid now and chains to an anchor for %s",
		                 judge->domain);
		goto out;
	}
	err = X509_STORE_CTX_get_error(ctx);
	if (err == X509_V_ERR_CERT_REVOKED)
		st = verdict_set(v, P11MAIL_CAND_REVOKED,
		                 "revoked by a configured CRL");
	else if (err == X509_V_ERR_CERT_HAS_EXPIRED ||
	         err == X509_V_ERR_CERT_NOT_YET_VALID)
		st = verdict_set(v, P11MAIL_CAND_EXPIRED,
		                 "a certificate of its chain is not valid now");
	else if (err == X509_V_ERR_INVALID_PURPOSE)
		st = verdict_set(v, P11MAIL_CAND_WRONG_USAGE,
		                 "its chain does not allow S/MIME");
	else
		st = verdict_set(v, P11MAIL_CAND_UNTRUSTED,
		                 "does not chain to an anchor for %s: %s",
		                 judge->domain,
		                 X509_verify_cert_error_string(err));
out:
	X509_STORE_CTX_free(ctx);
	return st;
}

enum p11mail_status p11m_judge_cert(const struct p11m_judge *judge,
                                    const unsigned char *der, size_t len,
                                    struct p11m_verdict *v)
{
	const unsigned char *p = der;
	enum p11mail_status st;
	const char *problem;
	X509 *cert;
	int ok;

	*v = (struct p11m_verdict){0};
	cert = d2i_X509(NULL, &p, (long)len);
	if (cert == NULL || p != der + len) {
		st = verdict_set(v, P11MAIL_CAND_MALFORMED,
		                 "not a DER X.509 certificate");
		goto out;
	}
	v->subject = subject_text(cert);
	v->fingerprint = fingerprint_text(cert);
	v->not_after = time_of(X509_get0_notAfter(cert));

	v->binding = cert_binding(cert, judge->address, judge->domain);
	if (v->binding == NULL) {
		st = verdict_set(v, P11MAIL_CAND_WRONG_BINDING,
		                 "names neither %s nor the domain %s",
		                 judge->address, judge->domain);
		goto out;
	}
	st = judge_validity(cert, v, &ok);
	if (st != P11MAIL_OK || !ok)
		goto out;
	problem = usage_problem(cert);
	if (problem != NULL) {
		st = verdict_set(v, P11MAIL_CAND_WRONG_USAGE, "%s", problem);
		goto out;
	}
	st = judge_chain(judge, cert, v);
out:
	X509_free(cert);
	return st;
}

void p11m_verdict_clear(struct p11m_verdict *v)
{
	free(v->reason);
	free(v->subject);
	free(v->fingerprint);
	*v = (struct p11m_verdict){0};
}
