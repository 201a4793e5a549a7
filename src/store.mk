# Configuration and the workstation store, linked into libp11mail; the
# p11mail-certinstall tool links them directly with the token core.
noinst_LTLIBRARIES += src/libp11store.la
src_libp11store_la_SOURCES = src/conf.c src/conf.h src/store.c src/store.h \
	src/store-x509.c src/store-identity.c src/store-anchor.c \
	src/store-cache.c src/store-trust.c src/store-check.c
src_libp11store_la_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS)
src_libp11store_la_LIBADD = $(SQLITE_LIBS) $(OPENSSL_LIBS)
src_libp11mail_la_LIBADD += src/libp11store.la

# p11mail-certinstall: links the convenience libraries directly, since the
# token core and the provider are not part of libp11mail's exported API.
bin_PROGRAMS += src/p11mail-certinstall
src_p11mail_certinstall_SOURCES = src/certinstall/main.c \
	src/certinstall/ci.h src/certinstall/ci-common.c \
	src/certinstall/ci-install.c src/certinstall/ci-import.c \
	src/certinstall/ci-anchor.c src/certinstall/ci-list.c \
	src/certinstall/ci-keygen.c src/libctx.c src/libctx.h \
	src/certcheck.c src/certcheck.h
src_p11mail_certinstall_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS)
src_p11mail_certinstall_LDADD = src/libp11tool.la src/libp11store.la \
	engine/libp11prov.la src/libp11token.la src/libp11common.la \
	$(SQLITE_LIBS) $(OPENSSL_LIBS) $(P11KIT_LIBS)

dist_man_MANS += man/p11mail.conf.5 man/p11mail-certinstall.1 \
	man/p11mail-trust.1 man/p11mail-certs.1
