/*
 * Unit tests of the Maildir, the outbox queue and the message helpers of
 * the transport: atomic delivery, unique names, listing, the envelope
 * stored with a queued message, Bcc removal and malformed input.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p11mail.h"
#include "tap.h"

static char root[] = "/tmp/p11mail-test-maildir-XXXXXX";

static const char sample[] =
        "From: Alice <alice@north-clinic.test>\n"
        "To: bob@south-lab.test, \"Carol C\" <carol@south-lab.test>\n"
        "Cc: Team: dave@south-lab.test, erin@south-lab.test;\n"
        "Bcc: hidden@south-lab.test,\n"
        "  also-hidden@south-lab.test\n"
        "Subject: =?UTF-8?Q?caf=C3=A9?= results\n"
        "Date: Thu, 03 Dec 2026 10:00:00 +0100\n"
        "\n"
        "Bcc: this line is body text and stays\n"
        "second line\n";

static size_t count_files(const char *dir, const char *sub)
{
	char path[512];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	d = opendir(path);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_deliver_creates_maildir_and_names_are_unique(void)
{
	char dir[512], *id1 = NULL, *id2 = NULL;
	unsigned char *back = NULL;
	size_t len = 0;

	snprintf(dir, sizeof(dir), "%s/a/b/Maildir", root);
	tap_check(p11mail_maildir_deliver(dir, (const unsigned char *)"x", 1,
	                                  &id1) == P11MAIL_OK);
	tap_check(p11mail_maildir_deliver(dir, (const unsigned char *)sample,
	                                  strlen(sample), &id2) == P11MAIL_OK);
	tap_check(id1 != NULL && id2 != NULL && strcmp(id1, id2) != 0);
	tap_check(count_files(dir, "new") == 2);
	tap_check(count_files(dir, "tmp") == 0);
	tap_check(p11mail_maildir_read(dir, id2, &back, &len) == P11MAIL_OK);
	tap_check(len == strlen(sample) && memcmp(back, sample, len) == 0);
	free(back);
	free(id1);
	free(id2);
}

static void test_list_read_remove(void)
{
	struct p11mail_maildir_list *l = NULL;
	char dir[512], *id = NULL, cur[700];
	unsigned char *back = NULL;
	size_t len = 0;

	snprintf(dir, sizeof(dir), "%s/list", root);
	tap_check(p11mail_maildir_list(dir, &l) == P11MAIL_OK && l->count == 0);
	p11mail_maildir_list_free(l);
	tap_check(p11mail_maildir_deliver(dir, (const unsigned char *)sample,
	                                  strlen(sample), &id) == P11MAIL_OK);

	/* A message a reader moved to cur/ with flags keeps its ID. */
	snprintf(cur, sizeof(cur), "%s/new/%s", dir, id);
	{
		char dst[800];

		snprintf(dst, sizeof(dst), "%s/cur/%s:2,S", dir, id);
		tap_check(rename(cur, dst) == 0);
	}
	tap_check(p11mail_maildir_list(dir, &l) == P11MAIL_OK);
	tap_check(l->count == 1 && strcmp(l->entries[0].id, id) == 0 &&
	          l->entries[0].seen == 1);
	p11mail_maildir_list_free(l);
	tap_check(p11mail_maildir_read(dir, id, &back, &len) == P11MAIL_OK);
	free(back);
	tap_check(p11mail_maildir_remove(dir, id) == P11MAIL_OK);
	tap_check(p11mail_maildir_remove(dir, id) == P11MAIL_ERR_NOT_FOUND);
	tap_check(p11mail_maildir_read(dir, "../../etc/passwd", &back, &len) ==
	          P11MAIL_ERR_ARGS);
	free(id);
}

static void test_envelope_from_headers(void)
{
	struct p11mail_envelope *env = NULL;
	static const char *const want[] = {
	        "bob@south-lab.test",    "carol@south-lab.test",
	        "dave@south-lab.test",   "erin@south-lab.test",
	        "hidden@south-lab.test", "also-hidden@south-lab.test"};

	tap_check(p11mail_message_envelope((const unsigned char *)sample,
	                                   strlen(sample), NULL,
	                                   &env) == P11MAIL_OK);
	if (!tap_check(env != NULL))
		return;
	tap_check(strcmp(env->from, "alice@north-clinic.test") == 0);
	tap_check(env->rcpt_count == 6);
	for (size_t i = 0; i < env->rcpt_count && i < 6; i++)
		tap_check(strcmp(env->rcpt[i], want[i]) == 0);
	p11mail_envelope_free(env);

	env = NULL;
	tap_check(p11mail_message_envelope((const unsigned char *)sample,
	                                   strlen(sample), "other@x.test",
	                                   &env) == P11MAIL_OK);
	tap_check(env != NULL && strcmp(env->from, "other@x.test") == 0);
	p11mail_envelope_free(env);
}

static void test_envelope_rejects_bad_addresses(void)
{
	struct p11mail_envelope *env = NULL;
	static const char nobody[] = "From: a@b.test\nSubject: x\n\nbody\n";

	tap_check(p11mail_envelope_new("a@b.test", &env) == P11MAIL_OK);
	tap_check(p11mail_envelope_add_rcpt(env, "x@y.test") == P11MAIL_OK);
	tap_check(p11mail_envelope_add_rcpt(env, "X@Y.test") == P11MAIL_OK);
	tap_check(env->rcpt_count == 1);
	tap_check(p11mail_envelope_add_rcpt(env, "a@b\r\nRCPT TO:<c@d>") ==
	          P11MAIL_ERR_ARGS);
	tap_check(p11mail_envelope_add_rcpt(env, "no-at-sign") ==
	          P11MAIL_ERR_ARGS);
	tap_check(p11mail_envelope_add_rcpt(env, "<a@b.test>") ==
	          P11MAIL_ERR_ARGS);
	p11mail_envelope_free(env);

	env = NULL;
	tap_check(p11mail_message_envelope((const unsigned char *)nobody,
	                                   strlen(nobody), NULL,
	                                   &env) == P11MAIL_ERR_FORMAT);
	tap_check(env == NULL);
}

static void test_strip_bcc_keeps_body(void)
{
	unsigned char *out = NULL;
	size_t len = 0;
	char *s;

	tap_check(p11mail_message_strip_bcc((const unsigned char *)sample,
	                                    strlen(sample), &out,
	                                    &len) == P11MAIL_OK);
	if (!tap_check(out != NULL))
		return;
	s = strndup((char *)out, len);
	tap_check(strstr(s, "hidden@") == NULL);
	tap_check(strstr(s, "\r\nBcc: this line is body text and stays\r\n") !=
	          NULL);
	tap_check(strstr(s, "Cc: Team:") != NULL);
	tap_check(strstr(s, "\r\n\r\n") != NULL);
	for (size_t i = 0; i < len; i++)
		if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r'))
			tap_check(!"a bare LF is left");
	tap_check(len >= 2 && out[len - 2] == '\r' && out[len - 1] == '\n');
	free(s);
	free(out);
}

static void test_check_rejects_malformed(void)
{
	static const struct {
		const char *text;
		enum p11mail_status want;
	} cases[] = {
	        {"", P11MAIL_ERR_FORMAT},
	        {"this is not a message\n\nhello\n", P11MAIL_ERR_FORMAT},
	        {"Subject: no sender\n\nhello\n", P11MAIL_ERR_FORMAT},
	        {": empty name\n\nx\n", P11MAIL_ERR_FORMAT},
	        {"From: a@b.test\nSubject: ok\n\nhello\n", P11MAIL_OK},
	};
	const char *why;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why = NULL;
		tap_check(p11mail_message_check(
		                  (const unsigned char *)cases[i].text,
		                  strlen(cases[i].text),
		                  &why) == cases[i].want);
		tap_check((why != NULL) == (cases[i].want != P11MAIL_OK));
	}
}

static void test_summary_kinds(void)
{
	static const struct {
		const char *text;
		enum p11mail_message_kind kind;
	} cases[] = {
	        {"From: a@b.test\nSubject: s\n\nx\n", P11MAIL_MESSAGE_PLAIN},
	        {"From: a@b.test\nMIME-Version: 1.0\nContent-Type: "
	         "multipart/signed; protocol=\"application/pkcs7-signature\"; "
	         "micalg=sha-256; boundary=b\n\n--b\n\nx\n--b--\n",
	         P11MAIL_MESSAGE_SIGNED},
	        {"From: a@b.test\nMIME-Version: 1.0\nContent-Type: "
	         "application/pkcs7-mime; smime-type=enveloped-data\n\nAAAA\n",
	         P11MAIL_MESSAGE_ENCRYPTED},
	        {"From: a@b.test\nMIME-Version: 1.0\nContent-Type: "
	         "application/x-pkcs7-mime; smime-type=signed-data\n\nAAAA\n",
	         P11MAIL_MESSAGE_SIGNED},
	};
	struct p11mail_message_summary *s = NULL;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tap_check(p11mail_message_summarize(
		                  (const unsigned char *)cases[i].text,
		                  strlen(cases[i].text), &s) == P11MAIL_OK);
		tap_check(s != NULL && s->kind == cases[i].kind);
		p11mail_message_summary_free(s);
		s = NULL;
	}
	tap_check(p11mail_message_summarize((const unsigned char *)sample,
	                                    strlen(sample), &s) == P11MAIL_OK);
	if (tap_check(s != NULL)) {
		tap_check(strcmp(s->subject, "caf\xc3\xa9 results") == 0);
		tap_check(strcmp(s->date, "2026-12-03 09:00") == 0);
		tap_check(strstr(s->from, "alice@north-clinic.test") != NULL);
	}
	p11mail_message_summary_free(s);
}

static void test_queue_keeps_envelope(void)
{
	struct p11mail_envelope *env = NULL, *back = NULL;
	unsigned char *msg = NULL;
	char dir[512], *id = NULL;
	size_t len = 0;

	snprintf(dir, sizeof(dir), "%s/outbox", root);
	tap_check(p11mail_envelope_new("alice@north-clinic.test", &env) ==
	          P11MAIL_OK);
	tap_check(p11mail_envelope_add_rcpt(env, "bob@south-lab.test") ==
	          P11MAIL_OK);
	tap_check(p11mail_envelope_add_rcpt(env, "hidden@south-lab.test") ==
	          P11MAIL_OK);
	tap_check(p11mail_queue_add(dir, env, (const unsigned char *)sample,
	                            strlen(sample), &id) == P11MAIL_OK);
	tap_check(p11mail_queue_read(dir, id, &back, &msg, &len) == P11MAIL_OK);
	if (tap_check(back != NULL)) {
		tap_check(strcmp(back->from, env->from) == 0);
		tap_check(back->rcpt_count == 2 &&
		          strcmp(back->rcpt[1], "hidden@south-lab.test") == 0);
	}
	tap_check(len == strlen(sample) && memcmp(msg, sample, len) == 0);

	/* Refused before anything is written: a CR in an address. */
	free(env->rcpt[0]);
	env->rcpt[0] = strdup("bob@south-lab.test\r\nDATA");
	free(id);
	id = NULL;
	tap_check(p11mail_queue_add(dir, env, (const unsigned char *)sample,
	                            strlen(sample), &id) == P11MAIL_ERR_ARGS);
	tap_check(id == NULL);
	tap_check(count_files(dir, "new") == 1);

	/* A message without the envelope lines is not taken as queued. */
	{
		char plain[512], *pid = NULL;
		struct p11mail_envelope *e2 = NULL;
		unsigned char *m2 = NULL;
		size_t l2 = 0;

		snprintf(plain, sizeof(plain), "%s/outbox2", root);
		tap_check(p11mail_maildir_deliver(
		                  plain, (const unsigned char *)sample,
		                  strlen(sample), &pid) == P11MAIL_OK);
		tap_check(p11mail_queue_read(plain, pid, &e2, &m2, &l2) ==
		          P11MAIL_ERR_FORMAT);
		tap_check(e2 == NULL && m2 == NULL);
		free(pid);
	}
	p11mail_envelope_free(env);
	p11mail_envelope_free(back);
	free(msg);
	free(id);
}

static void test_deliver_fails_cleanly(void)
{
	static char untouched[] = "untouched";
	char *id = untouched;

	/* A file where the Maildir should be: an error, nothing written. */
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/blocker", root);
	f = fopen(path, "w");
	if (f != NULL)
		fclose(f);
	tap_check(p11mail_maildir_deliver(path, (const unsigned char *)"x", 1,
	                                  &id) != P11MAIL_OK);
	tap_check(id == NULL);
}

static void cleanup(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "# could not remove %s\n", root);
}

int main(void)
{
	static const struct tap_case cases[] = {
	        {"test_deliver_creates_maildir_and_names_are_unique",
	         test_deliver_creates_maildir_and_names_are_unique},
	        {"test_list_read_remove", test_list_read_remove},
	        {"test_envelope_from_headers", test_envelope_from_headers},
	        {"test_envelope_rejects_bad_addresses",
	         test_envelope_rejects_bad_addresses},
	        {"test_strip_bcc_keeps_body", test_strip_bcc_keeps_body},
	        {"test_check_rejects_malformed", test_check_rejects_malformed},
	        {"test_summary_kinds", test_summary_kinds},
	        {"test_queue_keeps_envelope", test_queue_keeps_envelope},
	        {"test_deliver_fails_cleanly", test_deliver_fails_cleanly},
	};
	int rc;

	if (mkdtemp(root) == NULL)
		tap_skip_all("cannot create a temporary directory");
	rc = tap_run(cases, sizeof(cases) / sizeof(cases[0]));
	cleanup();
	return rc;
}
