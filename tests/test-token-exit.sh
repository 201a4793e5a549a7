#!/bin/sh
# A program that signs and exits returns 0, whichever way the token core
# ends (freed, freed from an exit handler, never freed), also under
# valgrind: no crash in the modules' C_Finalize at process exit.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
fixture_setup
prog=$top_builddir/tests/token-exit

for backend in softhsm nss; do
	for mode in free atexit keep; do
		check "$backend: sign and exit ($mode)" "$prog" "$mode" "$backend"
	done
done

if [ -n "${P11MAIL_TEST_SANITIZED:-}" ]; then
	# valgrind cannot run a program built with AddressSanitizer.
	for i in 1 2 3 4; do skip "valgrind" "sanitizer build"; done
elif command -v valgrind >/dev/null 2>&1; then
	# SoftHSM2 is the module known to crash at exit; softokn once.
	for run in "free softhsm" "atexit softhsm" "keep softhsm" "atexit nss"; do
		set -- $run
		check "$2: under valgrind ($1)" \
			"$top_builddir/libtool" --mode=execute valgrind -q \
			--error-exitcode=99 --leak-check=no "$prog" "$1" "$2"
	done
else
	for i in 1 2 3 4; do skip "valgrind" "valgrind not installed"; done
fi
done_testing
