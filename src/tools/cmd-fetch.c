/*
 * p11mail fetch: brings new mail from the account's IMAP or POP3 server
 * into the local Maildir.  What was fetched is remembered, so a re-run
 * fetches nothing twice; nothing is deleted on the server.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "tool.h"

/* Registered in commands.def. */
int cmd_fetch(const struct tool_globals *g, int argc, char **argv);

struct fetch_opts {
	int proto; /* -1: IMAP when configured, else POP3 */
	const char *mailbox;
	const char *ca_file;
	const char *maildir;
	int tls;  /* -1: from the configuration */
	int json; /* --json, before or after the command */
};

static const char fetch_help[] =
        "Usage: p11mail fetch [OPTIONS]\n"
        "Fetches new messages from the IMAP (or POP3) server of [account] "
        "into\nthe local Maildir.\n\n"
        "      --imap           use IMAP (default when imap-host is set)\n"
        "      --pop3           use POP3\n"
        "      --mailbox NAME   IMAP mailbox (default: INBOX)\n"
        "      --tls MODE       starttls, implicit or none (default: "
        "implicit on\n"
        "                       ports 993 and 995, else starttls)\n"
        "      --ca-file FILE   PEM anchors for the server's TLS "
        "certificate\n"
        "      --maildir DIR    local Maildir (default: [account] maildir)\n"
        "      --json           the counts as a JSON object on stdout; on "
        "failure\n"
        "                       {\"error\": ...} with the counts so far\n"
        "  -h, --help           this help\n";

static int fetch_tls_word(const char *s)
{
	if (strcmp(s, "starttls") == 0)
		return P11MAIL_TLS_STARTTLS;
	if (strcmp(s, "implicit") == 0)
		return P11MAIL_TLS_IMPLICIT;
	if (strcmp(s, "none") == 0)
		return P11MAIL_TLS_NONE;
	return -1;
}

static int fetch_parse(const struct tool_globals *g, int argc, char **argv,
                       struct fetch_opts *o)
{
	static const struct option options[] = {
	        {"imap", no_argument, NULL, 'I'},
	        {"pop3", no_argument, NULL, 'P'},
	        {"mailbox", required_argument, NULL, 'm'},
	        {"tls", required_argument, NULL, 'T'},
	        {"ca-file", required_argument, NULL, 'C'},
	        {"maildir", required_argument, NULL, 'M'},
	        {"json", no_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->proto = -1;
	o->tls = -1;
	o->json = g->json;
	while ((c = tool_getopt(argc, argv, "h", options)) != -1) {
		switch (c) {
		case 'I':
			o->proto = P11MAIL_FETCH_IMAP;
			break;
		case 'P':
			o->proto = P11MAIL_FETCH_POP3;
			break;
		case 'm':
			o->mailbox = optarg;
			break;
		case 'T':
			o->tls = fetch_tls_word(optarg);
			if (o->tls < 0)
				return tool_usage_error(
				        "--tls takes starttls, implicit or "
				        "none");
			break;
		case 'C':
			o->ca_file = optarg;
			break;
		case 'M':
			o->maildir = optarg;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'h':
			fputs(fetch_help, stdout);
			return -1;
		default:
			return TOOL_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return tool_usage_error("unexpected argument '%s'",
		                        argv[optind]);
	return TOOL_EXIT_OK;
}

/*
 * Picks the protocol and applies the command-line overrides.  On failure,
 * why says what is missing (empty when the library said it).
 */
static enum p11mail_status fetch_prepare(struct p11mail_account *acct,
                                         struct fetch_opts *o,
                                         struct p11mail_server *srv, char *why,
                                         size_t size)
{
	enum p11mail_service svc;
	enum p11mail_status st = P11MAIL_OK;
	int guessed = o->proto < 0;

	why[0] = '\0';
	if (guessed) {
		st = p11mail_account_server(acct, P11MAIL_SERVICE_IMAP, srv);
		o->proto = st == P11MAIL_ERR_NOT_FOUND ? P11MAIL_FETCH_POP3
		                                       : P11MAIL_FETCH_IMAP;
	}
	svc = o->proto == P11MAIL_FETCH_IMAP ? P11MAIL_SERVICE_IMAP
	                                     : P11MAIL_SERVICE_POP3;
	if (o->ca_file != NULL)
		st = p11mail_account_set_ca_file(acct, o->ca_file);
	if (st == P11MAIL_OK && o->maildir != NULL)
		st = p11mail_account_set_maildir(acct, o->maildir);
	if (st == P11MAIL_OK && o->tls >= 0)
		st = p11mail_account_set_tls(acct, svc,
		                             (enum p11mail_tls)o->tls);
	if (st == P11MAIL_OK || st == P11MAIL_ERR_NOT_FOUND)
		st = p11mail_account_server(acct, svc, srv);
	if (st == P11MAIL_ERR_NOT_FOUND && guessed)
		snprintf(why, size,
		         "no IMAP or POP3 server is configured: set "
		         "[account] imap-host or pop3-host");
	else if (st == P11MAIL_ERR_NOT_FOUND)
		snprintf(why, size,
		         "no %s server is configured: set [account] %s",
		         svc == P11MAIL_SERVICE_IMAP ? "IMAP" : "POP3",
		         svc == P11MAIL_SERVICE_IMAP ? "imap-host"
		                                     : "pop3-host");
	else if (st != P11MAIL_OK)
		snprintf(why, size, "cannot use the account: %s",
		         p11mail_strerror(st));
	return st;
}

/* The counts as JSON members, without braces. */
static void fetch_json_counts(const struct p11mail_fetch_stats *s, char *buf,
                              size_t size)
{
	snprintf(buf, size,
	         "\"new\":%zu,\"fetched\":%zu,\"skipped\":%zu,\"known\":%zu",
	         s->listed, s->fetched, s->skipped, s->known);
}

static void fetch_report(const struct tool_globals *g,
                         const struct fetch_opts *o,
                         const struct p11mail_fetch_stats *s,
                         const char *maildir)
{
	char counts[160];

	if (o->json) {
		fetch_json_counts(s, counts, sizeof(counts));
		printf("{%s}\n", counts);
		return;
	}
	if (s->skipped > 0)
		tool_warn("%zu malformed message%s skipped (left on the "
		          "server)",
		          s->skipped, s->skipped == 1 ? "" : "s");
	if (s->known > 0 && !g->quiet)
		fprintf(stderr,
		        "p11mail: %zu message%s already in the Maildir (same "
		        "Message-ID), not fetched again\n",
		        s->known, s->known == 1 ? " was" : "s were");
	if (!g->quiet)
		fprintf(stderr, "p11mail: %zu new message%s fetched into %s\n",
		        s->fetched, s->fetched == 1 ? "" : "s", maildir);
}

int cmd_fetch(const struct tool_globals *g, int argc, char **argv)
{
	struct p11mail_fetch_stats stats = {0};
	struct p11mail_account *acct = NULL;
	struct p11mail_config *cfg = NULL;
	struct p11mail_server srv;
	enum p11mail_status st;
	struct fetch_opts o;
	char why[512], counts[160];
	int rc;

	rc = fetch_parse(g, argc, argv, &o);
	if (rc != TOOL_EXIT_OK)
		return rc < 0 ? TOOL_EXIT_OK : rc;
	st = p11mail_account_open(g->config, g->store, &cfg, &acct);
	if (st != P11MAIL_OK) {
		tool_fail(o.json, NULL, "cannot read the account: %s",
		          p11mail_strerror(st));
		goto out;
	}
	st = fetch_prepare(acct, &o, &srv, why, sizeof(why));
	if (st != P11MAIL_OK) {
		tool_fail(o.json, NULL, "%s", why);
		goto out;
	}
	st = p11mail_fetch(&srv, (enum p11mail_fetch_proto)o.proto, o.mailbox,
	                   p11mail_account_maildir(acct),
	                   p11mail_account_state_file(acct), &stats);
	if (st == P11MAIL_OK) {
		fetch_report(g, &o, &stats, p11mail_account_maildir(acct));
	} else {
		/* Only the failure, {"error":..., and the counts so far} */
		fetch_json_counts(&stats, counts, sizeof(counts));
		if (stats.fetched > 0)
			tool_fail(o.json, counts,
			          "fetch stopped: %s (%zu new message%s "
			          "fetched into %s before that, kept)",
			          p11mail_strerror(st), stats.fetched,
			          stats.fetched == 1 ? "" : "s",
			          p11mail_account_maildir(acct));
		else
			tool_fail(o.json, counts, "fetch stopped: %s",
			          p11mail_strerror(st));
	}
out:
	p11mail_account_free(acct);
	p11mail_config_free(cfg);
	return st == P11MAIL_OK ? TOOL_EXIT_OK : TOOL_EXIT_FAILURE;
}
