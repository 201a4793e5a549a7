/*
 * LDAP side of discovery over libldap: anonymous bind, naming contexts from
 * the root DSE, then (mail=VALUE) under each one for userCertificate.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ldap.h>

#include "common.h"
#include "discover.h"

#define MAX_CONTEXTS 8

/* Connects to url and binds anonymously, with timeouts on every step. */
static enum p11mail_status ldap_open(const char *url, int timeout, LDAP **out)
{
	struct timeval tv = {.tv_sec = timeout};
	struct berval cred = {0, NULL};
	int version = LDAP_VERSION3;
	int sizelimit = P11M_DISC_MAX_ITEMS;
	enum p11mail_status st;
	LDAP *ld = NULL;
	int rc;

	*out = NULL;
	rc = ldap_initialize(&ld, url);
	if (rc != LDAP_SUCCESS) {
		p11m_log(P11MAIL_LOG_WARNING, "bad LDAP URL %s: %s", url,
		         ldap_err2string(rc));
		st = P11MAIL_ERR_DISCOVERY;
		goto out;
	}
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
	ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_SIZELIMIT, &sizelimit);
	ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);

	rc = ldap_sasl_bind_s(ld, NULL, LDAP_SASL_SIMPLE, &cred, NULL, NULL,
	                      NULL);
	if (rc != LDAP_SUCCESS) {
		p11m_log(P11MAIL_LOG_WARNING,
		         "LDAP server %s: anonymous bind failed: %s", url,
		         ldap_err2string(rc));
		st = P11MAIL_ERR_DISCOVERY;
		goto out;
	}
	*out = ld;
	ld = NULL;
	st = P11MAIL_OK;
out:
	if (ld != NULL)
		ldap_unbind_ext_s(ld, NULL, NULL);
	return st;
}

/* Reads the naming contexts the root DSE advertises. */
static enum p11mail_status ldap_contexts(LDAP *ld, const char *url, int timeout,
                                         struct berval ***out)
{
	static char nc[] = "namingContexts";
	char *attrs[] = {nc, NULL};
	struct timeval tv = {.tv_sec = timeout};
	LDAPMessage *res = NULL, *entry;
	enum p11mail_status st;
	int rc;

	*out = NULL;
	rc = ldap_search_ext_s(ld, "", LDAP_SCOPE_BASE, "(objectClass=*)",
	                       attrs, 0, NULL, NULL, &tv, 0, &res);
	if (rc != LDAP_SUCCESS) {
		p11m_log(P11MAIL_LOG_WARNING,
		         "cannot read the root DSE of %s: %s", url,
		         ldap_err2string(rc));
		st = P11MAIL_ERR_DISCOVERY;
		goto out;
	}
	entry = ldap_first_entry(ld, res);
	if (entry != NULL)
		*out = ldap_get_values_len(ld, entry, "namingContexts");
	st = P11MAIL_OK;
out:
	ldap_msgfree(res);
	return st;
}

static int is_cert_attr(const char *attr)
{
	return strncasecmp(attr, "userCertificate", 15) == 0 &&
	       (attr[15] == '\0' || attr[15] == ';');
}

/* Appends every userCertificate value of one entry. */
static enum p11mail_status add_entry(LDAP *ld, LDAPMessage *entry,
                                     const char *url,
                                     struct p11m_disc_list *list)
{
	enum p11mail_status st = P11MAIL_OK;
	struct berval **vals = NULL;
	BerElement *ber = NULL;
	char *dn, *attr, *origin = NULL;

	dn = ldap_get_dn(ld, entry);
	if (asprintf(&origin, "LDAP %s %s", url, dn != NULL ? dn : "?") < 0) {
		origin = NULL;
		st = P11MAIL_ERR_NOMEM;
		goto out;
	}
	for (attr = ldap_first_attribute(ld, entry, &ber); attr != NULL;
	     attr = ldap_next_attribute(ld, entry, ber)) {
		if (is_cert_attr(attr))
			vals = ldap_get_values_len(ld, entry, attr);
		ldap_memfree(attr);
		for (size_t i = 0; vals != NULL && vals[i] != NULL; i++) {
			const unsigned char *v =
			        (const unsigned char *)vals[i]->bv_val;

			st = p11m_disc_list_add_any(list, v, vals[i]->bv_len,
			                            "ldap", origin);
			/* Kept as it is, so that it shows as malformed. */
			if (st == P11MAIL_ERR_FORMAT)
				st = p11m_disc_list_add(list, v,
				                        vals[i]->bv_len, "ldap",
				                        origin);
			if (st != P11MAIL_OK)
				break;
		}
		ldap_value_free_len(vals);
		vals = NULL;
		if (st != P11MAIL_OK)
			break;
	}
out:
	ber_free(ber, 0);
	ldap_memfree(dn);
	free(origin);
	return st;
}

/* Searches one naming context for (mail=value). */
static enum p11mail_status ldap_find(LDAP *ld, const char *url,
                                     const char *base, const char *filter,
                                     int timeout, struct p11m_disc_list *list)
{
	static char binary[] = "userCertificate;binary";
	static char plain[] = "userCertificate";
	char *attrs[] = {binary, plain, NULL};
	struct timeval tv = {.tv_sec = timeout};
	enum p11mail_status st = P11MAIL_OK;
	LDAPMessage *res = NULL, *entry;
	int rc;

	rc = ldap_search_ext_s(ld, base, LDAP_SCOPE_SUBTREE, filter, attrs, 0,
	                       NULL, NULL, &tv, P11M_DISC_MAX_ITEMS, &res);
	if (rc == LDAP_NO_SUCH_OBJECT)
		goto out;
	if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
		p11m_log(P11MAIL_LOG_WARNING, "LDAP search of %s under %s: %s",
		         url, base, ldap_err2string(rc));
		st = P11MAIL_ERR_DISCOVERY;
		goto out;
	}
	for (entry = ldap_first_entry(ld, res); entry != NULL;
	     entry = ldap_next_entry(ld, entry)) {
		st = add_entry(ld, entry, url, list);
		if (st == P11MAIL_ERR_LIMIT) {
			p11m_log(P11MAIL_LOG_WARNING,
			         "%s: too many certificates; the rest are "
			         "ignored",
			         url);
			st = P11MAIL_OK;
			break;
		}
		if (st != P11MAIL_OK)
			break;
	}
out:
	ldap_msgfree(res);
	return st;
}

/* Builds (mail=VALUE) with the value escaped for a filter. */
static char *mail_filter(const char *value)
{
	struct berval in, esc = {0, NULL};
	char *filter = NULL;

	in.bv_val = (char *)(uintptr_t)value;
	in.bv_len = strlen(value);
	if (ldap_bv2escaped_filter_value(&in, &esc) != 0)
		return NULL;
	if (asprintf(&filter, "(mail=%s)", esc.bv_val) < 0)
		filter = NULL;
	ber_memfree(esc.bv_val);
	return filter;
}

enum p11mail_status p11m_ldap_certs(const char *url, const char *value,
                                    int timeout, struct p11m_disc_list *list)
{
	struct berval **contexts = NULL;
	enum p11mail_status st;
	char *filter = NULL;
	LDAP *ld = NULL;

	filter = mail_filter(value);
	if (filter == NULL) {
		st = P11MAIL_ERR_NOMEM;
		goto out;
	}
	st = ldap_open(url, timeout, &ld);
	if (st != P11MAIL_OK)
		goto out;
	st = ldap_contexts(ld, url, timeout, &contexts);
	if (st != P11MAIL_OK)
		goto out;
	if (contexts == NULL)
		p11m_log(P11MAIL_LOG_WARNING,
		         "LDAP server %s advertises no naming context", url);

	for (size_t i = 0;
	     contexts != NULL && contexts[i] != NULL && i < MAX_CONTEXTS; i++) {
		char *base = strndup(contexts[i]->bv_val, contexts[i]->bv_len);

		if (base == NULL) {
			st = P11MAIL_ERR_NOMEM;
			goto out;
		}
		p11m_trace("discover", "%s: searching %s under '%s'", url,
		           filter, base);
		st = ldap_find(ld, url, base, filter, timeout, list);
		free(base);
		if (st != P11MAIL_OK)
			goto out;
	}
out:
	ldap_value_free_len(contexts);
	if (ld != NULL)
		ldap_unbind_ext_s(ld, NULL, NULL);
	free(filter);
	return st;
}
