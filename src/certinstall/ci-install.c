/*
 * p11mail-certinstall install and register: an issued certificate joined
 * to its key on the token and recorded as an identity of this workstation.
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "certcheck.h"
#include "certinstall/ci.h"
#include "common.h"
#include "store.h"

/* True when the key on the token is the certificate's public key. */
static int key_matches(const struct tok_key_info *info, X509 *cert)
{
	EVP_PKEY *pk = X509_get0_pubkey(cert);
	unsigned char point[200];
	BIGNUM *n = NULL, *tn = NULL;
	size_t len = 0;
	int same = 0;

	if (pk == NULL)
		return 0;
	if (info->type == TOK_KEY_RSA && EVP_PKEY_is_a(pk, "RSA")) {
		tn = BN_bin2bn(info->modulus, (int)info->modulus_len, NULL);
		same = tn != NULL &&
		       EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) &&
		       BN_cmp(n, tn) == 0;
	} else if (info->type == TOK_KEY_EC && EVP_PKEY_is_a(pk, "EC")) {
		same = EVP_PKEY_get_octet_string_param(
		               pk, OSSL_PKEY_PARAM_PUB_KEY, point,
		               sizeof(point), &len) &&
		       len == info->ec_point_len &&
		       memcmp(point, info->ec_point, len) == 0;
	}
	BN_free(n);
	BN_free(tn);
	return same;
}

/*
 * The URI of the private key with the id of a listed object: the object's
 * URI with its type replaced.  NULL when memory runs out.
 */
static char *private_uri(const char *uri)
{
	static const char *const types[] = {";type=public", ";type=cert",
	                                    ";type=private"};
	const char *type = NULL;
	size_t len = strlen(uri) + sizeof("type=private"), tlen = 0;
	char *res = malloc(len);

	if (res == NULL)
		return NULL;
	for (size_t i = 0; i < P11M_ARRAY_SIZE(types) && type == NULL; i++) {
		type = strstr(uri, types[i]);
		tlen = strlen(types[i]);
	}
	if (type == NULL)
		snprintf(res, len, "%s;type=private", uri);
	else
		snprintf(res, len, "%.*s;type=private%s", (int)(type - uri),
		         uri, type + tlen);
	return res;
}

/*
 * Compares cert's public key with a listed object without logging in:
 * certificate objects by their own public key, key objects by the public
 * attributes the token shows (tok_probe_key with no login).  Returns 1
 * for the same key, 0 for another, -1 when there is nothing to compare.
 */
static int public_match(struct ci *ci, const struct tok_object *o, X509 *cert,
                        const unsigned char *der, size_t len)
{
	struct tok_key_probe probe;
	const unsigned char *p = o->der;
	X509 *x;
	int same;

	if (o->cls == CKO_CERTIFICATE) {
		x = p != NULL ? d2i_X509(NULL, &p, (long)o->der_len) : NULL;
		same = x == NULL ? -1
		                 : EVP_PKEY_eq(X509_get0_pubkey(x),
		                               X509_get0_pubkey(cert)) == 1;
		X509_free(x);
		return same;
	}
	/* Without an id the object cannot name one key. */
	if ((o->cls != CKO_PUBLIC_KEY && o->cls != CKO_PRIVATE_KEY) ||
	    o->id_len == 0)
		return -1;
	if (tok_probe_key(ci->core, o->uri, 0, der, len, &probe) != CKR_OK)
		return -1;
	return probe.matches;
}

/*
 * Opens the private key named by uri (logging in to its token) and keeps
 * it when it is cert's.  Returns CKR_OK with *key set or NULL (another
 * key, or no private key with that id), or the failure to open it.
 */
static CK_RV open_if_matching(struct ci *ci, const char *uri, X509 *cert,
                              tok_key **key)
{
	tok_key *k = NULL;
	CK_RV rv;

	*key = NULL;
	rv = tok_key_open(ci->core, uri, &k);
	if (rv == CKR_KEY_HANDLE_INVALID)
		return CKR_OK;
	if (rv != CKR_OK)
		return rv;
	if (key_matches(tok_key_info(k), cert))
		*key = k;
	else
		tok_key_unref(k);
	return CKR_OK;
}

/*
 * Starts the token core and lists the objects of the tokens --token names.
 * Nothing logs in: private keys only show on tokens that need no login.
 * Free *objs with tok_objects_free; returns an exit status.
 */
static int token_objects(struct ci *ci, struct tok_object **objs, size_t *n)
{
	int rc;
	CK_RV rv;

	*objs = NULL;
	*n = 0;
	rc = ci_token(ci);
	if (rc != TOOL_EXIT_OK)
		return rc;
	rv = tok_list_objects(ci->core, ci->token_uri, objs, n);
	if (rv != CKR_OK)
		return ci_token_error(
		        ci->token_uri[7] == '\0'
		                ? "cannot list the objects of every "
		                  "token (name one with --token URI)"
		                : "cannot list the token's objects",
		        rv);
	return TOOL_EXIT_OK;
}

/* True when --token names something rather than every token. */
static int token_named(const struct ci *ci)
{
	return strcmp(ci->token_uri, "pkcs11:") != 0;
}

/*
 * The key found by the public objects of every token --token matches:
 * only a token whose public key or certificate is cert's is logged in to.
 * *candidates counts the keys that were tried that way.
 */
static CK_RV find_by_public(struct ci *ci, X509 *cert, struct tok_object *objs,
                            size_t n, size_t *candidates, tok_key **key)
{
	unsigned char *der = NULL;
	char **tried = calloc(n + 1, sizeof(*tried));
	size_t len = 0, ntried = 0;
	CK_RV rv = CKR_OK;

	*candidates = 0;
	if (tried == NULL || ci_der(cert, &der, &len) < 0) {
		free(tried);
		return CKR_HOST_MEMORY;
	}
	for (size_t i = 0; i < n && *key == NULL && rv == CKR_OK; i++) {
		char *uri;
		int seen = 0;

		if (public_match(ci, &objs[i], cert, der, len) != 1)
			continue;
		uri = private_uri(objs[i].uri);
		if (uri == NULL) {
			rv = CKR_HOST_MEMORY;
			break;
		}
		for (size_t j = 0; j < ntried && !seen; j++)
			seen = strcmp(tried[j], uri) == 0;
		if (seen) {
			free(uri);
			continue;
		}
		tried[ntried++] = uri;
		(*candidates)++;
		rv = open_if_matching(ci, uri, cert, key);
	}
	for (size_t j = 0; j < ntried; j++)
		free(tried[j]);
	free(tried);
	free(der);
	return rv;
}

/*
 * --token named a token whose public objects do not show the key: log in
 * to that one token and look at its private keys.  Returns an exit
 * status, having printed why on failure.
 */
static int find_after_login(struct ci *ci, X509 *cert, tok_key **key)
{
	struct tok_object *objs = NULL;
	struct tok_key_probe probe;
	size_t n = 0;
	CK_RV rv;

	rv = tok_probe_key(ci->core, ci->token_uri, 1, NULL, 0, &probe);
	if (rv != CKR_OK)
		return ci_token_error("cannot look at the token", rv);
	if (probe.tokens != 1)
		return TOOL_EXIT_OK;
	if (probe.login_rv != CKR_OK) {
		if (ci_pin_refused())
			return TOOL_EXIT_FAILURE; /* the guard said why */
		tool_error("cannot log in to the token %s: %s",
		           probe.token_label, probe.login_error);
		return TOOL_EXIT_FAILURE;
	}
	rv = tok_list_objects(ci->core, ci->token_uri, &objs, &n);
	for (size_t i = 0; rv == CKR_OK && i < n && *key == NULL; i++) {
		char *uri;

		if (objs[i].cls != CKO_PRIVATE_KEY || objs[i].id_len == 0)
			continue;
		uri = private_uri(objs[i].uri);
		rv = uri != NULL ? open_if_matching(ci, uri, cert, key)
		                 : CKR_HOST_MEMORY;
		free(uri);
	}
	tok_objects_free(objs, n);
	if (rv != CKR_OK)
		return ci_token_error("cannot open the token's keys", rv);
	return TOOL_EXIT_OK;
}

int ci_find_key_for(struct ci *ci, X509 *cert, int quiet, tok_key **key)
{
	struct tok_object *objs = NULL;
	size_t n = 0, candidates = 0;
	int rc;
	CK_RV rv;

	*key = NULL;
	rc = token_objects(ci, &objs, &n);
	if (rc != TOOL_EXIT_OK)
		return rc;
	rv = find_by_public(ci, cert, objs, n, &candidates, key);
	tok_objects_free(objs, n);
	if (rv != CKR_OK)
		return ci_token_error("cannot open the certificate's key", rv);
	if (*key == NULL && candidates == 0 && token_named(ci)) {
		rc = find_after_login(ci, cert, key);
		if (rc != TOOL_EXIT_OK)
			return rc;
	}
	if (*key != NULL)
		return TOOL_EXIT_OK;
	if (quiet)
		return TOOL_EXIT_FAILURE;
	if (token_named(ci))
		tool_error("no private key on the token (%s) belongs to this "
		           "certificate: install it on the token that holds "
		           "its key, or use --token",
		           ci->token_uri);
	else if (candidates == 0)
		tool_error("no token shows a public key or certificate that "
		           "matches this certificate (tokens are searched "
		           "without logging in): name the token that holds its "
		           "key with --token URI");
	else
		tool_error("the token showing this certificate's public key "
		           "holds no private key for it: install it on the "
		           "token that holds its key, or use --token");
	return TOOL_EXIT_FAILURE;
}

/* Concatenated DER of the chain, or NULL/0 when there is none. */
static int chain_der(STACK_OF(X509) * chain, unsigned char **out,
                     size_t *out_len)
{
	unsigned char *buf = NULL, *grown, *der;
	size_t len = 0, n;

	*out = NULL;
	*out_len = 0;
	for (int i = 0; i < sk_X509_num(chain); i++) {
		if (ci_der(sk_X509_value(chain, i), &der, &n) < 0)
			goto fail;
		grown = realloc(buf, len + n);
		if (grown == NULL) {
			free(der);
			goto fail;
		}
		buf = grown;
		memcpy(buf + len, der, n);
		len += n;
		free(der);
	}
	*out = buf;
	*out_len = len;
	return 0;
fail:
	free(buf);
	return -1;
}

/*
 * One line for an address: what the store (changed) and the token
 * (token_changed: its certificate for the key was replaced) now hold.
 */
static void report_identity(const struct ci *ci, const char *address,
                            const char *fp, const char *uri, int changed,
                            int token_changed)
{
	if (ci->g->json) {
		printf("{\"address\":");
		ci_json_string(stdout, address);
		printf(",\"fingerprint\":\"%s\",\"key_uri\":", fp);
		ci_json_string(stdout, uri);
		printf(",\"changed\":%s,\"token_certificate_replaced\":%s}\n",
		       changed || token_changed ? "true" : "false",
		       token_changed ? "true" : "false");
	} else if (changed) {
		printf("%s: identity recorded (certificate %.16s..., key "
		       "%s)%s\n",
		       address, fp, uri,
		       token_changed ? "; it replaced the token's other "
		                       "certificate for this key"
		                     : "");
	} else if (token_changed) {
		printf("%s: already recorded; the token's other certificate "
		       "for this key was replaced by this one\n",
		       address);
	} else if (!ci->g->quiet) {
		printf("%s: already installed; nothing changed\n", address);
	}
}

int ci_record_identity(struct ci *ci, X509 *leaf, STACK_OF(X509) * chain,
                       const char *key_uri, int token_changed)
{
	STACK_OF(OPENSSL_STRING) *addrs = ci_cert_addresses(leaf);
	struct p11mail_identity id = {0};
	int rc = TOOL_EXIT_FAILURE, i = 0;
	unsigned char added[64] = {0};
	char fp[65];

	if (addrs == NULL || sk_OPENSSL_STRING_num(addrs) == 0) {
		tool_error("the certificate names no mail address: it cannot "
		           "be an S/MIME identity");
		goto out;
	}
	if (ci_der(leaf, &id.cert, &id.cert_len) < 0 ||
	    chain_der(chain, &id.chain, &id.chain_len) < 0)
		goto out;
	id.key_uri = strdup(key_uri);
	if (id.key_uri == NULL)
		goto out;
	p11m_fingerprint(id.cert, id.cert_len, fp);
	rc = TOOL_EXIT_OK;
	for (i = 0; i < sk_OPENSSL_STRING_num(addrs) && rc == 0; i++) {
		enum p11mail_status st;

		id.address = sk_OPENSSL_STRING_value(addrs, i);
		st = p11mail_identity_add(ci->store, &id);
		if (st == P11MAIL_OK || st == P11MAIL_ERR_EXISTS)
			report_identity(ci, id.address, fp, key_uri,
			                st == P11MAIL_OK, token_changed);
		else
			rc = tool_exit_status(st);
		added[i < 64 ? i : 63] = st == P11MAIL_OK;
	}
	/* All addresses or none: forget the rows this call added. */
	for (int j = 0; rc != 0 && j + 1 < i && j < 64; j++)
		if (added[j])
			p11mail_identity_remove(
			        ci->store, sk_OPENSSL_STRING_value(addrs, j),
			        fp);
	id.address = NULL;
out:
	free(id.cert);
	free(id.chain);
	free(id.key_uri);
	ci_addresses_free(addrs);
	return rc;
}

int ci_check_usable(X509 *x)
{
	char sign[200], encrypt[200];

	if (certcheck_policy(x, CERTCHECK_SIGN, sign, sizeof(sign)) ==
	            P11MAIL_OK ||
	    certcheck_policy(x, CERTCHECK_ENCRYPT, encrypt, sizeof(encrypt)) ==
	            P11MAIL_OK)
		return TOOL_EXIT_OK;
	if (strcmp(sign, encrypt) == 0)
		tool_error("the certificate cannot serve S/MIME: %s; nothing "
		           "was changed",
		           sign);
	else
		tool_error("the certificate cannot serve S/MIME: for signing "
		           "%s, for encryption %s; nothing was changed",
		           sign, encrypt);
	return TOOL_EXIT_FAILURE;
}

/* The UTC date of t (YYYY-MM-DD) into buf, left alone when unreadable. */
static void asn1_date(const ASN1_TIME *t, char buf[16])
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm))
		strftime(buf, 16, "%Y-%m-%d", &tm);
}

/*
 * Refuses to replace the token's certificate old (DER) by leaf when old
 * stays valid longer, unless --replace.  Returns an exit status.
 */
static int replace_allowed(const struct ci *ci, const unsigned char *old,
                           size_t old_len, X509 *leaf)
{
	const unsigned char *p = old;
	X509 *x = d2i_X509(NULL, &p, (long)old_len);
	char until_old[16] = "?", until_new[16] = "?";
	int day = 0, sec = 0, later = 0;

	if (x != NULL && ASN1_TIME_diff(&day, &sec, X509_get0_notAfter(leaf),
	                                X509_get0_notAfter(x)))
		later = day > 0 || (day == 0 && sec > 0);
	if (!later || ci->replace) {
		X509_free(x);
		return TOOL_EXIT_OK;
	}
	asn1_date(X509_get0_notAfter(x), until_old);
	asn1_date(X509_get0_notAfter(leaf), until_new);
	tool_error("the token's certificate for this key is valid until %s, "
	           "longer than this one (until %s): nothing was changed; "
	           "give --replace to put this one on the token all the same",
	           until_old, until_new);
	X509_free(x);
	return TOOL_EXIT_FAILURE;
}

int ci_put_cert(struct ci *ci, tok_key *key, X509 *leaf, int *written,
                int *replaced)
{
	const struct tok_key_info *info = tok_key_info(key);
	unsigned char *der = NULL;
	size_t len = 0;
	int rc = TOOL_EXIT_OK;
	CK_RV rv = CKR_OK;

	*written = 0;
	*replaced = 0;
	if (ci_der(leaf, &der, &len) < 0)
		return TOOL_EXIT_FAILURE;
	/* The key's own URI: the token that holds it, whatever --token says. */
	if (info->cert_der != NULL && info->cert_der_len == len &&
	    memcmp(info->cert_der, der, len) == 0) {
		rc = TOOL_EXIT_OK;
	} else if (info->cert_der != NULL) {
		/* A renewal for the same key: the token follows the store. */
		rc = replace_allowed(ci, info->cert_der, info->cert_der_len,
		                     leaf);
		if (rc == TOOL_EXIT_OK)
			rv = tok_replace_certificate(ci->core, info->uri, der,
			                             len, info->id,
			                             info->id_len, info->label);
		*replaced = rc == TOOL_EXIT_OK && rv == CKR_OK;
	} else {
		rv = tok_write_certificate(ci->core, info->uri, der, len,
		                           info->id, info->id_len, info->label);
		*written = rv == CKR_OK;
	}
	if (rv != CKR_OK)
		rc = ci_token_error("cannot write the certificate to the token",
		                    rv);
	free(der);
	return rc;
}

void ci_take_back(struct ci *ci, tok_key *key, unsigned int what)
{
	const struct tok_key_info *info = tok_key_info(key);
	char why[1200];
	size_t n = 0;
	CK_RV rv;

	rv = tok_delete_objects(ci->core, info->uri, info->id, info->id_len,
	                        what, &n);
	if (rv == CKR_OK) {
		tool_warn("what this command wrote to the token was removed "
		          "again (%zu objects): nothing was installed",
		          n);
		return;
	}
	snprintf(why, sizeof(why),
	         "cannot remove again what this command wrote to the token; "
	         "delete the objects of %s by hand",
	         info->uri);
	ci_token_error(why, rv);
}

/* Appends the certificates of path to chain. */
static int add_chain_file(STACK_OF(X509) * chain, const char *path)
{
	STACK_OF(X509) *more = ci_read_certs(path);
	X509 *x;

	if (more == NULL)
		return TOOL_EXIT_FAILURE;
	while ((x = sk_X509_shift(more)) != NULL)
		if (!sk_X509_push(chain, x))
			X509_free(x);
	sk_X509_free(more);
	return TOOL_EXIT_OK;
}

static int install_usage(void)
{
	printf("Usage: p11mail-certinstall install CERTFILE [--chain FILE] "
	       "[--replace] [--token URI]\n"
	       "       [--use-configured-pin] [--system] [--yes]\n"
	       "Puts an issued certificate on the token next to its key and "
	       "records the identity.\n"
	       "--replace puts it there even when the token's certificate for "
	       "the key stays valid longer.\n");
	return TOOL_EXIT_OK;
}

struct install_args {
	const char *chain;
	int replace;
};

static int install_option(void *arg, int c, const char *value)
{
	struct install_args *a = arg;

	if (c == 'C')
		a->chain = value;
	else if (c == 'R')
		a->replace = 1;
	else
		return -1;
	return 0;
}

int ci_cmd_install(const struct tool_globals *g, int argc, char **argv)
{
	static const struct option extra[] = {
	        {"chain", required_argument, NULL, 'C'},
	        {"replace", no_argument, NULL, 'R'}};
	struct install_args a = {NULL, 0};
	STACK_OF(X509) *certs = NULL;
	struct ci ci = {0};
	tok_key *key = NULL;
	X509 *leaf = NULL;
	int rc, written = 0, replaced = 0;

	rc = ci_parse_options(&ci, argc, argv, extra, 2, install_option, &a,
	                      install_usage);
	if (rc >= 0)
		return rc;
	if (optind + 1 != argc)
		return tool_usage_error("install takes one certificate file");
	ci.replace = a.replace;
	rc = ci_begin(&ci, g);
	if (rc == 0 && (certs = ci_read_certs(argv[optind])) == NULL)
		rc = TOOL_EXIT_FAILURE;
	if (rc == 0 && a.chain != NULL)
		rc = add_chain_file(certs, a.chain);
	if (rc == 0) {
		leaf = sk_X509_shift(certs);
		rc = ci_check_usable(leaf);
	}
	/* The store first: a busy or damaged store stops before the token. */
	if (rc == 0)
		rc = ci_store(&ci);
	if (rc == 0)
		rc = ci_find_key_for(&ci, leaf, 0, &key);
	if (rc == 0)
		rc = ci_put_cert(&ci, key, leaf, &written, &replaced);
	if (rc == 0) {
		rc = ci_record_identity(&ci, leaf, certs,
		                        tok_key_info(key)->uri, replaced);
		if (rc != 0 && written)
			ci_take_back(&ci, key, TOK_DELETE_CERT);
	}
	tok_key_unref(key);
	X509_free(leaf);
	sk_X509_pop_free(certs, X509_free);
	ci_end(&ci);
	return rc;
}

static int register_usage(void)
{
	printf("Usage: p11mail-certinstall register (--address ADDRESS | "
	       "--uri KEY-URI) [--token URI] [--system]\n"
	       "Records an identity whose key and certificate are already "
	       "on a token.\n");
	return TOOL_EXIT_OK;
}

struct register_args {
	const char *address;
	const char *uri;
};

static int register_option(void *arg, int c, const char *value)
{
	struct register_args *a = arg;

	if (c == 'a')
		a->address = value;
	else if (c == 'u')
		a->uri = value;
	else
		return -1;
	return 0;
}

/* True when x names address. */
static int cert_names(X509 *x, const char *address)
{
	STACK_OF(OPENSSL_STRING) *addrs = ci_cert_addresses(x);
	int found = 0;

	for (int i = 0; i < sk_OPENSSL_STRING_num(addrs); i++)
		if (strcasecmp(sk_OPENSSL_STRING_value(addrs, i), address) == 0)
			found = 1;
	ci_addresses_free(addrs);
	return found;
}

/* register --uri: the certificate paired with that key on the token. */
static int register_uri(struct ci *ci, const char *uri)
{
	const struct tok_key_info *info;
	const unsigned char *p;
	tok_key *key = NULL;
	X509 *x = NULL;
	int rc;
	CK_RV rv;

	rc = ci_token(ci);
	if (rc != 0)
		return rc;
	rv = tok_key_open(ci->core, uri, &key);
	if (rv != CKR_OK)
		return ci_token_error("cannot find the key", rv);
	info = tok_key_info(key);
	p = info->cert_der;
	if (p == NULL ||
	    (x = d2i_X509(NULL, &p, (long)info->cert_der_len)) == NULL) {
		tool_error("the token holds no certificate for the key %s: "
		           "use 'p11mail-certinstall install CERTFILE'",
		           info->uri);
		rc = TOOL_EXIT_FAILURE;
	} else {
		rc = ci_record_identity(ci, x, NULL, info->uri, 0);
	}
	X509_free(x);
	tok_key_unref(key);
	return rc;
}

/* register --address: every certificate for it that has its key there. */
static int register_address(struct ci *ci, const char *address)
{
	struct tok_object *objs = NULL;
	size_t n = 0, done = 0;
	int rc;

	rc = token_objects(ci, &objs, &n);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const unsigned char *p = objs[i].der;
		tok_key *key = NULL;
		X509 *x;

		if (objs[i].cls != CKO_CERTIFICATE || p == NULL)
			continue;
		x = d2i_X509(NULL, &p, (long)objs[i].der_len);
		if (x != NULL && cert_names(x, address) &&
		    ci_find_key_for(ci, x, 1, &key) == 0) {
			rc = ci_record_identity(ci, x, NULL,
			                        tok_key_info(key)->uri, 0);
			done++;
		}
		tok_key_unref(key);
		X509_free(x);
	}
	tok_objects_free(objs, n);
	if (rc == 0 && done == 0) {
		tool_error("no certificate for %s with its key on the token "
		           "(%s)",
		           address, ci->token_uri);
		rc = TOOL_EXIT_FAILURE;
	}
	return rc;
}

int ci_cmd_register(const struct tool_globals *g, int argc, char **argv)
{
	static const struct option extra[] = {
	        {"address", required_argument, NULL, 'a'},
	        {"uri", required_argument, NULL, 'u'}};
	struct register_args a = {NULL, NULL};
	struct ci ci = {0};
	int rc;

	rc = ci_parse_options(&ci, argc, argv, extra, 2, register_option, &a,
	                      register_usage);
	if (rc >= 0)
		return rc;
	if ((a.address == NULL) == (a.uri == NULL) || optind != argc)
		return tool_usage_error("register takes --address or --uri");
	rc = ci_begin(&ci, g);
	if (rc == 0)
		rc = ci_store(&ci);
	if (rc == 0)
		rc = a.uri != NULL ? register_uri(&ci, a.uri)
		                   : register_address(&ci, a.address);
	ci_end(&ci);
	return rc;
}
