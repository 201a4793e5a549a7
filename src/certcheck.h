/*
 * Certificate policy for S/MIME (RFC 8550): which addresses a certificate
 * speaks for, whether it may sign or be encrypted to right now, and
 * whether it chains to an anchor.  Problems come back as one sentence for
 * people in a caller-supplied buffer.
 */
#ifndef P11MAIL_CERTCHECK_H
#define P11MAIL_CERTCHECK_H

#include <openssl/x509.h>

#include "p11mail.h"

enum certcheck_use {
	CERTCHECK_SIGN = 1, /* the certificate of a signer */
	CERTCHECK_ENCRYPT   /* the certificate of a recipient */
};

enum certcheck_chain {
	CERTCHECK_TRUSTED = 0, /* chains to an anchor */
	CERTCHECK_NO_ANCHOR,   /* sound, but no anchor vouches for it */
	CERTCHECK_BROKEN       /* a link is invalid (issuer not a CA, ...) */
};

/*
 * The addresses of a certificate: every SAN rfc822Name, or the DN
 * emailAddress values when there is no SAN address.  Returns a
 * comma-separated string in a new buffer (free()), "" when there is none,
 * or NULL when out of memory.
 */
char *certcheck_addresses(X509 *cert);

/*
 * True when addr (an addr-spec) is one of the certificate's addresses: the
 * local part compared exactly, the domain case-insensitively.
 */
int certcheck_address_match(X509 *cert, const char *addr);

/*
 * Checks the certificate itself for a use, judged at the current time:
 * validity period, keyUsage, extendedKeyUsage, key size and signature
 * hash.  Returns P11MAIL_OK, or P11MAIL_ERR_CERT_EXPIRED / P11MAIL_ERR_NO_CERT
 * with the reason written to problem.
 */
enum p11mail_status certcheck_policy(X509 *cert, enum certcheck_use use,
                                     char *problem, size_t size);

/*
 * Builds and checks the chain from cert to one of anchors, taking
 * intermediates from untrusted (may be NULL), at the current time.  The
 * reason for anything but CERTCHECK_TRUSTED is written to problem.
 */
enum certcheck_chain certcheck_chain(OSSL_LIB_CTX *libctx, X509_STORE *anchors,
                                     X509 *cert, STACK_OF(X509) * untrusted,
                                     enum certcheck_use use, char *problem,
                                     size_t size);

/* Writes the SHA-256 fingerprint of cert: 64 lowercase hex digits, NUL. */
void certcheck_fingerprint(X509 *cert, char hex[65]);

/* The subject as one line in a new buffer (free()), or NULL. */
char *certcheck_subject(X509 *cert);

#endif /* P11MAIL_CERTCHECK_H */
