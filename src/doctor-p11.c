/*
 * p11mail doctor: PKCS#11 modules, tokens and identity keys, as the token
 * core sees them.  Read-only: a login happens only when asked, never after
 * the token reported a PIN problem and never twice on one token.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>
#include <p11-kit/uri.h>

#include "common.h"
#include "doctor.h"
#include "token.h"

#define MAX_TRIED 16

struct doctor_p11 {
	tok_core *core;
	struct tok_token_info *toks;
	size_t ntoks;
	char *pin;  /* secret: the PIN for the login under way, else NULL */
	char *only; /* [token] module as a registry name, else NULL */
	/* tokens a login was tried on, as "serial/label" */
	char tried[MAX_TRIED][52];
	size_t ntried;
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

/* The core asks here for a PIN: only the one doctor read for a login. */
static int give_pin(void *arg, const struct tok_pin_request *req, char *buf,
                    size_t size)
{
	struct doctor_p11 *p11 = arg;

	(void)req;
	if (p11->pin == NULL || strlen(p11->pin) >= size)
		return -1;
	memcpy(buf, p11->pin, strlen(p11->pin) + 1);
	return 0;
}

/* Lists the registry; the modules are loaded there, not started. */
static int list_registry(struct doctor *d, struct doctor_p11 *p11,
                         int is_source)
{
	struct tok_module_info *reg = NULL;
	size_t n = 0;

	if (tok_list_registry(p11->core, &reg, &n) != CKR_OK) {
		doctor_add(d, is_source ? DOCTOR_FAIL : DOCTOR_WARN, "module",
		           "check the files in /usr/share/p11-kit/modules",
		           "the p11-kit registry does not load: %s",
		           tok_last_error());
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		doctor_add(d, DOCTOR_OK, "module", NULL,
		           "p11-kit registry: %s (%s)", reg[i].name,
		           reg[i].path != NULL ? reg[i].path : "?");
	if (n == 0)
		doctor_add(d, is_source ? DOCTOR_FAIL : DOCTOR_OK, "module",
		           "install the card's module (apt-get install "
		           "opensc-pkcs11) or set [token] module",
		           "no module is registered with p11-kit");
	tok_modules_free(reg, n);
	return 0;
}

static void report_module(struct doctor *d, const struct tok_module_info *m)
{
	if (!m->loaded)
		doctor_add(d, DOCTOR_FAIL, "module",
		           "install the module's package (opensc-pkcs11 for "
		           "smart cards) or correct [token] module",
		           "the PKCS#11 module %s does not load: %s", m->name,
		           m->error);
	else if (!m->started && !m->from_registry)
		doctor_add(d, DOCTOR_FAIL, "module",
		           "check the module's own configuration (NSS softokn "
		           "needs [token] init-args)",
		           "the PKCS#11 module %s does not start: %s", m->name,
		           m->error);
	else if (!m->started)
		doctor_add(d, DOCTOR_WARN, "module",
		           "check the module's configuration, or unregister it "
		           "from p11-kit",
		           "p11-kit module %s does not start: %s", m->name,
		           m->error);
	else if (m->has_info)
		doctor_add(d, DOCTOR_OK, "module", NULL,
		           "%s started: %s, %s %u.%u", m->name, m->manufacturer,
		           m->description, m->version_major, m->version_minor);
	else
		doctor_add(d, DOCTOR_OK, "module", NULL, "%s started", m->name);
	if (m->started && m->slots_rv != CKR_OK)
		doctor_add(d, DOCTOR_FAIL, "token",
		           "check the reader and pcscd (pcsc_scan) or the "
		           "token's driver",
		           "%s cannot list its slots (%s)", m->name,
		           p11mail_strerror(tok_status(m->slots_rv)));
}

/*
 * Starts the configured module (or the registry's) and reports each;
 * returns the slots of the started modules and sets *loaded.
 */
static unsigned long start_modules(struct doctor *d, struct doctor_p11 *p11,
                                   const char *module, int explicit,
                                   size_t *loaded)
{
	struct tok_module_info *mods = NULL;
	unsigned long slots = 0;
	size_t n = 0;

	*loaded = 0;
	tok_list_modules(p11->core, explicit ? NULL : module, &mods, &n);
	for (size_t i = 0; i < n; i++) {
		report_module(d, &mods[i]);
		*loaded += mods[i].loaded != 0;
		if (mods[i].started && mods[i].slots_rv == CKR_OK)
			slots += mods[i].slots;
	}
	if (!explicit && module != NULL && n == 0)
		doctor_add(d, DOCTOR_FAIL, "module",
		           "register the module with p11-kit, or give its path "
		           "in [token] module",
		           "[token] module %s is not registered with p11-kit",
		           module);
	tok_modules_free(mods, n);
	return slots;
}

static void pin_state(struct doctor *d, const struct tok_token_info *t)
{
	char next[512];
	const char *mod = t->module_path != NULL ? t->module_path : t->module;
	unsigned int f = t->flags;

	if (f & TOK_TF_PIN_LOCKED) {
		snprintf(next, sizeof(next),
		         "unblock it with the SO PIN: pkcs11-tool --module %s "
		         "--login --login-type so --init-pin (or the card "
		         "issuer's tool)",
		         mod);
		doctor_add(
		        d, DOCTOR_FAIL, "token", next,
		        "%s: the user PIN is locked; p11mail will not log in",
		        t->label);
	} else if (f & TOK_TF_PIN_FINAL_TRY) {
		snprintf(next, sizeof(next),
		         "make sure of the PIN before one login with the "
		         "issuer's tool, or reset it with the SO PIN "
		         "(pkcs11-tool --module %s --login --login-type so "
		         "--init-pin)",
		         mod);
		doctor_add(d, DOCTOR_FAIL, "token", next,
		           "%s: one PIN try is left; p11mail refuses to log in",
		           t->label);
	} else if (f & TOK_TF_PIN_COUNT_LOW) {
		doctor_add(d, DOCTOR_WARN, "token",
		           "check the PIN before the next use; a correct login "
		           "resets the count",
		           "%s: a wrong PIN was entered since the last login",
		           t->label);
	}
	if (f & TOK_TF_PIN_TO_BE_CHANGED) {
		snprintf(next, sizeof(next),
		         "change it: pkcs11-tool --module %s --login "
		         "--change-pin",
		         mod);
		doctor_add(d, DOCTOR_FAIL, "token", next,
		           "%s: the user PIN must be changed before use",
		           t->label);
	}
}

static void report_token(struct doctor *d, const struct tok_token_info *t)
{
	unsigned int f = t->flags;

	/* SoftHSM2 always offers one such slot for a new token. */
	if ((f & TOK_TF_INITIALIZED) == 0) {
		doctor_add(d, DOCTOR_OK, "token", NULL,
		           "slot %lu of %s holds an uninitialized token",
		           t->slot, t->module);
		return;
	}
	doctor_add(d, DOCTOR_OK, "token", NULL, "%s (serial %s, %s %s) in %s",
	           t->label, t->serial, t->manufacturer, t->model, t->module);
	if ((f & TOK_TF_LOGIN_REQUIRED) && (f & TOK_TF_USER_PIN_SET) == 0)
		doctor_add(d, DOCTOR_FAIL, "token",
		           "set a user PIN with the SO PIN (pkcs11-tool "
		           "--login --login-type so --init-pin)",
		           "%s: no user PIN is set", t->label);
	pin_state(d, t);
}

static int core_start(struct doctor *d, struct doctor_p11 *p11,
                      const char *path)
{
	struct tok_options opts;

	memset(&opts, 0, sizeof(opts));
	opts.module_path = path;
	opts.init_args = env_or_conf(d, "init-args", "P11MAIL_INIT_ARGS");
	opts.pin_fn = give_pin;
	opts.pin_arg = p11;
	if (tok_core_new(&opts, &p11->core) != CKR_OK) {
		d->nomem = 1;
		return -1;
	}
	return 0;
}

static void check_tokens(struct doctor *d, struct doctor_p11 *p11,
                         unsigned long slots, size_t loaded)
{
	size_t usable = 0;

	if (tok_list_tokens(p11->core, &p11->toks, &p11->ntoks) != CKR_OK) {
		d->nomem = 1;
		return;
	}
	for (size_t i = 0; i < p11->ntoks; i++) {
		report_token(d, &p11->toks[i]);
		usable += (p11->toks[i].flags & TOK_TF_INITIALIZED) != 0;
	}
	if (usable == 0 && loaded > 0)
		doctor_add(d, DOCTOR_FAIL, "token",
		           "insert the card or USB token; for a card reader "
		           "check that pcscd runs (pcsc_scan)",
		           "no token is present (%lu empty slot%s)", slots,
		           slots == 1 ? "" : "s");
}

struct doctor_p11 *doctor_check_tokens(struct doctor *d)
{
	struct doctor_p11 *p11 = calloc(1, sizeof(*p11));
	const char *module = env_or_conf(d, "module", "P11MAIL_MODULE");
	int explicit = module != NULL && is_path(module);
	unsigned long slots = 0;
	size_t loaded = 0;

	if (p11 == NULL) {
		d->nomem = 1;
		return NULL;
	}
	if (core_start(d, p11, explicit ? module : NULL) != 0) {
		free(p11);
		return NULL;
	}
	if (module != NULL && !explicit && (p11->only = strdup(module)) == NULL)
		d->nomem = 1;
	if (list_registry(d, p11, !explicit) == 0 || explicit)
		slots = start_modules(d, p11, module, explicit, &loaded);
	check_tokens(d, p11, slots, loaded);
	return p11;
}

void doctor_p11_free(struct doctor_p11 *p11)
{
	if (p11 == NULL)
		return;
	p11mail_secret_free(p11->pin);
	tok_tokens_free(p11->toks, p11->ntoks);
	tok_core_free(p11->core);
	free(p11->only);
	free(p11);
}

/* The token of a probe in the list read at the start, or NULL. */
static const struct tok_token_info *token_of(const struct doctor_p11 *p11,
                                             const struct tok_key_probe *p)
{
	for (size_t i = 0; i < p11->ntoks; i++)
		if (strcmp(p11->toks[i].serial, p->token_serial) == 0 &&
		    strcmp(p11->toks[i].label, p->token_label) == 0)
			return &p11->toks[i];
	return NULL;
}

/* Marks the probe's token as tried; returns 1 when it already was. */
static int tried_before(struct doctor_p11 *p11, const struct tok_key_probe *p)
{
	char key[52];

	snprintf(key, sizeof(key), "%s/%s", p->token_serial, p->token_label);
	for (size_t i = 0; i < p11->ntried; i++)
		if (strcmp(p11->tried[i], key) == 0)
			return 1;
	if (p11->ntried < MAX_TRIED)
		memcpy(p11->tried[p11->ntried++], key, sizeof(key));
	return 0;
}

/* The PIN source for --login: the URI's, else [token] pin-source. */
static char *pin_source(const struct doctor *d, const char *key_uri)
{
	P11KitUri *uri = p11_kit_uri_new();
	const char *s = NULL;
	char *copy = NULL;

	if (uri != NULL && p11_kit_uri_parse(key_uri, P11_KIT_URI_FOR_ANY,
	                                     uri) == P11_KIT_URI_OK)
		s = p11_kit_uri_get_pin_source(uri);
	if (s == NULL || *s == '\0')
		s = p11mail_config_get(d->cfg, "token", "pin-source");
	if (s != NULL && *s != '\0')
		copy = strdup(s);
	p11_kit_uri_free(uri);
	return copy;
}

/* Reads the PIN from source into p11->pin; -1 with a finding if not. */
static int pin_read(struct doctor *d, struct doctor_p11 *p11, const char *who,
                    const char *source, const char *label)
{
	const char *conf_source =
	        p11mail_config_get(d->cfg, "token", "pin-source");
	char src[4096];

	if (source == NULL) {
		doctor_add(d, DOCTOR_WARN, "identity",
		           "set [token] pin-source = file:PATH for --login",
		           "%s: no PIN source to log in to %s", who, label);
		return -1;
	}
	/* the PIN-file finding already says what to do */
	if (d->pin_file_bad && conf_source != NULL &&
	    strcmp(source, conf_source) == 0)
		return -1;
	snprintf(src, sizeof(src), "%s%s",
	         strncmp(source, "file:", 5) == 0 ? "" : "file:", source);
	if (p11mail_secret_read(src, &p11->pin) != P11MAIL_OK) {
		doctor_add(d, DOCTOR_FAIL, "identity",
		           "make it a regular file readable by you only "
		           "(chmod 600) that holds the PIN on its first line",
		           "%s: the PIN source %s cannot be used: %s", who,
		           source, d->last_log);
		return -1;
	}
	/* an empty PIN would only cost the token a try */
	if (p11->pin[0] == '\0') {
		doctor_add(d, DOCTOR_FAIL, "identity",
		           "write the PIN on the first line of that file",
		           "%s: the PIN source %s holds no PIN", who, source);
		p11mail_secret_free(p11->pin);
		p11->pin = NULL;
		return -1;
	}
	return 0;
}

/*
 * Probes again with a login when --login asks for one and the token
 * allows it; a refused login is a finding, the probe without it stays.
 */
static void login_probe(struct doctor *d, struct doctor_p11 *p11,
                        const char *who, const char *key_uri,
                        const unsigned char *der, size_t der_len,
                        struct tok_key_probe *p)
{
	const struct tok_token_info *t = token_of(p11, p);
	struct tok_key_probe again;
	char *source;

	if (!p->login_required || p->logged_in || tried_before(p11, p))
		return;
	/* the token finding says why and what to do */
	if (t != NULL && (t->flags & (TOK_TF_PIN_LOCKED | TOK_TF_PIN_FINAL_TRY |
	                              TOK_TF_PIN_TO_BE_CHANGED)))
		return;
	source = pin_source(d, key_uri);
	if (pin_read(d, p11, who, source, p->token_label) == 0) {
		tok_probe_key(p11->core, key_uri, 1, der, der_len, &again);
		if (again.login_rv != CKR_OK)
			doctor_add(
			        d, DOCTOR_FAIL, "identity",
			        again.login_rv == CKR_PIN_INCORRECT
			                ? "correct the PIN in that file; "
			                  "p11mail never retries a refused PIN"
			                : "see the token's finding above",
			        "%s: %s refused the login with the PIN from "
			        "%s: %s",
			        who, p->token_label, source, again.login_error);
		else
			*p = again;
	}
	p11mail_secret_free(p11->pin);
	p11->pin = NULL;
	free(source);
}

static void report_match(struct doctor *d, const char *who,
                         const struct tok_key_probe *p)
{
	if (p->matches == 0)
		doctor_add(d, DOCTOR_FAIL, "identity",
		           "install the certificate issued for this key, or "
		           "reinstall the identity with p11mail-certinstall",
		           "%s: the certificate's public key is not the key "
		           "on %s",
		           who, p->token_label);
	else if (p->matches == 1)
		doctor_add(d, DOCTOR_OK, "identity", NULL,
		           "%s: the certificate matches the key on %s", who,
		           p->token_label);
	else
		doctor_add(d, DOCTOR_WARN, "identity",
		           "run p11mail doctor --login to compare them",
		           "%s: no public part on %s to compare with the "
		           "certificate",
		           who, p->token_label);
}

/* Findings for a probe that reached one token. */
static void report_key(struct doctor *d, const char *who, const char *shown,
                       const struct tok_key_probe *p)
{
	int hidden = !p->logged_in && p->login_required;

	if (p->private_keys > 1) {
		doctor_add(d, DOCTOR_FAIL, "identity",
		           "reinstall the identity so that its URI names the "
		           "key by id",
		           "%s: its key URI %s names %zu keys", who, shown,
		           p->private_keys);
	} else if (p->private_keys == 1) {
		doctor_add(d, DOCTOR_OK, "identity", NULL,
		           "%s: one private key on %s", who, p->token_label);
		report_match(d, who, p);
	} else if (hidden && p->public_keys + p->certificates > 0) {
		doctor_add(d, DOCTOR_OK, "identity", NULL,
		           "%s: its key pair is on %s (the private key shows "
		           "after login: --login)",
		           who, p->token_label);
		report_match(d, who, p);
	} else {
		doctor_add(d, DOCTOR_FAIL, "identity",
		           "the key was deleted or the token re-initialized: "
		           "make a new key (p11mail-certinstall keygen), "
		           "install its certificate, remove the old identity",
		           "%s: no %skey at %s on %s", who,
		           hidden ? "" : "private ", shown, p->token_label);
	}
}

/* Findings for a probe that found no single token. */
static void report_unreached(struct doctor *d, const char *who,
                             const char *shown, CK_RV rv,
                             const struct tok_key_probe *p)
{
	if (rv != CKR_OK && tok_status(rv) == P11MAIL_ERR_URI)
		doctor_add(d, DOCTOR_FAIL, "identity",
		           "reinstall the identity with p11mail-certinstall",
		           "%s: its key URI %s is malformed", who, shown);
	else if (rv == CKR_OK && p->holding > 1)
		doctor_add(d, DOCTOR_FAIL, "identity",
		           "reinstall the identity so that its URI names the "
		           "token by serial",
		           "%s: its key URI %s matches %zu tokens", who, shown,
		           p->holding);
	else
		doctor_add(d, DOCTOR_FAIL, "identity",
		           "insert the token that holds the key; if it was "
		           "replaced, reinstall the identity with "
		           "p11mail-certinstall",
		           "%s: no present token holds its key %s", who, shown);
}

/*
 * The key URI limited to the registry module [token] module names, as the
 * token findings were, unless it names a module itself.  NULL: no memory.
 */
static char *uri_for(const struct doctor_p11 *p11, const char *key_uri)
{
	size_t len = strlen(key_uri) + 2;
	char *uri;

	if (p11->only == NULL || strstr(key_uri, "module-name=") != NULL ||
	    strstr(key_uri, "module-path=") != NULL)
		return strdup(key_uri);
	len += strlen("module-name=") + strlen(p11->only);
	uri = malloc(len);
	if (uri != NULL)
		snprintf(uri, len, "%s%cmodule-name=%s", key_uri,
		         strchr(key_uri, '?') != NULL ? '&' : '?', p11->only);
	return uri;
}

void doctor_check_key(struct doctor *d, struct doctor_p11 *p11, const char *who,
                      const char *key_uri, X509 *cert)
{
	struct tok_key_probe probe;
	unsigned char *der = NULL;
	char *uri = NULL;
	char shown[512];
	int der_len;
	CK_RV rv;

	/* a query may carry pin-value: never show it */
	snprintf(shown, sizeof(shown), "%.*s", (int)strcspn(key_uri, "?"),
	         key_uri);
	der_len = cert != NULL ? i2d_X509(cert, &der) : 0;
	if (der_len < 0)
		der_len = 0;
	if (p11 == NULL || p11->ntoks == 0) {
		rv = p11 != NULL ? tok_probe_key(p11->core, key_uri, 0, NULL, 0,
		                                 &probe)
		                 : CKR_OK;
		if (rv != CKR_OK && tok_status(rv) == P11MAIL_ERR_URI)
			report_unreached(d, who, shown, rv, &probe);
		else
			doctor_add(d, DOCTOR_FAIL, "identity",
			           "see the module and token findings above",
			           "%s: its key %s cannot be reached: no token",
			           who, shown);
		goto out;
	}
	uri = uri_for(p11, key_uri);
	if (uri == NULL) {
		d->nomem = 1;
		goto out;
	}
	rv = tok_probe_key(p11->core, uri, 0, der, (size_t)der_len, &probe);
	if (rv == CKR_OK && probe.holding == 1 && d->login)
		login_probe(d, p11, who, uri, der, (size_t)der_len, &probe);
	if (rv != CKR_OK || probe.holding != 1)
		report_unreached(d, who, shown, rv, &probe);
	else
		report_key(d, who, shown, &probe);
out:
	free(uri);
	OPENSSL_free(der);
}
