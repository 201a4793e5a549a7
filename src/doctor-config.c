/* p11mail doctor: the configuration file and the mail account settings. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "doctor.h"

#define CONF_REMEDY "correct it as p11mail.conf(5) describes"

void doctor_check_config(struct doctor *d, const char *path,
                         struct p11mail_config **cfg)
{
	enum p11mail_status st;
	struct stat sb;

	*cfg = NULL;
	if (path != NULL && stat(path, &sb) != 0) {
		doctor_add(d, DOCTOR_FAIL, "config",
		           "create it (see p11mail.conf(5)) or correct "
		           "--config or P11MAIL_CONFIG",
		           "configuration file %s: %s", path, strerror(errno));
		return;
	}
	d->last_log[0] = '\0';
	st = p11mail_config_load(path, cfg);
	if (st != P11MAIL_OK) {
		doctor_add(d, DOCTOR_FAIL, "config", CONF_REMEDY,
		           "the configuration is invalid: %s",
		           d->last_log[0] != '\0' ? d->last_log
		                                  : p11mail_strerror(st));
		*cfg = NULL;
		return;
	}
	d->cfg = *cfg;
	d->config_path = p11mail_config_path(*cfg);
	if (d->config_path == NULL)
		doctor_add(d, DOCTOR_WARN, "config",
		           "write ~/.config/p11mail/p11mail.conf with the "
		           "[token] and [account] sections (p11mail.conf(5))",
		           "no configuration file: none in "
		           "$XDG_CONFIG_HOME/p11mail or /etc/p11mail");
	else
		doctor_add(d, DOCTOR_OK, "config", NULL, "%s is valid",
		           d->config_path);
}

static const char *conf(const struct doctor *d, const char *key)
{
	const char *v = p11mail_config_get(d->cfg, "account", key);

	return v != NULL && *v != '\0' ? v : NULL;
}

/* What a secret file holds and which key names it, for the findings. */
struct secret_kind {
	const char *check;   /* "token" or "account" */
	const char *key;     /* "[token] pin-source" */
	const char *noun;    /* "PIN file" */
	const char *content; /* "the token PIN" */
};

static const struct secret_kind pin_kind = {"token", "[token] pin-source",
                                            "PIN file", "the token PIN"};
static const struct secret_kind password_kind = {
        "account", "[account] password-source", "password file",
        "the password"};

/*
 * 1 when the secret on the first line of the open file fd is empty (the
 * file is empty or starts with a line end), 0 when not, -1 when it cannot
 * be read.  Only its first byte is read, and wiped.
 */
static int secret_empty(int fd)
{
	char byte = 0;
	ssize_t n = read(fd, &byte, 1);
	int empty = n == 0 || (n == 1 && (byte == '\n' || byte == '\r'));

	p11mail_wipe(&byte, sizeof(byte));
	return n < 0 ? -1 : empty;
}

/*
 * A secret file must exist, be a regular file readable by its owner only
 * and hold the secret on its first line: p11mail refuses it otherwise.
 */
static void check_secret_file(struct doctor *d, const struct secret_kind *k,
                              const char *source)
{
	const char *path = source;
	unsigned int mode;
	char next[600];
	struct stat sb;
	int fd, empty;

	if (strncmp(path, "file:", 5) == 0)
		path += 5;
	snprintf(next, sizeof(next),
	         "create %s holding %s on its first line, mode 0600 "
	         "(chmod 600), or correct %s",
	         path, k->content, k->key);
	if (stat(path, &sb) != 0) {
		doctor_add(d, DOCTOR_FAIL, k->check, next, "%s %s: %s", k->noun,
		           path, strerror(errno));
		return;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(next, sizeof(next), "point %s at a regular file",
		         k->key);
		doctor_add(d, DOCTOR_FAIL, k->check, next,
		           "%s %s is not a regular file", k->noun, path);
		return;
	}
	mode = (unsigned int)(sb.st_mode & 07777);
	if ((sb.st_mode & 077) != 0) {
		snprintf(next, sizeof(next), "chmod 600 %s", path);
		doctor_add(d, DOCTOR_FAIL, k->check, next,
		           "%s %s has mode %04o: group or others may read it, "
		           "and p11mail refuses it",
		           k->noun, path, mode);
		return;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		doctor_add(d, DOCTOR_FAIL, k->check,
		           "give the file to the user who runs p11mail, mode "
		           "0600",
		           "%s %s: %s", k->noun, path, strerror(errno));
		return;
	}
	empty = secret_empty(fd);
	close(fd);
	snprintf(next, sizeof(next), "write %s on the first line of %s",
	         k->content, path);
	if (empty != 0) {
		doctor_add(d, DOCTOR_FAIL, k->check, next, "%s %s %s", k->noun,
		           path,
		           empty > 0 ? "is empty: its first line holds no "
		                       "secret"
		                     : "cannot be read");
		return;
	}
	if (sb.st_uid != getuid())
		doctor_add(d, DOCTOR_WARN, k->check,
		           "give the file to the user who runs p11mail",
		           "%s %s belongs to user %u, not to you", k->noun,
		           path, (unsigned int)sb.st_uid);
	else
		doctor_add(d, DOCTOR_OK, k->check, NULL,
		           "%s %s is private (mode %04o)", k->noun, path, mode);
}

void doctor_check_pin_source(struct doctor *d)
{
	const char *source;
	size_t before = d->count;

	if (d->cfg == NULL)
		return;
	/* Without it the PIN is asked for when needed. */
	source = p11mail_config_get(d->cfg, "token", "pin-source");
	if (source == NULL || *source == '\0')
		return;
	check_secret_file(d, &pin_kind, source);
	d->pin_file_bad = d->count > before &&
	                  d->findings[d->count - 1].level == DOCTOR_FAIL;
}

static void check_smtp(struct doctor *d)
{
	const char *host = conf(d, "smtp-host");
	const char *tls = conf(d, "smtp-tls");
	long port = p11mail_config_get_long(d->cfg, "account", "smtp-port", 0);

	/* Sending is optional: a workstation may only receive. */
	if (host == NULL) {
		doctor_add(d, DOCTOR_WARN, "account",
		           "set [account] smtp-host to the submission server "
		           "to send mail from this workstation",
		           "no SMTP server: mail cannot be sent");
		return;
	}
	if (port != 0)
		doctor_add(d, DOCTOR_OK, "account", NULL,
		           "SMTP server %s port %ld (%s)", host, port,
		           tls != NULL ? tls : "starttls");
	else
		doctor_add(d, DOCTOR_OK, "account", NULL, "SMTP server %s (%s)",
		           host, tls != NULL ? tls : "starttls");
}

static void check_fetch(struct doctor *d)
{
	const char *imap = conf(d, "imap-host");
	const char *pop3 = conf(d, "pop3-host");

	if (imap == NULL && pop3 == NULL)
		doctor_add(d, DOCTOR_WARN, "account",
		           "set [account] imap-host or pop3-host to receive "
		           "mail on this workstation",
		           "no IMAP or POP3 server: mail cannot be fetched");
	else
		doctor_add(d, DOCTOR_OK, "account", NULL, "%s server %s",
		           imap != NULL ? "IMAP" : "POP3",
		           imap != NULL ? imap : pop3);
}

static void check_ca_file(struct doctor *d)
{
	const char *ca = conf(d, "ca-file");

	if (ca != NULL && access(ca, R_OK) != 0)
		doctor_add(d, DOCTOR_FAIL, "account",
		           "correct [account] ca-file, or remove it to use "
		           "the system's anchors",
		           "ca-file %s: %s", ca, strerror(errno));
}

void doctor_check_account(struct doctor *d)
{
	const char *address = conf(d, "address");
	const char *user = conf(d, "smtp-user");
	const char *source = conf(d, "password-source");

	if (d->cfg == NULL)
		return;
	if (address == NULL && conf(d, "smtp-host") == NULL &&
	    conf(d, "imap-host") == NULL && conf(d, "pop3-host") == NULL) {
		doctor_add(d, DOCTOR_WARN, "account",
		           "add an [account] section if this workstation sends "
		           "or receives mail (p11mail.conf(5))",
		           "no mail account is configured");
		return;
	}
	if (address == NULL)
		doctor_add(d, DOCTOR_FAIL, "account",
		           "set [account] address to the mailbox's address",
		           "the account has no address");
	else
		doctor_add(d, DOCTOR_OK, "account", NULL, "account %s",
		           address);
	check_smtp(d);
	check_fetch(d);
	check_ca_file(d);
	if (source != NULL)
		check_secret_file(d, &password_kind, source);
	else if (user != NULL)
		doctor_add(d, DOCTOR_FAIL, "account",
		           "set [account] password-source = file:PATH (a file "
		           "of mode 0600 holding the password)",
		           "smtp-user %s is set but no password-source", user);
}
