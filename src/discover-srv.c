/*
 * The order in which SRV targets are tried (RFC 2782): lowest priority
 * first; among equal priorities a random order in which each target's
 * chance of coming next is proportional to its weight.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "discover.h"

static int by_priority(const void *a, const void *b)
{
	const struct p11m_srv *x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	return 0;
}

/*
 * Puts the run in a random order, then moves the zero weights to the front
 * keeping that order: the RFC's selection then gives zero-weight targets a
 * small chance, and equal ones (all zero, say) an equal one.
 */
static void shuffle_run(struct p11m_srv *srv, size_t count,
                        uint32_t (*rnd)(void *arg), void *arg)
{
	struct p11m_srv tmp;
	size_t zeros = 0;

	for (size_t i = count - 1; i > 0; i--) {
		size_t j = rnd(arg) % (i + 1);

		tmp = srv[i];
		srv[i] = srv[j];
		srv[j] = tmp;
	}
	for (size_t i = 0; i < count; i++) {
		if (srv[i].weight != 0)
			continue;
		tmp = srv[i];
		memmove(srv + zeros + 1, srv + zeros,
		        (i - zeros) * sizeof(*srv));
		srv[zeros++] = tmp;
	}
}

/* Draws the order of the equal-priority run srv[0..count). */
static void order_run(struct p11m_srv *srv, size_t count,
                      uint32_t (*rnd)(void *arg), void *arg)
{
	shuffle_run(srv, count, rnd, arg);
	for (size_t done = 0; done + 1 < count; done++) {
		uint32_t sum = 0, pick, running = 0;
		size_t chosen = done;
		struct p11m_srv tmp;

		for (size_t i = done; i < count; i++)
			sum += srv[i].weight;
		/* Uniform in [0, sum]: zero-weight targets get a small chance.
		 */
		pick = rnd(arg) % (sum + 1);
		for (size_t i = done; i < count; i++) {
			running += srv[i].weight;
			if (running >= pick) {
				chosen = i;
				break;
			}
		}
		/* Shift rather than swap, keeping zero weights in front. */
		tmp = srv[chosen];
		memmove(srv + done + 1, srv + done,
		        (chosen - done) * sizeof(*srv));
		srv[done] = tmp;
	}
}

void p11m_srv_order(struct p11m_srv *srv, size_t count,
                    uint32_t (*rnd)(void *arg), void *arg)
{
	size_t start = 0;

	if (count < 2)
		return;
	qsort(srv, count, sizeof(*srv), by_priority);
	while (start < count) {
		size_t end = start + 1;

		while (end < count && srv[end].priority == srv[start].priority)
			end++;
		order_run(srv + start, end - start, rnd, arg);
		start = end;
	}
}
