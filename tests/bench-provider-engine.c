/*
 * libp11's ENGINE for the benchmark.  The ENGINE API is deprecated since
 * OpenSSL 3.0; this file alone uses it.
 */
#include "config.h"

#undef OPENSSL_NO_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED

#include <stddef.h>

#include <openssl/engine.h>

#include "bench-provider.h"

#define ENGINE_SO "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so"

void *bench_engine_open(const char *module)
{
	ENGINE *e;

	ENGINE_load_dynamic();
	e = ENGINE_by_id("dynamic");
	if (e == NULL)
		return NULL;
	if (!ENGINE_ctrl_cmd_string(e, "SO_PATH", ENGINE_SO, 0) ||
	    !ENGINE_ctrl_cmd_string(e, "ID", "pkcs11", 0) ||
	    !ENGINE_ctrl_cmd_string(e, "LOAD", NULL, 0) ||
	    !ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module, 0) ||
	    !ENGINE_init(e)) {
		ENGINE_free(e);
		return NULL;
	}
	return e;
}

EVP_PKEY *bench_engine_key(void *handle, const char *uri)
{
	return handle != NULL ? ENGINE_load_private_key(handle, uri, NULL, NULL)
	                      : NULL;
}

void bench_engine_close(void *handle)
{
	ENGINE *e = handle;

	if (e == NULL)
		return;
	ENGINE_finish(e);
	ENGINE_free(e);
}
