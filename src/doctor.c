/* p11mail doctor: the list of findings shared by the checks; see doctor.h. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "doctor.h"

static char *text_vformat(const char *fmt, va_list ap)
{
	va_list copy;
	char *s;
	int n;

	va_copy(copy, ap);
	n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n < 0)
		return NULL;
	s = malloc((size_t)n + 1);
	if (s != NULL)
		vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

/* A finding is one line, whatever a message it quotes contains. */
static void one_line(char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s < 0x20)
			*s = ' ';
}

static int findings_grow(struct doctor *d)
{
	struct doctor_finding *f;
	size_t room;

	if (d->count < d->room)
		return 0;
	room = d->room == 0 ? 32 : d->room * 2;
	f = realloc(d->findings, room * sizeof(*f));
	if (f == NULL)
		return -1;
	d->findings = f;
	d->room = room;
	return 0;
}

void doctor_add(struct doctor *d, enum doctor_level level, const char *check,
                const char *next, const char *fmt, ...)
{
	struct doctor_finding f = {level, NULL, NULL, NULL};
	va_list ap;

	va_start(ap, fmt);
	f.text = text_vformat(fmt, ap);
	va_end(ap);
	one_line(f.text);
	f.check = strdup(check);
	if (next != NULL && level != DOCTOR_OK)
		f.next = strdup(next);
	if (f.text == NULL || f.check == NULL ||
	    (next != NULL && level != DOCTOR_OK && f.next == NULL) ||
	    findings_grow(d) != 0) {
		free(f.text);
		free(f.check);
		free(f.next);
		d->nomem = 1;
		return;
	}
	d->findings[d->count++] = f;
}

void doctor_clear(struct doctor *d)
{
	for (size_t i = 0; i < d->count; i++) {
		free(d->findings[i].check);
		free(d->findings[i].text);
		free(d->findings[i].next);
	}
	free(d->findings);
	d->findings = NULL;
	d->count = 0;
	d->room = 0;
}

void doctor_date(int64_t t, char buf[16])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, 16, "%Y-%m-%d", &tm) == 0)
		snprintf(buf, 16, "?");
}

long doctor_days_until(const struct doctor *d, int64_t t)
{
	int64_t diff = t - d->now;

	/* Rounded towards the past: 23 hours left is 0 days, not 1. */
	if (diff < 0)
		return -(long)((-diff + 86399) / 86400);
	return (long)(diff / 86400);
}
