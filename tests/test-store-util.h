/* Certificates made on the fly for the store's tests and benchmark. */
#ifndef P11MAIL_TEST_STORE_UTIL_H
#define P11MAIL_TEST_STORE_UTIL_H

#include <stddef.h>

/*
 * Makes a self-signed P-256 certificate for address (SAN rfc822Name), valid
 * from now + from_days to now + to_days, as DER in *der (free with free()).
 * ca makes it a CA certificate.  Returns 0, or -1.
 */
int tsu_make_cert(const char *address, int from_days, int to_days, int ca,
                  unsigned char **der, size_t *der_len);

/* Makes a fresh temporary directory path (not created); free with free(). */
char *tsu_tempdir(void);

/* Removes a directory made for a test, with its files. */
void tsu_rmtree(const char *dir);

struct tap_case;

/* The last message the library logged while tsu_run runs the cases. */
extern char tsu_last_log[1024];

/*
 * Runs the cases with *dir a fresh temporary directory (skipping them all
 * without one) and the library's messages kept in tsu_last_log, then
 * removes the directory.  Returns tap_run's exit status.
 */
int tsu_run(const struct tap_case *cases, size_t count, char **dir);

#endif
