/* The one place secrets are wiped: OPENSSL_cleanse underneath. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common.h"

void p11mail_wipe(void *ptr, size_t len)
{
	if (ptr != NULL && len > 0)
		OPENSSL_cleanse(ptr, len);
}

void p11m_secure_free(void *ptr, size_t len)
{
	if (ptr == NULL)
		return;
	p11mail_wipe(ptr, len);
	free(ptr);
}

void p11mail_secret_free(char *secret)
{
	if (secret != NULL)
		p11m_secure_free(secret, strlen(secret));
}
