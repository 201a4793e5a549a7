/*
 * The public doctor API without tokens: argument checks, a report over an
 * invalid configuration that quotes the library's own message, a store
 * directory left uncreated, and the application's log callback given back
 * after the run.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p11mail.h"
#include "tap.h"

static char work[] = "/tmp/p11mail-doctor-api-XXXXXX";
static char conf_path[512], store_path[512];
static int app_messages;

static void app_log(void *arg, enum p11mail_log_level level, const char *text)
{
	(void)arg;
	(void)level;
	(void)text;
	app_messages++;
}

static void test_arguments(void)
{
	struct p11mail_doctor_options opts = {NULL, NULL, 0};
	struct p11mail_doctor_finding f;
	p11mail_doctor_report *r = (p11mail_doctor_report *)&f;

	tap_check(p11mail_doctor_run(NULL, &r) == P11MAIL_ERR_ARGS);
	tap_check(r == NULL);
	tap_check(p11mail_doctor_run(&opts, NULL) == P11MAIL_ERR_ARGS);
	memset(&f, 0xff, sizeof(f));
	tap_check(p11mail_doctor_finding(NULL, 0, &f) == P11MAIL_ERR_ARGS);
	tap_check(f.check == NULL && f.text == NULL && f.next == NULL);
	tap_check(p11mail_doctor_count(NULL) == 0);
	tap_check(p11mail_doctor_incomplete(NULL) == 0);
	p11mail_doctor_report_free(NULL);
}

/* The first finding of r whose check is name, or -1. */
static long find_check(const p11mail_doctor_report *r, const char *name,
                       struct p11mail_doctor_finding *f)
{
	for (size_t i = 0; i < p11mail_doctor_count(r); i++)
		if (p11mail_doctor_finding(r, i, f) == P11MAIL_OK &&
		    strcmp(f->check, name) == 0)
			return (long)i;
	return -1;
}

static void test_invalid_config(void)
{
	struct p11mail_doctor_options opts = {conf_path, store_path, 0};
	struct p11mail_doctor_finding f;
	p11mail_doctor_report *r = NULL;
	struct p11mail_config *cfg = NULL;
	struct stat sb;
	char where[600];
	size_t n;

	app_messages = 0;
	p11mail_set_log(app_log, NULL);
	if (!tap_check(p11mail_doctor_run(&opts, &r) == P11MAIL_OK))
		goto out;
	tap_check(app_messages == 0);
	n = p11mail_doctor_count(r);
	tap_check(n > 0);
	tap_check(p11mail_doctor_incomplete(r) == 0);
	if (tap_check(find_check(r, "config", &f) == 0)) {
		snprintf(where, sizeof(where), "%s:2:", conf_path);
		tap_check(f.level == P11MAIL_DOCTOR_FAIL);
		tap_check(strstr(f.text, where) != NULL);
		tap_check(f.next != NULL);
		tap_diag("%s", f.text);
	}
	for (size_t i = 0; i < n; i++) {
		tap_check(p11mail_doctor_finding(r, i, &f) == P11MAIL_OK);
		tap_check(f.check != NULL && f.text != NULL);
		tap_check(strchr(f.text, '\n') == NULL);
		tap_check((f.level == P11MAIL_DOCTOR_OK) == (f.next == NULL));
	}
	memset(&f, 0xff, sizeof(f));
	tap_check(p11mail_doctor_finding(r, n, &f) == P11MAIL_ERR_ARGS);
	tap_check(f.check == NULL && f.text == NULL);
	/* the checks only read: the store directory stays absent */
	tap_check(stat(store_path, &sb) != 0);
	/* the application's callback is back */
	tap_check(p11mail_config_load(conf_path, &cfg) == P11MAIL_ERR_CONFIG);
	tap_check(app_messages > 0);
out:
	p11mail_config_free(cfg);
	p11mail_doctor_report_free(r);
	p11mail_set_log(NULL, NULL);
}

static const struct tap_case cases[] = {
        {"arguments", test_arguments},
        {"invalid_config", test_invalid_config},
};

int main(void)
{
	FILE *fp;
	int rc;

	unsetenv("P11MAIL_MODULE");
	if (mkdtemp(work) == NULL)
		tap_skip_all("no temporary directory");
	snprintf(conf_path, sizeof(conf_path), "%s/p11mail.conf", work);
	snprintf(store_path, sizeof(store_path), "%s/store", work);
	fp = fopen(conf_path, "w");
	if (fp != NULL) {
		fputs("[token]\nno-such-key = 1\n", fp);
		fclose(fp);
	}
	rc = tap_run(cases, sizeof(cases) / sizeof(cases[0]));
	unlink(conf_path);
	rmdir(work);
	return rc;
}
