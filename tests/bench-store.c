/*
 * Measures the store at scale: fills it with 100,000 correspondents'
 * certificates (1,000 per transaction; one real certificate's DER under
 * distinct addresses and fingerprints, since parsing is not what is
 * measured), adds 1,000 real certificates one transaction each the way
 * p11mail does, then looks addresses up at random.  Prints one JSON object.
 *
 *   bench-store [ROWS]
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "p11mail.h"
#include "store.h"
#include "test-store-util.h"

struct sample {
	unsigned char *der;
	size_t len;
	char address[64];
};

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int make_samples(struct sample *s, long from, long n)
{
	for (long i = 0; i < n; i++) {
		if (i < from) {
			snprintf(s[i].address, sizeof(s[i].address),
			         "user%ld@domain%ld.test", i, i % 97);
			continue;
		}
		snprintf(s[i].address, sizeof(s[i].address),
		         "user%ld@domain%ld.test", i, i % 97);
		if (tsu_make_cert(s[i].address, -1, 365, 0, &s[i].der,
		                  &s[i].len) < 0)
			return -1;
	}
	return 0;
}

static enum p11mail_status insert_batch(p11mail_store *st, struct sample *s,
                                        struct p11m_cert_facts *f,
                                        const struct sample *tmpl, long from,
                                        long to)
{
	enum p11mail_status res = p11m_store_begin(st);

	for (long i = from; i < to && res == P11MAIL_OK; i++) {
		p11m_fingerprint((const unsigned char *)s[i].address,
		                 strlen(s[i].address), f->fingerprint);
		res = p11m_cache_upsert(st, s[i].address, tmpl->der, tmpl->len,
		                        f, P11MAIL_CACHE_EXCHANGED, NULL, 0, 0);
	}
	return p11m_store_end(st, res);
}

int main(int argc, char **argv)
{
	long rows = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
	long single = rows / 100, lookups = 20000;
	struct sample *s = calloc((size_t)rows, sizeof(*s));
	p11mail_store *st = NULL;
	double t0, t_batch, t_single, t_look;
	char *dir = tsu_tempdir();
	long found = 0;

	struct p11m_cert_facts f;
	struct sample tmpl;

	if (s == NULL || dir == NULL || rows < 1000 ||
	    make_samples(s, rows - single, rows) ||
	    tsu_make_cert("template@domain.test", -1, 365, 0, &tmpl.der,
	                  &tmpl.len) < 0 ||
	    p11m_cert_facts(tmpl.der, tmpl.len, &f) != P11MAIL_OK)
		return 1;
	if (p11mail_store_open(dir, &st) != P11MAIL_OK)
		return 1;

	t0 = now_s();
	for (long i = 0; i < rows - single; i += 1000)
		if (insert_batch(st, s, &f, &tmpl, i,
		                 i + 1000 < rows - single
		                         ? i + 1000
		                         : rows - single) != P11MAIL_OK)
			return 1;
	t_batch = now_s() - t0;

	/* The way p11mail adds one certificate: a transaction each. */
	t0 = now_s();
	for (long i = rows - single; i < rows; i++)
		if (p11mail_cache_put(st, s[i].address, s[i].der, s[i].len,
		                      P11MAIL_CACHE_EXCHANGED, NULL, 0,
		                      0) != P11MAIL_OK)
			return 1;
	t_single = now_s() - t0;

	srand(42);
	t0 = now_s();
	for (long i = 0; i < lookups; i++) {
		struct p11mail_cert *c = NULL;
		size_t n = 0;

		if (p11mail_cache_find(st, s[rand() % rows].address, &c, &n) !=
		    P11MAIL_OK)
			return 1;
		found += (long)n;
		p11mail_certs_free(c, n);
	}
	t_look = now_s() - t0;

	printf("{\"rows\":%ld,\"inserts_per_s_batched\":%.0f,"
	       "\"inserts_per_s_single_tx\":%.0f,\"lookups_per_s\":%.0f,"
	       "\"lookup_ms\":%.4f,\"found\":%ld}\n",
	       rows, (double)(rows - single) / t_batch,
	       (double)single / t_single, (double)lookups / t_look,
	       1000.0 * t_look / (double)lookups, found);
	p11mail_store_close(st);
	tsu_rmtree(dir);
	for (long i = 0; i < rows; i++)
		free(s[i].der);
	free(s);
	free(tmpl.der);
	p11m_cert_facts_clear(&f);
	free(dir);
	return found == lookups ? 0 : 1;
}
