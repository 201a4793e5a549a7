/*
 * Importing a private key (for a PKCS#12 file a CA delivered): the key is
 * written to the token as sensitive and non-extractable, next to its
 * public key object, and every copy of the secret numbers is wiped.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#include "common.h"
#include "tok-internal.h"

/* A big number as big-endian bytes, padded to pad when pad > 0. */
struct num {
	unsigned char *b;
	size_t len;
};

static void num_clear(struct num *n)
{
	p11m_secure_free(n->b, n->len);
	n->b = NULL;
	n->len = 0;
}

static CK_RV num_get(const EVP_PKEY *pk, const char *name, size_t pad,
                     struct num *n)
{
	BIGNUM *bn = NULL;
	CK_RV rv = CKR_KEY_TYPE_INCONSISTENT;
	int len;

	memset(n, 0, sizeof(*n));
	if (EVP_PKEY_get_bn_param(pk, name, &bn) != 1)
		goto out;
	rv = CKR_HOST_MEMORY;
	len = pad > 0 ? (int)pad : BN_num_bytes(bn);
	n->b = malloc(len > 0 ? (size_t)len : 1);
	if (n->b == NULL)
		goto out;
	n->len = (size_t)len;
	if (BN_bn2binpad(bn, n->b, len) != len) {
		num_clear(n);
		goto out;
	}
	rv = CKR_OK;
out:
	BN_clear_free(bn);
	return rv;
}

#define RSA_NUMS 8

static const char *const rsa_names[RSA_NUMS] = {
        OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
        OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
        OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
};

static const CK_ATTRIBUTE_TYPE rsa_types[RSA_NUMS] = {
        CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT, CKA_PRIME_1,
        CKA_PRIME_2, CKA_EXPONENT_1,      CKA_EXPONENT_2,       CKA_COEFFICIENT,
};

/* Fills the key-type part of the two templates; the numbers stay in n. */
static CK_RV rsa_parts(const EVP_PKEY *pk, struct num *n, CK_ATTRIBUTE *priv,
                       CK_ULONG *npriv, CK_ATTRIBUTE *pub, CK_ULONG *npub)
{
	size_t i;
	CK_RV rv = CKR_OK;

	for (i = 0; i < RSA_NUMS && rv == CKR_OK; i++)
		rv = num_get(pk, rsa_names[i], 0, &n[i]);
	if (rv != CKR_OK)
		return rv;
	for (i = 0; i < RSA_NUMS; i++)
		priv[(*npriv)++] =
		        (CK_ATTRIBUTE){rsa_types[i], n[i].b, n[i].len};
	for (i = 0; i < 2; i++)
		pub[(*npub)++] = (CK_ATTRIBUTE){rsa_types[i], n[i].b, n[i].len};
	return CKR_OK;
}

/* EC: curve OID, private value (field size) and DER-wrapped point. */
static CK_RV ec_parts(const EVP_PKEY *pk, struct num *n, CK_ATTRIBUTE *priv,
                      CK_ULONG *npriv, CK_ATTRIBUTE *pub, CK_ULONG *npub)
{
	char group[64];
	unsigned char pt[256];
	size_t pt_len = 0, field;
	CK_RV rv;
	int nid;

	if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME,
	                                   group, sizeof(group), NULL) != 1)
		return CKR_KEY_TYPE_INCONSISTENT;
	nid = OBJ_sn2nid(group);
	if (nid == NID_undef)
		nid = EC_curve_nist2nid(group);
	rv = tok_ec_params_for_nid(nid, &n[0].b, &n[0].len);
	if (rv != CKR_OK)
		return rv;
	field = (size_t)(EVP_PKEY_get_bits(pk) + 7) / 8;
	rv = num_get(pk, OSSL_PKEY_PARAM_PRIV_KEY, field, &n[1]);
	if (rv != CKR_OK)
		return rv;
	if (EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, pt,
	                                    sizeof(pt), &pt_len) != 1 ||
	    pt_len > 127)
		return CKR_KEY_TYPE_INCONSISTENT;
	n[2].b = malloc(pt_len + 2);
	if (n[2].b == NULL)
		return CKR_HOST_MEMORY;
	n[2].b[0] = 0x04; /* DER OCTET STRING around the point */
	n[2].b[1] = (unsigned char)pt_len;
	memcpy(n[2].b + 2, pt, pt_len);
	n[2].len = pt_len + 2;

	priv[(*npriv)++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, n[0].b, n[0].len};
	priv[(*npriv)++] = (CK_ATTRIBUTE){CKA_VALUE, n[1].b, n[1].len};
	pub[(*npub)++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, n[0].b, n[0].len};
	pub[(*npub)++] = (CK_ATTRIBUTE){CKA_EC_POINT, n[2].b, n[2].len};
	return CKR_OK;
}

/* Writes both objects; a public key left alone after a failure goes. */
static CK_RV create_pair(struct tok_token *tok, CK_SESSION_HANDLE h,
                         CK_ATTRIBUTE *priv, CK_ULONG npriv, CK_ATTRIBUTE *pub,
                         CK_ULONG npub, CK_OBJECT_HANDLE *out)
{
	CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE;
	CK_RV rv;

	rv = TOK_CALL(tok->mod, C_CreateObject, h, pub, npub, &hpub);
	if (rv == CKR_OK)
		rv = TOK_CALL(tok->mod, C_CreateObject, h, priv, npriv, out);
	if (rv != CKR_OK && hpub != CK_INVALID_HANDLE)
		TOK_CALL(tok->mod, C_DestroyObject, h, hpub);
	if (rv != CKR_OK)
		rv = tok_fail(rv, TOK_DETAIL_NONE,
		              "the token %s did not take the key (%s)",
		              tok->label, tok_rv_name(rv));
	return rv;
}

/* The token to write to, logged in, with a free id. */
static CK_RV import_target(tok_core *core, const char *token_uri,
                           const unsigned char *id, size_t id_len,
                           struct tok_token **tok, CK_SESSION_HANDLE *h,
                           struct tok_pin_src *pins)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof(cls)},
	                     {CKA_ID, tok_mut(id), id_len}};
	struct tok_token *toks[2];
	CK_OBJECT_HANDLE obj;
	P11KitUri *uri = NULL;
	size_t n = 0;
	CK_RV rv;

	*tok = NULL;
	rv = tok_uri_open(token_uri, 0, &uri, pins);
	if (rv == CKR_OK)
		rv = tok_find_tokens(core, uri, toks, 2, &n);
	if (rv == CKR_OK && n != 1)
		rv = tok_fail(CKR_ARGUMENTS_BAD, TOK_DETAIL_AMBIGUOUS,
		              "the URI matches %zu tokens: name one by serial",
		              n);
	if (rv == CKR_OK)
		rv = tok_session_get(toks[0], h);
	if (rv == CKR_OK) {
		*tok = toks[0];
		rv = tok_login(*tok, *h, pins, NULL, NULL);
	}
	if (rv == CKR_OK && (id == NULL || id_len == 0))
		rv = tok_fail(CKR_ARGUMENTS_BAD, TOK_DETAIL_NONE,
		              "a new key needs an id");
	if (rv == CKR_OK && tok_find(*tok, *h, t, 2, &obj, 1, &n) == CKR_OK &&
	    n > 0)
		rv = tok_fail(CKR_ATTRIBUTE_VALUE_INVALID, TOK_DETAIL_NONE,
		              "the token %s already holds a private key with "
		              "this id",
		              (*tok)->label);
	p11_kit_uri_free(uri);
	return rv;
}

CK_RV tok_import_key(tok_core *core, const char *token_uri, const void *pkey,
                     const unsigned char *id, size_t id_len, const char *label,
                     tok_key **out)
{
	const EVP_PKEY *pk = pkey;
	CK_OBJECT_CLASS cpriv = CKO_PRIVATE_KEY, cpub = CKO_PUBLIC_KEY;
	CK_KEY_TYPE kt = EVP_PKEY_is_a(pk, "RSA") ? CKK_RSA : CKK_EC;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	size_t lab_len = label ? strlen(label) : 0, i;
	CK_ATTRIBUTE priv[20] = {
	        {CKA_CLASS, &cpriv, sizeof(cpriv)},
	        {CKA_KEY_TYPE, &kt, sizeof(kt)},
	        {CKA_TOKEN, &yes, sizeof(yes)},
	        {CKA_PRIVATE, &yes, sizeof(yes)},
	        {CKA_SENSITIVE, &yes, sizeof(yes)},
	        {CKA_EXTRACTABLE, &no, sizeof(no)},
	        {CKA_SIGN, &yes, sizeof(yes)},
	        {CKA_ID, tok_mut(id), id_len},
	        {CKA_LABEL, tok_mut(label), lab_len},
	        {kt == CKK_RSA ? CKA_DECRYPT : CKA_DERIVE, &yes, sizeof(yes)},
	};
	CK_ATTRIBUTE pub[12] = {
	        {CKA_CLASS, &cpub, sizeof(cpub)},
	        {CKA_KEY_TYPE, &kt, sizeof(kt)},
	        {CKA_TOKEN, &yes, sizeof(yes)},
	        {CKA_VERIFY, &yes, sizeof(yes)},
	        {CKA_ID, tok_mut(id), id_len},
	        {CKA_LABEL, tok_mut(label), lab_len},
	};
	CK_ULONG npriv = 10, npub = 6;
	struct num n[RSA_NUMS];
	struct tok_pin_src pins = {NULL, NULL};
	struct tok_token *tok = NULL;
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE obj;
	CK_RV rv;

	if (out != NULL)
		*out = NULL;
	tok_clear_error();
	memset(n, 0, sizeof(n));
	if (pk == NULL ||
	    (!EVP_PKEY_is_a(pk, "RSA") && !EVP_PKEY_is_a(pk, "EC")))
		return tok_fail(CKR_KEY_TYPE_INCONSISTENT, TOK_DETAIL_NONE,
		                "only RSA and EC keys can be imported");
	if (kt == CKK_RSA)
		pub[npub++] = (CK_ATTRIBUTE){CKA_ENCRYPT, &yes, sizeof(yes)};

	rv = import_target(core, token_uri, id, id_len, &tok, &h, &pins);
	if (rv == CKR_OK && kt == CKK_RSA)
		rv = rsa_parts(pk, n, priv, &npriv, pub, &npub);
	else if (rv == CKR_OK)
		rv = ec_parts(pk, n, priv, &npriv, pub, &npub);
	if (rv == CKR_OK)
		rv = create_pair(tok, h, priv, npriv, pub, npub, &obj);
	if (rv == CKR_OK && out != NULL)
		rv = tok_key_from_handle(tok, h, obj, &pins, out);

	for (i = 0; i < RSA_NUMS; i++)
		num_clear(&n[i]);
	if (tok != NULL)
		tok_session_put(tok, h, rv);
	tok_pin_src_clear(&pins);
	return rv;
}
