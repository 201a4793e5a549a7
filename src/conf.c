/* The configuration file: parsing, checking and typed access; see conf.h. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "conf.h"

#define CONF_MAX_SIZE (256 * 1024)
#define SECRET_MAX    4096

enum conf_type {
	CONF_STRING,
	CONF_BOOL,
	CONF_PORT,
	CONF_SECONDS,
	CONF_CHOICE,
	CONF_SOURCE,
	CONF_ADDRESS
};

struct conf_key {
	const char *section;
	const char *key;
	enum conf_type type;
	/* CONF_CHOICE: "a|b|c", in the order of the enum that mirrors them */
	const char *choices;
};

/* Every key the format knows; p11mail.conf(5) documents each one. */
static const struct conf_key conf_keys[] = {
        {"identity", "address", CONF_ADDRESS, NULL},
        {"token", "module", CONF_STRING, NULL},
        {"token", "init-args", CONF_STRING, NULL},
        {"token", "pin-source", CONF_SOURCE, NULL},
        {"token", "pinentry", CONF_STRING, NULL},
        {"token", "always-auth", CONF_CHOICE, "reuse|prompt"},
        {"token", "wait", CONF_SECONDS, NULL},
        {"store", "path", CONF_STRING, NULL},
        {"store", "system", CONF_BOOL, NULL},
        {"policy", "mail-workstation", CONF_BOOL, NULL},
        {"policy", "discovery", CONF_CHOICE, "off|ask|on"},
        {"policy", "allow-weak", CONF_BOOL, NULL},
        {"discovery", "dns-server", CONF_STRING, NULL},
        {"discovery", "timeout", CONF_SECONDS, NULL},
        {"account", "address", CONF_ADDRESS, NULL},
        {"account", "smtp-host", CONF_STRING, NULL},
        {"account", "smtp-port", CONF_PORT, NULL},
        {"account", "smtp-tls", CONF_CHOICE, "starttls|implicit|none"},
        {"account", "smtp-user", CONF_STRING, NULL},
        {"account", "password-source", CONF_SOURCE, NULL},
        {"account", "ca-file", CONF_STRING, NULL},
        {"account", "imap-host", CONF_STRING, NULL},
        {"account", "imap-port", CONF_PORT, NULL},
        {"account", "imap-tls", CONF_CHOICE, "starttls|implicit|none"},
        {"account", "pop3-host", CONF_STRING, NULL},
        {"account", "pop3-port", CONF_PORT, NULL},
        {"account", "pop3-tls", CONF_CHOICE, "starttls|implicit|none"},
        {"account", "maildir", CONF_STRING, NULL},
        {"account", "outbox", CONF_STRING, NULL},
};

#define CONF_NKEYS P11M_ARRAY_SIZE(conf_keys)

struct p11mail_config {
	char *path;
	char *values[CONF_NKEYS];
};

static int conf_key_index(const char *section, const char *key)
{
	for (size_t i = 0; i < CONF_NKEYS; i++)
		if (strcmp(conf_keys[i].section, section) == 0 &&
		    strcmp(conf_keys[i].key, key) == 0)
			return (int)i;
	return -1;
}

static int conf_section_known(const char *section)
{
	for (size_t i = 0; i < CONF_NKEYS; i++)
		if (strcmp(conf_keys[i].section, section) == 0)
			return 1;
	return 0;
}

static char *conf_trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* The position of value among the "|"-separated words of choices, or -1. */
static int conf_choice_index(const char *choices, const char *value)
{
	size_t len = strlen(value);
	const char *p = choices;

	for (int i = 0; *p != '\0'; i++) {
		size_t n = strcspn(p, "|");

		if (n == len && strncmp(p, value, n) == 0)
			return i;
		p += n;
		if (*p == '|')
			p++;
	}
	return -1;
}

static int conf_number_ok(const char *value, long min, long max)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(value, &end, 10);
	return errno == 0 && end != value && *end == '\0' && n >= min &&
	       n <= max;
}

/* Why a value is unacceptable for its key, or NULL when it is fine. */
static const char *conf_value_problem(const struct conf_key *k,
                                      const char *value)
{
	switch (k->type) {
	case CONF_STRING:
		return *value == '\0' ? "empty value" : NULL;
	case CONF_BOOL:
		return strcmp(value, "yes") == 0 || strcmp(value, "no") == 0
		               ? NULL
		               : "expected yes or no";
	case CONF_PORT:
		return conf_number_ok(value, 1, 65535)
		               ? NULL
		               : "expected a port number (1-65535)";
	case CONF_SECONDS:
		return conf_number_ok(value, 0, 86400)
		               ? NULL
		               : "expected a number of seconds (0-86400)";
	case CONF_CHOICE:
		return conf_choice_index(k->choices, value) >= 0
		               ? NULL
		               : "unknown choice";
	case CONF_SOURCE:
		return strncmp(value, "file:", 5) == 0 && value[5] != '\0'
		               ? NULL
		               : "expected file:/path (secrets are never "
		                 "written in the configuration)";
	case CONF_ADDRESS: {
		const char *at = strchr(value, '@');

		return at != NULL && at != value && at[1] != '\0' &&
		                       strchr(at + 1, '@') == NULL &&
		                       strpbrk(value, " \t<>,") == NULL
		               ? NULL
		               : "expected an address such as "
		                 "name@example.org";
	}
	}
	return "unknown key type";
}

/*
 * Copies s into buf for a message, bytes outside printable ASCII as \xNN
 * (a binary line must not reach the terminal raw), cut with "..." when
 * it does not fit.
 */
static const char *conf_shown(const char *s, char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		size_t need = c >= 0x20 && c < 0x7f ? 1 : 4;

		if (n + need + 4 > size) {
			memcpy(buf + n, "...", 3);
			n += 3;
			break;
		}
		if (need == 1) {
			buf[n++] = (char)c;
			continue;
		}
		buf[n++] = '\\';
		buf[n++] = 'x';
		buf[n++] = hex[c >> 4];
		buf[n++] = hex[c & 15];
	}
	buf[n] = '\0';
	return buf;
}

/* Handles "key = value" inside section; 0 or -1 after logging. */
static int conf_set(struct p11mail_config *cfg, const char *name, int lineno,
                    const char *section, char *line)
{
	char *eq = strchr(line, '=');
	const char *problem;
	char *key, *value;
	char shown[128];
	int idx;

	if (eq == NULL) {
		p11m_log(P11MAIL_LOG_ERROR, "%s:%d: expected 'key = value'",
		         name, lineno);
		return -1;
	}
	*eq = '\0';
	key = conf_trim(line);
	value = conf_trim(eq + 1);
	if (section == NULL) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "%s:%d: '%s' appears before any [section]", name,
		         lineno, conf_shown(key, shown, sizeof(shown)));
		return -1;
	}
	idx = conf_key_index(section, key);
	if (idx < 0) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "%s:%d: unknown key '%s' in [%s] (see "
		         "p11mail.conf(5))",
		         name, lineno, conf_shown(key, shown, sizeof(shown)),
		         section);
		return -1;
	}
	problem = conf_value_problem(&conf_keys[idx], value);
	if (problem != NULL) {
		p11m_log(P11MAIL_LOG_ERROR, "%s:%d: %s.%s: %s", name, lineno,
		         section, key, problem);
		return -1;
	}
	if (cfg->values[idx] != NULL) {
		p11m_log(P11MAIL_LOG_ERROR, "%s:%d: %s.%s is set twice", name,
		         lineno, section, key);
		return -1;
	}
	cfg->values[idx] = strdup(value);
	return cfg->values[idx] == NULL ? -1 : 0;
}

/* Handles "[section]"; returns the section name inside line, or NULL. */
static char *conf_section(const char *name, int lineno, char *line)
{
	char *end = strchr(line, ']');
	char *section;
	char shown[128];

	if (end == NULL || *conf_trim(end + 1) != '\0') {
		p11m_log(P11MAIL_LOG_ERROR, "%s:%d: malformed section header",
		         name, lineno);
		return NULL;
	}
	*end = '\0';
	section = conf_trim(line + 1);
	if (!conf_section_known(section)) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "%s:%d: unknown section [%s] (see p11mail.conf(5))",
		         name, lineno,
		         conf_shown(section, shown, sizeof(shown)));
		return NULL;
	}
	return section;
}

static int conf_parse_lines(struct p11mail_config *cfg, char *text,
                            const char *name)
{
	const char *section = NULL;
	int lineno = 0;
	char *next;

	for (char *line = text; line != NULL; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		lineno++;
		line = conf_trim(line);
		if (*line == '\0' || *line == '#' || *line == ';')
			continue;
		if (*line == '[') {
			section = conf_section(name, lineno, line);
			if (section == NULL)
				return -1;
		} else if (conf_set(cfg, name, lineno, section, line) < 0) {
			return -1;
		}
	}
	return 0;
}

enum p11mail_status p11mail_config_parse(const char *text, const char *name,
                                         struct p11mail_config **out)
{
	enum p11mail_status st = P11MAIL_ERR_NOMEM;
	struct p11mail_config *cfg = NULL;
	char *copy = NULL;

	if (out != NULL)
		*out = NULL;
	if (text == NULL || name == NULL || out == NULL)
		return P11MAIL_ERR_ARGS;

	cfg = calloc(1, sizeof(*cfg));
	copy = strdup(text);
	if (cfg == NULL || copy == NULL)
		goto out;
	if (conf_parse_lines(cfg, copy, name) < 0) {
		st = P11MAIL_ERR_CONFIG;
		goto out;
	}
	*out = cfg;
	cfg = NULL;
	st = P11MAIL_OK;
out:
	free(copy);
	p11mail_config_free(cfg);
	return st;
}

/*
 * Reads a whole small text file; NULL with errno set on failure.  *len is
 * its length, which a NUL byte inside makes longer than strlen().
 */
static char *conf_slurp(const char *path, size_t *lenp)
{
	char *buf = NULL;
	size_t len;
	FILE *f;

	f = fopen(path, "re");
	if (f == NULL)
		return NULL;
	buf = malloc(CONF_MAX_SIZE + 1);
	if (buf == NULL)
		goto out;
	len = fread(buf, 1, CONF_MAX_SIZE + 1, f);
	if (ferror(f) || len > CONF_MAX_SIZE) {
		free(buf);
		buf = NULL;
		errno = ferror(f) ? EIO : EFBIG;
		goto out;
	}
	buf[len] = '\0';
	*lenp = len;
out:
	fclose(f);
	return buf;
}

/* The first default place that exists, as a new string, or NULL. */
static char *conf_default_path(void)
{
	const char *xdg = p11m_getenv("XDG_CONFIG_HOME");
	const char *home = p11m_getenv("HOME");
	char buf[PATH_MAX];
	int n = -1;

	if (xdg != NULL && xdg[0] == '/')
		n = snprintf(buf, sizeof(buf), "%s/p11mail/p11mail.conf", xdg);
	else if (home != NULL && home[0] == '/')
		n = snprintf(buf, sizeof(buf),
		             "%s/.config/p11mail/p11mail.conf", home);
	if (n > 0 && (size_t)n < sizeof(buf) && access(buf, F_OK) == 0)
		return strdup(buf);
	if (access("/etc/p11mail/p11mail.conf", F_OK) == 0)
		return strdup("/etc/p11mail/p11mail.conf");
	return NULL;
}

enum p11mail_status p11mail_config_load(const char *path,
                                        struct p11mail_config **out)
{
	enum p11mail_status st = P11MAIL_ERR_NOMEM;
	char *found = NULL, *text = NULL, *nul;
	size_t len = 0;
	int lineno = 1;

	if (out != NULL)
		*out = NULL;
	if (out == NULL)
		return P11MAIL_ERR_ARGS;

	if (path == NULL || *path == '\0')
		path = p11m_getenv("P11MAIL_CONFIG");
	if (path == NULL || *path == '\0') {
		found = conf_default_path();
		if (found == NULL)
			return p11mail_config_parse("", "(none)", out);
		path = found;
	}

	text = conf_slurp(path, &len);
	if (text == NULL) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "cannot read the configuration %s: %s", path,
		         strerror(errno));
		st = P11MAIL_ERR_CONFIG;
		goto out;
	}
	nul = memchr(text, '\0', len);
	if (nul != NULL) {
		for (const char *p = text; p < nul; p++)
			lineno += *p == '\n';
		p11m_log(P11MAIL_LOG_ERROR, "%s:%d: contains a NUL byte", path,
		         lineno);
		st = P11MAIL_ERR_CONFIG;
		goto out;
	}
	st = p11mail_config_parse(text, path, out);
	if (st == P11MAIL_OK) {
		(*out)->path = strdup(path);
		if ((*out)->path == NULL) {
			p11mail_config_free(*out);
			*out = NULL;
			st = P11MAIL_ERR_NOMEM;
		}
	}
out:
	free(text);
	free(found);
	return st;
}

void p11mail_config_free(struct p11mail_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < CONF_NKEYS; i++)
		free(cfg->values[i]);
	free(cfg->path);
	free(cfg);
}

const char *p11mail_config_path(const struct p11mail_config *cfg)
{
	return cfg != NULL ? cfg->path : NULL;
}

const char *p11mail_config_get(const struct p11mail_config *cfg,
                               const char *section, const char *key)
{
	int idx;

	if (cfg == NULL || section == NULL || key == NULL)
		return NULL;
	idx = conf_key_index(section, key);
	return idx < 0 ? NULL : cfg->values[idx];
}

int p11mail_config_get_bool(const struct p11mail_config *cfg,
                            const char *section, const char *key, int def)
{
	const char *v = p11mail_config_get(cfg, section, key);

	return v == NULL ? def : strcmp(v, "yes") == 0;
}

long p11mail_config_get_long(const struct p11mail_config *cfg,
                             const char *section, const char *key, long def)
{
	const char *v = p11mail_config_get(cfg, section, key);

	return v == NULL ? def : strtol(v, NULL, 10);
}

/*
 * The position of a CONF_CHOICE key's value among its choices: the value
 * of the enum that mirrors them.  0, the first choice, when it is unset.
 */
static int conf_choice(const struct p11mail_config *cfg, const char *section,
                       const char *key)
{
	int idx = conf_key_index(section, key);
	int pos;

	if (cfg == NULL || idx < 0 || cfg->values[idx] == NULL)
		return 0;
	pos = conf_choice_index(conf_keys[idx].choices, cfg->values[idx]);
	return pos < 0 ? 0 : pos;
}

enum p11m_discovery p11m_config_discovery(const struct p11mail_config *cfg)
{
	return (enum p11m_discovery)conf_choice(cfg, "policy", "discovery");
}

enum p11m_smtp_tls p11m_config_smtp_tls(const struct p11mail_config *cfg)
{
	return (enum p11m_smtp_tls)conf_choice(cfg, "account", "smtp-tls");
}

/* The PIN callback behind [token] pin-source. */
static int conf_pin_from_source(void *arg, const struct tok_pin_request *req,
                                char *buf, size_t size)
{
	const char *source = arg;
	char *pin = NULL;
	size_t len;
	int rc = -1;

	if (p11mail_secret_read(source, &pin) != P11MAIL_OK)
		return -1;
	len = strlen(pin);
	if (len < size) {
		memcpy(buf, pin, len + 1);
		rc = 0;
	}
	p11mail_secret_free(pin);
	return rc;
}

/*
 * [token] module as a path for the token core.  A bare name such as
 * "opensc-pkcs11" is a module registered with p11-kit: the core then uses
 * the registry, where that module already is.
 */
static const char *conf_module_path(const struct p11mail_config *cfg)
{
	const char *m = p11mail_config_get(cfg, "token", "module");
	size_t len = m != NULL ? strlen(m) : 0;

	if (m == NULL || strchr(m, '/') != NULL ||
	    (len > 3 && strcmp(m + len - 3, ".so") == 0))
		return m;
	return NULL;
}

void p11m_config_token_options(const struct p11mail_config *cfg,
                               struct tok_options *opts)
{
	const char *pin_source = p11mail_config_get(cfg, "token", "pin-source");

	memset(opts, 0, sizeof(*opts));
	opts->module_path = conf_module_path(cfg);
	opts->init_args = p11mail_config_get(cfg, "token", "init-args");
	opts->pinentry = p11mail_config_get(cfg, "token", "pinentry");
	opts->allow_prompt = 1;
	opts->auth_policy =
	        (enum tok_auth_policy)conf_choice(cfg, "token", "always-auth");
	opts->wait_seconds =
	        (int)p11mail_config_get_long(cfg, "token", "wait", 0);
	if (pin_source != NULL) {
		opts->pin_fn = conf_pin_from_source;
		/* The callback only reads the string. */
		opts->pin_arg = (void *)(uintptr_t)pin_source;
	}
}

/* Opens a secret file and checks that only its owner can read it. */
static int secret_open(const char *path)
{
	struct stat sb;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "cannot open the secret file %s: %s", path,
		         strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		p11m_log(P11MAIL_LOG_ERROR, "%s is not a regular file", path);
		close(fd);
		return -1;
	}
	if ((sb.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "refusing the secret file %s: group or others can "
		         "read it (chmod 600 %s)",
		         path, path);
		close(fd);
		return -1;
	}
	return fd;
}

enum p11mail_status p11mail_secret_read(const char *source, char **out)
{
	enum p11mail_status st = P11MAIL_ERR_CONFIG;
	char *buf = NULL;
	ssize_t n;
	int fd = -1;

	if (out != NULL)
		*out = NULL;
	if (source == NULL || out == NULL)
		return P11MAIL_ERR_ARGS;
	if (strncmp(source, "file:", 5) != 0 || source[5] == '\0') {
		p11m_log(P11MAIL_LOG_ERROR,
		         "a secret source must be file:/path (secrets are "
		         "never taken from the command line)");
		return P11MAIL_ERR_CONFIG;
	}

	fd = secret_open(source + 5);
	if (fd < 0)
		goto out;
	buf = calloc(1, SECRET_MAX + 1);
	if (buf == NULL) {
		st = P11MAIL_ERR_NOMEM;
		goto out;
	}
	n = read(fd, buf, SECRET_MAX);
	if (n < 0) {
		p11m_log(P11MAIL_LOG_ERROR, "cannot read %s: %s", source + 5,
		         strerror(errno));
		goto out;
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	*out = buf;
	buf = NULL;
	st = P11MAIL_OK;
out:
	if (fd >= 0)
		close(fd);
	p11m_secure_free(buf, SECRET_MAX + 1);
	return st;
}
