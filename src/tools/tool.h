/*
 * The scaffold shared by the p11mail and p11mail-certinstall commands: the
 * subcommand table, the options every command takes, and user messages.
 */
#ifndef P11MAIL_TOOL_H
#define P11MAIL_TOOL_H

#include <getopt.h>
#include <stdio.h>

#include "p11mail.h"

/* Exit statuses shared by every command (see p11mail(1)). */
enum tool_exit {
	TOOL_EXIT_OK = 0,
	TOOL_EXIT_FAILURE = 1,
	TOOL_EXIT_USAGE = 2,
	TOOL_EXIT_UNTRUSTED = 3, /* verify/read: valid, signer not trusted */
	TOOL_EXIT_INVALID = 4    /* verify/read: invalid or cannot verify */
};

/* Options every command takes, parsed before the subcommand runs. */
struct tool_globals {
	const char *program; /* "p11mail" or "p11mail-certinstall" */
	const char *config;  /* --config, or P11MAIL_CONFIG */
	const char *store;   /* --store, or P11MAIL_STORE */
	int json;            /* --json */
	int quiet;           /* --quiet */
	int verbose;         /* --verbose */
};

/*
 * One subcommand: its name, a one-line summary for --help, and the function
 * that runs it with argv[0] being the subcommand name.  Returns an exit
 * status from enum tool_exit.
 */
struct tool_command {
	const char *name;
	const char *summary;
	int (*run)(const struct tool_globals *g, int argc, char **argv);
};

/*
 * Parses the global options, dispatches to the named subcommand and returns
 * the process exit status.  about is the first line of --help.
 */
int tool_main(const char *program, const char *about,
              const struct tool_command *commands, size_t count, int argc,
              char **argv);

/* Prints "PROGRAM: message" on stderr: one line, with the next step. */
void tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "PROGRAM: warning: message" on stderr. */
void tool_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Prints a usage error, "PROGRAM COMMAND: message" and "Try 'PROGRAM
 * COMMAND --help'." on stderr (without COMMAND before one runs), and
 * returns TOOL_EXIT_USAGE.
 */
int tool_usage_error(const char *fmt, ...)
        __attribute__((format(printf, 1, 2)));

/* What tool_getopt returns for an option error it has printed. */
#define TOOL_OPT_ERROR '?'

/*
 * getopt_long for a command's own options, with getopt's messages off:
 * options and arguments may come in any order, "--" ends the options.  An
 * unknown option, a missing or unwanted value is printed as a usage error
 * and returns TOOL_OPT_ERROR (exit with TOOL_EXIT_USAGE); otherwise returns
 * as getopt_long does.  shortopts may start with '+' to stop at the first
 * argument (the dispatcher, before the command name), not with '-' or ':'.
 */
int tool_getopt(int argc, char **argv, const char *shortopts,
                const struct option *longopts);

/* Writes s on stdout as a JSON string, quoted and escaped. */
void tool_json_string(const char *s);

/*
 * Prints a failure: "PROGRAM: message" on stderr and, when json is set,
 * one object on stdout, {"error": message} followed by members when not
 * NULL (further JSON members, as "\"n\":1,\"m\":2").  The caller returns
 * the same exit status either way.
 */
void tool_fail(int json, const char *members, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Maps a library status to an exit status (TOOL_EXIT_FAILURE mostly). */
int tool_exit_status(enum p11mail_status status);

/*
 * Whether the store in dir has no database file yet (1), has one (0), or
 * cannot be told (-1, out of memory).  Commands that only read never
 * create a store.
 */
int tool_store_missing(const char *dir);

/*
 * Opens the existing store in dir for reading.  A foreign, damaged or
 * newer file, or an older schema, goes through the ordinary open instead,
 * which names what is wrong and leaves it alone, or brings the schema up
 * to date.
 */
enum p11mail_status tool_store_open_reading(const char *dir,
                                            p11mail_store **out);

/*
 * Refuses a PKCS#11 URI given on the command line that carries pin-value
 * (argv is visible to every user of the machine).  Prints a usage error
 * naming option and returns TOOL_EXIT_USAGE; returns 0 when uri is NULL or
 * has no PIN.
 */
int tool_refuse_pin_value(const char *uri, const char *option);

/*
 * While on is non-zero, the library's messages are not printed: for calls
 * whose failures must all look alike (unauthenticated plaintext).
 */
void tool_mute_log(int on);

#endif /* P11MAIL_TOOL_H */
