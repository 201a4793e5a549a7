/*
 * The p11mail OpenSSL 3 provider: STORE for pkcs11: URIs, and KEYMGMT,
 * SIGNATURE, ASYM_CIPHER and KEYEXCH implementations that route private-key
 * operations to the token core.  The same code runs as a built-in provider
 * inside libp11mail's private library context and as the loadable module
 * p11mail.so.
 */
#ifndef P11MAIL_PROVIDER_H
#define P11MAIL_PROVIDER_H

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/crypto.h>
#include <openssl/types.h>

#include "token.h"

#define P11PROV_NAME "p11mail"

/* Property string of every algorithm the provider offers. */
#define P11PROV_PROPS "provider=p11mail"

/* Property query for software work done inside the provider. */
#define P11PROV_SOFT_PROPQ "provider!=p11mail"

struct p11prov_ctx;

/*
 * The provider's entry point, shared by the loadable module (through
 * OSSL_provider_init) and the built-in registration of libp11mail.
 */
int p11prov_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                 const OSSL_DISPATCH **out, void **provctx);

/*
 * Replaces the token options of a provider whose token core has not been
 * created yet (libp11mail configures its built-in instance this way).
 * Strings are copied.  Returns 1, or 0 when the core already exists.
 */
int p11prov_configure(struct p11prov_ctx *ctx, const struct tok_options *opts);

/*
 * The token core of this provider instance, created on first use.  Returns
 * NULL with an error on the OpenSSL queue when it cannot be created.
 */
tok_core *p11prov_core(struct p11prov_ctx *ctx);

/* The library context for software digests, KDFs and EC arithmetic. */
OSSL_LIB_CTX *p11prov_libctx(const struct p11prov_ctx *ctx);

/* How many digests one provider instance keeps fetched. */
#define P11PROV_MD_CACHE 16

/*
 * The software digest of that name, fetched once per provider instance and
 * kept until teardown (thread-safe).  The caller frees the reference it
 * gets with EVP_MD_free.  Returns NULL with an error on the OpenSSL queue
 * for an unknown name.
 */
EVP_MD *p11prov_fetch_md(struct p11prov_ctx *ctx, const char *name);

/*
 * Puts an error on the OpenSSL queue.  reason is an enum p11mail_status
 * value; its sentence is the reason text and fmt adds the details.
 */
#define p11prov_raise(ctx, reason, ...)                                        \
	p11prov_raise_at(ctx, OPENSSL_FILE, OPENSSL_LINE, OPENSSL_FUNC,        \
	                 reason, __VA_ARGS__)
void p11prov_raise_at(const struct p11prov_ctx *ctx, const char *file, int line,
                      const char *func, int reason, const char *fmt, ...)
        __attribute__((format(printf, 6, 7)));

/*
 * Puts a token core failure on the OpenSSL queue: the status of rv as the
 * reason, and what (may be NULL) plus tok_last_error() as the details.
 */
#define p11prov_raise_rv(ctx, rv, what)                                        \
	p11prov_raise_rv_at(ctx, OPENSSL_FILE, OPENSSL_LINE, OPENSSL_FUNC, rv, \
	                    what)
void p11prov_raise_rv_at(const struct p11prov_ctx *ctx, const char *file,
                         int line, const char *func, CK_RV rv,
                         const char *what);

/*
 * Makes an OpenSSL passphrase callback the PIN source of this thread while
 * a STORE load runs; p11prov_pw_pop() forgets it.
 */
void p11prov_pw_push(OSSL_PASSPHRASE_CALLBACK *cb, void *arg);
void p11prov_pw_pop(void);

/* Dispatch tables of the operations, in their own files. */
extern const OSSL_DISPATCH p11prov_rsa_keymgmt_functions[];
extern const OSSL_DISPATCH p11prov_ec_keymgmt_functions[];
extern const OSSL_DISPATCH p11prov_rsa_signature_functions[];
extern const OSSL_DISPATCH p11prov_ecdsa_signature_functions[];
extern const OSSL_DISPATCH p11prov_rsa_cipher_functions[];
extern const OSSL_DISPATCH p11prov_ecdh_keyexch_functions[];
extern const OSSL_DISPATCH p11prov_store_functions[];

#endif /* P11MAIL_PROVIDER_H */
