# The token core: the one place p11mail talks PKCS#11.  A convenience
# library carried by libp11mail and linked into the provider module.  It
# needs src/libp11common.la next to it; it does not carry those objects
# itself, so that libp11mail (which links both) gets each symbol once.
noinst_LTLIBRARIES += src/libp11token.la
src_libp11token_la_SOURCES = src/token.h src/tok-internal.h \
	src/tok-call.c src/tok-core.c src/tok-session.c src/tok-login.c \
	src/tok-pinsrc.c src/tok-key.c src/tok-pub.c src/tok-ops.c \
	src/tok-rsa.c src/tok-write.c src/tok-import.c \
	src/tok-info.c
src_libp11token_la_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS)
src_libp11token_la_LIBADD = $(OPENSSL_LIBS) $(P11KIT_LIBS)

src_libp11mail_la_LIBADD += src/libp11token.la
