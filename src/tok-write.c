/*
 * Listing and writing token objects, for p11mail-certinstall and the
 * provider's STORE: what a URI matches, key generation on the token,
 * certificates, and importing a key as sensitive and non-extractable.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "common.h"
#include "tok-internal.h"

#define MAX_LIST 256

/* One token and a logged-in session on it, for the writing calls. */
struct target {
	P11KitUri *uri;
	struct tok_pin_src pins;
	struct tok_token *tok;
	CK_SESSION_HANDLE h;
};

static CK_RV uri_parse(const char *text, P11KitUri **out)
{
	P11KitUri *uri = p11_kit_uri_new();
	int r;

	*out = NULL;
	if (uri == NULL)
		return CKR_HOST_MEMORY;
	r = p11_kit_uri_parse(text, P11_KIT_URI_FOR_ANY, uri);
	if (r != P11_KIT_URI_OK) {
		p11_kit_uri_free(uri);
		return tok_fail(CKR_ARGUMENTS_BAD, TOK_DETAIL_URI,
		                "the PKCS#11 URI is malformed (%s): %s",
		                p11_kit_uri_message(r), text);
	}
	*out = uri;
	return CKR_OK;
}

static void target_close(struct target *t)
{
	if (t->tok != NULL)
		tok_session_put(t->tok, t->h, CKR_OK);
	tok_pin_src_clear(&t->pins);
	p11_kit_uri_free(t->uri);
	memset(t, 0, sizeof(*t));
}

static CK_RV target_open(tok_core *core, const char *text, struct target *t)
{
	struct tok_token *toks[2];
	size_t n = 0;
	CK_RV rv;

	memset(t, 0, sizeof(*t));
	tok_clear_error();
	rv = uri_parse(text, &t->uri);
	if (rv == CKR_OK)
		rv = tok_pin_src_from_uri(t->uri, &t->pins);
	if (rv == CKR_OK)
		rv = tok_find_tokens(core, t->uri, toks, 2, &n);
	if (rv == CKR_OK && n != 1)
		rv = tok_fail(CKR_ARGUMENTS_BAD, TOK_DETAIL_AMBIGUOUS,
		              "the URI matches %zu tokens: name one by serial",
		              n);
	if (rv == CKR_OK)
		rv = tok_session_get(toks[0], &t->h);
	if (rv == CKR_OK) {
		t->tok = toks[0];
		rv = tok_login(t->tok, t->h, &t->pins, NULL, NULL);
	}
	return rv;
}

/* Refuses an id a private key or certificate already has. */
static CK_RV id_unused(struct target *t, CK_OBJECT_CLASS cls,
                       const unsigned char *id, size_t id_len)
{
	CK_ATTRIBUTE tmpl[2] = {{CKA_CLASS, &cls, sizeof(cls)},
	                        {CKA_ID, tok_mut(id), id_len}};
	CK_OBJECT_HANDLE obj;
	size_t n = 0;
	CK_RV rv;

	if (id == NULL || id_len == 0)
		return tok_fail(CKR_ARGUMENTS_BAD, TOK_DETAIL_NONE,
		                "a new object needs an id");
	rv = tok_find(t->tok, t->h, tmpl, 2, &obj, 1, &n);
	if (rv == CKR_OK && n > 0)
		rv = tok_fail(CKR_ATTRIBUTE_VALUE_INVALID, TOK_DETAIL_NONE,
		              "the token %s already holds an object of this "
		              "kind with this id",
		              t->tok->label);
	return rv;
}

static CK_RV object_add(struct tok_token *tok, CK_SESSION_HANDLE h,
                        CK_OBJECT_HANDLE obj, CK_OBJECT_CLASS cls,
                        struct tok_object *o)
{
	size_t len = 0;
	CK_RV rv;

	memset(o, 0, sizeof(*o));
	o->cls = cls;
	rv = tok_attr_get(tok, h, obj, CKA_ID, &o->id, &o->id_len);
	if (rv == CKR_OK)
		rv = tok_attr_get(tok, h, obj, CKA_LABEL,
		                  (unsigned char **)&o->label, &len);
	if (rv == CKR_OK && cls == CKO_CERTIFICATE)
		rv = tok_attr_get(tok, h, obj, CKA_VALUE, &o->der, &o->der_len);
	if (rv == CKR_OK) {
		o->uri = tok_uri_format(tok, cls, o->id, o->id_len, NULL);
		if (o->uri == NULL)
			rv = CKR_HOST_MEMORY;
	}
	return rv;
}

/* Appends the objects of one class the URI matches on tok. */
static CK_RV list_class(struct tok_token *tok, CK_SESSION_HANDLE h,
                        P11KitUri *uri, CK_OBJECT_CLASS cls,
                        struct tok_object *objects, size_t *count)
{
	CK_ULONG nattr = 0, i, nt = 0;
	CK_ATTRIBUTE *attrs = p11_kit_uri_get_attributes(uri, &nattr);
	CK_ATTRIBUTE tmpl[8];
	CK_OBJECT_HANDLE found[64];
	size_t n = 0, j;
	CK_RV rv;

	tmpl[nt++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
	for (i = 0; i < nattr && nt < P11M_ARRAY_SIZE(tmpl); i++)
		if (attrs[i].type != CKA_CLASS)
			tmpl[nt++] = attrs[i];
	rv = tok_find(tok, h, tmpl, nt, found, P11M_ARRAY_SIZE(found), &n);
	for (j = 0; rv == CKR_OK && j < n && *count < MAX_LIST; j++) {
		rv = object_add(tok, h, found[j], cls, &objects[*count]);
		(*count)++;
	}
	return rv;
}

static CK_RV list_token(struct tok_token *tok, P11KitUri *uri,
                        const struct tok_pin_src *pins,
                        struct tok_object *objects, size_t *count)
{
	static const CK_OBJECT_CLASS all[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY,
	                                      CKO_CERTIFICATE};
	CK_ATTRIBUTE *want = p11_kit_uri_get_attribute(uri, CKA_CLASS);
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
	CK_RV rv;
	size_t i;

	rv = tok_session_get(tok, &h);
	if (rv == CKR_OK && (pins->pin_value || pins->pin_source))
		rv = tok_login(tok, h, pins, NULL, NULL);
	for (i = 0; rv == CKR_OK && i < P11M_ARRAY_SIZE(all); i++) {
		if (want != NULL && *(CK_OBJECT_CLASS *)want->pValue != all[i])
			continue;
		rv = list_class(tok, h, uri, all[i], objects, count);
	}
	tok_session_put(tok, h, rv);
	return rv;
}

CK_RV tok_list_objects(tok_core *core, const char *uri_text,
                       struct tok_object **objects, size_t *count)
{
	struct tok_token *toks[16];
	struct tok_pin_src pins = {NULL, NULL};
	struct tok_object *list = NULL;
	P11KitUri *uri = NULL;
	size_t ntok = 0, n = 0, i;
	CK_RV rv;

	*objects = NULL;
	*count = 0;
	tok_clear_error();
	rv = uri_parse(uri_text, &uri);
	if (rv == CKR_OK)
		rv = tok_pin_src_from_uri(uri, &pins);
	if (rv == CKR_OK)
		rv = tok_find_tokens(core, uri, toks, 16, &ntok);
	if (rv != CKR_OK)
		goto out;
	list = calloc(MAX_LIST, sizeof(*list));
	if (list == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	for (i = 0; rv == CKR_OK && i < ntok && i < 16; i++)
		rv = list_token(toks[i], uri, &pins, list, &n);
	if (rv != CKR_OK)
		goto out;
	*objects = list;
	*count = n;
	list = NULL;
out:
	tok_objects_free(list, n);
	tok_pin_src_clear(&pins);
	p11_kit_uri_free(uri);
	return rv;
}

void tok_objects_free(struct tok_object *objects, size_t count)
{
	size_t i;

	if (objects == NULL)
		return;
	for (i = 0; i < count; i++) {
		free(objects[i].uri);
		free(objects[i].label);
		free(objects[i].id);
		free(objects[i].der);
	}
	free(objects);
}

/* Resolves the key just written, by its handle. */
static CK_RV new_key(struct target *t, CK_OBJECT_HANDLE priv, tok_key **out)
{
	if (out == NULL)
		return CKR_OK;
	return tok_key_from_handle(t->tok, t->h, priv, &t->pins, out);
}

CK_RV tok_generate_key(tok_core *core, const char *token_uri,
                       enum tok_key_type type, unsigned int bits_or_nid,
                       const unsigned char *id, size_t id_len,
                       const char *label, tok_key **out)
{
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG bits = bits_or_nid;
	CK_BYTE e[] = {0x01, 0x00, 0x01};
	unsigned char *params = NULL;
	size_t params_len = 0, lab_len = label ? strlen(label) : 0;
	CK_ATTRIBUTE pub[8] = {
	        {CKA_TOKEN, &yes, sizeof(yes)},
	        {CKA_VERIFY, &yes, sizeof(yes)},
	        {CKA_ID, tok_mut(id), id_len},
	        {CKA_LABEL, tok_mut(label), lab_len},
	};
	CK_ATTRIBUTE priv[] = {
	        {CKA_TOKEN, &yes, sizeof(yes)},
	        {CKA_PRIVATE, &yes, sizeof(yes)},
	        {CKA_SENSITIVE, &yes, sizeof(yes)},
	        {CKA_EXTRACTABLE, &no, sizeof(no)},
	        {CKA_SIGN, &yes, sizeof(yes)},
	        {CKA_ID, tok_mut(id), id_len},
	        {CKA_LABEL, tok_mut(label), lab_len},
	        {type == TOK_KEY_RSA ? CKA_DECRYPT : CKA_DERIVE, &yes,
	         sizeof(yes)},
	};
	CK_MECHANISM mech = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
	CK_OBJECT_HANDLE hpub, hpriv;
	CK_ULONG npub = 4;
	struct target t;
	CK_RV rv;

	if (out != NULL)
		*out = NULL;
	rv = target_open(core, token_uri, &t);
	if (rv == CKR_OK)
		rv = id_unused(&t, CKO_PRIVATE_KEY, id, id_len);
	if (rv != CKR_OK)
		goto out;
	if (type == TOK_KEY_RSA) {
		pub[npub++] = (CK_ATTRIBUTE){CKA_ENCRYPT, &yes, sizeof(yes)};
		pub[npub++] =
		        (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof(bits)};
		pub[npub++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, e, sizeof(e)};
	} else {
		rv = tok_ec_params_for_nid((int)bits_or_nid, &params,
		                           &params_len);
		if (rv != CKR_OK)
			goto out;
		mech.mechanism = CKM_EC_KEY_PAIR_GEN;
		pub[npub++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, params, params_len};
	}
	rv = TOK_CALL(t.tok->mod, C_GenerateKeyPair, t.h, &mech, pub, npub,
	              priv, P11M_ARRAY_SIZE(priv), &hpub, &hpriv);
	if (rv != CKR_OK)
		rv = tok_fail(rv, TOK_DETAIL_NONE,
		              "the token %s could not generate the key (%s)",
		              t.tok->label, tok_rv_name(rv));
	else
		rv = new_key(&t, hpriv, out);
out:
	OPENSSL_free(params);
	target_close(&t);
	return rv;
}

CK_RV tok_write_certificate(tok_core *core, const char *token_uri,
                            const unsigned char *der, size_t der_len,
                            const unsigned char *id, size_t id_len,
                            const char *label)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ct = CKC_X_509;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	const unsigned char *p = der;
	unsigned char *subj = NULL, *iss = NULL, *serial = NULL;
	int subj_len, iss_len, serial_len;
	X509 *x = d2i_X509(NULL, &p, (long)der_len);
	CK_OBJECT_HANDLE obj;
	struct target t;
	CK_RV rv;

	memset(&t, 0, sizeof(t));
	if (x == NULL)
		return tok_fail(CKR_ARGUMENTS_BAD, TOK_DETAIL_NONE,
		                "the certificate is not DER X.509");
	subj_len = i2d_X509_NAME(X509_get_subject_name(x), &subj);
	iss_len = i2d_X509_NAME(X509_get_issuer_name(x), &iss);
	serial_len = i2d_ASN1_INTEGER(X509_get_serialNumber(x), &serial);
	if (subj_len <= 0 || iss_len <= 0 || serial_len <= 0) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	rv = target_open(core, token_uri, &t);
	if (rv == CKR_OK)
		rv = id_unused(&t, CKO_CERTIFICATE, id, id_len);
	if (rv == CKR_OK) {
		CK_ATTRIBUTE tmpl[] = {
		        {CKA_CLASS, &cls, sizeof(cls)},
		        {CKA_CERTIFICATE_TYPE, &ct, sizeof(ct)},
		        {CKA_TOKEN, &yes, sizeof(yes)},
		        {CKA_PRIVATE, &no, sizeof(no)},
		        {CKA_VALUE, tok_mut(der), der_len},
		        {CKA_ID, tok_mut(id), id_len},
		        {CKA_LABEL, tok_mut(label), label ? strlen(label) : 0},
		        {CKA_SUBJECT, subj, (CK_ULONG)subj_len},
		        {CKA_ISSUER, iss, (CK_ULONG)iss_len},
		        {CKA_SERIAL_NUMBER, serial, (CK_ULONG)serial_len},
		};
		rv = TOK_CALL(t.tok->mod, C_CreateObject, t.h, tmpl,
		              P11M_ARRAY_SIZE(tmpl), &obj);
		if (rv != CKR_OK)
			rv = tok_fail(rv, TOK_DETAIL_NONE,
			              "the token %s did not take the "
			              "certificate (%s)",
			              t.tok->label, tok_rv_name(rv));
	}
out:
	OPENSSL_free(subj);
	OPENSSL_free(iss);
	OPENSSL_free(serial);
	X509_free(x);
	target_close(&t);
	return rv;
}
