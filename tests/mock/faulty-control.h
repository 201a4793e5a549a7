/*
 * The fault plan of libp11faulty: the control file (P11FAULTY_CONTROL),
 * re-read on every PKCS#11 call, and the call counters (P11FAULTY_COUNTS).
 * tests/mock/README describes the file format.
 */
#ifndef P11FAULTY_CONTROL_H
#define P11FAULTY_CONTROL_H

#include <stddef.h>

#include <p11-kit/pkcs11.h>

/* Every function of a PKCS#11 2.40 CK_FUNCTION_LIST, in its order. */
#define FAULTY_FUNCTIONS(X)                                                    \
	X(C_Initialize)                                                        \
	X(C_Finalize)                                                          \
	X(C_GetInfo)                                                           \
	X(C_GetFunctionList)                                                   \
	X(C_GetSlotList)                                                       \
	X(C_GetSlotInfo)                                                       \
	X(C_GetTokenInfo)                                                      \
	X(C_GetMechanismList)                                                  \
	X(C_GetMechanismInfo)                                                  \
	X(C_InitToken)                                                         \
	X(C_InitPIN)                                                           \
	X(C_SetPIN)                                                            \
	X(C_OpenSession)                                                       \
	X(C_CloseSession)                                                      \
	X(C_CloseAllSessions)                                                  \
	X(C_GetSessionInfo)                                                    \
	X(C_GetOperationState)                                                 \
	X(C_SetOperationState)                                                 \
	X(C_Login)                                                             \
	X(C_Logout)                                                            \
	X(C_CreateObject)                                                      \
	X(C_CopyObject)                                                        \
	X(C_DestroyObject)                                                     \
	X(C_GetObjectSize)                                                     \
	X(C_GetAttributeValue)                                                 \
	X(C_SetAttributeValue)                                                 \
	X(C_FindObjectsInit)                                                   \
	X(C_FindObjects)                                                       \
	X(C_FindObjectsFinal)                                                  \
	X(C_EncryptInit)                                                       \
	X(C_Encrypt)                                                           \
	X(C_EncryptUpdate)                                                     \
	X(C_EncryptFinal)                                                      \
	X(C_DecryptInit)                                                       \
	X(C_Decrypt)                                                           \
	X(C_DecryptUpdate)                                                     \
	X(C_DecryptFinal)                                                      \
	X(C_DigestInit)                                                        \
	X(C_Digest)                                                            \
	X(C_DigestUpdate)                                                      \
	X(C_DigestKey)                                                         \
	X(C_DigestFinal)                                                       \
	X(C_SignInit)                                                          \
	X(C_Sign)                                                              \
	X(C_SignUpdate)                                                        \
	X(C_SignFinal)                                                         \
	X(C_SignRecoverInit)                                                   \
	X(C_SignRecover)                                                       \
	X(C_VerifyInit)                                                        \
	X(C_Verify)                                                            \
	X(C_VerifyUpdate)                                                      \
	X(C_VerifyFinal)                                                       \
	X(C_VerifyRecoverInit)                                                 \
	X(C_VerifyRecover)                                                     \
	X(C_DigestEncryptUpdate)                                               \
	X(C_DecryptDigestUpdate)                                               \
	X(C_SignEncryptUpdate)                                                 \
	X(C_DecryptVerifyUpdate)                                               \
	X(C_GenerateKey)                                                       \
	X(C_GenerateKeyPair)                                                   \
	X(C_WrapKey)                                                           \
	X(C_UnwrapKey)                                                         \
	X(C_DeriveKey)                                                         \
	X(C_SeedRandom)                                                        \
	X(C_GenerateRandom)                                                    \
	X(C_GetFunctionStatus)                                                 \
	X(C_CancelFunction)                                                    \
	X(C_WaitForSlotEvent)

#define FAULTY_ENUM(name) F_##name,
enum faulty_fn { FAULTY_FUNCTIONS(FAULTY_ENUM) F_COUNT };
#undef FAULTY_ENUM

#define FAULTY_MAX_FAILS 32
#define FAULTY_MAX_MECHS 32

struct faulty_fail {
	enum faulty_fn fn;
	CK_RV rv;
};

/* One reading of the control file. */
struct faulty_control {
	int bad;                 /* a line was not understood */
	int removed;             /* "removed [SLOT]" */
	int removed_any_slot;    /* no SLOT given: every slot */
	CK_SLOT_ID removed_slot; /* as the caller sees it */
	int lose_sessions;       /* "lose-sessions" */
	int pin_locked;          /* "pin-locked" */
	CK_FLAGS token_flags;    /* flags added to C_GetTokenInfo */
	CK_SLOT_ID renumber;     /* "renumber N" */
	struct faulty_fail fails[FAULTY_MAX_FAILS];
	size_t nfails;
	CK_MECHANISM_TYPE no_mechs[FAULTY_MAX_MECHS];
	size_t nno_mechs;
};

/*
 * Reads the file named by P11FAULTY_CONTROL into ctl (cleared first); an
 * unset variable or a missing file means no faults.  A line it does not
 * understand sets ctl->bad and is reported once on stderr.
 */
void faulty_control_read(struct faulty_control *ctl);

/* The name of a function ("C_Login"). */
const char *faulty_fn_name(enum faulty_fn fn);

/*
 * Counts one call of fn and rewrites the file named by P11FAULTY_COUNTS
 * (when set) with a "C_Name N" line for every function called so far.
 */
void faulty_count(enum faulty_fn fn);

/* Returns 1 when ctl holds a "no-mechanism" line for mech. */
int faulty_mech_hidden(const struct faulty_control *ctl,
                       CK_MECHANISM_TYPE mech);

#endif /* P11FAULTY_CONTROL_H */
