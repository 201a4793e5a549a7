/*
 * The public S/MIME API of libp11mail: the certificate source callbacks
 * the workstation store plugs in, the verification result, limits, the
 * decryption contract, and that no PIN reaches the log.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "p11mail.h"
#include "tap.h"

static const char message[] = "From: eve@south-lab.test\r\n"
                              "To: dave@north-clinic.test\r\n"
                              "Subject: API\r\n\r\n"
                              "Hello from the API test.\r\n";

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	long n;

	*len = 0;
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n)) != NULL &&
	    fread(buf, 1, (size_t)n, f) == (size_t)n)
		*len = (size_t)n;
	fclose(f);
	return buf;
}

/* A store stand-in: counts its calls and knows Dave only. */
struct fake_store {
	int anchor_calls;
	int lookup_calls;
};

static enum p11mail_status add_from_env(p11mail_smime *s, const char *var,
                                        int anchor)
{
	size_t len;
	unsigned char *der = slurp(getenv(var), &len);
	enum p11mail_status st;

	if (der == NULL)
		return P11MAIL_ERR_IO;
	st = anchor ? p11mail_smime_add_anchor(s, der, len)
	            : p11mail_smime_add_cert(s, der, len);
	free(der);
	return st;
}

static enum p11mail_status fake_anchors(void *arg, p11mail_smime *s)
{
	((struct fake_store *)arg)->anchor_calls++;
	return add_from_env(s, "CA_CERT", 1);
}

static enum p11mail_status fake_lookup(void *arg, p11mail_smime *s,
                                       const char *address)
{
	((struct fake_store *)arg)->lookup_calls++;
	if (strcmp(address, "dave@north-clinic.test") != 0)
		return P11MAIL_OK; /* unknown: nothing to add */
	return add_from_env(s, "DAVE_CERT", 0);
}

static p11mail_smime *eve(struct fake_store *store)
{
	struct p11mail_cert_source src = {store, fake_anchors, fake_lookup};
	p11mail_smime *s = NULL;

	if (p11mail_smime_new(&s) != P11MAIL_OK)
		return NULL;
	p11mail_smime_set_source(s, &src);
	if (p11mail_smime_set_identity(s, getenv("EVE_KEY"), getenv("EVE_CERT"),
	                               NULL) != P11MAIL_OK) {
		p11mail_smime_free(s);
		return NULL;
	}
	return s;
}

static void test_source_supplies_recipients(void)
{
	struct fake_store store = {0, 0};
	p11mail_smime *s = eve(&store);
	const char *to[] = {"dave@north-clinic.test"};
	const char *nobody[] = {"nobody@north-clinic.test"};
	unsigned char *out = NULL;
	size_t len = 0;

	if (!tap_check(s != NULL))
		return;
	tap_check(p11mail_smime_encrypt(
	                  s, 0, to, 1, (const unsigned char *)message,
	                  strlen(message), &out, &len) == P11MAIL_OK);
	tap_check(out != NULL && len > 0);
	tap_check(store.lookup_calls == 1 && store.anchor_calls == 1);
	p11mail_smime_release(out, len);

	static unsigned char sentinel[] = "untouched";

	out = sentinel;
	tap_check(p11mail_smime_encrypt(
	                  s, 0, nobody, 1, (const unsigned char *)message,
	                  strlen(message), &out, &len) == P11MAIL_ERR_NO_CERT);
	tap_check(out == NULL && len == 0);
	p11mail_smime_free(s);
}

/* The OID of AES-256-GCM, 2.16.840.1.101.3.4.1.46, as DER. */
static const unsigned char aes256_gcm[] = {0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                           0x65, 0x03, 0x04, 0x01, 0x2e};

static void test_verify_result(void)
{
	struct fake_store store = {0, 0};
	p11mail_smime *s = eve(&store);
	struct p11mail_verify_result *r = NULL;
	unsigned char *signed_msg = NULL;
	size_t len = 0;
	time_t now = time(NULL);

	if (!tap_check(s != NULL))
		return;
	tap_check(p11mail_smime_sign(s, 0, (const unsigned char *)message,
	                             strlen(message), &signed_msg,
	                             &len) == P11MAIL_OK);
	if (!tap_check(p11mail_smime_verify(s, signed_msg, len, &r) ==
	               P11MAIL_OK))
		goto out;
	tap_check(r->verdict == P11MAIL_VERDICT_VALID);
	tap_check(r->sender != NULL &&
	          strcmp(r->sender, "eve@south-lab.test") == 0);
	tap_check(r->signed_part != NULL && r->signed_part[0] == '\0');
	tap_check(r->signer_count == 1);
	if (r->signer_count == 1) {
		const struct p11mail_signer *sg = &r->signers[0];

		tap_check(sg->valid && sg->sender_match);
		tap_check(sg->trust == P11MAIL_TRUST_TRUSTED);
		tap_check(strlen(sg->fingerprint) == 64);
		tap_check(strcmp(sg->addresses, "eve@south-lab.test") == 0);
		tap_check(sg->cert_der != NULL && sg->cert_der_len > 100);
		tap_check(sg->signing_time > now - 300 &&
		          sg->signing_time < now + 300);
		tap_check(sg->problem == NULL);
		/* the capabilities signed with it, AES-256-GCM first */
		tap_check(sg->smime_caps != NULL && sg->smime_caps_len > 13 &&
		          sg->smime_caps[0] == 0x30 &&
		          memmem(sg->smime_caps, sg->smime_caps_len, aes256_gcm,
		                 sizeof(aes256_gcm)) != NULL);
	}
	tap_check(r->content != NULL &&
	          strstr((char *)r->content, "Hello from the API") != NULL);
out:
	p11mail_verify_result_free(r);
	p11mail_smime_release(signed_msg, len);
	p11mail_smime_free(s);
}

static void test_limits(void)
{
	struct fake_store store = {0, 0};
	p11mail_smime *s = eve(&store);
	struct p11mail_smime_limits lim = {.max_size = 64};
	unsigned char *out = NULL;
	size_t len = 0;

	if (!tap_check(s != NULL))
		return;
	p11mail_smime_set_limits(s, &lim);
	tap_check(p11mail_smime_sign(s, 0, (const unsigned char *)message,
	                             strlen(message), &out,
	                             &len) == P11MAIL_ERR_LIMIT);
	tap_check(out == NULL);
	p11mail_smime_free(s);
}

static void test_decrypt_contract(void)
{
	struct fake_store store = {0, 0};
	p11mail_smime *s = eve(&store), *dave = NULL;
	const char *to[] = {"dave@north-clinic.test"};
	unsigned char *enc = NULL, *plain = NULL;
	size_t enc_len = 0, plain_len = 0;
	int auth = -1;

	if (!tap_check(s != NULL))
		return;
	tap_check(p11mail_smime_encrypt(
	                  s, 0, to, 1, (const unsigned char *)message,
	                  strlen(message), &enc, &enc_len) == P11MAIL_OK);
	tap_check(p11mail_smime_decrypt(s, enc, enc_len, &plain, &plain_len,
	                                &auth) == P11MAIL_OK);
	tap_check(auth == 1);
	tap_check(plain != NULL &&
	          strstr((char *)plain, "Hello from the API") != NULL);
	p11mail_smime_release(plain, plain_len);

	/* a third party: one generic error, nothing released */
	plain = NULL;
	auth = -1;
	tap_check(p11mail_smime_new(&dave) == P11MAIL_OK);
	tap_check(p11mail_smime_set_identity(dave, getenv("BAD_DNONLY_KEY"),
	                                     getenv("BAD_DNONLY_CERT"),
	                                     NULL) == P11MAIL_OK);
	tap_check(p11mail_smime_decrypt(dave, enc, enc_len, &plain, &plain_len,
	                                &auth) == P11MAIL_ERR_DECRYPT);
	tap_check(plain == NULL && plain_len == 0 && auth == 0);
	p11mail_smime_free(dave);
	p11mail_smime_release(enc, enc_len);
	p11mail_smime_free(s);
}

/* A new unnamed temporary file holding text, or -1. */
static int temp_with(const char *text)
{
	FILE *f = tmpfile();
	int fd;

	if (f == NULL)
		return -1;
	fd = dup(fileno(f));
	if (fd >= 0 && text != NULL &&
	    write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		close(fd);
		fd = -1;
	}
	fclose(f);
	return fd;
}

/* Reads all of fd from its start into a NUL-ended buffer (free()). */
static char *read_back(int fd)
{
	off_t n = lseek(fd, 0, SEEK_END);
	char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;

	if (buf == NULL || pread(fd, buf, (size_t)n, 0) != n) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

static void test_files_stream(void)
{
	struct fake_store store = {0, 0};
	p11mail_smime *s = eve(&store);
	const char *to[] = {"dave@north-clinic.test"};
	int in = temp_with(message), sig = temp_with(NULL);
	int enc = temp_with(NULL), plain = temp_with(NULL);
	int pipefd[2] = {-1, -1}, auth = -1;
	char *text = NULL;

	if (!tap_check(s != NULL && in >= 0 && sig >= 0 && enc >= 0 &&
	               plain >= 0))
		goto out;
	tap_check(p11mail_smime_sign_fd(s, 0, in, sig) == P11MAIL_OK);
	text = read_back(sig);
	tap_check(text != NULL && strstr(text, "multipart/signed") != NULL &&
	          strstr(text, "Hello from the API") != NULL);
	free(text);
	text = NULL;

	tap_check(p11mail_smime_encrypt_fd(s, 0, to, 1, in, enc) == P11MAIL_OK);
	tap_check(p11mail_smime_decrypt_fd(s, enc, plain, &auth) == P11MAIL_OK);
	tap_check(auth == 1);
	text = read_back(plain);
	tap_check(text != NULL && strstr(text, "Hello from the API") != NULL);

	/* a pipe cannot be read twice: refused */
	tap_check(pipe(pipefd) == 0);
	tap_check(p11mail_smime_sign_fd(s, 0, pipefd[0], sig) ==
	          P11MAIL_ERR_ARGS);

	/* the size bound of files */
	struct p11mail_smime_limits tiny = {.max_file_size = 10};

	p11mail_smime_set_limits(s, &tiny);
	tap_check(p11mail_smime_sign_fd(s, 0, in, sig) == P11MAIL_ERR_LIMIT);

out:
	free(text);
	for (int i = 0; i < 2; i++)
		if (pipefd[i] >= 0)
			close(pipefd[i]);
	if (in >= 0)
		close(in);
	if (sig >= 0)
		close(sig);
	if (enc >= 0)
		close(enc);
	if (plain >= 0)
		close(plain);
	p11mail_smime_free(s);
}

/* SMIMECapabilities listing aes256-CBC only. */
static const unsigned char cbc_only[] = {0x30, 0x0d, 0x30, 0x0b, 0x06,
                                         0x09, 0x60, 0x86, 0x48, 0x01,
                                         0x65, 0x03, 0x04, 0x01, 0x2a};

/* Encrypts to dave, known with caps; true when the output has want. */
static int encrypts_as(const unsigned char *caps, size_t caps_len,
                       const char *want)
{
	p11mail_smime *s = NULL;
	const char *to[] = {"dave@north-clinic.test"};
	unsigned char *der = NULL, *out = NULL;
	size_t der_len = 0, len = 0;
	int ok = 0;

	if (p11mail_smime_new(&s) != P11MAIL_OK)
		return 0;
	der = slurp(getenv("DAVE_CERT"), &der_len);
	if (der != NULL && add_from_env(s, "CA_CERT", 1) == P11MAIL_OK &&
	    p11mail_smime_set_identity(s, NULL, getenv("EVE_CERT"), NULL) ==
	            P11MAIL_OK &&
	    p11mail_smime_add_cert_caps(s, der, der_len, caps, caps_len) ==
	            P11MAIL_OK &&
	    p11mail_smime_encrypt(s, 0, to, 1, (const unsigned char *)message,
	                          strlen(message), &out, &len) == P11MAIL_OK)
		ok = strstr((char *)out, want) != NULL;
	p11mail_smime_release(out, len);
	free(der);
	p11mail_smime_free(s);
	return ok;
}

static void test_caps_choose_cbc(void)
{
	static const unsigned char garbage[] = {0x04, 0x01, 0x00};

	tap_check(encrypts_as(NULL, 0, "smime-type=authEnveloped-data"));
	tap_check(encrypts_as(cbc_only, sizeof(cbc_only),
	                      "smime-type=enveloped-data"));
	/* unreadable capabilities say nothing: the default stands */
	tap_check(encrypts_as(garbage, sizeof(garbage),
	                      "smime-type=authEnveloped-data"));
}

static int pin_seen;

static void watch_log(void *arg, enum p11mail_log_level level, const char *text)
{
	if (strstr(text, "135792468") != NULL)
		pin_seen = 1;
}

static void test_no_pin_in_log(void)
{
	p11mail_smime *s = NULL;
	char uri[1024];

	setenv("P11MAIL_MODULE", getenv("SOFTHSM_MODULE"), 1);
	snprintf(uri, sizeof(uri), "%s?pin-value=135792468",
	         getenv("ALICE_RSA_URI"));
	p11mail_set_log(watch_log, NULL);
	tap_check(p11mail_smime_new(&s) == P11MAIL_OK);
	tap_check(p11mail_smime_set_identity(s, uri, NULL, NULL) != P11MAIL_OK);
	tap_check(!pin_seen);
	p11mail_set_log(NULL, NULL);
	p11mail_smime_free(s);
	unsetenv("P11MAIL_MODULE");
}

int main(void)
{
	static const struct tap_case cases[] = {
	        {"test_source_supplies_recipients",
	         test_source_supplies_recipients},
	        {"test_verify_result", test_verify_result},
	        {"test_limits", test_limits},
	        {"test_decrypt_contract", test_decrypt_contract},
	        {"test_no_pin_in_log", test_no_pin_in_log},
	        {"test_files_stream", test_files_stream},
	        {"test_caps_choose_cbc", test_caps_choose_cbc},
	};
	/* tests/test-smime-api.sh builds the fixture and runs this */
	if (getenv("CA_CERT") == NULL || getenv("EVE_KEY") == NULL)
		tap_skip_all("run through tests/test-smime-api.sh");
	return tap_run(cases, sizeof(cases) / sizeof(cases[0]));
}
