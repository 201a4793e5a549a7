# The command-line tools over libp11mail.
noinst_LTLIBRARIES += src/libp11tool.la
src_libp11tool_la_SOURCES = src/tools/tool.c src/tools/tool.h
src_libp11tool_la_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS)

bin_PROGRAMS += src/p11mail
src_p11mail_SOURCES = src/tools/p11mail.c src/tools/commands.def
src_p11mail_SOURCES += src/tools/cmd-discover.c
src_p11mail_SOURCES += src/tools/cmd-smime.c src/tools/cmd-smime.h \
	src/tools/cmd-sign.c src/tools/cmd-verify.c src/tools/cmd-encrypt.c \
	src/tools/cmd-decrypt.c
src_p11mail_SOURCES += src/tools/cmd-send.c src/tools/cmd-sendmail.c \
	src/tools/cmd-fetch.c src/tools/cmd-inbox.c src/tools/cmd-read.c
src_p11mail_SOURCES += src/tools/send-hold.c src/tools/send-hold.h
src_p11mail_SOURCES += src/tools/cmd-trust.c src/tools/cmd-certs.c
src_p11mail_SOURCES += src/tools/cmd-doctor.c
src_p11mail_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS)
src_p11mail_LDADD = src/libp11tool.la src/libp11mail.la $(OPENSSL_LIBS) \
	$(GMIME_LIBS)

dist_man_MANS += man/p11mail.1
