/*
 * p11mail-certinstall keygen: a key pair made on the token, never outside
 * it, and a certificate signing request signed by that key through the
 * p11mail provider, with the address in subjectAltName.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "certinstall/ci.h"
#include "common.h"
#include "conf.h"
#include "libctx.h"
#include "store.h"

struct keygen_args {
	const char *address;
	const char *type;
	const char *label;
	const char *out;
	long bits;
};

static int keygen_usage(void)
{
	printf("Usage: p11mail-certinstall keygen --address ADDRESS "
	       "[--type rsa|ec] [--bits 2048|3072|4096]\n"
	       "       [--label LABEL] [--token URI] [--out CSR-FILE]\n"
	       "Generates a key pair on the token and prints a certificate "
	       "signing request (PEM)\nfor a CA; then install the issued "
	       "certificate with 'p11mail-certinstall install'.\n");
	return TOOL_EXIT_OK;
}

static int keygen_option(void *arg, int c, const char *value)
{
	struct keygen_args *a = arg;

	switch (c) {
	case 'a':
		a->address = value;
		break;
	case 't':
		a->type = value;
		break;
	case 'b':
		a->bits = strtol(value, NULL, 10);
		break;
	case 'L':
		a->label = value;
		break;
	case 'o':
		a->out = value;
		break;
	default:
		return -1;
	}
	return 0;
}

/* Makes the key on the token; *uri gets its canonical URI. */
static int make_key(struct ci *ci, const struct keygen_args *a, char **uri)
{
	int ec = strcmp(a->type, "ec") == 0;
	unsigned char id[16];
	tok_key *key = NULL;
	CK_RV rv;
	int rc;

	*uri = NULL;
	rc = ci_token(ci);
	if (rc != 0)
		return rc;
	if (RAND_bytes(id, sizeof(id)) != 1)
		return TOOL_EXIT_FAILURE;
	rv = tok_generate_key(
	        ci->core, ci->token_uri, ec ? TOK_KEY_EC : TOK_KEY_RSA,
	        ec ? (unsigned int)NID_X9_62_prime256v1 : (unsigned int)a->bits,
	        id, sizeof(id), a->label != NULL ? a->label : a->address, &key);
	if (rv != CKR_OK)
		return ci_token_error("cannot generate the key on the token",
		                      rv);
	*uri = strdup(tok_key_info(key)->uri);
	tok_key_unref(key);
	return *uri != NULL ? TOOL_EXIT_OK : TOOL_EXIT_FAILURE;
}

static int req_fill(X509_REQ *req, EVP_PKEY *pkey, const char *address)
{
	X509_NAME *name = X509_REQ_get_subject_name(req);
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *ext;
	char san[400];
	int ok;

	snprintf(san, sizeof(san), "email:%s", address);
	ok = exts != NULL && X509_REQ_set_version(req, 0) &&
	     X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	                                (const unsigned char *)address, -1, -1,
	                                0) &&
	     X509_REQ_set_pubkey(req, pkey);
	ext = ok ? X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san)
	         : NULL;
	ok = ext != NULL && sk_X509_EXTENSION_push(exts, ext);
	if (!ok)
		X509_EXTENSION_free(ext);
	ok = ok && X509_REQ_add_extensions(req, exts);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return ok;
}

/*
 * Signs a CSR for address with the token key through the provider; *pem
 * gets it in PEM (free it), *pem_len its length.
 */
static int make_csr(struct ci *ci, const char *uri, const char *address,
                    char **pem, size_t *pem_len)
{
	BIO *mem = NULL;
	char *data = NULL;
	long len;
	struct tok_options opts;
	p11m_libctx *lc = NULL;
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY *pkey = NULL;
	X509_REQ *req = NULL;
	int rc = TOOL_EXIT_FAILURE;

	*pem = NULL;
	*pem_len = 0;
	p11m_config_token_options(ci->cfg, &opts);
	if (p11m_libctx_new(&opts, &lc) != P11MAIL_OK ||
	    p11m_libctx_load_key(lc, uri, &pkey) != P11MAIL_OK)
		goto out;
	req = X509_REQ_new_ex(p11m_libctx_get(lc), NULL);
	mctx = EVP_MD_CTX_new();
	if (req == NULL || mctx == NULL || !req_fill(req, pkey, address) ||
	    !EVP_DigestSignInit_ex(mctx, NULL, "SHA256", p11m_libctx_get(lc),
	                           NULL, pkey, NULL) ||
	    X509_REQ_sign_ctx(req, mctx) <= 0) {
		p11m_libctx_take_errors(P11MAIL_ERR_CRYPTO);
		tool_error("the token key could not sign the request");
		goto out;
	}
	mem = BIO_new(BIO_s_mem());
	if (mem == NULL || !PEM_write_bio_X509_REQ(mem, req) ||
	    (len = BIO_get_mem_data(mem, &data)) <= 0 ||
	    (*pem = malloc((size_t)len)) == NULL) {
		tool_error("cannot encode the request: out of memory");
		goto out;
	}
	memcpy(*pem, data, (size_t)len);
	*pem_len = (size_t)len;
	rc = TOOL_EXIT_OK;
out:
	BIO_free(mem);
	EVP_MD_CTX_free(mctx);
	X509_REQ_free(req);
	EVP_PKEY_free(pkey);
	p11m_libctx_free(lc);
	ERR_clear_error();
	return rc;
}

/* Writes the request to f, named name in messages; returns an exit status. */
static int write_csr(FILE *f, const char *name, const char *pem, size_t len)
{
	errno = 0;
	if (fwrite(pem, 1, len, f) == len && fflush(f) == 0)
		return TOOL_EXIT_OK;
	tool_error("cannot write %s: %s", name,
	           errno != 0 ? strerror(errno) : "write error");
	return TOOL_EXIT_FAILURE;
}

/*
 * The request did not get out: the key made for it goes again, so that
 * no key is left on the token without anyone knowing it is there.
 */
static void delete_key(struct ci *ci, const char *uri)
{
	char why[1200];
	size_t n = 0;
	CK_RV rv;

	if (ci_token(ci) != TOOL_EXIT_OK)
		return;
	rv = tok_delete_objects(ci->core, uri, NULL, 0, TOK_DELETE_KEYS, &n);
	if (rv == CKR_OK) {
		tool_warn("the key generated for the request was deleted from "
		          "the token again (%zu objects)",
		          n);
		return;
	}
	snprintf(why, sizeof(why),
	         "cannot delete the key generated for the request; delete "
	         "the objects of %s by hand",
	         uri);
	ci_token_error(why, rv);
}

int ci_cmd_keygen(const struct tool_globals *g, int argc, char **argv)
{
	static const struct option extra[] = {
	        {"address", required_argument, NULL, 'a'},
	        {"type", required_argument, NULL, 't'},
	        {"bits", required_argument, NULL, 'b'},
	        {"label", required_argument, NULL, 'L'},
	        {"out", required_argument, NULL, 'o'}};
	struct keygen_args a = {NULL, "rsa", NULL, NULL, 2048};
	struct ci ci = {0};
	char *uri = NULL, *norm = NULL, *pem = NULL;
	size_t pem_len = 0;
	FILE *out = NULL;
	int rc;

	rc = ci_parse_options(&ci, argc, argv, extra, 5, keygen_option, &a,
	                      keygen_usage);
	if (rc >= 0)
		return rc;
	if (optind != argc || a.address == NULL)
		return tool_usage_error("keygen needs --address ADDRESS");
	if (strcmp(a.type, "rsa") != 0 && strcmp(a.type, "ec") != 0)
		return tool_usage_error("--type is rsa or ec");
	if (strcmp(a.type, "rsa") == 0 && a.bits != 2048 && a.bits != 3072 &&
	    a.bits != 4096)
		return tool_usage_error("--bits is 2048, 3072 or 4096");
	norm = p11m_address_normalize(a.address);
	if (norm == NULL)
		return tool_usage_error("'%s' is not a mail address",
		                        a.address);
	a.address = norm;

	/* The output file first: a refused file must not cost a key. */
	if (a.out != NULL && (out = fopen(a.out, "wx")) == NULL) {
		if (errno == EEXIST)
			tool_error("%s already exists: the request file must "
			           "not exist yet",
			           a.out);
		else
			tool_error("cannot write %s: %s", a.out,
			           strerror(errno));
		rc = TOOL_EXIT_FAILURE;
		goto out;
	}
	rc = ci_begin(&ci, g);
	if (rc == 0)
		rc = make_key(&ci, &a, &uri);
	/* The provider opens the token itself: release ours first. */
	tok_core_free(ci.core);
	ci.core = NULL;
	if (rc == 0)
		rc = make_csr(&ci, uri, a.address, &pem, &pem_len);
	if (rc == 0)
		rc = write_csr(out != NULL ? out : stdout,
		               out != NULL ? a.out
		                           : "the request to standard "
		                             "output",
		               pem, pem_len);
	if (out != NULL && fclose(out) != 0 && rc == 0) {
		tool_error("cannot write %s: %s", a.out, strerror(errno));
		rc = TOOL_EXIT_FAILURE;
	}
	if (out != NULL && rc != 0)
		unlink(a.out);
	if (rc != 0 && uri != NULL)
		delete_key(&ci, uri);
	if (rc == 0 && !g->quiet)
		fprintf(stderr,
		        "p11mail-certinstall: key generated on the token: "
		        "%s\n",
		        uri);
out:
	free(pem);
	free(uri);
	free(norm);
	ci_end(&ci);
	return rc;
}
