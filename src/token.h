/*
 * The token core: the one place where p11mail talks PKCS#11.
 *
 * Every private-key operation of p11mail (through the provider in engine/)
 * and every write to a token (by p11mail-certinstall) goes through these
 * functions; nothing else calls C_Sign, C_Decrypt or C_DeriveKey.  Errors
 * are CK_RV values; tok_last_error() gives the sentence for people that
 * goes with the last failure in this thread (for example the candidate URIs
 * of an ambiguous match, or "insert the card for ...").
 */
#ifndef P11MAIL_TOKEN_H
#define P11MAIL_TOKEN_H

#include <stddef.h>

#include <p11-kit/pkcs11.h>

#include "p11mail.h"

typedef struct tok_core tok_core;
typedef struct tok_key tok_key;

/* Why a PIN is being asked for; all strings borrowed for the call. */
struct tok_pin_request {
	const char *token_label;
	const char *token_serial;
	const char *key_label; /* set for a context-specific login */
	int context_specific;  /* CKA_ALWAYS_AUTHENTICATE login */
	int count_low;         /* the token reported failed attempts */
};

/*
 * Asks the application for a PIN.  Writes at most size - 2 bytes and a NUL
 * to buf and returns 0, or returns -1 when the user gave none.  A PIN that
 * fills the buffer may have been cut short and is refused.  Returns
 * TOK_PIN_ASK_NEXT when the application has no way to ask anybody: the
 * core then asks on the terminal or through the pinentry program.
 */
typedef int (*tok_pin_fn)(void *arg, const struct tok_pin_request *req,
                          char *buf, size_t size);

#define TOK_PIN_ASK_NEXT 1

/* What to do before each use of a CKA_ALWAYS_AUTHENTICATE key. */
enum tok_auth_policy {
	TOK_AUTH_REUSE = 0, /* log in again with the PIN of the session */
	TOK_AUTH_PROMPT     /* ask for the PIN before every use */
};

struct tok_options {
	const char *module_path; /* explicit module; NULL: p11-kit registry */
	const char *init_args;   /* C_Initialize pReserved (NSS softokn) */
	tok_pin_fn pin_fn;       /* application PIN source, may be NULL */
	void *pin_arg;
	const char *pinentry; /* pinentry program, may be NULL */
	int allow_prompt;     /* may prompt on the controlling terminal */
	enum tok_auth_policy auth_policy;
	int wait_seconds; /* wait this long for a missing token */
};

/*
 * Creates a token core with its own module handles.  Options are copied.
 * Modules are loaded lazily, on the first URI that needs them.
 */
CK_RV tok_core_new(const struct tok_options *opts, tok_core **out);

/*
 * Releases keys' sessions and finalizes the modules; accepts NULL.  Every
 * key of the core must be unreferenced first.  Called from an exit handler
 * or in a child process after fork, it leaves the modules alone.
 */
void tok_core_free(tok_core *core);

/* The sentence for people describing this thread's last failure. */
const char *tok_last_error(void);

/*
 * Maps a CK_RV of the token core to the library status it stands for; a
 * CK_RV just returned in this thread maps exactly (final try, cancelled
 * PIN, removed token, ambiguous URI).
 */
enum p11mail_status tok_status(CK_RV rv);

enum tok_key_type { TOK_KEY_RSA = 1, TOK_KEY_EC };

/* What the core knows of a resolved key; read-only, owned by the key. */
struct tok_key_info {
	enum tok_key_type type;
	unsigned int bits;       /* modulus or field size */
	const unsigned char *id; /* CKA_ID */
	size_t id_len;
	const char *label; /* CKA_LABEL, may be empty */
	const char *token_label;
	const char *token_serial;
	const char *uri; /* canonical URI: token serial and key id */
	int always_authenticate;
	/* RSA public parts, big-endian */
	const unsigned char *modulus;
	size_t modulus_len;
	const unsigned char *exponent;
	size_t exponent_len;
	/* EC: DER of the curve OID, and the point as octets (04 || X || Y) */
	const unsigned char *ec_params;
	size_t ec_params_len;
	const unsigned char *ec_point;
	size_t ec_point_len;
	/* the certificate on the token whose public key matches, if any */
	const unsigned char *cert_der;
	size_t cert_der_len;
};

/*
 * Resolves the one private key a URI names, logging in as needed, and
 * caches its handle and public attributes.  A URI matching no key or more
 * than one is an error (CKR_KEY_HANDLE_INVALID, CKR_ARGUMENTS_BAD) whose
 * tok_last_error() lists the candidates as URIs.  Release with tok_key_unref.
 */
CK_RV tok_key_open(tok_core *core, const char *uri, tok_key **out);

/* Takes and drops references; the last unref releases the key. */
tok_key *tok_key_ref(tok_key *key);
void tok_key_unref(tok_key *key);

/* Borrowed description of the key; valid while the key is referenced. */
const struct tok_key_info *tok_key_info(const tok_key *key);

enum tok_sig_scheme {
	TOK_SIG_PKCS1 = 1, /* tbs is a DER DigestInfo; RSA PKCS#1 v1.5 */
	TOK_SIG_PSS,       /* tbs is the hash; RSA-PSS */
	TOK_SIG_ECDSA      /* tbs is the hash; signature is r || s */
};

struct tok_sig_params {
	enum tok_sig_scheme scheme;
	int md_nid;      /* PSS: NID of the hash, for example NID_sha256 */
	int mgf1_md_nid; /* PSS: NID of the MGF1 hash */
	int salt_len;    /* PSS: salt length in bytes */
};

/*
 * Signs with the key.  sig == NULL asks for the size in *sig_len.  PSS
 * falls back to raw RSA with software encoding when the token lacks it.
 */
CK_RV tok_key_sign(tok_key *key, const struct tok_sig_params *params,
                   const unsigned char *tbs, size_t tbs_len, unsigned char *sig,
                   size_t *sig_len);

enum tok_dec_scheme {
	TOK_DEC_PKCS1 = 1, /* RSA PKCS#1 v1.5, always on the token */
	TOK_DEC_OAEP,      /* RSA-OAEP, raw RSA fallback */
	TOK_DEC_RAW        /* raw RSA */
};

struct tok_dec_params {
	enum tok_dec_scheme scheme;
	int md_nid;                 /* OAEP hash */
	int mgf1_md_nid;            /* OAEP MGF1 hash */
	const unsigned char *label; /* OAEP label, may be NULL */
	size_t label_len;
};

/*
 * Decrypts with the key into out (at least modulus-size bytes); *out_len
 * holds the room on entry and the plaintext length on return.  Every
 * padding failure is the same CKR_ENCRYPTED_DATA_INVALID.
 */
CK_RV tok_key_decrypt(tok_key *key, const struct tok_dec_params *params,
                      const unsigned char *in, size_t in_len,
                      unsigned char *out, size_t *out_len);

/*
 * Plain ECDH (CKD_NULL) with the peer's point (04 || X || Y): writes the
 * shared secret (the field size) to out; *out_len holds the room on entry.
 * Any KDF runs in software in the caller.
 */
CK_RV tok_key_derive(tok_key *key, const unsigned char *peer_point,
                     size_t peer_point_len, unsigned char *out,
                     size_t *out_len);

/* One object a URI matched, for listings and for the provider's STORE. */
struct tok_object {
	CK_OBJECT_CLASS cls; /* CKO_PRIVATE_KEY, CKO_CERTIFICATE, ... */
	char *uri;           /* canonical URI naming just this object */
	char *label;
	unsigned char *id;
	size_t id_len;
	unsigned char *der; /* certificates: the DER encoding */
	size_t der_len;
};

/*
 * Lists the key and certificate objects a URI matches on every matching
 * token (logging in when the URI carries a PIN or the token needs one to
 * show private keys).  Free with tok_objects_free.
 */
CK_RV tok_list_objects(tok_core *core, const char *uri,
                       struct tok_object **objects, size_t *count);

/* Frees a list made by tok_list_objects; accepts NULL. */
void tok_objects_free(struct tok_object *objects, size_t count);

/*
 * Writing to tokens, for p11mail-certinstall.  token_uri names one token;
 * id and label are the new object's CKA_ID and CKA_LABEL.  Private keys are
 * made sensitive and non-extractable.
 */
CK_RV tok_generate_key(tok_core *core, const char *token_uri,
                       enum tok_key_type type, unsigned int bits_or_nid,
                       const unsigned char *id, size_t id_len,
                       const char *label, tok_key **out);
CK_RV tok_write_certificate(tok_core *core, const char *token_uri,
                            const unsigned char *der, size_t der_len,
                            const unsigned char *id, size_t id_len,
                            const char *label);
/* pkey is an EVP_PKEY; passed as void to keep OpenSSL out of this header. */
CK_RV tok_import_key(tok_core *core, const char *token_uri, const void *pkey,
                     const unsigned char *id, size_t id_len, const char *label,
                     tok_key **out);

/*
 * Writes der as the certificate with CKA_ID id on the one token token_uri
 * names, replacing the certificates that had this id.  The new one is
 * written before the old ones go, so a refusal leaves the token as it was.
 */
CK_RV tok_replace_certificate(tok_core *core, const char *token_uri,
                              const unsigned char *der, size_t der_len,
                              const unsigned char *id, size_t id_len,
                              const char *label);

/* What tok_delete_objects removes, as bits. */
enum tok_delete_class {
	TOK_DELETE_CERT = 1 << 0,
	TOK_DELETE_PUBLIC = 1 << 1,
	TOK_DELETE_PRIVATE = 1 << 2,
	TOK_DELETE_KEYS = TOK_DELETE_PUBLIC | TOK_DELETE_PRIVATE,
	TOK_DELETE_ALL = TOK_DELETE_CERT | TOK_DELETE_KEYS
};

/*
 * Deletes the objects of the classes in what whose CKA_ID is id (NULL: the
 * URI's id=) from the one token uri names, certificates first.  A URI
 * matching several tokens, or no id, is refused before anything is deleted
 * (CKR_ARGUMENTS_BAD); finding nothing is CKR_OK.  *deleted gets the count.
 */
CK_RV tok_delete_objects(tok_core *core, const char *uri,
                         const unsigned char *id, size_t id_len,
                         unsigned int what, size_t *deleted);

/* -- Diagnostics (tok-info.c): modules, tokens and key URIs, read only -- */

/* A PKCS#11 module as the core met it; strings owned by the list. */
struct tok_module_info {
	char *name; /* registry name, or the module's path */
	char *path; /* the module's file; NULL when p11-kit does not say */
	int from_registry;
	int loaded;   /* the file loaded (registry modules always do) */
	int started;  /* C_Initialize succeeded */
	char *error;  /* why it did not load or start, else NULL */
	int has_info; /* C_GetInfo answered: the next four are set */
	char manufacturer[33];
	char description[33];
	unsigned int version_major, version_minor;
	unsigned long slots; /* slots (readers), with a token or without */
	CK_RV slots_rv;      /* the result of listing the slots */
};

/*
 * Lists the p11-kit registry's modules without starting them.  Free the
 * list with tok_modules_free; an unreadable registry is CKR_GENERAL_ERROR.
 */
CK_RV tok_list_registry(tok_core *core, struct tok_module_info **list,
                        size_t *n);

/*
 * Starts the core's module (its module_path), else the registry module
 * called name, else every registry module, and lists each with its state.
 * Returns the first failure, with the list still set; free it.
 */
CK_RV tok_list_modules(tok_core *core, const char *name,
                       struct tok_module_info **list, size_t *n);

/* Frees a list made by tok_list_registry or tok_list_modules; NULL is ok. */
void tok_modules_free(struct tok_module_info *list, size_t n);

/* What a token's CK_TOKEN_INFO flags say, as bits. */
enum tok_token_flag {
	TOK_TF_PRESENT = 1 << 0,
	TOK_TF_INITIALIZED = 1 << 1,
	TOK_TF_LOGIN_REQUIRED = 1 << 2,
	TOK_TF_USER_PIN_SET = 1 << 3,
	TOK_TF_PIN_COUNT_LOW = 1 << 4,
	TOK_TF_PIN_FINAL_TRY = 1 << 5,
	TOK_TF_PIN_LOCKED = 1 << 6,
	TOK_TF_PIN_TO_BE_CHANGED = 1 << 7,
	TOK_TF_PROTECTED_AUTH_PATH = 1 << 8
};

/* One token in a slot of a started module, uninitialized ones included. */
struct tok_token_info {
	char label[33];
	char serial[17];
	char manufacturer[33];
	char model[17];
	unsigned long slot;
	unsigned int flags; /* TOK_TF_* */
	char *module;       /* the module's name, as in tok_module_info */
	char *module_path;  /* its file, NULL when not known */
};

/*
 * Lists the tokens present in the slots of the modules the core started
 * (see tok_list_modules), read fresh.  Free with tok_tokens_free.
 */
CK_RV tok_list_tokens(tok_core *core, struct tok_token_info **list, size_t *n);

/* Frees a list made by tok_list_tokens; accepts NULL. */
void tok_tokens_free(struct tok_token_info *list, size_t n);

/* What a key URI names, as tok_probe_key found it. */
struct tok_key_probe {
	size_t tokens;  /* initialized tokens the URI's token part matches */
	size_t holding; /* with several: how many hold objects it names */
	char token_label[33]; /* the one token probed (holding == 1) */
	char token_serial[17];
	int login_required;
	int logged_in;
	CK_RV login_rv;        /* the login's result when one was tried */
	char login_error[256]; /* and its sentence when it failed */
	size_t private_keys;   /* objects the URI names on that token */
	size_t public_keys;
	size_t certificates;
	int matches; /* -1: nothing to compare; 0: other key; 1: same key */
};

/*
 * Finds the one token a key URI names and counts the keys and certificates
 * it names there; logs in first when login is set and the token needs it
 * (the PIN from the core's pin_fn only).  When cert_der is set, says
 * whether its public key is the token's key.  Returns CKR_OK or the failure
 * (malformed URI, no token); out is always set.
 */
CK_RV tok_probe_key(tok_core *core, const char *uri, int login,
                    const unsigned char *cert_der, size_t cert_der_len,
                    struct tok_key_probe *out);

#endif /* P11MAIL_TOKEN_H */
