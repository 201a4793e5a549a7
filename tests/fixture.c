/* The test fixture for C tests; see fixture.h. */
#define _XOPEN_SOURCE 700
#include "fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FIXTURE_MAX_VARS 128

static char fx_dir[PATH_MAX];
static char fx_reason[512];
static pid_t fx_watchdog = -1;
static int fx_watch_fd = -1;
static char *fx_names[FIXTURE_MAX_VARS];
static size_t fx_nnames;

static void set_reason(const char *fmt, ...)
        __attribute__((format(printf, 1, 2)));

static void set_reason(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(fx_reason, sizeof(fx_reason), fmt, ap);
	va_end(ap);
}

const char *fixture_reason(void)
{
	return fx_reason;
}

const char *fixture_dir(void)
{
	return fx_dir[0] != '\0' ? fx_dir : NULL;
}

/* The script: $P11MAIL_FIXTURE_SCRIPT, else under $top_srcdir. */
static int script_path(char *buf, size_t len)
{
	const char *s = getenv("P11MAIL_FIXTURE_SCRIPT");
	const char *top = getenv("top_srcdir");
	int n;

	if (s != NULL && s[0] != '\0')
		n = snprintf(buf, len, "%s", s);
	else
		n = snprintf(buf, len, "%s/tests/fixture/make-fixture.sh",
		             top != NULL ? top : ".");
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Runs sh SCRIPT DIR with its output in LOG; returns the exit status. */
static int run_script(const char *script, const char *dir, const char *log)
{
	pid_t pid;
	int status;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (freopen(log, "w", stdout) == NULL ||
		    dup2(fileno(stdout), STDERR_FILENO) < 0)
			_exit(127);
		execl("/bin/sh", "sh", script, dir, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Copies the last non-empty line of the file PATH into the reason. */
static void reason_from_log(const char *path, const char *prefix)
{
	char line[400], last[400] = "";
	FILE *f = fopen(path, "r");

	if (f != NULL) {
		while (fgets(line, sizeof(line), f) != NULL) {
			line[strcspn(line, "\n")] = '\0';
			if (line[0] != '\0')
				memcpy(last, line, sizeof(last));
		}
		fclose(f);
	}
	set_reason("%s%s", prefix, last[0] != '\0' ? last : "no output");
}

/*
 * Decodes a POSIX-shell word made of '...' runs and backslash escapes (what
 * make-fixture.sh writes) in place.  Returns 0, or -1 on a syntax error.
 */
static int unquote(char *s)
{
	char *out = s;

	while (*s != '\0' && *s != '\n') {
		if (*s == '\'') {
			s++;
			while (*s != '\'' && *s != '\0')
				*out++ = *s++;
			if (*s != '\'')
				return -1;
			s++;
		} else if (*s == '\\' && s[1] != '\0') {
			*out++ = s[1];
			s += 2;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
	return 0;
}

/* Handles one "export NAME=VALUE" line; returns 0, or -1. */
static int export_line(char *line)
{
	static const char prefix[] = "export ";
	char *eq;

	if (strncmp(line, prefix, sizeof(prefix) - 1) != 0)
		return line[0] == '\n' || line[0] == '\0' ? 0 : -1;
	line += sizeof(prefix) - 1;
	eq = strchr(line, '=');
	if (eq == NULL || fx_nnames == FIXTURE_MAX_VARS)
		return -1;
	*eq = '\0';
	if (unquote(eq + 1) != 0 || setenv(line, eq + 1, 1) != 0)
		return -1;
	fx_names[fx_nnames] = strdup(line);
	if (fx_names[fx_nnames] == NULL)
		return -1;
	fx_nnames++;
	return 0;
}

/* Puts every variable of DIR/env.sh into the environment. */
static int load_env(const char *dir)
{
	char path[PATH_MAX + 16], line[4096];
	FILE *f;
	int ret = 0;

	snprintf(path, sizeof(path), "%s/env.sh", dir);
	f = fopen(path, "r");
	if (f == NULL) {
		set_reason("fixture: cannot open %s", path);
		return -1;
	}
	while (ret == 0 && fgets(line, sizeof(line), f) != NULL) {
		if (export_line(line) != 0) {
			set_reason("fixture: bad line in env.sh: %.60s", line);
			ret = -1;
		}
	}
	fclose(f);
	return ret;
}

/*
 * Starts a shell that waits for the end of a pipe and then removes the
 * fixture: it runs when this process dies without fixture_teardown() (a
 * crash in a module's C_Finalize, an abort), so nothing is left in /tmp.
 */
static void start_watchdog(const char *dir)
{
	static const char script[] =
	        "cat >/dev/null; "
	        "if [ -f \"$1/pids\" ]; then "
	        "while read p; do kill \"$p\" 2>/dev/null; done <\"$1/pids\"; "
	        "fi; rm -rf \"$1\"";
	int fds[2];
	pid_t pid;

	if (pipe(fds) != 0)
		return;
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		close(fds[1]);
		if (dup2(fds[0], STDIN_FILENO) < 0 || null < 0 ||
		    dup2(null, STDOUT_FILENO) < 0 ||
		    dup2(null, STDERR_FILENO) < 0)
			_exit(127);
		/* Its own process group: a test's signals are not for it. */
		setpgid(0, 0);
		execl("/bin/sh", "sh", "-c", script, "sh", dir, (char *)NULL);
		_exit(127);
	}
	close(fds[0]);
	if (pid < 0) {
		close(fds[1]);
		return;
	}
	fcntl(fds[1], F_SETFD, FD_CLOEXEC);
	fx_watchdog = pid;
	fx_watch_fd = fds[1];
}

static void stop_watchdog(void)
{
	if (fx_watch_fd >= 0)
		close(fx_watch_fd);
	if (fx_watchdog > 0)
		while (waitpid(fx_watchdog, NULL, 0) < 0 && errno == EINTR)
			;
	fx_watch_fd = -1;
	fx_watchdog = -1;
}

int fixture_setup(void)
{
	char script[PATH_MAX], log[PATH_MAX + 16];
	const char *tmp = getenv("TMPDIR");
	int rc;

	fixture_teardown();
	fx_reason[0] = '\0';
	if (script_path(script, sizeof(script)) != 0 ||
	    access(script, R_OK) != 0) {
		set_reason("fixture: make-fixture.sh not found (%s)", script);
		return -1;
	}
	snprintf(fx_dir, sizeof(fx_dir), "%s/p11mail-fixture.XXXXXX",
	         tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(fx_dir) == NULL) {
		set_reason("fixture: mkdtemp: %s", strerror(errno));
		fx_dir[0] = '\0';
		return -2;
	}

	start_watchdog(fx_dir);
	snprintf(log, sizeof(log), "%s/make.log", fx_dir);
	rc = run_script(script, fx_dir, log);
	if (rc != 0) {
		reason_from_log(log, rc == 77 ? "" : "fixture failed: ");
		fixture_teardown();
		return rc == 77 ? -1 : -2;
	}
	if (load_env(fx_dir) != 0) {
		fixture_teardown();
		return -2;
	}
	return 0;
}

/* Stops a process recorded by a helper: TERM, up to 2 s, then KILL. */
static void stop_pid(pid_t pid)
{
	struct timespec tick = {0, 100 * 1000 * 1000};

	if (pid <= 1 || kill(pid, SIGTERM) != 0)
		return;
	for (int i = 0; i < 20 && kill(pid, 0) == 0; i++) {
		waitpid(pid, NULL, WNOHANG);
		nanosleep(&tick, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, WNOHANG);
}

static void stop_recorded(const char *dir)
{
	char path[PATH_MAX + 16];
	long pid;
	FILE *f;

	snprintf(path, sizeof(path), "%s/pids", dir);
	f = fopen(path, "r");
	if (f == NULL)
		return;
	while (fscanf(f, "%ld", &pid) == 1)
		stop_pid((pid_t)pid);
	fclose(f);
}

static int remove_entry(const char *path, const struct stat *st, int type,
                        struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void fixture_teardown(void)
{
	if (fx_dir[0] != '\0') {
		stop_recorded(fx_dir);
		nftw(fx_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
		fx_dir[0] = '\0';
	}
	stop_watchdog();
	for (size_t i = 0; i < fx_nnames; i++) {
		unsetenv(fx_names[i]);
		free(fx_names[i]);
	}
	fx_nnames = 0;
}
