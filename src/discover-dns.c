/*
 * DNS side of discovery over ldns: CERT records (RFC 4398), SRV records
 * for LDAP servers and the addresses of their targets.  Every query goes
 * to the same resolver, so a test can point it at a private server.
 */
/* ldns's headers still name the RSA and DSA types that the project-wide
 * OPENSSL_NO_DEPRECATED hides; nothing deprecated is called here. */
#undef OPENSSL_NO_DEPRECATED

#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>
#include <openssl/rand.h>

#include "common.h"
#include "discover.h"

#define CERT_TYPE_PKIX  1
#define CERT_TYPE_IPKIX 4

struct p11m_dns {
	ldns_resolver *res;
	char *label; /* the server, for messages */
};

/* Splits "HOST:PORT", "[V6]:PORT" or "HOST" into a numeric host and port. */
static enum p11mail_status parse_server(const char *server, char *host,
                                        size_t hostlen, uint16_t *port)
{
	const char *end, *colon;
	unsigned long p = 53;
	char *stop;
	size_t n;

	if (server[0] == '[') {
		end = strchr(server, ']');
		if (end == NULL)
			return P11MAIL_ERR_ARGS;
		n = (size_t)(end - server - 1);
		server++;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			return P11MAIL_ERR_ARGS;
	} else {
		colon = strrchr(server, ':');
		if (colon != NULL && strchr(server, ':') != colon)
			colon = NULL; /* a bare IPv6 address */
		n = colon != NULL ? (size_t)(colon - server) : strlen(server);
	}
	if (n == 0 || n >= hostlen)
		return P11MAIL_ERR_ARGS;
	memcpy(host, server, n);
	host[n] = '\0';

	if (colon != NULL) {
		errno = 0;
		p = strtoul(colon + 1, &stop, 10);
		if (errno != 0 || *stop != '\0' || p == 0 || p > 65535)
			return P11MAIL_ERR_ARGS;
	}
	*port = (uint16_t)p;
	return P11MAIL_OK;
}

/* Makes a resolver that asks exactly one numeric server. */
static enum p11mail_status resolver_for(const char *server, ldns_resolver **out)
{
	unsigned char buf[sizeof(struct in6_addr)];
	enum p11mail_status st;
	ldns_resolver *res = NULL;
	ldns_rdf *addr = NULL;
	char host[64];
	uint16_t port;

	*out = NULL;
	st = parse_server(server, host, sizeof(host), &port);
	if (st != P11MAIL_OK) {
		/* The caller says it: the tool as a usage error. */
		goto out;
	}
	if (inet_pton(AF_INET, host, buf) == 1)
		addr = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_A, host);
	else if (inet_pton(AF_INET6, host, buf) == 1)
		addr = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_AAAA, host);
	if (addr == NULL) {
		st = P11MAIL_ERR_ARGS;
		goto out;
	}
	res = ldns_resolver_new();
	if (res == NULL ||
	    ldns_resolver_push_nameserver(res, addr) != LDNS_STATUS_OK) {
		st = P11MAIL_ERR_NOMEM;
		goto out;
	}
	ldns_resolver_set_port(res, port);
	*out = res;
	res = NULL;
	st = P11MAIL_OK;
out:
	ldns_rdf_deep_free(addr);
	if (res != NULL)
		ldns_resolver_deep_free(res);
	return st;
}

enum p11mail_status p11m_dns_new(const char *server, int timeout,
                                 struct p11m_dns **out)
{
	struct timeval tv = {.tv_sec = timeout};
	enum p11mail_status st;
	struct p11m_dns *dns;

	*out = NULL;
	dns = calloc(1, sizeof(*dns));
	if (dns == NULL)
		return P11MAIL_ERR_NOMEM;

	if (server != NULL) {
		st = resolver_for(server, &dns->res);
		if (st != P11MAIL_OK)
			goto out;
	} else if (ldns_resolver_new_frm_file(&dns->res, NULL) !=
	           LDNS_STATUS_OK) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "cannot read the DNS resolvers in /etc/resolv.conf");
		st = P11MAIL_ERR_CONFIG;
		goto out;
	}
	dns->label = strdup(server != NULL ? server : "the system resolver");
	if (dns->label == NULL) {
		st = P11MAIL_ERR_NOMEM;
		goto out;
	}

	/* Truncation is handled here, so that the retry over TCP is seen. */
	ldns_resolver_set_fallback(dns->res, false);
	ldns_resolver_set_usevc(dns->res, false);
	ldns_resolver_set_timeout(dns->res, tv);
	ldns_resolver_set_retry(dns->res, 1);
	ldns_resolver_set_retrans(dns->res, (uint8_t)timeout);
	ldns_resolver_set_recursive(dns->res, true);
	ldns_resolver_set_random(dns->res, false);
	*out = dns;
	dns = NULL;
	st = P11MAIL_OK;
out:
	p11m_dns_free(dns);
	return st;
}

void p11m_dns_free(struct p11m_dns *dns)
{
	if (dns == NULL)
		return;
	if (dns->res != NULL)
		ldns_resolver_deep_free(dns->res);
	free(dns->label);
	free(dns);
}

/* Sends one query over UDP, and again over TCP when the answer was cut. */
static enum p11mail_status dns_query(struct p11m_dns *dns, const char *name,
                                     ldns_rr_type type, ldns_pkt **out)
{
	enum p11mail_status st;
	ldns_rdf *qname;
	ldns_pkt *pkt = NULL;
	ldns_status ls;
	ldns_pkt_rcode rcode;
	ldns_lookup_table *rname;
	int tcp = 0;

	*out = NULL;
	qname = ldns_dname_new_frm_str(name);
	if (qname == NULL) {
		p11m_log(P11MAIL_LOG_ERROR, "'%s' is not a valid DNS name",
		         name);
		return P11MAIL_ERR_ARGS;
	}

	/* ldns benches a server after one failure; each query asks again. */
	for (size_t i = 0; i < ldns_resolver_nameserver_count(dns->res); i++)
		ldns_resolver_set_nameserver_rtt(dns->res, i,
		                                 LDNS_RESOLV_RTT_MIN);
	ls = ldns_resolver_send(&pkt, dns->res, qname, type, LDNS_RR_CLASS_IN,
	                        LDNS_RD);
	if (ls == LDNS_STATUS_OK && ldns_pkt_tc(pkt)) {
		p11m_trace("discover", "%s: answer truncated, asking over TCP",
		           name);
		ldns_pkt_free(pkt);
		pkt = NULL;
		ldns_resolver_set_usevc(dns->res, true);
		tcp = 1;
		ls = ldns_resolver_send(&pkt, dns->res, qname, type,
		                        LDNS_RR_CLASS_IN, LDNS_RD);
		ldns_resolver_set_usevc(dns->res, false);
	}
	if (ls != LDNS_STATUS_OK || pkt == NULL) {
		p11m_log(P11MAIL_LOG_WARNING,
		         "DNS query for %s to %s failed: %s", name, dns->label,
		         ldns_get_errorstr_by_id(ls));
		st = P11MAIL_ERR_DISCOVERY;
		goto out;
	}

	rcode = ldns_pkt_get_rcode(pkt);
	if (rcode != LDNS_RCODE_NOERROR && rcode != LDNS_RCODE_NXDOMAIN) {
		rname = ldns_lookup_by_id(ldns_rcodes, (int)rcode);
		p11m_log(P11MAIL_LOG_WARNING,
		         "DNS server %s answered %s with %s", dns->label, name,
		         rname != NULL ? rname->name : "an error");
		st = P11MAIL_ERR_DISCOVERY;
		goto out;
	}
	p11m_trace("discover", "%s: %zu answers%s", name,
	           (size_t)ldns_pkt_ancount(pkt), tcp ? " (TCP)" : "");
	*out = pkt;
	pkt = NULL;
	st = P11MAIL_OK;
out:
	ldns_pkt_free(pkt);
	ldns_rdf_deep_free(qname);
	return st;
}

/* Reads the big-endian 16-bit value of a 2-byte rdata field. */
static unsigned rdf_u16(const ldns_rdf *rdf)
{
	const uint8_t *p = ldns_rdf_data(rdf);

	if (rdf == NULL || ldns_rdf_size(rdf) != 2)
		return 0;
	return (unsigned)p[0] << 8 | p[1];
}

/*
 * Fetches the certificate an IPKIX record points at.  A URL that cannot be
 * fetched is a failed lookup (P11MAIL_ERR_DISCOVERY), not an empty one.
 */
static enum p11mail_status add_ipkix(struct p11m_disc_list *list,
                                     const char *owner,
                                     const unsigned char *data, size_t len,
                                     int timeout)
{
	enum p11mail_status st = P11MAIL_ERR_NOMEM;
	unsigned char *body = NULL;
	char *url = NULL, *origin = NULL;
	size_t body_len = 0;

	url = strndup((const char *)data, len);
	if (url == NULL)
		goto out;
	if (strlen(url) != len) {
		p11m_log(P11MAIL_LOG_WARNING, "%s: IPKIX URL with a NUL byte",
		         owner);
		st = P11MAIL_ERR_DISCOVERY;
		goto out;
	}
	if (asprintf(&origin, "DNS CERT IPKIX %s -> %s", owner, url) < 0) {
		origin = NULL;
		goto out;
	}
	st = p11m_fetch_url(url, timeout, P11M_DISC_MAX_CERT, &body, &body_len);
	if (st == P11MAIL_ERR_LIMIT)
		st = P11MAIL_ERR_DISCOVERY;
	if (st != P11MAIL_OK)
		goto out;
	st = p11m_disc_list_add_any(list, body, body_len, "dns", origin);
	/* Kept as it is, so that it shows as malformed. */
	if (st == P11MAIL_ERR_FORMAT)
		st = p11m_disc_list_add(list, body, body_len, "dns", origin);
out:
	free(body);
	free(url);
	free(origin);
	return st;
}

/* Handles one CERT record: PKIX inline, IPKIX by URL, others ignored. */
static enum p11mail_status add_cert_rr(struct p11m_disc_list *list,
                                       const char *owner, const ldns_rr *rr,
                                       int timeout)
{
	const ldns_rdf *data;
	char origin[300];
	unsigned type;

	if (ldns_rr_rd_count(rr) != 4)
		return P11MAIL_OK;
	type = rdf_u16(ldns_rr_rdf(rr, 0));
	data = ldns_rr_rdf(rr, 3);

	if (type == CERT_TYPE_PKIX) {
		snprintf(origin, sizeof(origin), "DNS CERT PKIX %s", owner);
		return p11m_disc_list_add(list, ldns_rdf_data(data),
		                          ldns_rdf_size(data), "dns", origin);
	}
	if (type == CERT_TYPE_IPKIX)
		return add_ipkix(list, owner, ldns_rdf_data(data),
		                 ldns_rdf_size(data), timeout);
	p11m_trace("discover", "%s: CERT type %u ignored", owner, type);
	return P11MAIL_OK;
}

enum p11mail_status p11m_dns_certs(struct p11m_dns *dns, const char *owner,
                                   int timeout, struct p11m_disc_list *list)
{
	enum p11mail_status st;
	ldns_rr_list *rrs = NULL;
	ldns_pkt *pkt = NULL;
	int fetch_failed = 0;

	st = dns_query(dns, owner, LDNS_RR_TYPE_CERT, &pkt);
	if (st != P11MAIL_OK)
		goto out;
	rrs = ldns_pkt_rr_list_by_type(pkt, LDNS_RR_TYPE_CERT,
	                               LDNS_SECTION_ANSWER);
	for (size_t i = 0; rrs != NULL && i < ldns_rr_list_rr_count(rrs); i++) {
		st = add_cert_rr(list, owner, ldns_rr_list_rr(rrs, i), timeout);
		if (st == P11MAIL_ERR_DISCOVERY) {
			fetch_failed = 1;
			continue;
		}
		if (st == P11MAIL_ERR_LIMIT) {
			p11m_log(P11MAIL_LOG_WARNING,
			         "%s: too many or too large CERT records; "
			         "the rest are ignored",
			         owner);
			break;
		}
		if (st != P11MAIL_OK)
			goto out;
	}
	st = fetch_failed ? P11MAIL_ERR_DISCOVERY : P11MAIL_OK;
out:
	ldns_rr_list_deep_free(rrs);
	ldns_pkt_free(pkt);
	return st;
}

/* Copies a domain name rdf to text without the final dot. */
static char *dname_text(const ldns_rdf *rdf)
{
	char *s = ldns_rdf2str(rdf);
	size_t n;

	if (s == NULL)
		return NULL;
	n = strlen(s);
	if (n > 1 && s[n - 1] == '.')
		s[n - 1] = '\0';
	return s;
}

void p11m_srv_free(struct p11m_srv *srv, size_t count)
{
	if (srv == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free(srv[i].target);
	free(srv);
}

/* Reads arc4random-quality bits from OpenSSL for the SRV weights. */
static uint32_t srv_random(void *arg)
{
	uint32_t v = 0;

	(void)arg;
	if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
		v = (uint32_t)random();
	return v;
}

enum p11mail_status p11m_dns_srv(struct p11m_dns *dns, const char *name,
                                 struct p11m_srv **out, size_t *count)
{
	struct p11m_srv *srv = NULL;
	enum p11mail_status st;
	ldns_rr_list *rrs = NULL;
	ldns_pkt *pkt = NULL;
	size_t n = 0, total = 0;

	*out = NULL;
	*count = 0;
	st = dns_query(dns, name, LDNS_RR_TYPE_SRV, &pkt);
	if (st != P11MAIL_OK)
		goto out;
	rrs = ldns_pkt_rr_list_by_type(pkt, LDNS_RR_TYPE_SRV,
	                               LDNS_SECTION_ANSWER);
	total = rrs != NULL ? ldns_rr_list_rr_count(rrs) : 0;
	if (total > P11M_DISC_MAX_SERVERS)
		total = P11M_DISC_MAX_SERVERS;
	if (total == 0)
		goto out;
	srv = calloc(total, sizeof(*srv));
	if (srv == NULL) {
		st = P11MAIL_ERR_NOMEM;
		goto out;
	}

	for (size_t i = 0; i < total; i++) {
		const ldns_rr *rr = ldns_rr_list_rr(rrs, i);

		if (ldns_rr_rd_count(rr) != 4)
			continue;
		srv[n].priority = (uint16_t)rdf_u16(ldns_rr_rdf(rr, 0));
		srv[n].weight = (uint16_t)rdf_u16(ldns_rr_rdf(rr, 1));
		srv[n].port = (uint16_t)rdf_u16(ldns_rr_rdf(rr, 2));
		srv[n].target = dname_text(ldns_rr_rdf(rr, 3));
		if (srv[n].target == NULL) {
			st = P11MAIL_ERR_NOMEM;
			goto out;
		}
		/* "." means the service is decidedly not available here. */
		if (strcmp(srv[n].target, ".") == 0) {
			free(srv[n].target);
			srv[n].target = NULL;
			continue;
		}
		n++;
	}
	p11m_srv_order(srv, n, srv_random, NULL);
	*out = srv;
	*count = n;
	srv = NULL;
out:
	p11m_srv_free(srv, total);
	ldns_rr_list_deep_free(rrs);
	ldns_pkt_free(pkt);
	return st;
}

/* Formats the first A (else AAAA) record of the answer as URL host text. */
static char *first_address(ldns_pkt *pkt, ldns_rr_type type)
{
	char text[INET6_ADDRSTRLEN + 2], *result = NULL;
	ldns_rr_list *rrs;
	const ldns_rdf *rdf;

	rrs = ldns_pkt_rr_list_by_type(pkt, type, LDNS_SECTION_ANSWER);
	if (rrs == NULL || ldns_rr_list_rr_count(rrs) == 0)
		goto out;
	rdf = ldns_rr_rdf(ldns_rr_list_rr(rrs, 0), 0);
	if (type == LDNS_RR_TYPE_A && ldns_rdf_size(rdf) == 4)
		inet_ntop(AF_INET, ldns_rdf_data(rdf), text, sizeof(text));
	else if (type == LDNS_RR_TYPE_AAAA && ldns_rdf_size(rdf) == 16) {
		text[0] = '[';
		inet_ntop(AF_INET6, ldns_rdf_data(rdf), text + 1,
		          sizeof(text) - 2);
		strcat(text, "]");
	} else
		goto out;
	result = strdup(text);
out:
	ldns_rr_list_deep_free(rrs);
	return result;
}

enum p11mail_status p11m_dns_address(struct p11m_dns *dns, const char *host,
                                     char **out)
{
	static const ldns_rr_type types[] = {LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA};
	enum p11mail_status st = P11MAIL_ERR_NOT_FOUND;
	ldns_pkt *pkt = NULL;

	*out = NULL;
	for (size_t i = 0; i < P11M_ARRAY_SIZE(types) && *out == NULL; i++) {
		st = dns_query(dns, host, types[i], &pkt);
		if (st != P11MAIL_OK)
			break;
		*out = first_address(pkt, types[i]);
		ldns_pkt_free(pkt);
		pkt = NULL;
		st = *out != NULL ? P11MAIL_OK : P11MAIL_ERR_NOT_FOUND;
	}
	return st;
}
