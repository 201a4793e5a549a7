/*
 * p11mail send: submits one message (or the outbox queue) through the
 * account's SMTP server.  The message is queued in the outbox first and
 * stays there until the server accepted it.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "send-hold.h"
#include "tool.h"

/* Registered in commands.def. */
int cmd_send(const struct tool_globals *g, int argc, char **argv);

/* Largest message the command accepts. */
#define SEND_MAX_MESSAGE (64u * 1024 * 1024)

struct send_opts {
	const char *from;
	const char *ca_file;
	const char *input;
	int queue;
	int sign;
	int encrypt;
	int autoprotect; /* sign; encrypt when every recipient can be */
	int json;        /* --json, before or after the command */
};

static const char send_help[] =
        "Usage: p11mail send [OPTIONS] [FILE|-]\n"
        "       p11mail send --queue\n"
        "Sends an RFC 5322 message through the SMTP server of [account]; "
        "without\none, the message stays in the outbox.  Recipients are "
        "taken from To, Cc\nand Bcc; Bcc is removed from what is sent.\n\n"
        "  -f, --from ADDRESS  envelope sender (default: Sender, else From)\n"
        "      --sign          sign with the sender's identity (on the token)\n"
        "      --encrypt       encrypt to every recipient and the sender; "
        "fails,\n"
        "                      naming them, if one has no usable "
        "certificate\n"
        "      --auto          sign, and encrypt too when every recipient "
        "has a\n"
        "                      usable certificate\n"
        "      --queue         retry every message waiting in the outbox\n"
        "      --ca-file FILE  PEM anchors for the server's TLS certificate\n"
        "      --json          the outcome as a JSON object on stdout\n"
        "  -h, --help          this help\n";

static int send_parse(const struct tool_globals *g, int argc, char **argv,
                      struct send_opts *o)
{
	static const struct option options[] = {
	        {"from", required_argument, NULL, 'f'},
	        {"queue", no_argument, NULL, 'Q'},
	        {"sign", no_argument, NULL, 'S'},
	        {"encrypt", no_argument, NULL, 'E'},
	        {"auto", no_argument, NULL, 'A'},
	        {"ca-file", required_argument, NULL, 'C'},
	        {"json", no_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->json = g->json;
	while ((c = tool_getopt(argc, argv, "f:h", options)) != -1) {
		switch (c) {
		case 'f':
			o->from = optarg;
			break;
		case 'Q':
			o->queue = 1;
			break;
		case 'S':
			o->sign = 1;
			break;
		case 'E':
			o->encrypt = 1;
			break;
		case 'A':
			o->autoprotect = 1;
			break;
		case 'C':
			o->ca_file = optarg;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'h':
			fputs(send_help, stdout);
			return -1;
		default:
			return TOOL_EXIT_USAGE;
		}
	}
	if (argc - optind > 1)
		return tool_usage_error("one message file at most, not %d",
		                        argc - optind);
	if (o->queue && argc - optind == 1)
		return tool_usage_error("--queue takes no message file");
	if (o->queue && (o->sign || o->encrypt || o->autoprotect))
		return tool_usage_error("--queue sends queued messages as they "
		                        "are");
	if (o->autoprotect && (o->sign || o->encrypt))
		return tool_usage_error("--auto already decides --sign and "
		                        "--encrypt");
	o->input = optind < argc ? argv[optind] : "-";
	return TOOL_EXIT_OK;
}

static int send_queue(const struct tool_globals *g,
                      struct p11mail_account *acct)
{
	struct send_capture c;
	enum p11mail_status st;
	size_t sent = 0, failed = 0;

	/* Without the token, every held message fails the same way. */
	send_capture_begin(&c, g);
	st = p11mail_send_queue(acct, &sent, &failed);
	send_capture_end(&c, p11mail_protect_can_wait(st) ? SEND_REPLAY_TOKEN
	                                                  : SEND_REPLAY_ALL);
	if (st == P11MAIL_ERR_NOT_FOUND) {
		/* As for one message: the outbox is where mail goes. */
		if (g->json)
			printf("{\"sent\":0,\"failed\":%zu}\n", failed);
		else if (!g->quiet)
			fprintf(stderr,
			        "p11mail: no SMTP server is configured "
			        "([account] smtp-host): nothing was sent; %zu "
			        "message%s stay%s in the outbox %s\n",
			        failed, failed == 1 ? "" : "s",
			        failed == 1 ? "s" : "",
			        p11mail_account_outbox(acct));
		return TOOL_EXIT_OK;
	}
	if (g->json)
		printf("{\"sent\":%zu,\"failed\":%zu}\n", sent, failed);
	else if (!g->quiet)
		fprintf(stderr, "p11mail: %zu sent, %zu still queued in %s\n",
		        sent, failed, p11mail_account_outbox(acct));
	if (st != P11MAIL_OK && !p11mail_protect_can_wait(st))
		tool_error("the queue was not emptied: %s",
		           p11mail_strerror(st));
	return tool_exit_status(st);
}

/* The P11MAIL_PROTECT_* bits the options ask for. */
static unsigned int send_how(const struct send_opts *o)
{
	return (o->sign ? P11MAIL_PROTECT_SIGN : 0) |
	       (o->encrypt ? P11MAIL_PROTECT_ENCRYPT : 0) |
	       (o->autoprotect ? P11MAIL_PROTECT_AUTO : 0);
}

/*
 * Protects the message as the options ask.  Returns 0 when it is to be
 * submitted, else the exit status: refused, or held for its token.
 */
static int send_protect(const struct tool_globals *g,
                        const struct p11mail_config *cfg,
                        struct p11mail_account *acct, const struct send_opts *o,
                        const struct p11mail_envelope *env, unsigned char **msg,
                        size_t *len)
{
	enum send_fate fate = SEND_PROTECTED;
	enum p11mail_status st;
	char *held = NULL;

	if (send_how(o) == 0)
		return TOOL_EXIT_OK;
	st = send_protect_or_hold(g, cfg, acct, env, send_how(o), "", msg, len,
	                          &fate, &held);
	if (fate == SEND_HELD && g->json)
		printf("{\"sent\":false,\"recipients\":%zu,\"queued\":\"%s\","
		       "\"held\":true}\n",
		       env->rcpt_count, held);
	free(held);
	(void)st; /* printed: held or refused both fail the command */
	return fate == SEND_PROTECTED ? TOOL_EXIT_OK : TOOL_EXIT_FAILURE;
}

/*
 * On the workstation that sends the clinic's mail ([policy]
 * mail-workstation), every recipient becomes trusted, with the certificate
 * that validated for encryption, if there is one.
 */
static void send_auto_trust(const struct tool_globals *g,
                            const struct p11mail_config *cfg,
                            const struct p11mail_envelope *env)
{
	p11mail_store *store = NULL;
	enum p11mail_status st;
	size_t added = 0;
	char *dir = NULL;

	if (!p11mail_config_get_bool(cfg, "policy", "mail-workstation", 0))
		return;
	st = p11mail_store_dir(cfg, g->store, 0, &dir);
	if (st == P11MAIL_OK)
		st = p11mail_store_open(dir, &store);
	if (st == P11MAIL_OK)
		st = p11mail_mail_trust_recipients(
		        store, env->from, (const char *const *)env->rcpt,
		        env->rcpt_count, &added);
	if (st != P11MAIL_OK)
		tool_warn("recipients not added to the trusted list: %s",
		          p11mail_strerror(st));
	else if (added > 0 && !g->quiet)
		fprintf(stderr,
		        "p11mail: %zu recipient%s added to the trusted "
		        "list\n",
		        added, added == 1 ? "" : "s");
	p11mail_store_close(store);
	free(dir);
}

/* Queues and submits one message; prints where it went. */
static int send_one(const struct tool_globals *g,
                    const struct p11mail_config *cfg,
                    struct p11mail_account *acct, const struct send_opts *o,
                    const unsigned char *msg, size_t len)
{
	struct p11mail_envelope *env = NULL;
	const char *from = o->from;
	unsigned char *clean = NULL;
	enum p11mail_status st;
	size_t clean_len = 0;
	char *queued = NULL;
	int rc = TOOL_EXIT_FAILURE;
	int sent = 0;

	st = p11mail_message_envelope(msg, len, from, &env);
	if (st == P11MAIL_OK)
		st = p11mail_message_strip_bcc(msg, len, &clean, &clean_len);
	if (st != P11MAIL_OK) {
		tool_fail(g->json, NULL, "cannot send this message: %s",
		          p11mail_strerror(st));
		goto out;
	}
	rc = send_protect(g, cfg, acct, o, env, &clean, &clean_len);
	if (rc != TOOL_EXIT_OK)
		goto out; /* refused, or held until the token is back */
	st = p11mail_send_message(acct, env, clean, clean_len, &sent, &queued);
	if (g->json)
		printf("{\"sent\":%s,\"recipients\":%zu,\"queued\":%s%s%s}\n",
		       sent ? "true" : "false", env->rcpt_count,
		       queued ? "\"" : "", queued ? queued : "null",
		       queued ? "\"" : "");
	if (st != P11MAIL_OK && queued != NULL)
		tool_error("not sent (%s); the message is queued as %s: run "
		           "'p11mail send --queue' to retry",
		           p11mail_strerror(st), queued);
	else if (st != P11MAIL_OK)
		tool_error("not sent, nothing queued: %s",
		           p11mail_strerror(st));
	else if (!sent && !g->quiet && !g->json)
		fprintf(stderr,
		        "p11mail: no SMTP server configured; the message is "
		        "in the outbox %s as %s\n",
		        p11mail_account_outbox(acct), queued);
	else if (!g->quiet && !g->json)
		fprintf(stderr, "p11mail: sent to %zu recipient%s\n",
		        env->rcpt_count, env->rcpt_count == 1 ? "" : "s");
	if (st == P11MAIL_OK && sent)
		send_auto_trust(g, cfg, env);
	rc = st == P11MAIL_OK ? TOOL_EXIT_OK : TOOL_EXIT_FAILURE;
out:
	free(queued);
	if (clean != NULL)
		p11mail_wipe(clean, clean_len);
	free(clean);
	p11mail_envelope_free(env);
	return rc;
}

int cmd_send(const struct tool_globals *g, int argc, char **argv)
{
	struct tool_globals gl = *g;
	struct p11mail_account *acct = NULL;
	struct p11mail_config *cfg = NULL;
	unsigned char *msg = NULL;
	enum p11mail_status st;
	struct send_opts o;
	size_t len = 0;
	int rc;

	rc = send_parse(g, argc, argv, &o);
	if (rc != TOOL_EXIT_OK)
		return rc < 0 ? TOOL_EXIT_OK : rc;
	gl.json = o.json;
	g = &gl;
	st = p11mail_account_open(g->config, g->store, &cfg, &acct);
	if (st == P11MAIL_OK && o.ca_file != NULL)
		st = p11mail_account_set_ca_file(acct, o.ca_file);
	if (st != P11MAIL_OK) {
		tool_fail(g->json, NULL, "cannot read the account: %s",
		          p11mail_strerror(st));
		rc = tool_exit_status(st);
		goto out;
	}
	if (o.queue) {
		rc = send_queue(g, acct);
		goto out;
	}
	st = p11mail_message_load(o.input, SEND_MAX_MESSAGE, &msg, &len);
	if (st != P11MAIL_OK) {
		tool_fail(g->json, NULL, "cannot read the message: %s",
		          p11mail_strerror(st));
		rc = tool_exit_status(st);
		goto out;
	}
	rc = send_one(g, cfg, acct, &o, msg, len);
out:
	free(msg);
	p11mail_account_free(acct);
	p11mail_config_free(cfg);
	return rc;
}
