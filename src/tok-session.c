/*
 * A small pool of open sessions per token.  Sessions are reused across
 * operations so that a signature costs one C_SignInit and one C_Sign, and
 * at least one stays open so the token keeps its login.
 */
#include "config.h"

#include <string.h>

#include "common.h"
#include "tok-internal.h"

CK_RV tok_session_get(struct tok_token *tok, CK_SESSION_HANDLE *out)
{
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
	CK_SLOT_ID slot;
	CK_RV rv;

	*out = CK_INVALID_HANDLE;
	pthread_mutex_lock(&tok->lock);
	if (tok->npool > 0)
		h = tok->pool[--tok->npool];
	slot = tok->slot;
	pthread_mutex_unlock(&tok->lock);
	if (h != CK_INVALID_HANDLE) {
		*out = h;
		return CKR_OK;
	}

	rv = TOK_CALL(tok->mod, C_OpenSession, slot,
	              CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h);
	if (rv == CKR_TOKEN_WRITE_PROTECTED)
		rv = TOK_CALL(tok->mod, C_OpenSession, slot, CKF_SERIAL_SESSION,
		              NULL, NULL, &h);
	if (rv == CKR_OK)
		*out = h;
	return rv;
}

void tok_session_put(struct tok_token *tok, CK_SESSION_HANDLE h, CK_RV rv)
{
	if (h == CK_INVALID_HANDLE)
		return;
	if (tok_rv_is_lost(rv) && rv != CKR_USER_NOT_LOGGED_IN &&
	    rv != CKR_KEY_HANDLE_INVALID && rv != CKR_OBJECT_HANDLE_INVALID) {
		/* Its slot is gone or it died: drop it, the module may too. */
		TOK_CALL(tok->mod, C_CloseSession, h);
		return;
	}
	pthread_mutex_lock(&tok->lock);
	if (tok->npool < TOK_POOL_MAX) {
		tok->pool[tok->npool++] = h;
		h = CK_INVALID_HANDLE;
	}
	pthread_mutex_unlock(&tok->lock);
	if (h != CK_INVALID_HANDLE)
		TOK_CALL(tok->mod, C_CloseSession, h);
}

void tok_session_flush(struct tok_token *tok, int close)
{
	size_t i;

	for (i = 0; close && i < tok->npool; i++)
		TOK_CALL(tok->mod, C_CloseSession, tok->pool[i]);
	tok->npool = 0;
	tok->generation++;
}
