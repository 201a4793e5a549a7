/*
 * Unit tests of the discovery parts that need no server: the RFC 2782
 * order of SRV targets and the forms a fetched certificate may take.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "discover.h"
#include "tap.h"

/* A small deterministic generator, so that the counts are reproducible. */
static uint32_t xorshift(void *arg)
{
	uint32_t *s = arg;

	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void srv_set(struct p11m_srv *srv, uint16_t prio, uint16_t weight,
                    uint16_t port)
{
	*srv = (struct p11m_srv){
	        .priority = prio, .weight = weight, .port = port};
}

static void test_priority_first(void)
{
	struct p11m_srv srv[4];
	uint32_t seed = 7;

	srv_set(&srv[0], 30, 5, 3);
	srv_set(&srv[1], 10, 0, 1);
	srv_set(&srv[2], 20, 100, 2);
	srv_set(&srv[3], 30, 5, 4);
	p11m_srv_order(srv, 4, xorshift, &seed);
	tap_check(srv[0].port == 1);
	tap_check(srv[1].port == 2);
	tap_check(srv[2].priority == 30 && srv[3].priority == 30);
}

/* Counts how often each port comes first over many draws. */
static void first_counts(const uint16_t *weights, size_t n, unsigned *hits,
                         unsigned draws)
{
	struct p11m_srv srv[8];
	uint32_t seed = 2463534242u;

	memset(hits, 0, n * sizeof(*hits));
	for (unsigned d = 0; d < draws; d++) {
		for (size_t i = 0; i < n; i++)
			srv_set(&srv[i], 10, weights[i], (uint16_t)i);
		p11m_srv_order(srv, n, xorshift, &seed);
		hits[srv[0].port]++;
	}
}

static void test_weight_proportional(void)
{
	static const uint16_t weights[] = {90, 10};
	unsigned hits[2];

	first_counts(weights, 2, hits, 10000);
	tap_diag("weights 90/10: first %u/%u", hits[0], hits[1]);
	tap_check(hits[0] > 8700 && hits[0] < 9300);
}

static void test_weight_zero_rare(void)
{
	static const uint16_t weights[] = {0, 1000};
	unsigned hits[2];

	first_counts(weights, 2, hits, 10000);
	tap_diag("weights 0/1000: first %u/%u", hits[0], hits[1]);
	tap_check(hits[0] < 50);
	tap_check(hits[0] > 0); /* a small chance, not none (RFC 2782) */
}

static void test_all_zero_weights_share(void)
{
	static const uint16_t weights[] = {0, 0, 0};
	unsigned hits[3];

	first_counts(weights, 3, hits, 9000);
	tap_diag("weights 0/0/0: first %u/%u/%u", hits[0], hits[1], hits[2]);
	for (int i = 0; i < 3; i++)
		tap_check(hits[i] > 2500 && hits[i] < 3500);
}

static void test_every_target_kept(void)
{
	struct p11m_srv srv[5];
	uint32_t seed = 99;
	unsigned seen = 0;

	for (uint16_t i = 0; i < 5; i++)
		srv_set(&srv[i], (uint16_t)(i % 2), (uint16_t)(i * 7), i);
	p11m_srv_order(srv, 5, xorshift, &seed);
	for (int i = 0; i < 5; i++)
		seen |= 1u << srv[i].port;
	tap_check(seen == 0x1f);
	for (int i = 1; i < 5; i++)
		tap_check(srv[i - 1].priority <= srv[i].priority);
}

/* A throwaway self-signed certificate. */
static X509 *make_cert(const char *cn)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = X509_new();
	X509_NAME *name;

	if (key == NULL || cert == NULL)
		goto fail;
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                           (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(cert, name);
	X509_set_pubkey(cert, key);
	if (X509_sign(cert, key, EVP_sha256()) <= 0)
		goto fail;
	EVP_PKEY_free(key);
	return cert;
fail:
	EVP_PKEY_free(key);
	X509_free(cert);
	return NULL;
}

static X509 *cert_a, *cert_b;

static size_t der_of(X509 *cert, unsigned char **der)
{
	int n = i2d_X509(cert, der);

	return n > 0 ? (size_t)n : 0;
}

static void test_list_der_and_dedupe(void)
{
	struct p11m_disc_list list = {0};
	unsigned char *der = NULL;
	size_t len = der_of(cert_a, &der);

	tap_check(p11m_disc_list_add_any(&list, der, len, "dns", "o") ==
	          P11MAIL_OK);
	tap_check(p11m_disc_list_add(&list, der, len, "ldap", "o2") ==
	          P11MAIL_OK);
	tap_check(list.count == 1);
	tap_check(list.count == 1 && list.items[0].len == len &&
	          strcmp(list.items[0].source, "dns") == 0);
	OPENSSL_free(der);
	p11m_disc_list_clear(&list);
}

static void test_list_pem(void)
{
	struct p11m_disc_list list = {0};
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem;
	long n;

	PEM_write_bio_X509(bio, cert_b);
	n = BIO_get_mem_data(bio, &pem);
	tap_check(p11m_disc_list_add_any(&list, (unsigned char *)pem, (size_t)n,
	                                 "dns", "o") == P11MAIL_OK);
	tap_check(list.count == 1);
	BIO_free(bio);
	p11m_disc_list_clear(&list);
}

static void test_list_cms_bundle(void)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	struct p11m_disc_list list = {0};
	unsigned char *der = NULL;
	CMS_ContentInfo *cms;
	int len;

	sk_X509_push(certs, cert_a);
	sk_X509_push(certs, cert_b);
	/* No signer: a certs-only SignedData, as LDAP may hold. */
	cms = CMS_sign(NULL, NULL, certs, NULL, CMS_PARTIAL);
	len = cms != NULL ? i2d_CMS_ContentInfo(cms, &der) : 0;
	tap_check(len > 0);
	tap_check(p11m_disc_list_add_any(&list, der, (size_t)len, "ldap",
	                                 "o") == P11MAIL_OK);
	tap_check(list.count == 2);
	OPENSSL_free(der);
	CMS_ContentInfo_free(cms);
	sk_X509_free(certs);
	p11m_disc_list_clear(&list);
}

static void test_list_garbage_refused(void)
{
	static const unsigned char junk[] = "\x30\x03\x02\x01\x05 trailing";
	struct p11m_disc_list list = {0};

	tap_check(p11m_disc_list_add_any(&list, junk, sizeof(junk), "dns",
	                                 "o") == P11MAIL_ERR_FORMAT);
	tap_check(list.count == 0);
	p11m_disc_list_clear(&list);
}

static void test_list_bounds(void)
{
	struct p11m_disc_list list = {0};
	unsigned char *big = calloc(1, P11M_DISC_MAX_CERT + 1);
	unsigned char item[4] = {0};
	enum p11mail_status st = P11MAIL_OK;
	size_t i;

	tap_check(big != NULL);
	if (big == NULL)
		return;
	tap_check(p11m_disc_list_add(&list, big, P11M_DISC_MAX_CERT + 1, "d",
	                             "o") == P11MAIL_ERR_LIMIT);
	for (i = 0; i <= P11M_DISC_MAX_ITEMS && st == P11MAIL_OK; i++) {
		memcpy(item, &i, sizeof(item));
		st = p11m_disc_list_add(&list, item, sizeof(item), "d", "o");
	}
	tap_check(st == P11MAIL_ERR_LIMIT);
	tap_check(list.count == P11M_DISC_MAX_ITEMS);
	free(big);
	p11m_disc_list_clear(&list);
}

int main(void)
{
	static const struct tap_case cases[] = {
	        {"test_priority_first", test_priority_first},
	        {"test_weight_proportional", test_weight_proportional},
	        {"test_weight_zero_rare", test_weight_zero_rare},
	        {"test_all_zero_weights_share", test_all_zero_weights_share},
	        {"test_every_target_kept", test_every_target_kept},
	        {"test_list_der_and_dedupe", test_list_der_and_dedupe},
	        {"test_list_pem", test_list_pem},
	        {"test_list_cms_bundle", test_list_cms_bundle},
	        {"test_list_garbage_refused", test_list_garbage_refused},
	        {"test_list_bounds", test_list_bounds},
	};
	int rc;

	cert_a = make_cert("discovery unit A");
	cert_b = make_cert("discovery unit B");
	if (cert_a == NULL || cert_b == NULL)
		tap_skip_all("OpenSSL cannot make a test certificate");
	rc = tap_run(cases, sizeof(cases) / sizeof(cases[0]));
	X509_free(cert_a);
	X509_free(cert_b);
	return rc;
}
