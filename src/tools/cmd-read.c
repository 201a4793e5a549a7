/*
 * p11mail read: shows one message of the local Maildir.  An encrypted
 * message is decrypted with this workstation's identity (on the token); a
 * signed one is verified and its signer and trust are reported on stderr,
 * never inside the message text.  A valid signer that is not trusted yet
 * can be trusted on the spot when a person is at the terminal; otherwise
 * the command that would trust it is printed.
 */
#include "config.h"

#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

/* Registered in commands.def. */
int cmd_read(const struct tool_globals *g, int argc, char **argv);

struct read_opts {
	const char *maildir;
	const char *which;
	int no_prompt;
	int json;
};

/* Everything read works with, released together. */
struct read_ctx {
	struct p11mail_config *cfg;
	struct p11mail_account *acct;
	p11mail_store *store; /* NULL when there is no store */
	char *store_dir;
	p11mail_smime *smime;
	char *id;
	unsigned char *msg; /* as stored */
	size_t msg_len;
	unsigned char *plain; /* decrypted, wiped on release */
	size_t plain_len;
	int authenticated;
	struct p11mail_verify_result *vr;
};

static const char read_help[] =
        "Usage: p11mail read [OPTIONS] N|ID\n"
        "Shows message N of 'p11mail inbox' (or the one with that Maildir "
        "ID):\ndecrypts it with this workstation's identity, verifies its "
        "signature and\nreports the signer and trust on stderr.\n\n"
        "      --maildir DIR  local Maildir (default: [account] maildir)\n"
        "      --no-prompt    never ask to trust a new signer\n"
        "      --json         the report as JSON on stdout, no message\n"
        "  -h, --help         this help\n\n"
        "Exit status: 0 shown (signed and trusted, or not signed), 3 signer "
        "not\ntrusted, 4 signature invalid or not checkable, 1 failure.\n";

static int read_parse(const struct tool_globals *g, int argc, char **argv,
                      struct read_opts *o)
{
	static const struct option options[] = {
	        {"maildir", required_argument, NULL, 'M'},
	        {"no-prompt", no_argument, NULL, 'n'},
	        {"json", no_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->json = g->json;
	while ((c = tool_getopt(argc, argv, "h", options)) != -1) {
		if (c == 'M')
			o->maildir = optarg;
		else if (c == 'n')
			o->no_prompt = 1;
		else if (c == 'j')
			o->json = 1;
		else if (c == 'h')
			return fputs(read_help, stdout) < 0 ? TOOL_EXIT_FAILURE
			                                    : -1;
		else
			return TOOL_EXIT_USAGE; /* tool_getopt said why */
	}
	if (argc - optind != 1)
		return tool_usage_error("give one message number or ID");
	o->which = argv[optind];
	return TOOL_EXIT_OK;
}

static void read_release(struct read_ctx *c)
{
	p11mail_verify_result_free(c->vr);
	p11mail_smime_release(c->plain, c->plain_len);
	p11mail_smime_free(c->smime);
	p11mail_store_close(c->store);
	free(c->store_dir);
	p11mail_account_free(c->acct);
	p11mail_config_free(c->cfg);
	free(c->msg);
	free(c->id);
}

/* Turns "3" (the inbox number) or a Maildir ID into the ID. */
static enum p11mail_status read_resolve(const char *maildir, const char *which,
                                        char **id)
{
	struct p11mail_maildir_list *list = NULL;
	enum p11mail_status st;
	char *end = NULL;
	unsigned long n;

	*id = NULL;
	n = isdigit((unsigned char)which[0]) ? strtoul(which, &end, 10) : 0;
	if (end == NULL || *end != '\0')
		return (*id = strdup(which)) ? P11MAIL_OK : P11MAIL_ERR_NOMEM;
	st = p11mail_maildir_list(maildir, &list);
	if (st == P11MAIL_OK && (n == 0 || n > list->count))
		st = P11MAIL_ERR_NOT_FOUND;
	if (st == P11MAIL_OK && (*id = strdup(list->entries[n - 1].id)) == NULL)
		st = P11MAIL_ERR_NOMEM;
	p11mail_maildir_list_free(list);
	return st;
}

/*
 * Opens the store and an S/MIME context with its trust.  A missing store
 * is not created: the message is read without one, nothing is cached.
 */
static enum p11mail_status read_open(const struct tool_globals *g,
                                     struct read_ctx *c)
{
	enum p11mail_status st;
	int missing = 0;

	st = p11mail_store_dir(c->cfg, g->store, 0, &c->store_dir);
	if (st == P11MAIL_OK) {
		missing = tool_store_missing(c->store_dir);
		if (missing < 0)
			st = P11MAIL_ERR_NOMEM;
	}
	if (st == P11MAIL_OK && missing) {
		if (!g->quiet)
			tool_error("there is no store at %s: nothing is cached",
			           c->store_dir);
		return p11mail_smime_new_config(c->cfg, &c->smime);
	}
	if (st == P11MAIL_OK)
		st = p11mail_store_open(c->store_dir, &c->store);
	if (st == P11MAIL_OK)
		st = p11mail_mail_smime_new_config(c->cfg, c->store, NULL, 0,
		                                   &c->smime);
	return st;
}

/* Gives the S/MIME context this workstation's identity for the account. */
static enum p11mail_status read_identity(struct read_ctx *c)
{
	const char *address = p11mail_account_address(c->acct);

	if (address == NULL) {
		tool_error("[account] address is not set: cannot choose the "
		           "identity that decrypts");
		return P11MAIL_ERR_CONFIG;
	}
	if (c->store == NULL) {
		tool_error("there is no store at %s (install an identity with "
		           "p11mail-certinstall)",
		           c->store_dir);
		return P11MAIL_ERR_NO_KEY;
	}
	return p11mail_mail_set_identity(
	        c->smime, c->store, address,
	        p11mail_config_get(c->cfg, "token", "pin-source"), 1);
}

static enum p11mail_status read_decrypt(struct read_ctx *c)
{
	enum p11mail_status st = read_identity(c);

	if (st == P11MAIL_OK)
		st = p11mail_smime_decrypt(c->smime, c->msg, c->msg_len,
		                           &c->plain, &c->plain_len,
		                           &c->authenticated);
	if (st != P11MAIL_OK)
		tool_error("cannot decrypt message %s: %s", c->id,
		           p11mail_strerror(st));
	return st;
}

/* The bytes to show and verify: the plaintext when there is one. */
static const unsigned char *read_body(const struct read_ctx *c, size_t *len)
{
	*len = c->plain != NULL ? c->plain_len : c->msg_len;
	return c->plain != NULL ? c->plain : c->msg;
}

/*
 * The verdict on one signer, worded as verify words it: a signer who is
 * not the sender is never called trusted.
 */
static const char *read_trust_word(const struct p11mail_signer *s)
{
	if (!s->valid)
		return "INVALID";
	if (!s->sender_match)
		return "valid signature, but";
	if (s->trust == P11MAIL_TRUST_TRUSTED)
		return "trusted";
	return "valid, NOT trusted";
}

static void read_report_signers(const struct read_ctx *c)
{
	const struct p11mail_verify_result *r = c->vr;

	for (size_t i = 0; i < r->signer_count; i++) {
		const struct p11mail_signer *s = &r->signers[i];

		fprintf(stderr, "p11mail: signed by %s (%s)\n",
		        s->addresses != NULL ? s->addresses : "?",
		        s->subject != NULL ? s->subject : "no certificate");
		fprintf(stderr, "p11mail:   fingerprint SHA-256 %s\n",
		        s->fingerprint[0] ? s->fingerprint : "-");
		if (s->valid && !s->sender_match)
			fprintf(stderr, "p11mail:   %s %s\n",
			        read_trust_word(s),
			        s->problem != NULL
			                ? s->problem
			                : "signer does not match From");
		else
			fprintf(stderr, "p11mail:   %s%s%s\n",
			        read_trust_word(s),
			        s->problem != NULL ? ": " : "",
			        s->problem != NULL ? s->problem : "");
	}
	if (r->problem != NULL)
		fprintf(stderr, "p11mail: %s\n", r->problem);
	if (r->signed_part != NULL && r->signed_part[0] != '\0')
		fprintf(stderr,
		        "p11mail: only part %s is signed; the rest is not\n",
		        r->signed_part);
}

static int read_ask(const char *address, const char *fingerprint)
{
	char answer[16];

	fprintf(stderr,
	        "Trust this certificate for %s?\n  SHA-256 %s\n"
	        "Compare the fingerprint with the sender first.  [y/N] ",
	        address, fingerprint);
	fflush(stderr);
	if (fgets(answer, sizeof(answer), stdin) == NULL)
		return 0;
	return answer[0] == 'y' || answer[0] == 'Y';
}

/*
 * Offers to trust a valid signer that is not trusted yet.  Returns 1 when
 * the person at the terminal trusted it, else 0.
 */
static int read_offer_trust(struct read_ctx *c, const struct read_opts *o)
{
	const struct p11mail_signer *s;
	enum p11mail_trust_outcome outcome;
	char previous[65] = "";
	char *address;
	int trusted = 0;

	if (c->vr->signer_count != 1)
		return 0;
	s = &c->vr->signers[0];
	if (!s->valid || s->trust != P11MAIL_TRUST_NOT_TRUSTED ||
	    !s->sender_match || s->cert_der == NULL)
		return 0;
	address = c->vr->sender != NULL ? strdup(c->vr->sender) : NULL;
	if (address == NULL)
		return 0;
	/* without a store, trust add makes one: read only says how */
	if (c->store == NULL || o->no_prompt || o->json ||
	    !isatty(STDIN_FILENO) || !isatty(STDERR_FILENO) ||
	    !read_ask(address, s->fingerprint)) {
		fprintf(stderr,
		        "p11mail: to trust this signer run: p11mail trust add "
		        "%s --fingerprint %s\n",
		        address, s->fingerprint);
	} else if (p11mail_trust_add(c->store, address, s->cert_der,
	                             s->cert_der_len, P11MAIL_CACHE_EXCHANGED,
	                             0, &outcome, previous) != P11MAIL_OK ||
	           outcome == P11MAIL_TRUST_CONFLICT) {
		tool_error("not trusted: %s",
		           outcome == P11MAIL_TRUST_CONFLICT
		                   ? "another certificate is trusted for this "
		                     "address (see p11mail trust show)"
		                   : "the store refused it");
	} else {
		fprintf(stderr, "p11mail: %s is now trusted\n", address);
		trusted = 1;
	}
	free(address);
	return trusted;
}

/*
 * Keeps the certificate of a valid signer that matches From in the cache:
 * this is how correspondents exchange certificates.  Trust is untouched.
 */
static void read_cache_signer(struct read_ctx *c)
{
	const struct p11mail_signer *s;
	char *address;

	if (c->vr->signer_count != 1 || c->store == NULL)
		return;
	s = &c->vr->signers[0];
	if (!s->valid || !s->sender_match || s->cert_der == NULL ||
	    c->vr->sender == NULL)
		return;
	address = strdup(c->vr->sender);
	if (address == NULL)
		return;
	if (p11mail_cache_put(c->store, address, s->cert_der, s->cert_der_len,
	                      P11MAIL_CACHE_EXCHANGED, NULL, 0,
	                      0) != P11MAIL_OK)
		tool_warn("the signer's certificate could not be cached");
	free(address);
}

static int read_exit(const struct read_ctx *c)
{
	if (c->vr == NULL)
		return TOOL_EXIT_OK;
	switch (c->vr->verdict) {
	case P11MAIL_VERDICT_VALID:
	case P11MAIL_VERDICT_UNSIGNED:
		return TOOL_EXIT_OK;
	case P11MAIL_VERDICT_NOT_TRUSTED:
		return TOOL_EXIT_UNTRUSTED;
	default:
		return TOOL_EXIT_INVALID;
	}
}

/* The message ID as a JSON string: what JSON cannot hold is left out. */
static void read_json_id(const char *id)
{
	putchar('"');
	for (const char *p = id; p != NULL && *p != '\0'; p++)
		if ((unsigned char)*p >= 0x20 && *p != '"' && *p != '\\')
			putchar(*p);
	putchar('"');
}

/* A JSON string, or null. */
static void read_json_text(const char *s)
{
	if (s != NULL)
		tool_json_string(s);
	else
		fputs("null", stdout);
}

static void read_json(const struct read_ctx *c,
                      const struct p11mail_message_summary *s, int rc)
{
	static const char *const verdicts[] = {"valid", "not-trusted",
	                                       "invalid", "unsigned"};

	printf("{\"id\":");
	read_json_id(c->id);
	printf(",\"encrypted\":%s,\"authenticated\":%s,"
	       "\"verdict\":\"%s\",\"exit\":%d,\"problem\":",
	       s->kind == P11MAIL_MESSAGE_ENCRYPTED ? "true" : "false",
	       c->plain != NULL && c->authenticated ? "true" : "false",
	       c->vr != NULL ? verdicts[c->vr->verdict] : "unsigned", rc);
	read_json_text(c->vr != NULL ? c->vr->problem : NULL);
	printf(",\"signers\":[");
	for (size_t i = 0; c->vr != NULL && i < c->vr->signer_count; i++) {
		const struct p11mail_signer *g = &c->vr->signers[i];

		printf("%s{\"fingerprint\":\"%s\",\"valid\":%s,"
		       "\"trusted\":%s,\"sender_match\":%s}",
		       i ? "," : "", g->fingerprint,
		       g->valid ? "true" : "false",
		       g->trust == P11MAIL_TRUST_TRUSTED ? "true" : "false",
		       g->sender_match ? "true" : "false");
	}
	printf("]}\n");
}

/*
 * A message that could not be shown, as the same JSON object: verdict
 * "malformed" (not a message that can be examined) or "error" (it could
 * not be found, decrypted or checked), the exit status and the reason.
 */
static void read_json_failure(const char *id, int encrypted,
                              const char *verdict, int rc, const char *problem)
{
	printf("{\"id\":");
	read_json_id(id);
	printf(",\"encrypted\":%s,\"authenticated\":false,"
	       "\"verdict\":\"%s\",\"exit\":%d,\"problem\":",
	       encrypted ? "true" : "false", verdict, rc);
	read_json_text(problem);
	printf(",\"signers\":[]}\n");
}

/* Decrypts and verifies as the message needs, then reports. */
static int read_show(const struct tool_globals *g, struct read_ctx *c,
                     const struct read_opts *o)
{
	struct p11mail_message_summary *s = NULL;
	const unsigned char *body;
	enum p11mail_status st;
	size_t len;
	int rc = TOOL_EXIT_FAILURE;

	st = p11mail_message_summarize(c->msg, c->msg_len, &s);
	if (st != P11MAIL_OK) {
		tool_error("message %s is malformed: %s", c->id,
		           p11mail_strerror(st));
		if (o->json)
			read_json_failure(c->id, 0, "malformed", rc,
			                  p11mail_strerror(st));
		return rc;
	}
	if (s->kind == P11MAIL_MESSAGE_ENCRYPTED &&
	    (st = read_decrypt(c)) != P11MAIL_OK) {
		if (o->json)
			read_json_failure(c->id, 1, "error", rc,
			                  p11mail_strerror(st));
		goto out;
	}
	if (c->plain != NULL && !c->authenticated)
		tool_warn("decrypted with AES-CBC: the content is not "
		          "authenticated by the encryption");
	body = read_body(c, &len);
	st = p11mail_smime_verify(c->smime, body, len, &c->vr);
	if (st != P11MAIL_OK) {
		tool_error("cannot examine the signature: %s",
		           p11mail_strerror(st));
		rc = TOOL_EXIT_INVALID;
		if (o->json)
			read_json_failure(
			        c->id, s->kind == P11MAIL_MESSAGE_ENCRYPTED,
			        st == P11MAIL_ERR_FORMAT ||
			                        st == P11MAIL_ERR_LIMIT
			                ? "malformed"
			                : "error",
			        rc, p11mail_strerror(st));
		goto out;
	}
	rc = read_exit(c);
	if (o->json) {
		read_json(c, s, rc);
	} else {
		if (c->vr->verdict != P11MAIL_VERDICT_UNSIGNED)
			read_report_signers(c);
		else if (!g->quiet)
			fprintf(stderr, "p11mail: not signed\n");
		fwrite(body, 1, len, stdout);
	}
	read_cache_signer(c);
	/* Trusted on the spot: the signer is trusted now, exit 0. */
	if (c->vr->verdict == P11MAIL_VERDICT_NOT_TRUSTED &&
	    read_offer_trust(c, o))
		rc = TOOL_EXIT_OK;
out:
	p11mail_message_summary_free(s);
	return rc;
}

int cmd_read(const struct tool_globals *g, int argc, char **argv)
{
	struct read_ctx c = {0};
	struct read_opts o;
	enum p11mail_status st;
	int rc;

	rc = read_parse(g, argc, argv, &o);
	if (rc != TOOL_EXIT_OK)
		return rc < 0 ? TOOL_EXIT_OK : rc;
	st = p11mail_account_open(g->config, g->store, &c.cfg, &c.acct);
	if (st == P11MAIL_OK && o.maildir != NULL)
		st = p11mail_account_set_maildir(c.acct, o.maildir);
	if (st == P11MAIL_OK) {
		st = read_resolve(p11mail_account_maildir(c.acct), o.which,
		                  &c.id);
		if (st == P11MAIL_OK)
			st = p11mail_maildir_read(
			        p11mail_account_maildir(c.acct), c.id, &c.msg,
			        &c.msg_len);
		/* A name with a slash or a dot path is no message there. */
		if (st == P11MAIL_ERR_ARGS &&
		    p11mail_account_maildir(c.acct) != NULL)
			st = P11MAIL_ERR_NOT_FOUND;
	}
	if (st == P11MAIL_ERR_NOT_FOUND)
		tool_error("no message %s in %s (see p11mail inbox)", o.which,
		           p11mail_account_maildir(c.acct));
	else if (st == P11MAIL_OK)
		st = read_open(g, &c);
	if (st != P11MAIL_OK) {
		if (st != P11MAIL_ERR_NOT_FOUND)
			tool_error("cannot read the message: %s",
			           p11mail_strerror(st));
		if (o.json)
			read_json_failure(c.id != NULL ? c.id : o.which, 0,
			                  "error", TOOL_EXIT_FAILURE,
			                  st == P11MAIL_ERR_NOT_FOUND
			                          ? "no such message"
			                          : p11mail_strerror(st));
		read_release(&c);
		return TOOL_EXIT_FAILURE;
	}
	rc = read_show(g, &c, &o);
	read_release(&c);
	return rc;
}
