# Mail transport tests: Maildir and queue units, and end-to-end runs
# against a private Postfix and Dovecot (tests/servers/mail-*.sh).
check_PROGRAMS += tests/test-maildir
tests_test_maildir_SOURCES = tests/test-maildir.c
tests_test_maildir_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS)
tests_test_maildir_LDADD = tests/libtap.la src/libp11mail.la

TESTS += tests/test-maildir tests/test-transport-smtp.sh \
	tests/test-transport-fetch.sh tests/test-transport-sendmail.sh \
	tests/test-transport-smime.sh
EXTRA_DIST += tests/servers/mail-start.sh tests/servers/mail-stop.sh \
	tests/test-transport-smtp.sh tests/test-transport-fetch.sh \
	tests/test-transport-sendmail.sh tests/test-transport-smime.sh \
	tests/transport-lib.sh
