#!/bin/sh
# libp11faulty seen from pkcs11-tool: everything passes through it, and each
# control line has its effect.  Session-level behaviour (removal during a
# session, lost sessions) is checked by tests/mock/test-faulty-sessions.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"

require_cmd pkcs11-tool opensc
FAULTY=${P11FAULTY_MODULE:-$top_builddir/tests/mock/.libs/libp11faulty.so}
[ -f "$FAULTY" ] || skip_all "libp11faulty.so not built ($FAULTY)"

fixture_setup

fixture_faulty
[ "$P11FAULTY_TARGET" = "$SOFTHSM_MODULE" ] &&
	[ "$P11FAULTY_CONTROL" = "$P11MAIL_FIXTURE_DIR/faulty.control" ] &&
	[ ! -e "$P11FAULTY_CONTROL" ] &&
	pass "fixture_faulty sets the proxy's variables" ||
	fail "fixture_faulty sets the proxy's variables"

faulty() { pkcs11-tool --module "$FAULTY" "$@" 2>&1; }
direct() { pkcs11-tool --module "$SOFTHSM_MODULE" "$@" 2>&1; }
control() { printf '%s\n' "$@" > "$P11FAULTY_CONTROL"; }
# has TEXT NAME: pass when the last output ($out) contains TEXT.
has() {
	case $out in
	*"$1"*) pass "$2" ;;
	*) fail "$2"; printf '%s\n' "$out" | sed 's/^/#   /' | head -n 20 ;;
	esac
}
lacks() {
	case $out in
	*"$1"*)
		fail "$2"
		printf '%s\n' "$out" | sed 's/^/#   /' | head -n 20 ;;
	*) pass "$2" ;;
	esac
}
slot_of() {
	printf '%s\n' "$2" | awk -v l="$1" '
		/^Slot / { id = $3 }
		/token label/ && $NF == l { print id; exit }' | tr -d '():'
}

sign_alice() {
	printf 'data to sign' > "$P11MAIL_FIXTURE_DIR/data"
	faulty --token-label "$ALICE_TOKEN_LABEL" --login --pin "$ALICE_PIN" \
		--sign --id 01 -m "$1" -i "$P11MAIL_FIXTURE_DIR/data" \
		-o "$P11MAIL_FIXTURE_DIR/sig"
}

# ---- no control file: a transparent proxy -------------------------------
rm -f "$P11FAULTY_CONTROL"
out=$(faulty -L)
has "$ALICE_TOKEN_SERIAL" "listing through the proxy shows alice-token"
has "$BOB_TOKEN_SERIAL" "listing through the proxy shows bob-token"
direct_slots=$(direct -L)
[ "$out" = "$direct_slots" ] && pass "the listing equals the real module's" ||
	fail "the listing equals the real module's"

objs_direct=$(direct --token-label "$ALICE_TOKEN_LABEL" --login \
	--pin "$ALICE_PIN" -O)
rm -f "$P11FAULTY_COUNTS"
out=$(faulty --token-label "$ALICE_TOKEN_LABEL" --login --pin "$ALICE_PIN" -O)
[ "$out" = "$objs_direct" ] && pass "objects listed through the proxy" ||
	fail "objects listed through the proxy"

grep -qx 'C_Login 1' "$P11FAULTY_COUNTS" &&
	grep -qx 'C_Initialize 1' "$P11FAULTY_COUNTS" &&
	grep -q '^C_FindObjectsInit [1-9]' "$P11FAULTY_COUNTS" &&
	pass "the counts file records each function's calls" || {
	fail "the counts file records each function's calls"
	sed 's/^/#   /' "$P11FAULTY_COUNTS"
}
grep -q '^C_Sign ' "$P11FAULTY_COUNTS" &&
	fail "functions never called are absent from the counts" ||
	pass "functions never called are absent from the counts"

out=$(sign_alice SHA256-RSA-PKCS)
[ -s "$P11MAIL_FIXTURE_DIR/sig" ] && pass "signing works through the proxy" ||
	fail "signing works through the proxy: $out"
grep -qx 'C_Sign 1' "$P11FAULTY_COUNTS" &&
	pass "the counts file is rewritten by each process" ||
	fail "the counts file is rewritten by each process"

# ---- removed ------------------------------------------------------------
control removed
out=$(faulty -L)
has "(empty)" "removed: the slots are listed without token"
lacks "alice-token" "removed: no token is shown"
out=$(faulty -T)
lacks "Slot " "removed: C_GetSlotList(tokenPresent) omits the slots"
out=$(faulty --token-label "$ALICE_TOKEN_LABEL" --login --pin "$ALICE_PIN" -O)
lacks "Private Key Object" "removed: the keys are unreachable"

all=$(faulty -L)
rm -f "$P11FAULTY_CONTROL"
all=$(faulty -L)
alice_slot=$(slot_of "$ALICE_TOKEN_LABEL" "$all")
control "removed $alice_slot"
out=$(faulty -T)
lacks "$ALICE_TOKEN_LABEL" "removed SLOT: that token is gone"
has "$BOB_TOKEN_LABEL" "removed SLOT: the other token stays"

# ---- PIN states ---------------------------------------------------------
control pin-locked
out=$(faulty --token-label "$ALICE_TOKEN_LABEL" -T)
has "user PIN locked" "pin-locked: C_GetTokenInfo reports CKF_USER_PIN_LOCKED"
out=$(faulty --token-label "$ALICE_TOKEN_LABEL" --login --pin "$ALICE_PIN" -O)
has "CKR_PIN_LOCKED" "pin-locked: C_Login returns CKR_PIN_LOCKED"
lacks "Private Key Object" "pin-locked: no private object is listed"

control pin-final-try
out=$(faulty -T)
has "final user PIN try" "pin-final-try sets CKF_USER_PIN_FINAL_TRY"
lacks "user PIN locked" "pin-final-try alone does not lock"
out=$(faulty --token-label "$ALICE_TOKEN_LABEL" --login --pin "$ALICE_PIN" -O)
has "Private Key Object" "pin-final-try: login still reaches the token"

control pin-to-be-changed
out=$(faulty -T)
has "user PIN to be changed" "pin-to-be-changed sets its flag"
control pin-count-low
out=$(faulty -T)
has "user PIN count low" "pin-count-low sets its flag"

# ---- injected return values ---------------------------------------------
# pkcs11-tool answers a failed C_Sign by signing again in parts: that the
# second C_SignInit succeeds shows the failed operation was ended.
control "fail C_Sign 0x30"
rm -f "$P11FAULTY_COUNTS" "$P11MAIL_FIXTURE_DIR/sig"
out=$(sign_alice SHA256-RSA-PKCS)
grep -qx 'C_Sign 1' "$P11FAULTY_COUNTS" &&
	grep -qx 'C_SignInit 2' "$P11FAULTY_COUNTS" &&
	grep -qx 'C_SignFinal 1' "$P11FAULTY_COUNTS" &&
	pass "fail C_Sign: the failed operation ends, a new one can start" || {
	fail "fail C_Sign: the failed operation ends, a new one can start"
	sed 's/^/#   /' "$P11FAULTY_COUNTS"
}
control "fail C_Sign 0x30" "fail C_SignFinal 0x30"
out=$(sign_alice SHA256-RSA-PKCS)
has "CKR_DEVICE_ERROR" "fail C_Sign/C_SignFinal 0x30 give CKR_DEVICE_ERROR"
control "fail C_Sign 50" "fail C_SignFinal 50"
out=$(sign_alice SHA256-RSA-PKCS)
has "CKR_DEVICE_REMOVED" "fail ... 50 (decimal) gives CKR_DEVICE_REMOVED"
control "fail C_Login CKR_PIN_INCORRECT"
out=$(faulty --token-label "$ALICE_TOKEN_LABEL" --login --pin "$ALICE_PIN" -O)
has "CKR_PIN_INCORRECT" "fail C_Login CKR_PIN_INCORRECT (by name)"
control "fail C_GetSlotList 0x5"
out=$(faulty -L)
has "CKR_GENERAL_ERROR" "fail C_GetSlotList: listing fails"

# ---- renumbered slots ---------------------------------------------------
rm -f "$P11FAULTY_CONTROL"
before=$(slot_of "$BOB_TOKEN_LABEL" "$(faulty -L)")
control "renumber 7"
after=$(slot_of "$BOB_TOKEN_LABEL" "$(faulty -L)")
if [ -n "$before" ] && [ -n "$after" ] &&
	[ $((after)) -eq $((before + 7)) ]; then
	pass "renumber 7 shifts the slot ids ($before -> $after)"
else
	fail "renumber 7 shifts the slot ids ($before -> $after)"
fi
out=$(faulty --slot "$after" --login --pin "$BOB_PIN" -O)
has "bob-rsa" "the shifted slot id reaches bob's token"
out=$(faulty --slot "$before" -O)
lacks "bob-rsa" "the old slot id no longer reaches it"

# ---- hidden mechanisms --------------------------------------------------
rm -f "$P11FAULTY_CONTROL"
# mech_listed NAME: the last -M output ($out) lists exactly NAME.
mech_listed() { printf '%s\n' "$out" | grep -Eq "^ *$1(,|\$)"; }
pss_sign() {
	head -c 32 /dev/zero > "$P11MAIL_FIXTURE_DIR/digest"
	faulty --token-label "$ALICE_TOKEN_LABEL" --login --pin "$ALICE_PIN" \
		--sign --id 01 -m RSA-PKCS-PSS --hash-algorithm SHA256 \
		--mgf MGF1-SHA256 -i "$P11MAIL_FIXTURE_DIR/digest" \
		-o "$P11MAIL_FIXTURE_DIR/sig"
}
out=$(faulty --token-label "$ALICE_TOKEN_LABEL" -M)
mech_listed RSA-PKCS-PSS && pass "without control, RSA-PKCS-PSS is listed" ||
	fail "without control, RSA-PKCS-PSS is listed"
rm -f "$P11MAIL_FIXTURE_DIR/sig"
out=$(pss_sign)
[ -s "$P11MAIL_FIXTURE_DIR/sig" ] &&
	pass "without control, PSS signing works" ||
	fail "without control, PSS signing works: $out"
control "no-mechanism CKM_RSA_PKCS_PSS"
out=$(faulty --token-label "$ALICE_TOKEN_LABEL" -M)
mech_listed RSA-PKCS-PSS &&
	fail "no-mechanism CKM_RSA_PKCS_PSS hides it from the list" ||
	pass "no-mechanism CKM_RSA_PKCS_PSS hides it from the list"
mech_listed SHA256-RSA-PKCS-PSS && pass "other mechanisms stay listed" ||
	fail "other mechanisms stay listed"
out=$(pss_sign)
has "CKR_MECHANISM_INVALID" "a hidden mechanism is refused by C_SignInit"
control "no-mechanism 0x1"
out=$(faulty --token-label "$ALICE_TOKEN_LABEL" -M)
mech_listed RSA-PKCS && fail "no-mechanism 0x1 hides CKM_RSA_PKCS" ||
	pass "no-mechanism 0x1 hides CKM_RSA_PKCS"

# ---- a control file it does not understand ------------------------------
control "remove"
out=$(faulty -L)
has "control line not understood" "a bad control line is reported"
lacks "alice-token" "a bad control line makes every call fail"

rm -f "$P11FAULTY_CONTROL"
out=$(faulty -T)
has "$ALICE_TOKEN_LABEL" "deleting the control file ends every fault"

done_testing
