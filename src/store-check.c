/*
 * Examining a store without changing it: where its file is, a read-only
 * open that never creates, migrates or repairs, SQLite's integrity check,
 * and the whole cache as it is, for diagnostics such as p11mail doctor.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"
#include "store.h"

char *p11mail_store_file(const char *dir)
{
	size_t len;
	char *path;

	if (dir == NULL)
		return NULL;
	len = strlen(dir) + sizeof(P11M_STORE_FILE) + 1;
	path = malloc(len);
	if (path != NULL)
		snprintf(path, len, "%s/%s", dir, P11M_STORE_FILE);
	return path;
}

enum p11mail_status p11mail_store_open_readonly(const char *dir,
                                                p11mail_store **out)
{
	enum p11mail_status res = P11MAIL_ERR_NOMEM;
	p11mail_store *st = NULL;
	struct stat sb;
	int rc;

	if (out != NULL)
		*out = NULL;
	if (dir == NULL || *dir == '\0' || out == NULL)
		return P11MAIL_ERR_ARGS;
	st = calloc(1, sizeof(*st));
	if (st == NULL || (st->path = p11mail_store_file(dir)) == NULL)
		goto out;
	/* SQLite would create a missing file even read-only: look first. */
	if (stat(st->path, &sb) != 0) {
		p11m_log(P11MAIL_LOG_ERROR, "no store at %s: %s", st->path,
		         strerror(errno));
		res = P11MAIL_ERR_NOT_FOUND;
		goto out;
	}
	rc = sqlite3_open_v2(st->path, &st->db,
	                     SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		res = p11m_store_fail(st, rc, "opening read-only");
		goto out;
	}
	st->wait_ms = 2000;
	sqlite3_busy_timeout(st->db, st->wait_ms);
	p11m_trace("store", "opened %s read-only", st->path);
	*out = st;
	st = NULL;
	res = P11MAIL_OK;
out:
	p11mail_store_close(st);
	return res;
}

/*
 * Runs a one-value PRAGMA; the text goes to buf.  Returns the SQLite code,
 * SQLITE_OK when a row came.
 */
static int pragma_text(p11mail_store *st, const char *sql, char *buf,
                       size_t size)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	buf[0] = '\0';
	rc = sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_ROW) {
			const unsigned char *t = sqlite3_column_text(stmt, 0);

			snprintf(buf, size, "%s",
			         t != NULL ? (const char *)t : "");
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(stmt);
	return rc;
}

static void note_damage(p11mail_store *st, struct p11mail_store_report *r,
                        int rc, const char *said)
{
	r->damaged = 1;
	snprintf(r->detail, sizeof(r->detail), "%s",
	         rc != SQLITE_OK ? sqlite3_errmsg(st->db) : said);
}

enum p11mail_status p11mail_store_check(p11mail_store *st,
                                        struct p11mail_store_report *report)
{
	char buf[256];
	int rc;

	if (report != NULL)
		memset(report, 0, sizeof(*report));
	if (st == NULL || report == NULL)
		return P11MAIL_ERR_ARGS;
	report->schema_current = P11M_STORE_SCHEMA;
	report->schema = -1;

	rc = pragma_text(st, "PRAGMA application_id", buf, sizeof(buf));
	if (rc == SQLITE_NOMEM)
		return P11MAIL_ERR_NOMEM;
	if (rc != SQLITE_OK) {
		/* not even the header reads: a file that is no database */
		note_damage(st, report, rc, NULL);
		return P11MAIL_OK;
	}
	if (strtol(buf, NULL, 10) != P11M_STORE_APP_ID) {
		report->foreign = 1;
		return P11MAIL_OK;
	}
	rc = pragma_text(st, "PRAGMA quick_check", buf, sizeof(buf));
	if (rc != SQLITE_OK || strcmp(buf, "ok") != 0) {
		note_damage(st, report, rc, buf);
		return P11MAIL_OK;
	}
	rc = pragma_text(st, "PRAGMA user_version", buf, sizeof(buf));
	if (rc != SQLITE_OK) {
		note_damage(st, report, rc, NULL);
		return P11MAIL_OK;
	}
	report->schema = (int)strtol(buf, NULL, 10);
	return P11MAIL_OK;
}

enum p11mail_status p11mail_cache_list(p11mail_store *st, const char *address,
                                       struct p11mail_cert **certs,
                                       size_t *count)
{
	static const char sql[] = "SELECT " P11M_CERT_COLUMNS " FROM certs "
	                          "WHERE ?1 IS NULL OR address = ?1 "
	                          "ORDER BY address, not_after DESC";

	return p11m_cert_query(st, sql, address, certs, count);
}
