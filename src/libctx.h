/*
 * libp11mail's private OpenSSL library context: the default provider plus
 * the p11mail provider registered as a built-in, so token keys named by
 * pkcs11: URIs work with every OpenSSL API called with this context.  The
 * process-wide default context is never touched.
 */
#ifndef P11MAIL_LIBCTX_H
#define P11MAIL_LIBCTX_H

#include <openssl/evp.h>
#include <openssl/types.h>
#include <openssl/x509.h>

#include "p11mail.h"
#include "token.h"

typedef struct p11m_libctx p11m_libctx;

/*
 * Creates a library context whose provider uses the token options (copied;
 * pin_fn and pin_arg must outlive the context).  Free with
 * p11m_libctx_free.  Returns P11MAIL_OK or P11MAIL_ERR_NOMEM/_CRYPTO.
 */
enum p11mail_status p11m_libctx_new(const struct tok_options *opts,
                                    p11m_libctx **out);

/*
 * Releases the context, its provider and the token core (finalizing the
 * PKCS#11 modules).  Keys and certificates loaded from it must be freed
 * first.  Accepts NULL.
 */
void p11m_libctx_free(p11m_libctx *lc);

/* The OSSL_LIB_CTX to pass to every *_ex OpenSSL call; borrowed. */
OSSL_LIB_CTX *p11m_libctx_get(const p11m_libctx *lc);

/*
 * Loads the private key a pkcs11: URI names, logging in as needed.  The
 * EVP_PKEY belongs to the caller (EVP_PKEY_free).  A failure's reason is
 * passed to the log callback; returns P11MAIL_ERR_NO_KEY, _AMBIGUOUS,
 * _PIN_INCORRECT, _MODULE... as the token core reported it.
 */
enum p11mail_status p11m_libctx_load_key(p11m_libctx *lc, const char *uri,
                                         EVP_PKEY **out);

/*
 * Loads the certificate a pkcs11: URI names, or the one paired on the
 * token with the private key it names.  The X509 belongs to the caller.
 * Returns P11MAIL_OK, P11MAIL_ERR_NO_CERT or a token error.
 */
enum p11mail_status p11m_libctx_load_cert(p11m_libctx *lc, const char *uri,
                                          X509 **out);

/*
 * Turns the OpenSSL error queue into a status, passes its reasons to the
 * log callback and clears it.  fallback is returned when no error there
 * came from the provider.
 */
enum p11mail_status p11m_libctx_take_errors(enum p11mail_status fallback);

#endif /* P11MAIL_LIBCTX_H */
