/*
 * p11mail doctor: one command that says what is wrong on a workstation,
 * one line per finding with the next step, or a JSON report.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../doctor.h"
#include "tool.h"

int cmd_doctor(const struct tool_globals *g, int argc, char **argv);

static const char doctor_help[] =
        "Usage: p11mail doctor [--login] [--json]\n"
        "Checks this workstation: configuration, PKCS#11 modules, tokens "
        "and their PIN\nstate, identities and their keys, anchors, the "
        "store, the certificate cache\nand the mail account.  Prints one "
        "line per finding (ok, warn or FAIL) with the\nnext step to take.\n"
        "  --login   log in to the tokens (with [token] pin-source) to see "
        "private keys\n"
        "  --json    a machine-readable report on stdout\n"
        "Exit status: 0 nothing failed, 1 something failed, 2 usage.\n";

static const char *level_name[] = {"ok", "warn", "FAIL"};

/* Keeps the library's last message: findings quote it. */
static void doctor_log(void *arg, enum p11mail_log_level level,
                       const char *text)
{
	struct doctor *d = arg;

	if (level <= P11MAIL_LOG_WARNING)
		snprintf(d->last_log, sizeof(d->last_log), "%s", text);
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_json(const struct doctor *d, size_t warns, size_t fails)
{
	printf("{\"ok\":%s,\"warnings\":%zu,\"failures\":%zu,\"checks\":[",
	       fails == 0 ? "true" : "false", warns, fails);
	for (size_t i = 0; i < d->count; i++) {
		const struct doctor_finding *f = &d->findings[i];

		printf("%s{\"check\":", i == 0 ? "" : ",");
		json_string(f->check);
		printf(",\"status\":\"%s\",\"finding\":", level_name[f->level]);
		json_string(f->text);
		printf(",\"next\":");
		if (f->next != NULL)
			json_string(f->next);
		else
			printf("null");
		putchar('}');
	}
	printf("]}\n");
}

static void print_text(const struct tool_globals *g, const struct doctor *d,
                       size_t warns, size_t fails)
{
	for (size_t i = 0; i < d->count; i++) {
		const struct doctor_finding *f = &d->findings[i];

		if (g->quiet && f->level == DOCTOR_OK)
			continue;
		printf("%-4s %-8s %s", level_name[f->level], f->check, f->text);
		if (f->next != NULL)
			printf(" -- next: %s", f->next);
		putchar('\n');
	}
	printf("%zu findings: %zu ok, %zu warn, %zu FAIL\n", d->count,
	       d->count - warns - fails, warns, fails);
}

static void print_report(const struct tool_globals *g, const struct doctor *d,
                         int json)
{
	size_t warns = 0, fails = 0;

	for (size_t i = 0; i < d->count; i++) {
		warns += d->findings[i].level == DOCTOR_WARN;
		fails += d->findings[i].level == DOCTOR_FAIL;
	}
	if (json)
		print_json(d, warns, fails);
	else
		print_text(g, d, warns, fails);
	if (d->nomem)
		tool_error("out of memory: some findings are missing");
}

static int64_t doctor_now(void)
{
	/* the store judges expiry by this clock too */
	const char *fake = secure_getenv("P11MAIL_STORE_NOW");

	if (fake != NULL && *fake != '\0')
		return strtoll(fake, NULL, 10);
	return (int64_t)time(NULL);
}

static void run_checks(const struct tool_globals *g, struct doctor *d)
{
	struct p11mail_config *cfg = NULL;
	struct doctor_p11 *p11 = NULL;
	enum p11mail_status st;
	char *dir = NULL;

	doctor_check_config(d, g->config, &cfg);
	p11 = doctor_check_tokens(d);
	st = p11mail_store_dir(cfg, g->store, 0, &dir);
	if (st == P11MAIL_OK)
		doctor_check_store(d, p11, dir);
	else
		doctor_add(d, DOCTOR_FAIL, "store",
		           "give --store DIR or set [store] path",
		           "no store directory: %s", p11mail_strerror(st));
	doctor_check_account(d);
	free(dir);
	doctor_p11_free(p11);
	d->cfg = NULL;
	d->config_path = NULL;
	p11mail_config_free(cfg);
}

int cmd_doctor(const struct tool_globals *g, int argc, char **argv)
{
	static const struct option options[] = {
	        {"login", no_argument, NULL, 'l'},
	        {"json", no_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0}};
	struct doctor d;
	int opt, json = g->json, rc;

	memset(&d, 0, sizeof(d));
	while ((opt = getopt_long(argc, argv, "ljh", options, NULL)) != -1) {
		if (opt == 'l') {
			d.login = 1;
		} else if (opt == 'j') {
			json = 1;
		} else if (opt == 'h') {
			fputs(doctor_help, stdout);
			return TOOL_EXIT_OK;
		} else {
			return tool_usage_error("unknown option for doctor "
			                        "(see p11mail doctor --help)");
		}
	}
	if (optind != argc)
		return tool_usage_error("doctor takes no arguments");
	d.now = doctor_now();
	p11mail_set_log(doctor_log, &d);
	run_checks(g, &d);
	p11mail_set_log(NULL, NULL);
	print_report(g, &d, json);
	rc = doctor_failed(&d) ? TOOL_EXIT_FAILURE : TOOL_EXIT_OK;
	doctor_clear(&d);
	return rc;
}
