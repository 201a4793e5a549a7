/*
 * Unit tests of examining a store (src/store-check.c): the read-only open
 * that never creates or changes a file, the check of foreign, damaged and
 * newer files, and the listing of the whole cache.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common.h"
#include "p11mail.h"
#include "store.h"
#include "tap.h"
#include "test-store-util.h"

static char *dir;

static char *sub(const char *name)
{
	static char path[600];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

/* Makes dir/name/store.db with sql run in it; 0 or -1. */
static int raw_db(const char *name, const char *sql)
{
	char path[700];
	sqlite3 *db = NULL;
	int rc;

	if (mkdir(sub(name), 0700) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/store.db", sub(name));
	rc = sqlite3_open(path, &db);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

static void test_store_file(void)
{
	char *f = p11mail_store_file("/some/dir");

	tap_check(f != NULL && strcmp(f, "/some/dir/store.db") == 0);
	free(f);
	tap_check(p11mail_store_file(NULL) == NULL);
}

static void test_missing_store_not_created(void)
{
	p11mail_store *st = (p11mail_store *)1;
	struct stat sb;

	tap_check(p11mail_store_open_readonly(sub("none"), &st) ==
	          P11MAIL_ERR_NOT_FOUND);
	tap_check(st == NULL);
	tap_check(strstr(tsu_last_log, "no store at") != NULL);
	tap_check(stat(sub("none"), &sb) != 0);
	tap_check(p11mail_store_open_readonly(NULL, &st) == P11MAIL_ERR_ARGS);
}

static void test_healthy_store(void)
{
	struct p11mail_store_report r;
	struct p11mail_cert *certs = NULL;
	p11mail_store *st = NULL;
	unsigned char *der = NULL;
	size_t len = 0, n = 9;

	if (!tap_check(p11mail_store_open(sub("ok"), &st) == P11MAIL_OK))
		return;
	/* an expired certificate and a discovery past its lifetime */
	if (tsu_make_cert("old@example.test", -60, -30, 0, &der, &len) == 0)
		tap_check(p11mail_cache_put(st, "old@example.test", der, len,
		                            P11MAIL_CACHE_EXCHANGED, NULL, 0,
		                            0) == P11MAIL_OK);
	free(der);
	der = NULL;
	if (tsu_make_cert("gone@example.test", -1, 300, 0, &der, &len) == 0)
		tap_check(p11mail_cache_put(st, "gone@example.test", der, len,
		                            P11MAIL_CACHE_DISCOVERED, NULL, 0,
		                            p11m_store_now() - 10) ==
		          P11MAIL_OK);
	free(der);
	p11mail_store_close(st);
	st = NULL;

	if (!tap_check(p11mail_store_open_readonly(sub("ok"), &st) ==
	               P11MAIL_OK))
		return;
	tap_check(p11mail_store_check(st, &r) == P11MAIL_OK);
	tap_check(!r.foreign && !r.damaged);
	tap_check(r.schema == r.schema_current && r.schema > 0);
	/* both rows, though the cache's search would leave them out */
	tap_check(p11mail_cache_list(st, NULL, &certs, &n) == P11MAIL_OK);
	tap_check(n == 2 && strcmp(certs[0].address, "gone@example.test") == 0);
	p11mail_certs_free(certs, n);
	tap_check(p11mail_cache_list(st, "old@example.test", &certs, &n) ==
	          P11MAIL_OK);
	tap_check(n == 1);
	p11mail_certs_free(certs, n);
	/* read-only: a change is refused */
	tap_check(p11mail_cache_put_negative(st, "x@example.test", 5) !=
	          P11MAIL_OK);
	p11mail_store_close(st);
}

static void test_foreign_database(void)
{
	struct p11mail_store_report r;
	p11mail_store *st = NULL;

	if (!tap_check(raw_db("foreign", "PRAGMA application_id = 42; "
	                                 "CREATE TABLE t (x);") == 0))
		return;
	tap_check(p11mail_store_open_readonly(sub("foreign"), &st) ==
	          P11MAIL_OK);
	tap_check(p11mail_store_check(st, &r) == P11MAIL_OK && r.foreign &&
	          !r.damaged);
	p11mail_store_close(st);
}

static void test_newer_schema(void)
{
	struct p11mail_store_report r;
	p11mail_store *st = NULL;
	char sql[128];

	snprintf(sql, sizeof(sql),
	         "PRAGMA application_id = %d; PRAGMA user_version = %d; "
	         "CREATE TABLE t (x);",
	         P11M_STORE_APP_ID, P11M_STORE_SCHEMA + 1);
	if (!tap_check(raw_db("newer", sql) == 0))
		return;
	tap_check(p11mail_store_open_readonly(sub("newer"), &st) == P11MAIL_OK);
	tap_check(p11mail_store_check(st, &r) == P11MAIL_OK && !r.foreign &&
	          !r.damaged && r.schema == P11M_STORE_SCHEMA + 1);
	p11mail_store_close(st);
}

static void test_text_file(void)
{
	struct p11mail_store_report r;
	p11mail_store *st = NULL;
	char path[700];
	FILE *f;

	if (!tap_check(mkdir(sub("text"), 0700) == 0))
		return;
	snprintf(path, sizeof(path), "%s/store.db", sub("text"));
	f = fopen(path, "w");
	if (!tap_check(f != NULL))
		return;
	fputs("not a database at all, just text\n", f);
	fclose(f);
	tap_check(p11mail_store_open_readonly(sub("text"), &st) == P11MAIL_OK);
	tap_check(p11mail_store_check(st, &r) == P11MAIL_OK && r.damaged &&
	          r.detail[0] != '\0');
	tap_check(p11mail_store_check(NULL, &r) == P11MAIL_ERR_ARGS);
	p11mail_store_close(st);
}

static const struct tap_case cases[] = {
        {"test_store_file", test_store_file},
        {"test_missing_store_not_created", test_missing_store_not_created},
        {"test_healthy_store", test_healthy_store},
        {"test_foreign_database", test_foreign_database},
        {"test_newer_schema", test_newer_schema},
        {"test_text_file", test_text_file},
};

int main(void)
{
	return tsu_run(cases, P11M_ARRAY_SIZE(cases), &dir);
}
