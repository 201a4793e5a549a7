/* TAP output for the C unit tests; see tap.h. */
#include "tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int case_failed;
static const char *case_skip;

int tap_check_at(int cond, const char *expr, const char *file, int line)
{
	if (!cond) {
		printf("# check failed: %s (%s:%d)\n", expr, file, line);
		case_failed = 1;
	}
	return cond;
}

void tap_diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

void tap_skip(const char *reason)
{
	case_skip = reason;
}

void tap_skip_all(const char *reason)
{
	printf("1..0 # SKIP %s\n", reason);
	fflush(stdout);
	exit(0);
}

int tap_run(const struct tap_case *cases, size_t count)
{
	int failures = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("1..%zu\n", count);
	for (size_t i = 0; i < count; i++) {
		case_failed = 0;
		case_skip = NULL;
		cases[i].fn();
		if (case_skip != NULL && !case_failed) {
			printf("ok %zu - %s # SKIP %s\n", i + 1, cases[i].name,
			       case_skip);
			continue;
		}
		printf("%s %zu - %s\n", case_failed ? "not ok" : "ok", i + 1,
		       cases[i].name);
		failures += case_failed;
	}
	return failures ? 1 : 0;
}
