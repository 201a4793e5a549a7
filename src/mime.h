/*
 * MIME for S/MIME, through GMime 3: parsing within bounds, preparing an
 * entity for signing (7-bit transfer encodings, CRLF), and the pieces of
 * a message the S/MIME layer needs (outer headers, sender, content).
 */
#ifndef P11MAIL_MIME_H
#define P11MAIL_MIME_H

#include <gmime/gmime.h>
#include <openssl/bio.h>

#include "p11mail.h"

/* Initializes GMime once per process; safe to call from every entry. */
void mime_init(void);

/*
 * Parses a message within the limits (size, nesting depth, part count,
 * header field size).  Returns P11MAIL_ERR_LIMIT naming the bound that was
 * exceeded through the log, or P11MAIL_ERR_FORMAT.  g_object_unref *out.
 */
enum p11mail_status mime_parse(const unsigned char *buf, size_t len,
                               const struct p11mail_smime_limits *limits,
                               GMimeMessage **out);

/*
 * The same from a regular file (fd, read from its start; it must stay open
 * and unchanged while the message is used): part contents stay in the
 * file.  max_size replaces limits->max_size.
 */
enum p11mail_status mime_parse_fd(int fd, size_t max_size,
                                  const struct p11mail_smime_limits *limits,
                                  GMimeMessage **out);

/*
 * Re-encodes every leaf of entity so that it is 7-bit clean: text as
 * quoted-printable (line structure kept, so that CRLF is canonical),
 * anything else as base64.
 */
void mime_prepare_for_signing(GMimeObject *entity);

/* Serializes obj with CRLF line ends into a new buffer (free()). */
enum p11mail_status mime_to_crlf(GMimeObject *obj, unsigned char **out,
                                 size_t *out_len);

/*
 * Writes obj with CRLF line ends to fd at its current offset, streaming.
 * Returns P11MAIL_OK or P11MAIL_ERR_IO.
 */
enum p11mail_status mime_to_crlf_fd(GMimeObject *obj, int fd);

/*
 * Writes the message's own header fields (not MIME-Version or Content-*)
 * with CRLF line ends to out.
 */
enum p11mail_status mime_write_outer_headers(GMimeMessage *msg, BIO *out);

/*
 * The sender's addr-spec: Sender when present, else From, in a new buffer
 * (free()); *out stays NULL when there is neither.  Several From
 * addresses or fields are P11MAIL_ERR_FORMAT.
 */
enum p11mail_status mime_sender(GMimeMessage *msg, char **out);

/* The addr-specs of To and Cc, comma-separated (free()); "" when none. */
char *mime_recipients(GMimeMessage *msg);

/* True for multipart/signed with a PKCS#7 signature protocol. */
int mime_is_multipart_signed(GMimeObject *obj);

/*
 * True for application/pkcs7-mime or application/x-pkcs7-mime; the
 * smime-type parameter (or "") goes to *smime_type, borrowed.
 */
int mime_is_pkcs7_mime(GMimeObject *obj, const char **smime_type);

/* True for application/pkcs7-signature or application/x-pkcs7-signature. */
int mime_is_pkcs7_signature(GMimeObject *obj);

/*
 * The decoded content of a leaf part, at most max bytes, in a new buffer
 * (free()).  Larger content is P11MAIL_ERR_LIMIT.
 */
enum p11mail_status mime_part_content(GMimeObject *obj, size_t max,
                                      unsigned char **out, size_t *out_len);

/* Converts bare LF to CRLF; a new buffer (free()). */
enum p11mail_status mime_crlf(const unsigned char *in, size_t len,
                              unsigned char **out, size_t *out_len);

#endif /* P11MAIL_MIME_H */
