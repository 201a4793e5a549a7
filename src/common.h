/*
 * Helpers shared by every part of p11mail: the library, the provider module
 * and the tools.  Nothing here is exported from libp11mail.
 */
#ifndef P11MAIL_COMMON_H
#define P11MAIL_COMMON_H

#include <stdarg.h>
#include <stddef.h>

#include "p11mail.h"

#define P11M_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__GNUC__)
#define P11M_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define P11M_PRINTF(f, a)
#endif

/* Passes one formatted line to the application's log callback, if any. */
void p11m_log(enum p11mail_log_level level, const char *fmt, ...)
        P11M_PRINTF(2, 3);

/*
 * The application's log callback and its argument (NULL when none), so
 * that a run which catches messages for itself can put them back after.
 */
void p11m_log_get(p11mail_log_fn *fn, void **arg);

/* True when P11MAIL_DEBUG asked for a trace; cheap enough for hot paths. */
int p11m_trace_enabled(void);

/*
 * Writes one line of debug trace, prefixed with the area (for example
 * "pkcs11" or "provider").  Secrets must never be passed here: trace them
 * as "***".
 */
void p11m_trace(const char *area, const char *fmt, ...) P11M_PRINTF(2, 3);

/* getenv that refuses to answer in set-user-ID or set-group-ID processes. */
const char *p11m_getenv(const char *name);

/* Wipes len bytes at ptr and frees it; accepts NULL. */
void p11m_secure_free(void *ptr, size_t len);

#endif /* P11MAIL_COMMON_H */
