/*
 * Signing: canonicalize the body entity, sign it with the identity's key
 * in the S/MIME library context, and wrap it as multipart/signed or as
 * opaque signed-data.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "certcheck.h"
#include "common.h"
#include "mime.h"
#include "smime-mime.h"
#include "smime.h"

/* The algorithms we can decrypt, most preferred first (RFC 8551 2.5.2). */
static const int smimecaps[] = {NID_aes_256_gcm, NID_aes_128_gcm,
                                NID_aes_256_cbc, NID_aes_128_cbc};

static int add_smimecaps(CMS_SignerInfo *si)
{
	STACK_OF(X509_ALGOR) *algs = NULL;
	int ok = 1;

	for (size_t i = 0; ok && i < P11M_ARRAY_SIZE(smimecaps); i++)
		ok = CMS_add_simple_smimecap(&algs, smimecaps[i], -1);
	ok = ok && CMS_add_smimecap(si, algs);
	sk_X509_ALGOR_pop_free(algs, X509_ALGOR_free);
	return ok;
}

/* PSS with a salt as long as the digest, as RFC 4056 recommends. */
static int set_pss(CMS_SignerInfo *si)
{
	EVP_PKEY_CTX *pctx = CMS_SignerInfo_get0_pkey_ctx(si);

	return pctx != NULL &&
	       EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
	       EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) >
	               0;
}

static CMS_SignerInfo *add_signer(p11mail_smime *smime, CMS_ContentInfo *cms,
                                  unsigned int flags)
{
	int pss = (flags & P11MAIL_SMIME_PSS) != 0;
	EVP_MD *md;
	CMS_SignerInfo *si;

	if (pss && EVP_PKEY_get_base_id(smime->key) != EVP_PKEY_RSA) {
		p11m_log(P11MAIL_LOG_ERROR, "RSA-PSS needs an RSA key");
		return NULL;
	}
	md = EVP_MD_fetch(smime->libctx,
	                  flags & P11MAIL_SMIME_SHA512 ? "SHA512" : "SHA256",
	                  smime->propq);
	if (md == NULL)
		return NULL;
	si = CMS_add1_signer(cms, smime->cert, smime->key, md,
	                     CMS_BINARY | CMS_NOSMIMECAP |
	                             (pss ? CMS_KEY_PARAM : 0));
	EVP_MD_free(md);
	if (si == NULL)
		return NULL;
	if ((pss && !set_pss(si)) || !add_smimecaps(si))
		return NULL;
	return si;
}

/* The identity must exist and its certificate allow signing now. */
static enum p11mail_status check_identity(p11mail_smime *smime)
{
	char problem[256];

	if (smime->key == NULL || smime->cert == NULL) {
		p11m_log(P11MAIL_LOG_ERROR, "no signing identity was given");
		return P11MAIL_ERR_NO_KEY;
	}
	if (certcheck_policy(smime->cert, CERTCHECK_SIGN, problem,
	                     sizeof(problem)) != P11MAIL_OK) {
		p11m_log(P11MAIL_LOG_ERROR, "the signing certificate: %s",
		         problem);
		return P11MAIL_ERR_NO_CERT;
	}
	return P11MAIL_OK;
}

/*
 * Detached: CMS_final digests the file in chunks.  Opaque: the content
 * is streamed into indefinite-length BER, which RFC 5652 allows.
 */
enum p11mail_status smime_sign_stream(p11mail_smime *smime, unsigned int flags,
                                      int fd, int der_fd)
{
	int detached = !(flags & P11MAIL_SMIME_OPAQUE);
	unsigned int cflags = CMS_BINARY | CMS_PARTIAL |
	                      (detached ? CMS_DETACHED : CMS_STREAM);
	CMS_ContentInfo *cms = NULL;
	BIO *data = NULL, *der = NULL;
	enum p11mail_status st;

	st = check_identity(smime);
	if (st != P11MAIL_OK)
		return st;
	st = P11MAIL_ERR_CRYPTO;
	cms = CMS_sign_ex(NULL, NULL, NULL, NULL, cflags, smime->libctx,
	                  smime->propq);
	if (cms == NULL || add_signer(smime, cms, flags) == NULL)
		goto out;
	for (int i = 0; i < sk_X509_num(smime->chain); i++)
		if (!CMS_add1_cert(cms, sk_X509_value(smime->chain, i)))
			goto out;

	data = smime_fd_bio(fd);
	der = BIO_new_fd(der_fd, BIO_NOCLOSE);
	if (data == NULL || der == NULL) {
		st = P11MAIL_ERR_IO;
		goto out;
	}
	if (detached ? !CMS_final(cms, data, NULL, cflags) ||
	                       i2d_CMS_bio(der, cms) <= 0
	             : !i2d_CMS_bio_stream(der, cms, data, (int)cflags)) {
		p11m_log(P11MAIL_LOG_ERROR, "signing failed");
		goto out;
	}
	st = BIO_flush(der) == 1 ? P11MAIL_OK : P11MAIL_ERR_IO;

out:
	smime_log_openssl("sign");
	BIO_free(der);
	BIO_free(data);
	CMS_ContentInfo_free(cms);
	return st;
}

enum p11mail_status smime_boundary(p11mail_smime *smime, char out[40])
{
	unsigned char rnd[12];

	if (RAND_bytes_ex(smime->libctx, rnd, sizeof(rnd), 0) != 1)
		return P11MAIL_ERR_CRYPTO;
	strcpy(out, "p11mail-");
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(out + 8 + 2 * i, 3, "%02x", rnd[i]);
	return P11MAIL_OK;
}

static enum p11mail_status write_detached(p11mail_smime *smime,
                                          unsigned int flags, int entity_fd,
                                          int der_fd, BIO *out)
{
	char b[40];
	enum p11mail_status st = smime_boundary(smime, b);

	if (st != P11MAIL_OK)
		return st;
	if (BIO_printf(out,
	               "Content-Type: multipart/signed;\r\n"
	               "\tprotocol=\"application/pkcs7-signature\";\r\n"
	               "\tmicalg=%s; boundary=\"%s\"\r\n\r\n"
	               "This is an S/MIME signed message.\r\n\r\n--%s\r\n",
	               flags & P11MAIL_SMIME_SHA512 ? "sha-512" : "sha-256", b,
	               b) <= 0)
		return P11MAIL_ERR_IO;
	st = smime_copy_fd(entity_fd, out);
	if (st == P11MAIL_OK &&
	    BIO_printf(out,
	               "\r\n--%s\r\n"
	               "Content-Type: application/pkcs7-signature; "
	               "name=\"smime.p7s\"\r\n"
	               "Content-Transfer-Encoding: base64\r\n"
	               "Content-Disposition: attachment; "
	               "filename=\"smime.p7s\"\r\n\r\n",
	               b) <= 0)
		st = P11MAIL_ERR_IO;
	if (st == P11MAIL_OK)
		st = smime_base64_fd(der_fd, out);
	if (st == P11MAIL_OK && BIO_printf(out, "--%s--\r\n", b) <= 0)
		st = P11MAIL_ERR_IO;
	return st;
}

/* Headers of an application/pkcs7-mime entity of the given smime-type. */
static int pkcs7_mime_headers(const char *smime_type, BIO *out)
{
	return BIO_printf(out,
	                  "Content-Type: application/pkcs7-mime; "
	                  "smime-type=%s;\r\n\tname=\"smime.p7m\"\r\n"
	                  "Content-Transfer-Encoding: base64\r\n"
	                  "Content-Disposition: attachment; "
	                  "filename=\"smime.p7m\"\r\n\r\n",
	                  smime_type) > 0;
}

enum p11mail_status smime_write_pkcs7_mime_fd(const char *smime_type,
                                              int der_fd, BIO *out)
{
	if (!pkcs7_mime_headers(smime_type, out))
		return P11MAIL_ERR_IO;
	return smime_base64_fd(der_fd, out);
}

enum p11mail_status smime_write_pkcs7_mime(const char *smime_type,
                                           const unsigned char *der,
                                           size_t der_len, BIO *out)
{
	if (!pkcs7_mime_headers(smime_type, out))
		return P11MAIL_ERR_IO;
	return smime_base64_crlf(der, der_len, out);
}

enum p11mail_status smime_sign_entity(p11mail_smime *smime, unsigned int flags,
                                      GMimeObject *entity, BIO *out)
{
	int fd = -1, der_fd = -1;
	enum p11mail_status st = check_identity(smime);

	if (st != P11MAIL_OK)
		return st;
	st = P11MAIL_ERR_IO;
	fd = smime_tmpfile();
	der_fd = smime_tmpfile();
	if (fd < 0 || der_fd < 0)
		goto out;

	/* the signed bytes are exactly those written to the file */
	mime_prepare_for_signing(entity);
	st = mime_to_crlf_fd(entity, fd);
	if (st == P11MAIL_OK)
		st = smime_sign_stream(smime, flags, fd, der_fd);
	if (st != P11MAIL_OK)
		goto out;
	if (flags & P11MAIL_SMIME_OPAQUE)
		st = smime_write_pkcs7_mime_fd("signed-data", der_fd, out);
	else
		st = write_detached(smime, flags, fd, der_fd, out);

out:
	if (fd >= 0)
		close(fd);
	if (der_fd >= 0)
		close(der_fd);
	return st;
}

enum p11mail_status smime_bio_take(BIO *bio, unsigned char **out,
                                   size_t *out_len)
{
	char *data = NULL;
	long len = BIO_get_mem_data(bio, &data);
	unsigned char *copy;

	*out = NULL;
	*out_len = 0;
	if (len < 0)
		return P11MAIL_ERR_IO;
	copy = malloc((size_t)len + 1);
	if (copy == NULL)
		return P11MAIL_ERR_NOMEM;
	memcpy(copy, data, (size_t)len);
	copy[len] = '\0';
	*out = copy;
	*out_len = (size_t)len;
	return P11MAIL_OK;
}

/* Receivers compare From with the signer: say so before they do. */
static void warn_sender(p11mail_smime *smime, GMimeMessage *msg)
{
	char *sender = NULL;

	if (smime->cert == NULL || mime_sender(msg, &sender) != P11MAIL_OK ||
	    sender == NULL)
		goto out;
	if (!certcheck_address_match(smime->cert, sender))
		p11m_log(P11MAIL_LOG_WARNING,
		         "%s is not an address of the signing certificate: "
		         "receivers will report that the signer does not "
		         "match the sender",
		         sender);
out:
	free(sender);
}

/* Writes msg signed to out: its own headers, then the signed entity. */
static enum p11mail_status sign_message(p11mail_smime *smime,
                                        unsigned int flags, GMimeMessage *msg,
                                        BIO *out)
{
	enum p11mail_status st;

	warn_sender(smime, msg);
	st = mime_write_outer_headers(msg, out);
	if (st == P11MAIL_OK && BIO_puts(out, "MIME-Version: 1.0\r\n") <= 0)
		st = P11MAIL_ERR_IO;
	if (st == P11MAIL_OK)
		st = smime_sign_entity(smime, flags,
		                       g_mime_message_get_mime_part(msg), out);
	return st;
}

enum p11mail_status p11mail_smime_sign(p11mail_smime *smime, unsigned int flags,
                                       const unsigned char *in, size_t in_len,
                                       unsigned char **out, size_t *out_len)
{
	GMimeMessage *msg = NULL;
	BIO *bio = NULL;
	enum p11mail_status st;

	*out = NULL;
	*out_len = 0;
	st = mime_parse(in, in_len, &smime->limits, &msg);
	if (st != P11MAIL_OK)
		goto out;
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL) {
		st = P11MAIL_ERR_NOMEM;
		goto out;
	}
	st = sign_message(smime, flags, msg, bio);
	if (st == P11MAIL_OK)
		st = smime_bio_take(bio, out, out_len);

out:
	BIO_free(bio);
	if (msg != NULL)
		g_object_unref(msg);
	return st;
}

enum p11mail_status p11mail_smime_sign_fd(p11mail_smime *smime,
                                          unsigned int flags, int in_fd,
                                          int out_fd)
{
	GMimeMessage *msg = NULL;
	BIO *bio = NULL;
	enum p11mail_status st;

	st = mime_parse_fd(in_fd, smime->limits.max_file_size, &smime->limits,
	                   &msg);
	if (st != P11MAIL_OK)
		goto out;
	bio = smime_out_bio(out_fd);
	if (bio == NULL) {
		st = P11MAIL_ERR_NOMEM;
		goto out;
	}
	st = sign_message(smime, flags, msg, bio);
	if (st == P11MAIL_OK && BIO_flush(bio) != 1)
		st = P11MAIL_ERR_IO;

out:
	BIO_free_all(bio);
	if (msg != NULL)
		g_object_unref(msg);
	return st;
}
