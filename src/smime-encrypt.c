/*
 * Encryption: pick one usable certificate for every recipient (failing
 * closed and naming each one without), then AuthEnvelopedData with
 * AES-256-GCM, or EnvelopedData with AES-256-CBC for peers without GCM.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/rsa.h>

#include "certcheck.h"
#include "common.h"
#include "mime.h"
#include "smime-mime.h"
#include "smime.h"

/* Checks one candidate for encryption now; the reason goes to problem. */
static int usable_for_encryption(p11mail_smime *smime, X509_STORE *anchors,
                                 X509 *cert, char *problem, size_t size)
{
	if (certcheck_policy(cert, CERTCHECK_ENCRYPT, problem, size) !=
	    P11MAIL_OK)
		return 0;
	return certcheck_chain(smime->libctx, anchors, cert, NULL,
	                       CERTCHECK_ENCRYPT, problem,
	                       size) == CERTCHECK_TRUSTED;
}

/*
 * Finds a usable certificate for addr among the candidates (borrowed).
 * Addresses compare without regard to case, as the store files them:
 * BOB@South-Lab.test is bob@south-lab.test.
 */
static struct smime_candidate *pick_candidate(p11mail_smime *smime,
                                              X509_STORE *anchors,
                                              const char *addr, char *problem,
                                              size_t size)
{
	snprintf(problem, size, "no certificate is known for this address");
	for (size_t i = 0; i < smime->candidate_count; i++) {
		struct smime_candidate *c = &smime->candidates[i];

		if (c->address == NULL || strcasecmp(c->address, addr) != 0)
			continue;
		if (usable_for_encryption(smime, anchors, c->cert, problem,
		                          size))
			return c;
	}
	return NULL;
}

static struct smime_candidate *find_recipient(p11mail_smime *smime,
                                              X509_STORE *anchors,
                                              const char *addr, char *problem,
                                              size_t size)
{
	struct smime_candidate *c =
	        pick_candidate(smime, anchors, addr, problem, size);

	if (c != NULL || !smime->have_source || smime->source.lookup == NULL)
		return c;
	if (smime->source.lookup(smime->source.arg, smime, addr) != P11MAIL_OK)
		return NULL;
	return pick_candidate(smime, anchors, addr, problem, size);
}

/*
 * Collects a certificate for every address; logs each failure.  *flags
 * gains P11MAIL_SMIME_CBC when a recipient announced no AES-GCM.
 */
static enum p11mail_status collect_recipients(p11mail_smime *smime,
                                              const char *const *to, size_t n,
                                              STACK_OF(X509) * out,
                                              unsigned int *flags)
{
	X509_STORE *anchors = NULL;
	char problem[256];
	size_t missing = 0;
	enum p11mail_status st;

	st = smime_anchor_store(smime, &anchors);
	if (st != P11MAIL_OK)
		return st;
	for (size_t i = 0; i < n; i++) {
		struct smime_candidate *c = find_recipient(
		        smime, anchors, to[i], problem, sizeof(problem));

		if (c == NULL) {
			p11m_log(P11MAIL_LOG_ERROR,
			         "%s: %s; repeat the signed-mail exchange to "
			         "get a current certificate",
			         to[i], problem);
			missing++;
			continue;
		}
		if (c->no_gcm && !(*flags & P11MAIL_SMIME_CBC)) {
			p11m_log(P11MAIL_LOG_INFO,
			         "%s announced no AES-GCM: using AES-256-CBC",
			         to[i]);
			*flags |= P11MAIL_SMIME_CBC;
		}
		if (!sk_X509_push(out, c->cert)) {
			st = P11MAIL_ERR_NOMEM;
			break;
		}
	}
	X509_STORE_free(anchors);
	if (st == P11MAIL_OK && missing > 0)
		st = P11MAIL_ERR_NO_CERT;
	return st;
}

/* Without explicit recipients, To and Cc of the message name them. */
static enum p11mail_status collect_from_headers(p11mail_smime *smime,
                                                GMimeMessage *msg,
                                                STACK_OF(X509) * out,
                                                unsigned int *flags)
{
	char *list = mime_recipients(msg), *save = NULL, *addr;
	const char **to = NULL;
	size_t n = 0;
	enum p11mail_status st = P11MAIL_ERR_NOMEM;

	if (list == NULL)
		goto out;
	to = calloc(strlen(list) / 2 + 1, sizeof(*to));
	if (to == NULL)
		goto out;
	for (addr = strtok_r(list, ",", &save); addr != NULL;
	     addr = strtok_r(NULL, ",", &save))
		to[n++] = addr;
	if (n == 0) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "the message names no recipient (To or Cc)");
		st = P11MAIL_ERR_NO_CERT;
		goto out;
	}
	st = collect_recipients(smime, to, n, out, flags);

out:
	free(to);
	free(list);
	return st;
}

/* The sender's own copy: its certificate must allow encryption too. */
static enum p11mail_status add_self(p11mail_smime *smime, STACK_OF(X509) * out)
{
	char problem[256];

	if (smime->cert == NULL) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "no certificate of the sender was given: the sent "
		         "copy would be unreadable");
		return P11MAIL_ERR_NO_CERT;
	}
	if (certcheck_policy(smime->cert, CERTCHECK_ENCRYPT, problem,
	                     sizeof(problem)) != P11MAIL_OK) {
		p11m_log(P11MAIL_LOG_ERROR, "own certificate: %s", problem);
		return P11MAIL_ERR_NO_CERT;
	}
	/* writing to oneself: one RecipientInfo is enough */
	for (int i = 0; i < sk_X509_num(out); i++)
		if (X509_cmp(sk_X509_value(out, i), smime->cert) == 0)
			return P11MAIL_OK;
	return sk_X509_push(out, smime->cert) ? P11MAIL_OK : P11MAIL_ERR_NOMEM;
}

static int set_oaep(p11mail_smime *smime, CMS_RecipientInfo *ri)
{
	EVP_PKEY_CTX *pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);

	return pctx != NULL &&
	       EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) > 0 &&
	       EVP_PKEY_CTX_set_rsa_oaep_md_name(pctx, "SHA256", NULL) > 0 &&
	       EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA256", NULL) > 0;
}

/*
 * OpenSSL would pick the X9.63 KDF with SHA-1; RFC 8551 asks for the
 * SHA-256 variant (dhSinglePass-stdDH-sha256kdf-scheme).
 */
static int set_ecdh_kdf(CMS_RecipientInfo *ri)
{
	EVP_PKEY_CTX *pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);

	/* only the hash: OpenSSL refuses a KDF type chosen in advance */
	return pctx != NULL &&
	       EVP_PKEY_CTX_set_ecdh_kdf_md(pctx, EVP_sha256()) > 0;
}

static int add_recipient(p11mail_smime *smime, CMS_ContentInfo *cms, X509 *x,
                         unsigned int flags)
{
	int oaep = (flags & P11MAIL_SMIME_OAEP) &&
	           EVP_PKEY_get_base_id(X509_get0_pubkey(x)) == EVP_PKEY_RSA;
	CMS_RecipientInfo *ri;

	ri = CMS_add1_recipient_cert(cms, x, oaep ? CMS_KEY_PARAM : 0);
	if (ri == NULL)
		return 0;
	if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_AGREE)
		return set_ecdh_kdf(ri);
	return !oaep || set_oaep(smime, ri);
}

/*
 * Encrypts the file fd into the file der_fd, streaming through
 * i2d_CMS_bio_stream: the content is enciphered chunk by chunk into
 * indefinite-length BER and the GCM tag is written at the end.
 */
static enum p11mail_status encrypt_stream(p11mail_smime *smime,
                                          unsigned int flags,
                                          STACK_OF(X509) * recips, int fd,
                                          int der_fd)
{
	const char *name =
	        flags & P11MAIL_SMIME_CBC ? "AES-256-CBC" : "AES-256-GCM";
	EVP_CIPHER *cipher =
	        EVP_CIPHER_fetch(smime->libctx, name, smime->propq);
	unsigned int cflags = CMS_BINARY | CMS_PARTIAL | CMS_STREAM;
	CMS_ContentInfo *cms = NULL;
	BIO *data = NULL, *der = NULL;
	enum p11mail_status st = P11MAIL_ERR_CRYPTO;

	if (cipher == NULL)
		goto out;
	cms = CMS_encrypt_ex(NULL, NULL, cipher, cflags, smime->libctx,
	                     smime->propq);
	if (cms == NULL)
		goto out;
	for (int i = 0; i < sk_X509_num(recips); i++)
		if (!add_recipient(smime, cms, sk_X509_value(recips, i), flags))
			goto out;
	data = smime_fd_bio(fd);
	der = BIO_new_fd(der_fd, BIO_NOCLOSE);
	if (data == NULL || der == NULL ||
	    !i2d_CMS_bio_stream(der, cms, data, (int)cflags))
		goto out;
	st = BIO_flush(der) == 1 ? P11MAIL_OK : P11MAIL_ERR_IO;

out:
	if (st != P11MAIL_OK)
		p11m_log(P11MAIL_LOG_ERROR, "encryption failed");
	smime_log_openssl("encrypt");
	BIO_free(der);
	BIO_free(data);
	CMS_ContentInfo_free(cms);
	EVP_CIPHER_free(cipher);
	return st;
}

/* Writes the entity to encrypt into fd: signed first when asked, CRLF. */
static enum p11mail_status inner_entity(p11mail_smime *smime,
                                        unsigned int flags, GMimeMessage *msg,
                                        int fd)
{
	GMimeObject *entity = g_mime_message_get_mime_part(msg);
	BIO *bio;
	enum p11mail_status st;

	if (!(flags & P11MAIL_SMIME_SIGN)) {
		mime_prepare_for_signing(entity);
		return mime_to_crlf_fd(entity, fd);
	}
	bio = smime_out_bio(fd);
	if (bio == NULL)
		return P11MAIL_ERR_NOMEM;
	st = smime_sign_entity(smime, flags, entity, bio);
	if (st == P11MAIL_OK && BIO_flush(bio) != 1)
		st = P11MAIL_ERR_IO;
	BIO_free_all(bio);
	return st;
}

/* Every check before anything is encrypted: all or nothing. */
static enum p11mail_status recipients(p11mail_smime *smime,
                                      const char *const *to, size_t to_count,
                                      GMimeMessage *msg, STACK_OF(X509) * out,
                                      unsigned int *flags)
{
	enum p11mail_status st;

	if (to_count > 0)
		st = collect_recipients(smime, to, to_count, out, flags);
	else
		st = collect_from_headers(smime, msg, out, flags);
	if (st == P11MAIL_OK)
		st = add_self(smime, out);
	return st;
}

/* Writes msg encrypted to recips on out: its own headers, then the CMS. */
static enum p11mail_status encrypt_message(p11mail_smime *smime,
                                           unsigned int flags,
                                           STACK_OF(X509) * recips,
                                           GMimeMessage *msg, BIO *out)
{
	int fd = smime_tmpfile(), der_fd = smime_tmpfile();
	enum p11mail_status st = P11MAIL_ERR_IO;

	if (fd < 0 || der_fd < 0)
		goto out;
	st = inner_entity(smime, flags, msg, fd);
	if (st == P11MAIL_OK)
		st = encrypt_stream(smime, flags, recips, fd, der_fd);
	/* the plaintext is no longer needed: drop it before writing */
	if (fd >= 0 && ftruncate(fd, 0) != 0 && st == P11MAIL_OK)
		st = P11MAIL_ERR_IO;
	if (st == P11MAIL_OK)
		st = mime_write_outer_headers(msg, out);
	if (st == P11MAIL_OK && BIO_puts(out, "MIME-Version: 1.0\r\n") <= 0)
		st = P11MAIL_ERR_IO;
	if (st == P11MAIL_OK)
		st = smime_write_pkcs7_mime_fd(flags & P11MAIL_SMIME_CBC
		                                       ? "enveloped-data"
		                                       : "authEnveloped-data",
		                               der_fd, out);

out:
	if (fd >= 0)
		close(fd);
	if (der_fd >= 0)
		close(der_fd);
	return st;
}

enum p11mail_status
p11mail_smime_encrypt(p11mail_smime *smime, unsigned int flags,
                      const char *const *to, size_t to_count,
                      const unsigned char *in, size_t in_len,
                      unsigned char **out, size_t *out_len)
{
	GMimeMessage *msg = NULL;
	STACK_OF(X509) *recips = sk_X509_new_null();
	BIO *bio = NULL;
	enum p11mail_status st;

	*out = NULL;
	*out_len = 0;
	if (recips == NULL)
		return P11MAIL_ERR_NOMEM;
	st = mime_parse(in, in_len, &smime->limits, &msg);
	if (st == P11MAIL_OK)
		st = recipients(smime, to, to_count, msg, recips, &flags);
	if (st == P11MAIL_OK && (bio = BIO_new(BIO_s_mem())) == NULL)
		st = P11MAIL_ERR_NOMEM;
	if (st == P11MAIL_OK)
		st = encrypt_message(smime, flags, recips, msg, bio);
	if (st == P11MAIL_OK)
		st = smime_bio_take(bio, out, out_len);

	BIO_free(bio);
	sk_X509_free(recips);
	if (msg != NULL)
		g_object_unref(msg);
	return st;
}

enum p11mail_status p11mail_smime_encrypt_fd(p11mail_smime *smime,
                                             unsigned int flags,
                                             const char *const *to,
                                             size_t to_count, int in_fd,
                                             int out_fd)
{
	GMimeMessage *msg = NULL;
	STACK_OF(X509) *recips = sk_X509_new_null();
	BIO *bio = NULL;
	enum p11mail_status st;

	if (recips == NULL)
		return P11MAIL_ERR_NOMEM;
	st = mime_parse_fd(in_fd, smime->limits.max_file_size, &smime->limits,
	                   &msg);
	if (st == P11MAIL_OK)
		st = recipients(smime, to, to_count, msg, recips, &flags);
	if (st == P11MAIL_OK && (bio = smime_out_bio(out_fd)) == NULL)
		st = P11MAIL_ERR_NOMEM;
	if (st == P11MAIL_OK)
		st = encrypt_message(smime, flags, recips, msg, bio);
	if (st == P11MAIL_OK && BIO_flush(bio) != 1)
		st = P11MAIL_ERR_IO;

	BIO_free_all(bio);
	sk_X509_free(recips);
	if (msg != NULL)
		g_object_unref(msg);
	return st;
}
