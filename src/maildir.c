/*
 * Maildir: messages are written into tmp/, flushed, then moved into new/ in
 * one rename, so that a reader never sees half a message and a crash leaves
 * at most a stale file in tmp/.  Readers look at new/ and cur/.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "common.h"
#include "maildir.h"

/* Upper bound on what p11mail_maildir_read hands out by default. */
#define MAILDIR_MAX_MESSAGE (64u * 1024 * 1024)

static enum p11mail_status maildir_mkdir(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return P11MAIL_OK;
	p11m_log(P11MAIL_LOG_ERROR, "cannot create the directory %s: %s", path,
	         strerror(errno));
	return P11MAIL_ERR_IO;
}

/* Makes every missing directory along path, like mkdir -p. */
static enum p11mail_status maildir_mkdirs(const char *path)
{
	enum p11mail_status rc = P11MAIL_OK;
	char *copy = strdup(path);

	if (copy == NULL)
		return P11MAIL_ERR_NOMEM;
	for (char *p = copy + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		rc = maildir_mkdir(copy);
		*p = '/';
		if (rc != P11MAIL_OK)
			goto out;
	}
	rc = maildir_mkdir(copy);
out:
	free(copy);
	return rc;
}

static char *maildir_join(const char *dir, const char *sub, const char *name)
{
	size_t n = strlen(dir) + strlen(sub) + strlen(name) + 3;
	char *path = malloc(n);

	if (path != NULL)
		snprintf(path, n, "%s/%s%s%s", dir, sub, *name ? "/" : "",
		         name);
	return path;
}

enum p11mail_status maildir_create(const char *dir)
{
	static const char *const subs[] = {"tmp", "new", "cur"};
	enum p11mail_status rc;
	char *path = NULL;

	if (dir == NULL || *dir == '\0')
		return P11MAIL_ERR_ARGS;
	rc = maildir_mkdirs(dir);
	for (size_t i = 0; rc == P11MAIL_OK && i < P11M_ARRAY_SIZE(subs); i++) {
		path = maildir_join(dir, subs[i], "");
		rc = path != NULL ? maildir_mkdir(path) : P11MAIL_ERR_NOMEM;
		free(path);
	}
	return rc;
}

/*
 * A name no other delivery can have: seconds, microseconds, PID and a
 * per-process counter, then the host name with '/' and ':' replaced as
 * the Maildir convention asks.
 */
static char *maildir_unique_name(void)
{
	static unsigned long counter;
	char host[256] = "localhost";
	struct timeval tv;
	char buf[512];

	gettimeofday(&tv, NULL);
	if (gethostname(host, sizeof(host) - 1) != 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	for (char *p = host; *p != '\0'; p++)
		if (*p == '/' || *p == ':')
			*p = '_';
	snprintf(buf, sizeof(buf), "%lld.M%06ldP%ldQ%lu.%s",
	         (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
	         ++counter, host);
	return strdup(buf);
}

static enum p11mail_status maildir_write_all(int fd, const unsigned char *p,
                                             size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return P11MAIL_ERR_IO;
		p += n;
		len -= (size_t)n;
	}
	return P11MAIL_OK;
}

/* Flushes a directory so that a rename inside it survives a crash. */
static void maildir_sync_dir(const char *dir, const char *sub)
{
	char *path = maildir_join(dir, sub, "");
	int fd = path != NULL ? open(path, O_RDONLY | O_DIRECTORY) : -1;

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(path);
}

enum p11mail_status maildir_deliver_parts(const char *dir,
                                          const unsigned char *const *parts,
                                          const size_t *lens, size_t count,
                                          char **id)
{
	enum p11mail_status rc;
	char *name = NULL, *tmp = NULL, *dst = NULL;
	int fd = -1;

	*id = NULL;
	rc = maildir_create(dir);
	if (rc != P11MAIL_OK)
		goto out;
	name = maildir_unique_name();
	tmp = name != NULL ? maildir_join(dir, "tmp", name) : NULL;
	dst = name != NULL ? maildir_join(dir, "new", name) : NULL;
	if (dst == NULL || tmp == NULL) {
		rc = P11MAIL_ERR_NOMEM;
		goto out;
	}

	/* O_EXCL: a name already taken means a clash, never an overwrite. */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		p11m_log(P11MAIL_LOG_ERROR, "cannot create %s: %s", tmp,
		         strerror(errno));
		rc = P11MAIL_ERR_IO;
		goto out;
	}
	for (size_t i = 0; rc == P11MAIL_OK && i < count; i++)
		rc = maildir_write_all(fd, parts[i], lens[i]);
	if (rc == P11MAIL_OK && fsync(fd) != 0)
		rc = P11MAIL_ERR_IO;
	if (close(fd) != 0 && rc == P11MAIL_OK)
		rc = P11MAIL_ERR_IO;
	fd = -1;
	if (rc != P11MAIL_OK) {
		p11m_log(P11MAIL_LOG_ERROR, "cannot write %s: %s", tmp,
		         strerror(errno));
		unlink(tmp);
		goto out;
	}

	/* link() rather than rename(): it fails instead of replacing. */
	if (link(tmp, dst) != 0) {
		p11m_log(P11MAIL_LOG_ERROR, "cannot move %s into new/: %s", tmp,
		         strerror(errno));
		unlink(tmp);
		rc = P11MAIL_ERR_IO;
		goto out;
	}
	unlink(tmp);
	maildir_sync_dir(dir, "new");
	*id = name;
	name = NULL;
out:
	free(name);
	free(tmp);
	free(dst);
	return rc;
}

enum p11mail_status p11mail_maildir_deliver(const char *dir,
                                            const unsigned char *msg,
                                            size_t len, char **id)
{
	const unsigned char *parts[1] = {msg};
	size_t lens[1] = {len};

	if (id == NULL)
		return P11MAIL_ERR_ARGS;
	*id = NULL;
	if (dir == NULL || (msg == NULL && len > 0))
		return P11MAIL_ERR_ARGS;
	return maildir_deliver_parts(dir, parts, lens, 1, id);
}

enum p11mail_status maildir_read_file(const char *path, size_t max,
                                      unsigned char **out, size_t *out_len)
{
	enum p11mail_status rc = P11MAIL_ERR_IO;
	unsigned char *buf = NULL;
	struct stat st;
	size_t got = 0;
	FILE *f;

	*out = NULL;
	*out_len = 0;
	f = fopen(path, "rbe");
	if (f == NULL) {
		rc = errno == ENOENT ? P11MAIL_ERR_NOT_FOUND : P11MAIL_ERR_IO;
		p11m_log(P11MAIL_LOG_ERROR, "cannot read %s: %s", path,
		         strerror(errno));
		return rc;
	}
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
		goto out;
	if ((unsigned long long)st.st_size > max) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "%s is larger than the limit of %zu bytes", path, max);
		rc = P11MAIL_ERR_LIMIT;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		rc = P11MAIL_ERR_NOMEM;
		goto out;
	}
	got = fread(buf, 1, (size_t)st.st_size, f);
	if (ferror(f) || got != (size_t)st.st_size)
		goto out;
	buf[got] = '\0';
	*out = buf;
	*out_len = got;
	buf = NULL;
	rc = P11MAIL_OK;
out:
	free(buf);
	fclose(f);
	return rc;
}

/* The unique part of a file name: everything before the ":2," info. */
static char *maildir_id_of(const char *file)
{
	const char *colon = strchr(file, ':');
	size_t n = colon != NULL ? (size_t)(colon - file) : strlen(file);

	return strndup(file, n);
}

static enum p11mail_status maildir_add_entry(struct p11mail_maildir_list *l,
                                             const char *dir, const char *sub,
                                             const char *file)
{
	struct p11mail_maildir_entry *e, *grown;
	struct stat st;

	if (l->count % 64 == 0) {
		grown = realloc(l->entries, (l->count + 64) * sizeof(*grown));
		if (grown == NULL)
			return P11MAIL_ERR_NOMEM;
		l->entries = grown;
	}
	e = &l->entries[l->count];
	memset(e, 0, sizeof(*e));
	e->path = maildir_join(dir, sub, file);
	e->id = maildir_id_of(file);
	if (e->path == NULL || e->id == NULL) {
		free(e->path);
		free(e->id);
		return P11MAIL_ERR_NOMEM;
	}
	if (stat(e->path, &st) == 0) {
		e->mtime = (int64_t)st.st_mtime;
		e->size = (size_t)st.st_size;
	}
	e->seen = strcmp(sub, "cur") == 0 && strstr(file, ":2,") != NULL &&
	          strchr(strstr(file, ":2,"), 'S') != NULL;
	l->count++;
	return P11MAIL_OK;
}

static enum p11mail_status maildir_scan(struct p11mail_maildir_list *l,
                                        const char *dir, const char *sub)
{
	enum p11mail_status rc = P11MAIL_OK;
	char *path = maildir_join(dir, sub, "");
	struct dirent *de;
	DIR *d;

	if (path == NULL)
		return P11MAIL_ERR_NOMEM;
	d = opendir(path);
	if (d == NULL) {
		/* A Maildir that was never written to is simply empty. */
		if (errno != ENOENT) {
			p11m_log(P11MAIL_LOG_ERROR, "cannot list %s: %s", path,
			         strerror(errno));
			rc = P11MAIL_ERR_IO;
		}
		goto out;
	}
	while (rc == P11MAIL_OK && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		rc = maildir_add_entry(l, dir, sub, de->d_name);
	}
	closedir(d);
out:
	free(path);
	return rc;
}

/* Oldest first; the unique names break ties in delivery order. */
static int maildir_entry_cmp(const void *a, const void *b)
{
	const struct p11mail_maildir_entry *x = a, *y = b;

	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? -1 : 1;
	return strcmp(x->id, y->id);
}

enum p11mail_status p11mail_maildir_list(const char *dir,
                                         struct p11mail_maildir_list **out)
{
	struct p11mail_maildir_list *l;
	enum p11mail_status rc;

	if (out == NULL)
		return P11MAIL_ERR_ARGS;
	*out = NULL;
	if (dir == NULL)
		return P11MAIL_ERR_ARGS;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return P11MAIL_ERR_NOMEM;
	rc = maildir_scan(l, dir, "new");
	if (rc == P11MAIL_OK)
		rc = maildir_scan(l, dir, "cur");
	if (rc != P11MAIL_OK)
		goto out;
	if (l->count > 1)
		qsort(l->entries, l->count, sizeof(*l->entries),
		      maildir_entry_cmp);
	*out = l;
	l = NULL;
out:
	p11mail_maildir_list_free(l);
	return rc;
}

void p11mail_maildir_list_free(struct p11mail_maildir_list *list)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < list->count; i++) {
		free(list->entries[i].id);
		free(list->entries[i].path);
	}
	free(list->entries);
	free(list);
}

/* Finds the file of a message by its unique name in new/ or cur/. */
static enum p11mail_status maildir_find(const char *dir, const char *id,
                                        char **path)
{
	struct p11mail_maildir_list *l = NULL;
	enum p11mail_status rc;

	*path = NULL;
	if (id == NULL || *id == '\0' || strchr(id, '/') != NULL)
		return P11MAIL_ERR_ARGS;
	rc = p11mail_maildir_list(dir, &l);
	if (rc != P11MAIL_OK)
		return rc;
	rc = P11MAIL_ERR_NOT_FOUND;
	for (size_t i = 0; i < l->count; i++) {
		if (strcmp(l->entries[i].id, id) != 0)
			continue;
		*path = l->entries[i].path;
		l->entries[i].path = NULL;
		rc = P11MAIL_OK;
		break;
	}
	p11mail_maildir_list_free(l);
	return rc;
}

enum p11mail_status p11mail_maildir_read(const char *dir, const char *id,
                                         unsigned char **out, size_t *out_len)
{
	enum p11mail_status rc;
	char *path = NULL;

	if (out == NULL || out_len == NULL)
		return P11MAIL_ERR_ARGS;
	*out = NULL;
	*out_len = 0;
	if (dir == NULL)
		return P11MAIL_ERR_ARGS;
	rc = maildir_find(dir, id, &path);
	if (rc == P11MAIL_OK)
		rc = maildir_read_file(path, MAILDIR_MAX_MESSAGE, out, out_len);
	free(path);
	return rc;
}

enum p11mail_status p11mail_maildir_remove(const char *dir, const char *id)
{
	enum p11mail_status rc;
	char *path = NULL;

	if (dir == NULL)
		return P11MAIL_ERR_ARGS;
	rc = maildir_find(dir, id, &path);
	if (rc != P11MAIL_OK)
		goto out;
	if (unlink(path) != 0) {
		p11m_log(P11MAIL_LOG_ERROR, "cannot remove %s: %s", path,
		         strerror(errno));
		rc = P11MAIL_ERR_IO;
	}
out:
	free(path);
	return rc;
}

int maildir_lock(const char *dir, const char *name)
{
	char *path = NULL;
	int fd = -1;

	if (maildir_create(dir) != P11MAIL_OK)
		return -1;
	path = maildir_join(dir, name, "");
	if (path != NULL)
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	while (fd >= 0 && flock(fd, LOCK_EX) != 0) {
		if (errno != EINTR) {
			close(fd);
			fd = -1;
		}
	}
	if (fd < 0)
		p11m_log(P11MAIL_LOG_ERROR, "cannot lock %s: %s",
		         path != NULL ? path : dir, strerror(errno));
	free(path);
	return fd;
}

void maildir_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* closing releases the lock */
}
