/*
 * The libp11 ENGINE side of bench-provider, kept in its own file because
 * the ENGINE API is deprecated.
 */
#ifndef P11MAIL_BENCH_PROVIDER_H
#define P11MAIL_BENCH_PROVIDER_H

#include <openssl/evp.h>

/*
 * Loads and starts libp11's ENGINE for a PKCS#11 module.  Returns an
 * opaque handle for bench_engine_close, or NULL on failure.
 */
void *bench_engine_open(const char *module);

/* Loads the private key a URI names; the caller frees it.  NULL: failed. */
EVP_PKEY *bench_engine_key(void *handle, const char *uri);

/* Finishes and frees the ENGINE; accepts NULL. */
void bench_engine_close(void *handle);

#endif /* P11MAIL_BENCH_PROVIDER_H */
