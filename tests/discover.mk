# Discovery tests: shell tests against private bind9 and slapd servers
# (tests/servers/), and C unit tests of the parts that need no server.
TESTS += tests/test-discover-dns.sh tests/test-discover-ldap.sh
EXTRA_DIST += tests/test-discover-dns.sh tests/test-discover-ldap.sh \
	tests/test-discover-common.sh tests/servers/dns.sh \
	tests/servers/ldap.sh

check_PROGRAMS += tests/test-discover-unit
TESTS += tests/test-discover-unit
tests_test_discover_unit_SOURCES = tests/test-discover-unit.c \
	src/discover-srv.c src/discover-list.c
tests_test_discover_unit_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS) \
	-I$(top_srcdir)/tests
tests_test_discover_unit_LDADD = tests/libtap.la src/libp11common.la \
	$(OPENSSL_LIBS)

check_PROGRAMS += tests/test-discover-api
TESTS += tests/test-discover-api
tests_test_discover_api_SOURCES = tests/test-discover-api.c
tests_test_discover_api_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS) \
	-I$(top_srcdir)/tests
tests_test_discover_api_LDADD = tests/libtap.la src/libp11mail.la \
	$(OPENSSL_LIBS)

# A small HTTP server for the IPKIX cases of test-discover-dns.sh.
check_PROGRAMS += tests/test-discover-httpd
tests_test_discover_httpd_SOURCES = tests/test-discover-httpd.c
tests_test_discover_httpd_CFLAGS = $(AM_CFLAGS)
