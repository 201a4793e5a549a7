/* Unit tests of the workstation store (src/store*.c). */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common.h"
#include "p11mail.h"
#include "store.h"
#include "tap.h"
#include "test-store-util.h"

static char *dir;

struct cert {
	unsigned char *der;
	size_t len;
};

static struct cert make(const char *address, int from, int to)
{
	struct cert c = {NULL, 0};

	if (tsu_make_cert(address, from, to, 0, &c.der, &c.len) < 0)
		tap_skip_all("cannot make test certificates");
	return c;
}

static char *store_path(const char *name)
{
	static char path[600];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

/* A fresh store in its own subdirectory named after the case. */
static p11mail_store *fresh(const char *name)
{
	p11mail_store *st = NULL;

	tap_check(p11mail_store_open(store_path(name), &st) == P11MAIL_OK);
	return st;
}

static void fingerprint_of(const struct cert *c, char fp[65])
{
	p11m_fingerprint(c->der, c->len, fp);
}

static void test_open_creates_private_files(void)
{
	p11mail_store *st = fresh("private/nested");
	struct stat sb;
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;

	p11mail_store_close(st);
	tap_check(stat(store_path("private/nested"), &sb) == 0 &&
	          (sb.st_mode & 0777) == 0700);
	tap_check(stat(store_path("private/nested/store.db"), &sb) == 0 &&
	          (sb.st_mode & 0777) == 0600);
	tap_check(sqlite3_open(store_path("private/nested/store.db"), &db) ==
	          SQLITE_OK);
	tap_check(sqlite3_prepare_v2(db,
	                             "SELECT * FROM pragma_application_id, "
	                             "pragma_user_version, pragma_journal_mode",
	                             -1, &q, NULL) == SQLITE_OK);
	tap_check(sqlite3_step(q) == SQLITE_ROW);
	tap_check(sqlite3_column_int(q, 0) == P11M_STORE_APP_ID);
	tap_check(sqlite3_column_int(q, 1) >= 1);
	tap_check(strcmp((const char *)sqlite3_column_text(q, 2), "wal") == 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
}

static void test_identity_idempotent(void)
{
	p11mail_store *st = fresh("identity");
	struct cert c = make("Alice@North-Clinic.test", -1, 300);
	struct p11mail_identity id = {0}, *ids = NULL;
	char alice[] = "alice@north-clinic.test", bob[] = "bob@south-lab.test";
	char uri[] = "pkcs11:serial=0011;id=%01;type=private";
	char bad_uri[] = "/etc/passwd";
	size_t n = 0;

	id.address = alice;
	id.cert = c.der;
	id.cert_len = c.len;
	id.key_uri = uri;
	tap_check(p11mail_identity_add(st, &id) == P11MAIL_OK);
	tap_check(p11mail_identity_add(st, &id) == P11MAIL_ERR_EXISTS);
	tap_check(p11mail_identity_find(st, "ALICE@north-clinic.test", &ids,
	                                &n) == P11MAIL_OK);
	tap_check(n == 1 && ids != NULL &&
	          strcmp(ids[0].key_uri, id.key_uri) == 0 &&
	          ids[0].cert_len == c.len);
	p11mail_identities_free(ids, n);

	/* A certificate for somebody else is not recorded. */
	id.address = bob;
	tap_check(p11mail_identity_add(st, &id) == P11MAIL_ERR_NO_CERT);
	id.address = alice;
	id.key_uri = bad_uri;
	tap_check(p11mail_identity_add(st, &id) == P11MAIL_ERR_ARGS);
	tap_check(p11mail_identity_find(st, NULL, &ids, &n) == P11MAIL_OK &&
	          n == 1);
	p11mail_identities_free(ids, n);

	tap_check(p11mail_identity_remove(st, "alice@north-clinic.test",
	                                  NULL) == P11MAIL_OK);
	tap_check(p11mail_identity_remove(st, "alice@north-clinic.test",
	                                  NULL) == P11MAIL_ERR_NOT_FOUND);
	free(c.der);
	p11mail_store_close(st);
}

/* Expired, valid-old, valid-new and not-yet-valid: valid newest first. */
static void test_cache_newest_valid_first(void)
{
	p11mail_store *st = fresh("cache");
	const char *a = "bob@south-lab.test";
	struct cert c[4] = {make(a, -400, -10), make(a, -200, 100),
	                    make(a, -1, 400), make(a, 10, 700)};
	struct p11mail_cert *certs = NULL;
	char fp[4][65];
	size_t n = 0;

	for (int i = 0; i < 4; i++) {
		fingerprint_of(&c[i], fp[i]);
		tap_check(p11mail_cache_put(st, a, c[i].der, c[i].len,
		                            P11MAIL_CACHE_EXCHANGED, NULL, 0,
		                            0) == P11MAIL_OK);
	}
	tap_check(p11mail_cache_find(st, "Bob@South-Lab.test", &certs, &n) ==
	          P11MAIL_OK);
	tap_check(n == 4);
	if (n == 4) {
		tap_check(strcmp(certs[0].fingerprint, fp[2]) == 0);
		tap_check(strcmp(certs[1].fingerprint, fp[1]) == 0);
		tap_check(certs[0].source == P11MAIL_CACHE_EXCHANGED &&
		          certs[0].trusted == 0 && certs[0].first_seen > 0);
	}
	p11mail_certs_free(certs, n);

	/* The same certificate again refreshes, never duplicates. */
	tap_check(p11mail_cache_put(st, a, c[2].der, c[2].len,
	                            P11MAIL_CACHE_SENT_TO,
	                            (const unsigned char *)"\x30\x00", 2,
	                            0) == P11MAIL_OK);
	tap_check(p11mail_cache_find(st, a, &certs, &n) == P11MAIL_OK &&
	          n == 4 && certs[0].smime_caps_len == 2 &&
	          certs[0].source == P11MAIL_CACHE_EXCHANGED);
	p11mail_certs_free(certs, n);
	tap_check(p11mail_cache_touch(st, a, fp[2]) == P11MAIL_OK);
	tap_check(p11mail_cache_put(st, "carol@east-clinic.test", c[0].der,
	                            c[0].len, P11MAIL_CACHE_EXCHANGED, NULL, 0,
	                            0) == P11MAIL_ERR_NO_CERT);

	/* Searches by address: none or a malformed one is refused. */
	certs = (struct p11mail_cert *)1;
	n = 7;
	tap_check(p11mail_cache_find(st, NULL, &certs, &n) ==
	                  P11MAIL_ERR_ARGS &&
	          certs == NULL && n == 0);
	tap_check(p11mail_cache_find(st, "no-at-sign", &certs, &n) ==
	          P11MAIL_ERR_ARGS);
	tap_check(p11mail_trust_list(st, "no-at-sign", &certs, &n) ==
	          P11MAIL_ERR_ARGS);
	tap_check(p11mail_cache_find(st, "nobody@nowhere.test", &certs, &n) ==
	                  P11MAIL_OK &&
	          certs == NULL && n == 0);
	for (int i = 0; i < 4; i++)
		free(c[i].der);
	p11mail_store_close(st);
}

static void test_discovery_lifetime_and_negative(void)
{
	p11mail_store *st = fresh("discovery");
	const char *a = "dan@far.test";
	struct cert c = make(a, -1, 300);
	struct p11mail_cert *certs = NULL;
	size_t n = 0;
	int neg = -1;
	int64_t now = (int64_t)time(NULL);

	tap_check(p11mail_cache_put(st, a, c.der, c.len,
	                            P11MAIL_CACHE_DISCOVERED, NULL, 0,
	                            now - 5) == P11MAIL_OK);
	tap_check(p11mail_cache_find(st, a, &certs, &n) == P11MAIL_OK &&
	          n == 0);
	tap_check(p11mail_cache_put(st, a, c.der, c.len,
	                            P11MAIL_CACHE_DISCOVERED, NULL, 0,
	                            now + 3600) == P11MAIL_OK);
	tap_check(p11mail_cache_find(st, a, &certs, &n) == P11MAIL_OK &&
	          n == 1 && certs[0].expires_at == now + 3600);
	p11mail_certs_free(certs, n);

	tap_check(p11mail_cache_is_negative(st, "nobody@far.test", &neg) ==
	                  P11MAIL_OK &&
	          neg == 0);
	tap_check(p11mail_cache_put_negative(st, "nobody@far.test", now + 60) ==
	          P11MAIL_OK);
	tap_check(p11mail_cache_is_negative(st, "nobody@far.test", &neg) ==
	                  P11MAIL_OK &&
	          neg == 1);
	tap_check(p11mail_cache_put_negative(st, "nobody@far.test", 0) ==
	          P11MAIL_OK);
	tap_check(p11mail_cache_is_negative(st, "nobody@far.test", &neg) ==
	                  P11MAIL_OK &&
	          neg == 0);
	free(c.der);
	p11mail_store_close(st);
}

static void test_trust_conflict_needs_confirmation(void)
{
	p11mail_store *st = fresh("trust");
	const char *a = "bob@south-lab.test";
	struct cert c1 = make(a, -1, 300), c2 = make(a, -1, 400);
	struct cert other = make("eve@south-lab.test", -1, 300);
	enum p11mail_trust_outcome o;
	struct p11mail_cert *certs = NULL;
	char prev[65], fp1[65], fp2[65];
	size_t n = 0;

	fingerprint_of(&c1, fp1);
	fingerprint_of(&c2, fp2);
	tap_check(p11mail_trust_add(st, a, c1.der, c1.len,
	                            P11MAIL_CACHE_EXCHANGED, 0, &o,
	                            prev) == P11MAIL_OK &&
	          o == P11MAIL_TRUST_ADDED);
	tap_check(p11mail_trust_add(st, a, c1.der, c1.len,
	                            P11MAIL_CACHE_EXCHANGED, 0, &o,
	                            prev) == P11MAIL_OK &&
	          o == P11MAIL_TRUST_UNCHANGED);
	tap_check(p11mail_trust_add(st, a, c2.der, c2.len,
	                            P11MAIL_CACHE_EXCHANGED, 0, &o,
	                            prev) == P11MAIL_OK &&
	          o == P11MAIL_TRUST_CONFLICT && strcmp(prev, fp1) == 0);
	tap_check(p11mail_trust_list(st, a, &certs, &n) == P11MAIL_OK &&
	          n == 1 && strcmp(certs[0].fingerprint, fp1) == 0);
	p11mail_certs_free(certs, n);

	/* Key replacement: another address's certificate never binds. */
	tap_check(p11mail_trust_add(st, a, other.der, other.len,
	                            P11MAIL_CACHE_EXCHANGED,
	                            P11MAIL_TRUST_REPLACE, &o,
	                            prev) == P11MAIL_ERR_NO_CERT);

	tap_check(p11mail_trust_add(
	                  st, a, c2.der, c2.len, P11MAIL_CACHE_EXCHANGED,
	                  P11MAIL_TRUST_REPLACE, &o, prev) == P11MAIL_OK &&
	          o == P11MAIL_TRUST_ADDED && strcmp(prev, fp1) == 0);
	tap_check(p11mail_trust_list(st, NULL, &certs, &n) == P11MAIL_OK &&
	          n == 1 && strcmp(certs[0].fingerprint, fp2) == 0);
	p11mail_certs_free(certs, n);

	tap_check(p11mail_trust_remove(st, a, NULL) == P11MAIL_OK);
	tap_check(p11mail_trust_remove(st, a, NULL) == P11MAIL_ERR_NOT_FOUND);
	tap_check(p11mail_cache_find(st, a, &certs, &n) == P11MAIL_OK &&
	          n == 2);
	p11mail_certs_free(certs, n);
	free(c1.der);
	free(c2.der);
	free(other.der);
	p11mail_store_close(st);
}

static void test_anchors(void)
{
	p11mail_store *st = fresh("anchors");
	struct cert ca = {NULL, 0}, ee = make("x@y.test", -1, 30);
	struct p11mail_anchor *list = NULL;
	X509_STORE *xs = NULL;
	char fp[65];
	size_t n = 0;

	tap_check(tsu_make_cert("CA", -1, 700, 1, &ca.der, &ca.len) == 0);
	fingerprint_of(&ca, fp);
	tap_check(p11mail_anchor_add(st, ca.der, ca.len, NULL) == P11MAIL_OK);
	tap_check(p11mail_anchor_add(st, ca.der, ca.len, NULL) ==
	          P11MAIL_ERR_EXISTS);
	tap_check(p11mail_anchor_add(st, ee.der, ee.len, "South-Lab.test") ==
	          P11MAIL_OK);
	tap_check(p11mail_anchor_add(st, ee.der, ee.len, "bad domain!") ==
	          P11MAIL_ERR_ARGS);
	tap_check(p11mail_anchor_add(st, (const unsigned char *)"junk", 4,
	                             NULL) == P11MAIL_ERR_FORMAT);
	tap_check(p11mail_anchor_list(st, &list, &n) == P11MAIL_OK && n == 2);
	for (size_t i = 0; i < n; i++)
		if (list[i].is_ca)
			tap_check(list[i].domain == NULL &&
			          strcmp(list[i].fingerprint, fp) == 0);
		else
			tap_check(list[i].domain != NULL &&
			          strcmp(list[i].domain, "south-lab.test") ==
			                  0);
	p11mail_anchors_free(list, n);

	tap_check(p11m_store_anchors_x509(st, "north.test", &xs) == P11MAIL_OK);
	tap_check(xs != NULL &&
	          sk_X509_OBJECT_num(X509_STORE_get0_objects(xs)) == 1);
	X509_STORE_free(xs);
	tap_check(p11m_store_anchors_x509(st, "south-lab.test", &xs) ==
	          P11MAIL_OK);
	tap_check(xs != NULL &&
	          sk_X509_OBJECT_num(X509_STORE_get0_objects(xs)) == 2);
	X509_STORE_free(xs);

	tap_check(p11mail_anchor_remove(st, "00", NULL) == P11MAIL_ERR_ARGS);
	tap_check(p11mail_anchor_remove(st, fp, "other.test") ==
	          P11MAIL_ERR_NOT_FOUND);
	fp[12] = '\0';
	tap_check(p11mail_anchor_remove(st, fp, NULL) == P11MAIL_OK);
	tap_check(p11mail_anchor_remove(st, fp, NULL) == P11MAIL_ERR_NOT_FOUND);
	free(ca.der);
	free(ee.der);
	p11mail_store_close(st);
}

static void test_expiring(void)
{
	p11mail_store *st = fresh("expiring");
	struct cert soon = make("me@here.test", -300, 10);
	struct cert gone = make("old@there.test", -300, -2);
	struct cert later = make("fine@there.test", -1, 200);
	struct cert renewed_old = make("re@there.test", -300, 5);
	struct cert renewed_new = make("re@there.test", -1, 300);
	struct p11mail_identity id = {0};
	struct p11mail_expiring *items = NULL;
	char me[] = "me@here.test", uri[] = "pkcs11:serial=1;id=%01";
	size_t n = 0;

	id.address = me;
	id.cert = soon.der;
	id.cert_len = soon.len;
	id.key_uri = uri;
	tap_check(p11mail_identity_add(st, &id) == P11MAIL_OK);
	tap_check(p11mail_cache_put(st, "old@there.test", gone.der, gone.len,
	                            P11MAIL_CACHE_EXCHANGED, NULL, 0,
	                            0) == P11MAIL_OK);
	tap_check(p11mail_cache_put(st, "fine@there.test", later.der, later.len,
	                            P11MAIL_CACHE_EXCHANGED, NULL, 0,
	                            0) == P11MAIL_OK);
	tap_check(p11mail_cache_put(st, "re@there.test", renewed_old.der,
	                            renewed_old.len, P11MAIL_CACHE_EXCHANGED,
	                            NULL, 0, 0) == P11MAIL_OK);
	tap_check(p11mail_cache_put(st, "re@there.test", renewed_new.der,
	                            renewed_new.len, P11MAIL_CACHE_EXCHANGED,
	                            NULL, 0, 0) == P11MAIL_OK);

	tap_check(p11mail_certs_expiring(st, 30, &items, &n) == P11MAIL_OK);
	tap_check(n == 2);
	if (n == 2) {
		tap_check(strcmp(items[0].address, "old@there.test") == 0 &&
		          !items[0].identity);
		tap_check(strcmp(items[1].address, "me@here.test") == 0 &&
		          items[1].identity);
	}
	p11mail_expiring_free(items, n);
	tap_check(p11mail_certs_expiring(st, 0, &items, &n) == P11MAIL_OK &&
	          n == 1);
	p11mail_expiring_free(items, n);
	tap_check(p11mail_certs_expiring(st, -1, &items, &n) ==
	          P11MAIL_ERR_ARGS);
	free(soon.der);
	free(gone.der);
	free(later.der);
	free(renewed_old.der);
	free(renewed_new.der);
	p11mail_store_close(st);
}

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok = f != NULL && fwrite(data, 1, len, f) == len;

	if (f != NULL && fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

/* Reads a whole file into a new buffer (for before/after comparisons). */
static unsigned char *read_file(const char *path, size_t *len)
{
	unsigned char *buf = NULL;
	struct stat sb;
	FILE *f;

	*len = 0;
	if (stat(path, &sb) < 0 || (f = fopen(path, "rb")) == NULL)
		return NULL;
	buf = malloc((size_t)sb.st_size + 1);
	if (buf != NULL)
		*len = fread(buf, 1, (size_t)sb.st_size, f);
	fclose(f);
	return buf;
}

static int file_is(const char *path, const unsigned char *want, size_t len)
{
	size_t got_len;
	unsigned char *got = read_file(path, &got_len);
	int same = got != NULL && got_len == len && memcmp(got, want, len) == 0;

	free(got);
	return same;
}

static void test_foreign_file_untouched(void)
{
	static const char text[] = "this is somebody's notes, not a store\n";
	p11mail_store *st = NULL;

	mkdir(store_path("foreign"), 0700);
	tap_check(write_file(store_path("foreign/store.db"), text,
	                     sizeof(text)) == 0);
	tsu_last_log[0] = '\0';
	tap_check(p11mail_store_open(store_path("foreign"), &st) ==
	          P11MAIL_ERR_STORE);
	tap_check(st == NULL);
	tap_check(strstr(tsu_last_log, "not a p11mail store") != NULL);
	tap_check(file_is(store_path("foreign/store.db"),
	                  (const unsigned char *)text, sizeof(text)));
}

static void test_other_sqlite_untouched(void)
{
	p11mail_store *st = NULL;
	unsigned char *before;
	sqlite3 *db = NULL;
	size_t len;

	mkdir(store_path("othersql"), 0700);
	tap_check(sqlite3_open(store_path("othersql/store.db"), &db) ==
	          SQLITE_OK);
	tap_check(sqlite3_exec(db,
	                       "CREATE TABLE mine (x); "
	                       "INSERT INTO mine VALUES (42)",
	                       NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	before = read_file(store_path("othersql/store.db"), &len);
	tsu_last_log[0] = '\0';
	tap_check(p11mail_store_open(store_path("othersql"), &st) ==
	          P11MAIL_ERR_STORE);
	tap_check(strstr(tsu_last_log, "another program") != NULL);
	tap_check(before != NULL &&
	          file_is(store_path("othersql/store.db"), before, len));
	free(before);
}

static void test_newer_schema_refused(void)
{
	p11mail_store *st = fresh("newer");
	sqlite3 *db = NULL;

	p11mail_store_close(st);
	tap_check(sqlite3_open(store_path("newer/store.db"), &db) == SQLITE_OK);
	tap_check(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL,
	                       NULL) == SQLITE_OK);
	sqlite3_close(db);
	st = NULL;
	tsu_last_log[0] = '\0';
	tap_check(p11mail_store_open(store_path("newer"), &st) ==
	          P11MAIL_ERR_STORE);
	tap_check(strstr(tsu_last_log, "newer") != NULL);
}

/* Overwrites every page after the first with garbage. */
static void damage(const char *path)
{
	unsigned char junk[4096];
	struct stat sb;
	int fd = open(path, O_WRONLY);

	memset(junk, 0xa5, sizeof(junk));
	tap_check(fd >= 0 && fstat(fd, &sb) == 0 && sb.st_size > 8192);
	for (off_t at = 4096; fd >= 0 && at < sb.st_size; at += 4096)
		tap_check(pwrite(fd, junk, sizeof(junk), at) ==
		          (ssize_t)sizeof(junk));
	if (fd >= 0)
		close(fd);
}

static void test_damaged_store_reported(void)
{
	p11mail_store *st = fresh("damaged");
	struct cert c = make("bob@south-lab.test", -1, 300);
	struct p11mail_cert *certs = NULL;
	enum p11mail_status res;
	unsigned char *before;
	size_t n = 0, len;

	for (int i = 0; i < 50; i++)
		p11mail_cache_put(st, "bob@south-lab.test", c.der, c.len,
		                  P11MAIL_CACHE_EXCHANGED, NULL, 0, 0);
	p11mail_store_close(st);
	damage(store_path("damaged/store.db"));
	before = read_file(store_path("damaged/store.db"), &len);

	tsu_last_log[0] = '\0';
	st = NULL;
	res = p11mail_store_open(store_path("damaged"), &st);
	if (res == P11MAIL_OK) {
		res = p11mail_cache_find(st, "bob@south-lab.test", &certs, &n);
		if (res == P11MAIL_OK)
			res = p11mail_cache_put(st, "bob@south-lab.test", c.der,
			                        c.len, P11MAIL_CACHE_EXCHANGED,
			                        NULL, 0, 0);
		p11mail_certs_free(certs, n);
		p11mail_store_close(st);
	}
	tap_check(res == P11MAIL_ERR_STORE);
	tap_diag("message: %s", tsu_last_log);
	tap_check(strstr(tsu_last_log, "damaged") != NULL);
	tap_check(before != NULL &&
	          file_is(store_path("damaged/store.db"), before, len));
	free(before);
	free(c.der);
}

static void test_locked_store_bounded_wait(void)
{
	p11mail_store *st = fresh("locked");
	struct cert ca = {NULL, 0};
	sqlite3 *other = NULL;
	struct timespec t0, t1;
	double waited;

	tap_check(tsu_make_cert("CA", -1, 700, 1, &ca.der, &ca.len) == 0);
	tap_check(sqlite3_open(store_path("locked/store.db"), &other) ==
	          SQLITE_OK);
	tap_check(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) ==
	          SQLITE_OK);
	p11mail_store_set_wait(st, 300);
	tsu_last_log[0] = '\0';
	clock_gettime(CLOCK_MONOTONIC, &t0);
	tap_check(p11mail_anchor_add(st, ca.der, ca.len, NULL) ==
	          P11MAIL_ERR_STORE_BUSY);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	waited = (double)(t1.tv_sec - t0.tv_sec) +
	         (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	tap_diag("waited %.2f s: %s", waited, tsu_last_log);
	tap_check(waited >= 0.25 && waited < 3.0);
	tap_check(strstr(tsu_last_log, "locked by another process") != NULL);

	sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(other);
	tap_check(p11mail_anchor_add(st, ca.der, ca.len, NULL) == P11MAIL_OK);
	free(ca.der);
	p11mail_store_close(st);
}

static void test_store_dir_resolution(void)
{
	struct p11mail_config *cfg = NULL;
	char *d = NULL;

	unsetenv("P11MAIL_STORE");
	setenv("XDG_DATA_HOME", "/nonexistent/xdg", 1);
	tap_check(p11mail_store_dir(NULL, "/given", 0, &d) == P11MAIL_OK &&
	          strcmp(d, "/given") == 0);
	free(d);
	tap_check(p11mail_store_dir(NULL, NULL, 1, &d) == P11MAIL_OK &&
	          strcmp(d, "/var/lib/p11mail") == 0);
	free(d);
	tap_check(p11mail_store_dir(NULL, NULL, 0, &d) == P11MAIL_OK &&
	          strcmp(d, "/nonexistent/xdg/p11mail") == 0);
	free(d);
	tap_check(p11mail_config_parse("[store]\npath = /from/config\n", "t",
	                               &cfg) == P11MAIL_OK);
	tap_check(p11mail_store_dir(cfg, NULL, 0, &d) == P11MAIL_OK &&
	          strcmp(d, "/from/config") == 0);
	free(d);
	setenv("P11MAIL_STORE", "/from/env", 1);
	tap_check(p11mail_store_dir(cfg, NULL, 0, &d) == P11MAIL_OK &&
	          strcmp(d, "/from/env") == 0);
	free(d);
	/* An explicit --system beats the environment. */
	tap_check(p11mail_store_dir(cfg, NULL, 1, &d) == P11MAIL_OK &&
	          strcmp(d, "/var/lib/p11mail") == 0);
	free(d);
	unsetenv("P11MAIL_STORE");
	p11mail_config_free(cfg);
}

static const struct tap_case cases[] = {
        {"test_open_creates_private_files", test_open_creates_private_files},
        {"test_identity_idempotent", test_identity_idempotent},
        {"test_cache_newest_valid_first", test_cache_newest_valid_first},
        {"test_discovery_lifetime_and_negative",
         test_discovery_lifetime_and_negative},
        {"test_trust_conflict_needs_confirmation",
         test_trust_conflict_needs_confirmation},
        {"test_anchors", test_anchors},
        {"test_expiring", test_expiring},
        {"test_foreign_file_untouched", test_foreign_file_untouched},
        {"test_other_sqlite_untouched", test_other_sqlite_untouched},
        {"test_newer_schema_refused", test_newer_schema_refused},
        {"test_damaged_store_reported", test_damaged_store_reported},
        {"test_locked_store_bounded_wait", test_locked_store_bounded_wait},
        {"test_store_dir_resolution", test_store_dir_resolution},
};

int main(void)
{
	return tsu_run(cases, P11M_ARRAY_SIZE(cases), &dir);
}
