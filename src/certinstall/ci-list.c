/*
 * p11mail-certinstall list, remove and export: the recorded identities,
 * and on request their objects on the token.
 */
#include "config.h"

#include <ctype.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "certinstall/ci.h"
#include "common.h"

static int list_usage(void)
{
	printf("Usage: p11mail-certinstall list [--system]\n"
	       "Lists the identities recorded on this workstation.\n");
	return TOOL_EXIT_OK;
}

static void identity_print(const struct ci *ci,
                           const struct p11mail_identity *id, int first)
{
	char date[16];

	ci_date_text(id->not_after, date);
	if (!ci->g->json) {
		printf("%s %s (until %s)\n  key %s\n", id->address,
		       id->fingerprint, date, id->key_uri);
		return;
	}
	printf("%s{\"address\":", first ? "" : ",");
	ci_json_string(stdout, id->address);
	printf(",\"fingerprint\":\"%s\",\"not_after\":\"%s\",\"key_uri\":",
	       id->fingerprint, date);
	ci_json_string(stdout, id->key_uri);
	printf("}");
}

int ci_cmd_list(const struct tool_globals *g, int argc, char **argv)
{
	struct p11mail_identity *ids = NULL;
	struct ci ci = {0};
	char *dir = NULL;
	size_t n = 0;
	int rc, missing = 0;

	rc = ci_parse_options(&ci, argc, argv, NULL, 0, NULL, NULL, list_usage);
	if (rc >= 0)
		return rc;
	if (optind != argc)
		return tool_usage_error("list takes no arguments");
	rc = ci_begin(&ci, g);
	/* Reading only: a missing store is not created, it lists nothing. */
	if (rc == 0)
		rc = ci_store_read(&ci, &missing, &dir);
	if (rc == 0 && !missing)
		rc = tool_exit_status(
		        p11mail_identity_find(ci.store, NULL, &ids, &n));
	if (rc == 0 && g->json)
		printf("[");
	for (size_t i = 0; rc == 0 && i < n; i++)
		identity_print(&ci, &ids[i], i == 0);
	if (rc == 0 && g->json)
		printf("]\n");
	else if (rc == 0 && missing && !g->quiet)
		printf("no identities (there is no store at %s)\n", dir);
	else if (rc == 0 && n == 0 && !g->quiet)
		printf("no identities\n");
	p11mail_identities_free(ids, n);
	free(dir);
	ci_end(&ci);
	return rc;
}

static int remove_usage(void)
{
	printf("Usage: p11mail-certinstall remove ADDRESS [--fingerprint FP] "
	       "[--from-token [--delete-key]]\n"
	       "       [--system] [--yes]\n"
	       "Forgets an identity on this workstation.  --from-token also "
	       "deletes its certificate\n"
	       "from the token; the key stays there unless --delete-key is "
	       "confirmed (or --yes).\n");
	return TOOL_EXIT_OK;
}

struct remove_args {
	const char *fp;
	int from_token;
	int delete_key;
};

static int remove_option(void *arg, int c, const char *value)
{
	struct remove_args *a = arg;

	if (c == 'f')
		a->fp = value;
	else if (c == 'F')
		a->from_token = 1;
	else if (c == 'K')
		a->delete_key = a->from_token = 1;
	else
		return -1;
	return 0;
}

/* True when the identity is one remove was asked to forget. */
static int remove_selects(const struct p11mail_identity *id,
                          const char *address, const char *fp)
{
	return strcasecmp(id->address, address) == 0 &&
	       (fp == NULL ||
	        strncasecmp(id->fingerprint, fp, strlen(fp)) == 0);
}

/* Another recorded identity that keeps using key_uri, or NULL. */
static const char *key_user(const struct p11mail_identity *all, size_t n,
                            const char *key_uri, const char *address,
                            const char *fp)
{
	for (size_t i = 0; i < n; i++)
		if (!remove_selects(&all[i], address, fp) &&
		    strcmp(all[i].key_uri, key_uri) == 0)
			return all[i].address;
	return NULL;
}

/* Deletes the certificate, and the key when asked, of one identity. */
static int remove_token_objects(struct ci *ci, const struct remove_args *a,
                                const char *key_uri)
{
	char question[1400];
	size_t n = 0;
	CK_RV rv;

	snprintf(question, sizeof(question),
	         "Delete the private key %s from the token?  Mail encrypted "
	         "to it can then never be read again.",
	         key_uri);
	if (a->delete_key && !ci_confirm(ci, question)) {
		tool_error("the key was not deleted: confirm on a terminal or "
		           "give --yes; nothing changed");
		return TOOL_EXIT_FAILURE;
	}
	if (ci_token(ci) != TOOL_EXIT_OK)
		return TOOL_EXIT_FAILURE;
	rv = tok_delete_objects(
	        ci->core, key_uri, NULL, 0,
	        a->delete_key ? TOK_DELETE_ALL : TOK_DELETE_CERT, &n);
	if (rv != CKR_OK)
		return ci_token_error("cannot delete from the token", rv);
	if (!ci->g->quiet)
		printf("%zu objects deleted from the token (%s)\n", n,
		       a->delete_key ? "certificate and key"
		                     : "certificate; the key stays");
	return TOOL_EXIT_OK;
}

/* --from-token: the token objects of the identities being forgotten. */
static int remove_from_token(struct ci *ci, const struct remove_args *a,
                             const char *address)
{
	struct p11mail_identity *all = NULL;
	size_t n = 0, done = 0;
	int rc;

	rc = tool_exit_status(p11mail_identity_find(ci->store, NULL, &all, &n));
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const char *other;
		int seen = 0;

		if (!remove_selects(&all[i], address, a->fp))
			continue;
		for (size_t j = 0; j < i; j++)
			seen |= remove_selects(&all[j], address, a->fp) &&
			        strcmp(all[j].key_uri, all[i].key_uri) == 0;
		done++;
		if (seen)
			continue;
		other = key_user(all, n, all[i].key_uri, address, a->fp);
		if (other != NULL)
			tool_warn("the key %s stays on the token with its "
			          "certificate: the identity %s uses it too",
			          all[i].key_uri, other);
		else
			rc = remove_token_objects(ci, a, all[i].key_uri);
	}
	/* Nothing selected: the removal from the store says so. */
	p11mail_identities_free(all, n);
	return rc;
}

int ci_cmd_remove(const struct tool_globals *g, int argc, char **argv)
{
	static const struct option extra[] = {
	        {"fingerprint", required_argument, NULL, 'f'},
	        {"from-token", no_argument, NULL, 'F'},
	        {"delete-key", no_argument, NULL, 'K'}};
	struct remove_args a = {NULL, 0, 0};
	enum p11mail_status st = P11MAIL_ERR_NOT_FOUND;
	struct ci ci = {0};
	char *dir = NULL;
	int rc, missing = 0;

	rc = ci_parse_options(&ci, argc, argv, extra, 3, remove_option, &a,
	                      remove_usage);
	if (rc >= 0)
		return rc;
	if (optind + 1 != argc)
		return tool_usage_error("remove takes one address");
	rc = ci_begin(&ci, g);
	/* No store: nothing to remove, and none is created. */
	if (rc == 0)
		rc = ci_store_read(&ci, &missing, &dir);
	if (rc == 0 && !missing) {
		p11mail_store_close(ci.store);
		ci.store = NULL;
		rc = ci_store(&ci);
	}
	/* The token first: when it refuses, the identity stays recorded. */
	if (rc == 0 && !missing && a.from_token)
		rc = remove_from_token(&ci, &a, argv[optind]);
	if (rc == 0 && !missing)
		st = p11mail_identity_remove(ci.store, argv[optind], a.fp);
	if (rc == 0 && st == P11MAIL_ERR_ARGS) {
		rc = tool_usage_error("'%s' is not a mail address",
		                      argv[optind]);
	} else if (rc == 0 && st == P11MAIL_ERR_NOT_FOUND) {
		/* Run again, remove has nothing left to do: that is fine. */
		if (!g->quiet)
			printf("no identity for %s%s%s on this workstation; "
			       "nothing to remove\n",
			       argv[optind], a.fp ? " with fingerprint " : "",
			       a.fp ? a.fp : "");
	} else if (rc == 0) {
		if (st == P11MAIL_OK && !g->quiet)
			printf("%s: identity removed%s\n", argv[optind],
			       a.from_token ? ""
			                    : " (the key stays on the token)");
		rc = tool_exit_status(st);
	}
	free(dir);
	ci_end(&ci);
	return rc;
}

/* Base64 of der in a new string, one line. */
static char *base64(const unsigned char *der, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);

	if (out != NULL)
		EVP_EncodeBlock((unsigned char *)out, der, (int)len);
	return out;
}

/* RFC 4398 owner name: the local part becomes one label, dots escaped. */
static void print_owner(const char *address)
{
	const char *at = strrchr(address, '@');

	for (const char *p = address; p < at; p++) {
		if (*p == '.' || *p == '\\' || *p == ';' || *p == '"' ||
		    *p == '(' || *p == ')')
			putchar('\\');
		putchar(*p);
	}
	printf(".%s.", at + 1);
}

static int export_one(const struct p11mail_identity *id, const char *format,
                      const char *base_dn)
{
	const unsigned char *p = id->cert;
	char *b64 = NULL;
	X509 *x;

	if (strcmp(format, "pem") == 0) {
		x = d2i_X509(NULL, &p, (long)id->cert_len);
		if (x == NULL || !PEM_write_X509(stdout, x)) {
			X509_free(x);
			return TOOL_EXIT_FAILURE;
		}
		X509_free(x);
		return TOOL_EXIT_OK;
	}
	b64 = base64(id->cert, id->cert_len);
	if (b64 == NULL)
		return TOOL_EXIT_FAILURE;
	if (strcmp(format, "cert") == 0) {
		print_owner(id->address);
		printf(" IN CERT PKIX 0 0 %s\n", b64);
	} else {
		printf("dn: mail=%s%s%s\nmail: %s\nuserCertificate;binary:: "
		       "%s\n",
		       id->address, base_dn ? "," : "", base_dn ? base_dn : "",
		       id->address, b64);
	}
	free(b64);
	return TOOL_EXIT_OK;
}

static int export_usage(void)
{
	printf("Usage: p11mail-certinstall export [ADDRESS] "
	       "[--format pem|cert|ldif] [--fingerprint FP]\n"
	       "       [--base-dn DN] [--system]\n"
	       "Prints this workstation's certificate for ADDRESS (default: "
	       "[identity] address):\n"
	       "PEM, a DNS CERT record (RFC 4398), or an LDIF entry for "
	       "an LDAP directory.\n");
	return TOOL_EXIT_OK;
}

struct export_args {
	const char *format;
	const char *base_dn;
	const char *fingerprint;
};

static int export_option(void *arg, int c, const char *value)
{
	struct export_args *a = arg;

	if (c == 'F')
		a->format = value;
	else if (c == 'B')
		a->base_dn = value;
	else if (c == 'f')
		a->fingerprint = value;
	else
		return -1;
	return 0;
}

/* The identity whose fingerprint starts with fp (colons allowed). */
static int export_pick(const struct p11mail_identity *ids, size_t n,
                       const char *fp, size_t *pick)
{
	char want[65];
	size_t k = 0;

	for (; *fp != '\0' && k < 64; fp++)
		if (*fp != ':')
			want[k++] = (char)tolower((unsigned char)*fp);
	want[k] = '\0';
	for (size_t i = 0; k >= 8 && i < n; i++)
		if (strncmp(ids[i].fingerprint, want, k) == 0) {
			*pick = i;
			return TOOL_EXIT_OK;
		}
	tool_error("no identity with the fingerprint %s", want);
	return TOOL_EXIT_FAILURE;
}

/* The address to export: the operand, the configured one, or the only. */
static const char *export_address(struct ci *ci, int argc, char **argv)
{
	if (optind < argc)
		return argv[optind];
	return p11mail_config_get(ci->cfg, "identity", "address");
}

int ci_cmd_export(const struct tool_globals *g, int argc, char **argv)
{
	static const struct option extra[] = {
	        {"format", required_argument, NULL, 'F'},
	        {"base-dn", required_argument, NULL, 'B'},
	        {"fingerprint", required_argument, NULL, 'f'}};
	struct export_args a = {"pem", NULL, NULL};
	size_t pick = 0;
	struct p11mail_identity *ids = NULL;
	const char *address;
	struct ci ci = {0};
	char *dir = NULL;
	size_t n = 0;
	int rc, missing = 0;

	rc = ci_parse_options(&ci, argc, argv, extra, 3, export_option, &a,
	                      export_usage);
	if (rc >= 0)
		return rc;
	if (optind + 1 < argc)
		return tool_usage_error("export takes at most one address");
	if (strcmp(a.format, "pem") != 0 && strcmp(a.format, "cert") != 0 &&
	    strcmp(a.format, "ldif") != 0)
		return tool_usage_error("--format is pem, cert or ldif");
	rc = ci_begin(&ci, g);
	if (rc == 0)
		rc = ci_store_read(&ci, &missing, &dir);
	address = rc == 0 ? export_address(&ci, argc, argv) : NULL;
	if (rc == 0 && !missing)
		rc = tool_exit_status(
		        p11mail_identity_find(ci.store, address, &ids, &n));
	if (rc == 0 && (n == 0 || (address == NULL && n > 1))) {
		tool_error(n == 0 ? "no identity%s%s on this workstation"
		                  : "several identities%s%s: name the "
		                    "address",
		           address ? " for " : "", address ? address : "");
		rc = TOOL_EXIT_FAILURE;
	}
	if (rc == 0 && a.fingerprint != NULL)
		rc = export_pick(ids, n, a.fingerprint, &pick);
	if (rc == 0)
		rc = export_one(&ids[pick], a.format, a.base_dn);
	p11mail_identities_free(ids, n);
	free(dir);
	ci_end(&ci);
	return rc;
}
