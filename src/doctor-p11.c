/*
 * p11mail doctor: PKCS#11 modules, tokens and identity keys.  Read-only:
 * sessions are read-only and a login happens only when asked, never after
 * the token reported a PIN problem and never twice.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

#include "doctor.h"

#define MAX_MODULES 16
#define MAX_TOKENS  64
#define MAX_FOUND   8

struct p11_module {
	char *name; /* path, or the registry's name */
	char *path; /* registry modules: the file, for commands shown */
	CK_FUNCTION_LIST *fl;
	int from_registry;
	int initialized;
};

struct p11_token {
	struct p11_module *mod;
	CK_SLOT_ID slot;
	CK_TOKEN_INFO info;
	char label[33];
	char serial[17];
	CK_SESSION_HANDLE session; /* kept open: a login lasts while it does */
	int has_session;
	int login_tried;
	int logged_in;
};

struct doctor_p11 {
	struct p11_module mods[MAX_MODULES];
	size_t nmods;
	struct p11_token toks[MAX_TOKENS];
	size_t ntoks;
	CK_FUNCTION_LIST **registry;
};

static const char *env_or_conf(const struct doctor *d, const char *key,
                               const char *env)
{
	const char *v = p11mail_config_get(d->cfg, "token", key);

	if (v == NULL || *v == '\0')
		v = secure_getenv(env);
	return v != NULL && *v != '\0' ? v : NULL;
}

static int is_path(const char *m)
{
	size_t len = strlen(m);

	return strchr(m, '/') != NULL ||
	       (len > 3 && strcmp(m + len - 3, ".so") == 0);
}

static void trim(char *dst, const unsigned char *src, size_t len)
{
	memcpy(dst, src, len);
	while (len > 0 && dst[len - 1] == ' ')
		len--;
	dst[len] = '\0';
}

static struct p11_module *module_add(struct doctor_p11 *p11,
                                     CK_FUNCTION_LIST *fl, const char *name,
                                     int from_registry)
{
	struct p11_module *m;

	if (p11->nmods == MAX_MODULES)
		return NULL;
	m = &p11->mods[p11->nmods];
	m->name = strdup(name);
	if (m->name == NULL)
		return NULL;
	m->fl = fl;
	m->from_registry = from_registry;
	p11->nmods++;
	return m;
}

/* Lists the registry; every module is only loaded, not started. */
static void list_registry(struct doctor *d, struct doctor_p11 *p11,
                          int is_source)
{
	size_t i;

	p11->registry = p11_kit_modules_load(NULL, 0);
	if (p11->registry == NULL) {
		doctor_add(d, is_source ? DOCTOR_FAIL : DOCTOR_WARN, "module",
		           "check the files in /usr/share/p11-kit/modules",
		           "the p11-kit registry does not load: %s",
		           p11_kit_message());
		return;
	}
	for (i = 0; p11->registry[i] != NULL; i++) {
		char *name = p11_kit_module_get_name(p11->registry[i]);
		char *path = p11_kit_config_option(p11->registry[i], "module");

		doctor_add(d, DOCTOR_OK, "module", NULL,
		           "p11-kit registry: %s (%s)",
		           name != NULL ? name : "?",
		           path != NULL ? path : "?");
		free(name);
		free(path);
	}
	if (i == 0)
		doctor_add(d, is_source ? DOCTOR_FAIL : DOCTOR_OK, "module",
		           "install the card's module (apt-get install "
		           "opensc-pkcs11) or set [token] module",
		           "no module is registered with p11-kit");
}

static void report_info(struct doctor *d, struct p11_module *m)
{
	CK_INFO info;
	char manuf[33], desc[33];

	if (m->fl->C_GetInfo == NULL || m->fl->C_GetInfo(&info) != CKR_OK) {
		doctor_add(d, DOCTOR_OK, "module", NULL, "%s started", m->name);
		return;
	}
	trim(manuf, info.manufacturerID, sizeof(info.manufacturerID));
	trim(desc, info.libraryDescription, sizeof(info.libraryDescription));
	doctor_add(d, DOCTOR_OK, "module", NULL, "%s started: %s, %s %u.%u",
	           m->name, manuf, desc, info.libraryVersion.major,
	           info.libraryVersion.minor);
}

static void load_path(struct doctor *d, struct doctor_p11 *p11,
                      const char *path)
{
	const char *init_args =
	        env_or_conf(d, "init-args", "P11MAIL_INIT_ARGS");
	CK_C_INITIALIZE_ARGS args;
	struct p11_module *m;
	CK_FUNCTION_LIST *fl;
	CK_RV rv;

	fl = p11_kit_module_load(path, 0);
	if (fl == NULL) {
		doctor_add(d, DOCTOR_FAIL, "module",
		           "install the module's package (opensc-pkcs11 for "
		           "smart cards) or correct [token] module",
		           "the PKCS#11 module %s does not load: %s", path,
		           p11_kit_message());
		return;
	}
	m = module_add(p11, fl, path, 0);
	if (m == NULL) {
		p11_kit_module_release(fl);
		d->nomem = 1;
		return;
	}
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	/* the module only reads it */
	args.pReserved = (void *)(uintptr_t)init_args;
	rv = fl->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		doctor_add(d, DOCTOR_FAIL, "module",
		           "check the module's own configuration (NSS softokn "
		           "needs [token] init-args)",
		           "the PKCS#11 module %s does not start: %s", path,
		           p11_kit_strerror(rv));
		return;
	}
	m->initialized = 1;
	report_info(d, m);
}

static void start_registry(struct doctor *d, struct doctor_p11 *p11,
                           const char *only)
{
	struct p11_module *m;
	char *name;

	for (size_t i = 0; p11->registry[i] != NULL; i++) {
		name = p11_kit_module_get_name(p11->registry[i]);
		if (name == NULL || (only != NULL && strcmp(name, only) != 0) ||
		    (m = module_add(p11, p11->registry[i], name, 1)) == NULL) {
			free(name);
			continue;
		}
		free(name);
		m->path = p11_kit_config_option(m->fl, "module");
		if (p11_kit_module_initialize(m->fl) != CKR_OK) {
			doctor_add(d, DOCTOR_WARN, "module",
			           "check the module's configuration, or "
			           "unregister it from p11-kit",
			           "p11-kit module %s does not start: %s",
			           m->name, p11_kit_message());
			continue;
		}
		m->initialized = 1;
		report_info(d, m);
	}
	if (only != NULL && p11->nmods == 0)
		doctor_add(d, DOCTOR_FAIL, "module",
		           "register the module with p11-kit, or give its path "
		           "in [token] module",
		           "[token] module %s is not registered with p11-kit",
		           only);
}

static void load_modules(struct doctor *d, struct doctor_p11 *p11)
{
	const char *module = env_or_conf(d, "module", "P11MAIL_MODULE");
	int explicit = module != NULL && is_path(module);

	list_registry(d, p11, !explicit);
	if (explicit)
		load_path(d, p11, module);
	else if (p11->registry != NULL)
		start_registry(d, p11, module);
}

static void token_add(struct doctor_p11 *p11, struct p11_module *m,
                      CK_SLOT_ID slot)
{
	struct p11_token *t;

	if (p11->ntoks == MAX_TOKENS)
		return;
	t = &p11->toks[p11->ntoks];
	memset(t, 0, sizeof(*t));
	if (m->fl->C_GetTokenInfo(slot, &t->info) != CKR_OK)
		return;
	t->mod = m;
	t->slot = slot;
	trim(t->label, t->info.label, sizeof(t->info.label));
	trim(t->serial, t->info.serialNumber, sizeof(t->info.serialNumber));
	p11->ntoks++;
}

/* Adds the module's tokens; returns how many slots (readers) it has. */
static unsigned long scan_module(struct doctor *d, struct doctor_p11 *p11,
                                 struct p11_module *m)
{
	CK_SLOT_ID slots[MAX_TOKENS];
	CK_ULONG all = 0, n = 0;
	CK_RV rv;

	/* A NULL list first: some modules rescan their readers only then. */
	rv = m->fl->C_GetSlotList(CK_FALSE, NULL, &all);
	if (rv == CKR_OK)
		rv = m->fl->C_GetSlotList(CK_TRUE, NULL, &n);
	if (rv == CKR_OK) {
		n = n > MAX_TOKENS ? MAX_TOKENS : n;
		rv = m->fl->C_GetSlotList(CK_TRUE, slots, &n);
	}
	if (rv != CKR_OK) {
		doctor_add(d, DOCTOR_FAIL, "token",
		           "check the reader and pcscd (pcsc_scan) or the "
		           "token's driver",
		           "%s cannot list its slots: %s", m->name,
		           p11_kit_strerror(rv));
		return 0;
	}
	for (CK_ULONG i = 0; i < n; i++)
		token_add(p11, m, slots[i]);
	return all;
}

static void pin_state(struct doctor *d, const struct p11_token *t)
{
	char next[512];
	const char *mod = t->mod->path != NULL ? t->mod->path : t->mod->name;
	CK_FLAGS f = t->info.flags;

	if (f & CKF_USER_PIN_LOCKED) {
		snprintf(next, sizeof(next),
		         "unblock it with the SO PIN: pkcs11-tool --module %s "
		         "--login --login-type so --init-pin (or the card "
		         "issuer's tool)",
		         mod);
		doctor_add(
		        d, DOCTOR_FAIL, "token", next,
		        "%s: the user PIN is locked; p11mail will not log in",
		        t->label);
	} else if (f & CKF_USER_PIN_FINAL_TRY) {
		snprintf(next, sizeof(next),
		         "make sure of the PIN before one login with the "
		         "issuer's tool, or reset it with the SO PIN "
		         "(pkcs11-tool --module %s --login --login-type so "
		         "--init-pin)",
		         mod);
		doctor_add(d, DOCTOR_FAIL, "token", next,
		           "%s: one PIN try is left; p11mail refuses to log in",
		           t->label);
	} else if (f & CKF_USER_PIN_COUNT_LOW) {
		doctor_add(d, DOCTOR_WARN, "token",
		           "check the PIN before the next use; a correct login "
		           "resets the count",
		           "%s: a wrong PIN was entered since the last login",
		           t->label);
	}
	if (f & CKF_USER_PIN_TO_BE_CHANGED) {
		snprintf(next, sizeof(next),
		         "change it: pkcs11-tool --module %s --login "
		         "--change-pin",
		         mod);
		doctor_add(d, DOCTOR_FAIL, "token", next,
		           "%s: the user PIN must be changed before use",
		           t->label);
	}
}

static void report_token(struct doctor *d, const struct p11_token *t)
{
	char manuf[33], model[17];
	CK_FLAGS f = t->info.flags;

	trim(manuf, t->info.manufacturerID, sizeof(t->info.manufacturerID));
	trim(model, t->info.model, sizeof(t->info.model));
	/* SoftHSM2 always offers one such slot for a new token. */
	if ((f & CKF_TOKEN_INITIALIZED) == 0) {
		doctor_add(d, DOCTOR_OK, "token", NULL,
		           "slot %lu of %s holds an uninitialized token",
		           (unsigned long)t->slot, t->mod->name);
		return;
	}
	doctor_add(d, DOCTOR_OK, "token", NULL, "%s (serial %s, %s %s) in %s",
	           t->label, t->serial, manuf, model, t->mod->name);
	if ((f & CKF_LOGIN_REQUIRED) && (f & CKF_USER_PIN_INITIALIZED) == 0)
		doctor_add(d, DOCTOR_FAIL, "token",
		           "set a user PIN with the SO PIN (pkcs11-tool "
		           "--login --login-type so --init-pin)",
		           "%s: no user PIN is set", t->label);
	pin_state(d, t);
}

struct doctor_p11 *doctor_check_tokens(struct doctor *d)
{
	struct doctor_p11 *p11 = calloc(1, sizeof(*p11));
	unsigned long slots = 0;
	size_t usable = 0;

	if (p11 == NULL) {
		d->nomem = 1;
		return NULL;
	}
	load_modules(d, p11);
	for (size_t i = 0; i < p11->nmods; i++)
		if (p11->mods[i].initialized)
			slots += scan_module(d, p11, &p11->mods[i]);
	for (size_t i = 0; i < p11->ntoks; i++) {
		report_token(d, &p11->toks[i]);
		usable +=
		        (p11->toks[i].info.flags & CKF_TOKEN_INITIALIZED) != 0;
	}
	if (usable == 0 && p11->nmods > 0)
		doctor_add(d, DOCTOR_FAIL, "token",
		           "insert the card or USB token; for a card reader "
		           "check that pcscd runs (pcsc_scan)",
		           "no token is present (%lu empty slot%s)", slots,
		           slots == 1 ? "" : "s");
	return p11;
}

void doctor_p11_free(struct doctor_p11 *p11)
{
	if (p11 == NULL)
		return;
	for (size_t i = 0; i < p11->ntoks; i++)
		if (p11->toks[i].has_session)
			p11->toks[i].mod->fl->C_CloseSession(
			        p11->toks[i].session);
	for (size_t i = 0; i < p11->nmods; i++) {
		struct p11_module *m = &p11->mods[i];

		if (m->from_registry && m->initialized)
			p11_kit_module_finalize(m->fl);
		else if (m->initialized)
			m->fl->C_Finalize(NULL);
		if (!m->from_registry)
			p11_kit_module_release(m->fl);
		free(m->name);
		free(m->path);
	}
	if (p11->registry != NULL)
		p11_kit_modules_release(p11->registry);
	free(p11);
}

/* The PIN source for --login: the URI's, else [token] pin-source. */
static const char *pin_source(const struct doctor *d, P11KitUri *uri)
{
	const char *s = p11_kit_uri_get_pin_source(uri);

	if (s == NULL || *s == '\0')
		s = p11mail_config_get(d->cfg, "token", "pin-source");
	return s != NULL && *s != '\0' ? s : NULL;
}

static void login(struct doctor *d, struct p11_token *t, const char *who,
                  const char *source)
{
	char src[4096];
	char *pin = NULL;
	CK_RV rv;

	t->login_tried = 1;
	if (t->info.flags & (CKF_USER_PIN_LOCKED | CKF_USER_PIN_FINAL_TRY |
	                     CKF_USER_PIN_TO_BE_CHANGED))
		return; /* the token finding says why and what to do */
	if (source == NULL) {
		doctor_add(d, DOCTOR_WARN, "identity",
		           "set [token] pin-source = file:PATH for --login",
		           "%s: no PIN source to log in to %s", who, t->label);
		return;
	}
	snprintf(src, sizeof(src), "%s%s",
	         strncmp(source, "file:", 5) == 0 ? "" : "file:", source);
	if (p11mail_secret_read(src, &pin) != P11MAIL_OK) {
		doctor_add(d, DOCTOR_FAIL, "identity",
		           "make the PIN file readable by you only (chmod 600)",
		           "%s: the PIN source %s cannot be used: %s", who,
		           source, d->last_log);
		return;
	}
	rv = t->mod->fl->C_Login(t->session, CKU_USER, (CK_UTF8CHAR *)pin,
	                         (CK_ULONG)strlen(pin));
	p11mail_secret_free(pin);
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
		t->logged_in = 1;
	else
		doctor_add(d, DOCTOR_FAIL, "identity",
		           rv == CKR_PIN_INCORRECT
		                   ? "correct the PIN in that file; p11mail "
		                     "never retries a refused PIN"
		                   : "see the token's finding above",
		           "%s: %s refused the login with the PIN from %s: %s",
		           who, t->label, source, p11_kit_strerror(rv));
}

/* Counts the objects of a class matching the URI; handles go to found. */
static CK_ULONG find(struct p11_token *t, P11KitUri *uri, CK_OBJECT_CLASS cls,
                     CK_OBJECT_HANDLE found[MAX_FOUND])
{
	CK_ATTRIBUTE tmpl[4];
	CK_ULONG n = 0, got = 0;
	CK_FUNCTION_LIST *fl = t->mod->fl;
	CK_ATTRIBUTE *a;

	tmpl[n++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
	if ((a = p11_kit_uri_get_attribute(uri, CKA_ID)) != NULL)
		tmpl[n++] = *a;
	if ((a = p11_kit_uri_get_attribute(uri, CKA_LABEL)) != NULL)
		tmpl[n++] = *a;
	if (fl->C_FindObjectsInit(t->session, tmpl, n) != CKR_OK)
		return 0;
	if (fl->C_FindObjects(t->session, found, MAX_FOUND, &got) != CKR_OK)
		got = 0;
	fl->C_FindObjectsFinal(t->session);
	return got;
}

static unsigned char *attr_read(struct p11_token *t, CK_OBJECT_HANDLE obj,
                                CK_ATTRIBUTE_TYPE type, CK_ULONG *len)
{
	CK_ATTRIBUTE a = {type, NULL, 0};
	CK_FUNCTION_LIST *fl = t->mod->fl;

	*len = 0;
	if (fl->C_GetAttributeValue(t->session, obj, &a, 1) != CKR_OK ||
	    a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen == 0)
		return NULL;
	a.pValue = malloc(a.ulValueLen);
	if (a.pValue == NULL)
		return NULL;
	if (fl->C_GetAttributeValue(t->session, obj, &a, 1) != CKR_OK) {
		free(a.pValue);
		return NULL;
	}
	*len = a.ulValueLen;
	return a.pValue;
}

/* 1: same bytes, ignoring leading zeros of a big-endian number. */
static int same_number(const unsigned char *a, size_t alen,
                       const unsigned char *b, size_t blen)
{
	while (alen > 0 && *a == 0)
		a++, alen--;
	while (blen > 0 && *b == 0)
		b++, blen--;
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* CKA_EC_POINT is a DER OCTET STRING on most tokens, raw on a few. */
static int same_point(const unsigned char *tok, size_t len,
                      const unsigned char *pt, size_t ptlen)
{
	if (len == ptlen && memcmp(tok, pt, len) == 0)
		return 1;
	if (len > 2 && tok[0] == 0x04 && tok[1] < 0x80 &&
	    (size_t)tok[1] + 2 == len)
		return len - 2 == ptlen && memcmp(tok + 2, pt, ptlen) == 0;
	if (len > 3 && tok[0] == 0x04 && tok[1] == 0x81 &&
	    (size_t)tok[2] + 3 == len)
		return len - 3 == ptlen && memcmp(tok + 3, pt, ptlen) == 0;
	return 0;
}

/* -1: nothing to compare with; 0: different; 1: the same key. */
static int key_matches(struct p11_token *t, CK_OBJECT_HANDLE obj, X509 *cert)
{
	EVP_PKEY *pkey = X509_get0_pubkey(cert);
	unsigned char *tok = NULL, *pub = NULL;
	CK_ULONG len = 0;
	BIGNUM *n = NULL;
	size_t publen = 0;
	int res = -1;

	if (pkey == NULL)
		goto out;
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		tok = attr_read(t, obj, CKA_MODULUS, &len);
		if (tok == NULL ||
		    !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n))
			goto out;
		publen = (size_t)BN_num_bytes(n);
		pub = malloc(publen + 1);
		if (pub == NULL)
			goto out;
		BN_bn2bin(n, pub);
		res = same_number(tok, len, pub, publen);
	} else if (EVP_PKEY_is_a(pkey, "EC")) {
		tok = attr_read(t, obj, CKA_EC_POINT, &len);
		if (tok == NULL ||
		    !EVP_PKEY_get_octet_string_param(
		            pkey, OSSL_PKEY_PARAM_PUB_KEY, NULL, 0, &publen) ||
		    (pub = malloc(publen)) == NULL ||
		    !EVP_PKEY_get_octet_string_param(pkey,
		                                     OSSL_PKEY_PARAM_PUB_KEY,
		                                     pub, publen, &publen))
			goto out;
		res = same_point(tok, len, pub, publen);
	}
out:
	BN_free(n);
	free(tok);
	free(pub);
	return res;
}

static int cert_object_matches(struct p11_token *t, CK_OBJECT_HANDLE obj,
                               X509 *cert)
{
	CK_ULONG len = 0;
	unsigned char *der = attr_read(t, obj, CKA_VALUE, &len);
	const unsigned char *p = der;
	X509 *x = der != NULL ? d2i_X509(NULL, &p, (long)len) : NULL;
	int res = -1;

	if (x != NULL)
		res = EVP_PKEY_eq(X509_get0_pubkey(x), X509_get0_pubkey(cert));
	X509_free(x);
	free(der);
	return res;
}

/* Compares with the private key, else the public key, else a certificate. */
static void check_match(struct doctor *d, struct p11_token *t, P11KitUri *uri,
                        const char *who, X509 *cert, CK_OBJECT_HANDLE priv)
{
	CK_OBJECT_HANDLE found[MAX_FOUND];
	int res = priv != CK_INVALID_HANDLE ? key_matches(t, priv, cert) : -1;

	if (res < 0 && find(t, uri, CKO_PUBLIC_KEY, found) > 0)
		res = key_matches(t, found[0], cert);
	if (res < 0 && find(t, uri, CKO_CERTIFICATE, found) > 0)
		res = cert_object_matches(t, found[0], cert);
	if (res == 0)
		doctor_add(d, DOCTOR_FAIL, "identity",
		           "install the certificate issued for this key, or "
		           "reinstall the identity with p11mail-certinstall",
		           "%s: the certificate's public key is not the key "
		           "on %s",
		           who, t->label);
	else if (res == 1)
		doctor_add(d, DOCTOR_OK, "identity", NULL,
		           "%s: the certificate matches the key on %s", who,
		           t->label);
	else
		doctor_add(d, DOCTOR_WARN, "identity",
		           "run p11mail doctor --login to compare them",
		           "%s: no public part on %s to compare with the "
		           "certificate",
		           who, t->label);
}

static int session_for(struct doctor *d, struct p11_token *t, const char *who)
{
	CK_RV rv;

	if (t->has_session)
		return 0;
	rv = t->mod->fl->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL,
	                               &t->session);
	if (rv != CKR_OK) {
		doctor_add(d, DOCTOR_FAIL, "identity",
		           "take the token out and insert it again",
		           "%s: cannot open a session on %s: %s", who, t->label,
		           p11_kit_strerror(rv));
		return -1;
	}
	t->has_session = 1;
	return 0;
}

/* Objects of any kind the URI names on t (after a session is open). */
static CK_ULONG objects_on(struct p11_token *t, P11KitUri *uri)
{
	CK_OBJECT_HANDLE found[MAX_FOUND];

	return find(t, uri, CKO_PRIVATE_KEY, found) +
	       find(t, uri, CKO_PUBLIC_KEY, found) +
	       find(t, uri, CKO_CERTIFICATE, found);
}

/*
 * The one token the URI names.  A URI without token attributes matches
 * every token: then the one holding its objects is meant.
 */
static struct p11_token *token_for(struct doctor *d, struct doctor_p11 *p11,
                                   P11KitUri *uri, const char *who,
                                   const char *shown)
{
	struct p11_token *match = NULL;
	size_t n = 0, held = 0;

	for (size_t i = 0; i < p11->ntoks; i++)
		if (p11_kit_uri_match_token_info(uri, &p11->toks[i].info)) {
			match = &p11->toks[i];
			n++;
		}
	if (n > 1) {
		match = NULL;
		for (size_t i = 0; i < p11->ntoks; i++) {
			struct p11_token *t = &p11->toks[i];

			if (p11_kit_uri_match_token_info(uri, &t->info) &&
			    session_for(d, t, who) == 0 &&
			    objects_on(t, uri) > 0) {
				match = t;
				held++;
			}
		}
	}
	if (n == 0 || (n > 1 && held == 0))
		doctor_add(d, DOCTOR_FAIL, "identity",
		           "insert the token that holds the key; if it was "
		           "replaced, reinstall the identity with "
		           "p11mail-certinstall",
		           "%s: no present token holds its key %s", who, shown);
	else if (held > 1)
		doctor_add(d, DOCTOR_FAIL, "identity",
		           "reinstall the identity so that its URI names the "
		           "token by serial",
		           "%s: its key URI %s matches %zu tokens", who, shown,
		           held);
	return n == 1 || held == 1 ? match : NULL;
}

static void check_key_on(struct doctor *d, struct p11_token *t, P11KitUri *uri,
                         const char *who, const char *shown, X509 *cert)
{
	CK_OBJECT_HANDLE found[MAX_FOUND];
	CK_ULONG npriv, npub;
	int hidden;

	if (d->login && !t->login_tried && (t->info.flags & CKF_LOGIN_REQUIRED))
		login(d, t, who, pin_source(d, uri));
	npriv = find(t, uri, CKO_PRIVATE_KEY, found);
	hidden = !t->logged_in && (t->info.flags & CKF_LOGIN_REQUIRED);
	if (npriv > 1) {
		doctor_add(d, DOCTOR_FAIL, "identity",
		           "reinstall the identity so that its URI names the "
		           "key by id",
		           "%s: its key URI %s names %lu keys", who, shown,
		           (unsigned long)npriv);
		return;
	}
	if (npriv == 1) {
		doctor_add(d, DOCTOR_OK, "identity", NULL,
		           "%s: one private key on %s", who, t->label);
		check_match(d, t, uri, who, cert, found[0]);
		return;
	}
	npub = find(t, uri, CKO_PUBLIC_KEY, found) +
	       find(t, uri, CKO_CERTIFICATE, found);
	if (hidden && npub > 0) {
		doctor_add(d, DOCTOR_OK, "identity", NULL,
		           "%s: its key pair is on %s (the private key shows "
		           "after login: --login)",
		           who, t->label);
		check_match(d, t, uri, who, cert, CK_INVALID_HANDLE);
		return;
	}
	doctor_add(d, DOCTOR_FAIL, "identity",
	           "the key was deleted or the token re-initialized: make a "
	           "new key (p11mail-certinstall keygen), install its "
	           "certificate, remove the old identity",
	           "%s: no %skey at %s on %s", who, hidden ? "" : "private ",
	           shown, t->label);
}

void doctor_check_key(struct doctor *d, struct doctor_p11 *p11, const char *who,
                      const char *key_uri, X509 *cert)
{
	P11KitUri *uri = p11_kit_uri_new();
	char shown[512];
	struct p11_token *t;

	/* a query may carry pin-value: never show it */
	snprintf(shown, sizeof(shown), "%.*s", (int)strcspn(key_uri, "?"),
	         key_uri);
	if (uri == NULL) {
		d->nomem = 1;
		return;
	}
	if (p11_kit_uri_parse(key_uri, P11_KIT_URI_FOR_ANY, uri) !=
	    P11_KIT_URI_OK) {
		doctor_add(d, DOCTOR_FAIL, "identity",
		           "reinstall the identity with p11mail-certinstall",
		           "%s: its key URI %s is malformed", who, shown);
		goto out;
	}
	if (p11 == NULL || p11->ntoks == 0) {
		doctor_add(d, DOCTOR_FAIL, "identity",
		           "see the module and token findings above",
		           "%s: its key %s cannot be reached: no token", who,
		           shown);
		goto out;
	}
	t = token_for(d, p11, uri, who, shown);
	if (t != NULL && session_for(d, t, who) == 0)
		check_key_on(d, t, uri, who, shown, cert);
out:
	p11_kit_uri_free(uri);
}
