/* Trust anchors: CA certificates and individually trusted certificates. */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "store.h"

/* Lower-cases a domain into a new string; NULL when it is malformed. */
static char *anchor_domain(const char *domain)
{
	char *res;

	if (domain == NULL || *domain == '\0' || strlen(domain) > 253 ||
	    strspn(domain,
	           "abcdefghijklmnopqrstuvwxyz"
	           "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != strlen(domain))
		return NULL;
	res = strdup(domain);
	for (char *p = res; res != NULL && *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return res;
}

static enum p11mail_status anchor_insert(p11mail_store *st,
                                         const unsigned char *der,
                                         size_t der_len, const char *domain,
                                         const struct p11m_cert_facts *f)
{
	static const char sql[] =
	        "INSERT OR IGNORE INTO anchors (fingerprint, domain, cert, "
	        "subject, is_ca, not_after, added) "
	        "VALUES (?, ?, ?, ?, ?, ?, ?)";
	sqlite3_stmt *stmt = NULL;
	enum p11mail_status res;

	res = p11m_store_prepare(st, sql, &stmt);
	if (res != P11MAIL_OK)
		return res;
	sqlite3_bind_text(stmt, 1, f->fingerprint, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, domain != NULL ? domain : "", -1,
	                  SQLITE_STATIC);
	sqlite3_bind_blob(stmt, 3, der, (int)der_len, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, f->subject, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 5, f->is_ca);
	sqlite3_bind_int64(stmt, 6, f->not_after);
	sqlite3_bind_int64(stmt, 7, p11m_store_now());
	res = p11m_store_change(st, stmt, "adding an anchor",
	                        P11MAIL_ERR_EXISTS);
	sqlite3_finalize(stmt);
	return res;
}

enum p11mail_status p11mail_anchor_add(p11mail_store *st,
                                       const unsigned char *der, size_t der_len,
                                       const char *domain)
{
	struct p11m_cert_facts f = {0};
	enum p11mail_status res;
	char *dom = NULL;

	if (st == NULL)
		return P11MAIL_ERR_ARGS;
	if (domain != NULL && (dom = anchor_domain(domain)) == NULL) {
		p11m_log(P11MAIL_LOG_ERROR, "'%s' is not a mail domain",
		         domain);
		return P11MAIL_ERR_ARGS;
	}
	res = p11m_cert_facts(der, der_len, &f);
	if (res != P11MAIL_OK)
		goto out;
	res = p11m_store_begin(st);
	if (res == P11MAIL_OK)
		res = p11m_store_end(st,
		                     anchor_insert(st, der, der_len, dom, &f));
out:
	p11m_cert_facts_clear(&f);
	free(dom);
	return res;
}

/* Counts the distinct anchors a fingerprint prefix names. */
static enum p11mail_status anchor_count(p11mail_store *st, const char *fp,
                                        int *n)
{
	static const char sql[] =
	        "SELECT count(DISTINCT fingerprint) FROM anchors "
	        "WHERE fingerprint LIKE ?1 || '%'";
	sqlite3_stmt *stmt = NULL;
	enum p11mail_status res;

	*n = 0;
	res = p11m_store_prepare(st, sql, &stmt);
	if (res != P11MAIL_OK)
		return res;
	sqlite3_bind_text(stmt, 1, fp, -1, SQLITE_STATIC);
	res = p11m_store_step_int(st, stmt, "looking up an anchor", n);
	sqlite3_finalize(stmt);
	return res;
}

static enum p11mail_status anchor_delete(p11mail_store *st, const char *fp,
                                         const char *domain)
{
	static const char sql[] =
	        "DELETE FROM anchors WHERE fingerprint LIKE ?1 || '%' "
	        "AND (?2 IS NULL OR domain = ?2)";
	sqlite3_stmt *stmt = NULL;
	enum p11mail_status res;
	int n;

	res = anchor_count(st, fp, &n);
	if (res != P11MAIL_OK)
		return res;
	if (n > 1) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "%d anchors start with %s: give more digits", n, fp);
		return P11MAIL_ERR_AMBIGUOUS;
	}
	res = p11m_store_prepare(st, sql, &stmt);
	if (res != P11MAIL_OK)
		return res;
	sqlite3_bind_text(stmt, 1, fp, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, domain, -1, SQLITE_STATIC);
	res = p11m_store_change(st, stmt, "removing an anchor",
	                        P11MAIL_ERR_NOT_FOUND);
	sqlite3_finalize(stmt);
	return res;
}

enum p11mail_status p11mail_anchor_remove(p11mail_store *st,
                                          const char *fingerprint,
                                          const char *domain)
{
	enum p11mail_status res;
	char fp[65], *dom = NULL;

	if (st == NULL || p11m_fingerprint_prefix(fingerprint, fp) < 0)
		return P11MAIL_ERR_ARGS;
	if (domain != NULL && (dom = anchor_domain(domain)) == NULL)
		return P11MAIL_ERR_ARGS;
	res = p11m_store_begin(st);
	if (res == P11MAIL_OK)
		res = p11m_store_end(st, anchor_delete(st, fp, dom));
	free(dom);
	return res;
}

static int anchor_from_row(sqlite3_stmt *stmt, void *elem, void *arg)
{
	const char *dom = (const char *)sqlite3_column_text(stmt, 1);
	struct p11mail_anchor *a = elem;

	(void)arg;
	p11m_column_fingerprint(stmt, 0, a->fingerprint);
	a->is_ca = sqlite3_column_int(stmt, 4);
	a->not_after = sqlite3_column_int64(stmt, 5);
	if (dom != NULL && *dom != '\0' && (a->domain = strdup(dom)) == NULL)
		return -1;
	if (p11m_column_blob(stmt, 2, &a->cert, &a->cert_len) < 0 ||
	    p11m_column_text(stmt, 3, &a->subject) < 0)
		return -1;
	return 0;
}

static void anchor_rows_free(void *list, size_t n)
{
	p11mail_anchors_free(list, n);
}

static const struct p11m_row_kind anchor_rows = {
        sizeof(struct p11mail_anchor), anchor_from_row, anchor_rows_free,
        "reading anchors"};

/* Anchors for domain (every domain's when NULL): global ones and its own. */
static enum p11mail_status anchor_query(p11mail_store *st, const char *domain,
                                        struct p11mail_anchor **anchors,
                                        size_t *count)
{
	static const char sql[] =
	        "SELECT fingerprint, domain, cert, subject, is_ca, not_after "
	        "FROM anchors WHERE ?1 IS NULL OR domain = '' OR domain = ?1 "
	        "ORDER BY subject, domain";
	sqlite3_stmt *stmt = NULL;
	enum p11mail_status res;
	void *rows = NULL;

	res = p11m_store_prepare(st, sql, &stmt);
	if (res != P11MAIL_OK)
		return res;
	sqlite3_bind_text(stmt, 1, domain, -1, SQLITE_STATIC);
	res = p11m_store_rows(st, stmt, &anchor_rows, NULL, &rows, count);
	*anchors = rows;
	sqlite3_finalize(stmt);
	return res;
}

enum p11mail_status p11mail_anchor_list(p11mail_store *st,
                                        struct p11mail_anchor **anchors,
                                        size_t *count)
{
	if (anchors != NULL)
		*anchors = NULL;
	if (count != NULL)
		*count = 0;
	if (st == NULL || anchors == NULL || count == NULL)
		return P11MAIL_ERR_ARGS;
	return anchor_query(st, NULL, anchors, count);
}

void p11mail_anchors_free(struct p11mail_anchor *anchors, size_t count)
{
	if (anchors == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free(anchors[i].cert);
		free(anchors[i].subject);
		free(anchors[i].domain);
	}
	free(anchors);
}

static enum p11mail_status
anchor_fill(X509_STORE *xs, const struct p11mail_anchor *list, size_t n)
{
	int partial = 0;

	for (size_t i = 0; i < n; i++) {
		const unsigned char *p = list[i].cert;
		X509 *x = d2i_X509(NULL, &p, (long)list[i].cert_len);
		int ok = x != NULL && X509_STORE_add_cert(xs, x);

		X509_free(x);
		if (!ok)
			return P11MAIL_ERR_CRYPTO;
		if (!list[i].is_ca)
			partial = 1;
	}
	/* An individually trusted certificate is its own anchor. */
	if (partial)
		X509_STORE_set_flags(xs, X509_V_FLAG_PARTIAL_CHAIN);
	return P11MAIL_OK;
}

enum p11mail_status
p11m_store_anchors_x509(p11mail_store *st, const char *domain, X509_STORE **out)
{
	struct p11mail_anchor *list = NULL;
	enum p11mail_status res;
	X509_STORE *xs = NULL;
	char *dom = NULL;
	size_t n = 0;

	if (out != NULL)
		*out = NULL;
	if (st == NULL || out == NULL)
		return P11MAIL_ERR_ARGS;
	if (domain != NULL && (dom = anchor_domain(domain)) == NULL)
		return P11MAIL_ERR_ARGS;
	res = anchor_query(st, dom, &list, &n);
	if (res != P11MAIL_OK)
		goto out;
	xs = X509_STORE_new();
	res = xs == NULL ? P11MAIL_ERR_NOMEM : anchor_fill(xs, list, n);
	if (res != P11MAIL_OK)
		goto out;
	*out = xs;
	xs = NULL;
out:
	X509_STORE_free(xs);
	p11mail_anchors_free(list, n);
	free(dom);
	return res;
}

enum p11mail_status p11mail_store_anchors(p11mail_store *st, const char *domain,
                                          struct x509_store_st **out)
{
	return p11m_store_anchors_x509(st, domain, out);
}
