/*
 * p11mail doctor: the run of every check and the public report over the
 * findings; see p11mail.h.  The checks quote the library's messages, so the
 * run catches them for its duration and gives the callback back after.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "doctor.h"
#include "store.h"

struct p11mail_doctor_report {
	struct doctor d;
};

/* Keeps the library's last message: findings quote it. */
static void doctor_catch(void *arg, enum p11mail_log_level level,
                         const char *text)
{
	struct doctor *d = arg;

	if (level <= P11MAIL_LOG_WARNING)
		snprintf(d->last_log, sizeof(d->last_log), "%s", text);
}

static void run_checks(struct doctor *d,
                       const struct p11mail_doctor_options *options)
{
	struct p11mail_config *cfg = NULL;
	struct doctor_p11 *p11 = NULL;
	enum p11mail_status st;
	char *dir = NULL;

	doctor_check_config(d, options->config_path, &cfg);
	p11 = doctor_check_tokens(d);
	doctor_check_pin_source(d);
	st = p11mail_store_dir(cfg, options->store_dir, 0, &dir);
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

enum p11mail_status
p11mail_doctor_run(const struct p11mail_doctor_options *options,
                   p11mail_doctor_report **out)
{
	struct p11mail_doctor_report *r;
	p11mail_log_fn app_fn;
	void *app_arg;

	if (out != NULL)
		*out = NULL;
	if (options == NULL || out == NULL)
		return P11MAIL_ERR_ARGS;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return P11MAIL_ERR_NOMEM;
	r->d.login = options->login != 0;
	r->d.now = p11m_store_now();
	p11m_log_get(&app_fn, &app_arg);
	p11mail_set_log(doctor_catch, &r->d);
	run_checks(&r->d, options);
	p11mail_set_log(app_fn, app_arg);
	*out = r;
	return P11MAIL_OK;
}

size_t p11mail_doctor_count(const p11mail_doctor_report *report)
{
	return report != NULL ? report->d.count : 0;
}

static enum p11mail_doctor_level public_level(enum doctor_level level)
{
	switch (level) {
	case DOCTOR_OK:
		return P11MAIL_DOCTOR_OK;
	case DOCTOR_WARN:
		return P11MAIL_DOCTOR_WARN;
	case DOCTOR_FAIL:
		break;
	}
	return P11MAIL_DOCTOR_FAIL;
}

enum p11mail_status p11mail_doctor_finding(const p11mail_doctor_report *report,
                                           size_t i,
                                           struct p11mail_doctor_finding *out)
{
	const struct doctor_finding *f;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (report == NULL || out == NULL || i >= report->d.count)
		return P11MAIL_ERR_ARGS;
	f = &report->d.findings[i];
	out->level = public_level(f->level);
	out->check = f->check;
	out->text = f->text;
	out->next = f->next;
	return P11MAIL_OK;
}

int p11mail_doctor_incomplete(const p11mail_doctor_report *report)
{
	return report != NULL && report->d.nomem;
}

void p11mail_doctor_report_free(p11mail_doctor_report *report)
{
	if (report == NULL)
		return;
	doctor_clear(&report->d);
	free(report);
}
