# Shared helpers, linked into libp11mail, the provider module and the tools.
noinst_LTLIBRARIES += src/libp11common.la
src_libp11common_la_SOURCES = src/common.h src/error.c src/log.c src/wipe.c
src_libp11common_la_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS)
src_libp11common_la_LIBADD = $(OPENSSL_LIBS) $(P11KIT_LIBS)

# The public library: everything the tools do, for other programs too.
lib_LTLIBRARIES += src/libp11mail.la
src_libp11mail_la_SOURCES = src/p11mail.sym
src_libp11mail_la_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS)
src_libp11mail_la_LIBADD = src/libp11common.la $(OPENSSL_LIBS) \
	$(P11KIT_LIBS) $(GMIME_LIBS) $(SQLITE_LIBS) $(CURL_LIBS) \
	$(LDNS_LIBS) $(LDAP_LIBS)
src_libp11mail_la_LDFLAGS = $(AM_LDFLAGS) -version-info 0:0:0 \
	-Wl,--version-script=$(top_srcdir)/src/p11mail.sym -no-undefined
EXTRA_src_libp11mail_la_DEPENDENCIES = $(top_srcdir)/src/p11mail.sym
