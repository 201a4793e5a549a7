/*
 * libp11faulty at the session level, driven directly through its function
 * list on the fixture's SoftHSM2 tokens: removal during a session, lost
 * sessions, renumbered slots, PIN states and call counts.
 */
#define _POSIX_C_SOURCE 200809L
#include "fixture.h"
#include "tap.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST_PTR p11;
static char control[4096];
static char counts[4096];

/* Replaces the control file with text ("" removes it). */
static void set_control(const char *text)
{
	FILE *f;

	if (text[0] == '\0') {
		remove(control);
		return;
	}
	f = fopen(control, "w");
	if (f == NULL)
		return;
	fputs(text, f);
	fclose(f);
}

/* The slot of the token whose label starts with label, or (CK_ULONG)-1. */
static CK_SLOT_ID find_slot(const char *label)
{
	CK_SLOT_ID ids[16];
	CK_ULONG n = 16;
	CK_TOKEN_INFO ti;

	if (p11->C_GetSlotList(CK_TRUE, ids, &n) != CKR_OK)
		return (CK_SLOT_ID)-1;
	for (CK_ULONG i = 0; i < n; i++) {
		if (p11->C_GetTokenInfo(ids[i], &ti) == CKR_OK &&
		    strncmp((char *)ti.label, label, strlen(label)) == 0 &&
		    ti.label[strlen(label)] == ' ')
			return ids[i];
	}
	return (CK_SLOT_ID)-1;
}

/* C_Login as the user; the PIN is copied since C_Login takes it non-const. */
static CK_RV login(CK_SESSION_HANDLE h, const char *pin)
{
	CK_UTF8CHAR buf[64];
	size_t n = strlen(pin);

	if (n > sizeof(buf))
		return CKR_PIN_LEN_RANGE;
	memcpy(buf, pin, n);
	return p11->C_Login(h, CKU_USER, buf, n);
}

static CK_RV open_login(const char *label, const char *pin,
                        CK_SESSION_HANDLE *h)
{
	CK_SLOT_ID slot = find_slot(label);
	CK_RV rv;

	if (slot == (CK_SLOT_ID)-1)
		return CKR_SLOT_ID_INVALID;
	rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
	                        NULL, h);
	if (rv != CKR_OK || pin == NULL)
		return rv;
	rv = login(*h, pin);
	return rv == CKR_USER_ALREADY_LOGGED_IN ? CKR_OK : rv;
}

/* Runs one object search on the session; returns its CK_RV. */
static CK_RV search(CK_SESSION_HANDLE h)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl = {CKA_CLASS, &cls, sizeof(cls)};
	CK_OBJECT_HANDLE objs[8];
	CK_ULONG n = 0;
	CK_RV rv = p11->C_FindObjectsInit(h, &tmpl, 1);

	if (rv != CKR_OK)
		return rv;
	rv = p11->C_FindObjects(h, objs, 8, &n);
	p11->C_FindObjectsFinal(h);
	return rv != CKR_OK ? rv : n > 0 ? CKR_OK : CKR_GENERAL_ERROR;
}

static int slot_listed(CK_SLOT_ID slot, CK_BBOOL present)
{
	CK_SLOT_ID ids[16];
	CK_ULONG n = 16;

	if (p11->C_GetSlotList(present, ids, &n) != CKR_OK)
		return 0;
	for (CK_ULONG i = 0; i < n; i++)
		if (ids[i] == slot)
			return 1;
	return 0;
}

static void test_removed_during_session(void)
{
	CK_SESSION_HANDLE h = 0, h2 = 0, hb = 0;
	const char *alice = getenv("ALICE_PIN");
	CK_SLOT_ID slot = find_slot("alice-token");
	CK_SLOT_INFO si;
	char line[64];

	tap_check(open_login("alice-token", alice, &h) == CKR_OK);
	tap_check(open_login("bob-token", getenv("BOB_PIN"), &hb) == CKR_OK);
	tap_check(search(h) == CKR_OK);

	snprintf(line, sizeof(line), "removed %lu\n", (unsigned long)slot);
	set_control(line);
	tap_check(search(h) == CKR_DEVICE_REMOVED);
	tap_check(p11->C_GetSlotInfo(slot, &si) == CKR_OK);
	tap_check((si.flags & CKF_TOKEN_PRESENT) == 0);
	tap_check(!slot_listed(slot, CK_TRUE));
	tap_check(slot_listed(slot, CK_FALSE));
	tap_check(p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL,
	                             &h2) == CKR_TOKEN_NOT_PRESENT);
	tap_check(search(hb) == CKR_OK); /* bob's token stays */

	/* Re-inserted: the old session is gone for good, a new one works. */
	set_control("");
	tap_check(search(h) == CKR_SESSION_HANDLE_INVALID);
	tap_check(slot_listed(slot, CK_TRUE));
	tap_check(open_login("alice-token", alice, &h2) == CKR_OK);
	tap_check(search(h2) == CKR_OK);
	tap_check(p11->C_CloseSession(h) == CKR_SESSION_HANDLE_INVALID);
	p11->C_CloseSession(h2);
	p11->C_CloseSession(hb);
}

static void test_lose_sessions(void)
{
	CK_SESSION_HANDLE a = 0, b = 0, c = 0;
	const char *pin = getenv("ALICE_PIN");

	tap_check(open_login("alice-token", pin, &a) == CKR_OK);
	tap_check(open_login("bob-token", getenv("BOB_PIN"), &b) == CKR_OK);
	set_control("lose-sessions\n");
	tap_check(search(a) == CKR_SESSION_HANDLE_INVALID);
	tap_check(search(b) == CKR_SESSION_HANDLE_INVALID);

	/* Sessions opened after the line was first seen are kept. */
	tap_check(open_login("alice-token", pin, &c) == CKR_OK);
	tap_check(search(c) == CKR_OK);
	tap_check(search(c) == CKR_OK);
	set_control("");
	tap_check(search(c) == CKR_OK);
	tap_check(search(a) == CKR_SESSION_HANDLE_INVALID);

	/* The line seen again loses the sessions of that moment. */
	set_control("lose-sessions\n");
	tap_check(search(c) == CKR_SESSION_HANDLE_INVALID);
	set_control("");
	p11->C_CloseSession(c);
}

static void test_renumber(void)
{
	CK_SLOT_ID before = find_slot("bob-token"), after;
	CK_SESSION_HANDLE h = 0;
	CK_SESSION_INFO si;

	set_control("renumber 7\n");
	after = find_slot("bob-token");
	tap_check(before != (CK_SLOT_ID)-1 && after == before + 7);
	tap_check(p11->C_OpenSession(after, CKF_SERIAL_SESSION, NULL, NULL,
	                             &h) == CKR_OK);
	tap_check(p11->C_GetSessionInfo(h, &si) == CKR_OK &&
	          si.slotID == after);
	p11->C_CloseSession(h);
	set_control("");
}

static void test_pin_states(void)
{
	static const struct {
		const char *line;
		CK_FLAGS flag;
	} rows[] = {
	        {"pin-locked\n", CKF_USER_PIN_LOCKED},
	        {"pin-final-try\n", CKF_USER_PIN_FINAL_TRY},
	        {"pin-to-be-changed\n", CKF_USER_PIN_TO_BE_CHANGED},
	        {"pin-count-low\n", CKF_USER_PIN_COUNT_LOW},
	};
	CK_SLOT_ID slot = find_slot("alice-token");
	const char *pin = getenv("ALICE_PIN");
	CK_SESSION_HANDLE h = 0;
	CK_TOKEN_INFO ti;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		set_control(rows[i].line);
		tap_check(p11->C_GetTokenInfo(slot, &ti) == CKR_OK &&
		          (ti.flags & rows[i].flag) != 0);
	}
	set_control("pin-locked\n");
	tap_check(p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL,
	                             &h) == CKR_OK);
	tap_check(login(h, pin) == CKR_PIN_LOCKED);
	set_control("");
	tap_check(p11->C_GetTokenInfo(slot, &ti) == CKR_OK &&
	          (ti.flags & CKF_USER_PIN_LOCKED) == 0);
	tap_check(login(h, pin) == CKR_OK);
	p11->C_Logout(h);
	p11->C_CloseSession(h);
}

/* The count of fn in the counts file, 0 when absent. */
static unsigned long count_of(const char *fn)
{
	char name[64];
	unsigned long n, found = 0;
	FILE *f = fopen(counts, "r");

	if (f == NULL)
		return 0;
	while (fscanf(f, "%63s %lu", name, &n) == 2)
		if (strcmp(name, fn) == 0)
			found = n;
	fclose(f);
	return found;
}

static void test_counts(void)
{
	unsigned long logins = count_of("C_Login");
	unsigned long find = count_of("C_FindObjectsInit");
	CK_SESSION_HANDLE h = 0;

	tap_check(open_login("bob-token", getenv("BOB_PIN"), &h) == CKR_OK);
	tap_check(search(h) == CKR_OK);
	tap_check(search(h) == CKR_OK);
	tap_check(count_of("C_Login") == logins + 1);
	tap_check(count_of("C_FindObjectsInit") == find + 2);
	tap_check(count_of("C_Sign") == 0);
	p11->C_CloseSession(h);
}

static void test_fail_then_recover(void)
{
	CK_SESSION_HANDLE h = 0;

	tap_check(open_login("bob-token", getenv("BOB_PIN"), &h) == CKR_OK);
	set_control("fail C_FindObjectsInit 0x30\n");
	tap_check(search(h) == CKR_DEVICE_ERROR);
	set_control("fail C_FindObjectsInit CKR_DEVICE_MEMORY\n");
	tap_check(search(h) == CKR_DEVICE_MEMORY);
	set_control("");
	tap_check(search(h) == CKR_OK);
	p11->C_CloseSession(h);
}

static const struct tap_case cases[] = {
        {"test_removed_during_session", test_removed_during_session},
        {"test_lose_sessions", test_lose_sessions},
        {"test_renumber", test_renumber},
        {"test_pin_states", test_pin_states},
        {"test_counts", test_counts},
        {"test_fail_then_recover", test_fail_then_recover},
};

int main(void)
{
	const char *module = getenv("P11FAULTY_MODULE");
	CK_C_GetFunctionList get;
	void *dl;
	int rc;

	if (module == NULL || (dl = dlopen(module, RTLD_NOW)) == NULL)
		tap_skip_all("libp11faulty.so not built (P11FAULTY_MODULE)");
	if (fixture_setup() != 0)
		tap_skip_all(fixture_reason());
	snprintf(control, sizeof(control), "%s/faulty.control", fixture_dir());
	snprintf(counts, sizeof(counts), "%s/faulty.counts", fixture_dir());
	setenv("P11FAULTY_TARGET", getenv("SOFTHSM_MODULE"), 1);
	setenv("P11FAULTY_CONTROL", control, 1);
	setenv("P11FAULTY_COUNTS", counts, 1);

	*(void **)&get = dlsym(dl, "C_GetFunctionList");
	if (get == NULL || get(&p11) != CKR_OK ||
	    p11->C_Initialize(NULL) != CKR_OK) {
		fixture_teardown();
		printf("Bail out! cannot initialise libp11faulty\n");
		return 1;
	}
	rc = tap_run(cases, sizeof(cases) / sizeof(cases[0]));
	p11->C_Finalize(NULL);
	fixture_teardown();
	return rc;
}
