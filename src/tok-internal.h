/*
 * Inside the token core: modules, tokens, session pools and keys, shared by
 * the tok-*.c files.  Nothing here leaves the token core.
 */
#ifndef P11MAIL_TOK_INTERNAL_H
#define P11MAIL_TOK_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include <p11-kit/uri.h>

#include "token.h"

#define TOK_POOL_MAX 4
#define TOK_PIN_MAX  256

/* Why the last failure of a thread happened, beyond its CK_RV. */
enum tok_detail {
	TOK_DETAIL_NONE = 0,
	TOK_DETAIL_FINAL_TRY,
	TOK_DETAIL_CANCELLED,
	TOK_DETAIL_NO_TOKEN,
	TOK_DETAIL_REMOVED,
	TOK_DETAIL_URI,
	TOK_DETAIL_AMBIGUOUS,
	TOK_DETAIL_MODULE,
	TOK_DETAIL_PIN_SOURCE /* a PIN file or pinentry that cannot be used */
};

/* One loaded PKCS#11 module. */
struct tok_module {
	char *name; /* registry name or the path */
	CK_FUNCTION_LIST *fl;
	int from_registry;
	int initialized;
	pid_t pid; /* process that initialized it */
	struct tok_module *next;
};

/* Mechanisms a token offers, read once. */
enum tok_mech_bit {
	TOK_MECH_RSA_PKCS = 1 << 0,
	TOK_MECH_RSA_PSS = 1 << 1,
	TOK_MECH_RSA_X509 = 1 << 2,
	TOK_MECH_RSA_OAEP = 1 << 3,
	TOK_MECH_ECDSA = 1 << 4,
	TOK_MECH_ECDH = 1 << 5
};

/* Per-token quirks, chosen by the token's manufacturer. */
enum tok_quirk {
	TOK_QUIRK_OAEP_SHA1_ONLY = 1 << 0 /* OAEP only SHA-1, no label */
};

/* One token the core has met, known by module, serial and label. */
struct tok_token {
	tok_core *core;
	struct tok_module *mod;
	CK_SLOT_ID slot;
	CK_FLAGS flags; /* CK_TOKEN_INFO flags when last read */
	char label[33];
	char serial[17];
	char manufacturer[33];
	char model[17];
	pthread_mutex_t lock; /* pool, mechanisms, failed PIN */
	CK_SESSION_HANDLE pool[TOK_POOL_MAX];
	size_t npool;
	unsigned long generation; /* bumped when handles became stale */
	int mechs_read;
	unsigned int mechs;
	unsigned int quirks;
	unsigned int oaep_refused;    /* bit per hash the token refused */
	unsigned char failed_pin[32]; /* digest of the PIN that failed */
	int has_failed_pin;
	struct tok_token *next;
};

struct tok_core {
	struct tok_options opts;
	char *module_path;
	char *init_args;
	char *pinentry;
	pthread_mutex_t lock; /* modules, tokens */
	struct tok_module *modules;
	int registry_loaded;
	CK_FUNCTION_LIST **registry;
	struct tok_token *tokens;
	pid_t pid;
	unsigned int mech_mask; /* mechanisms to ignore (tests) */
	unsigned char pin_salt[16];
};

/* Where a key's PIN comes from, kept from the URI that opened it. */
struct tok_pin_src {
	char *pin_value; /* secret: wiped */
	char *pin_source;
};

struct tok_key {
	tok_core *core;
	struct tok_token *tok;
	int refs;
	pthread_mutex_t lock; /* handle and generation */
	CK_OBJECT_HANDLE handle;
	unsigned long generation;
	CK_KEY_TYPE ktype;
	struct tok_key_info info;
	struct tok_pin_src pins;
	unsigned char *aa_pin; /* locked memory, TOK_AUTH_REUSE */
	size_t aa_pin_len;
	/* owned copies behind info */
	unsigned char *id;
	char *label;
	char *uri;
	unsigned char *modulus, *exponent, *ec_params, *ec_point, *cert_der;
};

/* PKCS#11 templates take void *; the core never writes through these. */
static inline void *tok_mut(const void *p)
{
	return (void *)(uintptr_t)p;
}

/* -- tok-call.c: the one wrapper around every PKCS#11 call -- */

/* Traces a finished call as "C_Name -> CKR_..." and returns rv. */
CK_RV tok_traced(const char *fn, CK_RV rv);

/* Returns the CKR_ name of rv, or "CKR_0x..." in a static buffer. */
const char *tok_rv_name(CK_RV rv);

/*
 * Calls the module's function name after checking it exists, and traces it.
 * Arguments are never traced, so a PIN passed here stays out of the trace.
 */
#define TOK_CALL(mod, name, ...)                                               \
	tok_traced(#name, (mod)->fl->name != NULL                              \
	                          ? (mod)->fl->name(__VA_ARGS__)               \
	                          : CKR_FUNCTION_NOT_SUPPORTED)

/* Records the sentence and detail for tok_last_error; returns rv. */
CK_RV tok_fail(CK_RV rv, enum tok_detail detail, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Clears this thread's last error. */
void tok_clear_error(void);

/*
 * Writes text into buf (size bytes, truncated) as it may be shown in a
 * message or the trace: the query becomes "?..." and any path attribute
 * whose name mentions a PIN keeps its name only.  Returns buf.
 */
const char *tok_uri_shown(const char *text, char *buf, size_t size);

/* True for the errors after which the core reconnects and retries once. */
int tok_rv_is_lost(CK_RV rv);

/* -- tok-core.c: modules and tokens -- */

/* Makes sure core is usable in this process (re-initialises after fork). */
CK_RV tok_core_check_fork(tok_core *core);

/*
 * Finds the tokens a parsed URI names, loading modules as needed; fills
 * toks (up to max) and *count.  Waits wait_seconds when none is present.
 */
CK_RV tok_find_tokens(tok_core *core, P11KitUri *uri, struct tok_token **toks,
                      size_t max, size_t *count);

/*
 * Rescans the slots of tok's module and updates tok->slot for the token
 * with the same serial and label; waits wait_seconds when it is missing.
 */
CK_RV tok_token_refind(struct tok_token *tok);

/* Formats "pkcs11:..." naming a token (and an object when id is set). */
char *tok_uri_format(const struct tok_token *tok, CK_OBJECT_CLASS cls,
                     const unsigned char *id, size_t id_len, const char *label);

/* Reads the token's mechanisms once; returns the TOK_MECH_* bits. */
unsigned int tok_token_mechs(struct tok_token *tok);

/* Test hook: makes the core ignore a mechanism the tokens offer. */
void tok_core_mask_mechanism(tok_core *core, CK_MECHANISM_TYPE mech);

/* -- tok-session.c: the session pool -- */

/* Takes a session of tok from the pool or opens one. */
CK_RV tok_session_get(struct tok_token *tok, CK_SESSION_HANDLE *out);

/* Returns a session; rv is the result of its last call (lost ones close). */
void tok_session_put(struct tok_token *tok, CK_SESSION_HANDLE h, CK_RV rv);

/* Forgets every pooled session (after fork or removal), closing if asked. */
void tok_session_flush(struct tok_token *tok, int close);

/* -- tok-login.c: PINs and login -- */

/* Logs the user in on tok unless a session already is. */
CK_RV tok_login(struct tok_token *tok, CK_SESSION_HANDLE h,
                const struct tok_pin_src *pins, unsigned char **kept,
                size_t *kept_len);

/* Context-specific login for key right after an operation's Init. */
CK_RV tok_login_context(tok_key *key, CK_SESSION_HANDLE h);

/* Copies pin-value and pin-source from a parsed URI. */
CK_RV tok_pin_src_from_uri(P11KitUri *uri, struct tok_pin_src *pins);

/* Frees the copies made by tok_pin_src_from_uri, wiping the value. */
void tok_pin_src_clear(struct tok_pin_src *pins);

/* The value of a hexadecimal digit, or -1. */
int tok_hex_digit(char c);

/*
 * Parses text into a new *out (p11_kit_uri_free) and its PIN sources into
 * pins (tok_pin_src_clear).  pin-value is taken out before p11-kit sees
 * the URI, so that the only copy is ours and wiped.  strict refuses
 * attributes p11-kit does not know.  Returns CKR_ARGUMENTS_BAD with a
 * message for a malformed URI.
 */
CK_RV tok_uri_open(const char *text, int strict, P11KitUri **out,
                   struct tok_pin_src *pins);

/*
 * Obtains a PIN from the sources in order (URI, callback, terminal,
 * pinentry) into locked memory; frees with tok_pin_free.
 */
CK_RV tok_pin_get(tok_core *core, const struct tok_pin_src *pins,
                  const struct tok_pin_request *req, int skip_uri,
                  unsigned char **pin, size_t *pin_len);

/* Wipes, unlocks and frees a PIN from tok_pin_get; accepts NULL. */
void tok_pin_free(unsigned char *pin, size_t len);

/* -- tok-pinsrc.c: where PINs come from -- */

/* Reads the first line of a pin-source file (file:PATH or PATH). */
CK_RV tok_pin_from_file(const char *source, char *buf, size_t size);

/*
 * Asks on /dev/tty with echo off; CKR_DEVICE_ERROR without a terminal,
 * CKR_FUNCTION_CANCELED when the answer is empty or cut by end of input.
 */
CK_RV tok_pin_from_tty(const struct tok_pin_request *req, char *buf,
                       size_t size);

/* Asks a pinentry program over the Assuan protocol. */
CK_RV tok_pin_from_pinentry(const char *program,
                            const struct tok_pin_request *req, char *buf,
                            size_t size);

/* -- tok-key.c: resolving keys -- */

/* Finds key's object again after a loss: token, login, handle. */
CK_RV tok_key_reconnect(tok_key *key);

/*
 * Builds a key from a private-key handle on tok: reads its attributes,
 * finds its public key and certificate.  Takes pins' strings.
 */
CK_RV tok_key_from_handle(struct tok_token *tok, CK_SESSION_HANDLE h,
                          CK_OBJECT_HANDLE obj, struct tok_pin_src *pins,
                          tok_key **out);

/* Makes sure the key's handle is valid in this process; reconnects. */
CK_RV tok_key_prepare(tok_key *key);

/*
 * Reads one attribute into a new buffer (*out, *len); CKR_OK with *out
 * NULL when the object lacks it.
 */
CK_RV tok_attr_get(struct tok_token *tok, CK_SESSION_HANDLE h,
                   CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
                   unsigned char **out, size_t *len);

/* Searches with a template; fills up to max handles and *count. */
CK_RV tok_find(struct tok_token *tok, CK_SESSION_HANDLE h, CK_ATTRIBUTE *tmpl,
               CK_ULONG n, CK_OBJECT_HANDLE *found, size_t max, size_t *count);

/* -- tok-pub.c: public keys and certificates -- */

/* True when the certificate (DER) carries the public key described. */
int tok_pub_cert_matches(const struct tok_key_info *info,
                         const unsigned char *der, size_t der_len);

/*
 * Fills the public parts of info from a certificate (DER): RSA n and e or
 * the EC point, in new buffers returned in *a and *b (b NULL for EC).
 */
CK_RV tok_pub_from_cert(const unsigned char *der, size_t der_len,
                        CK_KEY_TYPE ktype, unsigned char **a, size_t *a_len,
                        unsigned char **b, size_t *b_len);

/* Field size in bits of the curve whose DER OID is params; 0 if unknown. */
unsigned int tok_ec_bits(const unsigned char *params, size_t len);

/* The DER OID of a curve NID in a new buffer. */
CK_RV tok_ec_params_for_nid(int nid, unsigned char **out, size_t *len);

/*
 * Returns the raw point inside a DER OCTET STRING (CKA_EC_POINT as most
 * tokens store it), or the input when it is already raw.
 */
const unsigned char *tok_ec_point_raw(const unsigned char *p, size_t len,
                                      size_t *raw_len);

/* -- tok-rsa.c: software RSA padding for the raw RSA fallbacks -- */

/* EMSA-PSS encodes hash into em (modulus size) for raw RSA signing. */
CK_RV tok_rsa_pss_encode(const struct tok_key_info *info,
                         const struct tok_sig_params *params,
                         const unsigned char *hash, size_t hash_len,
                         unsigned char *em, size_t em_len);

/*
 * Constant-time OAEP check of a raw RSA result em (modulus size); writes
 * the message to out.  Every failure is CKR_ENCRYPTED_DATA_INVALID.
 */
CK_RV tok_rsa_oaep_decode(const struct tok_dec_params *params,
                          const unsigned char *em, size_t em_len,
                          unsigned char *out, size_t *out_len);

#endif /* P11MAIL_TOK_INTERNAL_H */
