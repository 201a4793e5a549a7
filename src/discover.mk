# Certificate discovery (DNS CERT and LDAP), part of the public library.
src_libp11mail_la_SOURCES += src/discover.h src/discover.c \
	src/discover-dns.c src/discover-srv.c src/discover-ldap.c \
	src/discover-fetch.c src/discover-list.c src/discover-judge.c \
	src/discover-store.c
dist_man_MANS += man/p11mail-discover.1
