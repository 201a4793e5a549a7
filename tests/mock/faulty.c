/*
 * libp11faulty: a PKCS#11 module that forwards every call to the module
 * named by P11FAULTY_TARGET, except where the control file says to fail:
 * token removal, lost sessions, PIN states, injected return values,
 * renumbered slots and hidden mechanisms.  tests/mock/README has the
 * format; faulty-control.c reads it.
 */
#define _POSIX_C_SOURCE 200809L
#include "faulty-control.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAULTY_EXPORT __attribute__((visibility("default")))

enum session_state {
	S_ALIVE,
	S_REMOVED, /* its token was pulled: CKR_DEVICE_REMOVED */
	S_LOST,    /* gone for good: CKR_SESSION_HANDLE_INVALID */
};

struct session {
	CK_SESSION_HANDLE handle;
	CK_SLOT_ID slot; /* the real module's slot id */
	enum session_state state;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static CK_FUNCTION_LIST_PTR real;
static struct session *sessions;
static size_t nsessions, capsessions;
static int lose_seen;

/* ---- session table (caller holds the lock) -------------------------- */

static struct session *session_find(CK_SESSION_HANDLE h)
{
	for (size_t i = 0; i < nsessions; i++)
		if (sessions[i].handle == h)
			return &sessions[i];
	return NULL;
}

static void session_add(CK_SESSION_HANDLE h, CK_SLOT_ID slot)
{
	struct session *s = session_find(h), *grown;

	if (s == NULL && nsessions == capsessions) {
		grown = realloc(sessions, (capsessions + 16) * sizeof(*grown));
		if (grown == NULL)
			return;
		sessions = grown;
		capsessions += 16;
	}
	if (s == NULL)
		s = &sessions[nsessions++];
	s->handle = h;
	s->slot = slot;
	s->state = S_ALIVE;
}

static void session_drop(CK_SESSION_HANDLE h)
{
	struct session *s = session_find(h);

	if (s != NULL)
		*s = sessions[--nsessions];
}

/* ---- the plan of the current call ----------------------------------- */

/* Whether the real slot is absent according to ctl. */
static int slot_removed(const struct faulty_control *ctl, CK_SLOT_ID slot)
{
	return ctl->removed && (ctl->removed_any_slot ||
	                        ctl->removed_slot == slot + ctl->renumber);
}

/*
 * Moves sessions between states as the control file changed: a pulled
 * token takes its sessions with it (they are closed in the real module),
 * and they stay invalid after it comes back.
 */
static void apply_plan(const struct faulty_control *ctl)
{
	int lose_now = ctl->lose_sessions && !lose_seen;

	lose_seen = ctl->lose_sessions;
	for (size_t i = 0; i < nsessions; i++) {
		struct session *s = &sessions[i];
		int gone = slot_removed(ctl, s->slot);

		if (s->state == S_ALIVE && (gone || lose_now)) {
			real->C_CloseSession(s->handle);
			s->state = gone ? S_REMOVED : S_LOST;
		} else if (s->state == S_REMOVED && !gone) {
			s->state = S_LOST;
		}
	}
}

/*
 * Counts the call, reads the plan and returns an injected failure (then sets
 * *injected when injected is not NULL).
 */
static CK_RV enter_ex(enum faulty_fn fn, struct faulty_control *ctl,
                      int *injected)
{
	pthread_mutex_lock(&lock);
	faulty_count(fn);
	faulty_control_read(ctl);
	if (real != NULL)
		apply_plan(ctl);
	pthread_mutex_unlock(&lock);

	if (ctl->bad)
		return CKR_GENERAL_ERROR;
	for (size_t i = 0; i < ctl->nfails; i++) {
		if (ctl->fails[i].fn == fn) {
			if (injected != NULL)
				*injected = 1;
			return ctl->fails[i].rv;
		}
	}
	return real == NULL ? CKR_CRYPTOKI_NOT_INITIALIZED : CKR_OK;
}

static CK_RV enter(enum faulty_fn fn, struct faulty_control *ctl)
{
	return enter_ex(fn, ctl, NULL);
}

/* enter() for a call on a session: refuses removed and lost sessions. */
static CK_RV enter_session_ex(enum faulty_fn fn, struct faulty_control *ctl,
                              CK_SESSION_HANDLE h, int *injected)
{
	CK_RV rv = enter_ex(fn, ctl, injected);
	struct session *s;

	if (rv != CKR_OK)
		return rv;
	pthread_mutex_lock(&lock);
	s = session_find(h);
	if (s != NULL && s->state == S_REMOVED)
		rv = CKR_DEVICE_REMOVED;
	else if (s != NULL && s->state == S_LOST)
		rv = CKR_SESSION_HANDLE_INVALID;
	pthread_mutex_unlock(&lock);
	return rv;
}

static CK_RV enter_session(enum faulty_fn fn, struct faulty_control *ctl,
                           CK_SESSION_HANDLE h)
{
	return enter_session_ex(fn, ctl, h, NULL);
}

/* enter_session() for an operation that names a mechanism. */
static CK_RV enter_mech(enum faulty_fn fn, CK_SESSION_HANDLE h,
                        CK_MECHANISM_PTR mech)
{
	struct faulty_control ctl;
	CK_RV rv = enter_session(fn, &ctl, h);

	if (rv == CKR_OK && mech != NULL &&
	    faulty_mech_hidden(&ctl, mech->mechanism))
		rv = CKR_MECHANISM_INVALID;
	return rv;
}

/*
 * enter() for a call on a slot: maps the caller's slot id to the real one
 * and refuses an absent token with CKR_TOKEN_NOT_PRESENT, as a reader with
 * an empty slot does.
 */
static CK_RV enter_slot(enum faulty_fn fn, struct faulty_control *ctl,
                        CK_SLOT_ID slot, CK_SLOT_ID *real_slot, int need_token)
{
	CK_RV rv = enter(fn, ctl);

	if (rv != CKR_OK)
		return rv;
	if (slot < ctl->renumber)
		return CKR_SLOT_ID_INVALID;
	*real_slot = slot - ctl->renumber;
	if (need_token && slot_removed(ctl, *real_slot))
		return CKR_TOKEN_NOT_PRESENT;
	return CKR_OK;
}

#define FORWARD(name, args)                                                    \
	(real->name == NULL ? CKR_FUNCTION_NOT_SUPPORTED : real->name args)

/* ---- general and slot functions ------------------------------------- */

static CK_RV w_C_Initialize(CK_VOID_PTR args)
{
	struct faulty_control ctl;
	CK_RV rv = enter(F_C_Initialize, &ctl);

	return rv != CKR_OK ? rv : FORWARD(C_Initialize, (args));
}

static CK_RV w_C_Finalize(CK_VOID_PTR reserved)
{
	struct faulty_control ctl;
	CK_RV rv = enter(F_C_Finalize, &ctl);

	if (rv != CKR_OK)
		return rv;
	pthread_mutex_lock(&lock);
	nsessions = 0;
	pthread_mutex_unlock(&lock);
	return FORWARD(C_Finalize, (reserved));
}

static CK_RV w_C_GetInfo(CK_INFO_PTR info)
{
	struct faulty_control ctl;
	CK_RV rv = enter(F_C_GetInfo, &ctl);

	return rv != CKR_OK ? rv : FORWARD(C_GetInfo, (info));
}

/* Copies n ids into the caller's buffer with the two-call convention. */
static CK_RV give_list(const CK_ULONG *ids, CK_ULONG n, CK_ULONG *out,
                       CK_ULONG_PTR count)
{
	CK_ULONG room = *count;

	*count = n;
	if (out == NULL)
		return CKR_OK;
	if (room < n)
		return CKR_BUFFER_TOO_SMALL;
	memcpy(out, ids, n * sizeof(*ids));
	return CKR_OK;
}

static CK_RV w_C_GetSlotList(CK_BBOOL present, CK_SLOT_ID_PTR list,
                             CK_ULONG_PTR count)
{
	struct faulty_control ctl;
	CK_SLOT_ID *ids = NULL;
	CK_ULONG n = 0, kept = 0;
	CK_RV rv = enter(F_C_GetSlotList, &ctl);

	if (rv != CKR_OK || count == NULL)
		return rv != CKR_OK ? rv : CKR_ARGUMENTS_BAD;

	/* A NULL list first: card readers rescan on that call only. */
	rv = FORWARD(C_GetSlotList, (present, NULL, &n));
	if (rv == CKR_OK && n > 0) {
		ids = calloc(n, sizeof(*ids));
		rv = ids == NULL ? CKR_HOST_MEMORY
		                 : FORWARD(C_GetSlotList, (present, ids, &n));
	}
	if (rv != CKR_OK)
		goto out;
	for (CK_ULONG i = 0; i < n; i++) {
		if (present && slot_removed(&ctl, ids[i]))
			continue;
		ids[kept++] = ids[i] + ctl.renumber;
	}
	rv = give_list(ids, kept, list, count);
out:
	free(ids);
	return rv;
}

static CK_RV w_C_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
	struct faulty_control ctl;
	CK_SLOT_ID rs;
	CK_RV rv = enter_slot(F_C_GetSlotInfo, &ctl, slot, &rs, 0);

	if (rv == CKR_OK)
		rv = FORWARD(C_GetSlotInfo, (rs, info));
	if (rv == CKR_OK && slot_removed(&ctl, rs))
		info->flags &= ~(CK_FLAGS)CKF_TOKEN_PRESENT;
	return rv;
}

static CK_RV w_C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
	struct faulty_control ctl;
	CK_SLOT_ID rs;
	CK_RV rv = enter_slot(F_C_GetTokenInfo, &ctl, slot, &rs, 1);

	if (rv == CKR_OK)
		rv = FORWARD(C_GetTokenInfo, (rs, info));
	if (rv == CKR_OK)
		info->flags |= ctl.token_flags;
	return rv;
}

static CK_RV w_C_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list,
                                  CK_ULONG_PTR count)
{
	struct faulty_control ctl;
	CK_MECHANISM_TYPE *mechs = NULL;
	CK_ULONG n = 0, kept = 0;
	CK_SLOT_ID rs;
	CK_RV rv = enter_slot(F_C_GetMechanismList, &ctl, slot, &rs, 1);

	if (rv != CKR_OK || count == NULL)
		return rv != CKR_OK ? rv : CKR_ARGUMENTS_BAD;
	rv = FORWARD(C_GetMechanismList, (rs, NULL, &n));
	if (rv == CKR_OK && n > 0) {
		mechs = calloc(n, sizeof(*mechs));
		rv = mechs == NULL
		             ? CKR_HOST_MEMORY
		             : FORWARD(C_GetMechanismList, (rs, mechs, &n));
	}
	if (rv != CKR_OK)
		goto out;
	for (CK_ULONG i = 0; i < n; i++)
		if (!faulty_mech_hidden(&ctl, mechs[i]))
			mechs[kept++] = mechs[i];
	rv = give_list(mechs, kept, list, count);
out:
	free(mechs);
	return rv;
}

static CK_RV w_C_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type,
                                  CK_MECHANISM_INFO_PTR info)
{
	struct faulty_control ctl;
	CK_SLOT_ID rs;
	CK_RV rv = enter_slot(F_C_GetMechanismInfo, &ctl, slot, &rs, 1);

	if (rv != CKR_OK)
		return rv;
	if (faulty_mech_hidden(&ctl, type))
		return CKR_MECHANISM_INVALID;
	return FORWARD(C_GetMechanismInfo, (rs, type, info));
}

static CK_RV w_C_InitToken(CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG len,
                           CK_UTF8CHAR_PTR label)
{
	struct faulty_control ctl;
	CK_SLOT_ID rs;
	CK_RV rv = enter_slot(F_C_InitToken, &ctl, slot, &rs, 1);

	return rv != CKR_OK ? rv : FORWARD(C_InitToken, (rs, pin, len, label));
}

static CK_RV w_C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app,
                             CK_NOTIFY notify, CK_SESSION_HANDLE_PTR session)
{
	struct faulty_control ctl;
	CK_SLOT_ID rs;
	CK_RV rv = enter_slot(F_C_OpenSession, &ctl, slot, &rs, 1);

	if (rv == CKR_OK)
		rv = FORWARD(C_OpenSession, (rs, flags, app, notify, session));
	if (rv == CKR_OK) {
		pthread_mutex_lock(&lock);
		session_add(*session, rs);
		pthread_mutex_unlock(&lock);
	}
	return rv;
}

static CK_RV w_C_CloseAllSessions(CK_SLOT_ID slot)
{
	struct faulty_control ctl;
	CK_SLOT_ID rs;
	CK_RV rv = enter_slot(F_C_CloseAllSessions, &ctl, slot, &rs, 1);

	if (rv == CKR_OK)
		rv = FORWARD(C_CloseAllSessions, (rs));
	if (rv == CKR_OK) {
		pthread_mutex_lock(&lock);
		for (size_t i = nsessions; i-- > 0;)
			if (sessions[i].slot == rs)
				sessions[i] = sessions[--nsessions];
		pthread_mutex_unlock(&lock);
	}
	return rv;
}

static CK_RV w_C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR slot,
                                  CK_VOID_PTR reserved)
{
	struct faulty_control ctl;
	CK_RV rv = enter(F_C_WaitForSlotEvent, &ctl);

	if (rv == CKR_OK)
		rv = FORWARD(C_WaitForSlotEvent, (flags, slot, reserved));
	if (rv == CKR_OK && slot != NULL)
		*slot += ctl.renumber;
	return rv;
}

/* ---- session functions with a twist --------------------------------- */

static CK_RV w_C_CloseSession(CK_SESSION_HANDLE h)
{
	struct faulty_control ctl;
	CK_RV rv = enter_session(F_C_CloseSession, &ctl, h);

	if (rv == CKR_OK)
		rv = FORWARD(C_CloseSession, (h));
	if (rv == CKR_OK || rv == CKR_DEVICE_REMOVED ||
	    rv == CKR_SESSION_HANDLE_INVALID) {
		pthread_mutex_lock(&lock);
		session_drop(h);
		pthread_mutex_unlock(&lock);
	}
	return rv;
}

static CK_RV w_C_GetSessionInfo(CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR info)
{
	struct faulty_control ctl;
	CK_RV rv = enter_session(F_C_GetSessionInfo, &ctl, h);

	if (rv == CKR_OK)
		rv = FORWARD(C_GetSessionInfo, (h, info));
	if (rv == CKR_OK)
		info->slotID += ctl.renumber;
	return rv;
}

static CK_RV w_C_Login(CK_SESSION_HANDLE h, CK_USER_TYPE user,
                       CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	struct faulty_control ctl;
	CK_RV rv = enter_session(F_C_Login, &ctl, h);

	if (rv != CKR_OK)
		return rv;
	if (ctl.pin_locked && user != CKU_SO)
		return CKR_PIN_LOCKED;
	return FORWARD(C_Login, (h, user, pin, len));
}

/* ---- plain session functions ---------------------------------------- */

/* A wrapper that checks the session, then forwards. */
#define SESSION_FN(name, params, args)                                         \
	static CK_RV w_##name params                                           \
	{                                                                      \
		struct faulty_control ctl;                                     \
		CK_RV rv = enter_session(F_##name, &ctl, h);                   \
		return rv != CKR_OK ? rv : FORWARD(name, args);                \
	}

/*
 * A wrapper for a call inside a cryptographic operation.  An injected
 * failure ends the operation in the real module too (FINISH), as a failing
 * token would, so that the session can start a new one.
 */
#define OP_FN(name, params, args, finish)                                      \
	static CK_RV w_##name params                                           \
	{                                                                      \
		struct faulty_control ctl;                                     \
		int injected = 0;                                              \
		CK_RV rv = enter_session_ex(F_##name, &ctl, h, &injected);     \
		if (injected)                                                  \
			finish;                                                \
		return rv != CKR_OK ? rv : FORWARD(name, args);                \
	}

/* A wrapper that also refuses hidden mechanisms. */
#define MECH_FN(name, params, args)                                            \
	static CK_RV w_##name params                                           \
	{                                                                      \
		CK_RV rv = enter_mech(F_##name, h, m);                         \
		return rv != CKR_OK ? rv : FORWARD(name, args);                \
	}

typedef CK_SESSION_HANDLE SH;
typedef CK_OBJECT_HANDLE OH;
typedef CK_OBJECT_HANDLE_PTR OHP;
typedef CK_BYTE_PTR BP;
typedef CK_ULONG UL;
typedef CK_ULONG_PTR ULP;
typedef CK_ATTRIBUTE_PTR AP;
typedef CK_MECHANISM_PTR MP;

#define SCRATCH 16384

/* Ends a single-part operation by running it into a scratch buffer. */
static void end_single(CK_C_Sign fn, SH h, BP d, UL n)
{
	UL len = n + SCRATCH;
	BP out = malloc(len);

	if (fn != NULL && out != NULL)
		fn(h, d, n, out, &len);
	free(out);
}

/* Ends a multi-part operation through its Final function. */
static void end_final(CK_C_SignFinal fn, SH h)
{
	CK_BYTE out[SCRATCH];
	UL len = sizeof(out);

	if (fn != NULL)
		fn(h, out, &len);
}

static void end_verify(SH h)
{
	CK_BYTE sig[8] = {0};

	if (real->C_VerifyFinal != NULL)
		real->C_VerifyFinal(h, sig, sizeof(sig));
}

SESSION_FN(C_InitPIN, (SH h, CK_UTF8CHAR_PTR p, UL n), (h, p, n))
SESSION_FN(C_SetPIN, (SH h, CK_UTF8CHAR_PTR o, UL on, CK_UTF8CHAR_PTR p, UL n),
           (h, o, on, p, n))
SESSION_FN(C_GetOperationState, (SH h, BP s, ULP n), (h, s, n))
SESSION_FN(C_SetOperationState, (SH h, BP s, UL n, OH e, OH a), (h, s, n, e, a))
SESSION_FN(C_Logout, (SH h), (h))
SESSION_FN(C_CreateObject, (SH h, AP t, UL n, OHP o), (h, t, n, o))
SESSION_FN(C_CopyObject, (SH h, OH o, AP t, UL n, OHP r), (h, o, t, n, r))
SESSION_FN(C_DestroyObject, (SH h, OH o), (h, o))
SESSION_FN(C_GetObjectSize, (SH h, OH o, ULP n), (h, o, n))
SESSION_FN(C_GetAttributeValue, (SH h, OH o, AP t, UL n), (h, o, t, n))
SESSION_FN(C_SetAttributeValue, (SH h, OH o, AP t, UL n), (h, o, t, n))
SESSION_FN(C_FindObjectsInit, (SH h, AP t, UL n), (h, t, n))
SESSION_FN(C_FindObjects, (SH h, OHP o, UL max, ULP n), (h, o, max, n))
SESSION_FN(C_FindObjectsFinal, (SH h), (h))
MECH_FN(C_EncryptInit, (SH h, MP m, OH k), (h, m, k))
OP_FN(C_Encrypt, (SH h, BP d, UL n, BP o, ULP on), (h, d, n, o, on),
      end_single(real->C_Encrypt, h, d, n))
OP_FN(C_EncryptUpdate, (SH h, BP d, UL n, BP o, ULP on), (h, d, n, o, on),
      end_final(real->C_EncryptFinal, h))
OP_FN(C_EncryptFinal, (SH h, BP o, ULP on), (h, o, on),
      end_final(real->C_EncryptFinal, h))
MECH_FN(C_DecryptInit, (SH h, MP m, OH k), (h, m, k))
OP_FN(C_Decrypt, (SH h, BP d, UL n, BP o, ULP on), (h, d, n, o, on),
      end_single(real->C_Decrypt, h, d, n))
OP_FN(C_DecryptUpdate, (SH h, BP d, UL n, BP o, ULP on), (h, d, n, o, on),
      end_final(real->C_DecryptFinal, h))
OP_FN(C_DecryptFinal, (SH h, BP o, ULP on), (h, o, on),
      end_final(real->C_DecryptFinal, h))
MECH_FN(C_DigestInit, (SH h, MP m), (h, m))
OP_FN(C_Digest, (SH h, BP d, UL n, BP o, ULP on), (h, d, n, o, on),
      end_single(real->C_Digest, h, d, n))
OP_FN(C_DigestUpdate, (SH h, BP d, UL n), (h, d, n),
      end_final(real->C_DigestFinal, h))
OP_FN(C_DigestKey, (SH h, OH k), (h, k), end_final(real->C_DigestFinal, h))
OP_FN(C_DigestFinal, (SH h, BP o, ULP on), (h, o, on),
      end_final(real->C_DigestFinal, h))
MECH_FN(C_SignInit, (SH h, MP m, OH k), (h, m, k))
OP_FN(C_Sign, (SH h, BP d, UL n, BP o, ULP on), (h, d, n, o, on),
      end_single(real->C_Sign, h, d, n))
OP_FN(C_SignUpdate, (SH h, BP d, UL n), (h, d, n),
      end_final(real->C_SignFinal, h))
OP_FN(C_SignFinal, (SH h, BP o, ULP on), (h, o, on),
      end_final(real->C_SignFinal, h))
MECH_FN(C_SignRecoverInit, (SH h, MP m, OH k), (h, m, k))
OP_FN(C_SignRecover, (SH h, BP d, UL n, BP o, ULP on), (h, d, n, o, on),
      end_single(real->C_SignRecover, h, d, n))
MECH_FN(C_VerifyInit, (SH h, MP m, OH k), (h, m, k))
OP_FN(C_Verify, (SH h, BP d, UL n, BP s, UL sn), (h, d, n, s, sn),
      FORWARD(C_Verify, (h, d, n, s, sn)))
OP_FN(C_VerifyUpdate, (SH h, BP d, UL n), (h, d, n), end_verify(h))
OP_FN(C_VerifyFinal, (SH h, BP s, UL sn), (h, s, sn), end_verify(h))
MECH_FN(C_VerifyRecoverInit, (SH h, MP m, OH k), (h, m, k))
OP_FN(C_VerifyRecover, (SH h, BP s, UL sn, BP o, ULP on), (h, s, sn, o, on),
      end_single(real->C_VerifyRecover, h, s, sn))
SESSION_FN(C_DigestEncryptUpdate, (SH h, BP d, UL n, BP o, ULP on),
           (h, d, n, o, on))
SESSION_FN(C_DecryptDigestUpdate, (SH h, BP d, UL n, BP o, ULP on),
           (h, d, n, o, on))
SESSION_FN(C_SignEncryptUpdate, (SH h, BP d, UL n, BP o, ULP on),
           (h, d, n, o, on))
SESSION_FN(C_DecryptVerifyUpdate, (SH h, BP d, UL n, BP o, ULP on),
           (h, d, n, o, on))
MECH_FN(C_GenerateKey, (SH h, MP m, AP t, UL n, OHP k), (h, m, t, n, k))
MECH_FN(C_GenerateKeyPair,
        (SH h, MP m, AP pt, UL pn, AP st, UL sn, OHP pk, OHP sk),
        (h, m, pt, pn, st, sn, pk, sk))
MECH_FN(C_WrapKey, (SH h, MP m, OH w, OH k, BP o, ULP on), (h, m, w, k, o, on))
MECH_FN(C_UnwrapKey, (SH h, MP m, OH u, BP d, UL n, AP t, UL tn, OHP k),
        (h, m, u, d, n, t, tn, k))
MECH_FN(C_DeriveKey, (SH h, MP m, OH b, AP t, UL n, OHP k), (h, m, b, t, n, k))
SESSION_FN(C_SeedRandom, (SH h, BP d, UL n), (h, d, n))
SESSION_FN(C_GenerateRandom, (SH h, BP d, UL n), (h, d, n))
SESSION_FN(C_GetFunctionStatus, (SH h), (h))
SESSION_FN(C_CancelFunction, (SH h), (h))

/* ---- the entry point ------------------------------------------------- */

FAULTY_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list);

static CK_FUNCTION_LIST faulty_list = {
        .version = {CRYPTOKI_VERSION_MAJOR, CRYPTOKI_VERSION_MINOR},
        .C_Initialize = w_C_Initialize,
        .C_Finalize = w_C_Finalize,
        .C_GetInfo = w_C_GetInfo,
        .C_GetFunctionList = C_GetFunctionList,
        .C_GetSlotList = w_C_GetSlotList,
        .C_GetSlotInfo = w_C_GetSlotInfo,
        .C_GetTokenInfo = w_C_GetTokenInfo,
        .C_GetMechanismList = w_C_GetMechanismList,
        .C_GetMechanismInfo = w_C_GetMechanismInfo,
        .C_InitToken = w_C_InitToken,
        .C_InitPIN = w_C_InitPIN,
        .C_SetPIN = w_C_SetPIN,
        .C_OpenSession = w_C_OpenSession,
        .C_CloseSession = w_C_CloseSession,
        .C_CloseAllSessions = w_C_CloseAllSessions,
        .C_GetSessionInfo = w_C_GetSessionInfo,
        .C_GetOperationState = w_C_GetOperationState,
        .C_SetOperationState = w_C_SetOperationState,
        .C_Login = w_C_Login,
        .C_Logout = w_C_Logout,
        .C_CreateObject = w_C_CreateObject,
        .C_CopyObject = w_C_CopyObject,
        .C_DestroyObject = w_C_DestroyObject,
        .C_GetObjectSize = w_C_GetObjectSize,
        .C_GetAttributeValue = w_C_GetAttributeValue,
        .C_SetAttributeValue = w_C_SetAttributeValue,
        .C_FindObjectsInit = w_C_FindObjectsInit,
        .C_FindObjects = w_C_FindObjects,
        .C_FindObjectsFinal = w_C_FindObjectsFinal,
        .C_EncryptInit = w_C_EncryptInit,
        .C_Encrypt = w_C_Encrypt,
        .C_EncryptUpdate = w_C_EncryptUpdate,
        .C_EncryptFinal = w_C_EncryptFinal,
        .C_DecryptInit = w_C_DecryptInit,
        .C_Decrypt = w_C_Decrypt,
        .C_DecryptUpdate = w_C_DecryptUpdate,
        .C_DecryptFinal = w_C_DecryptFinal,
        .C_DigestInit = w_C_DigestInit,
        .C_Digest = w_C_Digest,
        .C_DigestUpdate = w_C_DigestUpdate,
        .C_DigestKey = w_C_DigestKey,
        .C_DigestFinal = w_C_DigestFinal,
        .C_SignInit = w_C_SignInit,
        .C_Sign = w_C_Sign,
        .C_SignUpdate = w_C_SignUpdate,
        .C_SignFinal = w_C_SignFinal,
        .C_SignRecoverInit = w_C_SignRecoverInit,
        .C_SignRecover = w_C_SignRecover,
        .C_VerifyInit = w_C_VerifyInit,
        .C_Verify = w_C_Verify,
        .C_VerifyUpdate = w_C_VerifyUpdate,
        .C_VerifyFinal = w_C_VerifyFinal,
        .C_VerifyRecoverInit = w_C_VerifyRecoverInit,
        .C_VerifyRecover = w_C_VerifyRecover,
        .C_DigestEncryptUpdate = w_C_DigestEncryptUpdate,
        .C_DecryptDigestUpdate = w_C_DecryptDigestUpdate,
        .C_SignEncryptUpdate = w_C_SignEncryptUpdate,
        .C_DecryptVerifyUpdate = w_C_DecryptVerifyUpdate,
        .C_GenerateKey = w_C_GenerateKey,
        .C_GenerateKeyPair = w_C_GenerateKeyPair,
        .C_WrapKey = w_C_WrapKey,
        .C_UnwrapKey = w_C_UnwrapKey,
        .C_DeriveKey = w_C_DeriveKey,
        .C_SeedRandom = w_C_SeedRandom,
        .C_GenerateRandom = w_C_GenerateRandom,
        .C_GetFunctionStatus = w_C_GetFunctionStatus,
        .C_CancelFunction = w_C_CancelFunction,
        .C_WaitForSlotEvent = w_C_WaitForSlotEvent,
};

/*
 * Loads the target module once.  It is never unloaded: some modules crash
 * when their library goes away before the process ends.
 */
static CK_RV load_target(void)
{
	const char *path = getenv("P11FAULTY_TARGET");
	CK_C_GetFunctionList get;
	void *dl;

	if (path == NULL || path[0] == '\0') {
		fprintf(stderr, "libp11faulty: P11FAULTY_TARGET is not set\n");
		return CKR_GENERAL_ERROR;
	}
	dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (dl == NULL) {
		fprintf(stderr, "libp11faulty: %s\n", dlerror());
		return CKR_GENERAL_ERROR;
	}
	*(void **)&get = dlsym(dl, "C_GetFunctionList");
	if (get == NULL) {
		fprintf(stderr, "libp11faulty: %s has no C_GetFunctionList\n",
		        path);
		return CKR_GENERAL_ERROR;
	}
	return get(&real);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	struct faulty_control ctl;
	CK_RV rv = CKR_OK;

	pthread_mutex_lock(&lock);
	faulty_count(F_C_GetFunctionList);
	faulty_control_read(&ctl);
	for (size_t i = 0; i < ctl.nfails; i++)
		if (ctl.fails[i].fn == F_C_GetFunctionList)
			rv = ctl.fails[i].rv;
	if (list == NULL)
		rv = CKR_ARGUMENTS_BAD;
	if (rv == CKR_OK && real == NULL)
		rv = load_target();
	pthread_mutex_unlock(&lock);
	if (rv == CKR_OK)
		*list = &faulty_list;
	return rv;
}
