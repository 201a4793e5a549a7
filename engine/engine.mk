# The OpenSSL provider.  Its code is one convenience library, linked into
# libp11mail (registered there as a built-in provider of a private library
# context) and into the loadable module p11mail.so.
noinst_LTLIBRARIES += engine/libp11prov.la
engine_libp11prov_la_SOURCES = engine/provider.c engine/provider.h \
	engine/key.c engine/key.h engine/keymgmt.c engine/signature.c \
	engine/cipher.c engine/keyexch.c engine/store.c
engine_libp11prov_la_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS)

src_libp11mail_la_SOURCES += src/libctx.c src/libctx.h
src_libp11mail_la_LIBADD += engine/libp11prov.la

# The module exports OSSL_provider_init and nothing else.  It is installed
# into OpenSSL's modules directory and never activated by default.
ossl_modules_LTLIBRARIES += engine/p11mail.la
engine_p11mail_la_SOURCES = engine/module.c
engine_p11mail_la_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS)
engine_p11mail_la_LIBADD = engine/libp11prov.la src/libp11token.la \
	src/libp11common.la $(OPENSSL_LIBS) $(P11KIT_LIBS)
engine_p11mail_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version \
	-no-undefined -Wl,--version-script=$(top_srcdir)/engine/p11mail.map
EXTRA_engine_p11mail_la_DEPENDENCIES = $(top_srcdir)/engine/p11mail.map

dist_man_MANS += man/p11mail-provider.7
EXTRA_DIST += engine/p11mail.map
