/*
 * The mail account of the configuration ([account] in p11mail.conf(5)):
 * servers, credentials and the local Maildir and outbox.  The password is
 * read from its source only when a server needs it, and wiped on free.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "transport.h"

struct account_service {
	char *host;
	unsigned int port;
	enum p11mail_tls tls;
	int tls_set; /* chosen explicitly rather than from the port */
};

struct p11mail_account {
	const struct p11mail_config *cfg; /* borrowed */
	char *address;
	char *user;
	char *password_source;
	char *password; /* secret: wiped */
	char *ca_file;
	char *maildir;
	char *outbox;
	char *state_file;
	char *store_dir; /* the store of the identities that protect mail */
	struct account_service svc[3];
};

static char *account_dup(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static char *account_path(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p != NULL)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* Parses "starttls", "implicit" or "none"; -1 for anything else. */
static int account_tls_word(const char *s)
{
	if (s == NULL)
		return -1;
	if (strcasecmp(s, "starttls") == 0)
		return P11MAIL_TLS_STARTTLS;
	if (strcasecmp(s, "implicit") == 0)
		return P11MAIL_TLS_IMPLICIT;
	if (strcasecmp(s, "none") == 0)
		return P11MAIL_TLS_NONE;
	return -1;
}

static enum p11mail_status account_service_load(struct p11mail_account *a,
                                                enum p11mail_service s)
{
	static const char *const keys[][3] = {
	        {"smtp-host", "smtp-port", "smtp-tls"},
	        {"imap-host", "imap-port", "imap-tls"},
	        {"pop3-host", "pop3-port", "pop3-tls"}};
	struct account_service *svc = &a->svc[s];
	int tls;

	svc->host =
	        account_dup(p11mail_config_get(a->cfg, "account", keys[s][0]));
	svc->port = (unsigned int)p11mail_config_get_long(a->cfg, "account",
	                                                  keys[s][1], 0);
	tls = account_tls_word(
	        p11mail_config_get(a->cfg, "account", keys[s][2]));
	if (tls >= 0) {
		svc->tls = (enum p11mail_tls)tls;
		svc->tls_set = 1;
	}
	return P11MAIL_OK;
}

static enum p11mail_status account_paths(struct p11mail_account *a,
                                         const char *store_dir)
{
	const char *maildir = p11mail_config_get(a->cfg, "account", "maildir");
	const char *outbox = p11mail_config_get(a->cfg, "account", "outbox");

	a->maildir = maildir != NULL ? strdup(maildir)
	                             : account_path(store_dir, "Maildir");
	a->outbox = outbox != NULL ? strdup(outbox)
	                           : account_path(store_dir, "outbox");
	a->state_file = a->maildir != NULL
	                        ? account_path(a->maildir, ".p11mail-fetch")
	                        : NULL;
	if (a->maildir == NULL || a->outbox == NULL || a->state_file == NULL)
		return P11MAIL_ERR_NOMEM;
	return P11MAIL_OK;
}

enum p11mail_status p11mail_account_load(const struct p11mail_config *cfg,
                                         const char *store_dir,
                                         struct p11mail_account **out)
{
	struct p11mail_account *a;
	enum p11mail_status rc;

	if (out == NULL)
		return P11MAIL_ERR_ARGS;
	*out = NULL;
	if (cfg == NULL || store_dir == NULL)
		return P11MAIL_ERR_ARGS;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return P11MAIL_ERR_NOMEM;
	a->cfg = cfg;
	a->store_dir = strdup(store_dir);
	a->address = account_dup(p11mail_config_get(cfg, "account", "address"));
	a->user = account_dup(p11mail_config_get(cfg, "account", "smtp-user"));
	a->password_source = account_dup(
	        p11mail_config_get(cfg, "account", "password-source"));
	a->ca_file = account_dup(p11mail_config_get(cfg, "account", "ca-file"));
	rc = a->store_dir != NULL ? account_paths(a, store_dir)
	                          : P11MAIL_ERR_NOMEM;
	for (int s = 0; rc == P11MAIL_OK && s < 3; s++)
		rc = account_service_load(a, (enum p11mail_service)s);
	if (rc == P11MAIL_OK && a->svc[P11MAIL_SERVICE_SMTP].host != NULL &&
	    !a->svc[P11MAIL_SERVICE_SMTP].tls_set) {
		/* smtp-tls defaults to starttls, whatever the port. */
		a->svc[P11MAIL_SERVICE_SMTP].tls_set = 1;
	}
	if (rc != P11MAIL_OK)
		goto out;
	*out = a;
	a = NULL;
out:
	p11mail_account_free(a);
	return rc;
}

void p11mail_account_free(struct p11mail_account *a)
{
	if (a == NULL)
		return;
	p11mail_secret_free(a->password);
	free(a->address);
	free(a->user);
	free(a->password_source);
	free(a->ca_file);
	free(a->maildir);
	free(a->outbox);
	free(a->state_file);
	free(a->store_dir);
	for (int s = 0; s < 3; s++)
		free(a->svc[s].host);
	free(a);
}

const char *p11mail_account_address(const struct p11mail_account *a)
{
	return a != NULL ? a->address : NULL;
}

const char *p11mail_account_maildir(const struct p11mail_account *a)
{
	return a != NULL ? a->maildir : NULL;
}

const char *p11mail_account_outbox(const struct p11mail_account *a)
{
	return a != NULL ? a->outbox : NULL;
}

const char *account_store_dir(const struct p11mail_account *a)
{
	return a->store_dir;
}

const struct p11mail_config *account_config(const struct p11mail_account *a)
{
	return a->cfg;
}

const char *p11mail_account_state_file(const struct p11mail_account *a)
{
	return a != NULL ? a->state_file : NULL;
}

static enum p11mail_status account_replace(char **field, const char *value)
{
	char *copy = NULL;

	if (value != NULL && (copy = strdup(value)) == NULL)
		return P11MAIL_ERR_NOMEM;
	free(*field);
	*field = copy;
	return P11MAIL_OK;
}

enum p11mail_status p11mail_account_set_ca_file(struct p11mail_account *a,
                                                const char *path)
{
	if (a == NULL)
		return P11MAIL_ERR_ARGS;
	return account_replace(&a->ca_file, path);
}

enum p11mail_status p11mail_account_set_maildir(struct p11mail_account *a,
                                                const char *dir)
{
	enum p11mail_status rc;
	char *state;

	if (a == NULL || dir == NULL)
		return P11MAIL_ERR_ARGS;
	state = account_path(dir, ".p11mail-fetch");
	rc = state != NULL ? account_replace(&a->maildir, dir)
	                   : P11MAIL_ERR_NOMEM;
	if (rc != P11MAIL_OK)
		goto out;
	free(a->state_file);
	a->state_file = state;
	state = NULL;
out:
	free(state);
	return rc;
}

enum p11mail_status p11mail_account_set_tls(struct p11mail_account *a,
                                            enum p11mail_service s,
                                            enum p11mail_tls tls)
{
	if (a == NULL || s > P11MAIL_SERVICE_POP3 || tls > P11MAIL_TLS_NONE)
		return P11MAIL_ERR_ARGS;
	a->svc[s].tls = tls;
	a->svc[s].tls_set = 1;
	return P11MAIL_OK;
}

/* Implicit TLS on the well-known TLS ports, STARTTLS everywhere else. */
static enum p11mail_tls account_tls_for(const struct account_service *svc)
{
	if (svc->tls_set)
		return svc->tls;
	if (svc->port == 465 || svc->port == 993 || svc->port == 995)
		return P11MAIL_TLS_IMPLICIT;
	return P11MAIL_TLS_STARTTLS;
}

static enum p11mail_status account_password(struct p11mail_account *a)
{
	if (a->password != NULL)
		return P11MAIL_OK;
	if (a->password_source == NULL) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "[account] password-source is not set: name the "
		         "file that holds the password (file:/path)");
		return P11MAIL_ERR_CONFIG;
	}
	return p11mail_secret_read(a->password_source, &a->password);
}

enum p11mail_status p11mail_account_server(struct p11mail_account *a,
                                           enum p11mail_service s,
                                           struct p11mail_server *out)
{
	const char *user;
	enum p11mail_status rc;

	if (out == NULL)
		return P11MAIL_ERR_ARGS;
	memset(out, 0, sizeof(*out));
	if (a == NULL || s > P11MAIL_SERVICE_POP3)
		return P11MAIL_ERR_ARGS;
	if (a->svc[s].host == NULL)
		return P11MAIL_ERR_NOT_FOUND;

	/*
	 * A login only with a password source; the user is smtp-user, else
	 * the address.  Without one the server is used anonymously.
	 */
	user = a->user != NULL ? a->user : a->address;
	if (a->password_source == NULL) {
		user = NULL;
	} else {
		rc = account_password(a);
		if (rc != P11MAIL_OK)
			return rc;
	}
	out->host = a->svc[s].host;
	out->port = a->svc[s].port;
	out->tls = account_tls_for(&a->svc[s]);
	out->user = user;
	out->password = user != NULL ? a->password : NULL;
	out->ca_file = a->ca_file;
	return P11MAIL_OK;
}

enum p11mail_status p11mail_account_open(const char *config_path,
                                         const char *store_dir,
                                         struct p11mail_config **cfg,
                                         struct p11mail_account **out)
{
	struct p11mail_config *c = NULL;
	enum p11mail_status rc;
	char *dir = NULL;

	if (cfg == NULL || out == NULL)
		return P11MAIL_ERR_ARGS;
	*cfg = NULL;
	*out = NULL;
	rc = p11mail_config_load(config_path, &c);
	if (rc == P11MAIL_OK)
		rc = p11mail_store_dir(c, store_dir, 0, &dir);
	if (rc == P11MAIL_OK)
		rc = p11mail_account_load(c, dir, out);
	if (rc != P11MAIL_OK)
		goto out;
	*cfg = c;
	c = NULL;
out:
	free(dir);
	p11mail_config_free(c);
	return rc;
}
