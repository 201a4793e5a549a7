/*
 * The C side of the fixture (fixture.h): setup exports env.sh exactly,
 * teardown removes everything, and a missing tool is reported for a skip.
 */
#define _POSIX_C_SOURCE 200809L
#include "fixture.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char saved_dir[4096];

static int is_file(const char *path)
{
	struct stat st;

	return path != NULL && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static void test_setup_exports_variables(void)
{
	static const char *const files[] = {
	        "SOFTHSM2_CONF",  "CA_CERT",      "CA_KEY",
	        "ALICE_RSA_CERT", "BOB_EC_CERT",  "NSS_RSA_CERT",
	        "DAVE_KEY",       "EVE_CERT",     "BAD_NOTCA_ISSUER_CERT",
	        "ALICE_PIN_FILE", "BOB_PIN_FILE", "NSS_PIN_FILE",
	};
	const char *dir = fixture_dir();

	if (!tap_check(dir != NULL))
		return;
	snprintf(saved_dir, sizeof(saved_dir), "%s", dir);
	tap_check(strcmp(getenv("P11MAIL_FIXTURE_DIR"), dir) == 0);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (!tap_check(is_file(getenv(files[i]))))
			tap_diag("%s is not a file", files[i]);
	tap_check(strcmp(getenv("ALICE_TOKEN_LABEL"), "alice-token") == 0);
	tap_check(strcmp(getenv("NSS_TOKEN_LABEL"), "NSS Certificate DB") == 0);
	tap_check(strlen(getenv("ALICE_TOKEN_SERIAL")) == 16);
}

/* Values with quotes and spaces survive the shell quoting of env.sh. */
static void test_quoted_values(void)
{
	const char *args = getenv("NSS_INIT_ARGS");
	const char *db = getenv("NSS_DB_DIR");
	char want[4200];

	if (!tap_check(args != NULL && db != NULL))
		return;
	snprintf(want, sizeof(want),
	         "configdir='sql:%s' certPrefix='' keyPrefix='' "
	         "secmod='secmod.db' flags=",
	         db);
	tap_check(strcmp(args, want) == 0);
}

static void test_uri_and_pin_file(void)
{
	const char *uri = getenv("ALICE_RSA_URI");
	const char *serial = getenv("ALICE_TOKEN_SERIAL");
	const char *pin = getenv("ALICE_PIN");
	char want[256], buf[64] = "";
	FILE *f = fopen(getenv("ALICE_PIN_FILE"), "r");
	size_t n = 0;

	snprintf(want, sizeof(want), "pkcs11:serial=%s;id=%%01;type=private",
	         serial);
	tap_check(uri != NULL && strcmp(uri, want) == 0);
	if (tap_check(f != NULL)) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	tap_check(pin != NULL && n == strlen(pin) && memcmp(buf, pin, n) == 0);
}

static void test_teardown_removes(void)
{
	fixture_teardown();
	tap_check(fixture_dir() == NULL);
	tap_check(access(saved_dir, F_OK) != 0);
	tap_check(getenv("ALICE_RSA_URI") == NULL);
	tap_check(getenv("P11MAIL_FIXTURE_DIR") == NULL);
	fixture_teardown(); /* twice is harmless */
}

/* Without the tools on PATH the script exits 77: setup says -1 and why. */
static void test_missing_tool_means_skip(void)
{
	const char *path = getenv("PATH");
	char *saved = path != NULL ? strdup(path) : NULL;
	int rc;

	setenv("PATH", "/nonexistent", 1);
	rc = fixture_setup();
	if (saved != NULL) {
		setenv("PATH", saved, 1);
		free(saved);
	}
	tap_check(rc == -1);
	tap_check(strstr(fixture_reason(), "apt-get install") != NULL);
	tap_check(fixture_dir() == NULL);
	tap_diag("reason: %s", fixture_reason());
}

static void test_missing_script_means_skip(void)
{
	setenv("P11MAIL_FIXTURE_SCRIPT", "/nonexistent/make-fixture.sh", 1);
	tap_check(fixture_setup() == -1);
	tap_check(strstr(fixture_reason(), "not found") != NULL);
	unsetenv("P11MAIL_FIXTURE_SCRIPT");
}

/* Writes a stand-in make-fixture.sh into dir; returns 0. */
static int write_stub(const char *dir, char *script, size_t len)
{
	FILE *f;

	snprintf(script, len, "%s/stub.sh", dir);
	f = fopen(script, "w");
	if (f == NULL)
		return -1;
	fputs("echo \"export P11MAIL_FIXTURE_DIR='$1'\" > \"$1/env.sh\"\n", f);
	return fclose(f);
}

/* Waits up to 5 s for path to disappear; returns 1 when it did. */
static int gone_soon(const char *path)
{
	struct timespec tick = {0, 50 * 1000 * 1000};

	for (int i = 0; i < 100; i++) {
		if (access(path, F_OK) != 0)
			return 1;
		nanosleep(&tick, NULL);
	}
	return 0;
}

/* A test killed before teardown still leaves nothing behind. */
static void test_killed_test_leaves_nothing(void)
{
	char tmpl[] = "/tmp/p11mail-fixture-test.XXXXXX", script[128];
	char dir[4096] = "";
	int fds[2], status;
	pid_t pid;

	if (!tap_check(mkdtemp(tmpl) != NULL) ||
	    !tap_check(write_stub(tmpl, script, sizeof(script)) == 0) ||
	    !tap_check(pipe(fds) == 0))
		return;
	setenv("P11MAIL_FIXTURE_SCRIPT", script, 1);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		if (fixture_setup() == 0)
			(void)!write(fds[1], fixture_dir(),
			             strlen(fixture_dir()));
		close(fds[1]);
		raise(SIGKILL);
	}
	close(fds[1]);
	tap_check(read(fds[0], dir, sizeof(dir) - 1) > 0);
	close(fds[0]);
	waitpid(pid, &status, 0);
	unsetenv("P11MAIL_FIXTURE_SCRIPT");

	tap_check(WIFSIGNALED(status));
	tap_check(dir[0] != '\0' && gone_soon(dir));
	remove(script);
	rmdir(tmpl);
}

static const struct tap_case cases[] = {
        {"test_setup_exports_variables", test_setup_exports_variables},
        {"test_quoted_values", test_quoted_values},
        {"test_uri_and_pin_file", test_uri_and_pin_file},
        {"test_teardown_removes", test_teardown_removes},
        {"test_missing_tool_means_skip", test_missing_tool_means_skip},
        {"test_missing_script_means_skip", test_missing_script_means_skip},
        {"test_killed_test_leaves_nothing", test_killed_test_leaves_nothing},
};

int main(void)
{
	int rc;

	if (fixture_setup() != 0)
		tap_skip_all(fixture_reason());
	rc = tap_run(cases, sizeof(cases) / sizeof(cases[0]));
	fixture_teardown();
	return rc;
}
