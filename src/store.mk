# Configuration and the workstation store, linked into libp11mail; the
# p11mail-certinstall tool links them directly with the token core.
noinst_LTLIBRARIES += src/libp11store.la
src_libp11store_la_SOURCES = src/conf.c src/conf.h src/store.c src/store.h \
	src/store-x509.c src/store-identity.c src/store-anchor.c \
	src/store-cache.c src/store-trust.c
src_libp11store_la_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS)
src_libp11store_la_LIBADD = $(SQLITE_LIBS) $(OPENSSL_LIBS)
src_libp11mail_la_LIBADD += src/libp11store.la
