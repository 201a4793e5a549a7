/*
 * Trust in correspondents' certificates, one per address, and the expiry
 * report over identities and the cache.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "store.h"

/* The fingerprint of another trusted certificate of address, if any. */
static enum p11mail_status trust_other(p11mail_store *st, const char *address,
                                       const char *fp, char other[65],
                                       int *self)
{
	static const char sql[] = "SELECT fingerprint FROM certs "
	                          "WHERE address = ?1 AND trusted = 1";
	sqlite3_stmt *stmt = NULL;
	enum p11mail_status res;
	int rc;

	other[0] = '\0';
	*self = 0;
	res = p11m_store_prepare(st, sql, &stmt);
	if (res != P11MAIL_OK)
		return res;
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(stmt, 0);

		if (t != NULL && strcmp(t, fp) == 0)
			*self = 1;
		else if (t != NULL)
			snprintf(other, 65, "%s", t);
	}
	if (rc != SQLITE_DONE)
		res = p11m_store_fail(st, rc, "reading trust");
	sqlite3_finalize(stmt);
	return res;
}

/* Inside a transaction: decides, then marks fp as the trusted one. */
static enum p11mail_status
trust_apply(p11mail_store *st, const char *address, const unsigned char *der,
            size_t der_len, const struct p11m_cert_facts *f,
            enum p11mail_cache_source source, unsigned int flags,
            enum p11mail_trust_outcome *outcome, char previous[65])
{
	enum p11mail_status res;
	int self;

	res = trust_other(st, address, f->fingerprint, previous, &self);
	if (res != P11MAIL_OK)
		return res;
	if (previous[0] != '\0' && !(flags & P11MAIL_TRUST_REPLACE)) {
		*outcome = P11MAIL_TRUST_CONFLICT;
		return P11MAIL_OK;
	}
	if (self && previous[0] == '\0') {
		*outcome = P11MAIL_TRUST_UNCHANGED;
		return P11MAIL_OK;
	}
	res = p11m_cache_upsert(st, address, der, der_len, f, source, NULL, 0,
	                        0);
	if (res != P11MAIL_OK)
		return res;
	res = p11m_cache_change(
	        st,
	        "UPDATE certs SET trusted = (fingerprint = ?2), "
	        "expires_at = CASE WHEN fingerprint = ?2 THEN 0 "
	        "ELSE expires_at END "
	        "WHERE address = ?1 AND (trusted = 1 OR fingerprint = ?2)",
	        address, f->fingerprint, 0, NULL);
	if (res == P11MAIL_OK)
		*outcome = P11MAIL_TRUST_ADDED;
	return res;
}

enum p11mail_status p11mail_trust_add(p11mail_store *st, const char *address,
                                      const unsigned char *der, size_t der_len,
                                      enum p11mail_cache_source source,
                                      unsigned int flags,
                                      enum p11mail_trust_outcome *outcome,
                                      char previous[65])
{
	struct p11m_cert_facts f = {0};
	enum p11mail_trust_outcome got = 0;
	enum p11mail_status res;
	char prev[65] = "";
	char *norm = NULL;

	if (outcome != NULL)
		*outcome = 0;
	if (previous != NULL)
		previous[0] = '\0';
	if (st == NULL || outcome == NULL || previous == NULL ||
	    source < P11MAIL_CACHE_EXCHANGED || source > P11MAIL_CACHE_SENT_TO)
		return P11MAIL_ERR_ARGS;
	norm = p11m_address_normalize(address);
	if (norm == NULL)
		return P11MAIL_ERR_ARGS;
	res = p11m_cert_facts(der, der_len, &f);
	if (res != P11MAIL_OK)
		goto out;
	if (!p11m_cert_has_address(f.x509, norm)) {
		/* Only a certificate bound to the verified address counts. */
		p11m_log(P11MAIL_LOG_ERROR,
		         "the certificate is not issued to %s: not trusted",
		         norm);
		res = P11MAIL_ERR_NO_CERT;
		goto out;
	}
	res = p11m_store_begin(st);
	if (res != P11MAIL_OK)
		goto out;
	res = trust_apply(st, norm, der, der_len, &f, source, flags, &got,
	                  prev);
	res = p11m_store_end(st, res);
	if (res == P11MAIL_OK) {
		*outcome = got;
		memcpy(previous, prev, sizeof(prev));
	}
out:
	p11m_cert_facts_clear(&f);
	free(norm);
	return res;
}

enum p11mail_status p11mail_trust_remove(p11mail_store *st, const char *address,
                                         const char *fingerprint)
{
	enum p11mail_status res;
	char fp[65], *norm;
	int changed = 0;

	if (st == NULL ||
	    (fingerprint != NULL && p11m_fingerprint_prefix(fingerprint, fp)))
		return P11MAIL_ERR_ARGS;
	norm = p11m_address_normalize(address);
	if (norm == NULL)
		return P11MAIL_ERR_ARGS;
	res = p11m_cache_change_tx(
	        st,
	        "UPDATE certs SET trusted = 0 WHERE address = ?1 AND "
	        "trusted = 1 AND (?2 IS NULL OR fingerprint LIKE ?2 || '%')",
	        norm, fingerprint != NULL ? fp : NULL, 0, &changed);
	if (res == P11MAIL_OK && changed == 0)
		res = P11MAIL_ERR_NOT_FOUND;
	free(norm);
	return res;
}

enum p11mail_status p11mail_trust_list(p11mail_store *st, const char *address,
                                       struct p11mail_cert **certs,
                                       size_t *count)
{
	static const char sql[] =
	        "SELECT " P11M_CERT_COLUMNS " FROM certs WHERE trusted = 1 "
	        "AND (?1 IS NULL OR address = ?1) "
	        "ORDER BY address, not_after DESC";

	return p11m_cert_query(st, sql, address, certs, count);
}

/* Decodes one row of the expiry report; arg points to the current time. */
static int expiring_from_row(sqlite3_stmt *stmt, void *elem, void *arg)
{
	const char *addr = (const char *)sqlite3_column_text(stmt, 2);
	int64_t now = *(const int64_t *)arg;
	struct p11mail_expiring *e = elem;

	e->identity = sqlite3_column_int(stmt, 0);
	e->trusted = sqlite3_column_int(stmt, 1);
	p11m_column_fingerprint(stmt, 3, e->fingerprint);
	e->not_after = sqlite3_column_int64(stmt, 4);
	e->expired = e->not_after <= now;
	e->days_left = e->expired ? 0 : (long)((e->not_after - now) / 86400);
	e->address = strdup(addr != NULL ? addr : "");
	return e->address == NULL ? -1 : 0;
}

static void expiring_rows_free(void *list, size_t n)
{
	p11mail_expiring_free(list, n);
}

static const struct p11m_row_kind expiring_rows = {
        sizeof(struct p11mail_expiring), expiring_from_row, expiring_rows_free,
        "reading certificates"};

enum p11mail_status p11mail_certs_expiring(p11mail_store *st, int days,
                                           struct p11mail_expiring **items,
                                           size_t *count)
{
	/* A certificate replaced by one valid past the horizon is not news. */
	static const char sql[] =
	        "SELECT 1, 0, address, fingerprint, not_after FROM identities "
	        "i "
	        "WHERE not_after < ?2 AND NOT EXISTS (SELECT 1 FROM identities "
	        "j WHERE j.address = i.address AND j.not_after >= ?2 "
	        "AND j.not_before <= ?1) "
	        "UNION ALL "
	        "SELECT 0, trusted, address, fingerprint, not_after FROM certs "
	        "c "
	        "WHERE not_after < ?2 AND (expires_at = 0 OR expires_at > ?1) "
	        "AND NOT EXISTS (SELECT 1 FROM certs d WHERE d.address = "
	        "c.address AND d.not_after >= ?2 AND d.not_before <= ?1) "
	        "ORDER BY 5, 3";
	sqlite3_stmt *stmt = NULL;
	enum p11mail_status res;
	int64_t now = p11m_store_now();
	void *rows = NULL;

	if (items != NULL)
		*items = NULL;
	if (count != NULL)
		*count = 0;
	if (st == NULL || items == NULL || count == NULL || days < 0 ||
	    days > 36500)
		return P11MAIL_ERR_ARGS;
	res = p11m_store_prepare(st, sql, &stmt);
	if (res == P11MAIL_OK) {
		sqlite3_bind_int64(stmt, 1, now);
		sqlite3_bind_int64(stmt, 2, now + (int64_t)days * 86400);
		res = p11m_store_rows(st, stmt, &expiring_rows, &now, &rows,
		                      count);
		*items = rows;
	}
	sqlite3_finalize(stmt);
	return res;
}

void p11mail_expiring_free(struct p11mail_expiring *items, size_t count)
{
	if (items == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free(items[i].address);
	free(items);
}
