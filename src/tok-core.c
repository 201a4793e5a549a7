/*
 * Modules and tokens: loading modules through p11-kit (registry or explicit
 * path), finding the tokens a URI names by their identity (never by slot
 * number), and starting over in a child process after fork.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <p11-kit/p11-kit.h>

#include "common.h"
#include "tok-internal.h"

#define TOK_MAX_SLOTS 64

static volatile int process_exiting;

/*
 * Modules tear themselves down at exit (SoftHSM 2.6.1 frees its state in
 * exit handlers it registers during C_Initialize, and crashes in any later
 * call); a core freed from an exit handler must leave them alone.  This
 * handler is registered after every C_Initialize, so it runs before the
 * module's own.
 */
static void mark_exiting(void)
{
	process_exiting = 1;
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

CK_RV tok_core_new(const struct tok_options *opts, tok_core **out)
{
	tok_core *core = NULL;
	CK_RV rv = CKR_HOST_MEMORY;

	*out = NULL;
	tok_clear_error();

	core = calloc(1, sizeof(*core));
	if (core == NULL)
		goto out;
	if (opts != NULL)
		core->opts = *opts;
	core->module_path = dup_or_null(core->opts.module_path);
	core->init_args = dup_or_null(core->opts.init_args);
	core->pinentry = dup_or_null(core->opts.pinentry);
	if ((core->opts.module_path && !core->module_path) ||
	    (core->opts.init_args && !core->init_args) ||
	    (core->opts.pinentry && !core->pinentry))
		goto out;
	core->opts.module_path = core->module_path;
	core->opts.init_args = core->init_args;
	core->opts.pinentry = core->pinentry;
	pthread_mutex_init(&core->lock, NULL);
	core->pid = getpid();
	if (RAND_bytes(core->pin_salt, sizeof(core->pin_salt)) != 1) {
		rv = CKR_GENERAL_ERROR;
		goto out;
	}

	*out = core;
	core = NULL;
	rv = CKR_OK;
out:
	if (core != NULL) {
		free(core->module_path);
		free(core->init_args);
		free(core->pinentry);
		free(core);
	}
	return rv;
}

static void module_free(tok_core *core, struct tok_module *mod, int finalize)
{
	if (mod->initialized && finalize) {
		if (mod->from_registry)
			p11_kit_module_finalize(mod->fl);
		else
			TOK_CALL(mod, C_Finalize, NULL);
	}
	if (!mod->from_registry && finalize)
		p11_kit_module_release(mod->fl);
	free(mod->name);
	free(mod);
}

void tok_core_free(tok_core *core)
{
	struct tok_token *tok, *next_tok;
	struct tok_module *mod, *next_mod;
	int same = 0;

	if (core == NULL)
		return;
	same = core->pid == getpid() && !process_exiting;

	for (tok = core->tokens; tok != NULL; tok = next_tok) {
		next_tok = tok->next;
		tok_session_flush(tok, same);
		pthread_mutex_destroy(&tok->lock);
		free(tok);
	}
	for (mod = core->modules; mod != NULL; mod = next_mod) {
		next_mod = mod->next;
		module_free(core, mod, same);
	}
	if (core->registry != NULL && same)
		p11_kit_modules_release(core->registry);
	pthread_mutex_destroy(&core->lock);
	free(core->module_path);
	free(core->init_args);
	free(core->pinentry);
	free(core);
}

/* Initialises a module in this process; core->lock held. */
static CK_RV module_init(tok_core *core, struct tok_module *mod)
{
	CK_C_INITIALIZE_ARGS args;
	CK_RV rv;

	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	args.pReserved = core->init_args;

	/*
	 * A module built on OpenSSL (SoftHSM2) may leave errors of its own
	 * start-up, such as an engine it could not load, on this thread's
	 * queue; they are not p11mail's and would show in its messages.
	 */
	ERR_set_mark();
	if (mod->from_registry)
		rv = tok_traced("C_Initialize",
		                p11_kit_module_initialize(mod->fl));
	else
		rv = TOK_CALL(mod, C_Initialize, &args);
	ERR_pop_to_mark();
	if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED)
		rv = CKR_OK;
	if (rv != CKR_OK)
		return tok_fail(rv, TOK_DETAIL_MODULE,
		                "the PKCS#11 module %s did not start (%s)%s",
		                mod->name, tok_rv_name(rv),
		                rv == CKR_ARGUMENTS_BAD
		                        ? ": it needs initialisation arguments"
		                        : "");
	mod->initialized = 1;
	mod->pid = getpid();
	atexit(mark_exiting);
	return CKR_OK;
}

static struct tok_module *module_add(tok_core *core, CK_FUNCTION_LIST *fl,
                                     const char *name, int from_registry)
{
	struct tok_module *mod = calloc(1, sizeof(*mod));

	if (mod == NULL)
		return NULL;
	mod->name = strdup(name != NULL ? name : "(unnamed)");
	if (mod->name == NULL) {
		free(mod);
		return NULL;
	}
	mod->fl = fl;
	mod->from_registry = from_registry;
	mod->next = core->modules;
	core->modules = mod;
	return mod;
}

/* Finds or loads the module at path; core->lock held. */
static CK_RV module_by_path(tok_core *core, const char *path,
                            struct tok_module **out)
{
	struct tok_module *mod;
	CK_FUNCTION_LIST *fl;

	*out = NULL;
	for (mod = core->modules; mod != NULL; mod = mod->next)
		if (!mod->from_registry && strcmp(mod->name, path) == 0)
			break;
	if (mod == NULL) {
		fl = p11_kit_module_load(path, 0);
		if (fl == NULL)
			return tok_fail(CKR_GENERAL_ERROR, TOK_DETAIL_MODULE,
			                "cannot load the PKCS#11 module %s: %s",
			                path, p11_kit_message());
		mod = module_add(core, fl, path, 0);
		if (mod == NULL) {
			p11_kit_module_release(fl);
			return CKR_HOST_MEMORY;
		}
	}
	if (!mod->initialized) {
		CK_RV rv = module_init(core, mod);
		if (rv != CKR_OK)
			return rv;
	}
	*out = mod;
	return CKR_OK;
}

/* Wraps a registry module, initialising it on first use; lock held. */
static CK_RV module_by_fl(tok_core *core, CK_FUNCTION_LIST *fl,
                          struct tok_module **out)
{
	struct tok_module *mod;
	char *name;

	*out = NULL;
	for (mod = core->modules; mod != NULL; mod = mod->next)
		if (mod->from_registry && mod->fl == fl)
			break;
	if (mod == NULL) {
		name = p11_kit_module_get_name(fl);
		mod = module_add(core, fl, name, 1);
		free(name);
		if (mod == NULL)
			return CKR_HOST_MEMORY;
	}
	if (!mod->initialized) {
		CK_RV rv = module_init(core, mod);
		if (rv != CKR_OK)
			return rv;
	}
	*out = mod;
	return CKR_OK;
}

static CK_RV registry_load(tok_core *core)
{
	if (core->registry != NULL)
		return CKR_OK;
	core->registry = p11_kit_modules_load(NULL, 0);
	if (core->registry == NULL)
		return tok_fail(CKR_GENERAL_ERROR, TOK_DETAIL_MODULE,
		                "cannot load the p11-kit module registry: %s",
		                p11_kit_message());
	return CKR_OK;
}

/* The modules a URI may live in; core->lock held. */
static CK_RV modules_for_uri(tok_core *core, P11KitUri *uri,
                             struct tok_module **mods, size_t max,
                             size_t *count)
{
	const char *path = p11_kit_uri_get_module_path(uri);
	const char *name = p11_kit_uri_get_module_name(uri);
	CK_FUNCTION_LIST *fl;
	CK_INFO info;
	size_t i, n = 0;
	CK_RV rv;

	*count = 0;
	if (path == NULL && name == NULL)
		path = core->module_path;
	if (path != NULL) {
		rv = module_by_path(core, path, &mods[0]);
		if (rv == CKR_OK)
			*count = 1;
		return rv;
	}

	rv = registry_load(core);
	if (rv != CKR_OK)
		return rv;
	if (name != NULL) {
		fl = p11_kit_module_for_name(core->registry, name);
		if (fl == NULL)
			return tok_fail(CKR_GENERAL_ERROR, TOK_DETAIL_MODULE,
			                "no PKCS#11 module named %s is "
			                "registered with p11-kit",
			                name);
		rv = module_by_fl(core, fl, &mods[0]);
		if (rv == CKR_OK)
			*count = 1;
		return rv;
	}
	for (i = 0; core->registry[i] != NULL && n < max; i++) {
		struct tok_module *mod;

		/* A module that does not start is skipped, not fatal. */
		if (module_by_fl(core, core->registry[i], &mod) != CKR_OK)
			continue;
		if (TOK_CALL(mod, C_GetInfo, &info) == CKR_OK &&
		    !p11_kit_uri_match_module_info(uri, &info))
			continue;
		mods[n++] = mod;
	}
	tok_clear_error();
	*count = n;
	return CKR_OK;
}

static void trim_copy(char *dst, const unsigned char *src, size_t len)
{
	memcpy(dst, src, len);
	while (len > 0 && (dst[len - 1] == ' ' || dst[len - 1] == '\0'))
		len--;
	dst[len] = '\0';
}

static void token_set_info(struct tok_token *tok, CK_SLOT_ID slot,
                           const CK_TOKEN_INFO *ti)
{
	tok->slot = slot;
	tok->flags = ti->flags;
	trim_copy(tok->label, ti->label, sizeof(ti->label));
	trim_copy(tok->serial, ti->serialNumber, sizeof(ti->serialNumber));
	trim_copy(tok->manufacturer, ti->manufacturerID,
	          sizeof(ti->manufacturerID));
	trim_copy(tok->model, ti->model, sizeof(ti->model));
}

/* The core's record of a token, made on first sight; core->lock held. */
static struct tok_token *token_get(tok_core *core, struct tok_module *mod,
                                   CK_SLOT_ID slot, const CK_TOKEN_INFO *ti)
{
	struct tok_token probe, *tok;

	memset(&probe, 0, sizeof(probe));
	token_set_info(&probe, slot, ti);
	for (tok = core->tokens; tok != NULL; tok = tok->next) {
		if (tok->mod == mod && strcmp(tok->serial, probe.serial) == 0 &&
		    strcmp(tok->label, probe.label) == 0) {
			pthread_mutex_lock(&tok->lock);
			if (tok->slot != slot)
				tok_session_flush(tok, 0);
			token_set_info(tok, slot, ti);
			pthread_mutex_unlock(&tok->lock);
			return tok;
		}
	}
	tok = calloc(1, sizeof(*tok));
	if (tok == NULL)
		return NULL;
	token_set_info(tok, slot, ti);
	tok->core = core;
	tok->mod = mod;
	pthread_mutex_init(&tok->lock, NULL);
	tok->next = core->tokens;
	core->tokens = tok;
	return tok;
}

/* Reads the present slots, asking with a NULL list first (OpenSC). */
static CK_RV slot_list(struct tok_module *mod, CK_SLOT_ID *slots,
                       CK_ULONG *count)
{
	CK_ULONG n = 0;
	CK_RV rv;

	rv = TOK_CALL(mod, C_GetSlotList, CK_TRUE, NULL, &n);
	if (rv != CKR_OK)
		return rv;
	if (n > TOK_MAX_SLOTS)
		n = TOK_MAX_SLOTS;
	rv = TOK_CALL(mod, C_GetSlotList, CK_TRUE, slots, &n);
	if (rv == CKR_BUFFER_TOO_SMALL) {
		n = TOK_MAX_SLOTS;
		rv = CKR_OK;
	}
	*count = rv == CKR_OK ? n : 0;
	return rv;
}

/*
 * An uninitialized token (SoftHSM2's spare slot, a blank card) holds no key
 * and refuses sessions with CKR_TOKEN_NOT_RECOGNIZED; counting it would
 * make every URI that names no token fail or look ambiguous.
 */
static int token_usable(const CK_TOKEN_INFO *ti)
{
	return (ti->flags & CKF_TOKEN_INITIALIZED) != 0;
}

static CK_RV scan_module(tok_core *core, struct tok_module *mod, P11KitUri *uri,
                         struct tok_token **toks, size_t max, size_t *n)
{
	CK_SLOT_ID slots[TOK_MAX_SLOTS];
	CK_TOKEN_INFO ti;
	CK_ULONG count = 0, i;
	struct tok_token *tok;
	CK_RV rv;

	rv = slot_list(mod, slots, &count);
	if (rv != CKR_OK)
		return rv;
	for (i = 0; i < count; i++) {
		if (TOK_CALL(mod, C_GetTokenInfo, slots[i], &ti) != CKR_OK ||
		    !token_usable(&ti))
			continue;
		if (!p11_kit_uri_match_token_info(uri, &ti))
			continue;
		tok = token_get(core, mod, slots[i], &ti);
		if (tok == NULL)
			return CKR_HOST_MEMORY;
		if (*n < max)
			toks[*n] = tok;
		(*n)++;
	}
	return CKR_OK;
}

static void sleep_250ms(void)
{
	struct timespec ts = {0, 250 * 1000 * 1000};

	nanosleep(&ts, NULL);
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

CK_RV tok_find_tokens(tok_core *core, P11KitUri *uri, struct tok_token **toks,
                      size_t max, size_t *count)
{
	struct tok_module *mods[16];
	double deadline = now_seconds() + core->opts.wait_seconds;
	size_t nmods = 0, i, n = 0;
	CK_RV rv;

	*count = 0;
	rv = tok_core_check_fork(core);
	if (rv != CKR_OK)
		return rv;

	for (;;) {
		pthread_mutex_lock(&core->lock);
		rv = modules_for_uri(core, uri, mods, P11M_ARRAY_SIZE(mods),
		                     &nmods);
		for (i = 0, n = 0; rv == CKR_OK && i < nmods; i++)
			rv = scan_module(core, mods[i], uri, toks, max, &n);
		pthread_mutex_unlock(&core->lock);
		if (rv != CKR_OK || n > 0 || now_seconds() >= deadline)
			break;
		sleep_250ms();
	}
	if (rv == CKR_OK && n == 0)
		rv = tok_fail(CKR_TOKEN_NOT_PRESENT, TOK_DETAIL_NO_TOKEN,
		              "no token matches the URI: insert the token or "
		              "check the token label and serial");
	if (rv == CKR_OK)
		*count = n;
	return rv;
}

CK_RV tok_token_refind(struct tok_token *tok)
{
	tok_core *core = tok->core;
	double deadline = now_seconds() + core->opts.wait_seconds;
	CK_SLOT_ID slots[TOK_MAX_SLOTS];
	CK_TOKEN_INFO ti;
	CK_ULONG count, i;
	struct tok_token probe;
	CK_RV rv;

	for (;;) {
		count = 0;
		rv = slot_list(tok->mod, slots, &count);
		for (i = 0; rv == CKR_OK && i < count; i++) {
			if (TOK_CALL(tok->mod, C_GetTokenInfo, slots[i], &ti) !=
			            CKR_OK ||
			    !token_usable(&ti))
				continue;
			memset(&probe, 0, sizeof(probe));
			token_set_info(&probe, slots[i], &ti);
			if (strcmp(probe.serial, tok->serial) != 0 ||
			    strcmp(probe.label, tok->label) != 0)
				continue;
			pthread_mutex_lock(&tok->lock);
			token_set_info(tok, slots[i], &ti);
			pthread_mutex_unlock(&tok->lock);
			return CKR_OK;
		}
		if (now_seconds() >= deadline)
			break;
		sleep_250ms();
	}
	return tok_fail(CKR_TOKEN_NOT_PRESENT, TOK_DETAIL_REMOVED,
	                "insert the token %s (serial %s)", tok->label,
	                tok->serial);
}

CK_RV tok_core_check_fork(tok_core *core)
{
	struct tok_module *mod;
	struct tok_token *tok;
	CK_RV rv = CKR_OK;

	if (core->pid == getpid())
		return CKR_OK;

	/* The parent's sessions are not ours: forget them, do not close. */
	pthread_mutex_lock(&core->lock);
	if (core->pid != getpid()) {
		p11m_trace("token", "new process: re-initialising modules");
		for (tok = core->tokens; tok != NULL; tok = tok->next) {
			pthread_mutex_lock(&tok->lock);
			tok_session_flush(tok, 0);
			memset(tok->pool, 0, sizeof(tok->pool));
			pthread_mutex_unlock(&tok->lock);
		}
		for (mod = core->modules; mod != NULL; mod = mod->next) {
			if (!mod->initialized)
				continue;
			mod->initialized = 0;
			if (module_init(core, mod) != CKR_OK)
				rv = CKR_GENERAL_ERROR;
		}
		core->pid = getpid();
	}
	pthread_mutex_unlock(&core->lock);
	return rv;
}

static void pad_copy(unsigned char *dst, size_t size, const char *src)
{
	size_t len = strlen(src);

	memset(dst, ' ', size);
	memcpy(dst, src, len < size ? len : size);
}

char *tok_uri_format(const struct tok_token *tok, CK_OBJECT_CLASS cls,
                     const unsigned char *id, size_t id_len, const char *label)
{
	P11KitUri *uri = p11_kit_uri_new();
	CK_TOKEN_INFO *ti;
	CK_ATTRIBUTE attr;
	char *text = NULL;

	if (uri == NULL)
		return NULL;
	ti = p11_kit_uri_get_token_info(uri);
	if (tok->label[0] != '\0')
		pad_copy(ti->label, sizeof(ti->label), tok->label);
	if (tok->serial[0] != '\0')
		pad_copy(ti->serialNumber, sizeof(ti->serialNumber),
		         tok->serial);
	if (tok->manufacturer[0] != '\0')
		pad_copy(ti->manufacturerID, sizeof(ti->manufacturerID),
		         tok->manufacturer);
	if (tok->model[0] != '\0')
		pad_copy(ti->model, sizeof(ti->model), tok->model);

	if (cls != (CK_OBJECT_CLASS)-1) {
		attr = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
		p11_kit_uri_set_attribute(uri, &attr);
	}
	if (id != NULL && id_len > 0) {
		attr = (CK_ATTRIBUTE){CKA_ID, tok_mut(id), id_len};
		p11_kit_uri_set_attribute(uri, &attr);
	}
	if (label != NULL && label[0] != '\0') {
		attr = (CK_ATTRIBUTE){CKA_LABEL, tok_mut(label), strlen(label)};
		p11_kit_uri_set_attribute(uri, &attr);
	}
	if (p11_kit_uri_format(uri, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, &text) !=
	    P11_KIT_URI_OK)
		text = NULL;
	p11_kit_uri_free(uri);
	return text;
}

static const struct {
	CK_MECHANISM_TYPE mech;
	unsigned int bit;
} mech_bits[] = {
        {CKM_RSA_PKCS, TOK_MECH_RSA_PKCS},
        {CKM_RSA_PKCS_PSS, TOK_MECH_RSA_PSS},
        {CKM_RSA_X_509, TOK_MECH_RSA_X509},
        {CKM_RSA_PKCS_OAEP, TOK_MECH_RSA_OAEP},
        {CKM_ECDSA, TOK_MECH_ECDSA},
        {CKM_ECDH1_DERIVE, TOK_MECH_ECDH},
};

static unsigned int mech_bit(CK_MECHANISM_TYPE mech)
{
	size_t i;

	for (i = 0; i < P11M_ARRAY_SIZE(mech_bits); i++)
		if (mech_bits[i].mech == mech)
			return mech_bits[i].bit;
	return 0;
}

void tok_core_mask_mechanism(tok_core *core, CK_MECHANISM_TYPE mech)
{
	struct tok_token *tok;

	pthread_mutex_lock(&core->lock);
	core->mech_mask |= mech_bit(mech);
	for (tok = core->tokens; tok != NULL; tok = tok->next)
		tok->mechs_read = 0;
	pthread_mutex_unlock(&core->lock);
}

static void token_read_mechs(struct tok_token *tok)
{
	CK_MECHANISM_TYPE list[256];
	CK_ULONG n = P11M_ARRAY_SIZE(list), i;

	tok->mechs = 0;
	if (TOK_CALL(tok->mod, C_GetMechanismList, tok->slot, list, &n) !=
	    CKR_OK)
		n = 0;
	for (i = 0; i < n; i++)
		tok->mechs |= mech_bit(list[i]);
	tok->mechs &= ~tok->core->mech_mask;

	tok->quirks = 0;
	if (strncmp(tok->manufacturer, "SoftHSM", 7) == 0)
		tok->quirks |= TOK_QUIRK_OAEP_SHA1_ONLY;
	tok->mechs_read = 1;
}

unsigned int tok_token_mechs(struct tok_token *tok)
{
	unsigned int mechs;

	pthread_mutex_lock(&tok->lock);
	if (!tok->mechs_read)
		token_read_mechs(tok);
	mechs = tok->mechs;
	pthread_mutex_unlock(&tok->lock);
	return mechs;
}
