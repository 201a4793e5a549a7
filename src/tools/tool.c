/* The command scaffold: global options, dispatch, messages; see tool.h. */
#include "config.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

static const char *program_name = "p11mail";

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
	va_list ap;

	va_start(ap, fmt);
	tool_vmessage("", fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try '%s --help' for more information.\n",
	        program_name);
	return TOOL_EXIT_USAGE;
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
	while ((c = getopt_long(argc, argv, "+c:s:qvhV", options, NULL)) !=
	       -1) {
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
			return tool_usage_error("unknown option");
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
