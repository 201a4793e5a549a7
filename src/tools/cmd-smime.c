/* Shared parts of the S/MIME commands; see cmd-smime.h. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd-smime.h"

static const struct option long_options[] = {
        {"key", required_argument, NULL, 'k'},
        {"cert", required_argument, NULL, 'c'},
        {"chain", required_argument, NULL, 'C'},
        {"out", required_argument, NULL, 'o'},
        {"anchor", required_argument, NULL, 'a'},
        {"to", required_argument, NULL, 't'},
        {"recipient-cert", required_argument, NULL, 'A'},
        {"opaque", no_argument, NULL, 'O'},
        {"pss", no_argument, NULL, 'P'},
        {"sha512", no_argument, NULL, 'S'},
        {"cbc", no_argument, NULL, 'g'},
        {"oaep", no_argument, NULL, 'r'},
        {"sign", no_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"require-aead", no_argument, NULL, 'e'},
        {"content", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
};

static int add_file(const char **list, size_t *count, const char *value,
                    const char *what)
{
	if (*count >= SMIME_MAX_FILES) {
		tool_usage_error("too many %s options (at most %d)", what,
		                 SMIME_MAX_FILES);
		return -1;
	}
	list[(*count)++] = value;
	return 0;
}

static int apply(struct smime_opts *o, int c, const char *arg)
{
	switch (c) {
	case 'k':
		o->key = arg;
		break;
	case 'c':
		o->cert = arg;
		break;
	case 'C':
		o->chain = arg;
		break;
	case 'o':
		o->out = arg;
		break;
	case 'n':
		o->content_out = arg;
		break;
	case 'a':
		return add_file(o->anchors, &o->anchor_count, arg, "--anchor");
	case 'A':
		return add_file(o->recipient_certs, &o->recipient_cert_count,
		                arg, "--recipient-cert");
	case 't':
		return add_file(o->to, &o->to_count, arg, "--to");
	case 'O':
		o->flags |= P11MAIL_SMIME_OPAQUE;
		break;
	case 'P':
		o->flags |= P11MAIL_SMIME_PSS;
		break;
	case 'S':
		o->flags |= P11MAIL_SMIME_SHA512;
		break;
	case 'g':
		o->flags |= P11MAIL_SMIME_CBC;
		break;
	case 'r':
		o->flags |= P11MAIL_SMIME_OAEP;
		break;
	case 's':
		o->flags |= P11MAIL_SMIME_SIGN;
		break;
	case 'j':
		o->json = 1;
		break;
	case 'e':
		o->require_aead = 1;
		break;
	default:
		return -1;
	}
	return 0;
}

int smime_parse_opts(const struct tool_globals *g, int argc, char **argv,
                     const char *allowed, const char *help,
                     struct smime_opts *o)
{
	int c;

	memset(o, 0, sizeof(*o));
	o->json = g->json;
	while ((c = getopt_long(argc, argv, "+k:c:o:a:t:h", long_options,
	                        NULL)) != -1) {
		if (c == 'h') {
			fputs(help, stdout);
			return -1;
		}
		if (c == '?')
			return TOOL_EXIT_USAGE; /* getopt printed why */
		if (strchr(allowed, c) == NULL)
			return tool_usage_error("option '%s' does not apply "
			                        "to %s",
			                        argv[optind - 1], argv[0]);
		if (apply(o, c, optarg) != 0)
			return TOOL_EXIT_USAGE;
	}
	if (argc - optind > 1)
		return tool_usage_error("%s takes at most one input file",
		                        argv[0]);
	o->in = optind < argc ? argv[optind] : NULL;
	return TOOL_EXIT_OK;
}

static int load_files(p11mail_smime *smime, const struct smime_opts *o)
{
	enum p11mail_status st;

	for (size_t i = 0; i < o->anchor_count; i++) {
		st = p11mail_smime_add_anchor_file(smime, o->anchors[i]);
		if (st != P11MAIL_OK) {
			tool_error("cannot use anchor %s: %s", o->anchors[i],
			           p11mail_strerror(st));
			return -1;
		}
	}
	for (size_t i = 0; i < o->recipient_cert_count; i++) {
		st = p11mail_smime_add_cert_file(smime, o->recipient_certs[i]);
		if (st != P11MAIL_OK) {
			tool_error("cannot use certificate %s: %s",
			           o->recipient_certs[i], p11mail_strerror(st));
			return -1;
		}
	}
	return 0;
}

p11mail_smime *smime_setup(const struct smime_opts *o, int need_key)
{
	p11mail_smime *smime = NULL;
	enum p11mail_status st;

	if (need_key && o->key == NULL) {
		tool_usage_error("--key URI is required (a pkcs11: URI)");
		return NULL;
	}
	st = p11mail_smime_new(&smime);
	if (st != P11MAIL_OK) {
		tool_error("cannot start S/MIME: %s", p11mail_strerror(st));
		return NULL;
	}
	if (load_files(smime, o) != 0)
		goto fail;
	if (o->key != NULL || o->cert != NULL) {
		st = p11mail_smime_set_identity(smime, o->key, o->cert,
		                                o->chain);
		if (st != P11MAIL_OK) {
			const char *who = o->key != NULL ? o->key : o->cert;

			/* a URI's query may hold pin-value: never print it */
			tool_error("cannot use the identity %.*s: %s",
			           (int)strcspn(who, "?"), who,
			           p11mail_strerror(st));
			goto fail;
		}
	}
	return smime;

fail:
	p11mail_smime_free(smime);
	return NULL;
}

int smime_read_input(const char *path, unsigned char **out, size_t *len)
{
	FILE *f = stdin;
	unsigned char *buf = NULL, *grown;
	size_t size = 0, used = 0, n;
	int rc = -1;

	*out = NULL;
	*len = 0;
	if (path != NULL && strcmp(path, "-") != 0 &&
	    (f = fopen(path, "rb")) == NULL) {
		tool_error("cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	do {
		if (used == size) {
			size = size ? size * 2 : 65536;
			grown = realloc(buf, size + 1);
			if (grown == NULL) {
				tool_error("out of memory reading the input");
				goto out;
			}
			buf = grown;
		}
		n = fread(buf + used, 1, size - used, f);
		used += n;
	} while (n > 0);
	if (ferror(f)) {
		tool_error("cannot read the input: %s", strerror(errno));
		goto out;
	}
	buf[used] = '\0';
	*out = buf;
	*len = used;
	buf = NULL;
	rc = 0;

out:
	free(buf);
	if (f != stdin)
		fclose(f);
	return rc;
}

static int write_all(int fd, const unsigned char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int smime_write_output(const char *path, const unsigned char *buf, size_t len)
{
	char tmp[PATH_MAX];
	int fd, ok;

	if (path == NULL || strcmp(path, "-") == 0) {
		if (write_all(STDOUT_FILENO, buf, len) != 0) {
			tool_error("cannot write the output: %s",
			           strerror(errno));
			return -1;
		}
		return 0;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp)) {
		tool_error("output path too long: %s", path);
		return -1;
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		tool_error("cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	ok = write_all(fd, buf, len) == 0 && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		tool_error("cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}
