/*
 * The S/MIME context: library context, anchors, candidate recipient
 * certificates, the signing and decrypting identity, and limits.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/store.h>

#include "certcheck.h"
#include "common.h"
#include "conf.h"
#include "mime.h"
#include "smime.h"

static const struct p11mail_smime_limits default_limits = {
        .max_size = 64u << 20,
        .max_depth = 16,
        .max_parts = 256,
        .max_header = 64u << 10,
        .max_certs = 16,
        .max_file_size = (size_t)64 << 30,
};

/*
 * Token settings for the provider: the configuration's [token] section
 * when given, else P11MAIL_MODULE and P11MAIL_INIT_ARGS.
 */
static enum p11mail_status make_libctx(p11mail_smime *smime,
                                       const struct p11mail_config *cfg)
{
	struct tok_options opts = {0};
	enum p11mail_status st;

	if (cfg != NULL)
		p11m_config_token_options(cfg, &opts);
	if (opts.module_path == NULL)
		opts.module_path = p11m_getenv("P11MAIL_MODULE");
	if (opts.init_args == NULL)
		opts.init_args = p11m_getenv("P11MAIL_INIT_ARGS");
	st = p11m_libctx_new(&opts, &smime->lc);
	if (st == P11MAIL_OK)
		smime->libctx = p11m_libctx_get(smime->lc);
	return st;
}

void smime_log_openssl(const char *what)
{
	unsigned long e;
	char buf[256];

	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		p11m_trace("smime", "%s: %s", what, buf);
	}
}

enum p11mail_status p11mail_smime_new(p11mail_smime **out)
{
	return p11mail_smime_new_config(NULL, out);
}

enum p11mail_status p11mail_smime_new_config(const struct p11mail_config *cfg,
                                             p11mail_smime **out)
{
	p11mail_smime *smime;
	enum p11mail_status st;

	*out = NULL;
	mime_init();
	smime = calloc(1, sizeof(*smime));
	if (smime == NULL)
		return P11MAIL_ERR_NOMEM;
	smime->anchors = sk_X509_new_null();
	smime->chain = sk_X509_new_null();
	smime->limits = default_limits;
	st = make_libctx(smime, cfg);
	if (st == P11MAIL_OK &&
	    (smime->anchors == NULL || smime->chain == NULL))
		st = P11MAIL_ERR_NOMEM;
	if (st != P11MAIL_OK) {
		p11mail_smime_free(smime);
		return st;
	}
	*out = smime;
	return P11MAIL_OK;
}

void p11mail_smime_free(p11mail_smime *smime)
{
	if (smime == NULL)
		return;
	for (size_t i = 0; i < smime->candidate_count; i++) {
		free(smime->candidates[i].address);
		X509_free(smime->candidates[i].cert);
	}
	free(smime->candidates);
	sk_X509_pop_free(smime->anchors, X509_free);
	sk_X509_pop_free(smime->chain, X509_free);
	EVP_PKEY_free(smime->key);
	X509_free(smime->cert);
	/* keys and certificates first: they may hold token objects */
	p11m_libctx_free(smime->lc);
	free(smime);
}

void p11mail_smime_set_source(p11mail_smime *smime,
                              const struct p11mail_cert_source *src)
{
	smime->have_source = src != NULL;
	if (src != NULL)
		smime->source = *src;
	smime->anchors_loaded = 0;
}

#define LIMIT_OR_DEFAULT(f)                                                    \
	smime->limits.f = limits->f != 0 ? limits->f : default_limits.f

void p11mail_smime_set_limits(p11mail_smime *smime,
                              const struct p11mail_smime_limits *limits)
{
	LIMIT_OR_DEFAULT(max_size);
	LIMIT_OR_DEFAULT(max_depth);
	LIMIT_OR_DEFAULT(max_parts);
	LIMIT_OR_DEFAULT(max_header);
	LIMIT_OR_DEFAULT(max_certs);
	LIMIT_OR_DEFAULT(max_file_size);
}

/* Reads PEM certificates from bio until none is left. */
static enum p11mail_status read_pem_certs(p11mail_smime *smime, BIO *bio,
                                          STACK_OF(X509) * certs)
{
	for (;;) {
		X509 *x = X509_new_ex(smime->libctx, smime->propq);

		if (x == NULL)
			return P11MAIL_ERR_NOMEM;
		if (PEM_read_bio_X509(bio, &x, NULL, NULL) == NULL) {
			X509_free(x);
			ERR_clear_error();
			return P11MAIL_OK;
		}
		if (!sk_X509_push(certs, x)) {
			X509_free(x);
			return P11MAIL_ERR_NOMEM;
		}
	}
}

/* Reads PEM certificates, or one DER certificate, from memory. */
static enum p11mail_status certs_from_buf(p11mail_smime *smime,
                                          const unsigned char *buf, size_t len,
                                          STACK_OF(X509) * certs)
{
	BIO *bio = BIO_new_mem_buf(buf, (int)len);
	X509 *x = NULL;
	enum p11mail_status st;

	if (bio == NULL || len > INT_MAX)
		return P11MAIL_ERR_NOMEM;
	st = read_pem_certs(smime, bio, certs);
	if (st != P11MAIL_OK || sk_X509_num(certs) > 0)
		goto out;

	x = X509_new_ex(smime->libctx, smime->propq);
	if (x == NULL) {
		st = P11MAIL_ERR_NOMEM;
		goto out;
	}
	if (d2i_X509(&x, &buf, (long)len) == NULL) {
		st = P11MAIL_ERR_FORMAT;
		goto out;
	}
	if (!sk_X509_push(certs, x)) {
		st = P11MAIL_ERR_NOMEM;
		goto out;
	}
	x = NULL;

out:
	X509_free(x);
	BIO_free(bio);
	ERR_clear_error();
	return st;
}

enum p11mail_status smime_cert_from_buf(p11mail_smime *smime,
                                        const unsigned char *buf, size_t len,
                                        X509 **out)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	enum p11mail_status st;

	*out = NULL;
	if (certs == NULL)
		return P11MAIL_ERR_NOMEM;
	st = certs_from_buf(smime, buf, len, certs);
	if (st == P11MAIL_OK && sk_X509_num(certs) != 1)
		st = P11MAIL_ERR_FORMAT;
	if (st == P11MAIL_OK)
		*out = sk_X509_shift(certs);
	sk_X509_pop_free(certs, X509_free);
	return st;
}

static enum p11mail_status read_file(const char *path, unsigned char **out,
                                     size_t *out_len)
{
	FILE *f = fopen(path, "rbe");
	unsigned char *buf = NULL;
	long size;
	enum p11mail_status st = P11MAIL_ERR_IO;

	*out = NULL;
	*out_len = 0;
	if (f == NULL)
		goto out;
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0)
		goto out;
	buf = malloc((size_t)size + 1);
	if (buf == NULL) {
		st = P11MAIL_ERR_NOMEM;
		goto out;
	}
	if (fread(buf, 1, (size_t)size, f) != (size_t)size)
		goto out;
	*out = buf;
	*out_len = (size_t)size;
	buf = NULL;
	st = P11MAIL_OK;

out:
	free(buf);
	if (f != NULL)
		fclose(f);
	return st;
}

enum p11mail_status smime_certs_from_file(p11mail_smime *smime,
                                          const char *path,
                                          STACK_OF(X509) * *out)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	STACK_OF(X509) *certs = NULL;
	enum p11mail_status st;

	*out = NULL;
	st = read_file(path, &buf, &len);
	if (st != P11MAIL_OK) {
		p11m_log(P11MAIL_LOG_ERROR, "cannot read %s", path);
		goto out;
	}
	certs = sk_X509_new_null();
	if (certs == NULL) {
		st = P11MAIL_ERR_NOMEM;
		goto out;
	}
	st = certs_from_buf(smime, buf, len, certs);
	if (st == P11MAIL_OK && sk_X509_num(certs) == 0)
		st = P11MAIL_ERR_FORMAT;
	if (st != P11MAIL_OK) {
		p11m_log(P11MAIL_LOG_ERROR, "%s holds no certificate", path);
		goto out;
	}
	*out = certs;
	certs = NULL;

out:
	sk_X509_pop_free(certs, X509_free);
	free(buf);
	return st;
}

static enum p11mail_status push_all(STACK_OF(X509) * to, STACK_OF(X509) * from)
{
	X509 *x;

	while ((x = sk_X509_shift(from)) != NULL)
		if (!sk_X509_push(to, x)) {
			X509_free(x);
			return P11MAIL_ERR_NOMEM;
		}
	return P11MAIL_OK;
}

enum p11mail_status p11mail_smime_add_anchor(p11mail_smime *smime,
                                             const unsigned char *cert,
                                             size_t len)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	enum p11mail_status st;

	if (certs == NULL)
		return P11MAIL_ERR_NOMEM;
	st = certs_from_buf(smime, cert, len, certs);
	if (st == P11MAIL_OK && sk_X509_num(certs) == 0)
		st = P11MAIL_ERR_FORMAT;
	if (st == P11MAIL_OK)
		st = push_all(smime->anchors, certs);
	sk_X509_pop_free(certs, X509_free);
	return st;
}

enum p11mail_status p11mail_smime_add_anchor_file(p11mail_smime *smime,
                                                  const char *path)
{
	STACK_OF(X509) *certs = NULL;
	enum p11mail_status st;

	st = smime_certs_from_file(smime, path, &certs);
	if (st == P11MAIL_OK)
		st = push_all(smime->anchors, certs);
	sk_X509_pop_free(certs, X509_free);
	return st;
}

/* Files cert under one address; takes a reference of its own. */
static enum p11mail_status add_candidate(p11mail_smime *smime, const char *addr,
                                         size_t len, X509 *cert)
{
	struct smime_candidate *grown;
	char *copy = strndup(addr, len);

	if (copy == NULL)
		return P11MAIL_ERR_NOMEM;
	grown = realloc(smime->candidates,
	                (smime->candidate_count + 1) * sizeof(*grown));
	if (grown == NULL) {
		free(copy);
		return P11MAIL_ERR_NOMEM;
	}
	smime->candidates = grown;
	X509_up_ref(cert);
	grown[smime->candidate_count].address = copy;
	grown[smime->candidate_count].cert = cert;
	grown[smime->candidate_count].no_gcm = 0;
	smime->candidate_count++;
	return P11MAIL_OK;
}

static enum p11mail_status add_candidate_cert(p11mail_smime *smime, X509 *x)
{
	char *list = certcheck_addresses(x);
	const char *p = list;
	enum p11mail_status st = P11MAIL_OK;

	if (list == NULL)
		return P11MAIL_ERR_NOMEM;
	if (*list == '\0')
		st = P11MAIL_ERR_NO_CERT;
	while (st == P11MAIL_OK && p != NULL && *p != '\0') {
		const char *end = strchr(p, ',');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

		st = add_candidate(smime, p, len, x);
		p = end != NULL ? end + 1 : NULL;
	}
	free(list);
	return st;
}

static enum p11mail_status add_candidates(p11mail_smime *smime,
                                          STACK_OF(X509) * certs)
{
	enum p11mail_status st = P11MAIL_OK;

	for (int i = 0; st == P11MAIL_OK && i < sk_X509_num(certs); i++)
		st = add_candidate_cert(smime, sk_X509_value(certs, i));
	return st;
}

enum p11mail_status p11mail_smime_add_cert(p11mail_smime *smime,
                                           const unsigned char *cert,
                                           size_t len)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	enum p11mail_status st;

	if (certs == NULL)
		return P11MAIL_ERR_NOMEM;
	st = certs_from_buf(smime, cert, len, certs);
	if (st == P11MAIL_OK)
		st = add_candidates(smime, certs);
	sk_X509_pop_free(certs, X509_free);
	return st;
}

/* True unless caps (SMIMECapabilities DER) is readable and lacks GCM. */
static int caps_allow_gcm(const unsigned char *caps, size_t len)
{
	const unsigned char *p = caps;
	STACK_OF(X509_ALGOR) * algs;
	int gcm = 0;

	if (caps == NULL || len == 0 || len > LONG_MAX)
		return 1;
	algs = d2i_X509_ALGORS(NULL, &p, (long)len);
	if (algs == NULL) {
		ERR_clear_error();
		return 1; /* unknown: the default stands */
	}
	for (int i = 0; !gcm && i < sk_X509_ALGOR_num(algs); i++) {
		const ASN1_OBJECT *obj = NULL;
		int nid;

		X509_ALGOR_get0(&obj, NULL, NULL, sk_X509_ALGOR_value(algs, i));
		nid = OBJ_obj2nid(obj);
		gcm = nid == NID_aes_128_gcm || nid == NID_aes_192_gcm ||
		      nid == NID_aes_256_gcm;
	}
	sk_X509_ALGOR_pop_free(algs, X509_ALGOR_free);
	return gcm;
}

enum p11mail_status p11mail_smime_add_cert_caps(p11mail_smime *smime,
                                                const unsigned char *cert,
                                                size_t len,
                                                const unsigned char *caps,
                                                size_t caps_len)
{
	size_t before = smime->candidate_count;
	enum p11mail_status st = p11mail_smime_add_cert(smime, cert, len);
	int no_gcm = !caps_allow_gcm(caps, caps_len);

	for (size_t i = before; st == P11MAIL_OK && i < smime->candidate_count;
	     i++)
		smime->candidates[i].no_gcm = no_gcm;
	return st;
}

enum p11mail_status p11mail_smime_add_cert_file(p11mail_smime *smime,
                                                const char *path)
{
	STACK_OF(X509) *certs = NULL;
	enum p11mail_status st;

	st = smime_certs_from_file(smime, path, &certs);
	if (st == P11MAIL_OK)
		st = add_candidates(smime, certs);
	if (st == P11MAIL_ERR_NO_CERT)
		p11m_log(P11MAIL_LOG_ERROR,
		         "%s: certificate names no email address", path);
	sk_X509_pop_free(certs, X509_free);
	return st;
}

/* Loads the first private key (and certificate, if any) at a URI or path. */
static enum p11mail_status load_from_store(p11mail_smime *smime,
                                           const char *uri, EVP_PKEY **key,
                                           X509 **cert)
{
	OSSL_STORE_CTX *store;
	enum p11mail_status st = P11MAIL_ERR_NO_KEY;

	store = OSSL_STORE_open_ex(uri, smime->libctx, smime->propq, NULL, NULL,
	                           NULL, NULL, NULL);
	if (store == NULL) {
		smime_log_openssl("open key");
		return P11MAIL_ERR_NO_KEY;
	}
	while (!OSSL_STORE_eof(store)) {
		OSSL_STORE_INFO *info = OSSL_STORE_load(store);
		int type = info != NULL ? OSSL_STORE_INFO_get_type(info) : 0;

		if (type == OSSL_STORE_INFO_PKEY && *key == NULL)
			*key = OSSL_STORE_INFO_get1_PKEY(info);
		else if (type == OSSL_STORE_INFO_CERT && *cert == NULL)
			*cert = OSSL_STORE_INFO_get1_CERT(info);
		OSSL_STORE_INFO_free(info);
		if (info == NULL && OSSL_STORE_error(store))
			break;
	}
	OSSL_STORE_close(store);
	if (*key != NULL)
		st = P11MAIL_OK;
	smime_log_openssl("load key");
	return st;
}

/* A token key, and the certificate stored with it when none was given. */
static enum p11mail_status load_from_token(p11mail_smime *smime,
                                           const char *uri, int want_cert,
                                           EVP_PKEY **key, X509 **cert)
{
	enum p11mail_status st;

	st = p11m_libctx_load_key(smime->lc, uri, key);
	if (st == P11MAIL_OK && want_cert)
		st = p11m_libctx_load_cert(smime->lc, uri, cert);
	return st;
}

enum p11mail_status p11mail_smime_set_identity(p11mail_smime *smime,
                                               const char *key,
                                               const char *cert_file,
                                               const char *chain_file)
{
	EVP_PKEY *pkey = NULL;
	X509 *cert = NULL;
	STACK_OF(X509) *certs = NULL;
	enum p11mail_status st;

	if (key == NULL && cert_file == NULL)
		return P11MAIL_ERR_ARGS;
	if (key != NULL && strncmp(key, "pkcs11:", 7) == 0)
		st = load_from_token(smime, key, cert_file == NULL, &pkey,
		                     &cert);
	else if (key != NULL)
		st = load_from_store(smime, key, &pkey, &cert);
	else
		st = P11MAIL_OK; /* certificate only: enough to encrypt */
	/*
	 * Only when nothing else said why: the token's own reason (wrong
	 * PIN, module, PIN file) stands alone.  The query may carry
	 * pin-value: it is never logged.
	 */
	if (st == P11MAIL_ERR_NO_KEY)
		p11m_log(P11MAIL_LOG_ERROR, "no private key at %.*s",
		         (int)strcspn(key, "?"), key);
	if (st != P11MAIL_OK)
		goto out;
	if (cert_file != NULL) {
		X509_free(cert);
		cert = NULL;
		st = smime_certs_from_file(smime, cert_file, &certs);
		if (st != P11MAIL_OK)
			goto out;
		cert = sk_X509_shift(certs);
		st = push_all(smime->chain, certs);
		if (st != P11MAIL_OK)
			goto out;
	}
	if (cert == NULL ||
	    (pkey != NULL && X509_check_private_key(cert, pkey) != 1)) {
		p11m_log(P11MAIL_LOG_ERROR, "%s",
		         cert == NULL ? "no certificate for the key"
		                      : "the certificate does not match the "
		                        "key");
		st = P11MAIL_ERR_NO_CERT;
		goto out;
	}
	if (chain_file != NULL) {
		sk_X509_pop_free(certs, X509_free);
		certs = NULL;
		st = smime_certs_from_file(smime, chain_file, &certs);
		if (st == P11MAIL_OK)
			st = push_all(smime->chain, certs);
		if (st != P11MAIL_OK)
			goto out;
	}
	EVP_PKEY_free(smime->key);
	X509_free(smime->cert);
	smime->key = pkey;
	smime->cert = cert;
	pkey = NULL;
	cert = NULL;

out:
	ERR_clear_error();
	sk_X509_pop_free(certs, X509_free);
	EVP_PKEY_free(pkey);
	X509_free(cert);
	return st;
}

enum p11mail_status p11mail_smime_add_chain_file(p11mail_smime *smime,
                                                 const char *path)
{
	STACK_OF(X509) *certs = NULL;
	enum p11mail_status st;

	if (smime == NULL || path == NULL)
		return P11MAIL_ERR_ARGS;
	st = smime_certs_from_file(smime, path, &certs);
	if (st == P11MAIL_OK)
		st = push_all(smime->chain, certs);
	sk_X509_pop_free(certs, X509_free);
	ERR_clear_error();
	return st;
}

enum p11mail_status smime_load_anchors(p11mail_smime *smime)
{
	enum p11mail_status st = P11MAIL_OK;

	if (smime->anchors_loaded || !smime->have_source ||
	    smime->source.anchors == NULL)
		return P11MAIL_OK;
	st = smime->source.anchors(smime->source.arg, smime);
	if (st == P11MAIL_OK)
		smime->anchors_loaded = 1;
	return st;
}

enum p11mail_status smime_anchor_store(p11mail_smime *smime, X509_STORE **out)
{
	X509_STORE *store;
	enum p11mail_status st;

	*out = NULL;
	st = smime_load_anchors(smime);
	if (st != P11MAIL_OK)
		return st;
	store = X509_STORE_new();
	if (store == NULL)
		return P11MAIL_ERR_NOMEM;
	for (int i = 0; i < sk_X509_num(smime->anchors); i++)
		if (!X509_STORE_add_cert(store,
		                         sk_X509_value(smime->anchors, i)))
			ERR_clear_error(); /* a duplicate is harmless */
	X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
	*out = store;
	return P11MAIL_OK;
}

enum p11mail_status smime_base64_crlf(const unsigned char *in, size_t len,
                                      BIO *out)
{
	unsigned char line[80];

	for (size_t off = 0; off < len; off += 57) {
		size_t n = len - off < 57 ? len - off : 57;
		int w = EVP_EncodeBlock(line, in + off, (int)n);

		if (BIO_write(out, line, w) != w ||
		    BIO_write(out, "\r\n", 2) != 2)
			return P11MAIL_ERR_IO;
	}
	return P11MAIL_OK;
}

enum p11mail_status smime_cms_der(CMS_ContentInfo *cms, unsigned char **out,
                                  size_t *out_len)
{
	unsigned char *der = NULL;
	int len = i2d_CMS_ContentInfo(cms, &der);

	*out = NULL;
	*out_len = 0;
	if (len <= 0)
		return P11MAIL_ERR_CRYPTO;
	*out = der;
	*out_len = (size_t)len;
	return P11MAIL_OK;
}

enum p11mail_status smime_cms_parse(p11mail_smime *smime,
                                    const unsigned char *der, size_t len,
                                    CMS_ContentInfo **out)
{
	CMS_ContentInfo *cms;
	const unsigned char *p = der;

	*out = NULL;
	if (len > smime->limits.max_size || len > LONG_MAX)
		return P11MAIL_ERR_LIMIT;
	cms = CMS_ContentInfo_new_ex(smime->libctx, smime->propq);
	if (cms == NULL)
		return P11MAIL_ERR_NOMEM;
	if (d2i_CMS_ContentInfo(&cms, &p, (long)len) == NULL ||
	    p != der + len) {
		smime_log_openssl("parse CMS");
		CMS_ContentInfo_free(cms);
		return P11MAIL_ERR_FORMAT;
	}
	*out = cms;
	return P11MAIL_OK;
}

int smime_looks_der(const unsigned char *in, size_t len)
{
	if (len < 2 || in[0] != 0x30)
		return 0;
	/* indefinite, long form, or a short length covering the input */
	return in[1] == 0x80 || (in[1] > 0x80 && in[1] <= 0x84) ||
	       (size_t)in[1] + 2 == len;
}

void p11mail_smime_release(unsigned char *buf, size_t len)
{
	p11m_secure_free(buf, len);
}
