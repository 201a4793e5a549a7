/*
 * The helpers the token core needs from the library's hidden internals,
 * for the copy of the core linked into the p11mail tool for doctor.
 *
 * libp11mail exports only its p11mail_ API, so the tool links the token
 * core itself.  Linking the library's own log helpers a second time would
 * give the tool a second p11mail_set_log, and the tool's log callback
 * would then never reach the library's messages; these few functions
 * stand in for them instead.  The trace goes where P11MAIL_DEBUG says, as
 * the library's does.
 */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "common.h"

static pthread_once_t trace_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *trace_file;

void p11m_secure_free(void *ptr, size_t len)
{
	if (ptr == NULL)
		return;
	p11mail_wipe(ptr, len);
	free(ptr);
}

static void trace_open(void)
{
	const char *where = secure_getenv("P11MAIL_DEBUG");

	if (where == NULL || *where == '\0' || strcmp(where, "0") == 0)
		return;
	if (where[0] == '/')
		trace_file = fopen(where, "ae");
	if (trace_file == NULL)
		trace_file = stderr;
}

int p11m_trace_enabled(void)
{
	pthread_once(&trace_once, trace_open);
	return trace_file != NULL;
}

void p11m_trace(const char *area, const char *fmt, ...)
{
	struct timeval tv;
	va_list ap;

	if (!p11m_trace_enabled())
		return;
	gettimeofday(&tv, NULL);
	pthread_mutex_lock(&trace_lock);
	fprintf(trace_file, "p11mail[%ld] %ld.%06ld %s: ", (long)getpid(),
	        (long)tv.tv_sec, (long)tv.tv_usec, area);
	va_start(ap, fmt);
	vfprintf(trace_file, fmt, ap);
	va_end(ap);
	fputc('\n', trace_file);
	fflush(trace_file);
	pthread_mutex_unlock(&trace_lock);
}
