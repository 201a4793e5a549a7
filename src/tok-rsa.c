/*
 * Software RSA padding for the raw RSA (CKM_RSA_X_509) fallbacks: EMSA-PSS
 * encoding for signing and OpenSSL's constant-time OAEP check for
 * decryption.  These OpenSSL functions are deprecated; this file is the one
 * place that uses them, and nothing else in the token core needs the
 * deprecated API.
 */
#include "config.h"

#undef OPENSSL_NO_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "common.h"
#include "tok-internal.h"

/* An RSA public key from the token's n and e, for the padding functions. */
static RSA *rsa_public(const struct tok_key_info *info)
{
	BIGNUM *n = BN_bin2bn(info->modulus, (int)info->modulus_len, NULL);
	BIGNUM *e = BN_bin2bn(info->exponent, (int)info->exponent_len, NULL);
	RSA *rsa = RSA_new();

	if (n == NULL || e == NULL || rsa == NULL ||
	    RSA_set0_key(rsa, n, e, NULL) != 1) {
		BN_free(n);
		BN_free(e);
		RSA_free(rsa);
		return NULL;
	}
	return rsa;
}

static const EVP_MD *md_for(int nid)
{
	return EVP_get_digestbynid(nid);
}

CK_RV tok_rsa_pss_encode(const struct tok_key_info *info,
                         const struct tok_sig_params *params,
                         const unsigned char *hash, size_t hash_len,
                         unsigned char *em, size_t em_len)
{
	const EVP_MD *md = md_for(params->md_nid);
	const EVP_MD *mgf = md_for(params->mgf1_md_nid ? params->mgf1_md_nid
	                                               : params->md_nid);
	RSA *rsa = NULL;
	int salt = params->salt_len;
	CK_RV rv = CKR_MECHANISM_PARAM_INVALID;

	if (info->modulus == NULL || md == NULL || mgf == NULL ||
	    (size_t)EVP_MD_get_size(md) != hash_len)
		return rv;
	rsa = rsa_public(info);
	if (rsa == NULL || (size_t)RSA_size(rsa) != em_len) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	/* -1: salt as long as the hash; -2 and -3: the longest that fits. */
	if (salt < -1)
		salt = RSA_PSS_SALTLEN_MAX;
	if (RSA_padding_add_PKCS1_PSS_mgf1(rsa, em, hash, md, mgf, salt) == 1)
		rv = CKR_OK;
out:
	ERR_clear_error();
	RSA_free(rsa);
	return rv;
}

CK_RV tok_rsa_oaep_decode(const struct tok_dec_params *params,
                          const unsigned char *em, size_t em_len,
                          unsigned char *out, size_t *out_len)
{
	const EVP_MD *md = md_for(params->md_nid ? params->md_nid : NID_sha1);
	const EVP_MD *mgf =
	        md_for(params->mgf1_md_nid
	                       ? params->mgf1_md_nid
	                       : (params->md_nid ? params->md_nid : NID_sha1));
	int n;

	if (md == NULL || mgf == NULL)
		return CKR_ENCRYPTED_DATA_INVALID;
	/* The check runs in constant time; its failures are not told apart. */
	n = RSA_padding_check_PKCS1_OAEP_mgf1(
	        out, (int)*out_len, em, (int)em_len, (int)em_len, params->label,
	        (int)params->label_len, md, mgf);
	ERR_clear_error();
	if (n < 0)
		return CKR_ENCRYPTED_DATA_INVALID;
	*out_len = (size_t)n;
	return CKR_OK;
}
