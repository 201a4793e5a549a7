/*
 * p11mail-certinstall import: a PKCS#12 (PFX) file's key and certificate
 * moved onto the token, the key sensitive and never extractable, the
 * identity recorded and the issuing CA offered as an anchor.
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/x509v3.h>

#include "certinstall/ci.h"
#include "common.h"
#include "store.h"

#define PASS_MAX 1024

struct import_args {
	const char *password_source;
	const char *label;
	int no_anchor;
	int replace;
};

/* What the file held, all owned here. */
struct pfx {
	EVP_PKEY *pkey;
	X509 *cert;
	STACK_OF(X509) * ca;
};

static void pfx_clear(struct pfx *p)
{
	EVP_PKEY_free(p->pkey);
	X509_free(p->cert);
	sk_X509_pop_free(p->ca, X509_free);
	memset(p, 0, sizeof(*p));
}

/* The file's password: from the source, or asked on the terminal. */
static int read_password(const struct import_args *a, char **out)
{
	char *buf;

	*out = NULL;
	if (a->password_source != NULL)
		return p11mail_secret_read(a->password_source, out) ==
		                       P11MAIL_OK
		               ? TOOL_EXIT_OK
		               : TOOL_EXIT_FAILURE;
	if (!isatty(STDIN_FILENO)) {
		tool_error("no terminal to ask the PKCS#12 password: give "
		           "--password-source file:PATH");
		return TOOL_EXIT_FAILURE;
	}
	buf = calloc(1, PASS_MAX);
	if (buf == NULL)
		return TOOL_EXIT_FAILURE;
	if (EVP_read_pw_string(buf, PASS_MAX, "PKCS#12 file password: ", 0)) {
		p11m_secure_free(buf, PASS_MAX);
		tool_error("no password given");
		return TOOL_EXIT_FAILURE;
	}
	*out = buf;
	return TOOL_EXIT_OK;
}

static PKCS12 *pfx_read(const char *path)
{
	BIO *bio = ci_open_file(path);
	PKCS12 *p12 = NULL;

	if (bio != NULL && (p12 = d2i_PKCS12_bio(bio, NULL)) == NULL)
		tool_error("%s is not a PKCS#12 (PFX) file", path);
	BIO_free(bio);
	ERR_clear_error();
	return p12;
}

/*
 * Many CA-delivered files still encrypt with RC2 or DES, which OpenSSL 3
 * keeps in its legacy provider.  This tool process (never the library)
 * loads it for a second attempt, with the default provider beside it.
 */
static int pfx_parse_legacy(PKCS12 *p12, const char *pass, struct pfx *out)
{
	static OSSL_PROVIDER *legacy, *dflt;

	ERR_clear_error();
	if (legacy == NULL) {
		dflt = OSSL_PROVIDER_load(NULL, "default");
		legacy = OSSL_PROVIDER_load(NULL, "legacy");
	}
	if (legacy == NULL || dflt == NULL)
		return 0;
	if (!PKCS12_parse(p12, pass, &out->pkey, &out->cert, &out->ca))
		return 0;
	tool_warn("the PKCS#12 file uses legacy encryption (RC2 or DES); "
	          "read with OpenSSL's legacy provider");
	return 1;
}

/* Opens the file read with the password and checks that it is usable. */
static int pfx_open(PKCS12 *p12, const char *path, const char *pass,
                    struct pfx *out)
{
	int rc = TOOL_EXIT_FAILURE;

	if (PKCS12_mac_present(p12) && !PKCS12_verify_mac(p12, pass, -1)) {
		tool_error("wrong password for %s", path);
		goto out;
	}
	if (!PKCS12_parse(p12, pass, &out->pkey, &out->cert, &out->ca) &&
	    !pfx_parse_legacy(p12, pass, out)) {
		tool_error("cannot decrypt %s (wrong password, or an algorithm "
		           "this OpenSSL does not offer)",
		           path);
		goto out;
	}
	if (out->pkey == NULL || out->cert == NULL) {
		tool_error("%s must hold a private key and its certificate",
		           path);
		goto out;
	}
	if (!X509_check_private_key(out->cert, out->pkey)) {
		tool_error("in %s the private key does not belong to the "
		           "certificate",
		           path);
		goto out;
	}
	rc = ci_check_usable(out->cert);
out:
	if (rc != TOOL_EXIT_OK)
		pfx_clear(out);
	ERR_clear_error();
	return rc;
}

/* CKA_ID of the new key: SHA-1 of the public key, as tools commonly do. */
static int key_id(X509 *cert, unsigned char id[20])
{
	unsigned int len = 0;

	return X509_pubkey_digest(cert, EVP_sha1(), id, &len) && len == 20 ? 0
	                                                                   : -1;
}

/*
 * Puts the key on the token unless it already is; *key gets it, *created
 * says whether this call wrote it.
 */
static int import_key(struct ci *ci, const struct pfx *p, const char *label,
                      tok_key **key, int *created)
{
	unsigned char id[20];
	CK_RV rv;

	*created = 0;
	if (ci_find_key_for(ci, p->cert, 1, key) == TOOL_EXIT_OK)
		return TOOL_EXIT_OK; /* imported before: nothing to do */
	if (key_id(p->cert, id) < 0)
		return TOOL_EXIT_FAILURE;
	rv = tok_import_key(ci->core, ci->token_uri, p->pkey, id, sizeof(id),
	                    label, key);
	*created = rv == CKR_OK;
	return rv == CKR_OK
	               ? TOOL_EXIT_OK
	               : ci_token_error("cannot put the key on the token", rv);
}

/* Offers each self-issued CA of the file's chain as an anchor. */
static void offer_anchors(struct ci *ci, STACK_OF(X509) * ca, const char *path)
{
	for (int i = 0; i < sk_X509_num(ca); i++) {
		X509 *x = sk_X509_value(ca, i);
		char fp[65], question[1024], *subj;
		unsigned char *der = NULL;
		size_t len = 0;

		if (!X509_check_ca(x) || ci_der(x, &der, &len) < 0)
			continue;
		p11m_fingerprint(der, len, fp);
		subj = X509_NAME_oneline(X509_get_subject_name(x), NULL, 0);
		snprintf(question, sizeof(question),
		         "Trust the CA %s\n  SHA-256 %s\nas an anchor for mail "
		         "of every domain?",
		         subj != NULL ? subj : "?", fp);
		if (ci_confirm(ci, question)) {
			enum p11mail_status st =
			        p11mail_anchor_add(ci->store, der, len, NULL);

			if (st == P11MAIL_OK && !ci->g->json)
				printf("anchor added: %s\n", subj);
			else if (st == P11MAIL_ERR_EXISTS && !ci->g->json)
				printf("anchor already trusted: %s\n", subj);
		} else if (!ci->g->quiet) {
			tool_warn("the CA %s of %s is not an anchor here; "
			          "run 'p11mail-certinstall anchor add' with "
			          "its certificate to trust it",
			          subj, path);
		}
		OPENSSL_free(subj);
		free(der);
	}
}

static int import_usage(void)
{
	printf("Usage: p11mail-certinstall import FILE.p12 "
	       "[--password-source file:PATH] [--label LABEL] [--token URI]\n"
	       "       [--no-anchor] [--replace] [--use-configured-pin] "
	       "[--system] [--yes]\n"
	       "Moves the key and certificate of a PKCS#12 file onto the "
	       "token and records the identity.\n"
	       "The password is read from the source or asked on the "
	       "terminal, never from the command line.\n");
	return TOOL_EXIT_OK;
}

static int import_option(void *arg, int c, const char *value)
{
	struct import_args *a = arg;

	if (c == 'P')
		a->password_source = value;
	else if (c == 'L')
		a->label = value;
	else if (c == 'N')
		a->no_anchor = 1;
	else if (c == 'R')
		a->replace = 1;
	else
		return -1;
	return 0;
}

static int import_run(struct ci *ci, const struct import_args *a,
                      const char *path, struct pfx *p)
{
	STACK_OF(OPENSSL_STRING) *addrs = NULL;
	tok_key *key = NULL;
	PKCS12 *p12 = NULL;
	char *pass = NULL;
	int rc, created = 0, written = 0, replaced = 0;

	/* The file first: a missing one is said before a password is asked. */
	p12 = pfx_read(path);
	rc = p12 != NULL ? read_password(a, &pass) : TOOL_EXIT_FAILURE;
	if (rc == 0)
		rc = pfx_open(p12, path, pass, p);
	p11mail_secret_free(pass);
	PKCS12_free(p12);
	if (rc != 0)
		return rc;
	addrs = ci_cert_addresses(p->cert);
	if (addrs == NULL || sk_OPENSSL_STRING_num(addrs) == 0) {
		tool_error("the certificate in %s names no mail address", path);
		rc = TOOL_EXIT_FAILURE;
	}
	/* Store and token must both be usable before anything is written. */
	if (rc == 0)
		rc = ci_store(ci);
	if (rc == 0)
		rc = ci_token(ci);
	if (rc == 0)
		rc = import_key(ci, p,
		                a->label != NULL
		                        ? a->label
		                        : sk_OPENSSL_STRING_value(addrs, 0),
		                &key, &created);
	if (rc == 0)
		rc = ci_put_cert(ci, key, p->cert, &written, &replaced);
	if (rc == 0)
		rc = ci_record_identity(ci, p->cert, p->ca,
		                        tok_key_info(key)->uri, replaced);
	/* Nothing half-installed: a key without its identity goes again. */
	if (rc != 0 && (created || written))
		ci_take_back(ci, key,
		             (created ? TOK_DELETE_KEYS : 0) |
		                     (written ? TOK_DELETE_CERT : 0));
	if (rc == 0 && !a->no_anchor)
		offer_anchors(ci, p->ca, path);
	tok_key_unref(key);
	ci_addresses_free(addrs);
	return rc;
}

int ci_cmd_import(const struct tool_globals *g, int argc, char **argv)
{
	static const struct option extra[] = {
	        {"password-source", required_argument, NULL, 'P'},
	        {"label", required_argument, NULL, 'L'},
	        {"no-anchor", no_argument, NULL, 'N'},
	        {"replace", no_argument, NULL, 'R'}};
	struct import_args a = {NULL, NULL, 0, 0};
	struct pfx p = {NULL, NULL, NULL};
	struct ci ci = {0};
	int rc;

	rc = ci_parse_options(&ci, argc, argv, extra, 4, import_option, &a,
	                      import_usage);
	if (rc >= 0)
		return rc;
	if (optind + 1 != argc)
		return tool_usage_error("import takes one PKCS#12 file");
	ci.replace = a.replace;
	rc = ci_begin(&ci, g);
	if (rc == 0)
		rc = import_run(&ci, &a, argv[optind], &p);
	pfx_clear(&p);
	ci_end(&ci);
	return rc;
}
