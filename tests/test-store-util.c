/* Certificates made on the fly for the store's tests; see the header. */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "p11mail.h"
#include "tap.h"
#include "test-store-util.h"

char tsu_last_log[1024];

static EVP_PKEY *tsu_key(void)
{
	static EVP_PKEY *key;

	if (key == NULL)
		key = EVP_EC_gen("P-256");
	return key;
}

static int tsu_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	ok = ext != NULL && X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

static int tsu_fill(X509 *x, const char *address, int from_days, int to_days,
                    int ca)
{
	X509_NAME *name = X509_get_subject_name(x);
	unsigned char serial[16];
	char san[400];
	BIGNUM *bn;
	int ok;

	RAND_bytes(serial, sizeof(serial));
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	ok = ok && X509_set_version(x, 2) &&
	     X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	                                (const unsigned char *)address, -1, -1,
	                                0) &&
	     X509_set_issuer_name(x, name) &&
	     X509_gmtime_adj(X509_getm_notBefore(x), (long)from_days * 86400) &&
	     X509_gmtime_adj(X509_getm_notAfter(x), (long)to_days * 86400) &&
	     X509_set_pubkey(x, tsu_key());
	if (!ok)
		return -1;
	snprintf(san, sizeof(san), "email:%s", address);
	if (ca)
		return tsu_ext(x, NID_basic_constraints, "critical,CA:TRUE");
	if (tsu_ext(x, NID_subject_alt_name, san) < 0)
		return -1;
	return tsu_ext(x, NID_key_usage,
	               "critical,digitalSignature,keyAgreement");
}

int tsu_make_cert(const char *address, int from_days, int to_days, int ca,
                  unsigned char **der, size_t *der_len)
{
	X509 *x = X509_new();
	unsigned char *buf = NULL;
	int len, rc = -1;

	*der = NULL;
	*der_len = 0;
	if (x == NULL || tsu_key() == NULL ||
	    tsu_fill(x, address, from_days, to_days, ca) < 0 ||
	    !X509_sign(x, tsu_key(), EVP_sha256()))
		goto out;
	len = i2d_X509(x, &buf);
	if (len <= 0)
		goto out;
	*der = malloc((size_t)len);
	if (*der != NULL) {
		memcpy(*der, buf, (size_t)len);
		*der_len = (size_t)len;
		rc = 0;
	}
out:
	OPENSSL_free(buf);
	X509_free(x);
	return rc;
}

char *tsu_tempdir(void)
{
	const char *tmp = getenv("TMPDIR");
	char templ[512];
	char *dir;

	snprintf(templ, sizeof(templ), "%s/p11mail-store-XXXXXX",
	         tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	dir = mkdtemp(templ);
	return dir != NULL ? strdup(dir) : NULL;
}

void tsu_rmtree(const char *dir)
{
	char cmd[600];

	if (dir == NULL || strncmp(dir, "/tmp/", 5) != 0 ||
	    strchr(dir, '\'') != NULL)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "# could not remove %s\n", dir);
}

static void tsu_capture_log(void *arg, enum p11mail_log_level level,
                            const char *text)
{
	(void)arg;
	(void)level;
	snprintf(tsu_last_log, sizeof(tsu_last_log), "%s", text);
}

int tsu_run(const struct tap_case *cases, size_t count, char **dir)
{
	int rc;

	*dir = tsu_tempdir();
	if (*dir == NULL)
		tap_skip_all("cannot make a temporary directory");
	p11mail_set_log(tsu_capture_log, NULL);
	rc = tap_run(cases, count);
	tsu_rmtree(*dir);
	free(*dir);
	*dir = NULL;
	return rc;
}
