# Mail transport: SMTP submission, IMAP and POP3 fetch, Maildir and the
# outbox queue, linked into libp11mail.
src_libp11mail_la_SOURCES += src/transport.h src/transport.c \
	src/transport-message.c src/transport-fetch.c src/transport-state.c \
	src/transport-account.c src/transport-send.c src/transport-trust.c \
	src/transport-protect.c src/maildir.h src/maildir.c src/queue.c

dist_man_MANS += man/p11mail-send.1 man/p11mail-sendmail.1 \
	man/p11mail-fetch.1 man/p11mail-inbox.1 man/p11mail-read.1
