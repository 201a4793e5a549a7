/*
 * p11mail trust add | list | show | remove: which correspondents'
 * certificates this workstation trusts, one per address.
 */
#include "config.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

int cmd_trust(const struct tool_globals *g, int argc, char **argv);

#define MESSAGE_MAX (64L * 1024 * 1024)

static const char trust_help[] =
        "Usage: p11mail trust add ADDRESS [--fingerprint] FINGERPRINT "
        "[--replace]\n"
        "       p11mail trust add MESSAGE-FILE [--replace]\n"
        "       p11mail trust list [ADDRESS]\n"
        "       p11mail trust show ADDRESS\n"
        "       p11mail trust remove ADDRESS [[--fingerprint] FINGERPRINT]\n"
        "Trusts the certificate a correspondent signed with: one already in "
        "the cache\n(named by its fingerprint, as 'p11mail read' prints it), "
        "or the signer of a\nsigned message, which must verify and be "
        "signed by its From address.\nWhen another certificate is trusted "
        "for the address, both fingerprints are\nshown and nothing changes "
        "without --replace (or a yes at the terminal).\n";

struct trust_ctx {
	const struct tool_globals *g;
	struct p11mail_config *cfg;
	p11mail_store *store;
	int replace;
	const char *fingerprint; /* --fingerprint */
};

static int trust_open(struct trust_ctx *c)
{
	enum p11mail_status st;
	char *dir = NULL;

	st = p11mail_config_load(c->g->config, &c->cfg);
	if (st == P11MAIL_OK)
		st = p11mail_store_dir(c->cfg, c->g->store, 0, &dir);
	if (st == P11MAIL_OK)
		st = p11mail_store_open(dir, &c->store);
	free(dir);
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

static void json_string(const char *s)
{
	putchar('"');
	for (; s != NULL && *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
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
	json_string(e->address);
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
	if (st != P11MAIL_OK)
		return tool_exit_status(st);
	rc = print_certs(c, list, n, none);
	p11mail_certs_free(list, n);
	return n == 0 && required ? TOOL_EXIT_FAILURE : rc;
}

static int trust_remove(struct trust_ctx *c, const char *address,
                        const char *fp)
{
	enum p11mail_status st = p11mail_trust_remove(c->store, address, fp);

	if (st == P11MAIL_ERR_ARGS)
		return tool_usage_error("give a mail address and optionally "
		                        "a fingerprint (8 to 64 hex digits)");
	if (st == P11MAIL_ERR_NOT_FOUND) {
		tool_error("no trusted certificate for %s%s%s", address,
		           fp ? " with fingerprint " : "", fp ? fp : "");
		return TOOL_EXIT_FAILURE;
	}
	if (st == P11MAIL_OK && !c->g->quiet && !c->g->json)
		printf("%s: trust withdrawn (the certificate stays cached)\n",
		       address);
	return tool_exit_status(st);
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
		tool_error("not changed: confirm the new certificate with "
		           "--replace");
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
	if (st != P11MAIL_OK)
		return tool_exit_status(st);
	if (c->g->json)
		printf("{\"address\":\"%s\",\"fingerprint\":\"%s\","
		       "\"changed\":%s}\n",
		       address, fp,
		       outcome == P11MAIL_TRUST_UNCHANGED ? "false" : "true");
	else if (outcome == P11MAIL_TRUST_UNCHANGED)
		printf("%s: already trusted; nothing changed\n", address);
	else
		printf("%s: now trusted (%s)\n", address, fp);
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
		tool_error(
		        matches == 0
		                ? "no certificate of %s with fingerprint %s "
		                  "is cached: receive a signed message "
		                  "from it first"
		                : "several certificates of %s start with %s: "
		                  "give more digits",
		        address, fp);
	else if (hit->not_after <= (int64_t)time(NULL))
		tool_error("that certificate of %s has expired: repeat the "
		           "signed exchange to get the current one",
		           address);
	else
		rc = trust_der(c, hit->address, hit->cert, hit->cert_len,
		               hit->fingerprint);
	p11mail_certs_free(list, n);
	return rc;
}

static unsigned char *read_message(const char *path, size_t *len)
{
	unsigned char *buf = NULL;
	struct stat sb;
	FILE *f = fopen(path, "rbe");

	*len = 0;
	if (f == NULL || fstat(fileno(f), &sb) < 0 ||
	    sb.st_size > MESSAGE_MAX ||
	    (buf = malloc((size_t)sb.st_size + 1)) == NULL) {
		tool_error("cannot read %s", path);
		if (f != NULL)
			fclose(f);
		return NULL;
	}
	*len = fread(buf, 1, (size_t)sb.st_size, f);
	fclose(f);
	return buf;
}

/* The one signer of a verified message, signed by its sender. */
static const struct p11mail_signer *
message_signer(const struct p11mail_verify_result *vr, const char *path)
{
	const struct p11mail_signer *s;

	if (vr->verdict == P11MAIL_VERDICT_UNSIGNED || vr->signer_count == 0) {
		tool_error("%s is not signed", path);
		return NULL;
	}
	if (vr->signer_count != 1 || vr->sender == NULL) {
		tool_error("%s has %zu signers or no sender: trust each "
		           "certificate by fingerprint instead",
		           path, vr->signer_count);
		return NULL;
	}
	s = &vr->signers[0];
	if (!s->valid || s->cert_der == NULL) {
		tool_error("the signature in %s is not valid: %s", path,
		           s->problem ? s->problem : "cannot be checked");
		return NULL;
	}
	if (!s->sender_match) {
		tool_error("%s was signed by %s, not by its sender %s: "
		           "not trusted",
		           path, s->addresses ? s->addresses : "?", vr->sender);
		return NULL;
	}
	return s;
}

/* trust add MESSAGE: the signer's own certificate for its From address. */
static int trust_add_message(struct trust_ctx *c, const char *path)
{
	struct p11mail_verify_result *vr = NULL;
	const struct p11mail_signer *s;
	p11mail_smime *smime = NULL;
	unsigned char *msg;
	size_t len;
	int rc = TOOL_EXIT_FAILURE;

	msg = read_message(path, &len);
	if (msg == NULL)
		return rc;
	if (p11mail_mail_smime_new(c->store, NULL, 0, &smime) == P11MAIL_OK &&
	    p11mail_smime_verify(smime, msg, len, &vr) == P11MAIL_OK &&
	    (s = message_signer(vr, path)) != NULL) {
		fprintf(stderr, "p11mail: signer %s\n  SHA-256 %s\n",
		        s->subject ? s->subject : "?", s->fingerprint);
		rc = trust_der(c, vr->sender, s->cert_der, s->cert_der_len,
		               s->fingerprint);
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
	        {"fingerprint", required_argument, NULL, 'f'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0}};
	struct trust_ctx c = {g, NULL, NULL, 0, NULL};
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		if (opt == 'r') {
			c.replace = 1;
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
	rc = trust_open(&c);
	if (rc == TOOL_EXIT_OK)
		rc = trust_run(&c, argv[optind], argc - optind - 1,
		               argv + optind + 1);
	trust_close(&c);
	return rc;
}
