/* p11mail-certinstall: configuration, store, token and file helpers. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/uri.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certinstall/ci.h"
#include "common.h"
#include "conf.h"

/* What a token shows without a login: whose certificates it holds. */
struct ci_token_owner {
	char label[33];
	char serial[17];
	int identity;        /* a certificate names the configured address */
	char addresses[200]; /* the addresses of its certificates, shown */
};

/* Set once the guard refused a PIN: that message says it all. */
static int pin_refused;

/* True when the store directory came from P11MAIL_STORE, not --store. */
static int store_from_env(const struct tool_globals *g)
{
	/* tool_main took the variable's own string: the same pointer. */
	return g->store != NULL && g->store == getenv("P11MAIL_STORE");
}

int ci_begin(struct ci *ci, const struct tool_globals *g)
{
	enum p11mail_status st;

	ci->g = g;
	if (ci->token_uri == NULL)
		ci->token_uri = "pkcs11:";
	if (ci->system && g->store != NULL && !store_from_env(g))
		return tool_usage_error("--system and --store name different "
		                        "stores: give one of them");
	st = p11mail_config_load(g->config, &ci->cfg);
	return st == P11MAIL_OK ? TOOL_EXIT_OK : tool_exit_status(st);
}

void ci_end(struct ci *ci)
{
	p11mail_store_close(ci->store);
	tok_core_free(ci->core);
	p11mail_config_free(ci->cfg);
	free(ci->owners);
	memset(ci, 0, sizeof(*ci));
}

/* The store directory: --store, else --system, else P11MAIL_STORE, ... */
static enum p11mail_status store_dir(const struct ci *ci, char **dir)
{
	const char *given = ci->g->store;

	/* --system names the machine-wide store over P11MAIL_STORE. */
	if (ci->system && store_from_env(ci->g))
		given = NULL;
	return p11mail_store_dir(ci->cfg, given, ci->system, dir);
}

int ci_store(struct ci *ci)
{
	enum p11mail_status st;
	char *dir = NULL;

	if (ci->store != NULL)
		return TOOL_EXIT_OK;
	st = store_dir(ci, &dir);
	if (st == P11MAIL_OK)
		st = p11mail_store_open(dir, &ci->store);
	free(dir);
	return st == P11MAIL_OK ? TOOL_EXIT_OK : tool_exit_status(st);
}

int ci_store_read(struct ci *ci, int *missing, char **dir)
{
	enum p11mail_status st;

	*missing = 0;
	*dir = NULL;
	st = store_dir(ci, dir);
	if (st != P11MAIL_OK)
		return tool_exit_status(st);
	*missing = tool_store_missing(*dir);
	if (*missing < 0)
		return TOOL_EXIT_FAILURE;
	if (*missing)
		return TOOL_EXIT_OK;
	return tool_exit_status(tool_store_open_reading(*dir, &ci->store));
}

int ci_pin_refused(void)
{
	return pin_refused;
}

int ci_token_error(const char *what, CK_RV rv)
{
	const char *why = tok_last_error();

	if (pin_refused)
		return TOOL_EXIT_FAILURE; /* guarded_pin said why */
	tool_error("%s: %s", what,
	           why != NULL && *why != '\0'
	                   ? why
	                   : p11mail_strerror(tok_status(rv)));
	return TOOL_EXIT_FAILURE;
}

/* A fixed-size PKCS#11 text field without its padding. */
static void field_copy(char *out, size_t size, const unsigned char *in,
                       size_t len)
{
	while (len > 0 && (in[len - 1] == ' ' || in[len - 1] == '\0'))
		len--;
	if (len >= size)
		len = size - 1;
	memcpy(out, in, len);
	out[len] = '\0';
}

/* The owner entry of the token an object URI names, added when new. */
static struct ci_token_owner *owner_of(struct ci *ci, const char *uri_text)
{
	P11KitUri *uri = p11_kit_uri_new();
	struct ci_token_owner key = {0}, *o = NULL;
	CK_TOKEN_INFO *ti;

	if (uri == NULL)
		return NULL;
	if (p11_kit_uri_parse(uri_text, P11_KIT_URI_FOR_ANY, uri) ==
	    P11_KIT_URI_OK) {
		ti = p11_kit_uri_get_token_info(uri);
		field_copy(key.label, sizeof(key.label), ti->label,
		           sizeof(ti->label));
		field_copy(key.serial, sizeof(key.serial), ti->serialNumber,
		           sizeof(ti->serialNumber));
		for (size_t i = 0; i < ci->n_owners && o == NULL; i++)
			if (strcmp(ci->owners[i].label, key.label) == 0 &&
			    strcmp(ci->owners[i].serial, key.serial) == 0)
				o = &ci->owners[i];
		if (o == NULL) {
			o = &ci->owners[ci->n_owners++];
			*o = key;
		}
	}
	p11_kit_uri_free(uri);
	return o;
}

/* Notes the addresses of one certificate object for its token. */
static void owner_note(struct ci *ci, const struct tok_object *obj)
{
	const unsigned char *p = obj->der;
	STACK_OF(OPENSSL_STRING) *addrs = NULL;
	struct ci_token_owner *o;
	X509 *x;

	if (obj->cls != CKO_CERTIFICATE || p == NULL)
		return;
	x = d2i_X509(NULL, &p, (long)obj->der_len);
	o = x != NULL ? owner_of(ci, obj->uri) : NULL;
	addrs = o != NULL ? ci_cert_addresses(x) : NULL;
	for (int i = 0; i < sk_OPENSSL_STRING_num(addrs); i++) {
		const char *a = sk_OPENSSL_STRING_value(addrs, i);
		size_t used = strlen(o->addresses);

		if (strcasecmp(a, ci->identity) == 0)
			o->identity = 1;
		if (strstr(o->addresses, a) == NULL &&
		    used + strlen(a) + 3 < sizeof(o->addresses))
			snprintf(o->addresses + used,
			         sizeof(o->addresses) - used, "%s%s",
			         used > 0 ? ", " : "", a);
	}
	ci_addresses_free(addrs);
	X509_free(x);
}

/* Learns, without logging in, which tokens show whose certificates. */
static void owners_learn(struct ci *ci)
{
	struct tok_object *objs = NULL;
	size_t n = 0;

	if (tok_list_objects(ci->core, "pkcs11:", &objs, &n) != CKR_OK)
		return; /* nothing known: only --token's tokens get it */
	ci->owners = calloc(n + 1, sizeof(*ci->owners));
	for (size_t i = 0; ci->owners != NULL && i < n; i++)
		owner_note(ci, &objs[i]);
	tok_objects_free(objs, n);
}

/*
 * Guards every way of asking for a PIN (the configured source, the
 * terminal, the pinentry program): a PIN is asked for only for a token of
 * the configured identity (see ci_token); called by the token core before
 * a login.  Without a configured source the core then asks on its own.
 */
static int guarded_pin(void *arg, const struct tok_pin_request *req, char *buf,
                       size_t size)
{
	struct ci *ci = arg;
	const struct ci_token_owner *o = NULL;
	const char *whose =
	        ci->pin_fn != NULL
	                ? "whose PIN the configuration gives ([token] "
	                  "pin-source)"
	                : "the configured identity ([identity] "
	                  "address)";

	for (size_t i = 0; i < ci->n_owners && o == NULL; i++)
		if (strcmp(ci->owners[i].label, req->token_label) == 0 &&
		    strcmp(ci->owners[i].serial, req->token_serial) == 0)
			o = &ci->owners[i];
	/* Certificates without a mail address say nothing of the owner. */
	if (o != NULL && !o->identity && o->addresses[0] == '\0')
		o = NULL;
	if ((o != NULL && o->identity) ||
	    (o == NULL && strcmp(ci->token_uri, "pkcs11:") != 0))
		return ci->pin_fn != NULL
		               ? ci->pin_fn(ci->pin_arg, req, buf, size)
		               : TOK_PIN_ASK_NEXT;
	if (o != NULL && ci->pin_fn != NULL)
		tool_error("the token %s shows certificates for %s, not for "
		           "%s, %s: that PIN is not tried on another "
		           "person's token.  Use that person's configuration "
		           "(--config), or --token naming it with "
		           "--use-configured-pin if it is this token's PIN",
		           req->token_label, o->addresses, ci->identity, whose);
	else if (o != NULL)
		tool_error(
		        "the token %s shows certificates for %s, not for "
		        "%s, %s: no PIN is asked for another person's "
		        "token.  Use that person's configuration (--config), "
		        "or --token naming it with --use-configured-pin if "
		        "it is your token",
		        req->token_label, o->addresses, ci->identity, whose);
	else
		tool_error("the token %s shows no certificate for a mail "
		           "address: a PIN for %s is only asked for or tried "
		           "on it when --token names it (or with "
		           "--use-configured-pin)",
		           req->token_label, ci->identity);
	pin_refused = 1;
	return -1;
}

int ci_token(struct ci *ci)
{
	struct tok_options opts;
	CK_RV rv;

	if (ci->core != NULL)
		return TOOL_EXIT_OK;
	p11m_config_token_options(ci->cfg, &opts);
	opts.allow_prompt = isatty(STDIN_FILENO);
	ci->identity = p11mail_config_get(ci->cfg, "identity", "address");
	/* Whatever the PIN source, the guard decides who is asked. */
	if (ci->identity != NULL && !ci->any_token_pin) {
		ci->pin_fn = opts.pin_fn;
		ci->pin_arg = opts.pin_arg;
		opts.pin_fn = guarded_pin;
		opts.pin_arg = ci;
	}
	rv = tok_core_new(&opts, &ci->core);
	if (rv != CKR_OK)
		return ci_token_error("cannot start the token core", rv);
	free(ci->owners);
	ci->owners = NULL;
	ci->n_owners = 0;
	if (opts.pin_fn == guarded_pin)
		owners_learn(ci);
	return TOOL_EXIT_OK;
}

/* Reads every PEM certificate in bio; an empty stack when there is none. */
static STACK_OF(X509) * certs_from_pem(BIO *bio)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	X509 *x;

	while (sk != NULL && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			sk_X509_pop_free(sk, X509_free);
			return NULL;
		}
	}
	ERR_clear_error();
	return sk;
}

BIO *ci_open_file(const char *path)
{
	FILE *f = fopen(path, "rbe");
	BIO *bio;

	if (f == NULL) {
		tool_error("cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	bio = BIO_new_fp(f, BIO_CLOSE);
	if (bio == NULL) {
		fclose(f);
		tool_error("cannot read %s: out of memory", path);
	}
	return bio;
}

STACK_OF(X509) * ci_read_certs(const char *path)
{
	STACK_OF(X509) *sk = NULL;
	BIO *bio = ci_open_file(path);
	X509 *x;

	if (bio == NULL)
		return NULL;
	sk = certs_from_pem(bio);
	if (sk != NULL && sk_X509_num(sk) == 0) {
		(void)BIO_reset(bio);
		x = d2i_X509_bio(bio, NULL);
		if (x == NULL || !sk_X509_push(sk, x)) {
			X509_free(x);
			sk_X509_pop_free(sk, X509_free);
			sk = NULL;
			tool_error("%s holds no certificate (PEM or DER)",
			           path);
		}
	}
	BIO_free(bio);
	ERR_clear_error();
	return sk;
}

int ci_der(X509 *x, unsigned char **der, size_t *len)
{
	unsigned char *buf = NULL;
	int n = i2d_X509(x, &buf);

	*der = NULL;
	*len = 0;
	if (n <= 0)
		return -1;
	*der = malloc((size_t)n);
	if (*der != NULL) {
		memcpy(*der, buf, (size_t)n);
		*len = (size_t)n;
	}
	OPENSSL_free(buf);
	return *der != NULL ? 0 : -1;
}

static char *strndup_lower(const char *s, size_t len)
{
	char *res = strndup(s, len);

	for (char *p = res; res != NULL && *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return res;
}

static void push_address(STACK_OF(OPENSSL_STRING) * sk, const ASN1_STRING *s)
{
	char *a = strndup_lower((const char *)ASN1_STRING_get0_data(s),
	                        (size_t)ASN1_STRING_length(s));

	for (int i = 0; a != NULL && i < sk_OPENSSL_STRING_num(sk); i++)
		if (strcmp(sk_OPENSSL_STRING_value(sk, i), a) == 0) {
			free(a);
			return;
		}
	if (a != NULL && !sk_OPENSSL_STRING_push(sk, a))
		free(a);
}

STACK_OF(OPENSSL_STRING) * ci_cert_addresses(X509 *x)
{
	STACK_OF(OPENSSL_STRING) *sk = sk_OPENSSL_STRING_new_null();
	GENERAL_NAMES *names;
	X509_NAME *subj = X509_get_subject_name(x);
	int idx = -1;

	if (sk == NULL)
		return NULL;
	names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);

		if (gn->type == GEN_EMAIL)
			push_address(sk, gn->d.rfc822Name);
	}
	GENERAL_NAMES_free(names);
	/* RFC 8550: the DN emailAddress only when there is nothing else. */
	while (sk_OPENSSL_STRING_num(sk) == 0 &&
	       (idx = X509_NAME_get_index_by_NID(subj, NID_pkcs9_emailAddress,
	                                         idx)) >= 0)
		push_address(sk, X509_NAME_ENTRY_get_data(
		                         X509_NAME_get_entry(subj, idx)));
	return sk;
}

static void address_free(char *a)
{
	free(a);
}

void ci_addresses_free(STACK_OF(OPENSSL_STRING) * addresses)
{
	sk_OPENSSL_STRING_pop_free(addresses, address_free);
}

int ci_confirm(const struct ci *ci, const char *question)
{
	char line[16];

	if (ci->yes)
		return 1;
	if (!isatty(STDIN_FILENO) || !isatty(STDERR_FILENO))
		return 0;
	fprintf(stderr, "%s [y/N] ", question);
	fflush(stderr);
	if (fgets(line, sizeof(line), stdin) == NULL)
		return 0;
	return line[0] == 'y' || line[0] == 'Y';
}

void ci_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

void ci_date_text(int64_t t, char buf[16])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, 16, "%Y-%m-%d", &tm) == 0)
		snprintf(buf, 16, "?");
}

int ci_parse_options(struct ci *ci, int argc, char **argv,
                     const struct option *extra, size_t n_extra,
                     int (*on_extra)(void *arg, int c, const char *value),
                     void *arg, int (*usage)(void))
{
	static const struct option common[] = {
	        {"yes", no_argument, NULL, 'y'},
	        {"system", no_argument, NULL, 'S'},
	        {"token", required_argument, NULL, 'T'},
	        {"use-configured-pin", no_argument, NULL, 'U'},
	        {"help", no_argument, NULL, 'h'},
	};
	struct option all[16];
	size_t n = 0;
	int c;

	for (size_t i = 0; i < P11M_ARRAY_SIZE(common); i++)
		all[n++] = common[i];
	for (size_t i = 0; i < n_extra && n + 1 < P11M_ARRAY_SIZE(all); i++)
		all[n++] = extra[i];
	memset(&all[n], 0, sizeof(all[n]));

	while ((c = tool_getopt(argc, argv, "yh", all)) != -1) {
		switch (c) {
		case TOOL_OPT_ERROR:
			return TOOL_EXIT_USAGE; /* tool_getopt said why */
		case 'y':
			ci->yes = 1;
			break;
		case 'S':
			ci->system = 1;
			break;
		case 'U':
			ci->any_token_pin = 1;
			break;
		case 'T':
			if (tool_refuse_pin_value(optarg, "--token") != 0)
				return TOOL_EXIT_USAGE;
			ci->token_uri = optarg;
			break;
		case 'h':
			return usage();
		default:
			if (on_extra == NULL || on_extra(arg, c, optarg) < 0)
				return tool_usage_error("unknown option for "
				                        "%s",
				                        argv[0]);
		}
	}
	return -1;
}
