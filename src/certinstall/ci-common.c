/* p11mail-certinstall: configuration, store, token and file helpers. */
#include "config.h"

#include <ctype.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certinstall/ci.h"
#include "common.h"
#include "conf.h"

int ci_begin(struct ci *ci, const struct tool_globals *g)
{
	enum p11mail_status st;

	ci->g = g;
	if (ci->token_uri == NULL)
		ci->token_uri = "pkcs11:";
	st = p11mail_config_load(g->config, &ci->cfg);
	return st == P11MAIL_OK ? TOOL_EXIT_OK : tool_exit_status(st);
}

void ci_end(struct ci *ci)
{
	p11mail_store_close(ci->store);
	tok_core_free(ci->core);
	p11mail_config_free(ci->cfg);
	memset(ci, 0, sizeof(*ci));
}

int ci_store(struct ci *ci)
{
	enum p11mail_status st;
	char *dir = NULL;

	if (ci->store != NULL)
		return TOOL_EXIT_OK;
	st = p11mail_store_dir(ci->cfg, ci->g->store, ci->system, &dir);
	if (st == P11MAIL_OK)
		st = p11mail_store_open(dir, &ci->store);
	free(dir);
	return st == P11MAIL_OK ? TOOL_EXIT_OK : tool_exit_status(st);
}

int ci_token_error(const char *what, CK_RV rv)
{
	const char *why = tok_last_error();

	tool_error("%s: %s", what,
	           why != NULL && *why != '\0'
	                   ? why
	                   : p11mail_strerror(tok_status(rv)));
	return TOOL_EXIT_FAILURE;
}

int ci_token(struct ci *ci)
{
	struct tok_options opts;
	CK_RV rv;

	if (ci->core != NULL)
		return TOOL_EXIT_OK;
	p11m_config_token_options(ci->cfg, &opts);
	opts.allow_prompt = isatty(STDIN_FILENO);
	rv = tok_core_new(&opts, &ci->core);
	return rv == CKR_OK ? TOOL_EXIT_OK
	                    : ci_token_error("cannot start the token core", rv);
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

STACK_OF(X509) * ci_read_certs(const char *path)
{
	STACK_OF(X509) *sk = NULL;
	BIO *bio = BIO_new_file(path, "rb");
	X509 *x;

	if (bio == NULL) {
		tool_error("cannot read %s", path);
		ERR_clear_error();
		return NULL;
	}
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

void ci_fingerprint_text(const unsigned char *der, size_t len, char text[96])
{
	unsigned char md[32];
	unsigned int n = 0;

	text[0] = '\0';
	if (!EVP_Digest(der, len, md, &n, EVP_sha256(), NULL))
		return;
	for (unsigned int i = 0; i < n; i++)
		snprintf(text + 3 * i, 4, i + 1 < n ? "%02X:" : "%02X", md[i]);
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

	while ((c = getopt_long(argc, argv, "yh", all, NULL)) != -1) {
		switch (c) {
		case 'y':
			ci->yes = 1;
			break;
		case 'S':
			ci->system = 1;
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
