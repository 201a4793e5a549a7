/*
 * The two channels: messages for people go to the application's callback;
 * the debug trace, off by default, goes where P11MAIL_DEBUG says.
 */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "common.h"

static p11mail_log_fn log_fn;
static void *log_arg;

static pthread_once_t trace_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *trace_file;

void p11mail_set_log(p11mail_log_fn fn, void *arg)
{
	log_fn = fn;
	log_arg = arg;
}

void p11m_log_get(p11mail_log_fn *fn, void **arg)
{
	*fn = log_fn;
	*arg = log_arg;
}

void p11m_log(enum p11mail_log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);

	p11m_trace("log", "%s", line);
	if (log_fn != NULL)
		log_fn(log_arg, level, line);
}

const char *p11m_getenv(const char *name)
{
	return secure_getenv(name);
}

/*
 * The trace may carry key labels and token serials: it is made private to
 * the user, and a symlink planted at its path is not followed.
 */
static FILE *trace_file_open(const char *path)
{
	FILE *f;
	int fd;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	          0600);
	if (fd < 0)
		return NULL;
	f = fdopen(fd, "a");
	if (f == NULL)
		close(fd);
	return f;
}

static void trace_open(void)
{
	const char *where = p11m_getenv("P11MAIL_DEBUG");

	if (where == NULL || *where == '\0' || strcmp(where, "0") == 0)
		return;
	if (where[0] == '/')
		trace_file = trace_file_open(where);
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
