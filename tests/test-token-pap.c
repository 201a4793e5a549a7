/*
 * A PKCS#11 module for tests that turns SoftHSM2 into a token with a
 * protected authentication path (a PIN pad): it forwards everything to
 * the module named by P11PAP_TARGET, reports
 * CKF_PROTECTED_AUTHENTICATION_PATH, and answers C_Login only when no PIN
 * is given, entering P11PAP_PIN itself as a PIN pad would.
 */
#include "config.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST pap_list;
static CK_FUNCTION_LIST *real;

static CK_RV pap_get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO *info)
{
	CK_RV rv = real->C_GetTokenInfo(slot, info);

	if (rv == CKR_OK)
		info->flags |= CKF_PROTECTED_AUTHENTICATION_PATH;
	return rv;
}

static CK_RV pap_login(CK_SESSION_HANDLE h, CK_USER_TYPE who, CK_UTF8CHAR *pin,
                       CK_ULONG len)
{
	const char *pad = getenv("P11PAP_PIN");

	/* A caller that sends a PIN to a PIN-pad token has it wrong. */
	if (pin != NULL || len != 0 || pad == NULL)
		return CKR_ARGUMENTS_BAD;
	return real->C_Login(h, who, (CK_UTF8CHAR *)(uintptr_t)pad,
	                     strlen(pad));
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST **out);

__attribute__((visibility("default"))) CK_RV
C_GetFunctionList(CK_FUNCTION_LIST **out)
{
	const char *target = getenv("P11PAP_TARGET");
	CK_RV (*get)(CK_FUNCTION_LIST **);
	void *lib;

	if (real == NULL) {
		lib = target ? dlopen(target, RTLD_NOW | RTLD_LOCAL) : NULL;
		get = lib ? (CK_RV(*)(CK_FUNCTION_LIST **))dlsym(
		                    lib, "C_GetFunctionList")
		          : NULL;
		if (get == NULL || get(&real) != CKR_OK)
			return CKR_GENERAL_ERROR;
		pap_list = *real;
		pap_list.C_GetTokenInfo = pap_get_token_info;
		pap_list.C_Login = pap_login;
	}
	*out = &pap_list;
	return CKR_OK;
}
