/*
 * The certificate cache of correspondents: certificates learned from signed
 * mail, discovery or sending, looked up by address, plus negative entries
 * for discoveries that found nothing.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "store.h"

/* Parses der and checks that it carries address (already normalized). */
static enum p11mail_status cache_facts(const unsigned char *der, size_t der_len,
                                       const char *address,
                                       struct p11m_cert_facts *f)
{
	enum p11mail_status res = p11m_cert_facts(der, der_len, f);

	if (res != P11MAIL_OK)
		return res;
	if (!p11m_cert_has_address(f->x509, address)) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "the certificate %.16s... is not issued to %s",
		         f->fingerprint, address);
		p11m_cert_facts_clear(f);
		return P11MAIL_ERR_NO_CERT;
	}
	return P11MAIL_OK;
}

enum p11mail_status p11m_cache_upsert(p11mail_store *st, const char *address,
                                      const unsigned char *der, size_t der_len,
                                      const struct p11m_cert_facts *f,
                                      enum p11mail_cache_source source,
                                      const unsigned char *caps,
                                      size_t caps_len, int64_t expires_at)
{
	static const char sql[] =
	        "INSERT INTO certs (address, fingerprint, cert, not_before, "
	        "not_after, key_usage, smime_caps, source, first_seen, "
	        "expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
	        "ON CONFLICT (address, fingerprint) DO UPDATE SET "
	        "smime_caps = coalesce(excluded.smime_caps, smime_caps), "
	        "expires_at = CASE WHEN source = 2 AND excluded.source = 2 "
	        "THEN excluded.expires_at ELSE 0 END, "
	        "source = CASE WHEN excluded.source = 1 THEN 1 ELSE source END";
	sqlite3_stmt *stmt = NULL;
	enum p11mail_status res;
	int64_t now = p11m_store_now();

	res = p11m_store_prepare(st, sql, &stmt);
	if (res != P11MAIL_OK)
		return res;
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, f->fingerprint, -1, SQLITE_STATIC);
	sqlite3_bind_blob(stmt, 3, der, (int)der_len, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, f->not_before);
	sqlite3_bind_int64(stmt, 5, f->not_after);
	sqlite3_bind_int(stmt, 6, (int)f->key_usage);
	if (caps != NULL && caps_len > 0)
		sqlite3_bind_blob(stmt, 7, caps, (int)caps_len, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 8, (int)source);
	sqlite3_bind_int64(stmt, 9, now);
	sqlite3_bind_int64(stmt, 10,
	                   source == P11MAIL_CACHE_DISCOVERED ? expires_at : 0);
	res = p11m_store_change(st, stmt, "caching a certificate", P11MAIL_OK);
	sqlite3_finalize(stmt);
	return res;
}

enum p11mail_status p11mail_cache_put(p11mail_store *st, const char *address,
                                      const unsigned char *der, size_t der_len,
                                      enum p11mail_cache_source source,
                                      const unsigned char *caps,
                                      size_t caps_len, int64_t expires_at)
{
	struct p11m_cert_facts f = {0};
	enum p11mail_status res;
	char *norm;

	if (st == NULL || source < P11MAIL_CACHE_EXCHANGED ||
	    source > P11MAIL_CACHE_SENT_TO)
		return P11MAIL_ERR_ARGS;
	norm = p11m_address_normalize(address);
	if (norm == NULL)
		return P11MAIL_ERR_ARGS;
	res = cache_facts(der, der_len, norm, &f);
	if (res != P11MAIL_OK)
		goto out;
	res = p11m_store_begin(st);
	if (res == P11MAIL_OK)
		res = p11m_store_end(st,
		                     p11m_cache_upsert(st, norm, der, der_len,
		                                       &f, source, caps,
		                                       caps_len, expires_at));
out:
	p11m_cert_facts_clear(&f);
	free(norm);
	return res;
}

static int cert_from_row(sqlite3_stmt *stmt, void *elem, void *arg)
{
	struct p11mail_cert *c = elem;

	(void)arg;
	p11m_column_fingerprint(stmt, 1, c->fingerprint);
	c->not_before = sqlite3_column_int64(stmt, 3);
	c->not_after = sqlite3_column_int64(stmt, 4);
	c->key_usage = (unsigned int)sqlite3_column_int(stmt, 5);
	c->source = (enum p11mail_cache_source)sqlite3_column_int(stmt, 7);
	c->trusted = sqlite3_column_int(stmt, 8);
	c->first_seen = sqlite3_column_int64(stmt, 9);
	c->last_used = sqlite3_column_int64(stmt, 10);
	c->expires_at = sqlite3_column_int64(stmt, 11);
	if (p11m_column_text(stmt, 0, &c->address) < 0 ||
	    p11m_column_blob(stmt, 2, &c->cert, &c->cert_len) < 0 ||
	    p11m_column_blob(stmt, 6, &c->smime_caps, &c->smime_caps_len) < 0)
		return -1;
	return 0;
}

static void cert_rows_free(void *list, size_t n)
{
	p11mail_certs_free(list, n);
}

static const struct p11m_row_kind cert_rows = {sizeof(struct p11mail_cert),
                                               cert_from_row, cert_rows_free,
                                               "reading certificates"};

enum p11mail_status p11m_cert_query(p11mail_store *st, const char *sql,
                                    const char *address,
                                    struct p11mail_cert **certs, size_t *count)
{
	enum p11mail_status res;
	void *rows = NULL;

	if (certs != NULL)
		*certs = NULL;
	if (count != NULL)
		*count = 0;
	if (st == NULL || certs == NULL || count == NULL)
		return P11MAIL_ERR_ARGS;
	res = p11m_store_select(st, sql, address, &cert_rows, &rows, count);
	*certs = rows;
	return res;
}

enum p11mail_status p11mail_cache_find(p11mail_store *st, const char *address,
                                       struct p11mail_cert **certs,
                                       size_t *count)
{
	static const char sql[] =
	        "SELECT " P11M_CERT_COLUMNS " FROM certs WHERE address = ?1 "
	        "AND (expires_at = 0 OR expires_at > ?2) "
	        "ORDER BY (not_before <= ?2 AND not_after > ?2) DESC, "
	        "not_before DESC, not_after DESC";

	if (address == NULL) {
		/* The cache is searched by address only. */
		if (certs != NULL)
			*certs = NULL;
		if (count != NULL)
			*count = 0;
		return P11MAIL_ERR_ARGS;
	}
	return p11m_cert_query(st, sql, address, certs, count);
}

enum p11mail_status p11m_cache_change(p11mail_store *st, const char *sql,
                                      const char *address, const char *text,
                                      int64_t value, int *changed)
{
	sqlite3_stmt *stmt = NULL;
	enum p11mail_status res;

	res = p11m_store_prepare(st, sql, &stmt);
	if (res != P11MAIL_OK)
		return res;
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, text, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, value);
	res = p11m_store_change(st, stmt, "updating the cache", P11MAIL_OK);
	if (changed != NULL)
		*changed = sqlite3_changes(st->db);
	sqlite3_finalize(stmt);
	return res;
}

enum p11mail_status p11m_cache_change_tx(p11mail_store *st, const char *sql,
                                         const char *address, const char *text,
                                         int64_t value, int *changed)
{
	enum p11mail_status res = p11m_store_begin(st);

	if (res != P11MAIL_OK)
		return res;
	return p11m_store_end(
	        st, p11m_cache_change(st, sql, address, text, value, changed));
}

enum p11mail_status p11mail_cache_touch(p11mail_store *st, const char *address,
                                        const char *fingerprint)
{
	enum p11mail_status res;
	char fp[65], *norm;
	int changed = 0;

	if (st == NULL || p11m_fingerprint_prefix(fingerprint, fp) < 0 ||
	    (norm = p11m_address_normalize(address)) == NULL)
		return P11MAIL_ERR_ARGS;
	res = p11m_cache_change_tx(st,
	                           "UPDATE certs SET last_used = ?3 WHERE "
	                           "address = ?1 AND fingerprint = ?2",
	                           norm, fp, p11m_store_now(), &changed);
	if (res == P11MAIL_OK && changed == 0)
		res = P11MAIL_ERR_NOT_FOUND;
	free(norm);
	return res;
}

enum p11mail_status p11mail_cache_put_negative(p11mail_store *st,
                                               const char *address,
                                               int64_t expires_at)
{
	enum p11mail_status res;
	char *norm;

	if (st == NULL || (norm = p11m_address_normalize(address)) == NULL)
		return P11MAIL_ERR_ARGS;
	if (expires_at == 0)
		res = p11m_cache_change_tx(
		        st, "DELETE FROM negative WHERE address = ?1", norm,
		        NULL, 0, NULL);
	else
		res = p11m_cache_change_tx(
		        st,
		        "INSERT OR REPLACE INTO negative (address, expires_at) "
		        "VALUES (?1, ?3)",
		        norm, NULL, expires_at, NULL);
	free(norm);
	return res;
}

enum p11mail_status
p11mail_cache_is_negative(p11mail_store *st, const char *address, int *negative)
{
	static const char sql[] = "SELECT 1 FROM negative WHERE address = ?1 "
	                          "AND expires_at > ?2";
	sqlite3_stmt *stmt = NULL;
	enum p11mail_status res;
	char *norm;

	if (negative != NULL)
		*negative = 0;
	if (st == NULL || negative == NULL ||
	    (norm = p11m_address_normalize(address)) == NULL)
		return P11MAIL_ERR_ARGS;
	res = p11m_store_prepare(st, sql, &stmt);
	if (res == P11MAIL_OK) {
		sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 2, p11m_store_now());
		res = p11m_store_step_int(st, stmt, "reading the cache",
		                          negative);
	}
	sqlite3_finalize(stmt);
	free(norm);
	return res;
}

void p11mail_certs_free(struct p11mail_cert *certs, size_t count)
{
	if (certs == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free(certs[i].address);
		free(certs[i].cert);
		free(certs[i].smime_caps);
	}
	free(certs);
}
