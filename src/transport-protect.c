/*
 * Signing and encryption of outgoing mail with what the workstation store
 * holds: the sender's identity (key on the token) and the recipients'
 * cached certificates.  Encryption fails closed unless the caller asked
 * for the automatic choice, which then signs only and says so.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "transport.h"

/* The S/MIME context for one message, built from the store. */
static enum p11mail_status protect_smime(const struct p11mail_config *cfg,
                                         const char *store_dir,
                                         const struct p11mail_envelope *env,
                                         int need_key, p11mail_smime **out)
{
	const char *pin = p11mail_config_get(cfg, "token", "pin-source");
	p11mail_store *store = NULL;
	enum p11mail_status rc;
	char *dir = NULL;

	*out = NULL;
	rc = p11mail_store_dir(cfg, store_dir, 0, &dir);
	if (rc == P11MAIL_OK)
		rc = p11mail_store_open(dir, &store);
	if (rc == P11MAIL_OK)
		rc = p11mail_mail_smime_new_config(
		        cfg, store, (const char *const *)env->rcpt,
		        env->rcpt_count, out);
	if (rc == P11MAIL_OK)
		rc = p11mail_mail_set_identity(*out, store, env->from, pin,
		                               need_key);
	if (rc != P11MAIL_OK) {
		p11mail_smime_free(*out);
		*out = NULL;
	}
	p11mail_store_close(store);
	free(dir);
	return rc;
}

int p11mail_protect_can_wait(enum p11mail_status st)
{
	return st == P11MAIL_ERR_NO_TOKEN || st == P11MAIL_ERR_TOKEN_REMOVED;
}

/* Copies an S/MIME result into a plain malloc'd buffer. */
static enum p11mail_status protect_copy(const unsigned char *in, size_t len,
                                        unsigned char **out)
{
	*out = malloc(len + 1);
	if (*out == NULL)
		return P11MAIL_ERR_NOMEM;
	memcpy(*out, in, len);
	(*out)[len] = '\0';
	return P11MAIL_OK;
}

enum p11mail_status
p11mail_mail_protect(const struct p11mail_config *cfg, const char *store_dir,
                     const struct p11mail_envelope *env, unsigned int how,
                     const unsigned char *msg, size_t len, unsigned char **out,
                     size_t *out_len, int *encrypted)
{
	int sign = (how & (P11MAIL_PROTECT_SIGN | P11MAIL_PROTECT_AUTO)) != 0;
	int encrypt =
	        (how & (P11MAIL_PROTECT_ENCRYPT | P11MAIL_PROTECT_AUTO)) != 0;
	unsigned char *res = NULL;
	p11mail_smime *smime = NULL;
	enum p11mail_status rc;
	size_t res_len = 0;

	if (out == NULL || out_len == NULL || encrypted == NULL)
		return P11MAIL_ERR_ARGS;
	*out = NULL;
	*out_len = 0;
	*encrypted = 0;
	if (cfg == NULL || env == NULL || msg == NULL || (!sign && !encrypt))
		return P11MAIL_ERR_ARGS;

	rc = protect_smime(cfg, store_dir, env, sign, &smime);
	if (rc == P11MAIL_OK && encrypt)
		rc = p11mail_smime_encrypt(smime, sign ? P11MAIL_SMIME_SIGN : 0,
		                           (const char *const *)env->rcpt,
		                           env->rcpt_count, msg, len, &res,
		                           &res_len);
	if (rc == P11MAIL_ERR_NO_CERT && (how & P11MAIL_PROTECT_AUTO)) {
		p11m_log(P11MAIL_LOG_WARNING,
		         "not every recipient has a usable certificate: "
		         "sending signed, NOT encrypted");
		encrypt = 0;
		rc = P11MAIL_OK;
	}
	if (rc == P11MAIL_OK && !encrypt)
		rc = p11mail_smime_sign(smime, 0, msg, len, &res, &res_len);
	if (rc == P11MAIL_OK)
		rc = protect_copy(res, res_len, out);
	if (rc == P11MAIL_OK) {
		*out_len = res_len;
		*encrypted = encrypt;
	}
	p11mail_smime_release(res, res_len);
	p11mail_smime_free(smime);
	return rc;
}
