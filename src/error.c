/* Names of the library's status codes. */
#include "config.h"

#include "common.h"

static const char *const messages[] = {
        [P11MAIL_OK] = "success",
        [P11MAIL_ERR_NOMEM] = "out of memory",
        [P11MAIL_ERR_ARGS] = "invalid argument",
        [P11MAIL_ERR_IO] = "input or output failed",
        [P11MAIL_ERR_CONFIG] = "the configuration is missing or malformed",
        [P11MAIL_ERR_URI] = "malformed PKCS#11 URI",
        [P11MAIL_ERR_MODULE] = "the PKCS#11 module could not be loaded",
        [P11MAIL_ERR_NO_TOKEN] = "no matching token is present",
        [P11MAIL_ERR_NO_KEY] = "no matching key on the token",
        [P11MAIL_ERR_AMBIGUOUS] = "the URI matches more than one object",
        [P11MAIL_ERR_PIN_INCORRECT] = "the PIN is incorrect",
        [P11MAIL_ERR_PIN_LOCKED] = "the PIN is locked",
        [P11MAIL_ERR_PIN_FINAL_TRY] = "the PIN has one try left; login refused",
        [P11MAIL_ERR_PIN_EXPIRED] = "the PIN must be changed before use",
        [P11MAIL_ERR_PIN_CANCELLED] = "no PIN was given",
        [P11MAIL_ERR_TOKEN_REMOVED] = "the token was removed",
        [P11MAIL_ERR_MECHANISM] = "the token does not support this operation",
        [P11MAIL_ERR_TOKEN] = "the token reported an error",
        [P11MAIL_ERR_CRYPTO] = "a cryptographic operation failed",
        [P11MAIL_ERR_DECRYPT] = "the message could not be decrypted",
        [P11MAIL_ERR_FORMAT] = "the input is malformed",
        [P11MAIL_ERR_LIMIT] = "the input exceeds a configured limit",
        [P11MAIL_ERR_NO_CERT] = "no usable certificate",
        [P11MAIL_ERR_CERT_EXPIRED] =
                "the certificate is expired or not yet valid",
        [P11MAIL_ERR_UNTRUSTED] = "the certificate is not trusted",
        [P11MAIL_ERR_SIGNATURE] = "the signature is invalid",
        [P11MAIL_ERR_STORE] = "the certificate store failed",
        [P11MAIL_ERR_STORE_BUSY] =
                "the certificate store is locked by another process",
        [P11MAIL_ERR_EXISTS] = "already present",
        [P11MAIL_ERR_NOT_FOUND] = "not found",
        [P11MAIL_ERR_TRANSPORT] = "the mail server could not be reached",
        [P11MAIL_ERR_AUTH] = "the mail server refused the login",
        [P11MAIL_ERR_DISCOVERY] = "certificate discovery failed",
        [P11MAIL_ERR_INTERNAL] = "internal error",
};

const char *p11mail_strerror(enum p11mail_status status)
{
	if ((size_t)status >= P11M_ARRAY_SIZE(messages) ||
	    messages[status] == NULL)
		return "unknown error";
	return messages[status];
}

const char *p11mail_version(void)
{
	return PACKAGE_VERSION;
}
