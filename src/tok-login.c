/*
 * Logging in: the PIN sources in their order, the token flags read before
 * every C_Login, a failed PIN remembered so that it is never sent again,
 * and the context-specific login of CKA_ALWAYS_AUTHENTICATE keys.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common.h"
#include "tok-internal.h"

static unsigned char *pin_alloc(void)
{
	unsigned char *pin = calloc(1, TOK_PIN_MAX);

	/* Keeps the PIN out of swap; a low RLIMIT_MEMLOCK is not fatal. */
	if (pin != NULL)
		(void)mlock(pin, TOK_PIN_MAX);
	return pin;
}

void tok_pin_free(unsigned char *pin, size_t len)
{
	(void)len;
	if (pin == NULL)
		return;
	p11mail_wipe(pin, TOK_PIN_MAX);
	(void)munlock(pin, TOK_PIN_MAX);
	free(pin);
}

CK_RV tok_pin_src_from_uri(P11KitUri *uri, struct tok_pin_src *pins)
{
	const char *value = p11_kit_uri_get_pin_value(uri);
	const char *source = p11_kit_uri_get_pin_source(uri);

	memset(pins, 0, sizeof(*pins));
	if (value != NULL && (pins->pin_value = strdup(value)) == NULL)
		return CKR_HOST_MEMORY;
	if (source != NULL && (pins->pin_source = strdup(source)) == NULL) {
		tok_pin_src_clear(pins);
		return CKR_HOST_MEMORY;
	}
	return CKR_OK;
}

void tok_pin_src_clear(struct tok_pin_src *pins)
{
	p11mail_secret_free(pins->pin_value);
	free(pins->pin_source);
	memset(pins, 0, sizeof(*pins));
}

/* Decodes the %XX escapes of in[0..len) into a new string, or NULL. */
static char *pin_decode(const char *in, size_t len, int *r)
{
	char *pin = malloc(len + 1);
	size_t i, n = 0;

	*r = P11_KIT_URI_NO_MEMORY;
	if (pin == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		int hi, lo;

		if (in[i] != '%') {
			pin[n++] = in[i];
			continue;
		}
		hi = i + 2 < len ? tok_hex_digit(in[i + 1]) : -1;
		lo = hi >= 0 ? tok_hex_digit(in[i + 2]) : -1;
		/* An encoded NUL would hide the rest from the wipe. */
		if (lo < 0 || (hi == 0 && lo == 0)) {
			p11m_secure_free(pin, len + 1);
			*r = P11_KIT_URI_BAD_ENCODING;
			return NULL;
		}
		pin[n++] = (char)(hi * 16 + lo);
		i += 2;
	}
	pin[n] = '\0';
	*r = P11_KIT_URI_OK;
	return pin;
}

/*
 * Copies text without its pin-value query attributes into *rest (free)
 * and the last one, decoded, into *pin (p11mail_secret_free).  Returns a
 * P11_KIT_URI_* code.
 */
static int pin_split(const char *text, char **rest, char **pin)
{
	const char *p = strchr(text, '?');
	size_t used = p != NULL ? (size_t)(p - text) : strlen(text);
	char *out = malloc(strlen(text) + 1), sep = '?';
	int r = P11_KIT_URI_OK;

	*rest = NULL;
	*pin = NULL;
	if (out == NULL)
		return P11_KIT_URI_NO_MEMORY;
	memcpy(out, text, used);
	out[used] = '\0';
	while (p != NULL && r == P11_KIT_URI_OK) {
		size_t seg;

		p++;
		seg = strcspn(p, "&");
		if (strncmp(p, "pin-value=", 10) == 0 && seg >= 10) {
			p11mail_secret_free(*pin);
			*pin = pin_decode(p + 10, seg - 10, &r);
		} else if (seg > 0) {
			out[used++] = sep;
			memcpy(out + used, p, seg);
			used += seg;
			out[used] = '\0';
			sep = '&';
		}
		p = p[seg] == '&' ? p + seg : NULL;
	}
	if (r != P11_KIT_URI_OK) {
		p11mail_secret_free(*pin);
		*pin = NULL;
		free(out);
		return r;
	}
	*rest = out;
	return r;
}

CK_RV tok_uri_open(const char *text, int strict, P11KitUri **out,
                   struct tok_pin_src *pins)
{
	P11KitUri *uri = p11_kit_uri_new();
	char *rest = NULL, *pin = NULL, shown[512];
	CK_RV rv = CKR_HOST_MEMORY;
	int r;

	*out = NULL;
	memset(pins, 0, sizeof(*pins));
	if (uri == NULL)
		goto out;
	r = pin_split(text, &rest, &pin);
	if (r == P11_KIT_URI_NO_MEMORY)
		goto out;
	if (r == P11_KIT_URI_OK)
		r = p11_kit_uri_parse(rest, P11_KIT_URI_FOR_ANY, uri);
	if (r == P11_KIT_URI_OK && strict && p11_kit_uri_any_unrecognized(uri))
		r = P11_KIT_URI_BAD_SYNTAX;
	if (r != P11_KIT_URI_OK) {
		/* p11-kit reports some syntax errors as "unexpected". */
		rv = tok_fail(CKR_ARGUMENTS_BAD, TOK_DETAIL_URI,
		              "the PKCS#11 URI is malformed (%s): %s",
		              r == P11_KIT_URI_UNEXPECTED
		                      ? "bad syntax"
		                      : p11_kit_uri_message(r),
		              tok_uri_shown(text, shown, sizeof(shown)));
		goto out;
	}
	rv = tok_pin_src_from_uri(uri, pins);
	if (rv != CKR_OK)
		goto out;
	if (pin != NULL) {
		p11mail_secret_free(pins->pin_value);
		pins->pin_value = pin;
		pin = NULL;
	}
	*out = uri;
	uri = NULL;
out:
	p11mail_secret_free(pin);
	free(rest);
	if (uri != NULL)
		p11_kit_uri_free(uri);
	return rv;
}

/* The PIN sources that ask nobody: pin-value, then pin-source. */
static CK_RV pin_from_uri(const struct tok_pin_src *pins, char *buf,
                          size_t size, int *found)
{
	*found = 0;
	if (pins->pin_value != NULL) {
		if (strlen(pins->pin_value) >= size)
			return CKR_PIN_LEN_RANGE;
		strcpy(buf, pins->pin_value);
		*found = 1;
		return CKR_OK;
	}
	if (pins->pin_source != NULL) {
		*found = 1;
		return tok_pin_from_file(pins->pin_source, buf, size);
	}
	return CKR_OK;
}

/*
 * The sources that ask someone: the application's callback, then, when it
 * has no way to ask, the terminal (when there is one and prompting is
 * allowed) and the pinentry program.  A source that was asked and got no
 * PIN ends the search: nobody is asked twice.  *asked tells who was: 0
 * nobody, 1 the callback (which may read a file as well as ask someone),
 * 2 a prompt on the terminal or of the pinentry program, so that an empty
 * answer there is not reported as no way to ask.
 */
static CK_RV pin_from_person(tok_core *core, const struct tok_pin_request *req,
                             char *buf, size_t size, int *asked)
{
	CK_RV rv;
	int r;

	*asked = 0;
	if (core->opts.pin_fn != NULL) {
		r = core->opts.pin_fn(core->opts.pin_arg, req, buf, size);
		*asked = r != TOK_PIN_ASK_NEXT ? 1 : 0;
		/* A full buffer may hold a PIN cut short: never send that. */
		if (r == 0 && strnlen(buf, size) >= size - 1)
			return CKR_PIN_LEN_RANGE;
		if (r == 0)
			return CKR_OK;
		if (r != TOK_PIN_ASK_NEXT)
			return CKR_FUNCTION_CANCELED;
		/* Nobody was asked: whatever the callback wrote is no PIN. */
		p11mail_wipe(buf, size);
	}
	if (core->opts.allow_prompt) {
		rv = tok_pin_from_tty(req, buf, size);
		if (rv != CKR_DEVICE_ERROR) {
			*asked = 2;
			return rv;
		}
	}
	if (core->opts.pinentry != NULL) {
		*asked = 2;
		return tok_pin_from_pinentry(core->opts.pinentry, req, buf,
		                             size);
	}
	return CKR_FUNCTION_CANCELED;
}

CK_RV tok_pin_get(tok_core *core, const struct tok_pin_src *pins,
                  const struct tok_pin_request *req, int skip_uri,
                  unsigned char **pin, size_t *pin_len)
{
	unsigned char *buf = NULL;
	int found = 0, asked = 0;
	CK_RV rv = CKR_HOST_MEMORY;

	*pin = NULL;
	*pin_len = 0;
	buf = pin_alloc();
	if (buf == NULL)
		goto out;

	rv = CKR_OK;
	if (!skip_uri && pins != NULL)
		rv = pin_from_uri(pins, (char *)buf, TOK_PIN_MAX, &found);
	if (rv == CKR_OK && !found)
		rv = pin_from_person(core, req, (char *)buf, TOK_PIN_MAX,
		                     &asked);
	if (rv == CKR_FUNCTION_CANCELED && asked == 2)
		rv = tok_fail(rv, TOK_DETAIL_CANCELLED,
		              "no PIN was entered: cancelled");
	else if (rv == CKR_FUNCTION_CANCELED && asked == 1)
		rv = tok_fail(rv, TOK_DETAIL_CANCELLED,
		              "no PIN was given for the token %s (serial %s)",
		              req->token_label, req->token_serial);
	else if (rv == CKR_FUNCTION_CANCELED)
		rv = tok_fail(rv, TOK_DETAIL_CANCELLED,
		              "no PIN was given for the token %s (serial %s): "
		              "add pin-source to the URI or configure a PIN "
		              "prompt",
		              req->token_label, req->token_serial);
	else if (rv == CKR_PIN_LEN_RANGE)
		rv = tok_fail(rv, TOK_DETAIL_NONE,
		              "the PIN is too long: at most %d characters",
		              TOK_PIN_MAX - 2);
	if (rv != CKR_OK)
		goto out;

	*pin_len = strlen((char *)buf);
	*pin = buf;
	buf = NULL;
out:
	tok_pin_free(buf, TOK_PIN_MAX);
	return rv;
}

/* A salted digest identifies a failed PIN without keeping it. */
static void pin_digest(const tok_core *core, const unsigned char *pin,
                       size_t len, unsigned char out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 32;

	memset(out, 0, 32);
	if (ctx == NULL)
		return;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, core->pin_salt, sizeof(core->pin_salt)) !=
	            1 ||
	    EVP_DigestUpdate(ctx, pin, len) != 1 ||
	    EVP_DigestFinal_ex(ctx, out, &n) != 1)
		memset(out, 0, 32);
	EVP_MD_CTX_free(ctx);
}

static int pin_failed_before(struct tok_token *tok, const unsigned char *pin,
                             size_t len)
{
	unsigned char d[32];
	int same;

	pin_digest(tok->core, pin, len, d);
	pthread_mutex_lock(&tok->lock);
	same = tok->has_failed_pin &&
	       CRYPTO_memcmp(d, tok->failed_pin, sizeof(d)) == 0;
	pthread_mutex_unlock(&tok->lock);
	return same;
}

static void pin_result(struct tok_token *tok, const unsigned char *pin,
                       size_t len, CK_RV rv)
{
	unsigned char d[32];

	if (rv != CKR_OK && rv != CKR_PIN_INCORRECT)
		return;
	pin_digest(tok->core, pin, len, d);
	pthread_mutex_lock(&tok->lock);
	tok->has_failed_pin = rv == CKR_PIN_INCORRECT;
	memcpy(tok->failed_pin, d, sizeof(d));
	pthread_mutex_unlock(&tok->lock);
}

/* Refuses a login the token says would be unwise; reads fresh flags. */
static CK_RV check_pin_flags(struct tok_token *tok, CK_FLAGS *flags)
{
	CK_TOKEN_INFO ti;
	CK_RV rv;

	rv = TOK_CALL(tok->mod, C_GetTokenInfo, tok->slot, &ti);
	if (rv != CKR_OK)
		return rv;
	*flags = ti.flags;
	if (ti.flags & CKF_USER_PIN_LOCKED)
		return tok_fail(CKR_PIN_LOCKED, TOK_DETAIL_NONE,
		                "the PIN of the token %s (serial %s) is "
		                "locked: unblock it with the SO PIN",
		                tok->label, tok->serial);
	if (ti.flags & CKF_USER_PIN_TO_BE_CHANGED)
		return tok_fail(CKR_PIN_EXPIRED, TOK_DETAIL_NONE,
		                "the PIN of the token %s (serial %s) must be "
		                "changed first: change it with the token's "
		                "PIN tool",
		                tok->label, tok->serial);
	if (ti.flags & CKF_USER_PIN_FINAL_TRY)
		return tok_fail(CKR_PIN_INCORRECT, TOK_DETAIL_FINAL_TRY,
		                "one try left on the token %s (serial %s): "
		                "log in with the token's own PIN tool, a wrong "
		                "PIN would lock it",
		                tok->label, tok->serial);
	return CKR_OK;
}

static CK_RV login_failed(struct tok_token *tok, CK_RV rv, int ctx)
{
	const char *what = ctx ? "for the key" : "";

	if (rv == CKR_PIN_INCORRECT)
		return tok_fail(rv, TOK_DETAIL_NONE,
		                "the token %s (serial %s) rejected the PIN%s%s",
		                tok->label, tok->serial, ctx ? " " : "", what);
	if (rv == CKR_PIN_LOCKED)
		return tok_fail(rv, TOK_DETAIL_NONE,
		                "the PIN of the token %s (serial %s) is now "
		                "locked: unblock it with the SO PIN",
		                tok->label, tok->serial);
	return tok_fail(rv, TOK_DETAIL_NONE,
	                "login on the token %s (serial %s) failed (%s)",
	                tok->label, tok->serial, tok_rv_name(rv));
}

static int session_logged_in(struct tok_token *tok, CK_SESSION_HANDLE h)
{
	CK_SESSION_INFO si;

	if (TOK_CALL(tok->mod, C_GetSessionInfo, h, &si) != CKR_OK)
		return 0;
	return si.state == CKS_RO_USER_FUNCTIONS ||
	       si.state == CKS_RW_USER_FUNCTIONS;
}

/* Sends pin with C_Login unless it failed before; wipes nothing. */
static CK_RV login_with(struct tok_token *tok, CK_SESSION_HANDLE h,
                        CK_USER_TYPE who, unsigned char *pin, size_t len)
{
	CK_RV rv;

	if (pin_failed_before(tok, pin, len))
		return tok_fail(CKR_PIN_INCORRECT, TOK_DETAIL_NONE,
		                "the token %s (serial %s) rejected this PIN "
		                "before: it is not sent again; correct the PIN "
		                "source",
		                tok->label, tok->serial);
	rv = TOK_CALL(tok->mod, C_Login, h, who, pin, len);
	if (rv == CKR_USER_ALREADY_LOGGED_IN)
		rv = CKR_OK;
	pin_result(tok, pin, len, rv);
	if (rv != CKR_OK)
		rv = login_failed(tok, rv, who == CKU_CONTEXT_SPECIFIC);
	return rv;
}

CK_RV tok_login(struct tok_token *tok, CK_SESSION_HANDLE h,
                const struct tok_pin_src *pins, unsigned char **kept,
                size_t *kept_len)
{
	struct tok_pin_request req = {tok->label, tok->serial, NULL, 0, 0};
	unsigned char *pin = NULL;
	size_t len = 0;
	CK_FLAGS flags = 0;
	CK_RV rv;

	if (kept != NULL) {
		*kept = NULL;
		*kept_len = 0;
	}
	if (session_logged_in(tok, h))
		return CKR_OK;
	rv = check_pin_flags(tok, &flags);
	if (rv != CKR_OK)
		goto out;
	if (!(flags & CKF_LOGIN_REQUIRED))
		goto out;
	if (flags & CKF_PROTECTED_AUTHENTICATION_PATH) {
		rv = TOK_CALL(tok->mod, C_Login, h, CKU_USER, NULL, 0);
		if (rv == CKR_USER_ALREADY_LOGGED_IN)
			rv = CKR_OK;
		if (rv != CKR_OK)
			rv = login_failed(tok, rv, 0);
		goto out;
	}

	req.count_low = (flags & CKF_USER_PIN_COUNT_LOW) != 0;
	rv = tok_pin_get(tok->core, pins, &req, 0, &pin, &len);
	if (rv != CKR_OK)
		goto out;
	rv = login_with(tok, h, CKU_USER, pin, len);
	if (rv == CKR_OK && kept != NULL) {
		*kept = pin;
		*kept_len = len;
		pin = NULL;
	}
out:
	tok_pin_free(pin, len);
	return rv;
}

/*
 * The PIN a TOK_AUTH_REUSE key keeps, asked once if the login had none.
 * *pin is the caller's copy (free with tok_pin_free), so that another
 * thread may drop the kept one meanwhile; *kept identifies the kept one.
 */
static CK_RV reuse_pin(tok_key *key, unsigned char **pin, size_t *len,
                       const unsigned char **kept)
{
	struct tok_pin_request req = {key->tok->label, key->tok->serial,
	                              key->info.label, 1, 0};
	unsigned char *asked = NULL, *copy = NULL;
	size_t asked_len = 0;
	CK_RV rv = CKR_OK;

	*pin = NULL;
	*len = 0;
	*kept = NULL;
	pthread_mutex_lock(&key->lock);
	if (key->aa_pin == NULL) {
		rv = tok_pin_get(key->core, &key->pins, &req, 0, &asked,
		                 &asked_len);
		if (rv == CKR_OK) {
			key->aa_pin = asked;
			key->aa_pin_len = asked_len;
		}
	}
	if (rv == CKR_OK && (copy = pin_alloc()) == NULL)
		rv = CKR_HOST_MEMORY;
	if (rv == CKR_OK) {
		memcpy(copy, key->aa_pin, key->aa_pin_len);
		*pin = copy;
		*len = key->aa_pin_len;
		*kept = key->aa_pin;
	}
	pthread_mutex_unlock(&key->lock);
	return rv;
}

/*
 * Forgets the kept PIN after a failed context login: a later successful
 * user login clears the failed-PIN memory, and a kept wrong PIN would
 * then be sent again without anyone being asked.  A PIN kept since by
 * another thread stays.
 */
static void reuse_pin_drop(tok_key *key, const unsigned char *kept)
{
	pthread_mutex_lock(&key->lock);
	if (key->aa_pin != NULL && key->aa_pin == kept) {
		tok_pin_free(key->aa_pin, key->aa_pin_len);
		key->aa_pin = NULL;
		key->aa_pin_len = 0;
	}
	pthread_mutex_unlock(&key->lock);
}

CK_RV tok_login_context(tok_key *key, CK_SESSION_HANDLE h)
{
	struct tok_pin_request req = {key->tok->label, key->tok->serial,
	                              key->info.label, 1, 0};
	unsigned char *pin = NULL;
	size_t len = 0;
	CK_FLAGS flags = 0;
	CK_RV rv;

	/* The key's PIN counts against the same retry counter. */
	rv = check_pin_flags(key->tok, &flags);
	if (rv != CKR_OK)
		return rv;
	if (key->core->opts.auth_policy == TOK_AUTH_REUSE) {
		const unsigned char *kept = NULL;

		rv = reuse_pin(key, &pin, &len, &kept);
		if (rv == CKR_OK)
			rv = login_with(key->tok, h, CKU_CONTEXT_SPECIFIC, pin,
			                len);
		if (rv != CKR_OK)
			reuse_pin_drop(key, kept);
		tok_pin_free(pin, len);
		return rv;
	}

	req.count_low = (flags & CKF_USER_PIN_COUNT_LOW) != 0;
	rv = tok_pin_get(key->core, &key->pins, &req, 1, &pin, &len);
	if (rv == CKR_OK)
		rv = login_with(key->tok, h, CKU_CONTEXT_SPECIFIC, pin, len);
	tok_pin_free(pin, len);
	return rv;
}
