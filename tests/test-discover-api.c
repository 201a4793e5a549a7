/*
 * The public discovery API without servers: argument checks, and the cache
 * interface (hits are judged again, "nothing found" is remembered, a run
 * whose lookups failed is not cached).  DNS goes to a closed local port.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "p11mail.h"
#include "tap.h"

#define DEAD_DNS "127.0.0.1:1"
#define ADDRESS  "alice@north-clinic.test"

static X509 *ca_cert, *leaf_cert;
static EVP_PKEY *ca_key;

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	ok = ext != NULL && X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

/* A P-256 certificate signed by issuer's key (itself when issuer is NULL). */
static X509 *make_cert(const char *cn, X509 *issuer, EVP_PKEY **key_out,
                       const char *const *exts)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = X509_new();
	static long serial = 1;
	int ok = key != NULL && cert != NULL;

	if (ok) {
		X509_set_version(cert, 2);
		ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
		X509_gmtime_adj(X509_getm_notBefore(cert), -60);
		X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
		X509_NAME_add_entry_by_txt(
		        X509_get_subject_name(cert), "CN", MBSTRING_ASC,
		        (const unsigned char *)cn, -1, -1, 0);
		X509_set_issuer_name(
		        cert, X509_get_subject_name(issuer ? issuer : cert));
		X509_set_pubkey(cert, key);
	}
	for (size_t i = 0; ok && exts[i] != NULL; i += 2)
		ok = add_ext(cert, issuer ? issuer : cert, OBJ_sn2nid(exts[i]),
		             exts[i + 1]);
	if (ok)
		ok = X509_sign(cert, issuer ? ca_key : key, EVP_sha256()) > 0;
	if (!ok) {
		X509_free(cert);
		EVP_PKEY_free(key);
		return NULL;
	}
	if (key_out != NULL)
		*key_out = key;
	else
		EVP_PKEY_free(key);
	return cert;
}

/* An in-memory cache with one entry and a record of what was put. */
struct mem_cache {
	enum p11mail_status get_status;
	X509 *entry; /* NULL with get_status OK: "nothing found" */
	int gets;
	int puts;
};

static enum p11mail_status mem_get(void *arg, const char *address,
                                   long long now, unsigned char **der,
                                   size_t *len, char **source)
{
	struct mem_cache *c = arg;
	unsigned char *buf = NULL;
	int n;

	(void)address;
	(void)now;
	c->gets++;
	*der = NULL;
	*len = 0;
	*source = NULL;
	if (c->get_status != P11MAIL_OK || c->entry == NULL)
		return c->get_status;
	n = i2d_X509(c->entry, &buf);
	if (n <= 0)
		return P11MAIL_ERR_NOMEM;
	*der = malloc((size_t)n);
	*source = strdup("memory");
	if (*der == NULL || *source == NULL) {
		OPENSSL_free(buf);
		return P11MAIL_ERR_NOMEM;
	}
	memcpy(*der, buf, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(buf);
	return P11MAIL_OK;
}

static enum p11mail_status mem_put(void *arg, const char *address,
                                   const unsigned char *der, size_t len,
                                   const char *source, long long expires)
{
	struct mem_cache *c = arg;

	(void)address;
	(void)der;
	(void)len;
	(void)source;
	(void)expires;
	c->puts++;
	return P11MAIL_OK;
}

/* Discovery settings over a dead DNS server and the given cache. */
static struct p11mail_discover *setup(struct mem_cache *mem, int anchors)
{
	struct p11mail_discover_cache cache = {mem_get, mem_put, mem};
	struct p11mail_discover *disc = NULL;
	X509_STORE *store = X509_STORE_new();

	if (p11mail_discover_new(&disc) != P11MAIL_OK || store == NULL)
		goto out;
	X509_STORE_add_cert(store, ca_cert);
	if (p11mail_discover_set_timeout(disc, 1) != P11MAIL_OK ||
	    p11mail_discover_set_dns_server(disc, DEAD_DNS) != P11MAIL_OK ||
	    p11mail_discover_set_cache(disc, &cache, 3600, 300) != P11MAIL_OK ||
	    (anchors &&
	     p11mail_discover_set_anchors(disc, store) != P11MAIL_OK)) {
		p11mail_discover_free(disc);
		disc = NULL;
	}
out:
	X509_STORE_free(store);
	return disc;
}

static void test_cached_certificate_used_without_network(void)
{
	struct mem_cache mem = {.get_status = P11MAIL_OK, .entry = leaf_cert};
	struct p11mail_discover *disc = setup(&mem, 1);
	struct p11mail_discovery *res = NULL;
	const struct p11mail_candidate *c;

	tap_check(disc != NULL);
	tap_check(p11mail_discover_run(disc, ADDRESS, &res) == P11MAIL_OK);
	c = p11mail_discovery_chosen(res);
	tap_check(c != NULL && strcmp(c->source, "cache") == 0);
	tap_check(c != NULL && strcmp(c->binding, "address") == 0);
	tap_check(p11mail_discovery_cached(res) == 1);
	tap_check(p11mail_discovery_failures(res) == 0);
	tap_check(mem.gets == 1 && mem.puts == 0);
	p11mail_discovery_free(res);
	p11mail_discover_free(disc);
}

static void test_cached_certificate_judged_again(void)
{
	struct mem_cache mem = {.get_status = P11MAIL_OK, .entry = leaf_cert};
	struct p11mail_discover *disc = setup(&mem, 0);
	struct p11mail_discovery *res = NULL;
	const struct p11mail_candidate *c;

	tap_check(p11mail_discover_run(disc, ADDRESS, &res) == P11MAIL_OK);
	tap_check(p11mail_discovery_chosen(res) == NULL);
	c = p11mail_discovery_get(res, 0);
	tap_check(c != NULL && c->verdict == P11MAIL_CAND_UNTRUSTED);
	tap_check(p11mail_discovery_cached(res) == 0);
	/* It looked again, the DNS server was dead: nothing is cached. */
	tap_check(p11mail_discovery_failures(res) > 0);
	tap_check(mem.puts == 0);
	p11mail_discovery_free(res);
	p11mail_discover_free(disc);
}

static void test_negative_entry_remembered(void)
{
	struct mem_cache mem = {.get_status = P11MAIL_OK, .entry = NULL};
	struct p11mail_discover *disc = setup(&mem, 1);
	struct p11mail_discovery *res = NULL;

	tap_check(p11mail_discover_run(disc, ADDRESS, &res) == P11MAIL_OK);
	tap_check(p11mail_discovery_chosen(res) == NULL);
	tap_check(p11mail_discovery_count(res) == 0);
	tap_check(p11mail_discovery_cached(res) == 1);
	tap_check(p11mail_discovery_failures(res) == 0);
	tap_check(mem.puts == 0);
	p11mail_discovery_free(res);
	p11mail_discover_free(disc);
}

static void test_failed_lookups_not_cached(void)
{
	struct mem_cache mem = {.get_status = P11MAIL_ERR_NOT_FOUND};
	struct p11mail_discover *disc = setup(&mem, 1);
	struct p11mail_discovery *res = NULL;

	tap_check(p11mail_discover_run(disc, ADDRESS, &res) == P11MAIL_OK);
	tap_check(p11mail_discovery_chosen(res) == NULL);
	tap_check(p11mail_discovery_failures(res) > 0);
	tap_check(mem.puts == 0);
	p11mail_discovery_free(res);
	p11mail_discover_free(disc);
}

static void test_unreadable_cache_does_not_stop_lookup(void)
{
	struct mem_cache mem = {.get_status = P11MAIL_ERR_STORE};
	struct p11mail_discover *disc = setup(&mem, 1);
	struct p11mail_discovery *res = NULL;

	tap_check(p11mail_discover_run(disc, ADDRESS, &res) == P11MAIL_OK);
	tap_check(p11mail_discovery_cached(res) == 0);
	tap_check(p11mail_discovery_failures(res) > 0);
	p11mail_discovery_free(res);
	p11mail_discover_free(disc);
}

static void test_bad_arguments(void)
{
	static const char *const bad[] = {
	        "",
	        "alice",
	        "@north-clinic.test",
	        "alice@",
	        "a@b@c",
	        "alice@north clinic.test",
	        "a)(mail=*@x.test",
	        "a\\b@x.test",
	        "alice@.x.test",
	        "alice@x.test.",
	        ".alice@x.test",
	        "al..ice@x.test",
	};
	struct p11mail_discover_cache nocache = {NULL, mem_put, NULL};
	struct p11mail_discovery *res = (void *)&res;
	struct p11mail_discover *disc = NULL;

	tap_check(p11mail_discover_new(&disc) == P11MAIL_OK);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (!tap_check(p11mail_discover_run(disc, bad[i], &res) ==
		               P11MAIL_ERR_ARGS))
			tap_diag("accepted '%s'", bad[i]);
		tap_check(res == NULL);
	}
	tap_check(p11mail_discover_run(NULL, ADDRESS, &res) ==
	          P11MAIL_ERR_ARGS);
	tap_check(p11mail_discover_set_timeout(disc, 0) == P11MAIL_ERR_ARGS);
	tap_check(p11mail_discover_set_timeout(disc, 61) == P11MAIL_ERR_ARGS);
	tap_check(p11mail_discover_set_dns_server(disc, "ns.example:53") ==
	          P11MAIL_ERR_ARGS);
	tap_check(p11mail_discover_set_dns_server(disc, "127.0.0.1:0") ==
	          P11MAIL_ERR_ARGS);
	tap_check(p11mail_discover_set_dns_server(disc, "[::1]:5353") ==
	          P11MAIL_OK);
	tap_check(p11mail_discover_set_dns_server(disc, NULL) == P11MAIL_OK);
	tap_check(p11mail_discover_set_cache(disc, &nocache, 1, 1) ==
	          P11MAIL_ERR_ARGS);
	tap_check(p11mail_discover_add_anchor_file(disc, "/nonexistent") ==
	          P11MAIL_ERR_IO);
	p11mail_discover_free(disc);
	p11mail_discover_free(NULL);
	p11mail_discovery_free(NULL);
}

static void test_verdict_names(void)
{
	for (int v = P11MAIL_CAND_ACCEPTED; v <= P11MAIL_CAND_UNTRUSTED; v++)
		tap_check(strcmp(p11mail_candidate_verdict_name(
		                         (enum p11mail_candidate_verdict)v),
		                 "unknown") != 0);
}

int main(void)
{
	static const char *const ca_exts[] = {
	        "basicConstraints",
	        "critical,CA:TRUE",
	        "keyUsage",
	        "critical,keyCertSign,cRLSign",
	        NULL,
	};
	static const char *const leaf_exts[] = {
	        "basicConstraints",
	        "critical,CA:FALSE",
	        "keyUsage",
	        "critical,digitalSignature,keyAgreement",
	        "extendedKeyUsage",
	        "emailProtection",
	        "subjectAltName",
	        "email:" ADDRESS,
	        NULL,
	};
	static const struct tap_case cases[] = {
	        {"test_cached_certificate_used_without_network",
	         test_cached_certificate_used_without_network},
	        {"test_cached_certificate_judged_again",
	         test_cached_certificate_judged_again},
	        {"test_negative_entry_remembered",
	         test_negative_entry_remembered},
	        {"test_failed_lookups_not_cached",
	         test_failed_lookups_not_cached},
	        {"test_unreadable_cache_does_not_stop_lookup",
	         test_unreadable_cache_does_not_stop_lookup},
	        {"test_bad_arguments", test_bad_arguments},
	        {"test_verdict_names", test_verdict_names},
	};
	int rc;

	ca_cert = make_cert("API Test CA", NULL, &ca_key, ca_exts);
	leaf_cert = ca_cert != NULL
	                    ? make_cert("alice", ca_cert, NULL, leaf_exts)
	                    : NULL;
	if (leaf_cert == NULL)
		tap_skip_all("OpenSSL cannot make the test certificates");
	rc = tap_run(cases, sizeof(cases) / sizeof(cases[0]));
	X509_free(leaf_cert);
	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	return rc;
}
