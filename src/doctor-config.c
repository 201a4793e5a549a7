/* p11mail doctor: the configuration file and the mail account settings. */
#include "config.h"

#include <errno.h>
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

/* A secret file must be the user's own and unreadable by anyone else. */
static void check_secret_file(struct doctor *d, const char *source)
{
	const char *path = source;
	char next[600];
	struct stat sb;

	if (strncmp(path, "file:", 5) == 0)
		path += 5;
	if (stat(path, &sb) != 0) {
		doctor_add(d, DOCTOR_FAIL, "account",
		           "write the password into that file, mode 0600",
		           "password-source %s: %s", path, strerror(errno));
		return;
	}
	if (!S_ISREG(sb.st_mode)) {
		doctor_add(d, DOCTOR_FAIL, "account",
		           "point password-source at a regular file",
		           "password-source %s is not a regular file", path);
		return;
	}
	snprintf(next, sizeof(next), "chmod 600 %s", path);
	if ((sb.st_mode & 077) != 0)
		doctor_add(d, DOCTOR_FAIL, "account", next,
		           "password file %s has mode %04o: group or others "
		           "may read it, and p11mail refuses it",
		           path, (unsigned int)(sb.st_mode & 07777));
	else if (sb.st_uid != getuid())
		doctor_add(d, DOCTOR_WARN, "account",
		           "give the file to the user who sends mail",
		           "password file %s belongs to user %u, not to you",
		           path, (unsigned int)sb.st_uid);
	else
		doctor_add(d, DOCTOR_OK, "account", NULL,
		           "password file %s is private (mode %04o)", path,
		           (unsigned int)(sb.st_mode & 07777));
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
		check_secret_file(d, source);
	else if (user != NULL)
		doctor_add(d, DOCTOR_FAIL, "account",
		           "set [account] password-source = file:PATH (a file "
		           "of mode 0600 holding the password)",
		           "smtp-user %s is set but no password-source", user);
}
