/* Shared parts of the S/MIME commands; see cmd-smime.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
        {"from", required_argument, NULL, 'f'},
        {"max-size", required_argument, NULL, 'm'},
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

/* True when the len bytes at s are one plain address: local@domain. */
static int plain_address(const char *s, size_t len)
{
	const char *at = memchr(s, '@', len);

	if (len == 0 || len > 320 || at == NULL || at == s ||
	    at == s + len - 1 ||
	    memchr(at + 1, '@', len - 1 - (size_t)(at - s)))
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] == 0x7f ||
		    strchr("<>,;\"()[]\\", s[i]) != NULL)
			return 0;
	return 1;
}

/*
 * A --to value: an address, or "Name <address>" whose address is taken
 * from the angle brackets.  Case does not matter: encryption compares
 * addresses as the store files them, BOB@South-Lab.test finding
 * bob@south-lab.test.
 */
static int add_recipient(struct smime_opts *o, const char *arg)
{
	const char *addr = arg, *open = strchr(arg, '<');
	size_t len = strlen(arg);
	char *copy;

	if (open != NULL) {
		const char *close = strchr(open, '>');

		addr = open + 1;
		len = close != NULL && close[1] == '\0' ? (size_t)(close - addr)
		                                        : 0;
	}
	if (!plain_address(addr, len)) {
		int shown = 1;

		for (const char *p = arg; *p != '\0'; p++)
			if ((unsigned char)*p < ' ' || *p == 0x7f)
				shown = 0;
		tool_usage_error("--to takes an address (name@domain or "
		                 "Name <name@domain>), not '%s'",
		                 shown ? arg : "?");
		return -1;
	}
	if (o->to_count >= SMIME_MAX_FILES) {
		tool_usage_error("too many --to options (at most %d)",
		                 SMIME_MAX_FILES);
		return -1;
	}
	copy = strndup(addr, len);
	if (copy == NULL) {
		tool_error("out of memory");
		return -1;
	}
	o->to_owned[o->to_count] = copy;
	o->to[o->to_count++] = copy;
	return 0;
}

/* A byte count: decimal digits only, at least 1. */
static int parse_size(const char *arg, size_t *out)
{
	unsigned long long v;
	char *end = NULL;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (arg[0] < '0' || arg[0] > '9' || *end != '\0' || errno != 0 ||
	    v == 0 || v > SIZE_MAX) {
		tool_usage_error("--max-size takes a number of bytes, not "
		                 "'%s'",
		                 arg);
		return -1;
	}
	*out = (size_t)v;
	return 0;
}

static int apply(struct smime_opts *o, int c, const char *arg)
{
	switch (c) {
	case 'k':
		if (tool_refuse_pin_value(arg, "--key") != 0)
			return -1;
		o->key = arg;
		break;
	case 'c':
		o->cert = arg;
		break;
	case 'C':
		o->chain = arg;
		break;
	case 'o':
		if (*arg == '\0') {
			tool_usage_error("--out needs a file name");
			return -1;
		}
		o->out = arg;
		break;
	case 'n':
		if (*arg == '\0') {
			tool_usage_error("--content needs a file name");
			return -1;
		}
		o->content_out = arg;
		break;
	case 'f':
		o->from = arg;
		break;
	case 'm':
		return parse_size(arg, &o->max_size);
	case 'a':
		return add_file(o->anchors, &o->anchor_count, arg, "--anchor");
	case 'A':
		return add_file(o->recipient_certs, &o->recipient_cert_count,
		                arg, "--recipient-cert");
	case 't':
		return add_recipient(o, arg);
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

/* The long name of an option, as the user may have abbreviated it. */
static const char *option_name(int c)
{
	for (const struct option *o = long_options; o->name != NULL; o++)
		if (o->val == c)
			return o->name;
	return "?";
}

static int parse_opts(const struct tool_globals *g, int argc, char **argv,
                      const char *allowed, const char *help,
                      struct smime_opts *o)
{
	int c;

	memset(o, 0, sizeof(*o));
	o->json = g->json;
	while ((c = tool_getopt(argc, argv, "k:c:o:a:t:f:h", long_options)) !=
	       -1) {
		if (c == 'h') {
			fputs(help, stdout);
			return -1;
		}
		if (c == TOOL_OPT_ERROR)
			return TOOL_EXIT_USAGE; /* tool_getopt printed why */
		if (strchr(allowed, c) == NULL)
			return tool_usage_error("option '--%s' does not apply "
			                        "to %s",
			                        option_name(c), argv[0]);
		if (apply(o, c, optarg) != 0)
			return TOOL_EXIT_USAGE;
	}
	if (argc - optind > 1)
		return tool_usage_error("one input file at most, not %d",
		                        argc - optind);
	o->in = optind < argc ? argv[optind] : NULL;
	return TOOL_EXIT_OK;
}

static void free_recipients(struct smime_opts *o)
{
	for (size_t i = 0; i < o->to_count; i++) {
		free(o->to_owned[i]);
		o->to_owned[i] = NULL;
		o->to[i] = NULL;
	}
	o->to_count = 0;
}

int smime_parse_opts(const struct tool_globals *g, int argc, char **argv,
                     const char *allowed, const char *help,
                     struct smime_opts *o)
{
	int rc = parse_opts(g, argc, argv, allowed, help, o);

	if (rc != TOOL_EXIT_OK)
		free_recipients(o);
	return rc;
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

/*
 * A store is used when one is named (--store, P11MAIL_STORE), when an
 * identity is asked for by address, or when the configuration sets one
 * up; otherwise the files on the command line are the only source.
 */
static int wants_store(const struct tool_globals *g, const struct smime_opts *o)
{
	const struct p11mail_config *cfg = o->cfg;

	return g->store != NULL || o->from != NULL ||
	       p11mail_config_get(cfg, "identity", "address") != NULL ||
	       p11mail_config_get(cfg, "store", "path") != NULL ||
	       p11mail_config_get_bool(cfg, "store", "system", 0);
}

/*
 * Opens the existing store for reading; a missing one is never created.
 * Without it verify goes on (saying so), and sign, encrypt and decrypt go
 * on only when the command line gives all they need: the identity
 * (--key, --cert) and, to encrypt, --recipient-cert for the recipients.
 */
static int open_store(const struct tool_globals *g, struct smime_opts *o,
                      enum smime_need need)
{
	enum p11mail_status st;
	char *dir = NULL;
	int missing = 0;
	int encrypting =
	        need == SMIME_NEED_CERT || (o->flags & P11MAIL_SMIME_SIGN) != 0;

	st = p11mail_store_dir(o->cfg, g->store, 0, &dir);
	if (st == P11MAIL_OK) {
		missing = tool_store_missing(dir);
		if (missing < 0)
			st = P11MAIL_ERR_NOMEM;
	}
	if (missing > 0 && need == SMIME_NEED_NOTHING) {
		if (!g->quiet)
			tool_error("there is no store at %s: nothing is cached",
			           dir);
	} else if (missing > 0 &&
	           ((o->key == NULL && o->cert == NULL) ||
	            (encrypting && o->recipient_cert_count == 0))) {
		tool_error("there is no store at %s (install an identity with "
		           "p11mail-certinstall)",
		           dir);
		st = P11MAIL_ERR_NOT_FOUND;
	} else if (missing == 0 && st == P11MAIL_OK) {
		st = tool_store_open_reading(dir, &o->store);
		if (st != P11MAIL_OK)
			tool_error("cannot open the store %s: %s", dir,
			           p11mail_strerror(st));
	} else if (st != P11MAIL_OK) {
		tool_error("cannot open the store%s%s: %s", dir ? " " : "",
		           dir ? dir : "", p11mail_strerror(st));
	}
	free(dir);
	return st == P11MAIL_OK ? 0 : -1;
}

/* The store's anchors and individually trusted certificates. */
static enum p11mail_status store_anchors(p11mail_smime *smime,
                                         p11mail_store *store)
{
	struct p11mail_anchor *anchors = NULL;
	struct p11mail_cert *trusted = NULL;
	size_t n_anchors = 0, n_trusted = 0;
	enum p11mail_status st;

	st = p11mail_anchor_list(store, &anchors, &n_anchors);
	for (size_t i = 0; st == P11MAIL_OK && i < n_anchors; i++)
		st = p11mail_smime_add_anchor(smime, anchors[i].cert,
		                              anchors[i].cert_len);
	if (st == P11MAIL_OK)
		st = p11mail_trust_list(store, NULL, &trusted, &n_trusted);
	for (size_t i = 0; st == P11MAIL_OK && i < n_trusted; i++)
		st = p11mail_smime_add_anchor(smime, trusted[i].cert,
		                              trusted[i].cert_len);
	p11mail_anchors_free(anchors, n_anchors);
	p11mail_certs_free(trusted, n_trusted);
	return st;
}

/*
 * A recipient's cached certificates, valid and newest first, each with
 * the capabilities last announced; encryption checks every one again.
 */
static enum p11mail_status store_lookup(void *arg, p11mail_smime *smime,
                                        const char *address)
{
	struct p11mail_cert *certs = NULL;
	enum p11mail_status st;
	size_t n = 0;

	st = p11mail_cache_find(arg, address, &certs, &n);
	for (size_t i = 0; st == P11MAIL_OK && i < n; i++)
		st = p11mail_smime_add_cert_caps(
		        smime, certs[i].cert, certs[i].cert_len,
		        certs[i].smime_caps, certs[i].smime_caps_len);
	p11mail_certs_free(certs, n);
	return st;
}

static int use_store(p11mail_smime *smime, const struct smime_opts *o)
{
	struct p11mail_cert_source src = {.arg = o->store,
	                                  .lookup = store_lookup};
	enum p11mail_status st = store_anchors(smime, o->store);

	if (st != P11MAIL_OK) {
		tool_error("cannot read the store's anchors: %s",
		           p11mail_strerror(st));
		return -1;
	}
	p11mail_smime_set_source(smime, &src);
	return 0;
}

/*
 * A --key that is not a pkcs11: URI must be a key file that can be read;
 * anything else is refused before the token is asked for it.
 */
static int check_key_arg(const char *key)
{
	FILE *f;

	if (strncmp(key, "pkcs11:", 7) == 0)
		return 0;
	f = fopen(key, "rbe");
	if (f != NULL) {
		fclose(f);
		return 0;
	}
	/* not a URI: a mistyped one may still hold a pin-value */
	tool_error("--key %.*s is neither a pkcs11: URI nor a readable key "
	           "file (%s)",
	           (int)strcspn(key, "?"), key, strerror(errno));
	return -1;
}

/*
 * Adds the --chain certificates to an identity that came from the store,
 * which brings its own certificate and recorded chain.
 */
static int add_chain(p11mail_smime *smime, const struct smime_opts *o)
{
	enum p11mail_status st;

	if (o->chain == NULL)
		return 0;
	st = p11mail_smime_add_chain_file(smime, o->chain);
	if (st != P11MAIL_OK) {
		tool_error("cannot use the chain %s: %s", o->chain,
		           p11mail_strerror(st));
		return -1;
	}
	return 0;
}

/*
 * The identity: files when given, else the store's for the address.
 * Verifying needs none: a store without identity still verifies.
 */
static int set_identity(p11mail_smime *smime, struct smime_opts *o,
                        enum smime_need need)
{
	const char *who = o->key != NULL ? o->key : o->cert;
	const char *addr = o->from;
	enum p11mail_status st;

	if (need == SMIME_NEED_NOTHING)
		return 0;
	if (need == SMIME_NEED_KEY && o->key == NULL && o->cert != NULL) {
		o->setup_exit = tool_usage_error("--cert FILE needs --key "
		                                 "URI (without both, the "
		                                 "store's identity gives the "
		                                 "key and its certificate)");
		return -1;
	}
	if (o->key != NULL && check_key_arg(o->key) != 0)
		return -1;
	if (who != NULL) {
		st = p11mail_smime_set_identity(smime, o->key, o->cert,
		                                o->chain);
		if (st == P11MAIL_OK)
			return 0;
		/* a URI's query may hold pin-value: never print it */
		tool_error("cannot use the identity %.*s: %s",
		           (int)strcspn(who, "?"), who, p11mail_strerror(st));
		return -1;
	}
	if (addr == NULL)
		addr = p11mail_config_get(o->cfg, "identity", "address");
	if (o->store == NULL || addr == NULL) {
		o->setup_exit = tool_usage_error(
		        "%s is required (or --from ADDRESS with a "
		        "store)",
		        need == SMIME_NEED_KEY ? "--key URI"
		                               : "--cert FILE (the sender's "
		                                 "certificate)");
		return -1;
	}
	st = p11mail_mail_set_identity(
	        smime, o->store, addr,
	        p11mail_config_get(o->cfg, "token", "pin-source"),
	        need == SMIME_NEED_KEY);
	if (st != P11MAIL_OK) {
		tool_error("cannot use the identity of %s: %s", addr,
		           p11mail_strerror(st));
		return -1;
	}
	return add_chain(smime, o);
}

p11mail_smime *smime_setup(const struct tool_globals *g, struct smime_opts *o,
                           enum smime_need need)
{
	p11mail_smime *smime = NULL;
	enum p11mail_status st;

	o->setup_exit = TOOL_EXIT_FAILURE;
	st = p11mail_config_load(g->config, &o->cfg);
	if (st != P11MAIL_OK) {
		tool_error("cannot read the configuration: %s",
		           p11mail_strerror(st));
		return NULL;
	}
	if (wants_store(g, o) && open_store(g, o, need) != 0)
		return NULL;
	st = p11mail_smime_new_config(o->cfg, &smime);
	if (st != P11MAIL_OK) {
		tool_error("cannot start S/MIME: %s", p11mail_strerror(st));
		return NULL;
	}
	if (o->max_size != 0) {
		/* Streamed files and messages held in memory alike. */
		struct p11mail_smime_limits limits = {
		        .max_size = o->max_size, .max_file_size = o->max_size};

		p11mail_smime_set_limits(smime, &limits);
	}
	if (load_files(smime, o) != 0 ||
	    (o->store != NULL && use_store(smime, o) != 0) ||
	    set_identity(smime, o, need) != 0)
		goto fail;
	return smime;

fail:
	p11mail_smime_free(smime);
	return NULL;
}

void smime_opts_clear(struct smime_opts *o)
{
	free_recipients(o);
	p11mail_store_close(o->store);
	o->store = NULL;
	p11mail_config_free(o->cfg);
	o->cfg = NULL;
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
	    (f = fopen(path, "rbe")) == NULL) {
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
	fd = mkostemp(tmp, O_CLOEXEC);
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

/* A private temporary file with no name left, for stdin and stdout. */
static int anon_tmpfile(void)
{
	const char *dir = getenv("TMPDIR");
	char path[PATH_MAX];
	int fd;

	if (dir == NULL || dir[0] != '/')
		dir = "/tmp";
	if (snprintf(path, sizeof(path), "%s/p11mail-XXXXXX", dir) >=
	    (int)sizeof(path))
		return -1;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

/* Copies what remains of from into to; 0 or -1 (errno set). */
static int copy_fd(int from, int to)
{
	unsigned char buf[65536];
	ssize_t n;

	for (;;) {
		n = read(from, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (write_all(to, buf, (size_t)n) != 0)
			return -1;
	}
	return n < 0 ? -1 : 0;
}

int smime_open_input(const char *path)
{
	struct stat sb;
	int fd = STDIN_FILENO, copy;

	if (path != NULL && strcmp(path, "-") != 0) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			tool_error("cannot read %s: %s", path, strerror(errno));
			return -1;
		}
	}
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode))
		return fd == STDIN_FILENO ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : fd;

	/* a pipe is read once into a file that can be read twice */
	copy = anon_tmpfile();
	if (copy < 0 || copy_fd(fd, copy) != 0) {
		tool_error("cannot read the input: %s", strerror(errno));
		if (copy >= 0)
			close(copy);
		copy = -1;
	}
	if (fd != STDIN_FILENO)
		close(fd);
	return copy;
}

int smime_output_open(struct smime_output *out, const char *path)
{
	out->path = path != NULL && strcmp(path, "-") != 0 ? path : NULL;
	out->tmp[0] = '\0';
	if (out->path == NULL) {
		out->fd = anon_tmpfile();
	} else if (snprintf(out->tmp, sizeof(out->tmp), "%s.XXXXXX", path) >=
	           (int)sizeof(out->tmp)) {
		tool_error("output path too long: %s", path);
		return -1;
	} else {
		out->fd = mkostemp(out->tmp, O_CLOEXEC);
	}
	if (out->fd < 0) {
		tool_error("cannot write %s: %s", path ? path : "the output",
		           strerror(errno));
		out->tmp[0] = '\0';
		return -1;
	}
	return 0;
}

int smime_output_commit(struct smime_output *out)
{
	int ok;

	if (out->path == NULL) {
		ok = lseek(out->fd, 0, SEEK_SET) == 0 &&
		     copy_fd(out->fd, STDOUT_FILENO) == 0;
		close(out->fd);
		out->fd = -1;
		if (!ok)
			tool_error("cannot write the output: %s",
			           strerror(errno));
		return ok ? 0 : -1;
	}
	ok = fsync(out->fd) == 0;
	ok = close(out->fd) == 0 && ok;
	out->fd = -1;
	if (!ok || rename(out->tmp, out->path) != 0) {
		tool_error("cannot write %s: %s", out->path, strerror(errno));
		smime_output_abort(out);
		return -1;
	}
	out->tmp[0] = '\0';
	return 0;
}

void smime_output_abort(struct smime_output *out)
{
	if (out->fd >= 0)
		close(out->fd);
	out->fd = -1;
	if (out->tmp[0] != '\0')
		unlink(out->tmp);
	out->tmp[0] = '\0';
}
