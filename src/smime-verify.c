/*
 * Verification: every SignerInfo is judged on its own (signer found by
 * SignerIdentifier, RFC 5652 attribute rules, certificate policy now,
 * chain to an anchor, signer against From/Sender), and the verdict
 * applies only to the entity that was signed.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/objects.h>

#include "certcheck.h"
#include "common.h"
#include "mime.h"
#include "smime.h"

/* What one verification needs besides the CMS object. */
struct vctx {
	p11mail_smime *smime;
	X509_STORE *anchors;
	STACK_OF(X509) * certs;
	const char *sender;
	BIO *content; /* after CMS_dataInit, fully read */
	int content_ok;
	struct p11mail_verify_result *res;
};

static void set_problem(char **slot, const char *fmt, ...) P11M_PRINTF(2, 3);

static void set_problem(char **slot, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (*slot != NULL)
		return; /* the first problem is the one people need */
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	*slot = strdup(line);
}

/* Exactly one attribute of this type, with exactly one value. */
static int single_attr(CMS_SignerInfo *si, int nid)
{
	int pos = CMS_signed_get_attr_by_NID(si, nid, -1);
	X509_ATTRIBUTE *attr;

	if (pos < 0 || CMS_signed_get_attr_by_NID(si, nid, pos) >= 0)
		return 0;
	attr = CMS_signed_get_attr(si, pos);
	return X509_ATTRIBUTE_count(attr) == 1;
}

/* RFC 5652 5.3: contentType and messageDigest once each; time at most. */
static const char *check_attrs(CMS_SignerInfo *si, CMS_ContentInfo *cms)
{
	const ASN1_OBJECT *ctype;

	if (CMS_signed_get_attr_count(si) <= 0)
		return "the signature has no signed attributes";
	if (!single_attr(si, NID_pkcs9_contentType))
		return "contentType attribute missing or repeated";
	if (!single_attr(si, NID_pkcs9_messageDigest))
		return "messageDigest attribute missing or repeated";
	if (CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1) >= 0 &&
	    !single_attr(si, NID_pkcs9_signingTime))
		return "signingTime attribute repeated";
	ctype = CMS_signed_get0_data_by_OBJ(
	        si, OBJ_nid2obj(NID_pkcs9_contentType), -3, V_ASN1_OBJECT);
	if (ctype == NULL || OBJ_cmp(ctype, CMS_get0_eContentType(cms)) != 0)
		return "contentType attribute does not match the content";
	return NULL;
}

static int64_t signing_time(CMS_SignerInfo *si)
{
	const ASN1_TIME *t;
	struct tm tm;

	t = CMS_signed_get0_data_by_OBJ(si, OBJ_nid2obj(NID_pkcs9_signingTime),
	                                -3, V_ASN1_UTCTIME);
	if (t == NULL)
		t = CMS_signed_get0_data_by_OBJ(
		        si, OBJ_nid2obj(NID_pkcs9_signingTime), -3,
		        V_ASN1_GENERALIZEDTIME);
	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return -1;
	return (int64_t)timegm(&tm);
}

static X509 *find_signer(struct vctx *v, CMS_SignerInfo *si)
{
	for (int i = 0; i < sk_X509_num(v->certs); i++)
		if (CMS_SignerInfo_cert_cmp(si, sk_X509_value(v->certs, i)) ==
		    0)
			return sk_X509_value(v->certs, i);
	return NULL;
}

static int weak_digest(CMS_SignerInfo *si)
{
	X509_ALGOR *dig = NULL;
	int nid;

	CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);
	nid = dig != NULL ? OBJ_obj2nid(dig->algorithm) : NID_undef;
	return nid == NID_sha1 || nid == NID_md5 || nid == NID_undef;
}

static void describe_cert(struct p11mail_signer *s, X509 *cert)
{
	unsigned char *der = NULL;
	int len;

	s->addresses = certcheck_addresses(cert);
	s->subject = certcheck_subject(cert);
	certcheck_fingerprint(cert, s->fingerprint);
	len = i2d_X509(cert, &der);
	if (len > 0) {
		s->cert_der = malloc((size_t)len);
		if (s->cert_der != NULL) {
			memcpy(s->cert_der, der, (size_t)len);
			s->cert_der_len = (size_t)len;
		}
	}
	OPENSSL_free(der);
}

/* Keeps the signed SMIMECapabilities (DER), for the certificate cache. */
static void keep_caps(struct p11mail_signer *s, CMS_SignerInfo *si)
{
	int idx = CMS_signed_get_attr_by_NID(si, NID_SMIMECapabilities, -1);
	X509_ATTRIBUTE *attr = idx >= 0 ? CMS_signed_get_attr(si, idx) : NULL;
	ASN1_TYPE *t = attr != NULL ? X509_ATTRIBUTE_get0_type(attr, 0) : NULL;
	const ASN1_STRING *seq;

	if (t == NULL || t->type != V_ASN1_SEQUENCE)
		return;
	seq = t->value.sequence;
	s->smime_caps = malloc((size_t)seq->length);
	if (s->smime_caps == NULL)
		return;
	memcpy(s->smime_caps, seq->data, (size_t)seq->length);
	s->smime_caps_len = (size_t)seq->length;
}

/* Integrity of one SignerInfo: attributes, signature, digest. */
static const char *check_integrity(struct vctx *v, CMS_ContentInfo *cms,
                                   CMS_SignerInfo *si)
{
	const char *why = check_attrs(si, cms);

	if (why != NULL)
		return why;
	if (weak_digest(si))
		return "the digest algorithm is unknown or too weak (SHA-1)";
	if (CMS_SignerInfo_verify(si) != 1)
		return "the signature does not verify";
	if (!v->content_ok)
		return "the signed content cannot be digested";
	if (CMS_SignerInfo_verify_content(si, v->content) != 1)
		return "the content was altered after signing";
	return NULL;
}

static void judge_trust(struct vctx *v, struct p11mail_signer *s, X509 *cert)
{
	char problem[256];

	switch (certcheck_chain(v->smime->libctx, v->anchors, cert, v->certs,
	                        CERTCHECK_SIGN, problem, sizeof(problem))) {
	case CERTCHECK_TRUSTED:
		s->trust = P11MAIL_TRUST_TRUSTED;
		break;
	case CERTCHECK_NO_ANCHOR:
		s->trust = P11MAIL_TRUST_NOT_TRUSTED;
		set_problem(&s->problem, "%s", problem);
		break;
	default:
		s->trust = P11MAIL_TRUST_UNTRUSTED_CHAIN;
		s->valid = 0;
		set_problem(&s->problem, "%s", problem);
		break;
	}
}

static void judge_signer(struct vctx *v, CMS_ContentInfo *cms,
                         CMS_SignerInfo *si, struct p11mail_signer *s)
{
	X509 *cert = find_signer(v, si);
	char problem[256];
	const char *why;

	s->signing_time = -1;
	s->trust = P11MAIL_TRUST_UNTRUSTED_CHAIN;
	if (cert == NULL) {
		set_problem(&s->problem,
		            "cannot verify: the signer certificate is not in "
		            "the message");
		return;
	}
	describe_cert(s, cert);
	s->signing_time = signing_time(si);
	CMS_SignerInfo_set1_signer_cert(si, cert);

	why = check_integrity(v, cms, si);
	ERR_clear_error();
	if (why != NULL) {
		set_problem(&s->problem, "%s", why);
		return;
	}
	/* signed, so the signer's own statement */
	keep_caps(s, si);
	if (certcheck_policy(cert, CERTCHECK_SIGN, problem, sizeof(problem)) !=
	    P11MAIL_OK) {
		set_problem(&s->problem, "%s", problem);
		return;
	}
	s->valid = 1;
	s->sender_match =
	        v->sender != NULL && certcheck_address_match(cert, v->sender);
	if (v->sender != NULL && !s->sender_match)
		set_problem(&s->problem, "signer does not match sender %s",
		            v->sender);
	judge_trust(v, s, cert);
}

/* Reads the content through the digest BIOs so every digest is final. */
static int digest_content(struct vctx *v, CMS_ContentInfo *cms, BIO *dcont,
                          BIO *capture)
{
	char buf[4096];
	int n;

	v->content = CMS_dataInit(cms, dcont);
	if (v->content == NULL)
		return 0;
	while ((n = BIO_read(v->content, buf, sizeof(buf))) > 0)
		if (capture != NULL && BIO_write(capture, buf, n) != n)
			return 0;
	return n == 0 || BIO_eof(v->content);
}

static void release_content(struct vctx *v, BIO *dcont)
{
	BIO *next;

	/* free the digest BIOs that CMS_dataInit put in front of dcont */
	while (v->content != NULL && v->content != dcont) {
		next = BIO_pop(v->content);
		BIO_free(v->content);
		v->content = next;
	}
	v->content = NULL;
}

static enum p11mail_status judge_all(struct vctx *v, CMS_ContentInfo *cms)
{
	STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(cms);
	int n = sk_CMS_SignerInfo_num(sis);

	if (n <= 0) {
		set_problem(&v->res->problem,
		            "the signature has no signers; the certificates "
		            "inside are not trusted");
		return P11MAIL_OK;
	}
	v->res->signers = calloc((size_t)n, sizeof(*v->res->signers));
	if (v->res->signers == NULL)
		return P11MAIL_ERR_NOMEM;
	v->res->signer_count = (size_t)n;
	for (int i = 0; i < n; i++)
		judge_signer(v, cms, sk_CMS_SignerInfo_value(sis, i),
		             &v->res->signers[i]);
	return P11MAIL_OK;
}

/* Structural checks that make a verdict impossible or the input bogus. */
static const char *check_shape(CMS_ContentInfo *cms, int detached)
{
	ASN1_OCTET_STRING **pos;

	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed)
		return "not a signature (no SignedData)";
	if (OBJ_obj2nid(CMS_get0_eContentType(cms)) != NID_pkcs7_data)
		return "the signed content is not MIME data";
	pos = CMS_get0_content(cms);
	if (detached && pos != NULL && *pos != NULL)
		return "the detached signature carries content of its own";
	if (!detached && (pos == NULL || *pos == NULL))
		return "the signature carries no content";
	return NULL;
}

static enum p11mail_status verify_cms(struct vctx *v, CMS_ContentInfo *cms,
                                      BIO *dcont)
{
	BIO *capture = NULL;
	const char *shape = check_shape(cms, dcont != NULL);
	enum p11mail_status st = P11MAIL_OK;

	if (OBJ_obj2nid(CMS_get0_type(cms)) == NID_pkcs7_signed &&
	    sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)) <= 0) {
		set_problem(&v->res->problem,
		            "the signature has no signers; the certificates "
		            "inside are not trusted");
		v->res->verdict = P11MAIL_VERDICT_UNSIGNED;
		return P11MAIL_OK;
	}
	if (shape != NULL) {
		set_problem(&v->res->problem, "%s", shape);
		v->res->verdict = P11MAIL_VERDICT_INVALID;
		return P11MAIL_OK;
	}
	v->certs = CMS_get1_certs(cms);
	if (v->certs == NULL)
		v->certs = sk_X509_new_null();
	if (v->certs == NULL)
		return P11MAIL_ERR_NOMEM;
	if ((size_t)sk_X509_num(v->certs) > v->smime->limits.max_certs) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "more than %zu certificates in one signature",
		         v->smime->limits.max_certs);
		return P11MAIL_ERR_LIMIT;
	}
	if (dcont == NULL && (capture = BIO_new(BIO_s_mem())) == NULL)
		return P11MAIL_ERR_NOMEM;
	v->content_ok = digest_content(v, cms, dcont, capture);
	ERR_clear_error();
	st = judge_all(v, cms);
	release_content(v, dcont);
	if (st == P11MAIL_OK && capture != NULL) {
		char *data = NULL;
		long len = BIO_get_mem_data(capture, &data);

		v->res->content = malloc((size_t)len + 1);
		if (v->res->content == NULL)
			st = P11MAIL_ERR_NOMEM;
		else {
			memcpy(v->res->content, data, (size_t)len);
			v->res->content[len] = '\0';
			v->res->content_len = (size_t)len;
		}
	}
	BIO_free(capture);
	return st;
}

static enum p11mail_verdict verdict_of(const struct p11mail_verify_result *r,
                                       int have_sender)
{
	enum p11mail_verdict verdict = P11MAIL_VERDICT_VALID;

	if (r->signer_count == 0)
		return P11MAIL_VERDICT_UNSIGNED;
	for (size_t i = 0; i < r->signer_count; i++) {
		const struct p11mail_signer *s = &r->signers[i];

		if (!s->valid || (have_sender && !s->sender_match))
			return P11MAIL_VERDICT_INVALID;
		if (s->trust != P11MAIL_TRUST_TRUSTED)
			verdict = P11MAIL_VERDICT_NOT_TRUSTED;
	}
	return verdict;
}

/* Runs one CMS verification and sets the verdict. */
static enum p11mail_status verify_der(struct vctx *v, const unsigned char *der,
                                      size_t len, BIO *dcont)
{
	CMS_ContentInfo *cms = NULL;
	enum p11mail_status st;

	st = smime_cms_parse(v->smime, der, len, &cms);
	if (st == P11MAIL_ERR_FORMAT) {
		set_problem(&v->res->problem, "the signature is not valid CMS");
		v->res->verdict = P11MAIL_VERDICT_INVALID;
		return P11MAIL_OK;
	}
	if (st != P11MAIL_OK)
		return st;
	v->res->verdict = P11MAIL_VERDICT_INVALID;
	st = verify_cms(v, cms, dcont);
	if (st == P11MAIL_OK && v->res->problem == NULL)
		v->res->verdict = verdict_of(v->res, v->sender != NULL);
	CMS_ContentInfo_free(cms);
	return st;
}

static enum p11mail_status verify_multipart(struct vctx *v, GMimeObject *obj)
{
	GMimeMultipart *mp = GMIME_MULTIPART(obj);
	unsigned char *content = NULL, *der = NULL;
	size_t content_len = 0, der_len = 0;
	BIO *dcont = NULL;
	enum p11mail_status st;

	if (g_mime_multipart_get_count(mp) != 2 ||
	    !mime_is_pkcs7_signature(g_mime_multipart_get_part(mp, 1))) {
		set_problem(&v->res->problem,
		            "multipart/signed without exactly one content "
		            "part and one signature");
		v->res->verdict = P11MAIL_VERDICT_INVALID;
		return P11MAIL_OK;
	}
	st = mime_to_crlf(g_mime_multipart_get_part(mp, 0), &content,
	                  &content_len);
	if (st == P11MAIL_OK)
		st = mime_part_content(g_mime_multipart_get_part(mp, 1),
		                       v->smime->limits.max_size, &der,
		                       &der_len);
	if (st != P11MAIL_OK)
		goto out;
	dcont = BIO_new_mem_buf(content, (int)content_len);
	if (dcont == NULL) {
		st = P11MAIL_ERR_NOMEM;
		goto out;
	}
	st = verify_der(v, der, der_len, dcont);
	if (st == P11MAIL_OK) {
		v->res->content = content;
		v->res->content_len = content_len;
		content = NULL;
	}

out:
	BIO_free(dcont);
	free(content);
	free(der);
	return st;
}

static enum p11mail_status verify_opaque(struct vctx *v, GMimeObject *obj)
{
	unsigned char *der = NULL;
	size_t der_len = 0;
	enum p11mail_status st;

	st = mime_part_content(obj, v->smime->limits.max_size, &der, &der_len);
	if (st == P11MAIL_OK)
		st = verify_der(v, der, der_len, NULL);
	v->res->opaque = 1;
	free(der);
	return st;
}

/* True for an entity that carries a signature of its own. */
static int is_signed_entity(GMimeObject *obj)
{
	const char *type;

	if (mime_is_multipart_signed(obj))
		return 1;
	return mime_is_pkcs7_mime(obj, &type) &&
	       strcasecmp(type, "signed-data") == 0;
}

/* Depth-first search for the first signed entity below obj; path "1.2". */
static GMimeObject *find_signed(GMimeObject *obj, char *path, size_t size)
{
	size_t base = strlen(path);

	if (!GMIME_IS_MULTIPART(obj) || mime_is_multipart_signed(obj))
		return NULL;
	for (int i = 0; i < g_mime_multipart_get_count(GMIME_MULTIPART(obj));
	     i++) {
		GMimeObject *child =
		        g_mime_multipart_get_part(GMIME_MULTIPART(obj), i);
		GMimeObject *found;

		snprintf(path + base, size - base, "%s%d", base ? "." : "",
		         i + 1);
		if (is_signed_entity(child))
			return child;
		found = find_signed(child, path, size);
		if (found != NULL)
			return found;
	}
	path[base] = '\0';
	return NULL;
}

static enum p11mail_status verify_entity(struct vctx *v, GMimeObject *obj)
{
	if (mime_is_multipart_signed(obj))
		return verify_multipart(v, obj);
	return verify_opaque(v, obj);
}

static enum p11mail_status verify_message(struct vctx *v, GMimeMessage *msg)
{
	GMimeObject *root = g_mime_message_get_mime_part(msg);
	GMimeObject *part;
	char path[64] = "";
	enum p11mail_status st;

	if (is_signed_entity(root)) {
		v->res->signed_part = strdup("");
		return verify_entity(v, root);
	}
	part = find_signed(root, path, sizeof(path));
	v->res->verdict = P11MAIL_VERDICT_UNSIGNED;
	if (part == NULL) {
		set_problem(&v->res->problem, "the message is not signed");
		return P11MAIL_OK;
	}

	/* report the signed part, but never as the message's status */
	v->res->signed_part = strdup(path);
	st = verify_entity(v, part);
	v->res->verdict = P11MAIL_VERDICT_UNSIGNED;
	free(v->res->problem);
	v->res->problem = NULL;
	set_problem(&v->res->problem,
	            "only part %s is signed; the rest of the message is not",
	            path);
	return st;
}

static enum p11mail_status verify_input(struct vctx *v, const unsigned char *in,
                                        size_t len)
{
	GMimeMessage *msg = NULL;
	char *sender = NULL;
	enum p11mail_status st;

	if (smime_looks_der(in, len)) { /* opaque signed-data */
		v->res->opaque = 1;
		v->res->signed_part = strdup("");
		return verify_der(v, in, len, NULL);
	}
	st = mime_parse(in, len, &v->smime->limits, &msg);
	if (st != P11MAIL_OK)
		return st;
	if (mime_sender(msg, &sender) != P11MAIL_OK) {
		set_problem(&v->res->problem,
		            "the message has several senders; it is "
		            "rejected");
		v->res->verdict = P11MAIL_VERDICT_INVALID;
		goto out;
	}
	v->res->sender = sender;
	v->sender = sender;
	st = verify_message(v, msg);

out:
	g_object_unref(msg);
	return st;
}

enum p11mail_status p11mail_smime_verify(p11mail_smime *smime,
                                         const unsigned char *in, size_t in_len,
                                         struct p11mail_verify_result **out)
{
	struct vctx v = {.smime = smime};
	enum p11mail_status st;

	*out = NULL;
	if (in_len > smime->limits.max_size) {
		p11m_log(P11MAIL_LOG_ERROR, "message larger than %zu bytes",
		         smime->limits.max_size);
		return P11MAIL_ERR_LIMIT;
	}
	v.res = calloc(1, sizeof(*v.res));
	if (v.res == NULL)
		return P11MAIL_ERR_NOMEM;
	v.res->verdict = P11MAIL_VERDICT_INVALID;
	st = smime_anchor_store(smime, &v.anchors);
	if (st == P11MAIL_OK)
		st = verify_input(&v, in, in_len);
	if (st == P11MAIL_OK) {
		*out = v.res;
		v.res = NULL;
	}
	p11mail_verify_result_free(v.res);
	sk_X509_pop_free(v.certs, X509_free);
	X509_STORE_free(v.anchors);
	return st;
}

void p11mail_verify_result_free(struct p11mail_verify_result *result)
{
	if (result == NULL)
		return;
	for (size_t i = 0; i < result->signer_count; i++) {
		free(result->signers[i].addresses);
		free(result->signers[i].subject);
		free(result->signers[i].problem);
		free(result->signers[i].cert_der);
		free(result->signers[i].smime_caps);
	}
	free(result->signers);
	free(result->sender);
	free(result->signed_part);
	free(result->problem);
	/* the content may be a decrypted message */
	p11m_secure_free(result->content, result->content_len);
	free(result);
}
