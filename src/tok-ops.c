/*
 * The private-key operations: sign, decrypt and derive on the token, with
 * raw RSA and software padding where the token lacks PSS or the OAEP
 * parameters asked for.  Each operation runs on a pooled session and is
 * retried once after the core found the token and the key again.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/obj_mac.h>

#include "common.h"
#include "tok-internal.h"

/* One operation's input and output, as the retry wrapper carries them. */
struct op {
	const void *params;
	const unsigned char *in;
	size_t in_len;
	unsigned char *out;
	size_t *out_len;
};

typedef CK_RV (*op_fn)(tok_key *key, struct op *op);

static const struct {
	int nid;
	CK_MECHANISM_TYPE hash;
	CK_RSA_PKCS_MGF_TYPE mgf;
	unsigned int bit;
} hashes[] = {
        {NID_sha1, CKM_SHA_1, CKG_MGF1_SHA1, 1 << 0},
        {NID_sha224, CKM_SHA224, CKG_MGF1_SHA224, 1 << 1},
        {NID_sha256, CKM_SHA256, CKG_MGF1_SHA256, 1 << 2},
        {NID_sha384, CKM_SHA384, CKG_MGF1_SHA384, 1 << 3},
        {NID_sha512, CKM_SHA512, CKG_MGF1_SHA512, 1 << 4},
};

static int hash_index(int nid)
{
	size_t i;

	for (i = 0; i < P11M_ARRAY_SIZE(hashes); i++)
		if (hashes[i].nid == nid)
			return (int)i;
	return -1;
}

static CK_OBJECT_HANDLE key_handle(tok_key *key)
{
	CK_OBJECT_HANDLE h;

	pthread_mutex_lock(&key->lock);
	h = key->handle;
	pthread_mutex_unlock(&key->lock);
	return h;
}

/*
 * Runs Init, the context-specific login when the key wants one, and the
 * final call.  A session whose operation may still be active is closed.
 */
static CK_RV run(tok_key *key, int decrypt, CK_MECHANISM *mech,
                 const unsigned char *in, size_t in_len, unsigned char *out,
                 CK_ULONG *out_len)
{
	struct tok_module *mod = key->tok->mod;
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
	int active = 0, finished = 0;
	CK_RV rv;

	p11m_trace("token", "%s with mechanism 0x%lx",
	           decrypt ? "decrypt" : "sign",
	           (unsigned long)mech->mechanism);
	rv = tok_session_get(key->tok, &h);
	if (rv != CKR_OK)
		return rv;
	if (decrypt)
		rv = TOK_CALL(mod, C_DecryptInit, h, mech, key_handle(key));
	else
		rv = TOK_CALL(mod, C_SignInit, h, mech, key_handle(key));
	active = rv == CKR_OK;
	if (rv == CKR_OK && key->info.always_authenticate)
		rv = tok_login_context(key, h);
	if (rv == CKR_OK && decrypt) {
		rv = TOK_CALL(mod, C_Decrypt, h, tok_mut(in), in_len, out,
		              out_len);
		finished = rv != CKR_BUFFER_TOO_SMALL;
	} else if (rv == CKR_OK) {
		rv = TOK_CALL(mod, C_Sign, h, tok_mut(in), in_len, out,
		              out_len);
		finished = rv != CKR_BUFFER_TOO_SMALL;
	}
	if (finished)
		active = 0;
	if (active) {
		TOK_CALL(mod, C_CloseSession, h);
		h = CK_INVALID_HANDLE;
	}
	tok_session_put(key->tok, h, rv);
	return rv;
}

/* The whole operation, once more after a reconnect when the token went. */
static CK_RV with_retry(tok_key *key, op_fn fn, struct op *op)
{
	CK_RV rv;

	rv = tok_key_prepare(key);
	if (rv == CKR_OK)
		rv = fn(key, op);
	if (tok_rv_is_lost(rv)) {
		CK_RV again = tok_key_reconnect(key);

		rv = again == CKR_OK ? fn(key, op) : again;
	}
	if (tok_rv_is_lost(rv) && rv != CKR_USER_NOT_LOGGED_IN)
		rv = tok_fail(rv, TOK_DETAIL_REMOVED,
		              "insert the token %s (serial %s)",
		              key->tok->label, key->tok->serial);
	return rv;
}

static size_t sig_size(const tok_key *key)
{
	if (key->info.type == TOK_KEY_RSA)
		return key->info.modulus_len;
	return 2 * ((key->info.bits + 7) / 8);
}

static int pss_salt(const tok_key *key, const struct tok_sig_params *p,
                    size_t hash_len)
{
	int max = (int)((key->info.bits + 6) / 8) - (int)hash_len - 2;

	if (p->salt_len >= 0)
		return p->salt_len;
	if (p->salt_len == -1)
		return (int)hash_len;
	return max;
}

static CK_RV sign_pss(tok_key *key, const struct tok_sig_params *p,
                      struct op *op, CK_ULONG *len)
{
	int hi = hash_index(p->md_nid);
	int mi = hash_index(p->mgf1_md_nid ? p->mgf1_md_nid : p->md_nid);
	unsigned int mechs = tok_token_mechs(key->tok);
	CK_RSA_PKCS_PSS_PARAMS pss;
	CK_MECHANISM mech = {CKM_RSA_X_509, NULL, 0};
	unsigned char *em = NULL;
	size_t em_len = key->info.modulus_len;
	CK_RV rv;

	if (hi < 0 || mi < 0)
		return tok_fail(CKR_MECHANISM_PARAM_INVALID, TOK_DETAIL_NONE,
		                "unsupported hash for RSA-PSS");
	if (mechs & TOK_MECH_RSA_PSS) {
		pss.hashAlg = hashes[hi].hash;
		pss.mgf = hashes[mi].mgf;
		pss.sLen = (CK_ULONG)pss_salt(key, p, op->in_len);
		mech = (CK_MECHANISM){CKM_RSA_PKCS_PSS, &pss, sizeof(pss)};
		return run(key, 0, &mech, op->in, op->in_len, op->out, len);
	}
	if (!(mechs & TOK_MECH_RSA_X509))
		return tok_fail(CKR_MECHANISM_INVALID, TOK_DETAIL_NONE,
		                "the token %s offers neither RSA-PSS nor raw "
		                "RSA",
		                key->tok->label);
	em = malloc(em_len);
	if (em == NULL)
		return CKR_HOST_MEMORY;
	rv = tok_rsa_pss_encode(&key->info, p, op->in, op->in_len, em, em_len);
	if (rv == CKR_OK)
		rv = run(key, 0, &mech, em, em_len, op->out, len);
	free(em);
	return rv;
}

static CK_RV sign_once(tok_key *key, struct op *op)
{
	const struct tok_sig_params *p = op->params;
	CK_MECHANISM mech = {CKM_RSA_PKCS, NULL, 0};
	CK_ULONG len = *op->out_len;
	CK_RV rv;

	if (p->scheme == TOK_SIG_PSS)
		rv = sign_pss(key, p, op, &len);
	else {
		if (p->scheme == TOK_SIG_ECDSA)
			mech.mechanism = CKM_ECDSA;
		rv = run(key, 0, &mech, op->in, op->in_len, op->out, &len);
	}
	if (rv == CKR_OK)
		*op->out_len = len;
	return rv;
}

CK_RV tok_key_sign(tok_key *key, const struct tok_sig_params *params,
                   const unsigned char *tbs, size_t tbs_len, unsigned char *sig,
                   size_t *sig_len)
{
	struct op op = {params, tbs, tbs_len, sig, sig_len};
	int rsa;

	tok_clear_error();
	if (key == NULL || params == NULL || tbs == NULL || sig_len == NULL)
		return CKR_ARGUMENTS_BAD;
	rsa = params->scheme == TOK_SIG_PKCS1 || params->scheme == TOK_SIG_PSS;
	if (rsa != (key->info.type == TOK_KEY_RSA) ||
	    (!rsa && params->scheme != TOK_SIG_ECDSA))
		return tok_fail(CKR_KEY_TYPE_INCONSISTENT, TOK_DETAIL_NONE,
		                "the signature scheme does not suit the key");
	if (sig == NULL) {
		*sig_len = sig_size(key);
		return CKR_OK;
	}
	if (*sig_len < sig_size(key))
		return CKR_BUFFER_TOO_SMALL;
	return with_retry(key, sign_once, &op);
}

/* Padding errors all look alike, whatever the token said. */
static CK_RV generic_decrypt_error(CK_RV rv)
{
	switch (rv) {
	case CKR_ENCRYPTED_DATA_INVALID:
	case CKR_ENCRYPTED_DATA_LEN_RANGE:
	case CKR_DATA_INVALID:
	case CKR_DATA_LEN_RANGE:
	case CKR_GENERAL_ERROR:
	case CKR_FUNCTION_FAILED:
		return tok_fail(CKR_ENCRYPTED_DATA_INVALID, TOK_DETAIL_NONE,
		                "decryption failed");
	default:
		return rv;
	}
}

/* Raw RSA into a modulus-size buffer, left-padded with zeros. */
static CK_RV decrypt_raw(tok_key *key, struct op *op, unsigned char *em)
{
	CK_MECHANISM mech = {CKM_RSA_X_509, NULL, 0};
	size_t mlen = key->info.modulus_len;
	CK_ULONG len = mlen;
	CK_RV rv;

	rv = run(key, 1, &mech, op->in, op->in_len, em, &len);
	if (rv != CKR_OK)
		return rv;
	if (len < mlen) {
		memmove(em + (mlen - len), em, len);
		memset(em, 0, mlen - len);
	}
	return CKR_OK;
}

/* Whether the token takes these OAEP parameters on its own mechanism. */
static int oaep_native(tok_key *key, const struct tok_dec_params *p, int hi,
                       int mi)
{
	struct tok_token *tok = key->tok;
	unsigned int mechs = tok_token_mechs(tok);
	int ok;

	if (!(mechs & TOK_MECH_RSA_OAEP))
		return 0;
	pthread_mutex_lock(&tok->lock);
	ok = !(tok->oaep_refused & hashes[hi].bit);
	if (tok->quirks & TOK_QUIRK_OAEP_SHA1_ONLY)
		ok = ok && p->md_nid == NID_sha1 && hi == mi &&
		     p->label_len == 0;
	pthread_mutex_unlock(&tok->lock);
	return ok;
}

static CK_RV decrypt_oaep(tok_key *key, struct op *op, CK_ULONG *len)
{
	const struct tok_dec_params *p = op->params;
	int hi = hash_index(p->md_nid ? p->md_nid : NID_sha1);
	int mi =
	        hash_index(p->mgf1_md_nid ? p->mgf1_md_nid
	                                  : (p->md_nid ? p->md_nid : NID_sha1));
	CK_RSA_PKCS_OAEP_PARAMS oaep;
	CK_MECHANISM mech;
	unsigned char *em = NULL;
	size_t out_len = *len;
	CK_RV rv;

	if (hi < 0 || mi < 0)
		return tok_fail(CKR_MECHANISM_PARAM_INVALID, TOK_DETAIL_NONE,
		                "unsupported hash for RSA-OAEP");
	if (oaep_native(key, p, hi, mi)) {
		oaep = (CK_RSA_PKCS_OAEP_PARAMS){
		        hashes[hi].hash, hashes[mi].mgf, CKZ_DATA_SPECIFIED,
		        tok_mut(p->label), p->label_len};
		mech = (CK_MECHANISM){CKM_RSA_PKCS_OAEP, &oaep, sizeof(oaep)};
		rv = run(key, 1, &mech, op->in, op->in_len, op->out, len);
		if (rv != CKR_MECHANISM_PARAM_INVALID &&
		    rv != CKR_MECHANISM_INVALID && rv != CKR_ARGUMENTS_BAD)
			return generic_decrypt_error(rv);
		/* Remembered, so the next message goes straight to raw RSA. */
		pthread_mutex_lock(&key->tok->lock);
		key->tok->oaep_refused |= hashes[hi].bit;
		pthread_mutex_unlock(&key->tok->lock);
	}

	em = malloc(key->info.modulus_len);
	if (em == NULL)
		return CKR_HOST_MEMORY;
	rv = decrypt_raw(key, op, em);
	if (rv == CKR_OK)
		rv = tok_rsa_oaep_decode(p, em, key->info.modulus_len, op->out,
		                         &out_len);
	p11m_secure_free(em, key->info.modulus_len);
	if (rv == CKR_OK)
		*len = out_len;
	return generic_decrypt_error(rv);
}

static CK_RV decrypt_once(tok_key *key, struct op *op)
{
	const struct tok_dec_params *p = op->params;
	CK_MECHANISM mech = {CKM_RSA_PKCS, NULL, 0};
	CK_ULONG len = *op->out_len;
	CK_RV rv;

	if (p->scheme == TOK_DEC_OAEP)
		rv = decrypt_oaep(key, op, &len);
	else if (p->scheme == TOK_DEC_RAW)
		rv = decrypt_raw(key, op, op->out);
	else
		rv = generic_decrypt_error(
		        run(key, 1, &mech, op->in, op->in_len, op->out, &len));
	if (rv == CKR_OK)
		*op->out_len =
		        p->scheme == TOK_DEC_RAW ? key->info.modulus_len : len;
	return rv;
}

CK_RV tok_key_decrypt(tok_key *key, const struct tok_dec_params *params,
                      const unsigned char *in, size_t in_len,
                      unsigned char *out, size_t *out_len)
{
	struct op op = {params, in, in_len, out, out_len};

	tok_clear_error();
	if (key == NULL || params == NULL || in == NULL || out == NULL ||
	    out_len == NULL)
		return CKR_ARGUMENTS_BAD;
	if (key->info.type != TOK_KEY_RSA)
		return tok_fail(CKR_KEY_TYPE_INCONSISTENT, TOK_DETAIL_NONE,
		                "only RSA keys decrypt");
	if (*out_len < key->info.modulus_len)
		return CKR_BUFFER_TOO_SMALL;
	return with_retry(key, decrypt_once, &op);
}

/* Reads the derived secret's value into out and destroys the object. */
static CK_RV derive_read(tok_key *key, CK_SESSION_HANDLE h,
                         CK_OBJECT_HANDLE obj, struct op *op)
{
	unsigned char *value = NULL;
	size_t len = 0;
	CK_RV rv;

	rv = tok_attr_get(key->tok, h, obj, CKA_VALUE, &value, &len);
	TOK_CALL(key->tok->mod, C_DestroyObject, h, obj);
	if (rv == CKR_OK && value == NULL)
		rv = CKR_ATTRIBUTE_SENSITIVE;
	else if (rv == CKR_OK && len > *op->out_len)
		rv = CKR_BUFFER_TOO_SMALL;
	if (rv == CKR_OK) {
		memcpy(op->out, value, len);
		*op->out_len = len;
	}
	p11m_secure_free(value, len);
	return rv;
}

static CK_RV derive_once(tok_key *key, struct op *op)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	CK_BBOOL no = CK_FALSE, yes = CK_TRUE;
	CK_ULONG vlen = (key->info.bits + 7) / 8;
	CK_ATTRIBUTE tmpl[] = {
	        {CKA_CLASS, &cls, sizeof(cls)},
	        {CKA_KEY_TYPE, &kt, sizeof(kt)},
	        {CKA_TOKEN, &no, sizeof(no)},
	        {CKA_SENSITIVE, &no, sizeof(no)},
	        {CKA_EXTRACTABLE, &yes, sizeof(yes)},
	        {CKA_VALUE_LEN, &vlen, sizeof(vlen)},
	};
	CK_ECDH1_DERIVE_PARAMS ecdh = {CKD_NULL, 0, NULL, op->in_len,
	                               tok_mut(op->in)};
	CK_MECHANISM mech = {CKM_ECDH1_DERIVE, &ecdh, sizeof(ecdh)};
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
	CK_RV rv;

	rv = tok_session_get(key->tok, &h);
	if (rv != CKR_OK)
		return rv;
	rv = TOK_CALL(key->tok->mod, C_DeriveKey, h, &mech, key_handle(key),
	              tmpl, P11M_ARRAY_SIZE(tmpl), &obj);
	if (rv == CKR_OK)
		rv = derive_read(key, h, obj, op);
	tok_session_put(key->tok, h, rv);
	return rv;
}

CK_RV tok_key_derive(tok_key *key, const unsigned char *peer_point,
                     size_t peer_point_len, unsigned char *out, size_t *out_len)
{
	struct op op = {NULL, peer_point, peer_point_len, out, out_len};

	tok_clear_error();
	if (key == NULL || peer_point == NULL || out == NULL || out_len == NULL)
		return CKR_ARGUMENTS_BAD;
	if (key->info.type != TOK_KEY_EC)
		return tok_fail(CKR_KEY_TYPE_INCONSISTENT, TOK_DETAIL_NONE,
		                "only EC keys derive");
	if (!(tok_token_mechs(key->tok) & TOK_MECH_ECDH))
		return tok_fail(CKR_MECHANISM_INVALID, TOK_DETAIL_NONE,
		                "the token %s cannot do ECDH", key->tok->label);
	return with_retry(key, derive_once, &op);
}
