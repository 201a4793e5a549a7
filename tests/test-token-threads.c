/*
 * The token core under concurrency and fork: four threads signing at once
 * on one key (every signature checked), and a child process that signs
 * with the key its parent opened.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/obj_mac.h>

#include "tap.h"
#include "test-token-util.h"

#define THREADS 4
#define ROUNDS  50

static struct tt_backend softhsm, nss, b;

struct worker {
	tok_key *key;
	EVP_PKEY *pub;
	int index;
	int good;
};

/* Signs a distinct message and checks the result with OpenSSL. */
static int sign_checked(tok_key *key, EVP_PKEY *pub, int n)
{
	int ec = tok_key_info(key)->type == TOK_KEY_EC;
	struct tok_sig_params p = {ec ? TOK_SIG_ECDSA : TOK_SIG_PKCS1,
	                           NID_sha256, 0, 0};
	unsigned char hash[32], tbs[64], sig[512];
	size_t sig_len = sizeof(sig), tbs_len = 32;
	char msg[64];

	snprintf(msg, sizeof(msg), "message %d", n);
	tt_sha256(msg, hash);
	memcpy(tbs, hash, 32);
	if (!ec)
		tbs_len = tt_digest_info(hash, tbs);
	if (tok_key_sign(key, &p, tbs, tbs_len, sig, &sig_len) != CKR_OK)
		return 0;
	return tt_verify(pub, p.scheme, 0, hash, sig, sig_len);
}

static void *work(void *arg)
{
	struct worker *w = arg;
	int i;

	for (i = 0; i < ROUNDS; i++)
		w->good += sign_checked(w->key, w->pub, w->index * 1000 + i);
	return NULL;
}

static void threads_on(const char *base, const char *cert)
{
	struct worker w[THREADS];
	pthread_t t[THREADS];
	char *uri = tt_uri_pin(&b, base);
	EVP_PKEY *pub = tt_cert_key(cert);
	tok_core *core = tt_core(&b, NULL);
	tok_key *key = NULL;
	int i, good = 0;

	tap_check(tok_key_open(core, uri, &key) == CKR_OK);
	if (key == NULL || pub == NULL)
		goto out;
	for (i = 0; i < THREADS; i++) {
		w[i] = (struct worker){tok_key_ref(key), pub, i, 0};
		pthread_create(&t[i], NULL, work, &w[i]);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		good += w[i].good;
		tok_key_unref(w[i].key);
	}
	tap_check(good == THREADS * ROUNDS);
	tap_diag("%d of %d signatures verified", good, THREADS * ROUNDS);
out:
	EVP_PKEY_free(pub);
	tok_key_unref(key);
	tok_core_free(core);
	free(uri);
}

static void test_threads_rsa(void)
{
	threads_on(b.rsa_uri, b.rsa_cert);
}

static void test_threads_ec(void)
{
	threads_on(b.ec_uri, b.ec_cert);
}

/* The child signs with the parent's key; the parent still can after. */
static void test_fork(void)
{
	char *uri = tt_uri_pin(&b, b.rsa_uri);
	EVP_PKEY *pub = tt_cert_key(b.rsa_cert);
	tok_core *core = tt_core(&b, NULL);
	tok_key *key = NULL;
	int status = -1;
	pid_t pid;

	tap_check(tok_key_open(core, uri, &key) == CKR_OK);
	if (key == NULL)
		goto out;
	tap_check(sign_checked(key, pub, 1));
	pid = fork();
	if (pid == 0) {
		int ok = sign_checked(key, pub, 2) && sign_checked(key, pub, 3);

		_exit(ok ? 0 : 1);
	}
	tap_check(pid > 0 && waitpid(pid, &status, 0) == pid);
	tap_check(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	tap_check(sign_checked(key, pub, 4));

	/* A child that frees the core does not disturb the parent. */
	pid = fork();
	if (pid == 0) {
		int ok = sign_checked(key, pub, 5);

		tok_key_unref(key);
		tok_core_free(core);
		_exit(ok ? 0 : 1);
	}
	tap_check(pid > 0 && waitpid(pid, &status, 0) == pid);
	tap_check(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	tap_check(sign_checked(key, pub, 6));
out:
	EVP_PKEY_free(pub);
	tok_key_unref(key);
	tok_core_free(core);
	free(uri);
}

static void on_softhsm(void (*fn)(void))
{
	b = softhsm;
	fn();
}

static void on_nss(void (*fn)(void))
{
	b = nss;
	fn();
}

static void test_threads_rsa_softhsm(void)
{
	on_softhsm(test_threads_rsa);
}

static void test_threads_ec_softhsm(void)
{
	on_softhsm(test_threads_ec);
}

static void test_fork_softhsm(void)
{
	on_softhsm(test_fork);
}

static void test_threads_rsa_nss(void)
{
	on_nss(test_threads_rsa);
}

static void test_threads_ec_nss(void)
{
	on_nss(test_threads_ec);
}

static void test_fork_nss(void)
{
	on_nss(test_fork);
}

static const struct tap_case cases[] = {
        {"test_threads_rsa_softhsm", test_threads_rsa_softhsm},
        {"test_threads_ec_softhsm", test_threads_ec_softhsm},
        {"test_fork_softhsm", test_fork_softhsm},
        {"test_threads_rsa_nss", test_threads_rsa_nss},
        {"test_threads_ec_nss", test_threads_ec_nss},
        {"test_fork_nss", test_fork_nss},
};

int main(void)
{
	tt_backend("softhsm", &softhsm);
	tt_backend("nss", &nss);
	return tap_run(cases, sizeof(cases) / sizeof(cases[0]));
}
