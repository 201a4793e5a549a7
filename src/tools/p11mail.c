/* p11mail: sign, verify, encrypt, decrypt, send and receive S/MIME mail
 * with keys that stay on the token. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>

#include <openssl/crypto.h>
#include <openssl/opensslv.h>

#include "tool.h"

#define P11MAIL_COMMAND(name, fn, summary)                                     \
	int fn(const struct tool_globals *g, int argc, char **argv);
#include "commands.def"
#undef P11MAIL_COMMAND

static const struct tool_command commands[] = {
#define P11MAIL_COMMAND(name, fn, summary) {#name, summary, fn},
#include "commands.def"
#undef P11MAIL_COMMAND
};

int cmd_version(const struct tool_globals *g, int argc, char **argv)
{
	static const struct option options[] = {
	        {"json", no_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	/* The provider is built from the same release as the library. */
	const char *running = OpenSSL_version(OPENSSL_VERSION);
	int c, json = g->json;

	while ((c = tool_getopt(argc, argv, "h", options)) != -1) {
		if (c == 'j') {
			json = 1;
		} else if (c == 'h') {
			fputs("Usage: p11mail version [--json]\n"
			      "Prints the versions of p11mail, its PKCS#11 "
			      "provider and OpenSSL.\n",
			      stdout);
			return TOOL_EXIT_OK;
		} else {
			return TOOL_EXIT_USAGE; /* tool_getopt said why */
		}
	}
	if (optind < argc)
		return tool_usage_error("unexpected argument '%s'",
		                        argv[optind]);
	if (json)
		printf("{\"version\":\"%s\",\"provider\":\"%s\","
		       "\"openssl\":\"%s\",\"openssl_built\":\"%s\"}\n",
		       p11mail_version(), PACKAGE_VERSION, running,
		       OPENSSL_VERSION_TEXT);
	else
		printf("p11mail %s\nprovider: p11mail PKCS#11 provider %s\n"
		       "OpenSSL: %s (built with %s)\n",
		       p11mail_version(), PACKAGE_VERSION, running,
		       OPENSSL_VERSION_TEXT);
	return TOOL_EXIT_OK;
}

int main(int argc, char **argv)
{
	return tool_main("p11mail",
	                 "S/MIME mail with private keys that never leave "
	                 "the token.",
	                 commands, sizeof(commands) / sizeof(commands[0]), argc,
	                 argv);
}
