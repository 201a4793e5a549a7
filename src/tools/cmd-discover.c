/* p11mail discover: find a correspondent's certificate in DNS or LDAP. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tool.h"

int cmd_discover(const struct tool_globals *g, int argc, char **argv);

static void discover_help(void)
{
	printf("Usage: p11mail discover [OPTIONS] ADDRESS\n"
	       "Looks for the certificate of ADDRESS in DNS CERT records "
	       "(address, then domain)\nand in LDAP (servers from SRV "
	       "_ldap._tcp.DOMAIN), and reports every candidate\nwith the "
	       "reason it was accepted or skipped.\n\n"
	       "  -d, --dns-server HOST:PORT  ask this DNS server "
	       "(default: /etc/resolv.conf)\n"
	       "  -a, --anchor FILE    trust the PEM certificates in FILE "
	       "for the domain\n"
	       "      --crl FILE       check candidates against the PEM CRLs "
	       "in FILE\n"
	       "  -t, --timeout SECONDS  per query or connection (default 5)\n"
	       "  -o, --output FILE    write the chosen certificate there as "
	       "PEM\n"
	       "      --json           machine-readable report on stdout\n"
	       "With --store (or P11MAIL_STORE), the store's anchors for the "
	       "domain are used\ntoo, and results are cached there (found: "
	       "1 hour, nothing found: 5 minutes).\n"
	       "  -h, --help           this help\n\n"
	       "Exit status: 0 a usable certificate was found, 1 none, "
	       "2 usage error.\n");
}

/* Prints s as a JSON string. */
static void json_string(FILE *f, const char *s)
{
	if (s == NULL) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (; *s != '\0'; s++) {
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

static void print_json(const char *address,
                       const struct p11mail_discovery *result)
{
	const struct p11mail_candidate *chosen =
	        p11mail_discovery_chosen(result);
	size_t n = p11mail_discovery_count(result);

	printf("{\"address\":");
	json_string(stdout, address);
	printf(",\"cached\":%s,\"failures\":%zu,\"candidates\":[",
	       p11mail_discovery_cached(result) ? "true" : "false",
	       p11mail_discovery_failures(result));
	for (size_t i = 0; i < n; i++) {
		const struct p11mail_candidate *c =
		        p11mail_discovery_get(result, i);

		printf("%s{\"source\":", i > 0 ? "," : "");
		json_string(stdout, c->source);
		printf(",\"origin\":");
		json_string(stdout, c->origin);
		printf(",\"binding\":");
		json_string(stdout, c->binding);
		printf(",\"verdict\":");
		json_string(stdout, p11mail_candidate_verdict_name(c->verdict));
		printf(",\"reason\":");
		json_string(stdout, c->reason);
		printf(",\"subject\":");
		json_string(stdout, c->subject);
		printf(",\"sha256\":");
		json_string(stdout, c->fingerprint);
		printf(",\"not_after\":%lld,\"chosen\":%s}", c->not_after,
		       c == chosen ? "true" : "false");
	}
	printf("]}\n");
}

static void print_text(const struct p11mail_discovery *result)
{
	const struct p11mail_candidate *chosen =
	        p11mail_discovery_chosen(result);
	size_t n = p11mail_discovery_count(result);

	for (size_t i = 0; i < n; i++) {
		const struct p11mail_candidate *c =
		        p11mail_discovery_get(result, i);

		printf("candidate %zu: %s%s%s%s\n", i + 1,
		       p11mail_candidate_verdict_name(c->verdict),
		       c->binding != NULL ? " (" : "",
		       c->binding != NULL ? c->binding : "",
		       c->binding != NULL ? "-bound)" : "");
		printf("  from:    %s\n", c->origin);
		if (c->subject != NULL)
			printf("  subject: %s\n", c->subject);
		if (c->fingerprint != NULL)
			printf("  sha256:  %s\n", c->fingerprint);
		printf("  reason:  %s\n", c->reason);
	}
	if (chosen != NULL)
		printf("chosen: %s\n  from %s%s\n", chosen->fingerprint,
		       chosen->origin,
		       p11mail_discovery_cached(result) ? " (cached)" : "");
}

/* Writes the certificate as PEM through a temporary file and a rename, so
 * that an existing file is never left half-written. */
static int write_pem(const char *path, const struct p11mail_candidate *c)
{
	const unsigned char *p = c->der;
	char *tmp = NULL;
	X509 *cert = NULL;
	FILE *f = NULL;
	int ok = 0;

	cert = d2i_X509(NULL, &p, (long)c->der_len);
	if (cert == NULL ||
	    asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0) {
		tmp = NULL;
		goto out;
	}
	f = fopen(tmp, "wx");
	if (f == NULL)
		goto out;
	ok = PEM_write_X509(f, cert) == 1;
	ok = (fclose(f) == 0) && ok;
	f = NULL;
	ok = ok && rename(tmp, path) == 0;
out:
	if (!ok && tmp != NULL)
		unlink(tmp);
	free(tmp);
	X509_free(cert);
	return ok;
}

struct discover_opts {
	const char *output;
	int json;
	int timeout;
};

/*
 * An --anchor or --crl file that cannot be used: the library has said why
 * ("cannot read FILE: reason", "FILE holds no PEM certificate"), so only
 * other failures are reported here.  Exits 1, as the other commands do
 * with a file they cannot use.
 */
static int file_error(enum p11mail_status st, const char *path,
                      const char *what)
{
	if (st != P11MAIL_ERR_IO)
		tool_error("cannot use %s as %s: %s", path, what,
		           p11mail_strerror(st));
	return TOOL_EXIT_FAILURE;
}

/* Applies the options that configure the library; returns an exit status. */
static int discover_option(struct p11mail_discover *disc,
                           struct discover_opts *o, int c, const char *arg)
{
	enum p11mail_status st = P11MAIL_OK;
	char *end;

	switch (c) {
	case 'd':
		st = p11mail_discover_set_dns_server(disc, arg);
		if (st == P11MAIL_ERR_ARGS)
			return tool_usage_error("--dns-server wants HOST:PORT "
			                        "with a numeric host, not '%s'",
			                        arg);
		break;
	case 'a':
		st = p11mail_discover_add_anchor_file(disc, arg);
		if (st != P11MAIL_OK)
			return file_error(st, arg, "an anchor file");
		break;
	case 'C':
		st = p11mail_discover_add_crl_file(disc, arg);
		if (st != P11MAIL_OK)
			return file_error(st, arg, "a CRL file");
		break;
	case 't':
		o->timeout = (int)strtol(arg, &end, 10);
		if (*end != '\0' || p11mail_discover_set_timeout(
		                            disc, o->timeout) != P11MAIL_OK)
			return tool_usage_error("--timeout wants 1 to 60 "
			                        "seconds, not '%s'",
			                        arg);
		break;
	case 'o':
		o->output = arg;
		break;
	case 'j':
		o->json = 1;
		break;
	default:
		return TOOL_EXIT_USAGE;
	}
	return st == P11MAIL_OK ? TOOL_EXIT_OK : tool_exit_status(st);
}

/* Reports the outcome and writes the chosen certificate. */
static int discover_report(const char *address,
                           const struct p11mail_discovery *result,
                           const struct discover_opts *o)
{
	const struct p11mail_candidate *chosen =
	        p11mail_discovery_chosen(result);
	size_t n = p11mail_discovery_count(result);
	size_t failures = p11mail_discovery_failures(result);

	if (o->json)
		print_json(address, result);
	else
		print_text(result);

	if (chosen == NULL) {
		if (p11mail_discovery_cached(result))
			tool_error("no usable certificate for %s (remembered "
			           "from an earlier lookup)",
			           address);
		else if (n == 1)
			tool_error("no usable certificate for %s: the only "
			           "candidate was skipped (see the reason)",
			           address);
		else if (n > 0)
			tool_error("no usable certificate for %s: all %zu "
			           "candidates were skipped (see the reasons)",
			           address, n);
		else if (failures > 0)
			tool_error("no certificate found for %s, and %zu "
			           "lookup%s failed: check the DNS server and "
			           "the network",
			           address, failures, failures == 1 ? "" : "s");
		else
			tool_error("no certificate published for %s in DNS "
			           "or LDAP; exchange signed mail instead",
			           address);
		return TOOL_EXIT_FAILURE;
	}
	if (o->output != NULL && !write_pem(o->output, chosen)) {
		tool_error("cannot write %s: check the directory and that "
		           "the file does not exist half-written",
		           o->output);
		return TOOL_EXIT_FAILURE;
	}
	return TOOL_EXIT_OK;
}

/* Applies [discovery] dns-server and timeout; options given later win. */
static int discover_config(const struct tool_globals *g,
                           struct p11mail_discover *disc)
{
	struct p11mail_config *cfg = NULL;
	const char *server;
	long timeout;
	int rc = TOOL_EXIT_OK;

	if (p11mail_config_load(g->config, &cfg) != P11MAIL_OK) {
		tool_error("cannot use the configuration (see above); fix it "
		           "or pass --config");
		return TOOL_EXIT_FAILURE;
	}
	server = p11mail_config_get(cfg, "discovery", "dns-server");
	if (server != NULL &&
	    p11mail_discover_set_dns_server(disc, server) != P11MAIL_OK) {
		tool_error("[discovery] dns-server '%s' is not HOST:PORT with "
		           "a numeric host",
		           server);
		rc = TOOL_EXIT_FAILURE;
	}
	timeout = p11mail_config_get_long(cfg, "discovery", "timeout", 0);
	if (rc == TOOL_EXIT_OK && timeout != 0 &&
	    p11mail_discover_set_timeout(disc, (int)timeout) != P11MAIL_OK) {
		tool_error("[discovery] timeout must be 1 to 60 seconds");
		rc = TOOL_EXIT_FAILURE;
	}
	p11mail_config_free(cfg);
	return rc;
}

int cmd_discover(const struct tool_globals *g, int argc, char **argv)
{
	static const struct option options[] = {
	        {"dns-server", required_argument, NULL, 'd'},
	        {"anchor", required_argument, NULL, 'a'},
	        {"crl", required_argument, NULL, 'C'},
	        {"timeout", required_argument, NULL, 't'},
	        {"output", required_argument, NULL, 'o'},
	        {"json", no_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct discover_opts o = {.json = g->json};
	struct p11mail_discovery *result = NULL;
	struct p11mail_discover *disc = NULL;
	p11mail_store *store = NULL;
	enum p11mail_status st;
	int c, rc;

	st = p11mail_discover_new(&disc);
	if (st != P11MAIL_OK) {
		tool_error("%s", p11mail_strerror(st));
		return TOOL_EXIT_FAILURE;
	}
	rc = discover_config(g, disc);
	if (rc != TOOL_EXIT_OK)
		goto out;
	while ((c = tool_getopt(argc, argv, "d:a:t:o:h", options)) != -1) {
		if (c == 'h') {
			discover_help();
			rc = TOOL_EXIT_OK;
			goto out;
		}
		if (c == TOOL_OPT_ERROR) {
			rc = TOOL_EXIT_USAGE; /* tool_getopt said why */
			goto out;
		}
		rc = discover_option(disc, &o, c, optarg);
		if (rc != TOOL_EXIT_OK)
			goto out;
	}
	if (optind != argc - 1) {
		rc = tool_usage_error("give exactly one ADDRESS");
		goto out;
	}

	/* With a store: its anchors for the domain, and its cache. */
	if (g->store != NULL) {
		st = p11mail_store_open(g->store, &store);
		if (st != P11MAIL_OK) {
			tool_error("cannot open the store %s: %s", g->store,
			           p11mail_strerror(st));
			rc = tool_exit_status(st);
			goto out;
		}
		p11mail_discover_use_store(disc, store);
	}

	st = p11mail_discover_run(disc, argv[optind], &result);
	if (st == P11MAIL_ERR_ARGS) {
		rc = tool_usage_error("'%s' is not a mail address "
		                      "(local@domain) that can be looked up",
		                      argv[optind]);
		goto out;
	}
	if (st != P11MAIL_OK) {
		tool_error("discovery for %s failed: %s", argv[optind],
		           p11mail_strerror(st));
		rc = tool_exit_status(st);
		goto out;
	}
	rc = discover_report(argv[optind], result, &o);
out:
	p11mail_discovery_free(result);
	p11mail_discover_free(disc);
	p11mail_store_close(store);
	return rc;
}
