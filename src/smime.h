/*
 * Inside the S/MIME engine of libp11mail: the context shared by signing,
 * verification, encryption and decryption, and the helpers those four
 * files share.  Every CMS object lives in the context's OSSL_LIB_CTX;
 * nothing here touches OpenSSL's default context.
 */
#ifndef P11MAIL_SMIME_H
#define P11MAIL_SMIME_H

#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "libctx.h"
#include "p11mail.h"

/* Candidate certificates for one address, as given or looked up. */
struct smime_candidate {
	char *address; /* lower-case addr-spec */
	X509 *cert;
	int no_gcm; /* its SMIMECapabilities list no AES-GCM */
};

struct p11mail_smime {
	p11m_libctx *lc;      /* default provider plus the token provider */
	OSSL_LIB_CTX *libctx; /* borrowed from lc */
	const char *propq;

	struct p11mail_cert_source source;
	int have_source;
	int anchors_loaded;

	STACK_OF(X509) * anchors;
	struct smime_candidate *candidates;
	size_t candidate_count;

	EVP_PKEY *key;          /* the identity's private key */
	X509 *cert;             /* its certificate */
	STACK_OF(X509) * chain; /* intermediates sent along */

	struct p11mail_smime_limits limits;
	int require_aead; /* refuse EnvelopedData (CBC) before decrypting */
};

/* Reads one certificate (PEM or DER) from memory into the context. */
enum p11mail_status smime_cert_from_buf(p11mail_smime *smime,
                                        const unsigned char *buf, size_t len,
                                        X509 **out);

/*
 * Reads every certificate of a PEM file (or the one of a DER file) into
 * a new stack owned by the caller.
 */
enum p11mail_status smime_certs_from_file(p11mail_smime *smime,
                                          const char *path,
                                          STACK_OF(X509) * *out);

/* Makes sure the source has delivered the anchors (once). */
enum p11mail_status smime_load_anchors(p11mail_smime *smime);

/*
 * A new X509_STORE holding the anchors, with partial chains allowed so
 * that an individually trusted certificate is an anchor of its own.
 */
enum p11mail_status smime_anchor_store(p11mail_smime *smime, X509_STORE **out);

/* Writes in (DER) as base64 lines of 76 characters ending in CRLF. */
enum p11mail_status smime_base64_crlf(const unsigned char *in, size_t len,
                                      BIO *out);

/* Encodes a CMS object to DER in a new buffer (OPENSSL_free it). */
enum p11mail_status smime_cms_der(CMS_ContentInfo *cms, unsigned char **out,
                                  size_t *out_len);

/*
 * Parses DER into a CMS object of the context; rejects input over the
 * size limit or with trailing bytes.
 */
enum p11mail_status smime_cms_parse(p11mail_smime *smime,
                                    const unsigned char *der, size_t len,
                                    CMS_ContentInfo **out);

/*
 * True when input starts like a DER or BER SEQUENCE (bare CMS, as gpgsm
 * and cmsutil write it) rather than a MIME message.
 */
int smime_looks_der(const unsigned char *in, size_t len);

/* Logs OpenSSL's error queue at debug level and clears it. */
void smime_log_openssl(const char *what);

/*
 * Opens a new private (0600) temporary file in $TMPDIR or /tmp that has
 * no name left, so nothing remains after close or a crash.  Returns the
 * descriptor (close() it) or -1 after logging.
 */
int smime_tmpfile(void);

/* Copies the whole file fd, from its start, to out; returns a status. */
enum p11mail_status smime_copy_fd(int fd, BIO *out);

/* Writes the whole file fd as base64 lines ending in CRLF to out. */
enum p11mail_status smime_base64_fd(int fd, BIO *out);

/* A buffered BIO writing to fd at its offset, not closing it, or NULL. */
BIO *smime_out_bio(int fd);

/* A BIO reading fd from its start, not closing it (BIO_free), or NULL. */
BIO *smime_fd_bio(int fd);

/*
 * Signs the file fd (canonical entity bytes) streaming; the DER of a
 * detached SignedData, or the BER of an opaque one holding the content,
 * goes to the file der_fd.
 */
enum p11mail_status smime_sign_stream(p11mail_smime *smime, unsigned int flags,
                                      int fd, int der_fd);

#endif /* P11MAIL_SMIME_H */
