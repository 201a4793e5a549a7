/* The control file and call counters of libp11faulty; see faulty-control.h. */
#define _POSIX_C_SOURCE 200809L
#include "faulty-control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct faulty_name {
	const char *name;
	unsigned long value;
};

#define FAULTY_NAME(name) #name,
static const char *const fn_names[F_COUNT] = {FAULTY_FUNCTIONS(FAULTY_NAME)};
#undef FAULTY_NAME

/* Mechanisms a test is likely to hide; any other one can be given as a
 * number. */
static const struct faulty_name mech_names[] = {
        {"CKM_RSA_PKCS_KEY_PAIR_GEN", CKM_RSA_PKCS_KEY_PAIR_GEN},
        {"CKM_RSA_PKCS", CKM_RSA_PKCS},
        {"CKM_RSA_X_509", CKM_RSA_X_509},
        {"CKM_RSA_PKCS_OAEP", CKM_RSA_PKCS_OAEP},
        {"CKM_RSA_PKCS_PSS", CKM_RSA_PKCS_PSS},
        {"CKM_SHA1_RSA_PKCS", CKM_SHA1_RSA_PKCS},
        {"CKM_SHA256_RSA_PKCS", CKM_SHA256_RSA_PKCS},
        {"CKM_SHA384_RSA_PKCS", CKM_SHA384_RSA_PKCS},
        {"CKM_SHA512_RSA_PKCS", CKM_SHA512_RSA_PKCS},
        {"CKM_SHA256_RSA_PKCS_PSS", CKM_SHA256_RSA_PKCS_PSS},
        {"CKM_SHA384_RSA_PKCS_PSS", CKM_SHA384_RSA_PKCS_PSS},
        {"CKM_SHA512_RSA_PKCS_PSS", CKM_SHA512_RSA_PKCS_PSS},
        {"CKM_EC_KEY_PAIR_GEN", CKM_EC_KEY_PAIR_GEN},
        {"CKM_ECDSA", CKM_ECDSA},
        {"CKM_ECDSA_SHA1", CKM_ECDSA_SHA1},
        {"CKM_ECDSA_SHA256", 0x1044UL},
        {"CKM_ECDSA_SHA384", 0x1045UL},
        {"CKM_ECDSA_SHA512", 0x1046UL},
        {"CKM_ECDH1_DERIVE", CKM_ECDH1_DERIVE},
        {"CKM_ECDH1_COFACTOR_DERIVE", CKM_ECDH1_COFACTOR_DERIVE},
        {"CKM_SHA_1", CKM_SHA_1},
        {"CKM_SHA256", CKM_SHA256},
        {"CKM_SHA384", CKM_SHA384},
        {"CKM_SHA512", CKM_SHA512},
        {"CKM_AES_KEY_GEN", CKM_AES_KEY_GEN},
        {"CKM_AES_CBC", CKM_AES_CBC},
        {"CKM_AES_CBC_PAD", CKM_AES_CBC_PAD},
        {"CKM_AES_GCM", 0x1087UL},
        {"CKM_GENERIC_SECRET_KEY_GEN", CKM_GENERIC_SECRET_KEY_GEN},
};

/* Return values a test is likely to inject; numbers work too. */
static const struct faulty_name rv_names[] = {
        {"CKR_OK", CKR_OK},
        {"CKR_HOST_MEMORY", CKR_HOST_MEMORY},
        {"CKR_GENERAL_ERROR", CKR_GENERAL_ERROR},
        {"CKR_FUNCTION_FAILED", CKR_FUNCTION_FAILED},
        {"CKR_ARGUMENTS_BAD", CKR_ARGUMENTS_BAD},
        {"CKR_DEVICE_ERROR", CKR_DEVICE_ERROR},
        {"CKR_DEVICE_MEMORY", CKR_DEVICE_MEMORY},
        {"CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED},
        {"CKR_FUNCTION_CANCELED", CKR_FUNCTION_CANCELED},
        {"CKR_FUNCTION_NOT_SUPPORTED", CKR_FUNCTION_NOT_SUPPORTED},
        {"CKR_KEY_HANDLE_INVALID", CKR_KEY_HANDLE_INVALID},
        {"CKR_MECHANISM_INVALID", CKR_MECHANISM_INVALID},
        {"CKR_OBJECT_HANDLE_INVALID", CKR_OBJECT_HANDLE_INVALID},
        {"CKR_OPERATION_NOT_INITIALIZED", CKR_OPERATION_NOT_INITIALIZED},
        {"CKR_PIN_INCORRECT", CKR_PIN_INCORRECT},
        {"CKR_PIN_EXPIRED", CKR_PIN_EXPIRED},
        {"CKR_PIN_LOCKED", CKR_PIN_LOCKED},
        {"CKR_SESSION_CLOSED", CKR_SESSION_CLOSED},
        {"CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID},
        {"CKR_SIGNATURE_INVALID", CKR_SIGNATURE_INVALID},
        {"CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT},
        {"CKR_TOKEN_NOT_RECOGNIZED", CKR_TOKEN_NOT_RECOGNIZED},
        {"CKR_USER_NOT_LOGGED_IN", CKR_USER_NOT_LOGGED_IN},
        {"CKR_USER_ALREADY_LOGGED_IN", CKR_USER_ALREADY_LOGGED_IN},
        {"CKR_ENCRYPTED_DATA_INVALID", CKR_ENCRYPTED_DATA_INVALID},
        {"CKR_DATA_LEN_RANGE", CKR_DATA_LEN_RANGE},
        {"CKR_BUFFER_TOO_SMALL", CKR_BUFFER_TOO_SMALL},
        {"CKR_CRYPTOKI_NOT_INITIALIZED", CKR_CRYPTOKI_NOT_INITIALIZED},
};

static unsigned long counts[F_COUNT];
static int bad_reported;

const char *faulty_fn_name(enum faulty_fn fn)
{
	return fn < F_COUNT ? fn_names[fn] : "?";
}

/* Parses a number (0x.. hex or decimal) or a name from table; 0 on
 * success. */
static int parse_value(const char *s, const struct faulty_name *table, size_t n,
                       unsigned long *out)
{
	char *end;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(s, table[i].name) == 0) {
			*out = table[i].value;
			return 0;
		}
	}
	errno = 0;
	*out = strtoul(s, &end, 0);
	return errno != 0 || end == s || *end != '\0' ? -1 : 0;
}

static int parse_fn(const char *s, enum faulty_fn *out)
{
	for (int i = 0; i < F_COUNT; i++) {
		if (strcmp(s, fn_names[i]) == 0) {
			*out = (enum faulty_fn)i;
			return 0;
		}
	}
	return -1;
}

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int parse_fail(struct faulty_control *ctl, const char *fn,
                      const char *rv)
{
	struct faulty_fail *f;
	unsigned long v;

	if (fn == NULL || rv == NULL || ctl->nfails == FAULTY_MAX_FAILS)
		return -1;
	f = &ctl->fails[ctl->nfails];
	if (parse_fn(fn, &f->fn) != 0 ||
	    parse_value(rv, rv_names, NELEM(rv_names), &v) != 0)
		return -1;
	f->rv = v;
	ctl->nfails++;
	return 0;
}

static int parse_no_mech(struct faulty_control *ctl, const char *m)
{
	unsigned long v;

	if (m == NULL || ctl->nno_mechs == FAULTY_MAX_MECHS ||
	    parse_value(m, mech_names, NELEM(mech_names), &v) != 0)
		return -1;
	ctl->no_mechs[ctl->nno_mechs++] = v;
	return 0;
}

static int parse_removed(struct faulty_control *ctl, const char *slot)
{
	unsigned long v;

	ctl->removed = 1;
	if (slot == NULL) {
		ctl->removed_any_slot = 1;
		return 0;
	}
	if (parse_value(slot, NULL, 0, &v) != 0)
		return -1;
	ctl->removed_slot = v;
	return 0;
}

/* Applies one line split into words; returns 0, or -1 if not understood. */
static int parse_words(struct faulty_control *ctl, char *w[4], int n)
{
	unsigned long v;

	if (n == 0)
		return 0;
	if (strcmp(w[0], "removed") == 0 && n <= 2)
		return parse_removed(ctl, w[1]);
	if (strcmp(w[0], "lose-sessions") == 0 && n == 1)
		ctl->lose_sessions = 1;
	else if (strcmp(w[0], "pin-locked") == 0 && n == 1) {
		ctl->pin_locked = 1;
		ctl->token_flags |= CKF_USER_PIN_LOCKED;
	} else if (strcmp(w[0], "pin-final-try") == 0 && n == 1)
		ctl->token_flags |= CKF_USER_PIN_FINAL_TRY;
	else if (strcmp(w[0], "pin-to-be-changed") == 0 && n == 1)
		ctl->token_flags |= CKF_USER_PIN_TO_BE_CHANGED;
	else if (strcmp(w[0], "pin-count-low") == 0 && n == 1)
		ctl->token_flags |= CKF_USER_PIN_COUNT_LOW;
	else if (strcmp(w[0], "fail") == 0 && n == 3)
		return parse_fail(ctl, w[1], w[2]);
	else if (strcmp(w[0], "no-mechanism") == 0 && n == 2)
		return parse_no_mech(ctl, w[1]);
	else if (strcmp(w[0], "renumber") == 0 && n == 2) {
		if (parse_value(w[1], NULL, 0, &v) != 0)
			return -1;
		ctl->renumber = v;
	} else
		return -1;
	return 0;
}

static void parse_line(struct faulty_control *ctl, char *line)
{
	char *w[4] = {NULL, NULL, NULL, NULL};
	char *save = NULL, *tok;
	int n = 0;

	line[strcspn(line, "#\r\n")] = '\0';
	for (tok = strtok_r(line, " \t", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t", &save)) {
		if (n == 4) {
			n = 5;
			break;
		}
		w[n++] = tok;
	}
	if (n <= 4 && parse_words(ctl, w, n) == 0)
		return;
	ctl->bad = 1;
	if (!bad_reported) {
		bad_reported = 1;
		fprintf(stderr, "libp11faulty: control line not understood\n");
	}
}

void faulty_control_read(struct faulty_control *ctl)
{
	const char *path = getenv("P11FAULTY_CONTROL");
	char line[256];
	FILE *f;

	memset(ctl, 0, sizeof(*ctl));
	if (path == NULL || path[0] == '\0')
		return;
	f = fopen(path, "r");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		parse_line(ctl, line);
	fclose(f);
}

int faulty_mech_hidden(const struct faulty_control *ctl, CK_MECHANISM_TYPE mech)
{
	for (size_t i = 0; i < ctl->nno_mechs; i++)
		if (ctl->no_mechs[i] == mech)
			return 1;
	return 0;
}

void faulty_count(enum faulty_fn fn)
{
	const char *path = getenv("P11FAULTY_COUNTS");
	char tmp[4096];
	FILE *f;

	if (fn < F_COUNT)
		counts[fn]++;
	if (path == NULL || path[0] == '\0')
		return;

	/* Written aside and renamed, so that a reader never sees half. */
	if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >=
	    (int)sizeof(tmp))
		return;
	f = fopen(tmp, "w");
	if (f == NULL)
		return;
	for (int i = 0; i < F_COUNT; i++)
		if (counts[i] != 0)
			fprintf(f, "%s %lu\n", fn_names[i], counts[i]);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		remove(tmp);
}
