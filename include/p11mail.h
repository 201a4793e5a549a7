/*
 * p11mail: S/MIME email whose private keys never leave a smart card or USB
 * token.  This is the public API of libp11mail.
 *
 * Conventions: functions return enum p11mail_status (P11MAIL_OK is 0);
 * out-parameters come last, are cleared on entry and set only on success;
 * objects made by *_new are released by the matching *_free, which accepts
 * NULL.  The library never writes to stdout or stderr: messages reach the
 * application through the log callback.
 */
#ifndef P11MAIL_H
#define P11MAIL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(P11MAIL_BUILDING)
#define P11MAIL_EXPORT __attribute__((visibility("default")))
#else
#define P11MAIL_EXPORT
#endif

/* Result of every library call.  p11mail_strerror() names each one. */
enum p11mail_status {
	P11MAIL_OK = 0,
	P11MAIL_ERR_NOMEM,	  /* out of memory */
	P11MAIL_ERR_ARGS,	  /* invalid argument (a programming error) */
	P11MAIL_ERR_IO,		  /* a file or stream could not be read/written */
	P11MAIL_ERR_CONFIG,	  /* configuration is missing or malformed */
	P11MAIL_ERR_URI,	  /* a PKCS#11 URI is malformed */
	P11MAIL_ERR_MODULE,	  /* a PKCS#11 module failed to load or start */
	P11MAIL_ERR_NO_TOKEN,	  /* no token matches (card not inserted?) */
	P11MAIL_ERR_NO_KEY,	  /* no key matches the URI */
	P11MAIL_ERR_AMBIGUOUS,	  /* the URI matches more than one object */
	P11MAIL_ERR_PIN_INCORRECT, /* the token rejected the PIN */
	P11MAIL_ERR_PIN_LOCKED,	  /* the PIN is locked */
	P11MAIL_ERR_PIN_FINAL_TRY, /* one try left: login refused */
	P11MAIL_ERR_PIN_EXPIRED,  /* the PIN must be changed first */
	P11MAIL_ERR_PIN_CANCELLED, /* no PIN was given */
	P11MAIL_ERR_TOKEN_REMOVED, /* the token went away during the operation */
	P11MAIL_ERR_MECHANISM,	  /* the token cannot do this operation */
	P11MAIL_ERR_TOKEN,	  /* any other token failure */
	P11MAIL_ERR_CRYPTO,	  /* a cryptographic operation failed */
	P11MAIL_ERR_DECRYPT,	  /* decryption failed (one generic error) */
	P11MAIL_ERR_FORMAT,	  /* input is not a well-formed message or object */
	P11MAIL_ERR_LIMIT,	  /* input exceeds a configured bound */
	P11MAIL_ERR_NO_CERT,	  /* no usable certificate for a party */
	P11MAIL_ERR_CERT_EXPIRED, /* a certificate is expired or not yet valid */
	P11MAIL_ERR_UNTRUSTED,	  /* a certificate does not chain to an anchor */
	P11MAIL_ERR_SIGNATURE,	  /* a signature is invalid or cannot be checked */
	P11MAIL_ERR_STORE,	  /* the workstation store failed */
	P11MAIL_ERR_STORE_BUSY,	  /* the store stayed locked by another process */
	P11MAIL_ERR_EXISTS,	  /* the object is already present */
	P11MAIL_ERR_NOT_FOUND,	  /* the object is not present */
	P11MAIL_ERR_TRANSPORT,	  /* a mail server could not be reached */
	P11MAIL_ERR_AUTH,	  /* a mail server refused the credentials */
	P11MAIL_ERR_DISCOVERY,	  /* certificate discovery failed */
	P11MAIL_ERR_INTERNAL	  /* a bug: please report it */
};

/* Returns a static English sentence for a status; never NULL. */
P11MAIL_EXPORT const char *p11mail_strerror(enum p11mail_status status);

/* Returns the library version string, for example "0.1.0". */
P11MAIL_EXPORT const char *p11mail_version(void);

/* Severity of a message passed to the log callback. */
enum p11mail_log_level {
	P11MAIL_LOG_ERROR = 0,
	P11MAIL_LOG_WARNING,
	P11MAIL_LOG_INFO,
	P11MAIL_LOG_DEBUG
};

/*
 * Receives every message the library has for people.  The text is one line
 * without a newline and is valid only during the call.
 */
typedef void (*p11mail_log_fn)(void *arg, enum p11mail_log_level level,
			       const char *text);

/*
 * Installs the process-wide log callback (NULL discards messages).  Debug
 * tracing is separate: P11MAIL_DEBUG=1 traces to stderr, P11MAIL_DEBUG=/path
 * appends to that file.  Not thread-safe: call it before starting threads.
 */
P11MAIL_EXPORT void p11mail_set_log(p11mail_log_fn fn, void *arg);

/* Overwrites len bytes at ptr with zeros in a way the compiler keeps. */
P11MAIL_EXPORT void p11mail_wipe(void *ptr, size_t len);

/* Wipes a NUL-terminated secret string and frees it; accepts NULL. */
P11MAIL_EXPORT void p11mail_secret_free(char *secret);

#ifdef __cplusplus
}
#endif

#endif /* P11MAIL_H */
