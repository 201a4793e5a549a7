/*
 * Certificate discovery: the settings, the order of the lookups (DNS for
 * the address, DNS for the domain, LDAP for the address, LDAP for the
 * domain, stopping at the first step that yields a usable certificate), the
 * cache, and the result handed to the application.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/x509.h>

#include "common.h"
#include "discover.h"

#define DEFAULT_TIMEOUT      5
#define DEFAULT_TTL          3600
#define DEFAULT_NEGATIVE_TTL 300
#define MAX_ADDRESS          254

struct p11mail_discover {
	char *dns_server;
	X509_STORE *anchors;
	int have_anchors;
	int have_crl;
	int timeout;
	struct p11mail_discover_cache cache;
	int have_cache;
	p11mail_store *store; /* borrowed */
	int ttl;
	int negative_ttl;
};

/* A candidate with the storage behind its public const fields. */
struct cand {
	struct p11mail_candidate pub;
	char *source;
	char *origin;
	struct p11m_verdict verdict;
	unsigned char *der;
};

struct p11mail_discovery {
	struct cand *cands;
	size_t count;
	size_t cap;
	long chosen; /* index, or -1 */
	int cached;
	size_t failures;
};

/* State of one run. */
struct run {
	struct p11mail_discover *disc;
	struct p11mail_discovery *result;
	struct p11m_judge judge;
	struct p11m_dns *dns;
	char *ldap_url;     /* the LDAP server that answered, reused */
	int ldap_looked_up; /* SRV records were already asked for */
	struct p11m_srv *srv;
	size_t srv_count;
	X509_STORE *anchors; /* with the store's, when there is one */
};

enum p11mail_status p11mail_discover_new(struct p11mail_discover **out)
{
	struct p11mail_discover *disc;

	if (out == NULL)
		return P11MAIL_ERR_ARGS;
	*out = NULL;
	disc = calloc(1, sizeof(*disc));
	if (disc == NULL)
		return P11MAIL_ERR_NOMEM;
	disc->anchors = X509_STORE_new();
	if (disc->anchors == NULL) {
		free(disc);
		return P11MAIL_ERR_NOMEM;
	}
	disc->timeout = DEFAULT_TIMEOUT;
	disc->ttl = DEFAULT_TTL;
	disc->negative_ttl = DEFAULT_NEGATIVE_TTL;
	*out = disc;
	return P11MAIL_OK;
}

void p11mail_discover_free(struct p11mail_discover *disc)
{
	if (disc == NULL)
		return;
	free(disc->dns_server);
	X509_STORE_free(disc->anchors);
	free(disc);
}

enum p11mail_status
p11mail_discover_set_dns_server(struct p11mail_discover *disc,
                                const char *server)
{
	struct p11m_dns *probe = NULL;
	enum p11mail_status st;
	char *copy = NULL;

	if (disc == NULL)
		return P11MAIL_ERR_ARGS;
	if (server != NULL) {
		/* Refused now rather than at the first lookup. */
		st = p11m_dns_new(server, disc->timeout, &probe);
		p11m_dns_free(probe);
		if (st != P11MAIL_OK)
			return st;
		copy = strdup(server);
		if (copy == NULL)
			return P11MAIL_ERR_NOMEM;
	}
	free(disc->dns_server);
	disc->dns_server = copy;
	return P11MAIL_OK;
}

/* Copies the certificates and CRLs of src into dst, saying what it found. */
static enum p11mail_status store_copy(X509_STORE *dst, X509_STORE *src,
                                      int *certs, int *crls)
{
	STACK_OF(X509_OBJECT) * objs;
	enum p11mail_status st = P11MAIL_OK;

	if (!X509_STORE_lock(src))
		return P11MAIL_ERR_INTERNAL;
	objs = X509_STORE_get0_objects(src);
	for (int i = 0; i < sk_X509_OBJECT_num(objs) && st == P11MAIL_OK; i++) {
		X509_OBJECT *obj = sk_X509_OBJECT_value(objs, i);
		X509 *cert = X509_OBJECT_get0_X509(obj);
		X509_CRL *crl = X509_OBJECT_get0_X509_CRL(obj);

		if (cert != NULL && X509_STORE_add_cert(dst, cert))
			*certs = 1;
		else if (crl != NULL && X509_STORE_add_crl(dst, crl))
			*crls = 1;
		else if (cert != NULL || crl != NULL)
			st = P11MAIL_ERR_NOMEM;
	}
	X509_STORE_unlock(src);
	return st;
}

enum p11mail_status p11mail_discover_set_anchors(struct p11mail_discover *disc,
                                                 struct x509_store_st *store)
{
	if (disc == NULL || store == NULL)
		return P11MAIL_ERR_ARGS;
	return store_copy(disc->anchors, store, &disc->have_anchors,
	                  &disc->have_crl);
}

enum p11mail_status p11mail_discover_use_store(struct p11mail_discover *disc,
                                               p11mail_store *store)
{
	if (disc == NULL)
		return P11MAIL_ERR_ARGS;
	disc->store = store;
	disc->have_cache = store != NULL;
	if (store != NULL)
		p11m_disc_store_cache(store, &disc->cache);
	return P11MAIL_OK;
}

/*
 * The anchors of this run: those given to disc, plus the store's anchors
 * for the domain.  Sets run->judge.anchors, or leaves it NULL for none.
 */
static enum p11mail_status run_anchors(struct run *run)
{
	struct p11mail_discover *disc = run->disc;
	enum p11mail_status st;
	int certs = disc->have_anchors, crls = 0, added = 0;

	if (disc->store == NULL) {
		run->judge.anchors = certs ? disc->anchors : NULL;
		return P11MAIL_OK;
	}
	run->anchors = X509_STORE_new();
	if (run->anchors == NULL)
		return P11MAIL_ERR_NOMEM;
	st = store_copy(run->anchors, disc->anchors, &certs, &crls);
	if (st == P11MAIL_OK)
		st = p11m_disc_store_anchors(disc->store, run->judge.domain,
		                             run->anchors, &added);
	if (st == P11MAIL_OK && (certs || added))
		run->judge.anchors = run->anchors;
	return st;
}

/*
 * Whether path names a regular file this process can read; logs "cannot
 * read PATH: reason" when it does not, so a missing file is not reported
 * as one without certificates or CRLs.
 */
static int discover_file_readable(const char *path)
{
	struct stat sb;
	FILE *f = fopen(path, "r");
	int err;

	if (f == NULL) {
		err = errno;
	} else if (fstat(fileno(f), &sb) != 0) {
		err = errno;
		fclose(f);
	} else {
		fclose(f);
		if (!S_ISDIR(sb.st_mode))
			return 1;
		err = EISDIR;
	}
	p11m_log(P11MAIL_LOG_ERROR, "cannot read %s: %s", path, strerror(err));
	return 0;
}

enum p11mail_status
p11mail_discover_add_anchor_file(struct p11mail_discover *disc,
                                 const char *path)
{
	X509_LOOKUP *lookup;

	if (disc == NULL || path == NULL)
		return P11MAIL_ERR_ARGS;
	if (!discover_file_readable(path))
		return P11MAIL_ERR_IO;
	lookup = X509_STORE_add_lookup(disc->anchors, X509_LOOKUP_file());
	if (lookup == NULL)
		return P11MAIL_ERR_NOMEM;
	if (X509_load_cert_file(lookup, path, X509_FILETYPE_PEM) <= 0) {
		p11m_log(P11MAIL_LOG_ERROR, "%s holds no PEM certificate",
		         path);
		return P11MAIL_ERR_IO;
	}
	disc->have_anchors = 1;
	return P11MAIL_OK;
}

enum p11mail_status p11mail_discover_add_crl_file(struct p11mail_discover *disc,
                                                  const char *path)
{
	X509_LOOKUP *lookup;

	if (disc == NULL || path == NULL)
		return P11MAIL_ERR_ARGS;
	if (!discover_file_readable(path))
		return P11MAIL_ERR_IO;
	lookup = X509_STORE_add_lookup(disc->anchors, X509_LOOKUP_file());
	if (lookup == NULL)
		return P11MAIL_ERR_NOMEM;
	if (X509_load_crl_file(lookup, path, X509_FILETYPE_PEM) <= 0) {
		p11m_log(P11MAIL_LOG_ERROR, "%s holds no PEM CRL", path);
		return P11MAIL_ERR_IO;
	}
	disc->have_crl = 1;
	return P11MAIL_OK;
}

enum p11mail_status p11mail_discover_set_timeout(struct p11mail_discover *disc,
                                                 int seconds)
{
	if (disc == NULL || seconds < 1 || seconds > 60)
		return P11MAIL_ERR_ARGS;
	disc->timeout = seconds;
	return P11MAIL_OK;
}

enum p11mail_status
p11mail_discover_set_cache(struct p11mail_discover *disc,
                           const struct p11mail_discover_cache *cache, int ttl,
                           int negative_ttl)
{
	if (disc == NULL || ttl < 0 || negative_ttl < 0 ||
	    (cache != NULL && (cache->get == NULL || cache->put == NULL)))
		return P11MAIL_ERR_ARGS;
	disc->have_cache = cache != NULL;
	if (cache != NULL)
		disc->cache = *cache;
	disc->ttl = ttl;
	disc->negative_ttl = negative_ttl;
	return P11MAIL_OK;
}

/* Characters of a local part that are safe both in a DNS label string
 * (ldns escapes) and in an LDAP filter (escaped anyway). */
static int local_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("!#$%&'*+/=?^_`{|}~.-", c);
}

static int domain_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.';
}

enum p11mail_status p11m_disc_split_address(const char *address,
                                            const char **domain)
{
	const char *at;
	size_t len;

	*domain = NULL;
	len = strlen(address);
	at = strchr(address, '@');
	if (len > MAX_ADDRESS || at == NULL || at == address || at[1] == '\0' ||
	    strchr(at + 1, '@') != NULL || at[1] == '.' ||
	    address[len - 1] == '.' || strstr(address, "..") != NULL ||
	    address[0] == '.' || at[-1] == '.')
		return P11MAIL_ERR_ARGS;
	for (const char *p = address; p < at; p++)
		if (!local_char_ok((unsigned char)*p))
			return P11MAIL_ERR_ARGS;
	for (const char *p = at + 1; *p != '\0'; p++)
		if (!domain_char_ok((unsigned char)*p))
			return P11MAIL_ERR_ARGS;
	*domain = at + 1;
	return P11MAIL_OK;
}

/* Judges one fetched certificate and appends it to the result. */
static enum p11mail_status result_add(struct p11mail_discovery *result,
                                      const struct p11m_judge *judge,
                                      const struct p11m_disc_item *item)
{
	struct cand c = {0};
	enum p11mail_status st = P11MAIL_ERR_NOMEM;

	if (result->count == result->cap) {
		size_t cap = result->cap != 0 ? result->cap * 2 : 8;
		struct cand *v = realloc(result->cands, cap * sizeof(*v));

		if (v == NULL)
			goto out;
		result->cands = v;
		result->cap = cap;
	}
	c.source = strdup(item->source);
	c.origin = strdup(item->origin);
	c.der = malloc(item->len > 0 ? item->len : 1);
	if (c.source == NULL || c.origin == NULL || c.der == NULL)
		goto out;
	memcpy(c.der, item->der, item->len);
	st = p11m_judge_cert(judge, item->der, item->len, &c.verdict);
	if (st != P11MAIL_OK)
		goto out;

	c.pub = (struct p11mail_candidate){
	        .source = c.source,
	        .origin = c.origin,
	        .binding = c.verdict.binding,
	        .verdict = c.verdict.verdict,
	        .reason = c.verdict.reason,
	        .subject = c.verdict.subject,
	        .fingerprint = c.verdict.fingerprint,
	        .not_after = c.verdict.not_after,
	        .der = c.der,
	        .der_len = item->len,
	};
	p11m_log(P11MAIL_LOG_DEBUG, "%s: %s (%s)", c.origin,
	         p11mail_candidate_verdict_name(c.pub.verdict), c.pub.reason);
	result->cands[result->count++] = c;
	c = (struct cand){0};
out:
	free(c.source);
	free(c.origin);
	free(c.der);
	p11m_verdict_clear(&c.verdict);
	return st;
}

/* Collects the fetched certificates as possible intermediates. */
static STACK_OF(X509) * list_certs(const struct p11m_disc_list *list)
{
	STACK_OF(X509) *certs = sk_X509_new_null();

	for (size_t i = 0; certs != NULL && i < list->count; i++) {
		const unsigned char *p = list->items[i].der;
		X509 *cert = d2i_X509(NULL, &p, (long)list->items[i].len);

		if (cert != NULL && !sk_X509_push(certs, cert))
			X509_free(cert);
	}
	return certs;
}

/*
 * Judges a step's certificates and chooses the accepted one that stays
 * valid longest.  Sets *found when one was chosen.
 */
static enum p11mail_status
judge_step(struct run *run, const struct p11m_disc_list *list, int *found)
{
	struct p11mail_discovery *result = run->result;
	enum p11mail_status st = P11MAIL_OK;
	size_t first = result->count;

	*found = 0;
	run->judge.untrusted = list_certs(list);
	if (run->judge.untrusted == NULL)
		return P11MAIL_ERR_NOMEM;
	for (size_t i = 0; i < list->count && st == P11MAIL_OK; i++)
		st = result_add(result, &run->judge, &list->items[i]);
	sk_X509_pop_free(run->judge.untrusted, X509_free);
	run->judge.untrusted = NULL;

	for (size_t i = first; st == P11MAIL_OK && i < result->count; i++) {
		const struct p11mail_candidate *c = &result->cands[i].pub;

		if (c->verdict != P11MAIL_CAND_ACCEPTED)
			continue;
		if (result->chosen < 0 ||
		    c->not_after > result->cands[result->chosen].pub.not_after)
			result->chosen = (long)i;
		*found = 1;
	}
	return st;
}

/* Asks DNS for the CERT records at the owner name for value. */
static enum p11mail_status dns_step(struct run *run, const char *value,
                                    struct p11m_disc_list *list)
{
	enum p11mail_status st;
	char *owner, *at;

	owner = strdup(value);
	if (owner == NULL)
		return P11MAIL_ERR_NOMEM;
	/* RFC 4398: alice@example.org is looked up at alice.example.org. */
	at = strchr(owner, '@');
	if (at != NULL)
		*at = '.';
	st = p11m_dns_certs(run->dns, owner, run->disc->timeout, list);
	if (st == P11MAIL_ERR_DISCOVERY) {
		run->result->failures++;
		st = P11MAIL_OK;
	}
	free(owner);
	return st;
}

/* Finds the LDAP servers of the domain once: SRV _ldap._tcp.DOMAIN. */
static enum p11mail_status ldap_servers(struct run *run)
{
	enum p11mail_status st;
	char *name = NULL;

	if (run->ldap_looked_up)
		return P11MAIL_OK;
	run->ldap_looked_up = 1;
	if (asprintf(&name, "_ldap._tcp.%s", run->judge.domain) < 0)
		return P11MAIL_ERR_NOMEM;
	st = p11m_dns_srv(run->dns, name, &run->srv, &run->srv_count);
	if (st == P11MAIL_ERR_DISCOVERY) {
		run->result->failures++;
		st = P11MAIL_OK;
	}
	if (st == P11MAIL_OK && run->srv_count == 0)
		p11m_trace("discover", "%s: no LDAP server advertised", name);
	free(name);
	return st;
}

/* Tries one SRV target; P11MAIL_ERR_DISCOVERY sends us to the next one. */
static enum p11mail_status ldap_try(struct run *run, const struct p11m_srv *srv,
                                    const char *value,
                                    struct p11m_disc_list *list)
{
	enum p11mail_status st;
	char *host = NULL, *url = NULL;

	st = p11m_dns_address(run->dns, srv->target, &host);
	if (st != P11MAIL_OK) {
		p11m_log(P11MAIL_LOG_WARNING,
		         "LDAP server %s has no address in DNS", srv->target);
		st = P11MAIL_ERR_DISCOVERY;
		goto out;
	}
	if (asprintf(&url, "ldap://%s:%u", host, (unsigned)srv->port) < 0) {
		url = NULL;
		st = P11MAIL_ERR_NOMEM;
		goto out;
	}
	p11m_trace("discover",
	           "trying LDAP server %s (%s, priority %u, "
	           "weight %u)",
	           url, srv->target, srv->priority, srv->weight);
	st = p11m_ldap_certs(url, value, run->disc->timeout, list);
	if (st == P11MAIL_OK) {
		run->ldap_url = url;
		url = NULL;
	}
out:
	free(host);
	free(url);
	return st;
}

/* Asks LDAP for (mail=value), moving to the next server when one fails. */
static enum p11mail_status ldap_step(struct run *run, const char *value,
                                     struct p11m_disc_list *list)
{
	enum p11mail_status st;

	if (run->ldap_url != NULL) {
		st = p11m_ldap_certs(run->ldap_url, value, run->disc->timeout,
		                     list);
		if (st == P11MAIL_ERR_DISCOVERY) {
			run->result->failures++;
			st = P11MAIL_OK;
		}
		return st;
	}
	/* None is advertised, or every one failed for the first search. */
	if (run->ldap_looked_up)
		return P11MAIL_OK;
	st = ldap_servers(run);
	for (size_t i = 0;
	     st == P11MAIL_OK && i < run->srv_count && run->ldap_url == NULL;
	     i++) {
		st = ldap_try(run, &run->srv[i], value, list);
		if (st == P11MAIL_ERR_DISCOVERY) {
			run->result->failures++;
			st = P11MAIL_OK;
		}
	}
	return st;
}

/* Judges a cached certificate again; sets *found when it is still good. */
static enum p11mail_status cache_lookup(struct run *run, int *found)
{
	struct p11mail_discover *disc = run->disc;
	struct p11m_disc_list list = {0};
	unsigned char *der = NULL;
	char *source = NULL;
	enum p11mail_status st;
	size_t len = 0;

	*found = 0;
	st = disc->cache.get(disc->cache.arg, run->judge.address,
	                     (long long)time(NULL), &der, &len, &source);
	if (st == P11MAIL_ERR_NOMEM)
		goto out;
	/* A cache that cannot be read must not stop the lookup itself. */
	if (st != P11MAIL_OK && st != P11MAIL_ERR_NOT_FOUND)
		p11m_log(P11MAIL_LOG_WARNING,
		         "cannot read the discovery cache for %s: %s",
		         run->judge.address, p11mail_strerror(st));
	if (st != P11MAIL_OK) {
		st = P11MAIL_OK;
		goto out;
	}
	run->result->cached = 1;
	*found = 1;
	if (der == NULL) /* "nothing found", still fresh */
		goto out;

	st = p11m_disc_list_add(&list, der, len, "cache",
	                        source != NULL ? source : "cache");
	if (st == P11MAIL_OK)
		st = judge_step(run, &list, found);
	if (st == P11MAIL_OK && !*found) {
		p11m_log(P11MAIL_LOG_INFO,
		         "the cached certificate for %s is "
		         "no longer usable; looking again",
		         run->judge.address);
		run->result->cached = 0;
	}
out:
	p11m_disc_list_clear(&list);
	free(der);
	free(source);
	return st;
}

/* Records the outcome; a run with failed lookups is not cached as empty. */
static void cache_store(struct run *run)
{
	struct p11mail_discover *disc = run->disc;
	struct p11mail_discovery *result = run->result;
	long long now = (long long)time(NULL);
	const struct p11mail_candidate *c = p11mail_discovery_chosen(result);
	enum p11mail_status st = P11MAIL_OK;

	if (c != NULL)
		st = disc->cache.put(disc->cache.arg, run->judge.address,
		                     c->der, c->der_len, c->origin,
		                     now + disc->ttl);
	else if (result->failures == 0)
		st = disc->cache.put(disc->cache.arg, run->judge.address, NULL,
		                     0, "nothing found",
		                     now + disc->negative_ttl);
	if (st != P11MAIL_OK)
		p11m_log(P11MAIL_LOG_WARNING,
		         "cannot cache the discovery result for %s: %s",
		         run->judge.address, p11mail_strerror(st));
}

/* Runs the four lookups in order until one yields a usable certificate. */
static enum p11mail_status run_steps(struct run *run)
{
	enum p11mail_status st = P11MAIL_OK;
	const char *values[] = {run->judge.address, run->judge.domain};
	int found = 0;

	for (int step = 0; step < 4 && !found && st == P11MAIL_OK; step++) {
		struct p11m_disc_list list = {0};
		const char *value = values[step % 2];

		if (step < 2)
			st = dns_step(run, value, &list);
		else
			st = ldap_step(run, value, &list);
		if (st == P11MAIL_OK)
			st = judge_step(run, &list, &found);
		p11m_disc_list_clear(&list);
	}
	return st;
}

enum p11mail_status p11mail_discover_run(struct p11mail_discover *disc,
                                         const char *address,
                                         struct p11mail_discovery **out)
{
	struct run run = {.disc = disc};
	enum p11mail_status st;
	int found = 0;

	if (out != NULL)
		*out = NULL;
	if (disc == NULL || address == NULL || out == NULL)
		return P11MAIL_ERR_ARGS;
	if (p11m_disc_split_address(address, &run.judge.domain) != P11MAIL_OK)
		return P11MAIL_ERR_ARGS;
	run.judge.address = address;
	run.judge.check_crl = disc->have_crl;
	st = run_anchors(&run);
	if (st != P11MAIL_OK)
		goto out;

	run.result = calloc(1, sizeof(*run.result));
	if (run.result == NULL) {
		st = P11MAIL_ERR_NOMEM;
		goto out;
	}
	run.result->chosen = -1;

	if (disc->have_cache) {
		st = cache_lookup(&run, &found);
		if (st != P11MAIL_OK || found)
			goto publish;
	}
	st = p11m_dns_new(disc->dns_server, disc->timeout, &run.dns);
	if (st == P11MAIL_OK)
		st = run_steps(&run);
	if (st == P11MAIL_OK && disc->have_cache)
		cache_store(&run);
publish:
	if (st == P11MAIL_OK) {
		*out = run.result;
		run.result = NULL;
	}
out:
	p11mail_discovery_free(run.result);
	p11m_dns_free(run.dns);
	p11m_srv_free(run.srv, run.srv_count);
	free(run.ldap_url);
	X509_STORE_free(run.anchors);
	return st;
}

size_t p11mail_discovery_count(const struct p11mail_discovery *result)
{
	return result != NULL ? result->count : 0;
}

const struct p11mail_candidate *
p11mail_discovery_get(const struct p11mail_discovery *result, size_t i)
{
	if (result == NULL || i >= result->count)
		return NULL;
	return &result->cands[i].pub;
}

const struct p11mail_candidate *
p11mail_discovery_chosen(const struct p11mail_discovery *result)
{
	if (result == NULL || result->chosen < 0)
		return NULL;
	return &result->cands[result->chosen].pub;
}

int p11mail_discovery_cached(const struct p11mail_discovery *result)
{
	return result != NULL && result->cached;
}

size_t p11mail_discovery_failures(const struct p11mail_discovery *result)
{
	return result != NULL ? result->failures : 0;
}

void p11mail_discovery_free(struct p11mail_discovery *result)
{
	if (result == NULL)
		return;
	for (size_t i = 0; i < result->count; i++) {
		free(result->cands[i].source);
		free(result->cands[i].origin);
		free(result->cands[i].der);
		p11m_verdict_clear(&result->cands[i].verdict);
	}
	free(result->cands);
	free(result);
}

const char *
p11mail_candidate_verdict_name(enum p11mail_candidate_verdict verdict)
{
	switch (verdict) {
	case P11MAIL_CAND_ACCEPTED:
		return "accepted";
	case P11MAIL_CAND_MALFORMED:
		return "malformed";
	case P11MAIL_CAND_WRONG_BINDING:
		return "wrong-binding";
	case P11MAIL_CAND_EXPIRED:
		return "expired";
	case P11MAIL_CAND_WRONG_USAGE:
		return "wrong-usage";
	case P11MAIL_CAND_REVOKED:
		return "revoked";
	case P11MAIL_CAND_UNTRUSTED:
		return "untrusted";
	}
	return "unknown";
}
