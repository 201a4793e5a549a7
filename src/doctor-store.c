/*
 * p11mail doctor: the workstation store, read-only.  The store is opened
 * with p11mail_store_open_readonly, so that a damaged, foreign or newer
 * store is examined without being created, migrated or repaired.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "doctor.h"

#define RESTORE_REMEDY                                                         \
	"restore the file from a backup, or move it away and reinstall "       \
	"identities and anchors (the cache fills again)"
#define LISTED_MAX 5

/*
 * The store path names something that is not a directory: most likely the
 * store file itself, else a file in the way.
 */
static void not_a_directory(struct doctor *d, const char *dir)
{
	const char *base = strrchr(dir, '/');
	char next[4200];

	base = base != NULL ? base + 1 : dir;
	if (strcmp(base, "store.db") == 0 && base > dir + 1)
		snprintf(next, sizeof(next),
		         "name the directory that holds it: --store %.*s or "
		         "[store] path = %.*s",
		         (int)(base - dir - 1), dir, (int)(base - dir - 1),
		         dir);
	else
		snprintf(next, sizeof(next),
		         "give --store (or [store] path) a directory, or move "
		         "%s away: the store is the file store.db inside the "
		         "directory",
		         dir);
	doctor_add(d, DOCTOR_FAIL, "store", next,
	           "the store path %s is not a directory", dir);
}

/* Where the store should be there is nothing, or something unusable. */
static void no_store(struct doctor *d, const char *dir, const char *file,
                     int err)
{
	char next[4200];

	if (err == ENOENT) {
		doctor_add(d, DOCTOR_FAIL, "store",
		           "install an identity with p11mail-certinstall "
		           "install or import, which makes the store",
		           "no store at %s: %s", file, strerror(err));
	} else if (err == ENOTDIR) {
		doctor_add(d, DOCTOR_FAIL, "store",
		           "correct --store or [store] path: a part of it is "
		           "a file",
		           "the store path %s is not a directory path: %s", dir,
		           strerror(err));
	} else {
		snprintf(next, sizeof(next),
		         "check the owner and mode of %s and of the "
		         "directories above it",
		         dir);
		doctor_add(d, DOCTOR_FAIL, "store", next,
		           "the store at %s cannot be examined: %s", file,
		           strerror(err));
	}
}

static int check_modes(struct doctor *d, const char *dir, const char *file)
{
	char next[4200];
	struct stat sb;

	if (stat(dir, &sb) != 0) {
		no_store(d, dir, file, errno);
		return -1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		not_a_directory(d, dir);
		return -1;
	}
	if (stat(file, &sb) != 0) {
		no_store(d, dir, file, errno);
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

static int check_integrity(struct doctor *d, p11mail_store *st,
                           const char *file)
{
	struct p11mail_store_report r;

	if (p11mail_store_check(st, &r) != P11MAIL_OK) {
		doctor_add(d, DOCTOR_FAIL, "store", RESTORE_REMEDY,
		           "%s cannot be checked: %s", file, d->last_log);
		return -1;
	}
	if (r.foreign) {
		doctor_add(d, DOCTOR_FAIL, "store",
		           "move the file away; p11mail does not overwrite it",
		           "%s is not a p11mail store", file);
		return -1;
	}
	if (r.damaged) {
		doctor_add(d, DOCTOR_FAIL, "store", RESTORE_REMEDY,
		           "%s is damaged: %s", file, r.detail);
		return -1;
	}
	if (r.schema > r.schema_current || r.schema < 0) {
		doctor_add(d, DOCTOR_FAIL, "store",
		           "use the p11mail version that made it, or a newer "
		           "one",
		           "%s has schema version %d; this p11mail knows %d",
		           file, r.schema, r.schema_current);
		return -1;
	}
	if (r.schema < r.schema_current)
		doctor_add(d, DOCTOR_WARN, "store",
		           "any p11mail command that writes to the store "
		           "upgrades it",
		           "%s has schema version %d, older than %d", file,
		           r.schema, r.schema_current);
	else
		doctor_add(d, DOCTOR_OK, "store", NULL,
		           "%s passes the integrity check (schema %d)", file,
		           r.schema);
	return r.schema == r.schema_current ? 0 : -1;
}

static X509 *parse_x509(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;

	return der != NULL ? d2i_X509(NULL, &p, (long)len) : NULL;
}

/* By address, then the newest certificate first. */
static int identity_order(const void *a, const void *b)
{
	const struct p11mail_identity *x = a, *y = b;
	int c = strcmp(x->address != NULL ? x->address : "",
	               y->address != NULL ? y->address : "");

	if (c != 0)
		return c;
	return (y->not_after > x->not_after) - (y->not_after < x->not_after);
}

/*
 * An expired identity whose address has a newer one was replaced: it only
 * takes room.  newest is the address's first identity, or NULL.
 */
static int superseded(struct doctor *d, const struct p11mail_identity *id,
                      const struct p11mail_identity *newest, const char *who)
{
	char next[512];

	if (newest == NULL || id->not_after >= d->now ||
	    newest->not_after < d->now)
		return 0;
	snprintf(next, sizeof(next),
	         "remove it: p11mail-certinstall remove %s --fingerprint %s",
	         id->address, id->fingerprint);
	doctor_add(d, DOCTOR_WARN, "identity", next,
	           "%s: expired, replaced by a newer certificate", who);
	return 1;
}

static void check_identity(struct doctor *d, struct doctor_p11 *p11,
                           const struct p11mail_identity *id,
                           const struct p11mail_identity *newest)
{
	X509 *cert = parse_x509(id->cert, id->cert_len);
	char who[400];

	snprintf(who, sizeof(who), "%s (%.16s)",
	         id->address != NULL ? id->address : "?", id->fingerprint);
	if (cert == NULL)
		doctor_add(d, DOCTOR_FAIL, "identity", RESTORE_REMEDY,
		           "%s: the stored certificate does not parse", who);
	else if (!superseded(d, id, newest, who)) {
		doctor_check_cert(d, "identity", who, cert, 1);
		if (id->key_uri != NULL)
			doctor_check_key(d, p11, who, id->key_uri, cert);
	}
	X509_free(cert);
}

static void check_identities(struct doctor *d, struct doctor_p11 *p11,
                             p11mail_store *st)
{
	const char *want = p11mail_config_get(d->cfg, "identity", "address");
	struct p11mail_identity *ids = NULL;
	size_t n = 0, first = 0;
	int found = 0;

	if (p11mail_identity_find(st, NULL, &ids, &n) != P11MAIL_OK) {
		doctor_add(d, DOCTOR_FAIL, "identity", RESTORE_REMEDY,
		           "identities cannot be read: %s", d->last_log);
		return;
	}
	if (n > 1)
		qsort(ids, n, sizeof(*ids), identity_order);
	for (size_t i = 0; i < n; i++) {
		const char *a = ids[i].address;

		if (i == 0 ||
		    strcmp(ids[i - 1].address != NULL ? ids[i - 1].address : "",
		           a != NULL ? a : "") != 0)
			first = i;
		if (want != NULL && a != NULL && strcasecmp(a, want) == 0)
			found = 1;
		check_identity(d, p11, &ids[i], i > first ? &ids[first] : NULL);
	}
	p11mail_identities_free(ids, n);
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

static int anchor_order(const void *a, const void *b)
{
	const struct p11mail_anchor *x = a, *y = b;

	return strcmp(x->subject != NULL ? x->subject : "",
	              y->subject != NULL ? y->subject : "");
}

/*
 * Without an anchor, only certificates trusted one by one are trusted:
 * that is a way of working, not a fault, when there are some.
 */
static void no_anchor(struct doctor *d, p11mail_store *st)
{
	struct p11mail_cert *certs = NULL;
	size_t n = 0;

	if (p11mail_trust_list(st, NULL, &certs, &n) != P11MAIL_OK)
		n = 0;
	p11mail_certs_free(certs, n);
	if (n > 0)
		doctor_add(d, DOCTOR_WARN, "anchor",
		           "to trust all signers your CA vouches for: "
		           "p11mail-certinstall anchor add CA.pem",
		           "no trust anchor: only the %zu individually "
		           "trusted certificate%s can be trusted",
		           n, n == 1 ? "" : "s");
	else
		doctor_add(d, DOCTOR_FAIL, "anchor",
		           "add your CA: p11mail-certinstall anchor add CA.pem",
		           "no trust anchor: no signature can be trusted");
}

static void check_anchors(struct doctor *d, p11mail_store *st)
{
	struct p11mail_anchor *anchors = NULL;
	size_t n = 0;
	char who[600];

	if (p11mail_anchor_list(st, &anchors, &n) != P11MAIL_OK)
		return;
	if (n > 1)
		qsort(anchors, n, sizeof(*anchors), anchor_order);
	for (size_t i = 0; i < n; i++) {
		const struct p11mail_anchor *a = &anchors[i];
		X509 *cert = parse_x509(a->cert, a->cert_len);
		const char *dom = a->domain;

		snprintf(who, sizeof(who), "anchor %s%s%s",
		         a->subject != NULL ? a->subject : "?",
		         dom != NULL && *dom != '\0' ? " for " : "",
		         dom != NULL ? dom : "");
		if (cert != NULL)
			doctor_check_cert(d, "anchor", who, cert, 0);
		X509_free(cert);
	}
	p11mail_anchors_free(anchors, n);
	if (n == 0)
		no_anchor(d, st);
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

static void cache_report(struct doctor *d, const struct cache_count *c)
{
	if (c->expired > 0)
		doctor_add(d, DOCTOR_WARN, "cache",
		           "ask them for a new signed message; p11mail certs "
		           "check lists every one",
		           "%zu cached certificate%s of %zu ha%s expired: %s%s",
		           c->expired, c->expired == 1 ? "" : "s", c->total,
		           c->expired == 1 ? "s" : "ve", c->listed,
		           c->expired > LISTED_MAX ? ", ..." : "");
	else
		doctor_add(d, DOCTOR_OK, "cache", NULL,
		           "%zu cached certificate%s, none expired", c->total,
		           c->total == 1 ? "" : "s");
	if (c->stale > 0)
		doctor_add(d, DOCTOR_OK, "cache", NULL,
		           "%zu discovered certificate%s past %s lifetime and "
		           "%s looked up again when used",
		           c->stale, c->stale == 1 ? " is" : "s are",
		           c->stale == 1 ? "its" : "their",
		           c->stale == 1 ? "is" : "are");
}

static void check_cache(struct doctor *d, p11mail_store *st)
{
	struct cache_count c = {0};
	struct p11mail_cert *certs = NULL;
	size_t n = 0;

	if (p11mail_cache_list(st, NULL, &certs, &n) != P11MAIL_OK)
		return;
	for (size_t i = 0; i < n; i++) {
		c.total++;
		if (certs[i].not_after < d->now) {
			c.expired++;
			cache_note(&c, certs[i].address);
		} else if (certs[i].expires_at != 0 &&
		           certs[i].expires_at < d->now) {
			c.stale++;
		}
	}
	p11mail_certs_free(certs, n);
	cache_report(d, &c);
}

void doctor_check_store(struct doctor *d, struct doctor_p11 *p11,
                        const char *dir)
{
	char *file = p11mail_store_file(dir);
	p11mail_store *st = NULL;

	if (file == NULL) {
		d->nomem = 1;
		return;
	}
	if (check_modes(d, dir, file) != 0)
		goto out;
	if (p11mail_store_open_readonly(dir, &st) != P11MAIL_OK) {
		doctor_add(d, DOCTOR_FAIL, "store",
		           "check the file's owner and mode",
		           "%s cannot be opened: %s", file, d->last_log);
		goto out;
	}
	if (check_integrity(d, st, file) != 0)
		goto out;
	check_identities(d, p11, st);
	check_anchors(d, st);
	check_cache(d, st);
out:
	p11mail_store_close(st);
	free(file);
}
