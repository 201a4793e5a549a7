/*
 * KEYMGMT for token keys.  The names ("RSA:rsaEncryption",
 * "EC:id-ecPublicKey") let OpenSSL's CMS and X.509 code treat the keys as
 * the RSA and EC keys they are.  Keys come only from the STORE (load) or
 * from copies; there is no import and no generation, so software keys are
 * always left to the default provider.  Only public parts are exported.
 */
#include "config.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/params.h>

#include "common.h"
#include "key.h"

#define PUBLIC_SELECTION                                                       \
	(OSSL_KEYMGMT_SELECT_PUBLIC_KEY | OSSL_KEYMGMT_SELECT_ALL_PARAMETERS)

static void *rsa_new(void *provctx)
{
	return p11prov_key_new(provctx, TOK_KEY_RSA);
}

static void *ec_new(void *provctx)
{
	return p11prov_key_new(provctx, TOK_KEY_EC);
}

static void keymgmt_free(void *keydata)
{
	p11prov_key_free(keydata);
}

/* Turns a STORE reference into a key object of its own. */
static void *keymgmt_load(const void *reference, size_t reference_sz)
{
	struct p11prov_key *key;

	key = p11prov_key_from_reference(reference, reference_sz);
	if (key == NULL)
		return NULL;
	return p11prov_key_dup(key, 1);
}

static int has_public(const struct p11prov_key *key)
{
	size_t len;

	if (key->type == TOK_KEY_RSA)
		return p11prov_key_modulus(key, &len) != NULL;
	return p11prov_key_point(key, &len) != NULL;
}

static int keymgmt_has(const void *keydata, int selection)
{
	const struct p11prov_key *key = keydata;

	if (key == NULL)
		return 0;
	if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) && key->tok == NULL)
		return 0;
	if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) && !has_public(key))
		return 0;
	if ((selection & OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS) &&
	    key->type == TOK_KEY_EC && key->nid == NID_undef)
		return 0;
	return 1;
}

static int keymgmt_match(const void *keydata1, const void *keydata2,
                         int selection)
{
	const struct p11prov_key *a = keydata1, *b = keydata2;

	if (a->type != b->type)
		return 0;
	if ((selection & OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS) &&
	    a->nid != b->nid)
		return 0;
	if (selection & OSSL_KEYMGMT_SELECT_KEYPAIR)
		return p11prov_key_public_eq(a, b);
	return 1;
}

/*
 * Exports public parts only.  A request that includes the private key is
 * refused, so OpenSSL uses this provider's operations instead of copying a
 * public-only key to another provider.
 */
static int keymgmt_export(void *keydata, int selection, OSSL_CALLBACK *cb,
                          void *cbarg)
{
	struct p11prov_key *key = keydata;
	OSSL_PARAM *params;
	int ok;

	if (key == NULL || (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY))
		return 0;
	params = p11prov_key_public_params(key, selection);
	if (params == NULL)
		return 0;
	ok = cb(params, cbarg);
	OSSL_PARAM_free(params);
	return ok;
}

static const OSSL_PARAM rsa_types[] = {
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0), OSSL_PARAM_END};

static const OSSL_PARAM ec_types[] = {
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
        OSSL_PARAM_END};

static const OSSL_PARAM *rsa_export_types(int selection)
{
	return (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) ? rsa_types : NULL;
}

static const OSSL_PARAM *ec_export_types(int selection)
{
	return (selection & PUBLIC_SELECTION) ? ec_types : NULL;
}

static int set_bn_param(OSSL_PARAM *p, const unsigned char *bytes, size_t len)
{
	BIGNUM *bn;
	int ok;

	if (bytes == NULL)
		return 0;
	bn = BN_bin2bn(bytes, (int)len, NULL);
	ok = bn != NULL && OSSL_PARAM_set_BN(p, bn);
	BN_free(bn);
	return ok;
}

static int get_rsa_params(const struct p11prov_key *key, OSSL_PARAM params[])
{
	const unsigned char *bytes;
	size_t len;
	OSSL_PARAM *p;

	p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_RSA_N);
	bytes = p11prov_key_modulus(key, &len);
	if (p != NULL && !set_bn_param(p, bytes, len))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_RSA_E);
	bytes = p11prov_key_exponent(key, &len);
	if (p != NULL && !set_bn_param(p, bytes, len))
		return 0;
	return 1;
}

static int get_ec_params(const struct p11prov_key *key, OSSL_PARAM params[])
{
	const unsigned char *point;
	size_t len;
	OSSL_PARAM *p;

	p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_GROUP_NAME);
	if (p != NULL && !OSSL_PARAM_set_utf8_string(p, OBJ_nid2sn(key->nid)))
		return 0;
	point = p11prov_key_point(key, &len);
	p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY);
	if (p != NULL &&
	    (point == NULL || !OSSL_PARAM_set_octet_string(p, point, len)))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_PUB_KEY);
	if (p != NULL &&
	    (point == NULL || !OSSL_PARAM_set_octet_string(p, point, len)))
		return 0;
	return 1;
}

static int keymgmt_get_params(void *keydata, OSSL_PARAM params[])
{
	struct p11prov_key *key = keydata;
	OSSL_PARAM *p;

	p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_BITS);
	if (p != NULL && !OSSL_PARAM_set_int(p, (int)key->bits))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_SECURITY_BITS);
	if (p != NULL && !OSSL_PARAM_set_int(p, p11prov_key_security_bits(key)))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_MAX_SIZE);
	if (p != NULL && !OSSL_PARAM_set_int(p, (int)p11prov_key_max_size(key)))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_DEFAULT_DIGEST);
	if (p != NULL && !OSSL_PARAM_set_utf8_string(p, "SHA256"))
		return 0;
	if (key->type == TOK_KEY_RSA)
		return get_rsa_params(key, params);
	return get_ec_params(key, params);
}

static const OSSL_PARAM *rsa_gettable_params(void *provctx)
{
	static const OSSL_PARAM params[] = {
	        OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
	        OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
	        OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
	        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
	        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
	        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
	        OSSL_PARAM_END};

	return params;
}

static const OSSL_PARAM *ec_gettable_params(void *provctx)
{
	static const OSSL_PARAM params[] = {
	        OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
	        OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
	        OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
	        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
	        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
	        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
	                                NULL, 0),
	        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
	        OSSL_PARAM_END};

	return params;
}

/*
 * Setting the encoded point is how OpenSSL's CMS code fills in the ECDH
 * peer it made from the token key's parameters; token keys stay unchanged.
 */
static int ec_set_params(void *keydata, const OSSL_PARAM params[])
{
	struct p11prov_key *key = keydata;
	const OSSL_PARAM *p;
	const void *point;
	size_t len;

	p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY);
	if (p == NULL)
		return 1;
	if (!OSSL_PARAM_get_octet_string_ptr(p, &point, &len) ||
	    !p11prov_key_set_point(key, point, len)) {
		p11prov_raise(key->ctx, P11MAIL_ERR_FORMAT,
		              "the EC public point is not on the curve");
		return 0;
	}
	return 1;
}

static const OSSL_PARAM *ec_settable_params(void *provctx)
{
	static const OSSL_PARAM params[] = {
	        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
	                                NULL, 0),
	        OSSL_PARAM_END};

	return params;
}

static void *keymgmt_dup(const void *keydata, int selection)
{
	return p11prov_key_dup(
	        keydata, (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0);
}

/* Public points were checked when set; token keys are the token's. */
static int keymgmt_validate(const void *keydata, int selection, int checktype)
{
	return keymgmt_has(keydata, selection);
}

static const char *rsa_query_operation_name(int operation_id)
{
	return "RSA";
}

static const char *ec_query_operation_name(int operation_id)
{
	switch (operation_id) {
	case OSSL_OP_KEYEXCH:
		return "ECDH";
	case OSSL_OP_SIGNATURE:
		return "ECDSA";
	default:
		return NULL;
	}
}

#define COMMON_KEYMGMT_FUNCTIONS                                               \
	{OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))keymgmt_free},                \
	        {OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))keymgmt_load},        \
	        {OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))keymgmt_has},          \
	        {OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))keymgmt_match},      \
	        {OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))keymgmt_export},    \
	        {OSSL_FUNC_KEYMGMT_GET_PARAMS,                                 \
	         (void (*)(void))keymgmt_get_params},                          \
	        {OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))keymgmt_dup},          \
	{                                                                      \
		OSSL_FUNC_KEYMGMT_VALIDATE, (void (*)(void))keymgmt_validate   \
	}

const OSSL_DISPATCH p11prov_rsa_keymgmt_functions[] = {
        {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))rsa_new},
        COMMON_KEYMGMT_FUNCTIONS,
        {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))rsa_export_types},
        {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS,
         (void (*)(void))rsa_gettable_params},
        {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME,
         (void (*)(void))rsa_query_operation_name},
        {0, NULL}};

const OSSL_DISPATCH p11prov_ec_keymgmt_functions[] = {
        {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))ec_new},
        COMMON_KEYMGMT_FUNCTIONS,
        {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))ec_export_types},
        {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))ec_gettable_params},
        {OSSL_FUNC_KEYMGMT_SET_PARAMS, (void (*)(void))ec_set_params},
        {OSSL_FUNC_KEYMGMT_SETTABLE_PARAMS, (void (*)(void))ec_settable_params},
        {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME,
         (void (*)(void))ec_query_operation_name},
        {0, NULL}};
