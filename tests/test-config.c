/* Unit tests of the configuration file (src/conf.c). */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "conf.h"
#include "p11mail.h"
#include "tap.h"
#include "test-store-util.h"

static char *dir;

static const char full[] = "# a workstation of the north clinic\n"
                           "[identity]\n"
                           "address = alice@north-clinic.test\n"
                           "\n"
                           "[token]\n"
                           "module = /usr/lib/softhsm/libsofthsm2.so\n"
                           "init-args = configdir='sql:/x'\n"
                           "always-auth = prompt\n"
                           "wait = 30\n"
                           "[store]\n"
                           "  system = no   \n"
                           "[policy]\n"
                           "mail-workstation = yes\n"
                           "discovery = ask\n"
                           "allow-weak = no\n"
                           "[account]\n"
                           "address = alice@north-clinic.test\n"
                           "smtp-host = mail.north-clinic.test\n"
                           "smtp-port = 465\n"
                           "smtp-tls = implicit\n"
                           "smtp-user = alice\n"
                           "password-source = file:/home/alice/.smtp-password\n"
                           "imap-host = mail.north-clinic.test\n"
                           "imap-port = 993\n"
                           "maildir = /home/alice/Maildir\n";

static void test_full_file_parses(void)
{
	struct p11mail_config *cfg = NULL;
	struct tok_options opts;

	tap_check(p11mail_config_parse(full, "full.conf", &cfg) == P11MAIL_OK);
	if (cfg == NULL)
		return;
	tap_check(strcmp(p11mail_config_get(cfg, "identity", "address"),
	                 "alice@north-clinic.test") == 0);
	tap_check(p11mail_config_get_bool(cfg, "store", "system", 1) == 0);
	tap_check(p11mail_config_get_bool(cfg, "policy", "mail-workstation",
	                                  0) == 1);
	tap_check(p11mail_config_get_long(cfg, "account", "smtp-port", 25) ==
	          465);
	tap_check(p11mail_config_get_long(cfg, "account", "pop3-port", 995) ==
	          995);
	tap_check(p11mail_config_get(cfg, "account", "pop3-host") == NULL);
	tap_check(p11mail_config_get(cfg, "account", "no-such-key") == NULL);
	tap_check(p11m_config_discovery(cfg) == P11M_DISCOVERY_ASK);
	tap_check(p11m_config_smtp_tls(cfg) == P11M_SMTP_IMPLICIT);

	p11m_config_token_options(cfg, &opts);
	tap_check(strcmp(opts.module_path, "/usr/lib/softhsm/libsofthsm2.so") ==
	          0);
	tap_check(strcmp(opts.init_args, "configdir='sql:/x'") == 0);
	tap_check(opts.auth_policy == TOK_AUTH_PROMPT);
	tap_check(opts.wait_seconds == 30);
	tap_check(opts.pin_fn == NULL && opts.allow_prompt == 1);
	p11mail_config_free(cfg);

	/* A registered module's name leaves the choice to the registry. */
	tap_check(p11mail_config_parse("[token]\nmodule = opensc-pkcs11\n", "t",
	                               &cfg) == P11MAIL_OK);
	p11m_config_token_options(cfg, &opts);
	tap_check(opts.module_path == NULL);
	p11mail_config_free(cfg);
}

/* Returns the three enums read from text, parsed as a configuration. */
static void choices_of(const char *text, int *discovery, int *tls, int *auth)
{
	struct p11mail_config *cfg = NULL;
	struct tok_options opts;

	*discovery = *tls = *auth = -1;
	if (!tap_check(p11mail_config_parse(text, "c", &cfg) == P11MAIL_OK))
		return;
	*discovery = (int)p11m_config_discovery(cfg);
	*tls = (int)p11m_config_smtp_tls(cfg);
	p11m_config_token_options(cfg, &opts);
	*auth = (int)opts.auth_policy;
	p11mail_config_free(cfg);
}

/* Every word of a choice key, and its absence, gives its own enum value. */
static void test_choices_map_to_enums(void)
{
	int d, t, a;

	choices_of("", &d, &t, &a);
	tap_check(d == P11M_DISCOVERY_OFF && t == P11M_SMTP_STARTTLS &&
	          a == TOK_AUTH_REUSE);
	choices_of("[policy]\ndiscovery = off\n[account]\nsmtp-tls = starttls\n"
	           "[token]\nalways-auth = reuse\n",
	           &d, &t, &a);
	tap_check(d == P11M_DISCOVERY_OFF && t == P11M_SMTP_STARTTLS &&
	          a == TOK_AUTH_REUSE);
	choices_of("[policy]\ndiscovery = ask\n[account]\nsmtp-tls = implicit\n"
	           "[token]\nalways-auth = prompt\n",
	           &d, &t, &a);
	tap_check(d == P11M_DISCOVERY_ASK && t == P11M_SMTP_IMPLICIT &&
	          a == TOK_AUTH_PROMPT);
	choices_of("[policy]\ndiscovery = on\n[account]\nsmtp-tls = none\n", &d,
	           &t, &a);
	tap_check(d == P11M_DISCOVERY_ON && t == P11M_SMTP_NONE &&
	          a == TOK_AUTH_REUSE);
	tap_check(p11m_config_discovery(NULL) == P11M_DISCOVERY_OFF);
}

struct bad_case {
	const char *text;
	const char *message; /* expected in the logged line */
};

/* Each malformed file is refused with FILE:LINE and the reason. */
static const struct bad_case bad_cases[] = {
        {"[token]\nmodul = x\n", "bad.conf:2: unknown key 'modul' in [token]"},
        {"[tokens]\n", "bad.conf:1: unknown section [tokens]"},
        {"address = a@b.test\n", "bad.conf:1: 'address' appears before"},
        {"[store]\nsystem = maybe\n", "bad.conf:2: store.system: expected yes"},
        {"[account]\nsmtp-port = 99999\n", "bad.conf:2: account.smtp-port"},
        {"[account]\nsmtp-port = 25x\n", "bad.conf:2: account.smtp-port"},
        {"[account]\nsmtp-tls = ssl\n",
         "bad.conf:2: account.smtp-tls: unknown"},
        {"[policy]\ndiscovery = always\n", "bad.conf:2: policy.discovery"},
        {"[token]\nalways-auth = never\n", "bad.conf:2: token.always-auth"},
        {"[account]\npassword-source = hunter2\n",
         "bad.conf:2: account.password-source: expected file:"},
        {"[token]\npin-source = 1234\n", "bad.conf:2: token.pin-source"},
        {"[identity]\naddress = not-an-address\n", "bad.conf:2: identity."},
        {"[identity]\naddress = a@b.test\naddress = c@d.test\n",
         "bad.conf:3: identity.address is set twice"},
        {"[token\nmodule = x\n", "bad.conf:1: malformed section header"},
        {"[token]\njust some words\n", "bad.conf:2: expected 'key = value'"},
        {"[token]\nwait = -1\n", "bad.conf:2: token.wait"},
        {"[token]\nmodule =\n", "bad.conf:2: token.module: empty value"},
        /* What a line echoes reaches a terminal: no control bytes raw. */
        {"[token]\nmo\001dul\033[2J = x\n",
         "bad.conf:2: unknown key 'mo\\x01dul\\x1b[2J' in [token]"},
        {"[tok\001\377]\n", "bad.conf:1: unknown section [tok\\x01\\xff]"},
        {"\177 = 1\n", "bad.conf:1: '\\x7f' appears before"},
};

static void test_bad_files_refused(void)
{
	for (size_t i = 0; i < P11M_ARRAY_SIZE(bad_cases); i++) {
		struct p11mail_config *cfg = (void *)&cfg;

		tsu_last_log[0] = '\0';
		if (!tap_check(p11mail_config_parse(bad_cases[i].text,
		                                    "bad.conf", &cfg) ==
		               P11MAIL_ERR_CONFIG) ||
		    !tap_check(cfg == NULL) ||
		    !tap_check(strstr(tsu_last_log, bad_cases[i].message) !=
		               NULL))
			tap_diag("case %zu: got '%s'", i, tsu_last_log);
	}
}

static char *write_tmp(const char *name, const char *text, mode_t mode)
{
	static char path[600];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0 || write(fd, text, strlen(text)) < 0)
		tap_check(!"cannot write a test file");
	if (fd >= 0)
		close(fd);
	chmod(path, mode);
	return path;
}

static void test_load_and_search(void)
{
	struct p11mail_config *cfg = NULL;
	char xdg[600], *path;

	path = write_tmp("given.conf", "[token]\nwait = 5\n", 0644);
	tap_check(p11mail_config_load(path, &cfg) == P11MAIL_OK &&
	          strcmp(p11mail_config_path(cfg), path) == 0 &&
	          p11mail_config_get_long(cfg, "token", "wait", 0) == 5);
	p11mail_config_free(cfg);

	/* An explicit file that is missing is an error, not an empty one. */
	tsu_last_log[0] = '\0';
	tap_check(p11mail_config_load("/nonexistent/p11mail.conf", &cfg) ==
	          P11MAIL_ERR_CONFIG);
	tap_check(strstr(tsu_last_log, "/nonexistent/p11mail.conf") != NULL);

	/* A NUL byte is named with its FILE:LINE, not as EINVAL. */
	{
		static const char nul_text[] = "[token]\n# x\nwait = \0005\n";
		char nul[600];
		int fd;

		snprintf(nul, sizeof(nul), "%s/nul.conf", dir);
		fd = open(nul, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		tap_check(fd >= 0 &&
		          write(fd, nul_text, sizeof(nul_text) - 1) ==
		                  (ssize_t)sizeof(nul_text) - 1);
		if (fd >= 0)
			close(fd);
		tsu_last_log[0] = '\0';
		tap_check(p11mail_config_load(nul, &cfg) ==
		                  P11MAIL_ERR_CONFIG &&
		          cfg == NULL);
		if (!tap_check(strstr(tsu_last_log,
		                      "nul.conf:3: contains a NUL byte") !=
		               NULL))
			tap_diag("got '%s'", tsu_last_log);
	}

	setenv("P11MAIL_CONFIG", path, 1);
	tap_check(p11mail_config_load(NULL, &cfg) == P11MAIL_OK &&
	          p11mail_config_get_long(cfg, "token", "wait", 0) == 5);
	p11mail_config_free(cfg);
	unsetenv("P11MAIL_CONFIG");

	snprintf(xdg, sizeof(xdg), "%s/xdg", dir);
	mkdir(xdg, 0700);
	setenv("XDG_CONFIG_HOME", xdg, 1);
	tap_check(p11mail_config_load(NULL, &cfg) == P11MAIL_OK);
	tap_check(access("/etc/p11mail/p11mail.conf", F_OK) == 0 ||
	          p11mail_config_path(cfg) == NULL);
	p11mail_config_free(cfg);
	mkdir(strcat(xdg, "/p11mail"), 0700);
	write_tmp("xdg/p11mail/p11mail.conf", "[token]\nwait = 7\n", 0600);
	tap_check(p11mail_config_load(NULL, &cfg) == P11MAIL_OK &&
	          p11mail_config_get_long(cfg, "token", "wait", 0) == 7);
	p11mail_config_free(cfg);
}

static void test_secret_sources(void)
{
	char source[700], *secret = NULL;
	struct p11mail_config *cfg = NULL;
	struct tok_options opts;
	struct tok_pin_request req = {0};
	char pin[64];

	snprintf(source, sizeof(source), "file:%s",
	         write_tmp("pin", "123456\n", 0600));
	tap_check(p11mail_secret_read(source, &secret) == P11MAIL_OK &&
	          strcmp(secret, "123456") == 0);
	p11mail_secret_free(secret);

	write_tmp("pin", "123456\n", 0640);
	tsu_last_log[0] = '\0';
	tap_check(p11mail_secret_read(source, &secret) == P11MAIL_ERR_CONFIG &&
	          secret == NULL);
	tap_check(strstr(tsu_last_log, "group or others can read it") != NULL);
	tap_check(p11mail_secret_read("env:PIN", &secret) ==
	          P11MAIL_ERR_CONFIG);
	tap_check(p11mail_secret_read("file:/nonexistent/pin", &secret) ==
	          P11MAIL_ERR_CONFIG);

	/* The token options read the PIN through the callback, on demand. */
	write_tmp("pin", "654321", 0600);
	{
		char text[800];

		snprintf(text, sizeof(text), "[token]\npin-source = %s\n",
		         source);
		tap_check(p11mail_config_parse(text, "t", &cfg) == P11MAIL_OK);
	}
	p11m_config_token_options(cfg, &opts);
	tap_check(opts.pin_fn != NULL &&
	          opts.pin_fn(opts.pin_arg, &req, pin, sizeof(pin)) == 0 &&
	          strcmp(pin, "654321") == 0);
	tap_check(opts.pin_fn(opts.pin_arg, &req, pin, 4) == -1);
	p11mail_wipe(pin, sizeof(pin));
	p11mail_config_free(cfg);
}

/* The example in p11mail.conf(5) is a valid configuration. */
static void test_manual_example_parses(void)
{
	const char *srcdir = getenv("top_srcdir");
	char path[600], line[512], text[4096] = "";
	struct p11mail_config *cfg = NULL;
	int in_example = 0, in_text = 0;
	FILE *f;

	if (srcdir == NULL) {
		tap_skip("top_srcdir is not set");
		return;
	}
	snprintf(path, sizeof(path), "%s/man/p11mail.conf.5", srcdir);
	f = fopen(path, "r");
	if (!tap_check(f != NULL))
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, ".SH EXAMPLE", 11) == 0)
			in_example = 1;
		else if (in_example && strncmp(line, ".nf", 3) == 0)
			in_text = 1;
		else if (in_text && strncmp(line, ".fi", 3) == 0)
			break;
		else if (in_text && strlen(text) + strlen(line) < sizeof(text))
			strcat(text, line);
	}
	fclose(f);
	tap_check(strstr(text, "[account]") != NULL);
	tap_check(p11mail_config_parse(text, path, &cfg) == P11MAIL_OK);
	tap_check(p11mail_config_get_bool(cfg, "policy", "mail-workstation",
	                                  0) == 1);
	p11mail_config_free(cfg);
}

/* Whether the man page lists key under .SS [section] as a .TP entry. */
static int page_lists(const char *page, const char *section, const char *key)
{
	char head[96], line[512];
	const char *p, *end;
	size_t klen = strlen(key);

	snprintf(head, sizeof(head), ".SS [%s]\n", section);
	p = strstr(page, head);
	if (p == NULL)
		return 0;
	end = strstr(p + 1, "\n.S");
	for (p = strstr(p, ".TP\n"); p != NULL && (end == NULL || p < end);
	     p = strstr(p + 1, ".TP\n")) {
		size_t n = 0;
		const char *q = p + 4;

		/* ".B key" or ".BR key1 ", " key2", without roff escapes */
		for (; *q != '\0' && *q != '\n' && n + 1 < sizeof(line); q++)
			if (*q != '\\' && *q != '"' && *q != ',')
				line[n++] = *q;
		line[n] = '\0';
		if (strncmp(line, ".B ", 3) != 0 &&
		    strncmp(line, ".BR ", 4) != 0)
			continue;
		for (char *t = strtok(strchr(line, ' '), " "); t != NULL;
		     t = strtok(NULL, " "))
			if (strlen(t) == klen && strcmp(t, key) == 0)
				return 1;
	}
	return 0;
}

/* Reads a whole file of the source tree into buf; 0 or -1. */
static int read_source(const char *name, char *buf, size_t size)
{
	const char *srcdir = getenv("top_srcdir");
	char path[600];
	size_t len;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", srcdir, name);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	len = fread(buf, 1, size - 1, f);
	buf[len] = '\0';
	fclose(f);
	return len < size - 1 ? 0 : -1;
}

/*
 * p11mail.conf(5) lists every key the parser knows (its table in
 * src/conf.c), and the parser knows every key the page lists.
 */
static void test_manual_lists_every_key(void)
{
	static char page[32768], code[65536];
	char section[64], key[64], text[160];
	const char *p;
	int known = 0;

	if (getenv("top_srcdir") == NULL) {
		tap_skip("top_srcdir is not set");
		return;
	}
	if (!tap_check(read_source("man/p11mail.conf.5", page, sizeof(page)) ==
	                       0 &&
	               read_source("src/conf.c", code, sizeof(code)) == 0))
		return;
	p = strstr(code, "conf_keys[] = {");
	if (!tap_check(p != NULL))
		return;
	for (p = strchr(p, '\n'); p != NULL && p[1] != '}';
	     p = strchr(p + 1, '\n')) {
		if (sscanf(p, " {\"%63[^\"]\", \"%63[^\"]\"", section, key) !=
		    2)
			continue;
		known++;
		if (!tap_check(page_lists(page, section, key)))
			tap_diag("[%s] %s is not in p11mail.conf(5)", section,
			         key);
	}
	tap_check(known > 20);

	/* Each .TP key of each section parses as a known key. */
	for (p = strstr(page, "\n.SS ["); p != NULL;
	     p = strstr(p + 1, "\n.SS [")) {
		const char *end = strstr(p + 1, "\n.S");
		const char *tp;

		if (sscanf(p, "\n.SS [%63[^]]", section) != 1)
			continue;
		for (tp = strstr(p, "\n.TP\n"); tp != NULL && tp < end;
		     tp = strstr(tp + 1, "\n.TP\n")) {
			char line[256], *t;
			size_t n = 0;

			for (const char *q = tp + 5;
			     *q != '\n' && *q != '\0' && n + 1 < sizeof(line);
			     q++)
				if (*q != '\\' && *q != '"' && *q != ',')
					line[n++] = *q;
			line[n] = '\0';
			if (strncmp(line, ".B", 2) != 0)
				continue;
			for (t = strtok(strchr(line, ' '), " "); t != NULL;
			     t = strtok(NULL, " ")) {
				struct p11mail_config *cfg = NULL;

				snprintf(text, sizeof(text), "[%s]\n%s = x\n",
				         section, t);
				tsu_last_log[0] = '\0';
				(void)p11mail_config_parse(text, "page.conf",
				                           &cfg);
				p11mail_config_free(cfg);
				if (!tap_check(strstr(tsu_last_log,
				                      "unknown key") == NULL &&
				               strstr(tsu_last_log,
				                      "unknown section") ==
				                       NULL))
					tap_diag("[%s] %s: %s", section, t,
					         tsu_last_log);
			}
		}
	}
}

static const struct tap_case cases[] = {
        {"test_full_file_parses", test_full_file_parses},
        {"test_choices_map_to_enums", test_choices_map_to_enums},
        {"test_bad_files_refused", test_bad_files_refused},
        {"test_load_and_search", test_load_and_search},
        {"test_secret_sources", test_secret_sources},
        {"test_manual_example_parses", test_manual_example_parses},
        {"test_manual_lists_every_key", test_manual_lists_every_key},
};

int main(void)
{
	return tsu_run(cases, P11M_ARRAY_SIZE(cases), &dir);
}
