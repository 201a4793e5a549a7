/*
 * The workstation store: where it lives, opening it safely, its schema and
 * migrations, and the transaction helpers every change goes through.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "store.h"

#define STORE_FILE            "store.db"
#define STORE_SYSTEM_DIR      "/var/lib/p11mail"
#define STORE_DEFAULT_WAIT_MS 10000

/*
 * Schema migrations: migrations[i] takes user_version i to i + 1.  Only
 * ever append; a released step never changes.
 */
static const char *const migrations[] = {
        "CREATE TABLE identities ("
        " id INTEGER PRIMARY KEY,"
        " address TEXT NOT NULL,"
        " fingerprint TEXT NOT NULL,"
        " cert BLOB NOT NULL,"
        " chain BLOB,"
        " key_uri TEXT NOT NULL,"
        " not_before INTEGER NOT NULL,"
        " not_after INTEGER NOT NULL,"
        " added INTEGER NOT NULL,"
        " UNIQUE (address, fingerprint));"
        "CREATE TABLE anchors ("
        " id INTEGER PRIMARY KEY,"
        " fingerprint TEXT NOT NULL,"
        " domain TEXT NOT NULL DEFAULT '',"
        " cert BLOB NOT NULL,"
        " subject TEXT NOT NULL,"
        " is_ca INTEGER NOT NULL,"
        " not_after INTEGER NOT NULL,"
        " added INTEGER NOT NULL,"
        " UNIQUE (fingerprint, domain));"
        "CREATE TABLE certs ("
        " id INTEGER PRIMARY KEY,"
        " address TEXT NOT NULL,"
        " fingerprint TEXT NOT NULL,"
        " cert BLOB NOT NULL,"
        " not_before INTEGER NOT NULL,"
        " not_after INTEGER NOT NULL,"
        " key_usage INTEGER NOT NULL,"
        " smime_caps BLOB,"
        " source INTEGER NOT NULL,"
        " trusted INTEGER NOT NULL DEFAULT 0,"
        " first_seen INTEGER NOT NULL,"
        " last_used INTEGER NOT NULL DEFAULT 0,"
        " expires_at INTEGER NOT NULL DEFAULT 0,"
        " UNIQUE (address, fingerprint));"
        "CREATE INDEX certs_not_after ON certs (not_after);"
        "CREATE INDEX certs_trusted ON certs (address) WHERE trusted = 1;"
        "CREATE INDEX identities_not_after ON identities (not_after);"
        "CREATE TABLE negative ("
        " address TEXT PRIMARY KEY,"
        " expires_at INTEGER NOT NULL) WITHOUT ROWID;",
};

#define STORE_SCHEMA_VERSION ((int)P11M_ARRAY_SIZE(migrations))

int64_t p11m_store_now(void)
{
	const char *fake = p11m_getenv("P11MAIL_STORE_NOW");

	if (fake != NULL && *fake != '\0')
		return strtoll(fake, NULL, 10);
	return (int64_t)time(NULL);
}

static char *store_join(const char *dir, const char *name)
{
	size_t len = strlen(dir) + strlen(name) + 2;
	char *path = malloc(len);

	if (path != NULL)
		snprintf(path, len, "%s/%s", dir, name);
	return path;
}

enum p11mail_status p11mail_store_dir(const struct p11mail_config *cfg,
                                      const char *dir, int system, char **out)
{
	const char *env = p11m_getenv("P11MAIL_STORE");
	const char *xdg = p11m_getenv("XDG_DATA_HOME");
	const char *home = p11m_getenv("HOME");
	const char *path = p11mail_config_get(cfg, "store", "path");
	char *res = NULL;

	if (out != NULL)
		*out = NULL;
	if (out == NULL)
		return P11MAIL_ERR_ARGS;

	if (dir != NULL && *dir != '\0')
		res = strdup(dir);
	else if (system)
		res = strdup(STORE_SYSTEM_DIR);
	else if (env != NULL && *env != '\0')
		res = strdup(env);
	else if (p11mail_config_get_bool(cfg, "store", "system", 0))
		res = strdup(STORE_SYSTEM_DIR);
	else if (path != NULL)
		res = strdup(path);
	else if (xdg != NULL && xdg[0] == '/')
		res = store_join(xdg, "p11mail");
	else if (home != NULL && home[0] == '/')
		res = store_join(home, ".local/share/p11mail");
	else {
		p11m_log(P11MAIL_LOG_ERROR,
		         "no store directory: set HOME, XDG_DATA_HOME or "
		         "--store DIR");
		return P11MAIL_ERR_CONFIG;
	}
	if (res == NULL)
		return P11MAIL_ERR_NOMEM;
	*out = res;
	return P11MAIL_OK;
}

/* Creates dir and missing parents; the last one private to the owner. */
static enum p11mail_status store_mkdir(const char *dir)
{
	char buf[PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(buf))
		return P11MAIL_ERR_ARGS;
	memcpy(buf, dir, len + 1);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			goto fail;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		goto fail;
	return P11MAIL_OK;
fail:
	p11m_log(P11MAIL_LOG_ERROR, "cannot create the store directory %s: %s",
	         buf, strerror(errno));
	return P11MAIL_ERR_STORE;
}

/*
 * Creates an empty database file (0600) when there is none, and refuses a
 * file that is not an SQLite database without touching it.
 */
static enum p11mail_status store_check_file(const char *path)
{
	static const char magic[16] = "SQLite format 3";
	char head[16];
	ssize_t n;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		return P11MAIL_OK;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		p11m_log(P11MAIL_LOG_ERROR, "cannot open the store %s: %s",
		         path, strerror(errno));
		return P11MAIL_ERR_STORE;
	}
	n = read(fd, head, sizeof(head));
	close(fd);
	if (n == 0)
		return P11MAIL_OK;
	if (n != (ssize_t)sizeof(head) || memcmp(head, magic, 16) != 0) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "%s is not a p11mail store (not an SQLite database); "
		         "it was left untouched: move it away or use --store",
		         path);
		return P11MAIL_ERR_STORE;
	}
	return P11MAIL_OK;
}

enum p11mail_status p11m_store_fail(p11mail_store *st, int rc, const char *what)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		p11m_log(P11MAIL_LOG_ERROR,
		         "the store %s stayed locked by another process for "
		         "%.1f s (%s); try again later",
		         st->path, st->wait_ms / 1000.0, what);
		return P11MAIL_ERR_STORE_BUSY;
	case SQLITE_NOMEM:
		return P11MAIL_ERR_NOMEM;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		p11m_log(P11MAIL_LOG_ERROR,
		         "the store %s is damaged (%s); it was left untouched: "
		         "restore it from a backup or move it away",
		         st->path, what);
		return P11MAIL_ERR_STORE;
	default:
		p11m_log(P11MAIL_LOG_ERROR, "store %s: %s: %s", st->path, what,
		         sqlite3_errmsg(st->db));
		return P11MAIL_ERR_STORE;
	}
}

enum p11mail_status p11m_store_prepare(p11mail_store *st, const char *sql,
                                       sqlite3_stmt **out)
{
	int rc = sqlite3_prepare_v2(st->db, sql, -1, out, NULL);

	return rc == SQLITE_OK ? P11MAIL_OK
	                       : p11m_store_fail(st, rc, "preparing a query");
}

enum p11mail_status p11m_store_change(p11mail_store *st, sqlite3_stmt *stmt,
                                      const char *what,
                                      enum p11mail_status none)
{
	int rc = sqlite3_step(stmt);

	if (rc != SQLITE_DONE)
		return p11m_store_fail(st, rc, what);
	return sqlite3_changes(st->db) == 0 ? none : P11MAIL_OK;
}

enum p11mail_status p11m_store_step_int(p11mail_store *st, sqlite3_stmt *stmt,
                                        const char *what, int *value)
{
	int rc = sqlite3_step(stmt);

	*value = 0;
	if (rc == SQLITE_ROW)
		*value = sqlite3_column_int(stmt, 0);
	else if (rc != SQLITE_DONE)
		return p11m_store_fail(st, rc, what);
	return P11MAIL_OK;
}

enum p11mail_status p11m_store_rows(p11mail_store *st, sqlite3_stmt *stmt,
                                    const struct p11m_row_kind *kind, void *arg,
                                    void **out, size_t *count)
{
	enum p11mail_status res = P11MAIL_ERR_NOMEM;
	unsigned char *list = NULL, *grown, *elem;
	size_t n = 0;
	int rc;

	*out = NULL;
	*count = 0;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		grown = realloc(list, (n + 1) * kind->size);
		if (grown == NULL)
			goto out;
		list = grown;
		elem = list + n++ * kind->size;
		/* Counted before decoding: release frees a half-filled one. */
		memset(elem, 0, kind->size);
		if (kind->decode(stmt, elem, arg) < 0)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		res = p11m_store_fail(st, rc, kind->what);
		goto out;
	}
	*out = list;
	*count = n;
	list = NULL;
	res = P11MAIL_OK;
out:
	if (list != NULL)
		kind->release(list, n);
	return res;
}

enum p11mail_status p11m_store_select(p11mail_store *st, const char *sql,
                                      const char *address,
                                      const struct p11m_row_kind *kind,
                                      void **out, size_t *count)
{
	sqlite3_stmt *stmt = NULL;
	enum p11mail_status res;
	char *norm = NULL;

	*out = NULL;
	*count = 0;
	if (address != NULL && (norm = p11m_address_normalize(address)) == NULL)
		return P11MAIL_ERR_ARGS;
	res = p11m_store_prepare(st, sql, &stmt);
	if (res != P11MAIL_OK)
		goto out;
	sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(stmt) >= 2)
		sqlite3_bind_int64(stmt, 2, p11m_store_now());
	res = p11m_store_rows(st, stmt, kind, NULL, out, count);
out:
	sqlite3_finalize(stmt);
	free(norm);
	return res;
}

/* Runs one pragma or statement returning an integer into *value. */
static enum p11mail_status store_int(p11mail_store *st, const char *sql,
                                     int *value)
{
	sqlite3_stmt *stmt = NULL;
	enum p11mail_status res;

	*value = 0;
	res = p11m_store_prepare(st, sql, &stmt);
	if (res == P11MAIL_OK)
		res = p11m_store_step_int(st, stmt, "reading the schema",
		                          value);
	sqlite3_finalize(stmt);
	return res;
}

static enum p11mail_status store_exec(p11mail_store *st, const char *sql,
                                      const char *what)
{
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? P11MAIL_OK : p11m_store_fail(st, rc, what);
}

enum p11mail_status p11m_store_begin(p11mail_store *st)
{
	return store_exec(st, "BEGIN IMMEDIATE", "starting a change");
}

enum p11mail_status p11m_store_end(p11mail_store *st, enum p11mail_status ok)
{
	enum p11mail_status res;

	if (ok != P11MAIL_OK) {
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		return ok;
	}
	res = store_exec(st, "COMMIT", "saving a change");
	if (res != P11MAIL_OK)
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return res;
}

/* Refuses an SQLite database that some other program made. */
static enum p11mail_status store_check_identity(p11mail_store *st)
{
	enum p11mail_status res;
	int app_id, tables;

	res = store_int(st, "PRAGMA application_id", &app_id);
	if (res == P11MAIL_OK && app_id == 0)
		res = store_int(st, "SELECT count(*) FROM sqlite_master",
		                &tables);
	if (res != P11MAIL_OK)
		return res;
	if (app_id == P11M_STORE_APP_ID || (app_id == 0 && tables == 0))
		return P11MAIL_OK;
	p11m_log(P11MAIL_LOG_ERROR,
	         "%s is an SQLite database of another program, not a p11mail "
	         "store; it was left untouched: move it away or use --store",
	         st->path);
	return P11MAIL_ERR_STORE;
}

/* Brings the schema up to date inside one transaction. */
static enum p11mail_status store_migrate(p11mail_store *st)
{
	enum p11mail_status res;
	char sql[96];
	int version;

	res = store_int(st, "PRAGMA user_version", &version);
	if (res != P11MAIL_OK || version == STORE_SCHEMA_VERSION)
		return res;

	res = p11m_store_begin(st);
	if (res != P11MAIL_OK)
		return res;
	/* Another process may have migrated while we waited for the lock. */
	res = store_int(st, "PRAGMA user_version", &version);
	if (res == P11MAIL_OK && version > STORE_SCHEMA_VERSION) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "the store %s has schema %d, newer than this p11mail "
		         "(%d): upgrade p11mail",
		         st->path, version, STORE_SCHEMA_VERSION);
		res = P11MAIL_ERR_STORE;
	}
	for (; res == P11MAIL_OK && version < STORE_SCHEMA_VERSION; version++)
		res = store_exec(st, migrations[version],
		                 "updating the schema");
	if (res == P11MAIL_OK) {
		snprintf(sql, sizeof(sql),
		         "PRAGMA application_id = %d; PRAGMA user_version = %d",
		         P11M_STORE_APP_ID, STORE_SCHEMA_VERSION);
		res = store_exec(st, sql, "updating the schema");
	}
	return p11m_store_end(st, res);
}

/*
 * Holds the directory's lock while a store is set up: SQLite does not wait
 * for other processes while switching a new database to WAL, so processes
 * opening a fresh store at once take turns.  Waits at most wait_ms.
 */
static int store_lock_dir(const p11mail_store *st, const char *dir)
{
	struct timespec pause = {0, 10 * 1000 * 1000};
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	for (int waited = 0; flock(fd, LOCK_EX | LOCK_NB) < 0; waited += 10) {
		if (errno != EWOULDBLOCK || waited >= st->wait_ms) {
			close(fd);
			return -1;
		}
		nanosleep(&pause, NULL);
	}
	return fd;
}

static enum p11mail_status store_set_wal(p11mail_store *st)
{
	sqlite3_stmt *q = NULL;
	int wal = 0;

	if (p11m_store_prepare(st, "PRAGMA journal_mode", &q) == P11MAIL_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		wal = strcmp((const char *)sqlite3_column_text(q, 0), "wal") ==
		      0;
	sqlite3_finalize(q);
	return wal ? P11MAIL_OK
	           : store_exec(st, "PRAGMA journal_mode = WAL", "opening");
}

static enum p11mail_status store_setup(p11mail_store *st, const char *dir)
{
	enum p11mail_status res;
	int lock;

	sqlite3_busy_timeout(st->db, st->wait_ms);
	lock = store_lock_dir(st, dir);
	if (lock < 0) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "the store %s stayed locked by another process for "
		         "%.1f s (opening); try again later",
		         st->path, st->wait_ms / 1000.0);
		return P11MAIL_ERR_STORE_BUSY;
	}
	res = store_check_identity(st);
	if (res == P11MAIL_OK)
		res = store_set_wal(st);
	if (res == P11MAIL_OK)
		res = store_exec(st,
		                 "PRAGMA synchronous = NORMAL;"
		                 "PRAGMA secure_delete = ON",
		                 "opening");
	if (res == P11MAIL_OK)
		res = store_migrate(st);
	close(lock);
	return res;
}

static int store_wait_default(void)
{
	const char *env = p11m_getenv("P11MAIL_STORE_WAIT");
	long s;

	if (env == NULL || *env == '\0')
		return STORE_DEFAULT_WAIT_MS;
	s = strtol(env, NULL, 10);
	return s >= 0 && s <= 3600 ? (int)(s * 1000) : STORE_DEFAULT_WAIT_MS;
}

enum p11mail_status p11mail_store_open(const char *dir, p11mail_store **out)
{
	enum p11mail_status res = P11MAIL_ERR_NOMEM;
	p11mail_store *st = NULL;
	int rc;

	if (out != NULL)
		*out = NULL;
	if (dir == NULL || *dir == '\0' || out == NULL)
		return P11MAIL_ERR_ARGS;

	st = calloc(1, sizeof(*st));
	if (st == NULL)
		goto out;
	st->wait_ms = store_wait_default();
	st->path = store_join(dir, STORE_FILE);
	if (st->path == NULL)
		goto out;
	res = store_mkdir(dir);
	if (res == P11MAIL_OK)
		res = store_check_file(st->path);
	if (res != P11MAIL_OK)
		goto out;

	rc = sqlite3_open_v2(st->path, &st->db,
	                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		res = p11m_store_fail(st, rc, "opening");
		goto out;
	}
	res = store_setup(st, dir);
	if (res != P11MAIL_OK)
		goto out;
	p11m_trace("store", "opened %s", st->path);
	*out = st;
	st = NULL;
out:
	p11mail_store_close(st);
	return res;
}

void p11mail_store_close(p11mail_store *st)
{
	if (st == NULL)
		return;
	sqlite3_close_v2(st->db);
	free(st->path);
	free(st);
}

void p11mail_store_set_wait(p11mail_store *st, int millis)
{
	if (st == NULL || millis < 0)
		return;
	st->wait_ms = millis;
	sqlite3_busy_timeout(st->db, millis);
}

int p11m_column_blob(sqlite3_stmt *stmt, int col, unsigned char **out,
                     size_t *len)
{
	const void *p = sqlite3_column_blob(stmt, col);
	int n = sqlite3_column_bytes(stmt, col);

	*out = NULL;
	*len = 0;
	if (p == NULL || n <= 0)
		return 0;
	*out = malloc((size_t)n);
	if (*out == NULL)
		return -1;
	memcpy(*out, p, (size_t)n);
	*len = (size_t)n;
	return 0;
}

int p11m_column_text(sqlite3_stmt *stmt, int col, char **out)
{
	const unsigned char *p = sqlite3_column_text(stmt, col);

	*out = NULL;
	if (p == NULL)
		return 0;
	*out = strdup((const char *)p);
	return *out == NULL ? -1 : 0;
}

void p11m_column_fingerprint(sqlite3_stmt *stmt, int col, char hex[65])
{
	const unsigned char *p = sqlite3_column_text(stmt, col);

	snprintf(hex, 65, "%s", p != NULL ? (const char *)p : "");
}
