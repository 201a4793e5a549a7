/*
 * p11mail-certinstall install and register: an issued certificate joined
 * to its key on the token and recorded as an identity of this workstation.
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

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
 * The private key behind a listed key object, when it is the one of cert.
 * Private keys are only listed after a login, so public key objects lead
 * to their private halves (same id), which tok_key_open logs in for.
 */
static char *private_uri(const char *uri)
{
	const char *type = strstr(uri, "type=public");
	size_t len = strlen(uri) + 2;
	char *res = malloc(len);

	if (res == NULL)
		return NULL;
	if (type == NULL)
		snprintf(res, len, "%s", uri);
	else
		snprintf(res, len, "%.*stype=private%s", (int)(type - uri), uri,
		         type + strlen("type=public"));
	return res;
}

static tok_key *try_key(struct ci *ci, const struct tok_object *o, X509 *cert)
{
	tok_key *k = NULL;
	char *uri;

	if (o->cls != CKO_PRIVATE_KEY && o->cls != CKO_PUBLIC_KEY)
		return NULL;
	uri = private_uri(o->uri);
	if (uri != NULL && tok_key_open(ci->core, uri, &k) == CKR_OK &&
	    !key_matches(tok_key_info(k), cert)) {
		tok_key_unref(k);
		k = NULL;
	}
	free(uri);
	return k;
}

/*
 * Starts the token core and lists the objects of the tokens --token names.
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

int ci_find_key_for(struct ci *ci, X509 *cert, int quiet, tok_key **key)
{
	struct tok_object *objs = NULL;
	size_t n = 0;
	int rc;

	*key = NULL;
	rc = token_objects(ci, &objs, &n);
	if (rc != TOOL_EXIT_OK)
		return rc;
	for (size_t i = 0; i < n && *key == NULL; i++)
		*key = try_key(ci, &objs[i], cert);
	tok_objects_free(objs, n);
	if (*key != NULL || quiet)
		return *key != NULL ? TOOL_EXIT_OK : TOOL_EXIT_FAILURE;
	tool_error("no private key on the token (%s) belongs to this "
	           "certificate: install it on the token that holds its key, "
	           "or use --token",
	           ci->token_uri);
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

static void report_identity(const struct ci *ci, const char *address,
                            const char *fp, const char *uri, int changed)
{
	if (ci->g->json) {
		printf("{\"address\":");
		ci_json_string(stdout, address);
		printf(",\"fingerprint\":\"%s\",\"key_uri\":", fp);
		ci_json_string(stdout, uri);
		printf(",\"changed\":%s}\n", changed ? "true" : "false");
	} else if (changed) {
		printf("%s: identity recorded (certificate %.16s..., key %s)\n",
		       address, fp, uri);
	} else if (!ci->g->quiet) {
		printf("%s: already installed; nothing changed\n", address);
	}
}

int ci_record_identity(struct ci *ci, X509 *leaf, STACK_OF(X509) * chain,
                       const char *key_uri)
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
			                st == P11MAIL_OK);
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

int ci_check_validity(X509 *x)
{
	if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
		tool_error("the certificate has expired: install a current "
		           "one");
		return TOOL_EXIT_FAILURE;
	}
	if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
		tool_error("the certificate is not valid yet: check the "
		           "clock, or install it later");
		return TOOL_EXIT_FAILURE;
	}
	return TOOL_EXIT_OK;
}

int ci_put_cert(struct ci *ci, tok_key *key, X509 *leaf, int *written)
{
	const struct tok_key_info *info = tok_key_info(key);
	unsigned char *der = NULL;
	size_t len = 0;
	int rc = TOOL_EXIT_OK;
	CK_RV rv = CKR_OK;

	*written = 0;
	if (ci_der(leaf, &der, &len) < 0)
		return TOOL_EXIT_FAILURE;
	/* The key's own URI: the token that holds it, whatever --token says. */
	if (info->cert_der != NULL && info->cert_der_len == len &&
	    memcmp(info->cert_der, der, len) == 0) {
		rc = TOOL_EXIT_OK;
	} else if (info->cert_der != NULL) {
		/* A renewal for the same key: the token follows the store. */
		rv = tok_replace_certificate(ci->core, info->uri, der, len,
		                             info->id, info->id_len,
		                             info->label);
		if (rv == CKR_OK && !ci->g->quiet && !ci->g->json)
			printf("the token's older certificate for this key "
			       "was replaced by the new one\n");
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
	       "[--token URI] [--system] [--yes]\n"
	       "Puts an issued certificate on the token next to its key and "
	       "records the identity.\n");
	return TOOL_EXIT_OK;
}

static int install_option(void *arg, int c, const char *value)
{
	const char **chain = arg;

	if (c != 'C')
		return -1;
	*chain = value;
	return 0;
}

int ci_cmd_install(const struct tool_globals *g, int argc, char **argv)
{
	static const struct option extra[] = {
	        {"chain", required_argument, NULL, 'C'}};
	STACK_OF(X509) *certs = NULL;
	const char *chain_file = NULL;
	struct ci ci = {0};
	tok_key *key = NULL;
	X509 *leaf = NULL;
	int rc, written = 0;

	rc = ci_parse_options(&ci, argc, argv, extra, 1, install_option,
	                      &chain_file, install_usage);
	if (rc >= 0)
		return rc;
	if (optind + 1 != argc)
		return tool_usage_error("install takes one certificate file");
	rc = ci_begin(&ci, g);
	if (rc == 0 && (certs = ci_read_certs(argv[optind])) == NULL)
		rc = TOOL_EXIT_FAILURE;
	if (rc == 0 && chain_file != NULL)
		rc = add_chain_file(certs, chain_file);
	if (rc == 0) {
		leaf = sk_X509_shift(certs);
		rc = ci_check_validity(leaf);
	}
	/* The store first: a busy or damaged store stops before the token. */
	if (rc == 0)
		rc = ci_store(&ci);
	if (rc == 0)
		rc = ci_find_key_for(&ci, leaf, 0, &key);
	if (rc == 0)
		rc = ci_put_cert(&ci, key, leaf, &written);
	if (rc == 0) {
		rc = ci_record_identity(&ci, leaf, certs,
		                        tok_key_info(key)->uri);
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
		rc = ci_record_identity(ci, x, NULL, info->uri);
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
			                        tok_key_info(key)->uri);
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
