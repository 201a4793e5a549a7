/*
 * Decryption with the identity's key (on the token): only an encrypted
 * entity at the message root, or inside a single wrapper, is decrypted;
 * every cryptographic failure is the same generic error; the plaintext is
 * released only after all of it decrypted and, for GCM, the tag checked.
 */
#include "config.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/objects.h>

#include "common.h"
#include "mime.h"
#include "smime-mime.h"
#include "smime.h"

/* Reads one TLV header; 0 when malformed or longer than what is left. */
static int tlv(const unsigned char **p, long left, int *tag, int *cls,
               long *len)
{
	int r = ASN1_get_object(p, len, tag, cls, left);

	return !(r & 0x80) && r != 0x21; /* no error, definite length */
}

/* Steps into a constructed value: *p at its contents, *left its length. */
static int enter(const unsigned char **p, long *left, int want_tag,
                 int want_cls)
{
	int tag, cls;
	long len;

	if (!tlv(p, *left, &tag, &cls, &len) || tag != want_tag ||
	    cls != want_cls)
		return 0;
	*left = len;
	return 1;
}

/* Skips one value whatever it is. */
static int skip(const unsigned char **p, long *left)
{
	const unsigned char *start = *p;
	int tag, cls;
	long len;

	if (!tlv(p, *left, &tag, &cls, &len))
		return 0;
	*p += len;
	*left -= (long)(*p - start);
	return *left >= 0;
}

/*
 * RFC 5084 lets the sender pick the nonce and tag sizes; a short tag makes
 * forgery cheap, so anything but a 12-byte nonce and a tag of 12 to 16
 * bytes is refused before decryption.
 */
static int gcm_params_ok(const unsigned char *der, long len)
{
	const unsigned char *p = der, *q, *nonce;
	long left = len, inner, alg, mac_len;
	int tag, cls;
	long icv = 12, n;

	if (!enter(&p, &left, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL) ||
	    !skip(&p, &left) /* contentType */ ||
	    !enter(&p, &left, 0, V_ASN1_CONTEXT_SPECIFIC) ||
	    !enter(&p, &left, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL))
		return 0;
	inner = left;
	if (!skip(&p, &inner)) /* version */
		return 0;
	q = p;
	if (!tlv(&q, inner, &tag, &cls, &n))
		return 0;
	if (cls == V_ASN1_CONTEXT_SPECIFIC && tag == 0 && !skip(&p, &inner))
		return 0;      /* originatorInfo */
	if (!skip(&p, &inner)) /* recipientInfos */
		return 0;

	/* authEncryptedContentInfo */
	q = p;
	alg = inner;
	if (!enter(&q, &alg, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL) ||
	    !skip(&q, &alg) ||
	    !enter(&q, &alg, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL) ||
	    !skip(&q, &alg) /* algorithm OID */ ||
	    !enter(&q, &alg, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL))
		return 0;
	nonce = q;
	if (!tlv(&q, alg, &tag, &cls, &n) || tag != V_ASN1_OCTET_STRING ||
	    n != 12)
		return 0;
	q += n;
	alg -= (long)(q - nonce);
	if (alg > 0) {
		ASN1_INTEGER *ai = d2i_ASN1_INTEGER(NULL, &q, alg);

		icv = ai != NULL ? ASN1_INTEGER_get(ai) : -1;
		ASN1_INTEGER_free(ai);
	}
	if (icv < 12 || icv > 16 || !skip(&p, &inner))
		return 0;

	/* authAttrs [1] OPTIONAL, then the mac */
	q = p;
	if (!tlv(&q, inner, &tag, &cls, &n))
		return 0;
	if (cls == V_ASN1_CONTEXT_SPECIFIC && tag == 1 && !skip(&p, &inner))
		return 0;
	if (!tlv(&p, inner, &tag, &cls, &mac_len) || tag != V_ASN1_OCTET_STRING)
		return 0;
	return mac_len == icv;
}

/* Checks the GCM sizes on a DER re-encoding (the input may be BER). */
static int gcm_sizes_ok(CMS_ContentInfo *cms)
{
	unsigned char *der = NULL;
	size_t len = 0;
	int ok;

	if (smime_cms_der(cms, &der, &len) != P11MAIL_OK)
		return 0;
	ok = gcm_params_ok(der, (long)len);
	OPENSSL_free(der);
	return ok;
}

/* The encrypted entity: the root, or the only part of a wrapper. */
static GMimeObject *encrypted_root(GMimeMessage *msg)
{
	GMimeObject *root = g_mime_message_get_mime_part(msg);
	const char *type;

	if (GMIME_IS_MULTIPART(root) &&
	    g_mime_multipart_get_count(GMIME_MULTIPART(root)) == 1)
		root = g_mime_multipart_get_part(GMIME_MULTIPART(root), 0);
	if (!mime_is_pkcs7_mime(root, &type))
		return NULL;
	if (*type != '\0' && strcasecmp(type, "enveloped-data") != 0 &&
	    strcasecmp(type, "authEnveloped-data") != 0)
		return NULL;
	return root;
}

static enum p11mail_status encrypted_der(p11mail_smime *smime,
                                         GMimeMessage *msg, unsigned char **der,
                                         size_t *len)
{
	GMimeObject *root = encrypted_root(msg);

	if (root == NULL) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "the message is not encrypted at its root; only an "
		         "encrypted message (or its single part) is "
		         "decrypted");
		return P11MAIL_ERR_FORMAT;
	}
	return mime_part_content(root, smime->limits.max_size, der, len);
}

void p11mail_smime_set_require_aead(p11mail_smime *smime, int on)
{
	smime->require_aead = on != 0;
}

/*
 * The encrypted content types decrypted, checked before any key operation:
 * a CBC message refused by policy never reaches the token, so its
 * ciphertext cannot be used to probe the key.
 */
static enum p11mail_status check_encrypted_type(const p11mail_smime *smime,
                                                int nid)
{
	if (nid != NID_pkcs7_enveloped &&
	    nid != NID_id_smime_ct_authEnvelopedData) {
		p11m_log(P11MAIL_LOG_ERROR, "the message is not encrypted");
		return P11MAIL_ERR_FORMAT;
	}
	if (nid == NID_pkcs7_enveloped && smime->require_aead) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "the message uses unauthenticated encryption "
		         "(AES-CBC) and authenticated encryption is required; "
		         "it was not decrypted");
		return P11MAIL_ERR_FORMAT;
	}
	return P11MAIL_OK;
}

/* Decrypts DER into a new buffer; one generic error for every failure. */
static enum p11mail_status decrypt_der(p11mail_smime *smime,
                                       const unsigned char *der, size_t len,
                                       unsigned char **out, size_t *out_len,
                                       int *authenticated)
{
	CMS_ContentInfo *cms = NULL;
	BIO *plain = BIO_new(BIO_s_secmem());
	enum p11mail_status st;
	int nid;

	st = smime_cms_parse(smime, der, len, &cms);
	if (st != P11MAIL_OK || plain == NULL)
		goto out;
	nid = OBJ_obj2nid(CMS_get0_type(cms));
	st = check_encrypted_type(smime, nid);
	if (st != P11MAIL_OK)
		goto out;
	st = P11MAIL_ERR_DECRYPT;
	if (nid == NID_id_smime_ct_authEnvelopedData && !gcm_sizes_ok(cms))
		goto out;
	if (!CMS_decrypt(cms, smime->key, smime->cert, NULL, plain, CMS_BINARY))
		goto out;
	st = smime_bio_take(plain, out, out_len);
	*authenticated = nid == NID_id_smime_ct_authEnvelopedData;

out:
	smime_log_openssl("decrypt");
	BIO_free(plain);
	CMS_ContentInfo_free(cms);
	return st;
}

/* Puts the outer header fields in front of the decrypted entity. */
static enum p11mail_status assemble(GMimeMessage *msg,
                                    const unsigned char *entity, size_t len,
                                    unsigned char **out, size_t *out_len)
{
	BIO *bio = BIO_new(BIO_s_secmem());
	enum p11mail_status st;

	if (bio == NULL)
		return P11MAIL_ERR_NOMEM;
	st = mime_write_outer_headers(msg, bio);
	if (st == P11MAIL_OK && (BIO_puts(bio, "MIME-Version: 1.0\r\n") <= 0 ||
	                         BIO_write(bio, entity, (int)len) != (int)len))
		st = P11MAIL_ERR_IO;
	if (st == P11MAIL_OK)
		st = smime_bio_take(bio, out, out_len);
	BIO_free(bio);
	return st;
}

enum p11mail_status p11mail_smime_decrypt(p11mail_smime *smime,
                                          const unsigned char *in,
                                          size_t in_len, unsigned char **out,
                                          size_t *out_len, int *authenticated)
{
	GMimeMessage *msg = NULL;
	unsigned char *der = NULL, *plain = NULL;
	size_t der_len = 0, plain_len = 0;
	int auth = 0;
	enum p11mail_status st;

	*out = NULL;
	*out_len = 0;
	*authenticated = 0;
	if (smime->key == NULL || smime->cert == NULL) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "decryption needs the key and its certificate");
		return P11MAIL_ERR_NO_KEY;
	}
	if (smime_looks_der(in, in_len)) {
		st = decrypt_der(smime, in, in_len, out, out_len, &auth);
		goto out;
	}
	st = mime_parse(in, in_len, &smime->limits, &msg);
	if (st == P11MAIL_OK)
		st = encrypted_der(smime, msg, &der, &der_len);
	if (st == P11MAIL_OK)
		st = decrypt_der(smime, der, der_len, &plain, &plain_len,
		                 &auth);
	if (st == P11MAIL_OK)
		st = assemble(msg, plain, plain_len, out, out_len);

out:
	if (st == P11MAIL_OK)
		*authenticated = auth;
	p11m_secure_free(plain, plain_len);
	free(der);
	if (msg != NULL)
		g_object_unref(msg);
	return st;
}

/* Decodes the encrypted entity's content into the file fd. */
static enum p11mail_status encrypted_der_fd(GMimeMessage *msg, int fd)
{
	GMimeObject *root = encrypted_root(msg);
	GMimeDataWrapper *content;
	GMimeStream *fs;
	enum p11mail_status st = P11MAIL_ERR_IO;
	int copy;

	if (root == NULL || !GMIME_IS_PART(root) ||
	    (content = g_mime_part_get_content(GMIME_PART(root))) == NULL) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "the message is not encrypted at its root; only an "
		         "encrypted message (or its single part) is "
		         "decrypted");
		return P11MAIL_ERR_FORMAT;
	}
	copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (copy < 0)
		return P11MAIL_ERR_IO;
	/* Written straight through, without the fsync of a file stream. */
	fs = g_mime_stream_pipe_new(copy);
	if (g_mime_data_wrapper_write_to_stream(content, fs) >= 0 &&
	    g_mime_stream_flush(fs) == 0)
		st = P11MAIL_OK;
	g_object_unref(fs);
	return st;
}

/*
 * Parses the CMS in the file der_fd and decrypts it into the file
 * plain_fd; on any failure plain_fd is emptied, so that no unauthenticated
 * plaintext survives.  One generic error for every cryptographic failure.
 */
static enum p11mail_status decrypt_file(p11mail_smime *smime, int der_fd,
                                        int plain_fd, int *authenticated)
{
	CMS_ContentInfo *cms =
	        CMS_ContentInfo_new_ex(smime->libctx, smime->propq);
	BIO *der = smime_fd_bio(der_fd);
	BIO *plain = BIO_new_fd(plain_fd, BIO_NOCLOSE);
	enum p11mail_status st = P11MAIL_ERR_NOMEM;
	int nid;

	if (cms == NULL || der == NULL || plain == NULL)
		goto out;
	st = P11MAIL_ERR_FORMAT;
	if (d2i_CMS_bio(der, &cms) == NULL) {
		p11m_log(P11MAIL_LOG_ERROR, "the input is not CMS");
		goto out;
	}
	nid = OBJ_obj2nid(CMS_get0_type(cms));
	st = check_encrypted_type(smime, nid);
	if (st != P11MAIL_OK)
		goto out;
	st = P11MAIL_ERR_DECRYPT;
	if (nid == NID_id_smime_ct_authEnvelopedData && !gcm_sizes_ok(cms))
		goto out;
	if (!CMS_decrypt(cms, smime->key, smime->cert, NULL, plain,
	                 CMS_BINARY) ||
	    BIO_flush(plain) != 1)
		goto out;
	*authenticated = nid == NID_id_smime_ct_authEnvelopedData;
	st = P11MAIL_OK;

out:
	if (st != P11MAIL_OK && ftruncate(plain_fd, 0) != 0)
		st = P11MAIL_ERR_IO;
	smime_log_openssl("decrypt");
	BIO_free(plain);
	BIO_free(der);
	CMS_ContentInfo_free(cms);
	return st;
}

/* True when the file fd starts like bare CMS rather than a message. */
static int fd_looks_der(int fd)
{
	unsigned char head[2];
	struct stat sb;

	if (fstat(fd, &sb) != 0 || pread(fd, head, 2, 0) != 2)
		return 0;
	return smime_looks_der(head, (size_t)sb.st_size);
}

/* A bare DER input is held to the same size bound as a MIME message. */
static enum p11mail_status open_der_fd(int in_fd, size_t max, int *out_fd)
{
	struct stat sb;
	int fd;

	*out_fd = -1;
	if (fstat(in_fd, &sb) != 0)
		return P11MAIL_ERR_IO;
	if ((uintmax_t)sb.st_size > max) {
		p11m_log(P11MAIL_LOG_ERROR, "message larger than %zu bytes",
		         max);
		return P11MAIL_ERR_LIMIT;
	}
	fd = fcntl(in_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return P11MAIL_ERR_IO;
	*out_fd = fd;
	return P11MAIL_OK;
}

/* Writes the outer fields (for a message) and the plaintext to out. */
static enum p11mail_status write_plain(GMimeMessage *msg, int plain_fd,
                                       BIO *out)
{
	enum p11mail_status st = P11MAIL_OK;

	if (msg != NULL) {
		st = mime_write_outer_headers(msg, out);
		if (st == P11MAIL_OK &&
		    BIO_puts(out, "MIME-Version: 1.0\r\n") <= 0)
			st = P11MAIL_ERR_IO;
	}
	if (st == P11MAIL_OK)
		st = smime_copy_fd(plain_fd, out);
	if (st == P11MAIL_OK && BIO_flush(out) != 1)
		st = P11MAIL_ERR_IO;
	return st;
}

/* The CMS of in_fd (bare DER, or the encrypted root of a message). */
static enum p11mail_status input_der(p11mail_smime *smime, int in_fd,
                                     GMimeMessage **msg, int *der_fd)
{
	enum p11mail_status st;

	if (fd_looks_der(in_fd))
		return open_der_fd(in_fd, smime->limits.max_file_size, der_fd);
	st = mime_parse_fd(in_fd, smime->limits.max_file_size, &smime->limits,
	                   msg);
	if (st == P11MAIL_OK && (*der_fd = smime_tmpfile()) < 0)
		st = P11MAIL_ERR_IO;
	if (st == P11MAIL_OK)
		st = encrypted_der_fd(*msg, *der_fd);
	return st;
}

enum p11mail_status p11mail_smime_check_aead_fd(p11mail_smime *smime, int in_fd)
{
	GMimeMessage *msg = NULL;
	CMS_ContentInfo *cms = NULL;
	BIO *der = NULL;
	int der_fd = -1, require = smime->require_aead;
	enum p11mail_status st;

	st = input_der(smime, in_fd, &msg, &der_fd);
	if (st != P11MAIL_OK)
		goto out;
	st = P11MAIL_ERR_NOMEM;
	cms = CMS_ContentInfo_new_ex(smime->libctx, smime->propq);
	if (cms == NULL || (der = smime_fd_bio(der_fd)) == NULL)
		goto out;
	st = P11MAIL_ERR_FORMAT;
	if (d2i_CMS_bio(der, &cms) == NULL) {
		p11m_log(P11MAIL_LOG_ERROR, "the input is not CMS");
		goto out;
	}
	smime->require_aead = 1;
	st = check_encrypted_type(smime, OBJ_obj2nid(CMS_get0_type(cms)));
	smime->require_aead = require;

out:
	smime_log_openssl("check");
	BIO_free(der);
	CMS_ContentInfo_free(cms);
	if (der_fd >= 0)
		close(der_fd);
	if (msg != NULL)
		g_object_unref(msg);
	return st;
}

enum p11mail_status p11mail_smime_decrypt_fd(p11mail_smime *smime, int in_fd,
                                             int out_fd, int *authenticated)
{
	GMimeMessage *msg = NULL;
	BIO *out = NULL;
	int der_fd = -1, plain_fd = -1, auth = 0;
	enum p11mail_status st;

	*authenticated = 0;
	if (smime->key == NULL || smime->cert == NULL) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "decryption needs the key and its certificate");
		return P11MAIL_ERR_NO_KEY;
	}
	st = P11MAIL_ERR_IO;
	plain_fd = smime_tmpfile();
	if (plain_fd < 0)
		goto out;
	st = input_der(smime, in_fd, &msg, &der_fd);
	if (st == P11MAIL_OK)
		st = decrypt_file(smime, der_fd, plain_fd, &auth);
	if (st == P11MAIL_OK && (out = smime_out_bio(out_fd)) == NULL)
		st = P11MAIL_ERR_NOMEM;
	if (st == P11MAIL_OK)
		st = write_plain(msg, plain_fd, out);
	if (st == P11MAIL_OK)
		*authenticated = auth;

out:
	BIO_free_all(out);
	if (plain_fd >= 0) {
		/* the plaintext lives on only in out_fd */
		if (ftruncate(plain_fd, 0) != 0 && st == P11MAIL_OK)
			st = P11MAIL_ERR_IO;
		close(plain_fd);
	}
	if (der_fd >= 0)
		close(der_fd);
	if (msg != NULL)
		g_object_unref(msg);
	return st;
}
