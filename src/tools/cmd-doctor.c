/*
 * p11mail doctor: one command that says what is wrong on a workstation,
 * one line per finding with the next step, or a JSON report.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p11mail.h"
#include "tool.h"

int cmd_doctor(const struct tool_globals *g, int argc, char **argv);

static const char doctor_help[] =
        "Usage: p11mail doctor [--login] [--json] [--quiet]\n"
        "Checks this workstation: configuration, PKCS#11 modules, tokens "
        "and their PIN\nstate, identities and their keys, anchors, the "
        "store, the certificate cache\nand the mail account.  Prints one "
        "line per finding (ok, warn or FAIL) with the\nnext step to take.\n"
        "      --login  log in to the tokens (with [token] pin-source) to "
        "see\n               private keys\n"
        "      --json   a machine-readable report on stdout\n"
        "  -q, --quiet  only the warn and FAIL lines, and the count\n"
        "Exit status: 0 nothing failed, 1 something failed, 2 usage.\n";

static const char *level_name[] = {"ok", "warn", "FAIL"};

static const char *level_text(enum p11mail_doctor_level level)
{
	if ((size_t)level >= sizeof(level_name) / sizeof(level_name[0]))
		return "FAIL";
	return level_name[level];
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

static void print_json(const p11mail_doctor_report *r, size_t warns,
                       size_t fails)
{
	struct p11mail_doctor_finding f;
	size_t n = p11mail_doctor_count(r);

	printf("{\"ok\":%s,\"warnings\":%zu,\"failures\":%zu,\"checks\":[",
	       fails == 0 ? "true" : "false", warns, fails);
	for (size_t i = 0; i < n; i++) {
		if (p11mail_doctor_finding(r, i, &f) != P11MAIL_OK)
			continue;
		printf("%s{\"check\":", i == 0 ? "" : ",");
		json_string(f.check);
		printf(",\"status\":\"%s\",\"finding\":", level_text(f.level));
		json_string(f.text);
		printf(",\"next\":");
		if (f.next != NULL)
			json_string(f.next);
		else
			printf("null");
		putchar('}');
	}
	printf("]}\n");
}

static void print_text(const struct tool_globals *g,
                       const p11mail_doctor_report *r, size_t warns,
                       size_t fails)
{
	struct p11mail_doctor_finding f;
	size_t n = p11mail_doctor_count(r);

	for (size_t i = 0; i < n; i++) {
		if (p11mail_doctor_finding(r, i, &f) != P11MAIL_OK)
			continue;
		if (g->quiet && f.level == P11MAIL_DOCTOR_OK)
			continue;
		printf("%-4s %-8s %s", level_text(f.level), f.check, f.text);
		if (f.next != NULL)
			printf(" -- next: %s", f.next);
		putchar('\n');
	}
	printf("%zu finding%s: %zu ok, %zu warn, %zu FAIL\n", n,
	       n == 1 ? "" : "s", n - warns - fails, warns, fails);
}

/* Prints the report; returns the number of failures. */
static size_t print_report(const struct tool_globals *g,
                           const p11mail_doctor_report *r)
{
	struct p11mail_doctor_finding f;
	size_t n = p11mail_doctor_count(r), warns = 0, fails = 0;

	for (size_t i = 0; i < n; i++) {
		if (p11mail_doctor_finding(r, i, &f) != P11MAIL_OK)
			continue;
		warns += f.level == P11MAIL_DOCTOR_WARN;
		fails += f.level == P11MAIL_DOCTOR_FAIL;
	}
	if (g->json)
		print_json(r, warns, fails);
	else
		print_text(g, r, warns, fails);
	if (p11mail_doctor_incomplete(r))
		tool_error("out of memory: some findings are missing");
	return fails;
}

int cmd_doctor(const struct tool_globals *g, int argc, char **argv)
{
	static const struct option options[] = {
	        {"login", no_argument, NULL, 'l'},
	        {"json", no_argument, NULL, 'j'},
	        {"quiet", no_argument, NULL, 'q'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0}};
	struct p11mail_doctor_options opts = {g->config, g->store, 0};
	p11mail_doctor_report *report = NULL;
	struct tool_globals gl = *g;
	enum p11mail_status st;
	int opt, rc;
	size_t fails;

	while ((opt = tool_getopt(argc, argv, "ljqh", options)) != -1) {
		if (opt == 'l') {
			opts.login = 1;
		} else if (opt == 'j') {
			gl.json = 1;
		} else if (opt == 'q') {
			gl.quiet = 1;
		} else if (opt == 'h') {
			fputs(doctor_help, stdout);
			return TOOL_EXIT_OK;
		} else {
			return TOOL_EXIT_USAGE; /* tool_getopt said why */
		}
	}
	if (optind != argc)
		return tool_usage_error("unexpected argument '%s'",
		                        argv[optind]);
	st = p11mail_doctor_run(&opts, &report);
	if (st != P11MAIL_OK) {
		tool_error("the checks could not run: %s",
		           p11mail_strerror(st));
		return TOOL_EXIT_FAILURE;
	}
	fails = print_report(&gl, report);
	rc = fails != 0 || p11mail_doctor_incomplete(report) ? TOOL_EXIT_FAILURE
	                                                     : TOOL_EXIT_OK;
	p11mail_doctor_report_free(report);
	return rc;
}
