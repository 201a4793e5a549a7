/*
 * Where PINs come from and what happens when one is wrong: pin-value,
 * pin-source, the application's callback and a pinentry program; a PIN
 * the token rejected is never sent again; CKA_ALWAYS_AUTHENTICATE keys
 * log in before each use under both policies.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/obj_mac.h>

#include "tap.h"
#include "test-token-util.h"
#include "tok-internal.h"

static struct tt_backend b;
static const char *trace_path, *fixture_dir;

struct pin_cb {
	const char *pin; /* NULL: the user cancels */
	int calls;
	int context_calls;
	char serial[32];
};

static int pin_cb(void *arg, const struct tok_pin_request *req, char *buf,
                  size_t size)
{
	struct pin_cb *cb = arg;

	cb->calls++;
	if (req->context_specific)
		cb->context_calls++;
	snprintf(cb->serial, sizeof(cb->serial), "%s", req->token_serial);
	if (cb->pin == NULL)
		return -1;
	snprintf(buf, size, "%s", cb->pin);
	return 0;
}

static int logins(void)
{
	return tt_count_trace(trace_path, "C_Login ->");
}

static int sign_ok(tok_key *key)
{
	struct tok_sig_params p = {TOK_SIG_PKCS1, NID_sha256, 0, 0};
	unsigned char hash[32], tbs[64], sig[512];
	size_t sig_len = sizeof(sig), n;
	EVP_PKEY *pub;
	int ok;

	tt_sha256("pin test", hash);
	n = tt_digest_info(hash, tbs);
	if (tok_key_sign(key, &p, tbs, n, sig, &sig_len) != CKR_OK)
		return 0;
	pub = tt_cert_key(tok_key_info(key)->always_authenticate
	                          ? tt_env("ALICE_AA_CERT")
	                          : b.rsa_cert);
	ok = tt_verify(pub, TOK_SIG_PKCS1, 0, hash, sig, sig_len);
	EVP_PKEY_free(pub);
	return ok;
}

static CK_RV open_with(const char *query, struct tok_options *o,
                       const char *base, tok_key **key, tok_core **core)
{
	char *uri = query ? tt_uri(base, query) : strdup(base);
	CK_RV rv;

	*key = NULL;
	*core = tt_core(&b, o);
	rv = tok_key_open(*core, uri, key);
	free(uri);
	return rv;
}

static void test_pin_value(void)
{
	char q[128];
	tok_core *core;
	tok_key *key;

	snprintf(q, sizeof(q), "pin-value=%s", b.pin);
	tap_check(open_with(q, NULL, b.rsa_uri, &key, &core) == CKR_OK);
	tap_check(key != NULL && sign_ok(key));
	tok_key_unref(key);
	tok_core_free(core);
}

static void test_pin_source_file(void)
{
	char q[512];
	tok_core *core;
	tok_key *key;
	CK_RV rv;

	snprintf(q, sizeof(q), "pin-source=file:%s", b.pin_file);
	tap_check(open_with(q, NULL, b.rsa_uri, &key, &core) == CKR_OK);
	tap_check(key != NULL && sign_ok(key));
	tok_key_unref(key);
	tok_core_free(core);

	/* A plain path works too; a missing file is named. */
	snprintf(q, sizeof(q), "pin-source=%s", b.pin_file);
	tap_check(open_with(q, NULL, b.rsa_uri, &key, &core) == CKR_OK);
	tok_key_unref(key);
	tok_core_free(core);
	snprintf(q, sizeof(q), "pin-source=file:%s/no-such-pin", fixture_dir);
	rv = open_with(q, NULL, b.rsa_uri, &key, &core);
	tap_check(rv != CKR_OK && key == NULL);
	tap_check(strstr(tok_last_error(), "no-such-pin") != NULL);
	/* The token was not involved: no "the token reported an error". */
	tap_check(tok_status(rv) == P11MAIL_ERR_CONFIG);
	tok_core_free(core);

	/* A PIN file group or others can read is refused, without login. */
	tap_check(chmod(b.pin_file, 0640) == 0);
	snprintf(q, sizeof(q), "pin-source=file:%s", b.pin_file);
	rv = open_with(q, NULL, b.rsa_uri, &key, &core);
	tap_check(rv != CKR_OK && key == NULL);
	tap_check(strstr(tok_last_error(), "group or others") != NULL);
	tap_check(strstr(tok_last_error(), "chmod 600") != NULL);
	tap_check(tok_status(rv) == P11MAIL_ERR_CONFIG);
	tok_core_free(core);
	tap_check(chmod(b.pin_file, 0600) == 0);
}

static void test_pin_callback(void)
{
	struct pin_cb cb = {b.pin, 0, 0, ""};
	struct tok_options o = {0};
	tok_core *core;
	tok_key *key;

	o.pin_fn = pin_cb;
	o.pin_arg = &cb;
	tap_check(open_with(NULL, &o, b.rsa_uri, &key, &core) == CKR_OK);
	tap_check(cb.calls == 1);
	tap_check(strcmp(cb.serial, tt_env("ALICE_TOKEN_SERIAL")) == 0);
	tap_check(key != NULL && sign_ok(key));
	tok_key_unref(key);
	tok_core_free(core);
}

static void test_pin_cancelled(void)
{
	struct pin_cb cb = {NULL, 0, 0, ""};
	struct tok_options o = {0};
	tok_core *core;
	tok_key *key;
	CK_RV rv;

	o.pin_fn = pin_cb;
	o.pin_arg = &cb;
	rv = open_with(NULL, &o, b.rsa_uri, &key, &core);
	tap_check(key == NULL && tok_status(rv) == P11MAIL_ERR_PIN_CANCELLED);
	/*
	 * The callback had a way to get one: no advice to configure it, and
	 * no claim that a prompt was shown (the callback may read a file).
	 */
	if (!tap_check(strstr(tok_last_error(), "no PIN was given") != NULL &&
	               strstr(tok_last_error(), "pin-source") == NULL))
		tap_diag("%s", tok_last_error());
	tok_core_free(core);

	/* No source at all: a clear message, no prompt. */
	rv = open_with(NULL, NULL, b.rsa_uri, &key, &core);
	tap_check(key == NULL && tok_status(rv) == P11MAIL_ERR_PIN_CANCELLED);
	tap_check(strstr(tok_last_error(), "pin-source") != NULL);
	tok_core_free(core);
}

static void test_wrong_pin_not_retried(void)
{
	char q[128];
	tok_core *core;
	tok_key *key = NULL;
	int before;
	CK_RV rv;

	core = tt_core(&b, NULL);
	before = logins();
	snprintf(q, sizeof(q), "%s?pin-value=000000", b.rsa_uri);
	rv = tok_key_open(core, q, &key);
	tap_check(rv == CKR_PIN_INCORRECT && key == NULL);
	tap_check(tok_status(rv) == P11MAIL_ERR_PIN_INCORRECT);
	tap_check(logins() == before + 1);

	/* The same PIN again: refused without reaching the token. */
	rv = tok_key_open(core, q, &key);
	tap_check(rv == CKR_PIN_INCORRECT && key == NULL);
	tap_check(strstr(tok_last_error(), "not sent again") != NULL);
	tap_check(logins() == before + 1);

	/* A different, correct PIN is a new attempt. */
	snprintf(q, sizeof(q), "%s?pin-value=%s", b.rsa_uri, b.pin);
	tap_check(tok_key_open(core, q, &key) == CKR_OK);
	tap_check(key != NULL && sign_ok(key));
	tok_key_unref(key);
	tok_core_free(core);
}

static void test_wrong_pin_callback_once(void)
{
	struct pin_cb cb = {"999999", 0, 0, ""};
	struct tok_options o = {0};
	tok_core *core;
	tok_key *key;
	CK_RV rv;

	o.pin_fn = pin_cb;
	o.pin_arg = &cb;
	rv = open_with(NULL, &o, b.rsa_uri, &key, &core);
	tap_check(rv == CKR_PIN_INCORRECT && key == NULL);
	tap_check(cb.calls == 1);
	tok_core_free(core);
}

/* Writes a pinentry that answers GETPIN with the PIN file, or cancels. */
static char *write_pinentry(const char *name, int cancel)
{
	char *path = malloc(1024);
	FILE *f;

	snprintf(path, 1024, "%s/%s", fixture_dir, name);
	f = fopen(path, "w");
	if (f == NULL)
		return path;
	fprintf(f, "#!/bin/sh\n"
	           "echo 'OK pleased to meet you'\n"
	           "while read -r cmd rest; do\n"
	           "  case $cmd in\n"
	           "  GETPIN)\n");
	if (cancel)
		fprintf(f, "    echo 'ERR 83886179 Operation cancelled' ;;\n");
	else
		fprintf(f,
		        "    printf 'D %%s\\n' \"$(cat '%s')\"; echo OK ;;\n",
		        b.pin_file);
	fprintf(f,
	        "  BYE) echo OK; exit 0 ;;\n"
	        "  SETDESC) echo \"$rest\" > '%s.desc'; echo OK ;;\n"
	        "  *) echo OK ;;\n"
	        "  esac\n"
	        "done\n",
	        path);
	fclose(f);
	chmod(path, 0700);
	return path;
}

static void test_pinentry(void)
{
	char *prog = write_pinentry("pinentry-ok", 0);
	char *cancel = write_pinentry("pinentry-cancel", 1);
	struct tok_options o = {0};
	tok_core *core;
	tok_key *key;
	CK_RV rv;

	o.pinentry = prog;
	rv = open_with(NULL, &o, b.rsa_uri, &key, &core);
	if (!tap_check(rv == CKR_OK))
		tap_diag("%s", tok_last_error());
	tap_check(key != NULL && sign_ok(key));
	tok_key_unref(key);
	tok_core_free(core);

	o.pinentry = cancel;
	rv = open_with(NULL, &o, b.rsa_uri, &key, &core);
	tap_check(key == NULL && tok_status(rv) == P11MAIL_ERR_PIN_CANCELLED);
	tap_check(strcmp(tok_last_error(), "no PIN was entered: cancelled") ==
	          0);
	tok_core_free(core);

	o.pinentry = "/nonexistent/pinentry";
	rv = open_with(NULL, &o, b.rsa_uri, &key, &core);
	tap_check(key == NULL && rv != CKR_OK);
	tap_check(tok_status(rv) == P11MAIL_ERR_CONFIG);
	tok_core_free(core);
	free(prog);
	free(cancel);
}

static void test_always_auth_reuse(void)
{
	char *uri = tt_uri_pin(&b, tt_env("ALICE_AA_URI"));
	struct tok_options o = {0};
	tok_core *core;
	tok_key *key = NULL;
	int before, i;

	o.auth_policy = TOK_AUTH_REUSE;
	core = tt_core(&b, &o);
	tap_check(tok_key_open(core, uri, &key) == CKR_OK);
	if (key == NULL)
		goto out;
	tap_check(tok_key_info(key)->always_authenticate == 1);
	before = logins();
	for (i = 0; i < 3; i++)
		tap_check(sign_ok(key));
	/* One context-specific login per signature, no user login. */
	tap_check(logins() == before + 3);
out:
	tok_key_unref(key);
	tok_core_free(core);
	free(uri);
}

static void test_always_auth_prompt(void)
{
	char *uri = tt_uri_pin(&b, tt_env("ALICE_AA_URI"));
	struct pin_cb cb = {NULL, 0, 0, ""};
	struct tok_options o = {0};
	tok_core *core;
	tok_key *key = NULL;
	int i;

	o.auth_policy = TOK_AUTH_PROMPT;
	o.pin_fn = pin_cb;
	o.pin_arg = &cb;
	cb.pin = tt_env("ALICE_PIN");
	core = tt_core(&b, &o);
	tap_check(tok_key_open(core, uri, &key) == CKR_OK);
	if (key == NULL)
		goto out;
	tap_check(cb.calls == 0); /* the user login came from pin-source */
	for (i = 0; i < 3; i++)
		tap_check(sign_ok(key));
	tap_check(cb.context_calls == 3);

	/* The user declines once: that signature fails, the next works. */
	cb.pin = NULL;
	tap_check(!sign_ok(key));
	cb.pin = tt_env("ALICE_PIN");
	tap_check(sign_ok(key));
out:
	tok_key_unref(key);
	tok_core_free(core);
	free(uri);
}

static int never_asked(void *arg, const struct tok_pin_request *req, char *buf,
                       size_t size)
{
	(void)req;
	(void)buf;
	(void)size;
	(*(int *)arg)++;
	return -1;
}

/* A PIN-pad token logs in with a NULL PIN; nobody is asked for one. */
static void test_protected_auth_path(void)
{
	const char *pap = getenv("P11PAP_MODULE");
	struct tok_options o = {0};
	struct tt_backend saved = b;
	tok_core *core;
	tok_key *key = NULL;
	int asked = 0;
	CK_RV rv;

	if (pap == NULL) {
		tap_skip("P11PAP_MODULE is not set");
		return;
	}
	o.pin_fn = never_asked;
	o.pin_arg = &asked;
	b.module = pap;
	core = tt_core(&b, &o);
	rv = tok_key_open(core, b.rsa_uri, &key);
	if (!tap_check(rv == CKR_OK && key != NULL))
		tap_diag("%s: %s", tok_rv_name(rv), tok_last_error());
	tap_check(asked == 0);
	tap_check(key != NULL && sign_ok(key));
	tok_key_unref(key);
	tok_core_free(core);
	b = saved;
}

static const struct tap_case cases[] = {
        {"test_pin_value", test_pin_value},
        {"test_pin_source_file", test_pin_source_file},
        {"test_pin_callback", test_pin_callback},
        {"test_pin_cancelled", test_pin_cancelled},
        {"test_wrong_pin_not_retried", test_wrong_pin_not_retried},
        {"test_wrong_pin_callback_once", test_wrong_pin_callback_once},
        {"test_pinentry", test_pinentry},
        {"test_always_auth_reuse", test_always_auth_reuse},
        {"test_always_auth_prompt", test_always_auth_prompt},
        {"test_protected_auth_path", test_protected_auth_path},
};

int main(void)
{
	tt_backend("softhsm", &b);
	fixture_dir = tt_env("P11MAIL_FIXTURE_DIR");
	trace_path = tt_env("P11MAIL_DEBUG");
	if (trace_path[0] != '/')
		tap_skip_all("P11MAIL_DEBUG must name a trace file");
	return tap_run(cases, sizeof(cases) / sizeof(cases[0]));
}
