/*
 * The fetch state file, one record per line:
 *   imap <TAB> KEY <TAB> UIDVALIDITY <TAB> LAST-UID
 *   pop3 <TAB> KEY <TAB> UIDL
 * Lines this version does not understand are kept as they are.  The file
 * is replaced by rename, so a crash leaves either the old or the new one.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "maildir.h"
#include "transport.h"

#define STATE_MAX (16u * 1024 * 1024)

struct fetch_state {
	char *path;
	char **lines; /* without the newline */
	size_t count;
};

static enum p11mail_status state_append(struct fetch_state *st, char *line)
{
	char **grown;

	if (line == NULL)
		return P11MAIL_ERR_NOMEM;
	grown = realloc(st->lines, (st->count + 1) * sizeof(*grown));
	if (grown == NULL) {
		free(line);
		return P11MAIL_ERR_NOMEM;
	}
	st->lines = grown;
	st->lines[st->count++] = line;
	return P11MAIL_OK;
}

static enum p11mail_status state_split(struct fetch_state *st, char *text)
{
	enum p11mail_status rc = P11MAIL_OK;
	char *save = NULL;

	for (char *line = strtok_r(text, "\n", &save);
	     rc == P11MAIL_OK && line != NULL;
	     line = strtok_r(NULL, "\n", &save))
		rc = state_append(st, strdup(line));
	return rc;
}

enum p11mail_status fetch_state_load(const char *path, struct fetch_state **out)
{
	struct fetch_state *st;
	unsigned char *text = NULL;
	enum p11mail_status rc;
	size_t len = 0;

	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (st == NULL || (st->path = strdup(path)) == NULL) {
		rc = P11MAIL_ERR_NOMEM;
		goto out;
	}
	/* A missing file is the state of an account never fetched. */
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		rc = P11MAIL_OK;
	} else {
		rc = maildir_read_file(path, STATE_MAX, &text, &len);
		if (rc == P11MAIL_OK)
			rc = state_split(st, (char *)text);
	}
	if (rc != P11MAIL_OK)
		goto out;
	*out = st;
	st = NULL;
out:
	free(text);
	fetch_state_free(st);
	return rc;
}

void fetch_state_free(struct fetch_state *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < st->count; i++)
		free(st->lines[i]);
	free(st->lines);
	free(st->path);
	free(st);
}

static enum p11mail_status state_write(FILE *f, const struct fetch_state *st)
{
	for (size_t i = 0; i < st->count; i++)
		if (st->lines[i] != NULL &&
		    fprintf(f, "%s\n", st->lines[i]) < 0)
			return P11MAIL_ERR_IO;
	return fflush(f) == 0 && fsync(fileno(f)) == 0 ? P11MAIL_OK
	                                               : P11MAIL_ERR_IO;
}

enum p11mail_status fetch_state_save(struct fetch_state *st)
{
	size_t n = strlen(st->path) + 8;
	enum p11mail_status rc;
	char *tmp = malloc(n);
	FILE *f = NULL;
	int fd;

	if (tmp == NULL)
		return P11MAIL_ERR_NOMEM;
	snprintf(tmp, n, "%s.new", st->path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (f == NULL) {
		rc = P11MAIL_ERR_IO;
		if (fd >= 0)
			close(fd);
		goto out;
	}
	rc = state_write(f, st);
	if (fclose(f) != 0)
		rc = P11MAIL_ERR_IO;
	if (rc == P11MAIL_OK && rename(tmp, st->path) != 0)
		rc = P11MAIL_ERR_IO;
out:
	if (rc != P11MAIL_OK) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "cannot write the fetch state %s: %s", st->path,
		         strerror(errno));
		unlink(tmp);
	}
	free(tmp);
	return rc;
}

/* Returns the rest of line after "kind\tkey\t", or NULL. */
static const char *state_match(const char *line, const char *kind,
                               const char *key)
{
	size_t k = strlen(kind), n = strlen(key);

	if (line == NULL || strncmp(line, kind, k) != 0 || line[k] != '\t' ||
	    strncmp(line + k + 1, key, n) != 0 || line[k + 1 + n] != '\t')
		return NULL;
	return line + k + n + 2;
}

static char *state_line(const char *kind, const char *key, const char *rest)
{
	size_t n = strlen(kind) + strlen(key) + strlen(rest) + 3;
	char *line = malloc(n);

	if (line != NULL)
		snprintf(line, n, "%s\t%s\t%s", kind, key, rest);
	return line;
}

void fetch_state_imap_get(const struct fetch_state *st, const char *key,
                          uint64_t *validity, uint64_t *last)
{
	*validity = 0;
	*last = 0;
	for (size_t i = 0; i < st->count; i++) {
		const char *rest = state_match(st->lines[i], "imap", key);
		uint64_t v, l;

		if (rest != NULL &&
		    sscanf(rest, "%" SCNu64 "\t%" SCNu64, &v, &l) == 2) {
			*validity = v;
			*last = l;
		}
	}
}

enum p11mail_status fetch_state_imap_set(struct fetch_state *st,
                                         const char *key, uint64_t validity,
                                         uint64_t last)
{
	char rest[64];

	for (size_t i = 0; i < st->count; i++)
		if (state_match(st->lines[i], "imap", key) != NULL) {
			free(st->lines[i]);
			st->lines[i] = NULL;
		}
	snprintf(rest, sizeof(rest), "%" PRIu64 "\t%" PRIu64, validity, last);
	return state_append(st, state_line("imap", key, rest));
}

int fetch_state_pop3_seen(const struct fetch_state *st, const char *key,
                          const char *uidl)
{
	for (size_t i = 0; i < st->count; i++) {
		const char *rest = state_match(st->lines[i], "pop3", key);

		if (rest != NULL && strcmp(rest, uidl) == 0)
			return 1;
	}
	return 0;
}

enum p11mail_status fetch_state_pop3_add(struct fetch_state *st,
                                         const char *key, const char *uidl)
{
	if (fetch_state_pop3_seen(st, key, uidl))
		return P11MAIL_OK;
	return state_append(st, state_line("pop3", key, uidl));
}

void fetch_state_pop3_keep(struct fetch_state *st, const char *key,
                           char *const *present, size_t count)
{
	for (size_t i = 0; i < st->count; i++) {
		const char *rest = state_match(st->lines[i], "pop3", key);
		int keep = 0;

		if (rest == NULL)
			continue;
		for (size_t j = 0; !keep && j < count; j++)
			keep = strcmp(present[j], rest) == 0;
		if (!keep) {
			free(st->lines[i]);
			st->lines[i] = NULL;
		}
	}
}
