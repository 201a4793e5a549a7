/*
 * What the token core must not leak or do: a PIN from the URI never shows
 * in an error or the trace, nor in p11-kit's memory; the trace file is private
 * and no symlink is followed to it.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/obj_mac.h>

#include "common.h"
#include "tap.h"
#include "test-token-util.h"
#include "tok-internal.h"

static struct tt_backend b, fb; /* fb: through libp11faulty */
static const char *trace_path, *control_path, *counts_path;

#define SECRET   "SECRET123"
#define REJECTED "C_Login -> CKR_PIN_INCORRECT"
#define BAD_URI  "pkcs11:token=%zz?pin-value=" SECRET

/* Opens text, which must fail; checks SECRET shows nowhere. */
static void malformed(const char *text)
{
	tok_core *core = tt_core(&b, NULL);
	tok_key *key = NULL;
	CK_RV rv;

	rv = tok_key_open(core, text, &key);
	tap_check(rv == CKR_ARGUMENTS_BAD && key == NULL);
	if (!tap_check(strstr(tok_last_error(), "malformed") != NULL))
		tap_diag("%s: %s", tok_rv_name(rv), tok_last_error());
	if (!tap_check(strstr(tok_last_error(), SECRET) == NULL))
		tap_diag("%s", tok_last_error());
	tok_key_unref(key);
	tok_core_free(core);
}

static void test_uri_pin_not_shown(void)
{
	char shown[128];

	malformed("pkcs11:id=%zz;object=x?pin-value=" SECRET);
	malformed("pkcs11:bogus=1;id=%01?pin-value=" SECRET);
	malformed("pkcs11:id=%01?pin-value=" SECRET "&pin-source=%z");
	malformed("pkcs11:pin-value=" SECRET ";id=%0");
	tap_check(strcmp(tok_uri_shown("pkcs11:id=%01;pin-value=" SECRET
	                               "?pin-value=" SECRET,
	                               shown, sizeof(shown)),
	                 "pkcs11:id=%01;pin-value=***?...") == 0);
	tap_diag("%s", shown);
	tap_check(strcmp(tok_uri_shown("pkcs11:token=a", shown, 4), "pkc") ==
	          0);

	/* Listing and importing parse their URI apart from opening keys. */
	{
		tok_core *core = tt_core(&b, NULL);
		struct tok_object *objs = NULL;
		size_t n = 0;
		EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		unsigned char id[] = {0x7e};
		tok_key *key = NULL;

		tap_check(tok_list_objects(core, BAD_URI, &objs, &n) ==
		          CKR_ARGUMENTS_BAD);
		tap_check(strstr(tok_last_error(), "malformed") != NULL);
		tap_check(strstr(tok_last_error(), SECRET) == NULL);
		tok_objects_free(objs, n);
		tap_check(pkey != NULL &&
		          tok_import_key(core, BAD_URI, pkey, id, sizeof(id),
		                         "x", &key) == CKR_ARGUMENTS_BAD);
		tap_check(strstr(tok_last_error(), "malformed") != NULL);
		tap_check(strstr(tok_last_error(), SECRET) == NULL);
		tok_key_unref(key);
		EVP_PKEY_free(pkey);
		tok_core_free(core);
	}
	tap_check(tt_count_trace(trace_path, "malformed") > 0);
	tap_check(tt_count_trace(trace_path, SECRET) == 0);
}

/* Runs this program's "trace" mode with P11MAIL_DEBUG=path; its stderr
 * goes to err. */
static int run_trace(const char *path, const char *err)
{
	char cmd[4096];

	snprintf(cmd, sizeof(cmd),
	         "umask 022; P11MAIL_DEBUG='%s' '%s' trace 2>'%s'", path,
	         tt_env("P11MAIL_SECURE_PROG"), err);
	return system(cmd);
}

static void test_trace_file_private(void)
{
	char dir[1024], path[1100], target[1100], link[1100], err[1100];
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/trace-mode",
	         tt_env("P11MAIL_FIXTURE_DIR"));
	snprintf(path, sizeof(path), "%s/new.log", dir);
	snprintf(target, sizeof(target), "%s/target", dir);
	snprintf(link, sizeof(link), "%s/link.log", dir);
	snprintf(err, sizeof(err), "%s/stderr", dir);
	tap_check(mkdir(dir, 0700) == 0);

	tap_check(run_trace(path, err) == 0);
	tap_check(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	tap_check(tt_count_trace(path, "one line") == 1);
	tap_check(tt_count_trace(err, "one line") == 0);

	/* A symlink is refused: the target stays empty, stderr gets it. */
	tap_check(close(open(target, O_WRONLY | O_CREAT, 0600)) == 0);
	tap_check(symlink(target, link) == 0);
	tap_check(run_trace(link, err) == 0);
	tap_check(stat(target, &st) == 0 && st.st_size == 0);
	tap_check(tt_count_trace(err, "one line") == 1);
}

static void control(const char *text)
{
	FILE *f = fopen(control_path, "w");

	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
}

/* How often this process called name, by the proxy's counts. */
static long calls(const char *name)
{
	FILE *f = fopen(counts_path, "r");
	char fn[64];
	long n, found = 0;

	if (f == NULL)
		return 0;
	while (fscanf(f, "%63s %ld", fn, &n) == 2)
		if (strcmp(fn, name) == 0)
			found = n;
	fclose(f);
	return found;
}

static int pin_cb(void *arg, const struct tok_pin_request *req, char *buf,
                  size_t size)
{
	const char **pin = arg;

	(void)req;
	if (*pin == NULL)
		return -1;
	snprintf(buf, size, "%s", *pin);
	return 0;
}

static CK_RV sign_rv(tok_key *key)
{
	struct tok_sig_params p = {TOK_SIG_PKCS1, NID_sha256, 0, 0};
	unsigned char hash[32], tbs[64], sig[512];
	size_t sig_len = sizeof(sig), n;

	tt_sha256("secure test", hash);
	n = tt_digest_info(hash, tbs);
	return tok_key_sign(key, &p, tbs, n, sig, &sig_len);
}

/* An always-authenticate key refuses its login on a flag, C_Login unsent. */
static void context_flag(enum tok_auth_policy policy, const char *line,
                         CK_RV want, const char *words)
{
	char *uri = tt_uri_pin(&fb, tt_env("ALICE_AA_URI"));
	const char *pin = tt_env("ALICE_PIN");
	struct tok_options o = {0};
	tok_core *core;
	tok_key *key = NULL;
	long logins;
	CK_RV rv;

	o.auth_policy = policy;
	o.pin_fn = pin_cb;
	o.pin_arg = &pin;
	core = tt_core(&fb, &o);
	control("");
	rv = tok_key_open(core, uri, &key);
	if (!tap_check(rv == CKR_OK && key != NULL)) {
		tap_diag("%s: %s", tok_rv_name(rv), tok_last_error());
		goto out;
	}
	tap_check(sign_rv(key) == CKR_OK);
	logins = calls("C_Login");
	control(line);
	rv = sign_rv(key);
	control("");
	if (!tap_check(rv == want))
		tap_diag("%s: %s", tok_rv_name(rv), tok_last_error());
	tap_check(strstr(tok_last_error(), words) != NULL);
	tap_check(calls("C_Login") == logins);
	/* With the flag gone the key works again. */
	tap_check(sign_rv(key) == CKR_OK);
out:
	tok_key_unref(key);
	tok_core_free(core);
	free(uri);
}

static void test_context_login_flags(void)
{
	static const enum tok_auth_policy pol[] = {TOK_AUTH_PROMPT,
	                                           TOK_AUTH_REUSE};
	size_t i;

	if (control_path == NULL) {
		tap_skip("libp11faulty is not built");
		return;
	}
	for (i = 0; i < 2; i++) {
		context_flag(pol[i], "pin-final-try\n", CKR_PIN_INCORRECT,
		             "one try left");
		context_flag(pol[i], "pin-locked\n", CKR_PIN_LOCKED, "locked");
		context_flag(pol[i], "pin-to-be-changed\n", CKR_PIN_EXPIRED,
		             "must be changed");
	}
}

/*
 * Under TOK_AUTH_REUSE a context PIN the token rejected is not kept: after
 * a successful user login clears the failed-PIN memory, the next use asks
 * again instead of sending the wrong PIN a second time.
 */
static void test_reused_wrong_pin_dropped(void)
{
	char *uri1 = NULL, *uri2 = NULL;
	const char *pin = "999999";
	struct tok_options o = {0};
	tok_core *core = NULL;
	tok_key *k1 = NULL, *k2 = NULL;
	long logins;
	int rejected;
	CK_RV rv;

	if (control_path == NULL) {
		tap_skip("libp11faulty is not built");
		return;
	}
	control("");
	o.auth_policy = TOK_AUTH_REUSE;
	o.pin_fn = pin_cb;
	o.pin_arg = &pin;
	core = tt_core(&fb, &o);
	uri1 = tt_uri_pin(&fb, fb.rsa_uri);
	uri2 = strdup(tt_env("ALICE_AA_URI"));
	/* The token is logged in already: the AA key keeps no PIN yet. */
	rv = tok_key_open(core, uri1, &k1);
	if (rv == CKR_OK)
		rv = tok_key_open(core, uri2, &k2);
	if (!tap_check(rv == CKR_OK && k1 != NULL && k2 != NULL)) {
		tap_diag("%s: %s", tok_rv_name(rv), tok_last_error());
		goto out;
	}
	logins = calls("C_Login");
	rejected = tt_count_trace(trace_path, REJECTED);
	tap_check(sign_rv(k2) == CKR_PIN_INCORRECT);
	tap_check(calls("C_Login") == logins + 1);

	/* Sessions lost: the token logs out; k1 logs in again, correctly. */
	control("lose-sessions\n");
	rv = sign_rv(k1);
	control("");
	if (!tap_check(rv == CKR_OK))
		tap_diag("%s: %s", tok_rv_name(rv), tok_last_error());
	tap_check(calls("C_Login") == logins + 2);

	/*
	 * The wrong PIN is not sent again: the callback is asked anew (k2
	 * reconnects too, and logs in as user with the PIN asked).
	 */
	pin = tt_env("ALICE_PIN");
	rv = sign_rv(k2);
	if (!tap_check(rv == CKR_OK))
		tap_diag("%s: %s", tok_rv_name(rv), tok_last_error());
	logins = calls("C_Login");
	tap_check(sign_rv(k2) == CKR_OK);
	tap_check(calls("C_Login") == logins + 1);
	if (!tap_check(tt_count_trace(trace_path, REJECTED) == rejected + 1))
		tap_diag("%d rejected logins",
		         tt_count_trace(trace_path, REJECTED) - rejected);
out:
	tok_key_unref(k2);
	tok_key_unref(k1);
	tok_core_free(core);
	free(uri1);
	free(uri2);
}

/* A PIN longer than the core takes is refused, never cut and sent. */
static void test_pin_too_long(void)
{
	char pin_text[301], q[1200], path[1100], *uri;
	const char *pin = pin_text;
	struct tok_options o = {0};
	tok_core *core;
	tok_key *key = NULL;
	int before = tt_count_trace(trace_path, "C_Login ->");
	FILE *f;
	CK_RV rv;

	memset(pin_text, '1', sizeof(pin_text) - 1);
	pin_text[sizeof(pin_text) - 1] = '\0';

	/* From the application's callback, which snprintf cuts to fit. */
	o.pin_fn = pin_cb;
	o.pin_arg = &pin;
	core = tt_core(&b, &o);
	rv = tok_key_open(core, b.rsa_uri, &key);
	if (!tap_check(rv == CKR_PIN_LEN_RANGE && key == NULL))
		tap_diag("%s: %s", tok_rv_name(rv), tok_last_error());
	tap_check(strstr(tok_last_error(), "too long") != NULL);
	tok_key_unref(key);
	tok_core_free(core);

	/* From a pin-source file. */
	snprintf(path, sizeof(path), "%s/long.pin",
	         tt_env("P11MAIL_FIXTURE_DIR"));
	f = fopen(path, "w");
	tap_check(f != NULL && fprintf(f, "%s\n", pin_text) > 0 &&
	          fclose(f) == 0 && chmod(path, 0600) == 0);
	snprintf(q, sizeof(q), "pin-source=file:%s", path);
	uri = tt_uri(b.rsa_uri, q);
	core = tt_core(&b, NULL);
	key = NULL;
	rv = tok_key_open(core, uri, &key);
	if (!tap_check(rv == CKR_PIN_LEN_RANGE && key == NULL))
		tap_diag("%s: %s", tok_rv_name(rv), tok_last_error());
	tap_check(strstr(tok_last_error(), "too long") != NULL);
	tok_key_unref(key);
	tok_core_free(core);
	free(uri);

	/* Neither reached the token. */
	tap_check(tt_count_trace(trace_path, "C_Login ->") == before);
}

/* pin-value never reaches p11-kit: the core keeps the only copy. */
static void test_pin_value_kept_from_p11kit(void)
{
	struct tok_pin_src pins;
	P11KitUri *uri = NULL;
	CK_ATTRIBUTE *id;

	tap_check(tok_uri_open("pkcs11:token=a;id=%01?pin-value=SEC%52ET123&"
	                       "module-name=softhsm2",
	                       1, &uri, &pins) == CKR_OK);
	tap_check(uri != NULL && p11_kit_uri_get_pin_value(uri) == NULL);
	tap_check(pins.pin_value != NULL &&
	          strcmp(pins.pin_value, SECRET) == 0);
	tap_check(uri != NULL && p11_kit_uri_get_module_name(uri) != NULL &&
	          strcmp(p11_kit_uri_get_module_name(uri), "softhsm2") == 0);
	id = uri != NULL ? p11_kit_uri_get_attribute(uri, CKA_ID) : NULL;
	tap_check(id != NULL && id->ulValueLen == 1);
	tok_pin_src_clear(&pins);
	p11_kit_uri_free(uri);

	/* pin-source stays; the last pin-value wins, as in p11-kit. */
	tap_check(tok_uri_open("pkcs11:?pin-value=1&pin-source=file:/x&"
	                       "pin-value=2",
	                       0, &uri, &pins) == CKR_OK);
	tap_check(pins.pin_value != NULL && strcmp(pins.pin_value, "2") == 0);
	tap_check(pins.pin_source != NULL &&
	          strcmp(pins.pin_source, "file:/x") == 0);
	tok_pin_src_clear(&pins);
	p11_kit_uri_free(uri);

	/* A broken escape or an encoded NUL is malformed, and not shown. */
	tap_check(tok_uri_open("pkcs11:?pin-value=" SECRET "%4", 0, &uri,
	                       &pins) == CKR_ARGUMENTS_BAD &&
	          uri == NULL && pins.pin_value == NULL);
	tap_check(strstr(tok_last_error(), SECRET) == NULL);
	tap_check(tok_uri_open("pkcs11:?pin-value=" SECRET "%00", 0, &uri,
	                       &pins) == CKR_ARGUMENTS_BAD);
}

static const struct tap_case cases[] = {
        {"test_pin_value_kept_from_p11kit", test_pin_value_kept_from_p11kit},
        {"test_pin_too_long", test_pin_too_long},
        {"test_reused_wrong_pin_dropped", test_reused_wrong_pin_dropped},
        {"test_context_login_flags", test_context_login_flags},
        {"test_trace_file_private", test_trace_file_private},
        {"test_uri_pin_not_shown", test_uri_pin_not_shown},
};

int main(int argc, char **argv)
{
	/* "trace": write one trace line and nothing else. */
	if (argc > 1 && strcmp(argv[1], "trace") == 0) {
		p11m_trace("test", "one line");
		return 0;
	}
	tt_backend("softhsm", &b);
	trace_path = tt_env("P11MAIL_DEBUG");
	if (getenv("P11FAULTY_CONTROL") != NULL) {
		fb = b;
		fb.module = tt_env("P11FAULTY_MODULE");
		control_path = tt_env("P11FAULTY_CONTROL");
		counts_path = tt_env("P11FAULTY_COUNTS");
	}
	if (trace_path[0] != '/')
		tap_skip_all("P11MAIL_DEBUG must name a trace file");
	p11m_trace("test", "start"); /* the file exists from now on */
	return tap_run(cases, sizeof(cases) / sizeof(cases[0]));
}
