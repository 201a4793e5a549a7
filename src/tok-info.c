/*
 * What the token core can tell about a workstation without using a key:
 * the modules it starts, the slots and tokens they show with their PIN
 * state, and whether a key URI names exactly one key.  For diagnostics;
 * nothing here writes to a token.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <p11-kit/p11-kit.h>

#include "common.h"
#include "tok-internal.h"

#define INFO_MAX_SLOTS 64
#define INFO_MAX_TOKS  16
#define INFO_MAX_FOUND 8

static void trim_copy(char *dst, const unsigned char *src, size_t len)
{
	memcpy(dst, src, len);
	while (len > 0 && (dst[len - 1] == ' ' || dst[len - 1] == '\0'))
		len--;
	dst[len] = '\0';
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

void tok_modules_free(struct tok_module_info *list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(list[i].name);
		free(list[i].path);
		free(list[i].error);
	}
	free(list);
}

void tok_tokens_free(struct tok_token_info *list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(list[i].module);
		free(list[i].module_path);
	}
	free(list);
}

/* Names and files of registry modules; p11_kit strings are ours to free. */
static int registry_entry(CK_FUNCTION_LIST *fl, struct tok_module_info *m)
{
	char *name = p11_kit_module_get_name(fl);
	char *path = p11_kit_config_option(fl, "module");

	memset(m, 0, sizeof(*m));
	m->from_registry = 1;
	m->loaded = 1;
	m->name = dup_or_null(name != NULL ? name : "?");
	m->path = dup_or_null(path);
	free(name);
	free(path);
	return m->name != NULL && (path == NULL || m->path != NULL) ? 0 : -1;
}

CK_RV tok_list_registry(tok_core *core, struct tok_module_info **list,
                        size_t *n)
{
	struct tok_module_info *l = NULL;
	size_t count = 0, i;
	CK_RV rv = CKR_OK;

	*list = NULL;
	*n = 0;
	tok_clear_error();
	pthread_mutex_lock(&core->lock);
	if (core->registry == NULL)
		core->registry = p11_kit_modules_load(NULL, 0);
	if (core->registry == NULL) {
		rv = tok_fail(CKR_GENERAL_ERROR, TOK_DETAIL_MODULE, "%s",
		              p11_kit_message());
		goto out;
	}
	while (core->registry[count] != NULL)
		count++;
	l = calloc(count + 1, sizeof(*l));
	rv = l == NULL ? CKR_HOST_MEMORY : CKR_OK;
	for (i = 0; rv == CKR_OK && i < count; i++)
		if (registry_entry(core->registry[i], &l[i]) != 0)
			rv = CKR_HOST_MEMORY;
	if (rv != CKR_OK)
		goto out;
	*list = l;
	*n = count;
	l = NULL;
out:
	pthread_mutex_unlock(&core->lock);
	tok_modules_free(l, count);
	return rv;
}

/* Starts the modules a URI reaches; a token found is not needed. */
static CK_RV start_modules(tok_core *core, const char *text)
{
	P11KitUri *uri = p11_kit_uri_new();
	size_t n = 0;
	CK_RV rv;

	if (uri == NULL)
		return CKR_HOST_MEMORY;
	if (p11_kit_uri_parse(text, P11_KIT_URI_FOR_ANY, uri) !=
	    P11_KIT_URI_OK) {
		p11_kit_uri_free(uri);
		return tok_fail(CKR_ARGUMENTS_BAD, TOK_DETAIL_URI,
		                "the module name %s cannot be used", text);
	}
	rv = tok_find_tokens(core, uri, NULL, 0, &n);
	p11_kit_uri_free(uri);
	if (rv == CKR_TOKEN_NOT_PRESENT) {
		tok_clear_error();
		rv = CKR_OK;
	}
	return rv;
}

/* What C_GetInfo and the slot list say of a started module. */
static void module_probe(struct tok_module *mod, struct tok_module_info *m)
{
	CK_INFO info;
	CK_ULONG all = 0;

	if (TOK_CALL(mod, C_GetInfo, &info) == CKR_OK) {
		m->has_info = 1;
		trim_copy(m->manufacturer, info.manufacturerID,
		          sizeof(info.manufacturerID));
		trim_copy(m->description, info.libraryDescription,
		          sizeof(info.libraryDescription));
		m->version_major = info.libraryVersion.major;
		m->version_minor = info.libraryVersion.minor;
	}
	/* Asked with no list first: some modules rescan readers only then. */
	m->slots_rv = TOK_CALL(mod, C_GetSlotList, CK_FALSE, NULL, &all);
	m->slots = m->slots_rv == CKR_OK ? all : 0;
}

static int module_describe(struct tok_module *mod, struct tok_module_info *m)
{
	char *path = NULL;

	memset(m, 0, sizeof(*m));
	m->name = strdup(mod->name);
	m->from_registry = mod->from_registry;
	m->loaded = 1;
	m->started = mod->initialized;
	if (mod->from_registry) {
		path = p11_kit_config_option(mod->fl, "module");
		m->path = dup_or_null(path);
		free(path);
	} else {
		m->path = strdup(mod->name);
	}
	if (m->started)
		module_probe(mod, m);
	else
		m->error = strdup("C_Initialize failed");
	return m->name != NULL && m->path != NULL &&
	                       (m->started || m->error != NULL)
	               ? 0
	               : -1;
}

/* The core's modules in the order they were met; core->lock held. */
static CK_RV modules_collect(tok_core *core, struct tok_module_info **list,
                             size_t *n)
{
	struct tok_module_info *l;
	struct tok_module *mod;
	size_t count = 0, i;

	for (mod = core->modules; mod != NULL; mod = mod->next)
		count++;
	l = calloc(count + 1, sizeof(*l));
	if (l == NULL)
		return CKR_HOST_MEMORY;
	/* The list is kept newest first. */
	i = count;
	for (mod = core->modules; mod != NULL; mod = mod->next)
		if (module_describe(mod, &l[--i]) != 0) {
			tok_modules_free(l, count);
			return CKR_HOST_MEMORY;
		}
	*list = l;
	*n = count;
	return CKR_OK;
}

/* The one entry for a module file that did not load, with why. */
static CK_RV module_failed(const char *path, struct tok_module_info **list,
                           size_t *n)
{
	struct tok_module_info *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return CKR_HOST_MEMORY;
	l->name = strdup(path);
	l->path = strdup(path);
	l->error = strdup(tok_last_error());
	if (l->name == NULL || l->path == NULL || l->error == NULL) {
		tok_modules_free(l, 1);
		return CKR_HOST_MEMORY;
	}
	*list = l;
	*n = 1;
	return CKR_OK;
}

/* A module given by path that did not start gets the core's sentence. */
static CK_RV explain_failures(struct tok_module_info *l, size_t n, CK_RV rv)
{
	const char *why = tok_last_error();

	for (size_t i = 0; i < n && why[0] != '\0'; i++) {
		char *copy;

		if (l[i].started || l[i].from_registry)
			continue;
		copy = strdup(why);
		if (copy == NULL)
			return CKR_HOST_MEMORY;
		free(l[i].error);
		l[i].error = copy;
	}
	return rv;
}

CK_RV tok_list_modules(tok_core *core, const char *name,
                       struct tok_module_info **list, size_t *n)
{
	char text[512];
	CK_RV rv, started;
	int len;

	*list = NULL;
	*n = 0;
	tok_clear_error();
	if (name != NULL && core->module_path == NULL) {
		len = snprintf(text, sizeof(text), "pkcs11:?module-name=%s",
		               name);
		/* the name becomes a URI query: nothing may end it early */
		if (len < 0 || (size_t)len >= sizeof(text) ||
		    strpbrk(name, ";?&") != NULL)
			return tok_fail(CKR_ARGUMENTS_BAD, TOK_DETAIL_MODULE,
			                "no PKCS#11 module named %s is "
			                "registered with p11-kit",
			                name);
	} else {
		snprintf(text, sizeof(text), "pkcs11:");
	}
	started = start_modules(core, text);

	pthread_mutex_lock(&core->lock);
	rv = modules_collect(core, list, n);
	pthread_mutex_unlock(&core->lock);
	if (rv == CKR_OK && *n == 0 && started != CKR_OK &&
	    core->module_path != NULL) {
		tok_modules_free(*list, *n);
		*list = NULL;
		rv = module_failed(core->module_path, list, n);
	}
	if (rv == CKR_OK && started != CKR_OK)
		rv = explain_failures(*list, *n, started);
	return rv;
}

static unsigned int flags_from(CK_FLAGS f)
{
	static const struct {
		CK_FLAGS ck;
		unsigned int bit;
	} map[] = {
	        {CKF_TOKEN_INITIALIZED, TOK_TF_INITIALIZED},
	        {CKF_LOGIN_REQUIRED, TOK_TF_LOGIN_REQUIRED},
	        {CKF_USER_PIN_INITIALIZED, TOK_TF_USER_PIN_SET},
	        {CKF_USER_PIN_COUNT_LOW, TOK_TF_PIN_COUNT_LOW},
	        {CKF_USER_PIN_FINAL_TRY, TOK_TF_PIN_FINAL_TRY},
	        {CKF_USER_PIN_LOCKED, TOK_TF_PIN_LOCKED},
	        {CKF_USER_PIN_TO_BE_CHANGED, TOK_TF_PIN_TO_BE_CHANGED},
	        {CKF_PROTECTED_AUTHENTICATION_PATH, TOK_TF_PROTECTED_AUTH_PATH},
	};
	unsigned int bits = TOK_TF_PRESENT;

	for (size_t i = 0; i < P11M_ARRAY_SIZE(map); i++)
		if (f & map[i].ck)
			bits |= map[i].bit;
	return bits;
}

/* Fills t from slot's token; -1 when the slot lost its token. */
static int token_describe(struct tok_module *mod, CK_SLOT_ID slot,
                          struct tok_token_info *t)
{
	CK_TOKEN_INFO ti;
	char *path = NULL;

	memset(t, 0, sizeof(*t));
	if (TOK_CALL(mod, C_GetTokenInfo, slot, &ti) != CKR_OK)
		return -1;
	t->slot = (unsigned long)slot;
	t->flags = flags_from(ti.flags);
	trim_copy(t->label, ti.label, sizeof(ti.label));
	trim_copy(t->serial, ti.serialNumber, sizeof(ti.serialNumber));
	trim_copy(t->manufacturer, ti.manufacturerID,
	          sizeof(ti.manufacturerID));
	trim_copy(t->model, ti.model, sizeof(ti.model));
	t->module = strdup(mod->name);
	if (mod->from_registry) {
		path = p11_kit_config_option(mod->fl, "module");
		t->module_path = dup_or_null(path);
		free(path);
	} else {
		t->module_path = strdup(mod->name);
	}
	return 0;
}

/* Appends mod's present tokens to l (room for max); core->lock held. */
static CK_RV module_tokens(struct tok_module *mod, struct tok_token_info *l,
                           size_t max, size_t *n)
{
	CK_SLOT_ID slots[INFO_MAX_SLOTS];
	CK_ULONG count = INFO_MAX_SLOTS;
	CK_RV rv;

	rv = TOK_CALL(mod, C_GetSlotList, CK_TRUE, slots, &count);
	if (rv == CKR_BUFFER_TOO_SMALL) {
		count = INFO_MAX_SLOTS;
		rv = CKR_OK;
	}
	if (rv != CKR_OK)
		return rv;
	for (CK_ULONG i = 0; i < count && *n < max; i++) {
		if (token_describe(mod, slots[i], &l[*n]) != 0)
			continue;
		(*n)++;
		if (l[*n - 1].module == NULL)
			return CKR_HOST_MEMORY;
	}
	return CKR_OK;
}

CK_RV tok_list_tokens(tok_core *core, struct tok_token_info **list, size_t *n)
{
	const size_t max = 4 * INFO_MAX_SLOTS;
	struct tok_token_info *l = NULL;
	struct tok_module *mods[32];
	size_t nmods = 0, count = 0;
	struct tok_module *mod;
	CK_RV rv = CKR_OK;

	*list = NULL;
	*n = 0;
	tok_clear_error();
	l = calloc(max, sizeof(*l));
	if (l == NULL)
		return CKR_HOST_MEMORY;
	pthread_mutex_lock(&core->lock);
	for (mod = core->modules; mod != NULL && nmods < 32; mod = mod->next)
		if (mod->initialized)
			mods[nmods++] = mod;
	/* Oldest module first, as the modules were listed. */
	while (rv == CKR_OK && nmods > 0) {
		rv = module_tokens(mods[--nmods], l, max, &count);
		/* A module that cannot list its slots is told by its info. */
		if (rv != CKR_OK && rv != CKR_HOST_MEMORY)
			rv = CKR_OK;
	}
	pthread_mutex_unlock(&core->lock);
	if (rv != CKR_OK) {
		tok_tokens_free(l, count);
		return rv;
	}
	*list = l;
	*n = count;
	return CKR_OK;
}

/* -- probing a key URI -- */

static CK_RV count_class(struct tok_token *tok, CK_SESSION_HANDLE h,
                         P11KitUri *uri, CK_OBJECT_CLASS cls,
                         CK_OBJECT_HANDLE *found, size_t *count)
{
	CK_ATTRIBUTE tmpl[3];
	CK_ULONG nt = 0;
	CK_ATTRIBUTE *a;

	tmpl[nt++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
	if ((a = p11_kit_uri_get_attribute(uri, CKA_ID)) != NULL)
		tmpl[nt++] = *a;
	if ((a = p11_kit_uri_get_attribute(uri, CKA_LABEL)) != NULL)
		tmpl[nt++] = *a;
	return tok_find(tok, h, tmpl, nt, found, INFO_MAX_FOUND, count);
}

/* Objects of any class the URI names on tok. */
static size_t objects_on(struct tok_token *tok, P11KitUri *uri)
{
	static const CK_OBJECT_CLASS all[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY,
	                                      CKO_CERTIFICATE};
	CK_OBJECT_HANDLE found[INFO_MAX_FOUND];
	CK_SESSION_HANDLE h;
	size_t total = 0, n;
	CK_RV rv;

	if (tok_session_get(tok, &h) != CKR_OK)
		return 0;
	rv = CKR_OK;
	for (size_t i = 0; rv == CKR_OK && i < P11M_ARRAY_SIZE(all); i++) {
		n = 0;
		rv = count_class(tok, h, uri, all[i], found, &n);
		total += n;
	}
	tok_session_put(tok, h, rv);
	return total;
}

/*
 * Compares the certificate's key with the public attributes of obj:
 * -1 when obj has none, 0 when they differ, 1 when they are the same.
 */
static int key_compare(struct tok_token *tok, CK_SESSION_HANDLE h,
                       CK_OBJECT_HANDLE obj, const unsigned char *der,
                       size_t der_len)
{
	struct tok_key_info info;
	unsigned char *n = NULL, *e = NULL, *pt = NULL;
	size_t n_len = 0, e_len = 0, pt_len = 0;
	int res = -1;

	memset(&info, 0, sizeof(info));
	tok_attr_get(tok, h, obj, CKA_MODULUS, &n, &n_len);
	tok_attr_get(tok, h, obj, CKA_PUBLIC_EXPONENT, &e, &e_len);
	if (n != NULL && e != NULL) {
		info.type = TOK_KEY_RSA;
		info.modulus = n;
		info.modulus_len = n_len;
		info.exponent = e;
		info.exponent_len = e_len;
		res = tok_pub_cert_matches(&info, der, der_len);
	} else if (n == NULL &&
	           tok_attr_get(tok, h, obj, CKA_EC_POINT, &pt, &pt_len) ==
	                   CKR_OK &&
	           pt != NULL) {
		info.type = TOK_KEY_EC;
		info.ec_point =
		        tok_ec_point_raw(pt, pt_len, &info.ec_point_len);
		res = tok_pub_cert_matches(&info, der, der_len);
	}
	free(n);
	free(e);
	free(pt);
	return res;
}

/* Compares the certificate with a certificate object's public key. */
static int cert_compare(struct tok_token *tok, CK_SESSION_HANDLE h,
                        CK_OBJECT_HANDLE obj, const unsigned char *der,
                        size_t der_len)
{
	unsigned char *value = NULL;
	size_t len = 0;
	const unsigned char *p;
	X509 *a = NULL, *b = NULL;
	int res = -1;

	if (tok_attr_get(tok, h, obj, CKA_VALUE, &value, &len) != CKR_OK ||
	    value == NULL)
		goto out;
	p = value;
	a = d2i_X509(NULL, &p, (long)len);
	p = der;
	b = d2i_X509(NULL, &p, (long)der_len);
	if (a != NULL && b != NULL)
		res = EVP_PKEY_eq(X509_get0_pubkey(a), X509_get0_pubkey(b)) ==
		      1;
out:
	X509_free(a);
	X509_free(b);
	free(value);
	return res;
}

/* The private key, else the public key, else a certificate object. */
static int probe_match(struct tok_token *tok, CK_SESSION_HANDLE h,
                       P11KitUri *uri, CK_OBJECT_HANDLE priv,
                       const unsigned char *der, size_t der_len)
{
	CK_OBJECT_HANDLE found[INFO_MAX_FOUND];
	size_t n = 0;
	int res = -1;

	if (der == NULL)
		return -1;
	if (priv != CK_INVALID_HANDLE)
		res = key_compare(tok, h, priv, der, der_len);
	if (res < 0 &&
	    count_class(tok, h, uri, CKO_PUBLIC_KEY, found, &n) == CKR_OK &&
	    n > 0)
		res = key_compare(tok, h, found[0], der, der_len);
	n = 0;
	if (res < 0 &&
	    count_class(tok, h, uri, CKO_CERTIFICATE, found, &n) == CKR_OK &&
	    n > 0)
		res = cert_compare(tok, h, found[0], der, der_len);
	return res;
}

static int session_logged_in(struct tok_token *tok, CK_SESSION_HANDLE h)
{
	CK_SESSION_INFO si;

	if (TOK_CALL(tok->mod, C_GetSessionInfo, h, &si) != CKR_OK)
		return 0;
	return si.state == CKS_RO_USER_FUNCTIONS ||
	       si.state == CKS_RW_USER_FUNCTIONS;
}

/* Logs in when asked and counts what the URI names on tok. */
static CK_RV probe_token(struct tok_token *tok, P11KitUri *uri, int login,
                         const unsigned char *der, size_t der_len,
                         struct tok_key_probe *p)
{
	struct tok_pin_src none = {NULL, NULL};
	CK_OBJECT_HANDLE found[INFO_MAX_FOUND];
	CK_SESSION_HANDLE h;
	CK_RV rv;

	snprintf(p->token_label, sizeof(p->token_label), "%s", tok->label);
	snprintf(p->token_serial, sizeof(p->token_serial), "%s", tok->serial);
	p->login_required = (tok->flags & CKF_LOGIN_REQUIRED) != 0;
	rv = tok_session_get(tok, &h);
	if (rv != CKR_OK)
		return tok_fail(rv, TOK_DETAIL_NONE,
		                "cannot open a session on %s (%s)", tok->label,
		                tok_rv_name(rv));
	/* The PIN comes from the application's callback, never the URI. */
	if (login && p->login_required && !session_logged_in(tok, h)) {
		p->login_rv = tok_login(tok, h, &none, NULL, NULL);
		if (p->login_rv != CKR_OK)
			snprintf(p->login_error, sizeof(p->login_error), "%s",
			         tok_last_error());
	}
	p->logged_in = session_logged_in(tok, h);
	rv = count_class(tok, h, uri, CKO_PRIVATE_KEY, found, &p->private_keys);
	if (rv == CKR_OK && p->private_keys <= 1)
		p->matches = probe_match(
		        tok, h, uri,
		        p->private_keys == 1 ? found[0] : CK_INVALID_HANDLE,
		        der, der_len);
	if (rv == CKR_OK)
		rv = count_class(tok, h, uri, CKO_PUBLIC_KEY, found,
		                 &p->public_keys);
	if (rv == CKR_OK)
		rv = count_class(tok, h, uri, CKO_CERTIFICATE, found,
		                 &p->certificates);
	tok_session_put(tok, h, rv);
	return rv;
}

CK_RV tok_probe_key(tok_core *core, const char *uri_text, int login,
                    const unsigned char *cert_der, size_t cert_der_len,
                    struct tok_key_probe *out)
{
	struct tok_token *toks[INFO_MAX_TOKS], *tok = NULL;
	struct tok_pin_src pins;
	P11KitUri *uri = NULL;
	size_t ntok = 0;
	CK_RV rv;

	memset(out, 0, sizeof(*out));
	out->matches = -1;
	tok_clear_error();
	/* The probe never logs in with the URI's PIN: it is dropped. */
	rv = tok_uri_open(uri_text, 0, &uri, &pins);
	tok_pin_src_clear(&pins);
	if (rv != CKR_OK)
		goto out;
	rv = tok_find_tokens(core, uri, toks, INFO_MAX_TOKS, &ntok);
	if (rv != CKR_OK)
		goto out;
	out->tokens = ntok;
	ntok = ntok < INFO_MAX_TOKS ? ntok : INFO_MAX_TOKS;
	if (ntok == 1) {
		tok = toks[0];
	} else {
		/* A URI without token attributes means the token holding it. */
		for (size_t i = 0; i < ntok; i++)
			if (objects_on(toks[i], uri) > 0) {
				tok = toks[i];
				out->holding++;
			}
		if (out->holding != 1)
			goto out;
	}
	out->holding = 1;
	rv = probe_token(tok, uri, login, cert_der, cert_der_len, out);
out:
	p11_kit_uri_free(uri);
	return rv;
}
