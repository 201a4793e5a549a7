/*
 * p11mail doctor: the workstation store, read-only.  The file is opened
 * directly with SQLite in read-only mode, so that a damaged, foreign or
 * newer store is examined without being created, migrated or repaired.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "doctor.h"

#define STORE_FILE   "store.db"
#define STORE_APP_ID 0x5031314d /* "P11M" */
#define STORE_SCHEMA 1          /* the schema this p11mail writes */
#define RESTORE_REMEDY                                                         \
	"restore the file from a backup, or move it away and reinstall "       \
	"identities and anchors (the cache fills again)"
#define LISTED_MAX 5

static int check_modes(struct doctor *d, const char *dir, const char *file)
{
	char next[4200];
	struct stat sb;

	if (stat(dir, &sb) != 0 || stat(file, &sb) != 0) {
		doctor_add(d, DOCTOR_FAIL, "store",
		           "install an identity with p11mail-certinstall "
		           "install or import, which makes the store",
		           "no store at %s: %s", file, strerror(errno));
		return -1;
	}
	if ((sb.st_mode & 077) != 0) {
		snprintf(next, sizeof(next), "chmod 600 %s", file);
		doctor_add(d, DOCTOR_FAIL, "store", next,
		           "%s has mode %04o: others may read it", file,
		           (unsigned int)(sb.st_mode & 07777));
	} else {
		doctor_add(d, DOCTOR_OK, "store", NULL, "%s has mode %04o",
		           file, (unsigned int)(sb.st_mode & 07777));
	}
	if (stat(dir, &sb) == 0 && (sb.st_mode & 077) != 0) {
		snprintf(next, sizeof(next), "chmod 700 %s", dir);
		doctor_add(d, DOCTOR_FAIL, "store", next,
		           "%s has mode %04o: others may list it", dir,
		           (unsigned int)(sb.st_mode & 07777));
	}
	return 0;
}

/* Runs a one-value query; the text goes to buf.  0, or an SQLite code. */
static int query_text(sqlite3 *db, const char *sql, char *buf, size_t size)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	buf[0] = '\0';
	rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
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

static int check_integrity(struct doctor *d, sqlite3 *db, const char *file)
{
	char buf[256];
	long app_id, version;
	int rc;

	rc = query_text(db, "PRAGMA application_id", buf, sizeof(buf));
	app_id = rc == SQLITE_OK ? strtol(buf, NULL, 10) : 0;
	if (rc == SQLITE_OK && app_id != STORE_APP_ID) {
		doctor_add(d, DOCTOR_FAIL, "store",
		           "move the file away; p11mail does not overwrite it",
		           "%s is not a p11mail store", file);
		return -1;
	}
	if (rc == SQLITE_OK)
		rc = query_text(db, "PRAGMA quick_check", buf, sizeof(buf));
	if (rc != SQLITE_OK || strcmp(buf, "ok") != 0) {
		doctor_add(d, DOCTOR_FAIL, "store", RESTORE_REMEDY,
		           "%s is damaged: %s", file,
		           rc != SQLITE_OK ? sqlite3_errmsg(db) : buf);
		return -1;
	}
	rc = query_text(db, "PRAGMA user_version", buf, sizeof(buf));
	version = rc == SQLITE_OK ? strtol(buf, NULL, 10) : -1;
	if (version > STORE_SCHEMA || version < 0) {
		doctor_add(d, DOCTOR_FAIL, "store",
		           "use the p11mail version that made it, or a newer "
		           "one",
		           "%s has schema version %ld; this p11mail knows %d",
		           file, version, STORE_SCHEMA);
		return -1;
	}
	if (version < STORE_SCHEMA)
		doctor_add(d, DOCTOR_WARN, "store",
		           "any p11mail command that writes to the store "
		           "upgrades it",
		           "%s has schema version %ld, older than %d", file,
		           version, STORE_SCHEMA);
	else
		doctor_add(d, DOCTOR_OK, "store", NULL,
		           "%s passes the integrity check (schema %ld)", file,
		           version);
	return version == STORE_SCHEMA ? 0 : -1;
}

static X509 *column_x509(sqlite3_stmt *stmt, int col)
{
	const unsigned char *p = sqlite3_column_blob(stmt, col);
	int len = sqlite3_column_bytes(stmt, col);

	return p != NULL ? d2i_X509(NULL, &p, len) : NULL;
}

/*
 * An expired identity whose address has a newer one was replaced: it only
 * takes room.
 */
static int superseded(struct doctor *d, sqlite3_stmt *stmt, const char *who,
                      const char *prev_addr, int64_t prev_after)
{
	const char *addr = (const char *)sqlite3_column_text(stmt, 0);
	const char *fp = (const char *)sqlite3_column_text(stmt, 1);
	int64_t after = sqlite3_column_int64(stmt, 4);
	char next[512];

	if (addr == NULL || prev_addr[0] == '\0' ||
	    strcmp(addr, prev_addr) != 0 || after >= d->now ||
	    prev_after < d->now)
		return 0;
	snprintf(next, sizeof(next),
	         "remove it: p11mail-certinstall remove %s --fingerprint %s",
	         addr, fp != NULL ? fp : "FP");
	doctor_add(d, DOCTOR_WARN, "identity", next,
	           "%s: expired, replaced by a newer certificate", who);
	return 1;
}

static void check_identity_row(struct doctor *d, struct doctor_p11 *p11,
                               sqlite3_stmt *stmt, char *prev_addr,
                               int64_t *prev_after)
{
	const char *addr = (const char *)sqlite3_column_text(stmt, 0);
	const char *fp = (const char *)sqlite3_column_text(stmt, 1);
	const char *uri = (const char *)sqlite3_column_text(stmt, 3);
	X509 *cert = column_x509(stmt, 2);
	char who[400];

	snprintf(who, sizeof(who), "%s (%.16s)", addr != NULL ? addr : "?",
	         fp != NULL ? fp : "?");
	if (cert == NULL)
		doctor_add(d, DOCTOR_FAIL, "identity", RESTORE_REMEDY,
		           "%s: the stored certificate does not parse", who);
	else if (!superseded(d, stmt, who, prev_addr, *prev_after)) {
		doctor_check_cert(d, "identity", who, cert, 1);
		if (uri != NULL)
			doctor_check_key(d, p11, who, uri, cert);
	}
	X509_free(cert);
	if (addr != NULL && strcmp(addr, prev_addr) != 0) {
		snprintf(prev_addr, 256, "%s", addr);
		*prev_after = sqlite3_column_int64(stmt, 4);
	}
}

static void check_identities(struct doctor *d, struct doctor_p11 *p11,
                             sqlite3 *db)
{
	const char *want = p11mail_config_get(d->cfg, "identity", "address");
	sqlite3_stmt *stmt = NULL;
	char prev_addr[256] = "";
	int64_t prev_after = 0;
	size_t n = 0;
	int found = 0;

	if (sqlite3_prepare_v2(db,
	                       "SELECT address, fingerprint, cert, key_uri, "
	                       "not_after FROM identities ORDER BY address, "
	                       "not_after DESC",
	                       -1, &stmt, NULL) != SQLITE_OK) {
		doctor_add(d, DOCTOR_FAIL, "identity", RESTORE_REMEDY,
		           "identities cannot be read: %s", sqlite3_errmsg(db));
		return;
	}
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		const char *a = (const char *)sqlite3_column_text(stmt, 0);

		if (want != NULL && a != NULL && strcasecmp(a, want) == 0)
			found = 1;
		check_identity_row(d, p11, stmt, prev_addr, &prev_after);
		n++;
	}
	sqlite3_finalize(stmt);
	if (n == 0)
		doctor_add(d, DOCTOR_FAIL, "identity",
		           "install one: p11mail-certinstall install CERT or "
		           "import FILE.p12",
		           "no identity is installed on this workstation");
	else if (want != NULL && !found)
		doctor_add(d, DOCTOR_FAIL, "identity",
		           "install that address's certificate, or correct "
		           "[identity] address",
		           "[identity] address %s has no identity here", want);
}

static void check_anchors(struct doctor *d, sqlite3 *db)
{
	sqlite3_stmt *stmt = NULL;
	char who[600];
	size_t n = 0;

	if (sqlite3_prepare_v2(db,
	                       "SELECT subject, domain, cert FROM anchors "
	                       "ORDER BY subject",
	                       -1, &stmt, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		const char *subj = (const char *)sqlite3_column_text(stmt, 0);
		const char *dom = (const char *)sqlite3_column_text(stmt, 1);
		X509 *cert = column_x509(stmt, 2);

		snprintf(who, sizeof(who), "anchor %s%s%s",
		         subj != NULL ? subj : "?",
		         dom != NULL && *dom != '\0' ? " for " : "",
		         dom != NULL ? dom : "");
		if (cert != NULL)
			doctor_check_cert(d, "anchor", who, cert, 0);
		X509_free(cert);
		n++;
	}
	sqlite3_finalize(stmt);
	if (n == 0)
		doctor_add(d, DOCTOR_FAIL, "anchor",
		           "add your CA: p11mail-certinstall anchor add CA.pem",
		           "no trust anchor: no signature can be trusted");
}

struct cache_count {
	size_t total, expired, stale;
	char listed[LISTED_MAX * 80];
};

static void cache_note(struct cache_count *c, const char *addr)
{
	size_t used = strlen(c->listed);

	if (c->expired > LISTED_MAX)
		return;
	snprintf(c->listed + used, sizeof(c->listed) - used, "%s%.70s",
	         used > 0 ? ", " : "", addr != NULL ? addr : "?");
}

static void check_cache(struct doctor *d, sqlite3 *db)
{
	struct cache_count c = {0};
	sqlite3_stmt *stmt = NULL;

	if (sqlite3_prepare_v2(db,
	                       "SELECT address, not_after, expires_at FROM "
	                       "certs ORDER BY address",
	                       -1, &stmt, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		int64_t na = sqlite3_column_int64(stmt, 1);
		int64_t ex = sqlite3_column_int64(stmt, 2);

		c.total++;
		if (na < d->now) {
			c.expired++;
			cache_note(&c,
			           (const char *)sqlite3_column_text(stmt, 0));
		} else if (ex != 0 && ex < d->now) {
			c.stale++;
		}
	}
	sqlite3_finalize(stmt);
	if (c.expired > 0)
		doctor_add(d, DOCTOR_WARN, "cache",
		           "ask them for a new signed message; p11mail certs "
		           "check lists every one",
		           "%zu of %zu cached certificates have expired: %s%s",
		           c.expired, c.total, c.listed,
		           c.expired > LISTED_MAX ? ", ..." : "");
	else
		doctor_add(d, DOCTOR_OK, "cache", NULL,
		           "%zu cached certificates, none expired", c.total);
	if (c.stale > 0)
		doctor_add(d, DOCTOR_OK, "cache", NULL,
		           "%zu discovered certificates are past their "
		           "lifetime and are looked up again when used",
		           c.stale);
}

void doctor_check_store(struct doctor *d, struct doctor_p11 *p11,
                        const char *dir)
{
	char file[4096];
	sqlite3 *db = NULL;

	snprintf(file, sizeof(file), "%s/%s", dir, STORE_FILE);
	if (check_modes(d, dir, file) != 0)
		return;
	if (sqlite3_open_v2(file, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		doctor_add(d, DOCTOR_FAIL, "store",
		           "check the file's owner and mode",
		           "%s cannot be opened: %s", file,
		           db != NULL ? sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(db, 2000);
	if (check_integrity(d, db, file) != 0)
		goto out;
	check_identities(d, p11, db);
	check_anchors(d, db);
	check_cache(d, db);
out:
	sqlite3_close(db);
}
