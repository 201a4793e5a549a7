/*
 * A helper for the store's fault tests: writes certificates into a store
 * the way p11mail does (one transaction each, or all in one), or checks a
 * store's integrity and counts its rows.
 *
 *   test-store-writer write DIR PREFIX COUNT [one-transaction]
 *   test-store-writer check DIR
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "p11mail.h"
#include "store.h"
#include "test-store-util.h"

static void log_stderr(void *arg, enum p11mail_log_level level,
                       const char *text)
{
	fprintf(stderr, "test-store-writer: %s\n", text);
}

/* Every certificate of this process goes to PREFIX-N@writers.test. */
static enum p11mail_status put_one(p11mail_store *st, const char *prefix,
                                   long i, int in_tx)
{
	struct p11m_cert_facts f;
	enum p11mail_status res;
	unsigned char *der = NULL;
	char address[128];
	size_t len = 0;

	snprintf(address, sizeof(address), "%s-%ld@writers.test", prefix, i);
	if (tsu_make_cert(address, -1, 300, 0, &der, &len) < 0)
		return P11MAIL_ERR_CRYPTO;
	if (!in_tx) {
		res = p11mail_cache_put(st, address, der, len,
		                        P11MAIL_CACHE_EXCHANGED, NULL, 0, 0);
		free(der);
		return res;
	}
	res = p11m_cert_facts(der, len, &f);
	if (res == P11MAIL_OK)
		res = p11m_cache_upsert(st, address, der, len, &f,
		                        P11MAIL_CACHE_EXCHANGED, NULL, 0, 0);
	p11m_cert_facts_clear(&f);
	free(der);
	return res;
}

static int do_write(p11mail_store *st, const char *prefix, long count,
                    int one_tx)
{
	enum p11mail_status res = P11MAIL_OK;

	if (one_tx && (res = p11m_store_begin(st)) != P11MAIL_OK)
		return 1;
	if (one_tx) {
		printf("begun\n");
		fflush(stdout);
	}
	for (long i = 0; i < count && res == P11MAIL_OK; i++)
		res = put_one(st, prefix, i, one_tx);
	if (one_tx)
		res = p11m_store_end(st, res);
	if (res != P11MAIL_OK) {
		fprintf(stderr, "test-store-writer: %s\n",
		        p11mail_strerror(res));
		return 1;
	}
	printf("wrote %ld\n", count);
	return 0;
}

static long query_long(p11mail_store *st, const char *sql)
{
	sqlite3_stmt *q = NULL;
	long v = -1;

	if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return v;
}

/* Prints "rows N complete M integrity ok|bad". */
static int do_check(p11mail_store *st)
{
	sqlite3_stmt *q = NULL;
	const char *verdict = "bad";
	long rows, complete;

	if (sqlite3_prepare_v2(st->db, "PRAGMA integrity_check", -1, &q,
	                       NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW &&
	    strcmp((const char *)sqlite3_column_text(q, 0), "ok") == 0)
		verdict = "ok";
	sqlite3_finalize(q);
	rows = query_long(st, "SELECT count(*) FROM certs");
	complete = query_long(st, "SELECT count(*) FROM certs WHERE "
	                          "length(cert) > 100 AND "
	                          "length(fingerprint) = 64 AND not_after > 0");
	printf("rows %ld complete %ld integrity %s\n", rows, complete, verdict);
	return strcmp(verdict, "ok") == 0 && rows == complete ? 0 : 1;
}

int main(int argc, char **argv)
{
	p11mail_store *st = NULL;
	enum p11mail_status res;
	int rc;

	p11mail_set_log(log_stderr, NULL);
	if (argc < 3 || (strcmp(argv[1], "write") == 0 && argc < 5)) {
		fprintf(stderr, "usage: test-store-writer write DIR PREFIX "
		                "COUNT [one-transaction] | check DIR\n");
		return 2;
	}
	res = p11mail_store_open(argv[2], &st);
	if (res != P11MAIL_OK)
		return 1;
	if (strcmp(argv[1], "write") == 0)
		rc = do_write(st, argv[3], strtol(argv[4], NULL, 10), argc > 5);
	else
		rc = do_check(st);
	p11mail_store_close(st);
	return rc;
}
