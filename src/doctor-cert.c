/* p11mail doctor: a certificate's validity and fitness for S/MIME. */
#include "config.h"

#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "doctor.h"

#define RENEW_OWN   "install a renewed certificate with p11mail-certinstall"
#define RENEW_OTHER "replace it with the issuer's current certificate"

static int asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return -1;
	*out = (int64_t)timegm(&tm);
	return 0;
}

static void check_validity(struct doctor *d, const char *check, const char *who,
                           X509 *cert, int own)
{
	int64_t nb, na;
	char date[16];
	long days;

	if (asn1_time_unix(X509_get0_notBefore(cert), &nb) != 0 ||
	    asn1_time_unix(X509_get0_notAfter(cert), &na) != 0) {
		doctor_add(d, DOCTOR_FAIL, check, own ? RENEW_OWN : RENEW_OTHER,
		           "%s: the certificate's validity cannot be read",
		           who);
		return;
	}
	if (d->now < nb) {
		doctor_date(nb, date);
		doctor_add(d, DOCTOR_FAIL, check,
		           "check this computer's clock, or wait until then",
		           "%s: the certificate is not valid before %s", who,
		           date);
		return;
	}
	doctor_date(na, date);
	days = doctor_days_until(d, na);
	if (d->now > na)
		doctor_add(d, DOCTOR_FAIL, check, own ? RENEW_OWN : RENEW_OTHER,
		           "%s: the certificate expired on %s", who, date);
	else if (days < DOCTOR_EXPIRY_DAYS)
		doctor_add(d, DOCTOR_WARN, check,
		           own ? "request a renewed certificate from the CA "
		                 "now"
		               : RENEW_OTHER,
		           "%s: the certificate expires on %s, in %ld day%s",
		           who, date, days, days == 1 ? "" : "s");
	else
		doctor_add(d, DOCTOR_OK, check, NULL,
		           "%s: valid until %s (%ld day%s)", who, date, days,
		           days == 1 ? "" : "s");
}

/* RFC 8550: EKU, when present, must allow email protection. */
static int eku_allows_email(X509 *cert)
{
	uint32_t xku;

	if ((X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) == 0)
		return 1;
	xku = X509_get_extended_key_usage(cert);
	return (xku & XKU_SMIME) != 0 || (xku & XKU_ANYEKU) != 0;
}

static void check_usage(struct doctor *d, const char *check, const char *who,
                        X509 *cert)
{
	const char *next = "ask the CA for an S/MIME certificate (keyUsage "
	                   "digitalSignature, EKU emailProtection)";
	uint32_t ku = X509_get_key_usage(cert);
	EVP_PKEY *pkey = X509_get0_pubkey(cert);
	int is_ec = pkey != NULL && EVP_PKEY_is_a(pkey, "EC");
	uint32_t enc = is_ec ? KU_KEY_AGREEMENT : KU_KEY_ENCIPHERMENT;

	if (!eku_allows_email(cert)) {
		doctor_add(d, DOCTOR_FAIL, check, next,
		           "%s: extendedKeyUsage lacks emailProtection", who);
		return;
	}
	if ((ku & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION)) == 0) {
		doctor_add(d, DOCTOR_FAIL, check, next,
		           "%s: keyUsage forbids signing mail", who);
		return;
	}
	if ((ku & enc) == 0)
		doctor_add(d, DOCTOR_WARN, check,
		           "ask the CA for a certificate that also allows "
		           "encryption",
		           "%s: keyUsage lacks %s: others cannot encrypt to it",
		           who, is_ec ? "keyAgreement" : "keyEncipherment");
	else
		doctor_add(d, DOCTOR_OK, check, NULL,
		           "%s: usable to sign and to receive encrypted mail",
		           who);
}

/* RFC 8551: peers refuse RSA under 2048 bits and SHA-1 signatures. */
static void check_strength(struct doctor *d, const char *check, const char *who,
                           X509 *cert)
{
	const char *next = "ask the CA for a new certificate with an RSA key "
	                   "of 2048 bits or more (or P-256) signed with "
	                   "SHA-256";
	EVP_PKEY *pkey = X509_get0_pubkey(cert);
	int md = NID_undef, pk = NID_undef;

	if (pkey != NULL && EVP_PKEY_is_a(pkey, "RSA") &&
	    EVP_PKEY_get_bits(pkey) < 2048)
		doctor_add(d, DOCTOR_FAIL, check, next,
		           "%s: the RSA key has %d bits; mail with it is "
		           "refused",
		           who, EVP_PKEY_get_bits(pkey));
	if (OBJ_find_sigid_algs(X509_get_signature_nid(cert), &md, &pk) &&
	    (md == NID_sha1 || md == NID_md5))
		doctor_add(d, DOCTOR_FAIL, check, next,
		           "%s: the certificate is signed with %s; mail with "
		           "it is refused",
		           who, OBJ_nid2sn(md));
}

void doctor_check_cert(struct doctor *d, const char *check, const char *who,
                       X509 *cert, int own)
{
	check_validity(d, check, who, cert, own);
	if (own) {
		check_usage(d, check, who, cert);
		check_strength(d, check, who, cert);
	}
}
