/*
 * p11mail trust add | list | show | remove: which correspondents'
 * certificates this workstation trusts, one per address.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/x509.h>

#include "tool.h"

int cmd_trust(const struct tool_globals *g, int argc, char **argv);

#define MESSAGE_MAX (64L * 1024 * 1024)

static const char trust_help[] =
        "Usage: p11mail trust add ADDRESS [--fingerprint] FINGERPRINT "
        "[--replace]\n"
        "       p11mail trust add MESSAGE-FILE [--yes] [--replace]\n"
        "       p11mail trust list [ADDRESS]\n"
        "       p11mail trust show ADDRESS\n"
        "       p11mail trust remove ADDRESS [[--fingerprint] FINGERPRINT]\n"
        "Trusts the certificate a correspondent signed with: one already in "
        "the cache\n(named by its fingerprint, as 'p11mail read' prints it), "
        "or the signer of a\nsigned message, which must verify and be "
        "signed by its From address.\nFor a message, the certificate's "
        "subject, addresses, SHA-256 fingerprint and\nissuer are shown and "
        "'Trust this certificate? [y/N]' is asked on the terminal;\n--yes "
        "answers yes (check the fingerprint with the sender first).  "
        "Without a\nterminal or --yes nothing is trusted.\n"
        "When another certificate is trusted "
        "for the address, both fingerprints are\nshown and nothing changes "
        "without --replace (or a yes at the terminal).\n";

struct trust_ctx {
	const struct tool_globals *g;
	struct p11mail_config *cfg;
	p11mail_store *store;
	int replace;
	int yes;                 /* --yes: the message's signer is confirmed */
	const char *fingerprint; /* --fingerprint */
};

/*
 * Opens the store: created when missing only for add (write); list, show
 * and remove need an existing one and create nothing, list and show
 * reading it only.
 */
static int trust_open(struct trust_ctx *c, const char *verb)
{
	enum p11mail_status st;
	char *dir = NULL;
	int write = strcmp(verb, "list") != 0 && strcmp(verb, "show") != 0;
	int missing = 0;

	st = p11mail_config_load(c->g->config, &c->cfg);
	if (st == P11MAIL_OK)
		st = p11mail_store_dir(c->cfg, c->g->store, 0, &dir);
	if (st == P11MAIL_OK && strcmp(verb, "add") != 0) {
		missing = tool_store_missing(dir);
		if (missing < 0)
			st = P11MAIL_ERR_NOMEM;
	}
	if (missing > 0) {
		tool_fail(c->g->json, NULL,
		          "there is no store at %s: nothing is trusted there",
		          dir);
		free(dir);
		return TOOL_EXIT_FAILURE;
	}
	if (st == P11MAIL_OK)
		st = write ? p11mail_store_open(dir, &c->store)
		           : tool_store_open_reading(dir, &c->store);
	free(dir);
	if (st != P11MAIL_OK)
		tool_fail(c->g->json, NULL,
		          "cannot use the configuration or the store: %s",
		          p11mail_strerror(st));
	return tool_exit_status(st);
}

static void trust_close(struct trust_ctx *c)
{
	p11mail_store_close(c->store);
	p11mail_config_free(c->cfg);
}

static void date_text(int64_t t, char buf[16])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, 16, "%Y-%m-%d", &tm) == 0)
		snprintf(buf, 16, "-");
}

static const char *source_name(enum p11mail_cache_source s)
{
	switch (s) {
	case P11MAIL_CACHE_EXCHANGED:
		return "exchanged";
	case P11MAIL_CACHE_DISCOVERED:
		return "discovered";
	case P11MAIL_CACHE_SENT_TO:
		return "sent-to";
	}
	return "unknown";
}

static void cert_print(const struct trust_ctx *c, const struct p11mail_cert *e,
                       int first)
{
	char nb[16], na[16];
	int64_t now = (int64_t)time(NULL);
	const char *state = e->not_after <= now   ? "expired"
	                    : e->not_before > now ? "not-yet-valid"
	                                          : "valid";

	date_text(e->not_before, nb);
	date_text(e->not_after, na);
	if (!c->g->json) {
		printf("%s %s %s %s..%s %s%s\n", e->address, e->fingerprint,
		       e->trusted ? "TRUSTED" : "not-trusted", nb, na, state,
		       e->source == P11MAIL_CACHE_DISCOVERED ? " (discovered)"
		                                             : "");
		return;
	}
	printf("%s{\"address\":", first ? "" : ",");
	tool_json_string(e->address);
	printf(",\"fingerprint\":\"%s\",\"trusted\":%s,\"not_before\":\"%s\","
	       "\"not_after\":\"%s\",\"state\":\"%s\",\"source\":\"%s\"}",
	       e->fingerprint, e->trusted ? "true" : "false", nb, na, state,
	       source_name(e->source));
}

static int print_certs(const struct trust_ctx *c, struct p11mail_cert *list,
                       size_t n, const char *none)
{
	if (c->g->json)
		printf("[");
	for (size_t i = 0; i < n; i++)
		cert_print(c, &list[i], i == 0);
	if (c->g->json)
		printf("]\n");
	else if (n == 0 && !c->g->quiet)
		printf("%s\n", none);
	return TOOL_EXIT_OK;
}

typedef enum p11mail_status (*cert_query_fn)(p11mail_store *st,
                                             const char *address,
                                             struct p11mail_cert **certs,
                                             size_t *count);

/*
 * Prints what query finds for address, or none when it finds nothing,
 * which is a failure when required.  Returns an exit status.
 */
static int trust_print_found(struct trust_ctx *c, const char *address,
                             cert_query_fn query, const char *none,
                             int required)
{
	struct p11mail_cert *list = NULL;
	enum p11mail_status st;
	size_t n = 0;
	int rc;

	st = query(c->store, address, &list, &n);
	if (st == P11MAIL_ERR_ARGS)
		return tool_usage_error("'%s' is not a mail address", address);
	if (st != P11MAIL_OK) {
		tool_fail(c->g->json, NULL, "cannot read the store: %s",
		          p11mail_strerror(st));
		return tool_exit_status(st);
	}
	if (n == 0 && required) {
		/* The listing stays valid JSON; the failure goes to stderr. */
		if (c->g->json)
			printf("[]\n");
		tool_error("%s: %s", address, none);
		rc = TOOL_EXIT_FAILURE;
	} else {
		rc = print_certs(c, list, n, none);
	}
	p11mail_certs_free(list, n);
	return rc;
}

static int trust_remove(struct trust_ctx *c, const char *address,
                        const char *fp)
{
	enum p11mail_status st = p11mail_trust_remove(c->store, address, fp);

	if (st == P11MAIL_ERR_ARGS)
		return tool_usage_error("give a mail address and optionally "
		                        "a fingerprint (8 to 64 hex digits)");
	if (st == P11MAIL_ERR_NOT_FOUND) {
		tool_fail(c->g->json, NULL, "no trusted certificate for %s%s%s",
		          address, fp ? " with fingerprint " : "",
		          fp ? fp : "");
		return TOOL_EXIT_FAILURE;
	}
	if (st != P11MAIL_OK) {
		tool_fail(c->g->json, NULL, "cannot withdraw trust: %s",
		          p11mail_strerror(st));
		return tool_exit_status(st);
	}
	if (!c->g->quiet && !c->g->json)
		printf("%s: trust withdrawn (the certificate stays cached)\n",
		       address);
	return TOOL_EXIT_OK;
}

static int confirm_replace(const struct trust_ctx *c, const char *address,
                           const char *old_fp, const char *new_fp)
{
	char line[16];

	fprintf(stderr,
	        "p11mail: %s already has a trusted certificate:\n"
	        "  trusted now: %s\n  offered:     %s\n",
	        address, old_fp, new_fp);
	if (c->replace)
		return 1;
	if (c->g->json || !isatty(STDIN_FILENO) || !isatty(STDERR_FILENO)) {
		tool_fail(c->g->json, NULL,
		          "not changed: %s already has a trusted certificate "
		          "(%s); confirm the new one with --replace",
		          address, old_fp);
		return 0;
	}
	fprintf(stderr, "Replace the trusted certificate? [y/N] ");
	if (fgets(line, sizeof(line), stdin) == NULL ||
	    (line[0] != 'y' && line[0] != 'Y'))
		return 0;
	return 1;
}

/* Trusts der for address, asking before replacing another one. */
static int trust_der(struct trust_ctx *c, const char *address,
                     const unsigned char *der, size_t len, const char *fp)
{
	enum p11mail_trust_outcome outcome = 0;
	enum p11mail_status st;
	char previous[65] = "";

	st = p11mail_trust_add(c->store, address, der, len,
	                       P11MAIL_CACHE_EXCHANGED, 0, &outcome, previous);
	if (st == P11MAIL_OK && outcome == P11MAIL_TRUST_CONFLICT) {
		if (!confirm_replace(c, address, previous, fp))
			return TOOL_EXIT_FAILURE;
		st = p11mail_trust_add(
		        c->store, address, der, len, P11MAIL_CACHE_EXCHANGED,
		        P11MAIL_TRUST_REPLACE, &outcome, previous);
	}
	if (st != P11MAIL_OK) {
		tool_fail(c->g->json, NULL, "cannot trust the certificate: %s",
		          p11mail_strerror(st));
		return tool_exit_status(st);
	}
	if (c->g->json) {
		printf("{\"address\":");
		tool_json_string(address);
		printf(",\"fingerprint\":\"%s\",\"changed\":%s}\n", fp,
		       outcome == P11MAIL_TRUST_UNCHANGED ? "false" : "true");
	} else if (outcome == P11MAIL_TRUST_UNCHANGED) {
		printf("%s: already trusted; nothing changed\n", address);
	} else {
		printf("%s: now trusted (%s)\n", address, fp);
	}
	return TOOL_EXIT_OK;
}

/* trust add ADDRESS FINGERPRINT: a certificate already in the cache. */
static int trust_add_cached(struct trust_ctx *c, const char *address,
                            const char *fp)
{
	struct p11mail_cert *list = NULL, *hit = NULL;
	char want[65] = "";
	size_t n = 0, matches = 0, k = 0;
	int rc = TOOL_EXIT_FAILURE;

	for (const char *p = fp; *p != '\0' && k < 64; p++)
		if (*p != ':')
			want[k++] =
			        (char)(*p >= 'A' && *p <= 'F' ? *p + 32 : *p);
	want[k] = '\0';
	if (k < 8 || strspn(want, "0123456789abcdef") != k)
		return tool_usage_error("'%s' is not a fingerprint", fp);
	if (p11mail_cache_find(c->store, address, &list, &n) != P11MAIL_OK)
		return tool_usage_error("'%s' is not a mail address", address);
	for (size_t i = 0; i < n; i++)
		if (strncmp(list[i].fingerprint, want, k) == 0) {
			hit = &list[i];
			matches++;
		}
	if (matches != 1)
		tool_fail(c->g->json, NULL,
		          matches == 0
		                  ? "no certificate of %s with fingerprint %s "
		                    "is cached: receive a signed message "
		                    "from it first"
		                  : "several certificates of %s start with %s: "
		                    "give more digits",
		          address, fp);
	else if (hit->not_after <= (int64_t)time(NULL))
		tool_fail(c->g->json, NULL,
		          "that certificate of %s has expired: repeat the "
		          "signed exchange to get the current one",
		          address);
	else
		rc = trust_der(c, hit->address, hit->cert, hit->cert_len,
		               hit->fingerprint);
	p11mail_certs_free(list, n);
	return rc;
}

static unsigned char *read_message(int json, const char *path, size_t *len)
{
	unsigned char *buf = NULL;
	struct stat sb;
	FILE *f = fopen(path, "rbe");

	*len = 0;
	if (f == NULL || fstat(fileno(f), &sb) < 0) {
		tool_fail(json, NULL, "cannot read %s: %s", path,
		          strerror(errno));
		if (f != NULL)
			fclose(f);
		return NULL;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size > MESSAGE_MAX ||
	    (buf = malloc((size_t)sb.st_size + 1)) == NULL) {
		tool_fail(json, NULL, "cannot read %s: %s", path,
		          !S_ISREG(sb.st_mode)       ? "not a regular file"
		          : sb.st_size > MESSAGE_MAX ? "larger than 64 MiB"
		                                     : "out of memory");
		fclose(f);
		return NULL;
	}
	*len = fread(buf, 1, (size_t)sb.st_size, f);
	fclose(f);
	return buf;
}

/* The one signer of a verified message, signed by its sender. */
static const struct p11mail_signer *
message_signer(int json, const struct p11mail_verify_result *vr,
               const char *path)
{
	const struct p11mail_signer *s;

	if (vr->verdict == P11MAIL_VERDICT_UNSIGNED || vr->signer_count == 0) {
		tool_fail(json, NULL, "%s is not signed", path);
		return NULL;
	}
	if (vr->signer_count != 1 || vr->sender == NULL) {
		tool_fail(json, NULL,
		          "%s has %zu signers or no sender: trust each "
		          "certificate by fingerprint instead",
		          path, vr->signer_count);
		return NULL;
	}
	s = &vr->signers[0];
	if (!s->valid || s->cert_der == NULL) {
		tool_fail(json, NULL, "the signature in %s is not valid: %s",
		          path, s->problem ? s->problem : "cannot be checked");
		return NULL;
	}
	if (!s->sender_match) {
		tool_fail(json, NULL,
		          "%s was signed by %s, not by its sender %s: "
		          "not trusted",
		          path, s->addresses ? s->addresses : "?", vr->sender);
		return NULL;
	}
	return s;
}

/*
 * Appends text to buf (size bytes); unless raw, control characters are
 * shown as '?', as text from a certificate must be.
 */
static void text_add(char *buf, size_t size, const char *text, int raw)
{
	size_t n = strlen(buf);

	for (; text != NULL && *text != '\0' && n + 1 < size; text++, n++)
		buf[n] = !raw && ((unsigned char)*text < 0x20 || *text == 0x7f)
		                 ? '?'
		                 : *text;
	buf[n] = '\0';
}

/* Appends a name in one line, as OpenSSL prints it with escapes. */
static void name_add(char *buf, size_t size, const X509_NAME *name)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *data = NULL, line[1024];
	long len;

	line[0] = '\0';
	if (mem != NULL && name != NULL &&
	    X509_NAME_print_ex(mem, name, 0, XN_FLAG_ONELINE) >= 0 &&
	    (len = BIO_get_mem_data(mem, &data)) > 0)
		snprintf(line, sizeof(line), "%.*s", (int)len, data);
	BIO_free(mem);
	text_add(buf, size, line[0] != '\0' ? line : "?", 0);
}

/* What trusting the signer means, for people: one block of lines. */
static void signer_text(const struct p11mail_signer *s, const char *sender,
                        char *buf, size_t size)
{
	const unsigned char *p = s->cert_der;
	X509 *x = d2i_X509(NULL, &p, (long)s->cert_der_len);

	buf[0] = '\0';
	text_add(buf, size, "p11mail: the message is signed by ", 1);
	text_add(buf, size, sender, 0);
	text_add(buf, size, " with this certificate:\n  subject:   ", 1);
	name_add(buf, size, x != NULL ? X509_get_subject_name(x) : NULL);
	text_add(buf, size, "\n  addresses: ", 1);
	text_add(buf, size, s->addresses != NULL ? s->addresses : "?", 0);
	text_add(buf, size, "\n  SHA-256:   ", 1);
	text_add(buf, size, s->fingerprint, 0);
	text_add(buf, size, "\n  issuer:    ", 1);
	name_add(buf, size, x != NULL ? X509_get_issuer_name(x) : NULL);
	text_add(buf, size, "\n", 1);
	X509_free(x);
}

/* True when fp is already the trusted certificate of address. */
static int trusted_already(struct trust_ctx *c, const char *address,
                           const char *fp)
{
	struct p11mail_cert *list = NULL;
	size_t n = 0;
	int found = 0;

	if (p11mail_trust_list(c->store, address, &list, &n) != P11MAIL_OK)
		return 0;
	for (size_t i = 0; i < n; i++)
		found |= strcasecmp(list[i].fingerprint, fp) == 0;
	p11mail_certs_free(list, n);
	return found;
}

/*
 * Asks "Trust this certificate? [y/N]" on the terminal (/dev/tty), showing
 * text there too when standard error goes elsewhere.  --yes answers yes;
 * without a terminal nothing is trusted.  Returns 1 for yes.
 */
static int confirm_signer(const struct trust_ctx *c, const char *text,
                          const char *address, const char *fp)
{
	static const char question[] = "Trust this certificate? [y/N] ";
	char line[16], ch;
	size_t n = 0;
	ssize_t got;
	int fd, ok;

	if (c->yes)
		return 1;
	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		tool_fail(c->g->json, NULL,
		          "not trusted: there is no terminal to confirm on.  "
		          "Check the SHA-256 fingerprint with the sender, "
		          "then run again with --yes, or run 'p11mail trust "
		          "add %s --fingerprint %s'",
		          address, fp);
		return 0;
	}
	ok = (isatty(STDERR_FILENO) ||
	      write(fd, text, strlen(text)) == (ssize_t)strlen(text)) &&
	     write(fd, question, sizeof(question) - 1) ==
	             (ssize_t)sizeof(question) - 1;
	/* One line, byte by byte so that nothing after it is taken. */
	while (ok) {
		got = read(fd, &ch, 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0 || ch == '\n')
			break;
		if (n + 1 < sizeof(line))
			line[n] = ch;
		n++;
	}
	close(fd);
	line[n < sizeof(line) ? n : 0] = '\0';
	if (ok && (strcmp(line, "y") == 0 || strcmp(line, "Y") == 0 ||
	           strcasecmp(line, "yes") == 0))
		return 1;
	tool_fail(c->g->json, NULL,
	          "not trusted: the certificate was not confirmed");
	return 0;
}

/* trust add MESSAGE: the signer's own certificate for its From address. */
static int trust_add_message(struct trust_ctx *c, const char *path)
{
	struct p11mail_verify_result *vr = NULL;
	const struct p11mail_signer *s;
	p11mail_smime *smime = NULL;
	enum p11mail_status st;
	char text[4096];
	unsigned char *msg;
	size_t len;
	int rc = TOOL_EXIT_FAILURE;

	msg = read_message(c->g->json, path, &len);
	if (msg == NULL)
		return rc;
	st = p11mail_mail_smime_new(c->store, NULL, 0, &smime);
	if (st == P11MAIL_OK)
		st = p11mail_smime_verify(smime, msg, len, &vr);
	if (st != P11MAIL_OK)
		tool_fail(c->g->json, NULL, "cannot verify %s: %s", path,
		          p11mail_strerror(st));
	else if ((s = message_signer(c->g->json, vr, path)) != NULL) {
		signer_text(s, vr->sender, text, sizeof(text));
		fputs(text, stderr);
		if (trusted_already(c, vr->sender, s->fingerprint) ||
		    confirm_signer(c, text, vr->sender, s->fingerprint))
			rc = trust_der(c, vr->sender, s->cert_der,
			               s->cert_der_len, s->fingerprint);
	}
	p11mail_verify_result_free(vr);
	p11mail_smime_free(smime);
	free(msg);
	return rc;
}

static int trust_run(struct trust_ctx *c, const char *verb, int n, char **args)
{
	char *with_fp[2];

	/* --fingerprint FP is the same as FP after the address. */
	if (c->fingerprint != NULL && n == 1 &&
	    (strcmp(verb, "add") == 0 || strcmp(verb, "remove") == 0)) {
		with_fp[0] = args[0];
		with_fp[1] = (char *)(uintptr_t)c->fingerprint;
		args = with_fp;
		n = 2;
	} else if (c->fingerprint != NULL) {
		return tool_usage_error("--fingerprint goes with trust add or "
		                        "trust remove and one address");
	}
	if (strcmp(verb, "list") == 0 && n <= 1)
		return trust_print_found(c, n == 1 ? args[0] : NULL,
		                         p11mail_trust_list,
		                         "nothing is trusted", 0);
	if (strcmp(verb, "show") == 0 && n == 1)
		return trust_print_found(
		        c, args[0], p11mail_cache_find,
		        "no certificate is known for this address", 1);
	if (strcmp(verb, "remove") == 0 && (n == 1 || n == 2))
		return trust_remove(c, args[0], n == 2 ? args[1] : NULL);
	if (strcmp(verb, "add") == 0 && n == 2)
		return trust_add_cached(c, args[0], args[1]);
	if (strcmp(verb, "add") == 0 && n == 1)
		return trust_add_message(c, args[0]);
	return tool_usage_error("wrong arguments for trust %s (see p11mail "
	                        "trust --help)",
	                        verb);
}

int cmd_trust(const struct tool_globals *g, int argc, char **argv)
{
	static const struct option options[] = {
	        {"replace", no_argument, NULL, 'r'},
	        {"yes", no_argument, NULL, 'y'},
	        {"fingerprint", required_argument, NULL, 'f'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0}};
	struct trust_ctx c = {g, NULL, NULL, 0, 0, NULL};
	int opt, rc;

	while ((opt = tool_getopt(argc, argv, "h", options)) != -1) {
		if (opt == TOOL_OPT_ERROR) {
			return TOOL_EXIT_USAGE; /* tool_getopt said why */
		} else if (opt == 'r') {
			c.replace = 1;
		} else if (opt == 'y') {
			c.yes = 1;
		} else if (opt == 'f') {
			c.fingerprint = optarg;
		} else if (opt == 'h') {
			fputs(trust_help, stdout);
			return TOOL_EXIT_OK;
		} else {
			return tool_usage_error("unknown option for trust");
		}
	}
	if (optind >= argc)
		return tool_usage_error(
		        "trust needs add, list, show or remove");
	if (strcmp(argv[optind], "add") != 0 &&
	    strcmp(argv[optind], "list") != 0 &&
	    strcmp(argv[optind], "show") != 0 &&
	    strcmp(argv[optind], "remove") != 0)
		return tool_usage_error("wrong arguments for trust %s (see "
		                        "p11mail trust --help)",
		                        argv[optind]);
	rc = trust_open(&c, argv[optind]);
	if (rc == TOOL_EXIT_OK)
		rc = trust_run(&c, argv[optind], argc - optind - 1,
		               argv + optind + 1);
	trust_close(&c);
	return rc;
}
