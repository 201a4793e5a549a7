/*
 * Makes the malformed and forged signatures the attack tests feed to
 * p11mail verify: opaque SignedData (DER) over a file, signed with a
 * software key, with one defect chosen by the first argument.
 *
 *   test-attack-forge MODE KEY CERT CONTENT OUT [KEY2 CERT2]
 *
 * MODE: good, dup-ct, multi-ct, ct-mismatch, dup-md, dup-time, no-attrs,
 * second-forged (KEY2/CERT2 sign too; that signature is then damaged),
 * sha1, resigned (attributes signed again unchanged: the control for the
 * re-signing modes).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

static EVP_PKEY *read_key(const char *path)
{
	BIO *b = BIO_new_file(path, "r");
	EVP_PKEY *k =
	        b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return k;
}

static X509 *read_cert(const char *path)
{
	BIO *b = BIO_new_file(path, "r");
	X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return x;
}

static int add_object(CMS_SignerInfo *si, int nid, int value_nid)
{
	return CMS_signed_add1_attr_by_NID(si, nid, V_ASN1_OBJECT,
	                                   OBJ_nid2obj(value_nid), -1) > 0;
}

static int add_time(CMS_SignerInfo *si)
{
	ASN1_TIME *t = X509_gmtime_adj(NULL, 0);
	int ok = t != NULL &&
	         CMS_signed_add1_attr_by_NID(si, NID_pkcs9_signingTime,
	                                     V_ASN1_UTCTIME, t, -1) > 0;

	ASN1_TIME_free(t);
	return ok;
}

/* DER order of a SET OF: by encoding, shorter first on a common prefix. */
static int der_cmp(const void *a, const void *b)
{
	const ASN1_STRING *x = *(ASN1_STRING *const *)a;
	const ASN1_STRING *y = *(ASN1_STRING *const *)b;
	int n = x->length < y->length ? x->length : y->length;
	int c = memcmp(x->data, y->data, (size_t)n);

	return c != 0 ? c : x->length - y->length;
}

/*
 * Signs the signed attributes again as they now stand.  OpenSSL refuses
 * to sign malformed attributes itself, which is exactly what is needed.
 */
static int resign(CMS_SignerInfo *si, EVP_PKEY *key)
{
	int n = CMS_signed_get_attr_count(si), total = 0, ok = 0;
	ASN1_STRING *enc[32];
	unsigned char *set = NULL, *p, *sig = NULL;
	size_t siglen = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (n <= 0 || n > 32 || md == NULL)
		goto out;
	for (int i = 0; i < n; i++) {
		unsigned char *der = NULL;
		int len = i2d_X509_ATTRIBUTE(CMS_signed_get_attr(si, i), &der);

		enc[i] = ASN1_STRING_new();
		ASN1_STRING_set(enc[i], der, len);
		OPENSSL_free(der);
		total += len;
	}
	qsort(enc, (size_t)n, sizeof(enc[0]), der_cmp);
	set = OPENSSL_malloc((size_t)total + 8);
	p = set;
	ASN1_put_object(&p, 1, total, V_ASN1_SET, V_ASN1_UNIVERSAL);
	for (int i = 0; i < n; i++) {
		memcpy(p, enc[i]->data, (size_t)enc[i]->length);
		p += enc[i]->length;
	}
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, NULL, &siglen, set, (size_t)(p - set)) != 1)
		goto out;
	sig = OPENSSL_malloc(siglen);
	if (EVP_DigestSign(md, sig, &siglen, set, (size_t)(p - set)) != 1)
		goto out;
	ok = ASN1_STRING_set(CMS_SignerInfo_get0_signature(si), sig,
	                     (int)siglen);
out:
	for (int i = 0; i < n && i < 32; i++)
		ASN1_STRING_free(enc[i]);
	OPENSSL_free(set);
	OPENSSL_free(sig);
	EVP_MD_CTX_free(md);
	return ok;
}

/* Plants a defect in the signed attributes after a normal signature. */
static int plant(const char *mode, CMS_SignerInfo *si)
{
	static const unsigned char zeros[32];
	int pos = CMS_signed_get_attr_by_NID(si, NID_pkcs9_contentType, -1);

	if (strcmp(mode, "dup-ct") == 0)
		return add_object(si, NID_pkcs9_contentType, NID_pkcs7_data);
	if (strcmp(mode, "multi-ct") == 0)
		return pos >= 0 &&
		       X509_ATTRIBUTE_set1_data(
		               CMS_signed_get_attr(si, pos), V_ASN1_OBJECT,
		               OBJ_nid2obj(NID_pkcs7_data), -1);
	if (strcmp(mode, "ct-mismatch") == 0) {
		X509_ATTRIBUTE *old = CMS_signed_delete_attr(si, pos);

		X509_ATTRIBUTE_free(old);
		return old != NULL &&
		       add_object(si, NID_pkcs9_contentType, NID_pkcs7_signed);
	}
	if (strcmp(mode, "dup-md") == 0)
		return CMS_signed_add1_attr_by_NID(si, NID_pkcs9_messageDigest,
		                                   V_ASN1_OCTET_STRING, zeros,
		                                   sizeof(zeros)) > 0;
	if (strcmp(mode, "dup-time") == 0)
		return add_time(si);
	return 1;
}

static int needs_resign(const char *mode)
{
	return strcmp(mode, "resigned") == 0 || strcmp(mode, "dup-ct") == 0 ||
	       strcmp(mode, "multi-ct") == 0 ||
	       strcmp(mode, "ct-mismatch") == 0 ||
	       strcmp(mode, "dup-md") == 0 || strcmp(mode, "dup-time") == 0;
}

static CMS_ContentInfo *forge(const char *mode, char **argv, int argc, BIO *in)
{
	unsigned int flags = CMS_BINARY | CMS_PARTIAL;
	EVP_PKEY *key = read_key(argv[2]), *key2 = NULL;
	X509 *cert = read_cert(argv[3]), *cert2 = NULL;
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si, *si2 = NULL;
	const EVP_MD *md =
	        strcmp(mode, "sha1") == 0 ? EVP_sha1() : EVP_sha256();

	if (key == NULL || cert == NULL)
		goto out;
	cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
	si = cms != NULL ? CMS_add1_signer(
	                           cms, cert, key, md,
	                           CMS_BINARY | (strcmp(mode, "no-attrs") == 0
	                                                 ? CMS_NOATTR
	                                                 : 0))
	                 : NULL;
	if (si == NULL)
		goto fail;
	if (strcmp(mode, "second-forged") == 0 && argc >= 8) {
		key2 = read_key(argv[6]);
		cert2 = read_cert(argv[7]);
		si2 = key2 != NULL && cert2 != NULL
		              ? CMS_add1_signer(cms, cert2, key2, md,
		                                CMS_BINARY)
		              : NULL;
		if (si2 == NULL)
			goto fail;
	}
	if (!CMS_final(cms, in, NULL, CMS_BINARY))
		goto fail;
	if (needs_resign(mode) && (!plant(mode, si) || !resign(si, key)))
		goto fail;
	if (si2 != NULL) {
		ASN1_OCTET_STRING *sig = CMS_SignerInfo_get0_signature(si2);

		sig->data[sig->length / 2] ^= 0x01;
	}
	goto out;

fail:
	CMS_ContentInfo_free(cms);
	cms = NULL;
out:
	EVP_PKEY_free(key);
	EVP_PKEY_free(key2);
	X509_free(cert);
	X509_free(cert2);
	return cms;
}

int main(int argc, char **argv)
{
	CMS_ContentInfo *cms;
	BIO *in, *out;
	int ok;

	if (argc < 6) {
		fprintf(stderr,
		        "usage: %s MODE KEY CERT CONTENT OUT "
		        "[KEY2 CERT2]\n",
		        argv[0]);
		return 2;
	}
	in = BIO_new_file(argv[4], "rb");
	cms = in != NULL ? forge(argv[1], argv, argc, in) : NULL;
	out = cms != NULL ? BIO_new_file(argv[5], "wb") : NULL;
	ok = out != NULL && i2d_CMS_bio(out, cms);
	if (!ok)
		ERR_print_errors_fp(stderr);
	BIO_free(out);
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	return ok ? 0 : 1;
}
