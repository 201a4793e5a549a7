/*
 * The test fixture for C tests: a fresh set of tokens, keys and certificates
 * built by tests/fixture/make-fixture.sh in a temporary directory, with every
 * variable of its env.sh put into the environment (tests/fixture/README).
 */
#ifndef P11MAIL_TEST_FIXTURE_H
#define P11MAIL_TEST_FIXTURE_H

/*
 * Builds the fixture in a new mkdtemp directory and setenv()s its variables.
 * Returns 0; -1 when a tool it needs is missing (skip the test with
 * tap_skip_all(fixture_reason())); -2 when building it failed.
 */
int fixture_setup(void);

/*
 * Stops the processes recorded in the fixture's "pids" file, removes the
 * directory and unsets the variables.  Safe to call twice or without setup.
 */
void fixture_teardown(void);

/* The reason of the last failed fixture_setup(), or "" (static storage). */
const char *fixture_reason(void);

/* The fixture directory while one is set up, or NULL. */
const char *fixture_dir(void);

#endif /* P11MAIL_TEST_FIXTURE_H */
