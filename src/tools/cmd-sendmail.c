/*
 * p11mail sendmail: the sendmail-compatible entry, so that a mail client
 * can use "p11mail sendmail" as its sendmail program.  Reads the message
 * on standard input; recipients come from the arguments, and with -t from
 * To, Cc and Bcc as well.  Bcc is removed before submission.  A message the
 * server could not take stays queued in the outbox and counts as accepted,
 * as with sendmail itself.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "send-hold.h"
#include "tool.h"

/* Registered in commands.def. */
int cmd_sendmail(const struct tool_globals *g, int argc, char **argv);

#define SENDMAIL_MAX_MESSAGE (64u * 1024 * 1024)

struct sendmail_opts {
	const char *from;
	const char *ca_file;
	int from_headers; /* -t */
	int dot_ends;     /* a lone "." line ends the input (no -i) */
	unsigned int how; /* P11MAIL_PROTECT_* from --sign, --encrypt, --auto */
	char **rcpt;
	int rcpt_count;
};

static const char sendmail_help[] =
        "Usage: p11mail sendmail [-t] [-i] [-f ADDRESS] [RECIPIENT...]\n"
        "Sendmail-compatible submission: reads a message on standard input "
        "and\nsends it like 'p11mail send'.\n\n"
        "  -t              also take recipients from To, Cc and Bcc\n"
        "  -i, -oi         a line with a single '.' does not end the input\n"
        "  -f, -r ADDRESS  envelope sender\n"
        "  -F NAME, -oX    accepted and ignored (sendmail compatibility)\n"
        "  --ca-file FILE  PEM anchors for the server's TLS certificate\n"
        "  --sign, --encrypt, --auto\n"
        "                  sign and/or encrypt as 'p11mail send' does\n"
        "  -h, --help      this help\n";

static int sendmail_parse(int argc, char **argv, struct sendmail_opts *o)
{
	static const struct option options[] = {
	        {"ca-file", required_argument, NULL, 'C'},
	        {"sign", no_argument, NULL, 'S'},
	        {"encrypt", no_argument, NULL, 'E'},
	        {"auto", no_argument, NULL, 'A'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->dot_ends = 1;
	while ((c = tool_getopt(argc, argv,
	                        "tif:r:F:o:B:N:R:V:X:vhb:", options)) != -1) {
		switch (c) {
		case 't':
			o->from_headers = 1;
			break;
		case 'i':
			o->dot_ends = 0;
			break;
		case 'o':
			if (strcmp(optarg, "i") == 0)
				o->dot_ends = 0;
			break; /* other -o options have no meaning here */
		case 'f':
		case 'r':
			o->from = optarg;
			break;
		case 'b':
			if (strcmp(optarg, "m") != 0)
				return tool_usage_error(
				        "only -bm (the default) is supported");
			break;
		case 'S':
			o->how |= P11MAIL_PROTECT_SIGN;
			break;
		case 'E':
			o->how |= P11MAIL_PROTECT_ENCRYPT;
			break;
		case 'A':
			o->how |= P11MAIL_PROTECT_AUTO;
			break;
		case 'C':
			o->ca_file = optarg;
			break;
		case 'h':
			fputs(sendmail_help, stdout);
			return -1;
		case 'F':
		case 'B':
		case 'N':
		case 'R':
		case 'V':
		case 'X':
		case 'v':
			break;
		default:
			return TOOL_EXIT_USAGE; /* tool_getopt said why */
		}
	}
	o->rcpt = argv + optind;
	o->rcpt_count = argc - optind;
	if (!o->from_headers && o->rcpt_count == 0)
		return tool_usage_error("no recipients (give them as "
		                        "arguments, or use -t)");
	return TOOL_EXIT_OK;
}

/* Without -i, input ends at a line holding a single dot. */
static void sendmail_cut_dot(unsigned char *msg, size_t *len)
{
	size_t i = 0;

	while (i < *len) {
		unsigned char *nl = memchr(msg + i, '\n', *len - i);
		size_t end = nl != NULL ? (size_t)(nl - msg) : *len;
		size_t n = end - i;

		if (n > 0 && msg[end - 1] == '\r')
			n--;
		if (n == 1 && msg[i] == '.') {
			*len = i;
			return;
		}
		i = end + 1;
	}
}

/* The sender without -t: -f, else the message's own, else the account's. */
static enum p11mail_status sendmail_sender(const struct sendmail_opts *o,
                                           const char *account_from,
                                           const unsigned char *msg, size_t len,
                                           struct p11mail_envelope **out)
{
	enum p11mail_status st;
	char *own = NULL;

	if (o->from != NULL)
		return p11mail_envelope_new(o->from, out);
	st = p11mail_message_sender(msg, len, &own);
	if (st == P11MAIL_OK)
		st = p11mail_envelope_new(own, out);
	else if (st == P11MAIL_ERR_NOT_FOUND && account_from != NULL)
		st = p11mail_envelope_new(account_from, out);
	free(own);
	return st;
}

static enum p11mail_status sendmail_envelope(const struct sendmail_opts *o,
                                             const char *account_from,
                                             const unsigned char *msg,
                                             size_t len,
                                             struct p11mail_envelope **out)
{
	struct p11mail_envelope *env = NULL;
	enum p11mail_status st;

	*out = NULL;
	st = p11mail_message_check(msg, len, NULL);
	if (st == P11MAIL_OK && o->from_headers)
		st = p11mail_message_envelope(msg, len, o->from, &env);
	else if (st == P11MAIL_OK)
		st = sendmail_sender(o, account_from, msg, len, &env);
	for (int i = 0; st == P11MAIL_OK && i < o->rcpt_count; i++)
		st = p11mail_envelope_add_rcpt(env, o->rcpt[i]);
	if (st != P11MAIL_OK) {
		p11mail_envelope_free(env);
		return st;
	}
	*out = env;
	return P11MAIL_OK;
}

static int sendmail_run(const struct tool_globals *g,
                        const struct p11mail_config *cfg,
                        struct p11mail_account *acct,
                        const struct sendmail_opts *o)
{
	struct p11mail_envelope *env = NULL;
	unsigned char *msg = NULL, *clean = NULL;
	size_t len = 0, clean_len = 0;
	enum p11mail_status st;
	enum send_fate fate = SEND_PROTECTED;
	char *queued = NULL;
	int sent = 0;

	st = p11mail_message_load("-", SENDMAIL_MAX_MESSAGE, &msg, &len);
	if (st == P11MAIL_OK && o->dot_ends)
		sendmail_cut_dot(msg, &len);
	if (st == P11MAIL_OK)
		st = sendmail_envelope(o, p11mail_account_address(acct), msg,
		                       len, &env);
	if (st == P11MAIL_OK)
		st = p11mail_message_strip_bcc(msg, len, &clean, &clean_len);
	if (st != P11MAIL_OK) {
		tool_error("sendmail: cannot send this message: %s",
		           p11mail_strerror(st));
		goto out;
	}
	if (o->how != 0)
		st = send_protect_or_hold(g, cfg, acct, env, o->how,
		                          "sendmail: ", &clean, &clean_len,
		                          &fate, &queued);
	if (fate == SEND_HELD)
		st = P11MAIL_OK; /* accepted for later delivery, as queued */
	if (fate != SEND_PROTECTED)
		goto out; /* the messages are printed */
	st = p11mail_send_message(acct, env, clean, clean_len, &sent, &queued);
	if (st != P11MAIL_OK && queued != NULL) {
		tool_warn("sendmail: not sent yet (%s); queued as %s: run "
		          "'p11mail send --queue' to retry",
		          p11mail_strerror(st), queued);
		st = P11MAIL_OK; /* accepted for later delivery */
	} else if (st != P11MAIL_OK) {
		tool_error("sendmail: not sent, nothing queued: %s",
		           p11mail_strerror(st));
	}
out:
	free(queued);
	if (clean != NULL)
		p11mail_wipe(clean, clean_len);
	free(clean);
	if (msg != NULL)
		p11mail_wipe(msg, len);
	free(msg);
	p11mail_envelope_free(env);
	return st == P11MAIL_OK ? TOOL_EXIT_OK : TOOL_EXIT_FAILURE;
}

int cmd_sendmail(const struct tool_globals *g, int argc, char **argv)
{
	struct p11mail_account *acct = NULL;
	struct p11mail_config *cfg = NULL;
	struct sendmail_opts o;
	enum p11mail_status st;
	int rc;

	rc = sendmail_parse(argc, argv, &o);
	if (rc != TOOL_EXIT_OK)
		return rc < 0 ? TOOL_EXIT_OK : rc;
	st = p11mail_account_open(g->config, g->store, &cfg, &acct);
	if (st == P11MAIL_OK && o.ca_file != NULL)
		st = p11mail_account_set_ca_file(acct, o.ca_file);
	if (st != P11MAIL_OK) {
		tool_error("sendmail: cannot read the account: %s",
		           p11mail_strerror(st));
		rc = TOOL_EXIT_FAILURE;
	} else {
		rc = sendmail_run(g, cfg, acct, &o);
	}
	p11mail_account_free(acct);
	p11mail_config_free(cfg);
	return rc;
}
