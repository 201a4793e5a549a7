/* The command scaffold: global options, dispatch, messages; see tool.h. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tool.h"

static const char *program_name = "p11mail";
static const char *command_name; /* the subcommand running, or NULL */

static void tool_vmessage(const char *kind, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: %s", program_name, kind);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void tool_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tool_vmessage("", fmt, ap);
	va_end(ap);
}

void tool_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tool_vmessage("warning: ", fmt, ap);
	va_end(ap);
}

int tool_usage_error(const char *fmt, ...)
{
	const char *sep = command_name != NULL ? " " : "";
	const char *cmd = command_name != NULL ? command_name : "";
	va_list ap;

	fprintf(stderr, "%s%s%s: ", program_name, sep, cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s%s%s --help'.\n", program_name, sep, cmd);
	return TOOL_EXIT_USAGE;
}

/*
 * The long option that arg ("--name" or "--name=value") names, exactly or
 * as an unambiguous abbreviation, or NULL; *ambiguous tells why not.
 */
static const struct option *long_find(const struct option *longopts,
                                      const char *arg, int *ambiguous)
{
	const char *name = arg + 2;
	size_t len = strcspn(name, "=");
	const struct option *found = NULL;

	*ambiguous = 0;
	for (const struct option *o = longopts; o != NULL && o->name != NULL;
	     o++) {
		if (strncmp(o->name, name, len) != 0)
			continue;
		if (strlen(o->name) == len)
			return o;
		if (found != NULL &&
		    (found->val != o->val || found->has_arg != o->has_arg))
			*ambiguous = 1;
		if (found == NULL)
			found = o;
	}
	return *ambiguous ? NULL : found;
}

/* Prints what getopt_long found wrong (c is '?' or ':'). */
static void option_error(int c, int argc, char **argv,
                         const struct option *longopts)
{
	const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
	const struct option *o = NULL;
	int ambiguous = 0, is_long = 0;

	if (strncmp(arg, "--", 2) == 0 && arg[2] != '\0') {
		o = long_find(longopts, arg, &ambiguous);
		/* An unknown short option after a long one leaves optopt. */
		is_long = optopt == 0 || (o != NULL && o->val == optopt);
	}
	if (is_long && ambiguous)
		tool_usage_error("option '%.*s' is ambiguous",
		                 (int)strcspn(arg, "="), arg);
	else if (is_long && o != NULL && c == ':')
		tool_usage_error("option '--%s' needs a value", o->name);
	else if (is_long && o != NULL && o->has_arg == no_argument &&
	         strchr(arg, '=') != NULL)
		tool_usage_error("option '--%s' takes no value", o->name);
	else if (is_long)
		/* Without its value, which may be anything. */
		tool_usage_error("unknown option '%.*s'",
		                 (int)strcspn(arg, "="), arg);
	else if (optopt <= 0 || optopt > 0x7e || !isprint(optopt))
		tool_usage_error("unknown option");
	else if (c == ':')
		tool_usage_error("option '-%c' needs a value", optopt);
	else
		tool_usage_error("unknown option '-%c'", optopt);
}

int tool_getopt(int argc, char **argv, const char *shortopts,
                const struct option *longopts)
{
	char spec[80];
	int order = shortopts[0] == '+';
	int c, n;

	/* ':' first: a missing value returns ':', told apart from '?'. */
	n = snprintf(spec, sizeof(spec), "%s:%s", order ? "+" : "",
	             shortopts + order);
	if (n < 0 || (size_t)n >= sizeof(spec)) {
		tool_usage_error("too many options");
		return TOOL_OPT_ERROR;
	}
	opterr = 0;
	c = getopt_long(argc, argv, spec, longopts, NULL);
	if (c != '?' && c != ':')
		return c;
	option_error(c, argc, argv, longopts);
	return TOOL_OPT_ERROR;
}

void tool_json_string(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

void tool_fail(int json, const char *members, const char *fmt, ...)
{
	char why[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	tool_error("%s", why);
	if (!json)
		return;
	printf("{\"error\":");
	tool_json_string(why);
	if (members != NULL && *members != '\0')
		printf(",%s", members);
	printf("}\n");
}

int tool_exit_status(enum p11mail_status status)
{
	switch (status) {
	case P11MAIL_OK:
		return TOOL_EXIT_OK;
	case P11MAIL_ERR_ARGS:
		return TOOL_EXIT_USAGE;
	default:
		return TOOL_EXIT_FAILURE;
	}
}

int tool_store_missing(const char *dir)
{
	char *file = p11mail_store_file(dir);
	struct stat sb;
	int missing;

	if (file == NULL)
		return -1;
	missing = stat(file, &sb) != 0 && (errno == ENOENT || errno == ENOTDIR);
	free(file);
	return missing;
}

enum p11mail_status tool_store_open_reading(const char *dir,
                                            p11mail_store **out)
{
	struct p11mail_store_report report;
	enum p11mail_status st;

	st = p11mail_store_open_readonly(dir, out);
	if (st == P11MAIL_OK &&
	    (p11mail_store_check(*out, &report) != P11MAIL_OK ||
	     report.foreign || report.damaged ||
	     report.schema != report.schema_current)) {
		p11mail_store_close(*out);
		*out = NULL;
		st = p11mail_store_open(dir, out);
	}
	return st;
}

/* Forwards library messages to stderr, debug ones only with --verbose. */
/* Set while a library call must not tell its failures apart. */
static int log_muted;

void tool_mute_log(int on)
{
	log_muted = on != 0;
}

static void tool_log(void *arg, enum p11mail_log_level level, const char *text)
{
	const struct tool_globals *g = arg;

	if (log_muted || (level == P11MAIL_LOG_DEBUG && !g->verbose))
		return;
	if (level == P11MAIL_LOG_INFO && g->quiet)
		return;
	fprintf(stderr, "%s: %s%s\n", program_name,
	        level == P11MAIL_LOG_WARNING ? "warning: " : "", text);
}

static void tool_help(const char *about, const struct tool_command *commands,
                      size_t count)
{
	printf("Usage: %s [OPTIONS] COMMAND [ARGS]\n%s\n\n", program_name,
	       about);
	printf("Commands:\n");
	for (size_t i = 0; i < count; i++)
		printf("  %-14s %s\n", commands[i].name, commands[i].summary);
	printf("\nOptions for every command:\n"
	       "  -c, --config FILE  configuration file "
	       "(default: $P11MAIL_CONFIG)\n"
	       "  -s, --store DIR    workstation store directory "
	       "(default: $P11MAIL_STORE)\n"
	       "      --json         machine-readable output on stdout\n"
	       "  -q, --quiet        only errors on stderr\n"
	       "  -v, --verbose      more detail on stderr\n"
	       "  -h, --help         this help; COMMAND --help for a "
	       "command\n"
	       "  -V, --version      print the version\n"
	       "\nSet P11MAIL_DEBUG=1 for a debug trace on stderr.\n"
	       "See %s(1) for the exit statuses and examples.\n",
	       program_name);
}

static const struct tool_command *tool_find(const struct tool_command *commands,
                                            size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int tool_main(const char *program, const char *about,
              const struct tool_command *commands, size_t count, int argc,
              char **argv)
{
	static struct tool_globals g;
	static const struct option options[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"store", required_argument, NULL, 's'},
	        {"json", no_argument, NULL, 'j'},
	        {"quiet", no_argument, NULL, 'q'},
	        {"verbose", no_argument, NULL, 'v'},
	        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	        {NULL, 0, NULL, 0},
	};
	const struct tool_command *cmd;
	int c;

	program_name = program;
	g.program = program;
	g.config = getenv("P11MAIL_CONFIG");
	g.store = getenv("P11MAIL_STORE");

	/* "+": stop at the subcommand; its own options follow it. */
	optind = 0;
	while ((c = tool_getopt(argc, argv, "+c:s:qvhV", options)) != -1) {
		switch (c) {
		case 'c':
			g.config = optarg;
			break;
		case 's':
			g.store = optarg;
			break;
		case 'j':
			g.json = 1;
			break;
		case 'q':
			g.quiet = 1;
			break;
		case 'v':
			g.verbose = 1;
			break;
		case 'h':
			tool_help(about, commands, count);
			return TOOL_EXIT_OK;
		case 'V':
			printf("%s %s\n", program, p11mail_version());
			return TOOL_EXIT_OK;
		default:
			return TOOL_EXIT_USAGE; /* tool_getopt said why */
		}
	}
	if (optind >= argc)
		return tool_usage_error("no command given");

	cmd = tool_find(commands, count, argv[optind]);
	if (cmd == NULL)
		return tool_usage_error("unknown command '%s'", argv[optind]);

	p11mail_set_log(tool_log, &g);
	argc -= optind;
	argv += optind;
	optind = 0; /* a fresh getopt scan for the subcommand */
	opterr = 1; /* a command calling getopt_long itself keeps its words */
	command_name = cmd->name;
	return cmd->run(&g, argc, argv);
}

int tool_refuse_pin_value(const char *uri, const char *option)
{
	if (uri == NULL || strcasestr(uri, "pin-value") == NULL)
		return 0;
	return tool_usage_error("%s: a PIN is never given on the command "
	                        "line: use ?pin-source=file:PATH",
	                        option);
}
