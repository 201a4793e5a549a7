/*
 * Listing, writing and deleting token objects, for p11mail-certinstall and
 * the provider's STORE: what a URI matches, key generation on the token,
 * certificates (written, or replacing a key's older one), and deleting a
 * key pair and its certificate by their id.
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
	rv = tok_uri_open(text, 0, &t->uri, &t->pins);
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
	/* Its flags may have changed since the scan: still nothing to list. */
	if (rv == CKR_TOKEN_NOT_RECOGNIZED)
		return CKR_OK;
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
	rv = tok_uri_open(uri_text, 0, &uri, &pins);
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

/* The attributes a certificate object gets, from its DER. */
struct cert_attrs {
	unsigned char *subj, *iss, *serial;
	int subj_len, iss_len, serial_len;
};

static void cert_attrs_clear(struct cert_attrs *a)
{
	OPENSSL_free(a->subj);
	OPENSSL_free(a->iss);
	OPENSSL_free(a->serial);
	memset(a, 0, sizeof(*a));
}

static CK_RV cert_attrs_get(const unsigned char *der, size_t der_len,
                            struct cert_attrs *a)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)der_len);
	CK_RV rv = CKR_OK;

	memset(a, 0, sizeof(*a));
	if (x == NULL || p != der + der_len)
		rv = tok_fail(CKR_ARGUMENTS_BAD, TOK_DETAIL_NONE,
		              "the certificate is not DER X.509");
	if (rv == CKR_OK) {
		a->subj_len = i2d_X509_NAME(X509_get_subject_name(x), &a->subj);
		a->iss_len = i2d_X509_NAME(X509_get_issuer_name(x), &a->iss);
		a->serial_len =
		        i2d_ASN1_INTEGER(X509_get_serialNumber(x), &a->serial);
		if (a->subj_len <= 0 || a->iss_len <= 0 || a->serial_len <= 0)
			rv = CKR_HOST_MEMORY;
	}
	if (rv != CKR_OK)
		cert_attrs_clear(a);
	X509_free(x);
	return rv;
}

/* Creates the certificate object on the target's token. */
static CK_RV cert_create(struct target *t, const struct cert_attrs *a,
                         const unsigned char *der, size_t der_len,
                         const unsigned char *id, size_t id_len,
                         const char *label, CK_OBJECT_HANDLE *obj)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ct = CKC_X_509;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE tmpl[] = {
	        {CKA_CLASS, &cls, sizeof(cls)},
	        {CKA_CERTIFICATE_TYPE, &ct, sizeof(ct)},
	        {CKA_TOKEN, &yes, sizeof(yes)},
	        {CKA_PRIVATE, &no, sizeof(no)},
	        {CKA_VALUE, tok_mut(der), der_len},
	        {CKA_ID, tok_mut(id), id_len},
	        {CKA_LABEL, tok_mut(label), label ? strlen(label) : 0},
	        {CKA_SUBJECT, a->subj, (CK_ULONG)a->subj_len},
	        {CKA_ISSUER, a->iss, (CK_ULONG)a->iss_len},
	        {CKA_SERIAL_NUMBER, a->serial, (CK_ULONG)a->serial_len},
	};
	CK_RV rv;

	rv = TOK_CALL(t->tok->mod, C_CreateObject, t->h, tmpl,
	              P11M_ARRAY_SIZE(tmpl), obj);
	if (rv != CKR_OK)
		rv = tok_fail(rv, TOK_DETAIL_NONE,
		              "the token %s did not take the certificate (%s)",
		              t->tok->label, tok_rv_name(rv));
	return rv;
}

CK_RV tok_write_certificate(tok_core *core, const char *token_uri,
                            const unsigned char *der, size_t der_len,
                            const unsigned char *id, size_t id_len,
                            const char *label)
{
	struct cert_attrs a;
	CK_OBJECT_HANDLE obj;
	struct target t;
	CK_RV rv;

	memset(&t, 0, sizeof(t));
	tok_clear_error();
	rv = cert_attrs_get(der, der_len, &a);
	if (rv != CKR_OK)
		return rv;
	rv = target_open(core, token_uri, &t);
	if (rv == CKR_OK)
		rv = id_unused(&t, CKO_CERTIFICATE, id, id_len);
	if (rv == CKR_OK)
		rv = cert_create(&t, &a, der, der_len, id, id_len, label, &obj);
	cert_attrs_clear(&a);
	target_close(&t);
	return rv;
}

/* Destroys one object; the sentence names what could not go. */
static CK_RV destroy(struct target *t, CK_OBJECT_HANDLE obj, const char *what)
{
	CK_RV rv = TOK_CALL(t->tok->mod, C_DestroyObject, t->h, obj);

	if (rv != CKR_OK)
		rv = tok_fail(rv, TOK_DETAIL_NONE,
		              "the token %s did not delete the %s (%s)",
		              t->tok->label, what, tok_rv_name(rv));
	return rv;
}

/* The handles of the objects of class cls with CKA_ID id on the target. */
static CK_RV find_by_id(struct target *t, CK_OBJECT_CLASS cls,
                        const unsigned char *id, size_t id_len,
                        CK_OBJECT_HANDLE *found, size_t max, size_t *count)
{
	CK_ATTRIBUTE tmpl[2] = {{CKA_CLASS, &cls, sizeof(cls)},
	                        {CKA_ID, tok_mut(id), id_len}};

	return tok_find(t->tok, t->h, tmpl, 2, found, max, count);
}

/* True when the certificate object obj has exactly the value der. */
static int cert_is(struct target *t, CK_OBJECT_HANDLE obj,
                   const unsigned char *der, size_t der_len)
{
	unsigned char *value = NULL;
	size_t len = 0;
	int same;

	same = tok_attr_get(t->tok, t->h, obj, CKA_VALUE, &value, &len) ==
	               CKR_OK &&
	       value != NULL && len == der_len && memcmp(value, der, len) == 0;
	free(value);
	return same;
}

CK_RV tok_replace_certificate(tok_core *core, const char *token_uri,
                              const unsigned char *der, size_t der_len,
                              const unsigned char *id, size_t id_len,
                              const char *label)
{
	CK_OBJECT_HANDLE old[MAX_LIST / 4], obj = CK_INVALID_HANDLE;
	size_t nold = 0, i;
	int have = 0;
	struct cert_attrs a;
	struct target t;
	CK_RV rv;

	memset(&t, 0, sizeof(t));
	tok_clear_error();
	if (id == NULL || id_len == 0)
		return tok_fail(CKR_ARGUMENTS_BAD, TOK_DETAIL_NONE,
		                "a certificate needs an id");
	rv = cert_attrs_get(der, der_len, &a);
	if (rv != CKR_OK)
		return rv;
	rv = target_open(core, token_uri, &t);
	if (rv == CKR_OK)
		rv = find_by_id(&t, CKO_CERTIFICATE, id, id_len, old,
		                P11M_ARRAY_SIZE(old), &nold);
	for (i = 0; rv == CKR_OK && i < nold && !have; i++)
		have = cert_is(&t, old[i], der, der_len);
	/* The new one first: a token that refuses it keeps the old one. */
	if (rv == CKR_OK && !have)
		rv = cert_create(&t, &a, der, der_len, id, id_len, label, &obj);
	for (i = 0; rv == CKR_OK && i < nold; i++)
		if (!cert_is(&t, old[i], der, der_len))
			rv = destroy(&t, old[i], "older certificate");
	/* Never two certificates for one id: take the new one back. */
	if (rv != CKR_OK && obj != CK_INVALID_HANDLE)
		TOK_CALL(t.tok->mod, C_DestroyObject, t.h, obj);
	cert_attrs_clear(&a);
	target_close(&t);
	return rv;
}

static const struct {
	unsigned int bit;
	CK_OBJECT_CLASS cls;
	const char *what;
} delete_classes[] = {
        {TOK_DELETE_CERT, CKO_CERTIFICATE, "certificate"},
        {TOK_DELETE_PUBLIC, CKO_PUBLIC_KEY, "public key"},
        {TOK_DELETE_PRIVATE, CKO_PRIVATE_KEY, "private key"},
};

/* The id to delete: the argument, or the URI's id=, in *id and *len. */
static CK_RV delete_id(struct target *t, const unsigned char **id, size_t *len)
{
	CK_ATTRIBUTE *a;

	if (*id != NULL && *len > 0)
		return CKR_OK;
	a = p11_kit_uri_get_attribute(t->uri, CKA_ID);
	if (a == NULL || a->ulValueLen == 0)
		return tok_fail(CKR_ARGUMENTS_BAD, TOK_DETAIL_NONE,
		                "deleting needs the objects' id");
	*id = a->pValue;
	*len = a->ulValueLen;
	return CKR_OK;
}

CK_RV tok_delete_objects(tok_core *core, const char *uri,
                         const unsigned char *id, size_t id_len,
                         unsigned int what, size_t *deleted)
{
	CK_OBJECT_HANDLE found[16];
	size_t n = 0, gone = 0, i, j;
	struct target t;
	CK_RV rv;

	if (deleted != NULL)
		*deleted = 0;
	memset(&t, 0, sizeof(t));
	tok_clear_error();
	if ((what & TOK_DELETE_ALL) == 0)
		return tok_fail(CKR_ARGUMENTS_BAD, TOK_DETAIL_NONE,
		                "nothing to delete was asked for");
	rv = target_open(core, uri, &t);
	if (rv == CKR_OK)
		rv = delete_id(&t, &id, &id_len);
	/* Certificates first, the private key last: it cannot come back. */
	for (i = 0; rv == CKR_OK && i < P11M_ARRAY_SIZE(delete_classes); i++) {
		if ((what & delete_classes[i].bit) == 0)
			continue;
		rv = find_by_id(&t, delete_classes[i].cls, id, id_len, found,
		                P11M_ARRAY_SIZE(found), &n);
		for (j = 0; rv == CKR_OK && j < n; j++) {
			rv = destroy(&t, found[j], delete_classes[i].what);
			gone += rv == CKR_OK;
		}
	}
	if (deleted != NULL)
		*deleted = gone;
	if (rv == CKR_OK && gone > 0)
		p11m_trace("token", "deleted %zu objects from %s", gone,
		           t.tok->label);
	target_close(&t);
	return rv;
}
