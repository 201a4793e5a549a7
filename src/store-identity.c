/* Own identities: certificate, chain and the URI of the key on the token. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "store.h"

#define IDENTITY_COLUMNS                                                       \
	"address, fingerprint, cert, chain, key_uri, not_before, not_after, "  \
	"added"

/* Inserts the row; EXISTS when the same identity is already there. */
static enum p11mail_status identity_insert(p11mail_store *st,
                                           const char *address,
                                           const struct p11mail_identity *id,
                                           const struct p11m_cert_facts *f)
{
	static const char sql[] =
	        "INSERT INTO identities (" IDENTITY_COLUMNS ") "
	        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
	        "ON CONFLICT (address, fingerprint) DO UPDATE SET "
	        "chain = coalesce(excluded.chain, chain), "
	        "key_uri = excluded.key_uri "
	        "WHERE (excluded.chain IS NOT NULL AND "
	        "chain IS NOT excluded.chain) OR "
	        "key_uri IS NOT excluded.key_uri";
	sqlite3_stmt *stmt = NULL;
	enum p11mail_status res;

	res = p11m_store_prepare(st, sql, &stmt);
	if (res != P11MAIL_OK)
		return res;
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, f->fingerprint, -1, SQLITE_STATIC);
	sqlite3_bind_blob(stmt, 3, id->cert, (int)id->cert_len, SQLITE_STATIC);
	if (id->chain != NULL && id->chain_len > 0)
		sqlite3_bind_blob(stmt, 4, id->chain, (int)id->chain_len,
		                  SQLITE_STATIC);
	sqlite3_bind_text(stmt, 5, id->key_uri, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 6, f->not_before);
	sqlite3_bind_int64(stmt, 7, f->not_after);
	sqlite3_bind_int64(stmt, 8, p11m_store_now());
	res = p11m_store_change(st, stmt, "recording the identity",
	                        P11MAIL_ERR_EXISTS);
	sqlite3_finalize(stmt);
	return res;
}

enum p11mail_status p11mail_identity_add(p11mail_store *st,
                                         const struct p11mail_identity *id)
{
	struct p11m_cert_facts f = {0};
	enum p11mail_status res;
	char *address = NULL;

	if (st == NULL || id == NULL || id->key_uri == NULL ||
	    strncmp(id->key_uri, "pkcs11:", 7) != 0)
		return P11MAIL_ERR_ARGS;
	address = p11m_address_normalize(id->address);
	if (address == NULL)
		return P11MAIL_ERR_ARGS;

	res = p11m_cert_facts(id->cert, id->cert_len, &f);
	if (res != P11MAIL_OK)
		goto out;
	if (!p11m_cert_has_address(f.x509, address)) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "the certificate is not issued to %s", address);
		res = P11MAIL_ERR_NO_CERT;
		goto out;
	}
	res = p11m_store_begin(st);
	if (res != P11MAIL_OK)
		goto out;
	res = p11m_store_end(st, identity_insert(st, address, id, &f));
	/* EXISTS rolled back an empty transaction: nothing to keep anyway. */
out:
	p11m_cert_facts_clear(&f);
	free(address);
	return res;
}

static int identity_from_row(sqlite3_stmt *stmt, void *elem, void *arg)
{
	struct p11mail_identity *id = elem;

	(void)arg;
	p11m_column_fingerprint(stmt, 1, id->fingerprint);
	id->not_before = sqlite3_column_int64(stmt, 5);
	id->not_after = sqlite3_column_int64(stmt, 6);
	id->added = sqlite3_column_int64(stmt, 7);
	if (p11m_column_text(stmt, 0, &id->address) < 0 ||
	    p11m_column_blob(stmt, 2, &id->cert, &id->cert_len) < 0 ||
	    p11m_column_blob(stmt, 3, &id->chain, &id->chain_len) < 0 ||
	    p11m_column_text(stmt, 4, &id->key_uri) < 0)
		return -1;
	return 0;
}

static void identity_rows_free(void *list, size_t n)
{
	p11mail_identities_free(list, n);
}

static const struct p11m_row_kind identity_rows = {
        sizeof(struct p11mail_identity), identity_from_row, identity_rows_free,
        "reading identities"};

enum p11mail_status p11mail_identity_find(p11mail_store *st,
                                          const char *address,
                                          struct p11mail_identity **ids,
                                          size_t *count)
{
	static const char sql[] =
	        "SELECT " IDENTITY_COLUMNS " FROM identities "
	        "WHERE ?1 IS NULL OR address = ?1 "
	        "ORDER BY (not_before <= ?2 AND not_after > ?2) DESC, "
	        "not_after DESC, address";
	enum p11mail_status res;
	void *rows = NULL;

	if (ids != NULL)
		*ids = NULL;
	if (count != NULL)
		*count = 0;
	if (st == NULL || ids == NULL || count == NULL)
		return P11MAIL_ERR_ARGS;
	res = p11m_store_select(st, sql, address, &identity_rows, &rows, count);
	*ids = rows;
	return res;
}

enum p11mail_status p11mail_identity_remove(p11mail_store *st,
                                            const char *address,
                                            const char *fingerprint)
{
	static const char sql[] =
	        "DELETE FROM identities WHERE address = ?1 AND "
	        "(?2 IS NULL OR fingerprint LIKE ?2 || '%')";
	sqlite3_stmt *stmt = NULL;
	enum p11mail_status res;
	char *norm;

	if (st == NULL || (norm = p11m_address_normalize(address)) == NULL)
		return P11MAIL_ERR_ARGS;
	res = p11m_store_begin(st);
	if (res != P11MAIL_OK)
		goto out;
	res = p11m_store_prepare(st, sql, &stmt);
	if (res == P11MAIL_OK) {
		sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 2, fingerprint, -1, SQLITE_STATIC);
		res = p11m_store_change(st, stmt, "removing an identity",
		                        P11MAIL_ERR_NOT_FOUND);
	}
	sqlite3_finalize(stmt);
	res = p11m_store_end(st, res);
out:
	free(norm);
	return res;
}

void p11mail_identities_free(struct p11mail_identity *ids, size_t count)
{
	if (ids == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free(ids[i].address);
		free(ids[i].cert);
		free(ids[i].chain);
		free(ids[i].key_uri);
	}
	free(ids);
}
