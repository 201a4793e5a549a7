/*
 * Certificate discovery internals: the DNS and LDAP fetchers fill a list of
 * raw certificates, the judge turns each one into a candidate.
 */
#ifndef P11MAIL_DISCOVER_H
#define P11MAIL_DISCOVER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "p11mail.h"

/* Bounds on what a server may make us hold. */
#define P11M_DISC_MAX_CERT    (64 * 1024) /* one certificate or bundle */
#define P11M_DISC_MAX_ITEMS   64          /* certificates per lookup */
#define P11M_DISC_MAX_SERVERS 16          /* LDAP servers tried per domain */

/* One certificate as fetched, before it is judged. */
struct p11m_disc_item {
	unsigned char *der;
	size_t len;
	char *source; /* "dns" or "ldap" */
	char *origin; /* where it came from, for people */
};

/* A growing list of fetched certificates. */
struct p11m_disc_list {
	struct p11m_disc_item *items;
	size_t count;
	size_t cap;
};

/*
 * Appends a copy of one DER certificate with its source and origin.
 * Returns P11MAIL_ERR_LIMIT past P11M_DISC_MAX_ITEMS or for an oversized
 * certificate.
 */
enum p11mail_status p11m_disc_list_add(struct p11m_disc_list *list,
                                       const unsigned char *der, size_t len,
                                       const char *source, const char *origin);

/*
 * Appends every certificate in buf: one DER certificate, one PEM
 * certificate, or a CMS certs-only bundle.  Returns P11MAIL_ERR_FORMAT when
 * buf holds none of them (nothing is appended then).
 */
enum p11mail_status p11m_disc_list_add_any(struct p11m_disc_list *list,
                                           const unsigned char *buf, size_t len,
                                           const char *source,
                                           const char *origin);

/* Frees every item and empties the list (the list itself is the caller's). */
void p11m_disc_list_clear(struct p11m_disc_list *list);

/* A resolver bound to one DNS server or to /etc/resolv.conf. */
struct p11m_dns;

/*
 * Opens a resolver for server ("HOST:PORT", "HOST", "[V6]:PORT") or, when
 * server is NULL, the system's.  Free with p11m_dns_free.
 */
enum p11mail_status p11m_dns_new(const char *server, int timeout,
                                 struct p11m_dns **out);

/* Frees a resolver; accepts NULL. */
void p11m_dns_free(struct p11m_dns *dns);

/*
 * Appends the PKIX and IPKIX certificates of the CERT RRset at owner,
 * fetching IPKIX URLs over HTTP(S).  A missing name is not an error;
 * returns P11MAIL_ERR_DISCOVERY when the server cannot be asked or an IPKIX
 * URL cannot be fetched (what could be read is still appended).
 */
enum p11mail_status p11m_dns_certs(struct p11m_dns *dns, const char *owner,
                                   int timeout, struct p11m_disc_list *list);

/* One SRV target. */
struct p11m_srv {
	uint16_t priority;
	uint16_t weight;
	uint16_t port;
	char *target; /* host name without the final dot */
};

/*
 * Sets *out (free with p11m_srv_free) and *count to the SRV records at name,
 * in the order they must be tried.  No records: *out NULL and *count 0.
 */
enum p11mail_status p11m_dns_srv(struct p11m_dns *dns, const char *name,
                                 struct p11m_srv **out, size_t *count);

/*
 * Resolves host through the same resolver and sets *out to its first
 * address as text (malloc'd; IPv6 in brackets), for building URLs.
 */
enum p11mail_status p11m_dns_address(struct p11m_dns *dns, const char *host,
                                     char **out);

/* Frees count SRV records; accepts NULL. */
void p11m_srv_free(struct p11m_srv *srv, size_t count);

/*
 * Orders SRV records for trying (RFC 2782): ascending priority, and within
 * one priority a weighted random order drawn with rnd(arg), which returns a
 * uniform 32-bit value.
 */
void p11m_srv_order(struct p11m_srv *srv, size_t count,
                    uint32_t (*rnd)(void *arg), void *arg);

/*
 * Appends the certificates of the entries matching (mail=value) under each
 * naming context of the LDAP server at url, after an anonymous bind.
 * Returns P11MAIL_ERR_DISCOVERY when the server cannot be used.
 */
enum p11mail_status p11m_ldap_certs(const char *url, const char *value,
                                    int timeout, struct p11m_disc_list *list);

/*
 * Fetches url (http or https only) with a timeout and at most max bytes;
 * sets *out (malloc'd) and *len.  Returns P11MAIL_ERR_LIMIT when larger.
 */
enum p11mail_status p11m_fetch_url(const char *url, int timeout, size_t max,
                                   unsigned char **out, size_t *len);

/* What a candidate must satisfy, shared by every candidate of one run. */
struct p11m_judge {
	const char *address;        /* local@domain, already checked */
	const char *domain;         /* the part after '@' */
	X509_STORE *anchors;        /* anchors (and CRLs) for the domain */
	STACK_OF(X509) * untrusted; /* other candidates, as intermediates */
	int check_crl;              /* CRLs were configured */
};

/* The verdict on one certificate, with strings owned by the caller. */
struct p11m_verdict {
	enum p11mail_candidate_verdict verdict;
	const char *binding; /* static string or NULL */
	char *reason;        /* malloc'd one-line explanation */
	char *subject;       /* malloc'd, or NULL */
	char *fingerprint;   /* malloc'd, or NULL */
	long long not_after;
};

/*
 * Judges one DER certificate for the address: binding, validity now, key
 * usage, chain to an anchor, revocation.  Fills *v (release with
 * p11m_verdict_clear); fails only for lack of memory.
 */
enum p11mail_status p11m_judge_cert(const struct p11m_judge *judge,
                                    const unsigned char *der, size_t len,
                                    struct p11m_verdict *v);

/* Frees the strings of a verdict. */
void p11m_verdict_clear(struct p11m_verdict *v);

/*
 * Checks that address is local@domain with characters safe in a DNS name
 * and an LDAP filter; sets *domain to a pointer inside address.
 */
enum p11mail_status p11m_disc_split_address(const char *address,
                                            const char **domain);

/* Fills *out with a cache kept in the workstation store. */
void p11m_disc_store_cache(p11mail_store *store,
                           struct p11mail_discover_cache *out);

/*
 * Adds the store's anchors for domain to into; *added says whether there
 * were any.
 */
enum p11mail_status p11m_disc_store_anchors(p11mail_store *store,
                                            const char *domain,
                                            X509_STORE *into, int *added);

#endif /* P11MAIL_DISCOVER_H */
