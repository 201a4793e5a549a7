/*
 * p11mail inbox: lists the local Maildir with a Sig column:
 *   S signed and trusted, N signed but the signer is not trusted,
 *   X signature invalid or not checkable, E encrypted, - plain.
 * Encrypted messages are not opened here (that needs the token); 'p11mail
 * read' decrypts them.  A malformed message is reported and skipped.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tool.h"

/* Registered in commands.def. */
int cmd_inbox(const struct tool_globals *g, int argc, char **argv);

static const char inbox_help[] =
        "Usage: p11mail inbox [--maildir DIR] [--json]\n"
        "Lists the messages of the local Maildir, oldest first.  Sig: S "
        "signed and\ntrusted, N signed but not trusted, X invalid "
        "signature, E encrypted,\n- plain.  'p11mail read N' shows message "
        "N.\n\n"
        "      --maildir DIR  local Maildir (default: [account] maildir)\n"
        "      --json         a JSON array on stdout, one object per "
        "message\n"
        "  -h, --help         this help\n";

/* The Sig letter of a message: from its form, then from verification. */
static char inbox_sig(p11mail_smime *smime,
                      const struct p11mail_message_summary *s,
                      const unsigned char *msg, size_t len)
{
	struct p11mail_verify_result *res = NULL;
	char sig = 'X';

	if (s->kind == P11MAIL_MESSAGE_PLAIN)
		return '-';
	if (s->kind == P11MAIL_MESSAGE_ENCRYPTED)
		return 'E';
	if (smime == NULL ||
	    p11mail_smime_verify(smime, msg, len, &res) != P11MAIL_OK)
		return 'X';
	if (res->verdict == P11MAIL_VERDICT_VALID)
		sig = 'S';
	else if (res->verdict == P11MAIL_VERDICT_NOT_TRUSTED)
		sig = 'N';
	else if (res->verdict == P11MAIL_VERDICT_UNSIGNED)
		sig = '-';
	p11mail_verify_result_free(res);
	return sig;
}

/*
 * The S/MIME context that judges signatures, with the store's trust; NULL
 * (signed messages then show X) when the store cannot be opened.
 */
static p11mail_smime *inbox_smime(const struct tool_globals *g,
                                  const struct p11mail_config *cfg)
{
	p11mail_smime *smime = NULL;
	p11mail_store *store = NULL;
	char *dir = NULL;

	if (p11mail_store_dir(cfg, g->store, 0, &dir) == P11MAIL_OK &&
	    p11mail_store_open(dir, &store) == P11MAIL_OK &&
	    p11mail_mail_smime_new_config(cfg, store, NULL, 0, &smime) !=
	            P11MAIL_OK)
		smime = NULL;
	if (smime == NULL)
		tool_warn("signatures cannot be checked: the store is not "
		          "usable");
	p11mail_store_close(store);
	free(dir);
	return smime;
}

/* One message: a line of the table, or an element of the JSON array. */
static void inbox_print(const struct tool_globals *g, size_t n,
                        const struct p11mail_maildir_entry *e, char sig,
                        const struct p11mail_message_summary *s, int first)
{
	if (!g->json) {
		printf("%4zu  %c  %-16s  %-30.30s  %s\n", n, sig, s->date,
		       s->from, s->subject);
		return;
	}
	printf("%s{\"n\":%zu,\"id\":", first ? "" : ",\n", n);
	tool_json_string(e->id);
	printf(",\"sig\":\"%c\",\"date\":", sig);
	tool_json_string(s->date);
	printf(",\"from\":");
	tool_json_string(s->from);
	printf(",\"subject\":");
	tool_json_string(s->subject);
	printf(",\"seen\":%s}", e->seen ? "true" : "false");
}

/*
 * Shows one message (first: none was shown before); returns 0, or 1 when
 * it was malformed and skipped.
 */
static int inbox_one(const struct tool_globals *g, p11mail_smime *smime,
                     const char *maildir, size_t n,
                     const struct p11mail_maildir_entry *e, int first)
{
	struct p11mail_message_summary *s = NULL;
	const char *why = NULL;
	unsigned char *msg = NULL;
	enum p11mail_status st;
	size_t len = 0;

	st = p11mail_maildir_read(maildir, e->id, &msg, &len);
	if (st == P11MAIL_OK)
		st = p11mail_message_check(msg, len, &why);
	if (st == P11MAIL_OK)
		st = p11mail_message_summarize(msg, len, &s);
	if (st == P11MAIL_OK)
		inbox_print(g, n, e, inbox_sig(smime, s, msg, len), s, first);
	else
		tool_warn("skipped message %zu (%s): %s", n, e->id,
		          why != NULL ? why : p11mail_strerror(st));
	p11mail_message_summary_free(s);
	free(msg);
	return st != P11MAIL_OK;
}

/*
 * A Maildir that is not there is an error, not an empty list: the path is
 * likely wrong, or nothing was ever fetched.  Prints why (with json, also
 * as {"error": ...} on stdout) and returns -1.
 */
static int inbox_check_dir(int json, const char *maildir)
{
	static const char *const subdirs[] = {"cur", "new"};
	char path[4096];
	struct stat sb;

	if (stat(maildir, &sb) != 0) {
		if (errno == ENOENT)
			tool_fail(json, NULL,
			          "no Maildir at %s: run 'p11mail fetch' "
			          "first, or give --maildir DIR",
			          maildir);
		else
			tool_fail(json, NULL, "cannot use the Maildir %s: %s",
			          maildir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		tool_fail(json, NULL,
		          "%s is not a directory, so not a Maildir: give "
		          "--maildir DIR or correct [account] maildir",
		          maildir);
		return -1;
	}
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", maildir, subdirs[i]);
		if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
			return 0;
	}
	tool_fail(json, NULL,
	          "%s is not a Maildir (it has no cur/ or new/): give "
	          "--maildir DIR or correct [account] maildir",
	          maildir);
	return -1;
}

int cmd_inbox(const struct tool_globals *g, int argc, char **argv)
{
	static const struct option options[] = {
	        {"maildir", required_argument, NULL, 'M'},
	        {"json", no_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct tool_globals gl = *g;
	struct p11mail_maildir_list *list = NULL;
	struct p11mail_account *acct = NULL;
	struct p11mail_config *cfg = NULL;
	p11mail_smime *smime = NULL;
	const char *maildir = NULL;
	enum p11mail_status st;
	size_t skipped = 0;
	int c, rc = TOOL_EXIT_FAILURE;

	while ((c = tool_getopt(argc, argv, "h", options)) != -1) {
		if (c == 'M')
			maildir = optarg;
		else if (c == 'j')
			gl.json = 1;
		else if (c == 'h')
			return fputs(inbox_help, stdout) < 0 ? TOOL_EXIT_FAILURE
			                                     : TOOL_EXIT_OK;
		else
			return TOOL_EXIT_USAGE; /* tool_getopt said why */
	}
	if (optind < argc)
		return tool_usage_error("unexpected argument '%s'",
		                        argv[optind]);
	if (maildir != NULL && *maildir == '\0')
		return tool_usage_error("--maildir wants a directory, not an "
		                        "empty name");

	st = p11mail_account_open(g->config, g->store, &cfg, &acct);
	if (st == P11MAIL_OK && maildir != NULL)
		st = p11mail_account_set_maildir(acct, maildir);
	if (st != P11MAIL_OK) {
		tool_fail(gl.json, NULL, "cannot list the mailbox: %s",
		          p11mail_strerror(st));
		goto out;
	}
	maildir = p11mail_account_maildir(acct);
	if (inbox_check_dir(gl.json, maildir) != 0)
		goto out;
	st = p11mail_maildir_list(maildir, &list);
	if (st != P11MAIL_OK) {
		tool_fail(gl.json, NULL, "cannot list the mailbox: %s",
		          p11mail_strerror(st));
		goto out;
	}
	smime = inbox_smime(g, cfg);
	if (!gl.json && list->count > 0)
		printf("%4s  %s  %-16s  %-30s  %s\n", "#", "S", "Date", "From",
		       "Subject");
	if (gl.json)
		printf("[\n");
	for (size_t i = 0; i < list->count; i++)
		skipped += (size_t)inbox_one(&gl, smime, maildir, i + 1,
		                             &list->entries[i], i == skipped);
	if (gl.json)
		printf("%s]\n", list->count > skipped ? "\n" : "");
	if (!gl.json && !g->quiet && list->count == 0)
		fprintf(stderr, "p11mail: no messages in %s\n", maildir);
	rc = fflush(stdout) == 0 ? TOOL_EXIT_OK : TOOL_EXIT_FAILURE;
out:
	p11mail_smime_free(smime);
	p11mail_maildir_list_free(list);
	p11mail_account_free(acct);
	p11mail_config_free(cfg);
	return rc;
}
