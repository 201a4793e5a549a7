/*
 * p11mail certs check: own identities and correspondents' certificates that
 * expire soon or have expired, for people and for monitoring.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tool.h"

int cmd_certs(const struct tool_globals *g, int argc, char **argv);

/* Exit statuses of certs check, documented in p11mail-certs(1). */
enum {
	CERTS_EXIT_EXPIRING = 3, /* some expire within the horizon */
	CERTS_EXIT_EXPIRED = 4   /* some have already expired */
};

static const char certs_help[] =
        "Usage: p11mail certs check [--days N] [--json]\n"
        "Lists this workstation's identities and cached certificates that "
        "expire within N\ndays (default 30) or have expired, except those "
        "already replaced by a newer one.\n"
        "Exit status: 0 none, 3 some expire soon, 4 some have expired, "
        "1 failure, 2 usage.\n";

static void item_print(const struct tool_globals *g,
                       const struct p11mail_expiring *e, int first)
{
	char date[16];
	time_t t = (time_t)e->not_after;
	struct tm tm;
	long days = e->days_left;
	const char *role = e->identity  ? "identity"
	                   : e->trusted ? "trusted"
	                                : "cached";

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(date, sizeof(date), "%Y-%m-%d", &tm) == 0)
		snprintf(date, sizeof(date), "?");
	if (g->json) {
		printf("%s{\"role\":\"%s\",\"address\":\"%s\","
		       "\"fingerprint\":\"%s\",\"not_after\":\"%s\","
		       "\"expired\":%s,\"days_left\":%ld}",
		       first ? "" : ",", role, e->address, e->fingerprint, date,
		       e->expired ? "true" : "false", days);
	} else if (e->expired) {
		printf("EXPIRED  %-8s %s %s on %s%s\n", role, e->address,
		       e->fingerprint, date,
		       e->identity ? ": install a renewed certificate"
		                   : ": repeat the signed exchange");
	} else {
		printf("expiring %-8s %s %s on %s (%ld days)\n", role,
		       e->address, e->fingerprint, date, days);
	}
}

static int certs_check(const struct tool_globals *g, p11mail_store *store,
                       int days)
{
	struct p11mail_expiring *items = NULL;
	int rc = TOOL_EXIT_OK;
	enum p11mail_status st;
	size_t n = 0;

	st = p11mail_certs_expiring(store, days, &items, &n);
	if (st != P11MAIL_OK)
		return tool_exit_status(st);
	if (g->json)
		printf("[");
	for (size_t i = 0; i < n; i++) {
		item_print(g, &items[i], i == 0);
		if (items[i].expired)
			rc = CERTS_EXIT_EXPIRED;
		else if (rc == TOOL_EXIT_OK)
			rc = CERTS_EXIT_EXPIRING;
	}
	if (g->json)
		printf("]\n");
	else if (n == 0 && !g->quiet)
		printf("no certificate expires within %d days\n", days);
	p11mail_expiring_free(items, n);
	return rc;
}

/* Opens the existing store for reading: a missing one is not created. */
static int certs_open(const struct tool_globals *g, struct p11mail_config **cfg,
                      p11mail_store **store)
{
	enum p11mail_status st;
	char *dir = NULL;
	int missing = 0;

	st = p11mail_config_load(g->config, cfg);
	if (st == P11MAIL_OK)
		st = p11mail_store_dir(*cfg, g->store, 0, &dir);
	if (st == P11MAIL_OK) {
		missing = tool_store_missing(dir);
		if (missing < 0)
			st = P11MAIL_ERR_NOMEM;
	}
	if (missing > 0) {
		tool_error("there is no store at %s", dir);
		free(dir);
		return TOOL_EXIT_FAILURE;
	}
	if (st == P11MAIL_OK)
		st = tool_store_open_reading(dir, store);
	free(dir);
	return tool_exit_status(st);
}

int cmd_certs(const struct tool_globals *g, int argc, char **argv)
{
	static const struct option options[] = {
	        {"days", required_argument, NULL, 'd'},
	        {"json", no_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0}};
	struct tool_globals gl = *g;
	struct p11mail_config *cfg = NULL;
	p11mail_store *store = NULL;
	long days = 30;
	char *end;
	int opt, rc;

	while ((opt = tool_getopt(argc, argv, "d:h", options)) != -1) {
		if (opt == 'd') {
			days = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || days < 0 ||
			    days > 36500)
				return tool_usage_error("--days takes a number "
				                        "from 0 to 36500");
		} else if (opt == 'j') {
			gl.json = 1;
		} else if (opt == 'h') {
			fputs(certs_help, stdout);
			return TOOL_EXIT_OK;
		} else {
			return TOOL_EXIT_USAGE; /* tool_getopt said why */
		}
	}
	if (optind + 1 != argc || strcmp(argv[optind], "check") != 0)
		return tool_usage_error("the command is 'certs check'");
	rc = certs_open(&gl, &cfg, &store);
	if (rc == TOOL_EXIT_OK)
		rc = certs_check(&gl, store, (int)days);
	p11mail_store_close(store);
	p11mail_config_free(cfg);
	return rc;
}
