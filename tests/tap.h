/*
 * A small TAP producer for the C unit tests.  Each test program declares its
 * cases in a table and calls tap_run(); automake's TAP driver reads the
 * output.
 */
#ifndef P11MAIL_TAP_H
#define P11MAIL_TAP_H

#include <stddef.h>

struct tap_case {
	const char *name;
	void (*fn)(void);
};

/*
 * Records one check inside the running case; the case fails when any check
 * does.  Returns cond so that callers can stop early.
 */
int tap_check_at(int cond, const char *expr, const char *file, int line);
#define tap_check(cond) tap_check_at(!!(cond), #cond, __FILE__, __LINE__)

/* Prints a diagnostic line ("# ...") into the TAP stream. */
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Marks the running case as skipped, with the reason. */
void tap_skip(const char *reason);

/* Skips the whole program ("1..0 # SKIP reason") and exits. */
void tap_skip_all(const char *reason) __attribute__((noreturn));

/* Runs every case in order and returns the exit status for main(). */
int tap_run(const struct tap_case *cases, size_t count);

#endif /* P11MAIL_TAP_H */
