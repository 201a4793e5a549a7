/*
 * The loadable module p11mail.so: OpenSSL finds the provider through this
 * one exported symbol.
 */
#include "config.h"

#include <openssl/core.h>

#include "provider.h"

__attribute__((visibility("default"))) int
OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                   const OSSL_DISPATCH **out, void **provctx)
{
	return p11prov_init(handle, in, out, provctx);
}
