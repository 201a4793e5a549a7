# S/MIME: MIME handling, certificate policy, and sign, verify, encrypt,
# decrypt, linked into libp11mail.
noinst_LTLIBRARIES += src/libp11smime.la
src_libp11smime_la_SOURCES = src/smime.h src/smime-mime.h src/smime-ctx.c \
	src/smime-sign.c src/smime-verify.c src/smime-encrypt.c \
	src/smime-decrypt.c src/smime-stream.c src/mime.c src/mime.h src/certcheck.c \
	src/certcheck.h
src_libp11smime_la_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS)
src_libp11smime_la_LIBADD = $(OPENSSL_LIBS) $(GMIME_LIBS)
src_libp11mail_la_LIBADD += src/libp11smime.la

dist_man_MANS += man/p11mail-sign.1 man/p11mail-verify.1 \
	man/p11mail-encrypt.1 man/p11mail-decrypt.1
