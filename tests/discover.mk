# Discovery tests: shell tests against private bind9 and slapd servers
# (tests/servers/), and C unit tests of the parts that need no server.
TESTS += tests/test-discover-dns.sh tests/test-discover-ldap.sh
EXTRA_DIST += tests/test-discover-dns.sh tests/test-discover-ldap.sh \
	tests/test-discover-common.sh tests/servers/dns.sh \
	tests/servers/ldap.sh
