# p11mail doctor: its checks read p11-kit and SQLite directly, and its
# test runs every finding on SoftHSM2 tokens of the fixture.
src_p11mail_LDADD += $(P11KIT_LIBS) $(SQLITE_LIBS)

TESTS += tests/test-doctor.sh
EXTRA_DIST += tests/test-doctor.sh
dist_man_MANS += man/p11mail-doctor.1
