/*
 * The joints between the S/MIME engine and MIME: writing signed and
 * encrypted entities, shared by signing, encryption and decryption.
 */
#ifndef P11MAIL_SMIME_MIME_H
#define P11MAIL_SMIME_MIME_H

#include <gmime/gmime.h>
#include <openssl/bio.h>

#include "smime.h"

/*
 * Canonicalizes entity (7-bit, CRLF) and writes it signed to out: a
 * multipart/signed entity, or application/pkcs7-mime signed-data with
 * P11MAIL_SMIME_OPAQUE.  Content headers and body only.
 */
enum p11mail_status smime_sign_entity(p11mail_smime *smime, unsigned int flags,
                                      GMimeObject *entity, BIO *out);

/* Writes an application/pkcs7-mime entity of the given smime-type. */
enum p11mail_status smime_write_pkcs7_mime(const char *smime_type,
                                           const unsigned char *der,
                                           size_t der_len, BIO *out);

/* The same with the DER (or BER) read from the file der_fd. */
enum p11mail_status smime_write_pkcs7_mime_fd(const char *smime_type,
                                              int der_fd, BIO *out);

/* A fresh random MIME boundary of the form "p11mail-<24 hex digits>". */
enum p11mail_status smime_boundary(p11mail_smime *smime, char out[40]);

/* Copies a memory BIO's bytes into a new buffer (free()), NUL-ended. */
enum p11mail_status smime_bio_take(BIO *bio, unsigned char **out,
                                   size_t *out_len);

#endif /* P11MAIL_SMIME_MIME_H */
