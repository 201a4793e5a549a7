/* p11mail-certinstall anchor add | remove | list: the trust anchors. */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "certinstall/ci.h"
#include "common.h"
#include "store.h"

static int anchor_usage(void)
{
	printf("Usage: p11mail-certinstall anchor add FILE [--domain DOMAIN]\n"
	       "       p11mail-certinstall anchor remove FINGERPRINT "
	       "[--domain DOMAIN]\n"
	       "       p11mail-certinstall anchor list\n"
	       "Anchors are CA certificates, or single trusted certificates, "
	       "for every mail domain or one.\n");
	return TOOL_EXIT_OK;
}

static int domain_option(void *arg, int c, const char *value)
{
	if (c != 'd')
		return -1;
	*(const char **)arg = value;
	return 0;
}

static int anchor_add(struct ci *ci, const char *path, const char *domain)
{
	STACK_OF(X509) *certs = ci_read_certs(path);
	int rc = certs != NULL ? TOOL_EXIT_OK : TOOL_EXIT_FAILURE;

	for (int i = 0; rc == 0 && i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);
		unsigned char *der = NULL;
		enum p11mail_status st;
		char fp[65], *subj;
		size_t len = 0;

		if (ci_der(x, &der, &len) < 0)
			break;
		p11m_fingerprint(der, len, fp);
		subj = X509_NAME_oneline(X509_get_subject_name(x), NULL, 0);
		st = p11mail_anchor_add(ci->store, der, len, domain);
		if (st == P11MAIL_OK || st == P11MAIL_ERR_EXISTS) {
			if (ci->g->json)
				printf("{\"fingerprint\":\"%s\",\"changed\":"
				       "%s}\n",
				       fp, st == P11MAIL_OK ? "true" : "false");
			else if (st == P11MAIL_OK)
				printf("anchor added: %s\n  SHA-256 %s%s%s\n",
				       subj, fp, domain ? " for " : "",
				       domain ? domain : "");
			else if (!ci->g->quiet)
				printf("already an anchor; nothing changed: "
				       "%s\n",
				       subj);
		} else {
			rc = tool_exit_status(st);
		}
		OPENSSL_free(subj);
		free(der);
	}
	sk_X509_pop_free(certs, X509_free);
	return rc;
}

/*
 * The full fingerprint of the one anchor (for domain, when given) whose
 * fingerprint starts with prefix, into full; "" when none does, and -1
 * when several do.
 */
static int anchor_full_fingerprint(struct ci *ci, const char *prefix,
                                   const char *domain, char full[65])
{
	struct p11mail_anchor *list = NULL;
	size_t n = 0, len = strlen(prefix);
	int rc = 0;

	full[0] = '\0';
	if (p11mail_anchor_list(ci->store, &list, &n) != P11MAIL_OK)
		return 0; /* the removal itself says what is wrong */
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (strncmp(list[i].fingerprint, prefix, len) != 0 ||
		    (domain != NULL &&
		     (list[i].domain == NULL ||
		      strcasecmp(list[i].domain, domain) != 0)))
			continue;
		if (full[0] != '\0' && strcmp(full, list[i].fingerprint) != 0)
			rc = -1;
		else
			memcpy(full, list[i].fingerprint, 65);
	}
	p11mail_anchors_free(list, n);
	return rc;
}

static int anchor_remove(struct ci *ci, const char *given, const char *domain)
{
	enum p11mail_status st;
	char prefix[65], full[65];

	if (p11m_fingerprint_prefix(given, prefix) < 0)
		return tool_usage_error("'%s' is not a fingerprint (8 to 64 "
		                        "hex digits)",
		                        given);
	if (anchor_full_fingerprint(ci, prefix, domain, full) < 0) {
		tool_error("several anchors have fingerprints starting with "
		           "%s: give more digits",
		           prefix);
		return TOOL_EXIT_FAILURE;
	}
	st = p11mail_anchor_remove(ci->store, prefix, domain);
	if (st == P11MAIL_ERR_AMBIGUOUS) {
		tool_error("several anchors have fingerprints starting with "
		           "%s: give more digits",
		           prefix);
		return TOOL_EXIT_FAILURE;
	}
	if (st == P11MAIL_ERR_ARGS)
		return tool_usage_error("'%s' is not a mail domain", domain);
	if (st != P11MAIL_OK && st != P11MAIL_ERR_NOT_FOUND)
		return tool_exit_status(st);
	if (ci->g->json)
		printf("{\"fingerprint\":\"%s\",\"changed\":%s}\n",
		       full[0] != '\0' ? full : prefix,
		       st == P11MAIL_OK ? "true" : "false");
	else if (st == P11MAIL_OK && !ci->g->quiet)
		printf("anchor removed: %s\n", full[0] != '\0' ? full : prefix);
	else if (!ci->g->quiet)
		printf("no anchor has the fingerprint %s%s%s; nothing to "
		       "remove\n",
		       prefix, domain ? " for " : "", domain ? domain : "");
	return TOOL_EXIT_OK;
}

static void anchor_print(const struct ci *ci, const struct p11mail_anchor *a,
                         int first)
{
	char date[16];

	ci_date_text(a->not_after, date);
	if (!ci->g->json) {
		printf("%s %-4s %s (until %s)%s%s\n", a->fingerprint,
		       a->is_ca ? "CA" : "cert", a->subject, date,
		       a->domain ? " for " : "", a->domain ? a->domain : "");
		return;
	}
	printf("%s{\"fingerprint\":\"%s\",\"ca\":%s,\"subject\":",
	       first ? "" : ",", a->fingerprint, a->is_ca ? "true" : "false");
	ci_json_string(stdout, a->subject);
	printf(",\"not_after\":\"%s\",\"domain\":", date);
	if (a->domain != NULL)
		ci_json_string(stdout, a->domain);
	else
		printf("null");
	printf("}");
}

/* Lists the anchors; a missing store (ci->store NULL) has none. */
static int anchor_list(struct ci *ci)
{
	struct p11mail_anchor *list = NULL;
	enum p11mail_status st;
	size_t n = 0;

	st = ci->store != NULL ? p11mail_anchor_list(ci->store, &list, &n)
	                       : P11MAIL_OK;
	if (st != P11MAIL_OK)
		return tool_exit_status(st);
	if (ci->g->json)
		printf("[");
	for (size_t i = 0; i < n; i++)
		anchor_print(ci, &list[i], i == 0);
	if (ci->g->json)
		printf("]\n");
	else if (n == 0 && !ci->g->quiet)
		printf("no anchors\n");
	p11mail_anchors_free(list, n);
	return TOOL_EXIT_OK;
}

int ci_cmd_anchor(const struct tool_globals *g, int argc, char **argv)
{
	static const struct option extra[] = {
	        {"domain", required_argument, NULL, 'd'}};
	const char *domain = NULL, *verb;
	struct ci ci = {0};
	char *dir = NULL;
	int rc, missing = 0;

	rc = ci_parse_options(&ci, argc, argv, extra, 1, domain_option, &domain,
	                      anchor_usage);
	if (rc >= 0)
		return rc;
	if (optind >= argc)
		return tool_usage_error("anchor needs add, remove or list");
	verb = argv[optind];
	if ((strcmp(verb, "list") == 0 && optind + 1 != argc) ||
	    (strcmp(verb, "list") != 0 && optind + 2 != argc))
		return tool_usage_error("wrong arguments for anchor %s", verb);
	if (strcmp(verb, "add") != 0 && strcmp(verb, "remove") != 0 &&
	    strcmp(verb, "list") != 0)
		return tool_usage_error("unknown anchor command '%s'", verb);
	rc = ci_begin(&ci, g);
	/* Listing reads the store and creates none. */
	if (rc == 0 && strcmp(verb, "list") == 0)
		rc = ci_store_read(&ci, &missing, &dir);
	else if (rc == 0)
		rc = ci_store(&ci);
	if (rc == 0 && missing && !g->quiet && !g->json)
		fprintf(stderr,
		        "p11mail-certinstall: there is no store at %s\n", dir);
	if (rc == 0 && strcmp(verb, "add") == 0)
		rc = anchor_add(&ci, argv[optind + 1], domain);
	else if (rc == 0 && strcmp(verb, "remove") == 0)
		rc = anchor_remove(&ci, argv[optind + 1], domain);
	else if (rc == 0)
		rc = anchor_list(&ci);
	free(dir);
	ci_end(&ci);
	return rc;
}
