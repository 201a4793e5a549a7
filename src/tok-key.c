/*
 * Resolving a key: the URI picks exactly one token and one private key
 * (by CKA_ID, the label only a hint); the key's handle, public parts and
 * matching certificate are read once and cached, and found again by id
 * after the token was removed or the process forked.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "tok-internal.h"

#define MAX_FOUND  32
#define MAX_TOKENS 16

CK_RV tok_attr_get(struct tok_token *tok, CK_SESSION_HANDLE h,
                   CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
                   unsigned char **out, size_t *len)
{
	CK_ATTRIBUTE a = {type, NULL, 0};
	unsigned char *buf = NULL;
	CK_RV rv;

	*out = NULL;
	*len = 0;
	rv = TOK_CALL(tok->mod, C_GetAttributeValue, h, obj, &a, 1);
	/* An attribute the object lacks or hides is no error here. */
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
	    (rv == CKR_OK && a.ulValueLen == CK_UNAVAILABLE_INFORMATION))
		return CKR_OK;
	if (rv != CKR_OK)
		return rv;

	rv = CKR_HOST_MEMORY;
	buf = malloc(a.ulValueLen + 1);
	if (buf == NULL)
		goto out;
	a.pValue = buf;
	rv = TOK_CALL(tok->mod, C_GetAttributeValue, h, obj, &a, 1);
	if (rv != CKR_OK)
		goto out;
	buf[a.ulValueLen] = '\0';
	*out = buf;
	*len = a.ulValueLen;
	buf = NULL;
out:
	free(buf);
	return rv;
}

CK_RV tok_find(struct tok_token *tok, CK_SESSION_HANDLE h, CK_ATTRIBUTE *tmpl,
               CK_ULONG n, CK_OBJECT_HANDLE *found, size_t max, size_t *count)
{
	CK_ULONG got = 0;
	CK_RV rv;

	*count = 0;
	rv = TOK_CALL(tok->mod, C_FindObjectsInit, h, tmpl, n);
	if (rv != CKR_OK)
		return rv;
	rv = TOK_CALL(tok->mod, C_FindObjects, h, found, max, &got);
	TOK_CALL(tok->mod, C_FindObjectsFinal, h);
	if (rv == CKR_OK)
		*count = got;
	return rv;
}

/* Appends the URI of each object to text, for "candidates are" lists. */
static void list_uris(struct tok_token *tok, CK_SESSION_HANDLE h,
                      const CK_OBJECT_HANDLE *objs, size_t n,
                      CK_OBJECT_CLASS cls, char *text, size_t size)
{
	size_t i, used = strlen(text);

	for (i = 0; i < n && used + 1 < size; i++) {
		unsigned char *id = NULL;
		size_t id_len = 0;
		char *uri;

		tok_attr_get(tok, h, objs[i], CKA_ID, &id, &id_len);
		uri = tok_uri_format(tok, cls, id, id_len, NULL);
		snprintf(text + used, size - used, "%s%s", i ? " " : "",
		         uri ? uri : "?");
		used = strlen(text);
		free(uri);
		free(id);
	}
}

static CK_RV no_key(struct tok_token *tok, CK_SESSION_HANDLE h)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t = {CKA_CLASS, &cls, sizeof(cls)};
	CK_OBJECT_HANDLE all[MAX_FOUND];
	char text[900] = "";
	size_t n = 0;

	tok_find(tok, h, &t, 1, all, MAX_FOUND, &n);
	list_uris(tok, h, all, n, cls, text, sizeof(text));
	return tok_fail(CKR_KEY_HANDLE_INVALID, TOK_DETAIL_NONE,
	                "no private key on the token %s (serial %s) matches "
	                "the URI; keys there: %s",
	                tok->label, tok->serial, n ? text : "none");
}

/* Narrows several matches by label; label is only a hint. */
static size_t filter_label(struct tok_token *tok, CK_SESSION_HANDLE h,
                           CK_OBJECT_HANDLE *objs, size_t n,
                           const CK_ATTRIBUTE *label)
{
	size_t i, kept = 0;

	for (i = 0; i < n; i++) {
		unsigned char *v = NULL;
		size_t len = 0;

		tok_attr_get(tok, h, objs[i], CKA_LABEL, &v, &len);
		if (v != NULL && len == label->ulValueLen &&
		    memcmp(v, label->pValue, len) == 0)
			objs[kept++] = objs[i];
		free(v);
	}
	return kept ? kept : n;
}

/* The private keys on tok matching id (or label when there is no id). */
static CK_RV find_private(struct tok_token *tok, CK_SESSION_HANDLE h,
                          const CK_ATTRIBUTE *id, const CK_ATTRIBUTE *label,
                          CK_OBJECT_HANDLE *objs, size_t *n)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof(cls)}};
	CK_ULONG nt = 1;
	CK_RV rv;

	if (id != NULL)
		t[nt++] = *id;
	else if (label != NULL)
		t[nt++] = *label;
	rv = tok_find(tok, h, t, nt, objs, MAX_FOUND, n);
	if (rv == CKR_OK && *n > 1 && id != NULL && label != NULL)
		*n = filter_label(tok, h, objs, *n, label);
	return rv;
}

static CK_RV read_ulong(struct tok_token *tok, CK_SESSION_HANDLE h,
                        CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
                        CK_ULONG *val)
{
	CK_ATTRIBUTE a = {type, val, sizeof(*val)};

	return TOK_CALL(tok->mod, C_GetAttributeValue, h, obj, &a, 1);
}

static int read_bool(struct tok_token *tok, CK_SESSION_HANDLE h,
                     CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type)
{
	CK_BBOOL b = CK_FALSE;
	CK_ATTRIBUTE a = {type, &b, sizeof(b)};

	if (TOK_CALL(tok->mod, C_GetAttributeValue, h, obj, &a, 1) != CKR_OK)
		return 0;
	return b == CK_TRUE;
}

/* The public key object with the key's id, when the token keeps one. */
static CK_OBJECT_HANDLE find_public(struct tok_token *tok, CK_SESSION_HANDLE h,
                                    tok_key *key)
{
	CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
	CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof(cls)},
	                     {CKA_ID, key->id, key->info.id_len}};
	CK_OBJECT_HANDLE obj[2];
	size_t n = 0;

	if (tok_find(tok, h, t, 2, obj, 2, &n) != CKR_OK || n != 1)
		return CK_INVALID_HANDLE;
	return obj[0];
}

static CK_RV read_rsa_public(struct tok_token *tok, CK_SESSION_HANDLE h,
                             CK_OBJECT_HANDLE priv, tok_key *key)
{
	CK_OBJECT_HANDLE pub;
	size_t len;
	CK_RV rv;

	rv = tok_attr_get(tok, h, priv, CKA_MODULUS, &key->modulus, &len);
	key->info.modulus_len = len;
	if (rv == CKR_OK)
		rv = tok_attr_get(tok, h, priv, CKA_PUBLIC_EXPONENT,
		                  &key->exponent, &len);
	key->info.exponent_len = len;
	if (rv != CKR_OK || (key->modulus && key->exponent))
		return rv;

	pub = find_public(tok, h, key);
	if (pub == CK_INVALID_HANDLE)
		return CKR_OK;
	free(key->modulus);
	free(key->exponent);
	rv = tok_attr_get(tok, h, pub, CKA_MODULUS, &key->modulus, &len);
	key->info.modulus_len = len;
	if (rv == CKR_OK)
		rv = tok_attr_get(tok, h, pub, CKA_PUBLIC_EXPONENT,
		                  &key->exponent, &len);
	key->info.exponent_len = len;
	return rv;
}

static CK_RV read_ec_public(struct tok_token *tok, CK_SESSION_HANDLE h,
                            CK_OBJECT_HANDLE priv, tok_key *key)
{
	CK_OBJECT_HANDLE pub;
	const unsigned char *raw;
	unsigned char *pt = NULL;
	size_t len = 0, raw_len;
	CK_RV rv;

	rv = tok_attr_get(tok, h, priv, CKA_EC_PARAMS, &key->ec_params, &len);
	key->info.ec_params_len = len;
	if (rv != CKR_OK)
		return rv;
	pub = find_public(tok, h, key);
	if (pub == CK_INVALID_HANDLE)
		return CKR_OK;
	if (key->ec_params == NULL) {
		rv = tok_attr_get(tok, h, pub, CKA_EC_PARAMS, &key->ec_params,
		                  &len);
		key->info.ec_params_len = len;
	}
	if (rv == CKR_OK)
		rv = tok_attr_get(tok, h, pub, CKA_EC_POINT, &pt, &len);
	if (rv != CKR_OK || pt == NULL)
		goto out;
	raw = tok_ec_point_raw(pt, len, &raw_len);
	key->ec_point = malloc(raw_len);
	if (key->ec_point == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	memcpy(key->ec_point, raw, raw_len);
	key->info.ec_point_len = raw_len;
out:
	free(pt);
	return rv;
}

static void publish_info(tok_key *key)
{
	struct tok_key_info *info = &key->info;

	info->id = key->id;
	info->label = key->label != NULL ? key->label : "";
	info->token_label = key->tok->label;
	info->token_serial = key->tok->serial;
	info->uri = key->uri;
	info->modulus = key->modulus;
	info->exponent = key->exponent;
	info->ec_params = key->ec_params;
	info->ec_point = key->ec_point;
	info->cert_der = key->cert_der;
}

/* Takes a certificate from certs whose public key equals the key's. */
static void pair_certificate(struct tok_token *tok, CK_SESSION_HANDLE h,
                             tok_key *key, int by_id)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof(cls)},
	                     {CKA_ID, key->id, key->info.id_len}};
	CK_OBJECT_HANDLE objs[MAX_FOUND];
	size_t n = 0, i, len;
	unsigned char *der;

	if (tok_find(tok, h, t, by_id ? 2 : 1, objs, MAX_FOUND, &n) != CKR_OK)
		return;
	for (i = 0; i < n && key->cert_der == NULL; i++) {
		if (tok_attr_get(tok, h, objs[i], CKA_VALUE, &der, &len) !=
		            CKR_OK ||
		    der == NULL)
			continue;
		publish_info(key);
		if (tok_pub_cert_matches(&key->info, der, len)) {
			key->cert_der = der;
			key->info.cert_der_len = len;
		} else {
			free(der);
		}
	}
}

/* An EC key whose token keeps no public object: the point of its cert. */
static void ec_point_from_cert(struct tok_token *tok, CK_SESSION_HANDLE h,
                               tok_key *key)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof(cls)},
	                     {CKA_ID, key->id, key->info.id_len}};
	CK_OBJECT_HANDLE obj[2];
	unsigned char *der = NULL;
	size_t n = 0, len = 0;

	if (tok_find(tok, h, t, 2, obj, 2, &n) != CKR_OK || n != 1)
		return;
	if (tok_attr_get(tok, h, obj[0], CKA_VALUE, &der, &len) == CKR_OK &&
	    der != NULL)
		tok_pub_from_cert(der, len, CKK_EC, &key->ec_point,
		                  &key->info.ec_point_len, NULL, NULL);
	free(der);
}

static CK_RV read_key(struct tok_token *tok, CK_SESSION_HANDLE h,
                      CK_OBJECT_HANDLE obj, tok_key *key)
{
	size_t len = 0;
	CK_RV rv;

	rv = read_ulong(tok, h, obj, CKA_KEY_TYPE, &key->ktype);
	if (rv == CKR_OK)
		rv = tok_attr_get(tok, h, obj, CKA_ID, &key->id, &len);
	key->info.id_len = len;
	if (rv == CKR_OK)
		rv = tok_attr_get(tok, h, obj, CKA_LABEL,
		                  (unsigned char **)&key->label, &len);
	if (rv != CKR_OK)
		return rv;
	key->info.always_authenticate =
	        read_bool(tok, h, obj, CKA_ALWAYS_AUTHENTICATE);

	if (key->ktype == CKK_RSA) {
		key->info.type = TOK_KEY_RSA;
		rv = read_rsa_public(tok, h, obj, key);
	} else if (key->ktype == CKK_EC) {
		key->info.type = TOK_KEY_EC;
		rv = read_ec_public(tok, h, obj, key);
		if (rv == CKR_OK && key->ec_point == NULL)
			ec_point_from_cert(tok, h, key);
	} else {
		return tok_fail(CKR_KEY_TYPE_INCONSISTENT, TOK_DETAIL_NONE,
		                "the key is neither RSA nor EC");
	}
	return rv;
}

static void key_bits(tok_key *key)
{
	struct tok_key_info *info = &key->info;
	size_t i = 0;

	if (info->type == TOK_KEY_RSA && key->modulus != NULL) {
		while (i < info->modulus_len && key->modulus[i] == 0)
			i++;
		info->bits = (unsigned int)(info->modulus_len - i) * 8;
		if (i < info->modulus_len) {
			unsigned char top = key->modulus[i];
			while (!(top & 0x80)) {
				info->bits--;
				top = (unsigned char)(top << 1);
			}
		}
	} else if (info->type == TOK_KEY_EC && key->ec_params != NULL) {
		info->bits = tok_ec_bits(key->ec_params, info->ec_params_len);
	}
}

static void key_free(tok_key *key)
{
	if (key == NULL)
		return;
	tok_pin_free(key->aa_pin, key->aa_pin_len);
	tok_pin_src_clear(&key->pins);
	free(key->id);
	free(key->label);
	free(key->uri);
	free(key->modulus);
	free(key->exponent);
	free(key->ec_params);
	free(key->ec_point);
	free(key->cert_der);
	pthread_mutex_destroy(&key->lock);
	free(key);
}

CK_RV tok_key_from_handle(struct tok_token *tok, CK_SESSION_HANDLE h,
                          CK_OBJECT_HANDLE obj, struct tok_pin_src *pins,
                          tok_key **out)
{
	tok_key *key = NULL;
	CK_RV rv = CKR_HOST_MEMORY;

	*out = NULL;
	key = calloc(1, sizeof(*key));
	if (key == NULL)
		goto out;
	pthread_mutex_init(&key->lock, NULL);
	key->core = tok->core;
	key->tok = tok;
	key->refs = 1;
	key->handle = obj;
	pthread_mutex_lock(&tok->lock);
	key->generation = tok->generation;
	pthread_mutex_unlock(&tok->lock);

	rv = read_key(tok, h, obj, key);
	if (rv != CKR_OK)
		goto out;
	key_bits(key);
	pair_certificate(tok, h, key, 1);
	if (key->cert_der == NULL)
		pair_certificate(tok, h, key, 0);
	key->uri = tok_uri_format(tok, CKO_PRIVATE_KEY, key->id,
	                          key->info.id_len, NULL);
	if (key->uri == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	publish_info(key);
	if (pins != NULL) {
		key->pins = *pins;
		memset(pins, 0, sizeof(*pins));
	}
	*out = key;
	key = NULL;
out:
	key_free(key);
	return rv;
}

/* The tokens among toks that show a public object the URI names. */
static size_t narrow_tokens(struct tok_token **toks, size_t n,
                            const CK_ATTRIBUTE *id, const CK_ATTRIBUTE *label)
{
	static const CK_OBJECT_CLASS classes[] = {CKO_PUBLIC_KEY,
	                                          CKO_CERTIFICATE};
	CK_OBJECT_CLASS cls;
	CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof(cls)}};
	CK_OBJECT_HANDLE obj[1];
	CK_SESSION_HANDLE h;
	size_t i, c, kept = 0, found;

	if (id == NULL && label == NULL)
		return n;
	t[1] = id != NULL ? *id : *label;
	for (i = 0; i < n; i++) {
		if (tok_session_get(toks[i], &h) != CKR_OK)
			continue;
		for (c = 0, found = 0; c < 2 && !found; c++) {
			cls = classes[c];
			tok_find(toks[i], h, t, 2, obj, 1, &found);
		}
		tok_session_put(toks[i], h, CKR_OK);
		if (found)
			toks[kept++] = toks[i];
	}
	return kept;
}

static CK_RV ambiguous_tokens(struct tok_token **toks, size_t n)
{
	char text[900] = "";
	size_t i, used = 0;

	for (i = 0; i < n && used + 1 < sizeof(text); i++) {
		char *uri = tok_uri_format(toks[i], (CK_OBJECT_CLASS)-1, NULL,
		                           0, NULL);
		snprintf(text + used, sizeof(text) - used, "%s%s", i ? " " : "",
		         uri ? uri : "?");
		used = strlen(text);
		free(uri);
	}
	return tok_fail(CKR_ARGUMENTS_BAD, TOK_DETAIL_AMBIGUOUS,
	                "the URI matches %zu tokens: %s; name one by serial", n,
	                text);
}

/* Resolves the private key on tok; logs in; keeps the PIN when needed. */
static CK_RV key_resolve(struct tok_token *tok, P11KitUri *uri,
                         struct tok_pin_src *pins, tok_key **out)
{
	CK_ATTRIBUTE *id = p11_kit_uri_get_attribute(uri, CKA_ID);
	CK_ATTRIBUTE *label = p11_kit_uri_get_attribute(uri, CKA_LABEL);
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE objs[MAX_FOUND];
	unsigned char *kept = NULL;
	size_t n = 0, kept_len = 0;
	tok_key *key = NULL;
	char text[900] = "";
	CK_RV rv;

	*out = NULL;
	rv = tok_session_get(tok, &h);
	if (rv == CKR_OK)
		rv = tok_login(tok, h, pins, &kept, &kept_len);
	if (rv == CKR_OK)
		rv = find_private(tok, h, id, label, objs, &n);
	if (rv != CKR_OK)
		goto out;
	if (n == 0) {
		rv = no_key(tok, h);
		goto out;
	}
	if (n > 1) {
		list_uris(tok, h, objs, n, CKO_PRIVATE_KEY, text, sizeof(text));
		rv = tok_fail(CKR_ARGUMENTS_BAD, TOK_DETAIL_AMBIGUOUS,
		              "the URI matches %zu private keys on the token "
		              "%s: %s; name one by id",
		              n, tok->label, text);
		goto out;
	}
	rv = tok_key_from_handle(tok, h, objs[0], pins, &key);
	if (rv != CKR_OK)
		goto out;
	if (key->info.always_authenticate &&
	    tok->core->opts.auth_policy == TOK_AUTH_REUSE) {
		key->aa_pin = kept;
		key->aa_pin_len = kept_len;
		kept = NULL;
	}
	*out = key;
out:
	tok_pin_free(kept, kept_len);
	tok_session_put(tok, h, rv);
	return rv;
}

CK_RV tok_key_open(tok_core *core, const char *text, tok_key **out)
{
	struct tok_token *toks[MAX_TOKENS];
	struct tok_pin_src pins = {NULL, NULL};
	P11KitUri *uri = NULL;
	CK_ATTRIBUTE *cls;
	size_t n = 0;
	CK_RV rv;

	*out = NULL;
	tok_clear_error();
	if (core == NULL || text == NULL)
		return CKR_ARGUMENTS_BAD;
	rv = tok_uri_open(text, 1, &uri, &pins);
	if (rv != CKR_OK)
		goto out;
	cls = p11_kit_uri_get_attribute(uri, CKA_CLASS);
	if (cls != NULL &&
	    (cls->ulValueLen != sizeof(CK_OBJECT_CLASS) ||
	     *(CK_OBJECT_CLASS *)cls->pValue != CKO_PRIVATE_KEY)) {
		rv = tok_fail(CKR_KEY_HANDLE_INVALID, TOK_DETAIL_NONE,
		              "the URI names no private key: it asks for "
		              "another type of object than type=private");
		goto out;
	}
	rv = tok_find_tokens(core, uri, toks, MAX_TOKENS, &n);
	if (rv != CKR_OK)
		goto out;
	if (n > MAX_TOKENS)
		n = MAX_TOKENS;
	if (n > 1) {
		size_t all = n;
		n = narrow_tokens(toks, n,
		                  p11_kit_uri_get_attribute(uri, CKA_ID),
		                  p11_kit_uri_get_attribute(uri, CKA_LABEL));
		if (n != 1) {
			rv = ambiguous_tokens(toks, n ? n : all);
			goto out;
		}
	}
	rv = key_resolve(toks[0], uri, &pins, out);
out:
	tok_pin_src_clear(&pins);
	p11_kit_uri_free(uri);
	return rv;
}

tok_key *tok_key_ref(tok_key *key)
{
	if (key != NULL)
		__atomic_add_fetch(&key->refs, 1, __ATOMIC_RELAXED);
	return key;
}

void tok_key_unref(tok_key *key)
{
	if (key == NULL)
		return;
	if (__atomic_sub_fetch(&key->refs, 1, __ATOMIC_ACQ_REL) == 0)
		key_free(key);
}

const struct tok_key_info *tok_key_info(const tok_key *key)
{
	return &key->info;
}

CK_RV tok_key_reconnect(tok_key *key)
{
	struct tok_token *tok = key->tok;
	CK_ATTRIBUTE id = {CKA_ID, key->id, key->info.id_len};
	CK_ATTRIBUTE label = {CKA_LABEL, key->label,
	                      key->label ? strlen(key->label) : 0};
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE objs[MAX_FOUND];
	size_t n = 0;
	CK_RV rv;

	p11m_trace("token", "reconnecting to %s", key->uri);
	rv = tok_core_check_fork(key->core);
	if (rv != CKR_OK)
		return rv;
	pthread_mutex_lock(&tok->lock);
	tok_session_flush(tok, 1);
	pthread_mutex_unlock(&tok->lock);

	rv = tok_token_refind(tok);
	if (rv == CKR_OK)
		rv = tok_session_get(tok, &h);
	if (rv == CKR_OK)
		rv = tok_login(tok, h, &key->pins, NULL, NULL);
	if (rv == CKR_OK)
		rv = find_private(tok, h, &id, key->label ? &label : NULL, objs,
		                  &n);
	if (rv == CKR_OK && n != 1)
		rv = tok_fail(CKR_KEY_HANDLE_INVALID, TOK_DETAIL_NONE,
		              "the key %s is no longer on the token %s "
		              "(serial %s)",
		              key->uri, tok->label, tok->serial);
	if (rv == CKR_OK) {
		pthread_mutex_lock(&tok->lock);
		pthread_mutex_lock(&key->lock);
		key->handle = objs[0];
		key->generation = tok->generation;
		pthread_mutex_unlock(&key->lock);
		pthread_mutex_unlock(&tok->lock);
	}
	tok_session_put(tok, h, rv);
	return rv;
}

CK_RV tok_key_prepare(tok_key *key)
{
	unsigned long gen;
	CK_RV rv;

	rv = tok_core_check_fork(key->core);
	if (rv != CKR_OK)
		return rv;
	pthread_mutex_lock(&key->tok->lock);
	gen = key->tok->generation;
	pthread_mutex_unlock(&key->tok->lock);
	pthread_mutex_lock(&key->lock);
	gen = gen == key->generation;
	pthread_mutex_unlock(&key->lock);
	if (gen)
		return CKR_OK;
	return tok_key_reconnect(key);
}
