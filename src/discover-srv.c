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
	/* Zero weights first, as the RFC's selection loop expects. */
	return (x->weight != 0) - (y->weight != 0);
}

/* Draws the order of the equal-priority run srv[0..count). */
static void order_run(struct p11m_srv *srv, size_t count,
                      uint32_t (*rnd)(void *arg), void *arg)
{
	for (size_t done = 0; done + 1 < count; done++) {
		uint32_t sum = 0, pick, running = 0;
		size_t chosen = done;
		struct p11m_srv tmp;

		for (size_t i = done; i < count; i++)
			sum += srv[i].weight;
		/* Uniform in [0, sum]: zero-weight targets get a small chance.
		 */
		pick = sum == UINT32_MAX ? rnd(arg) : rnd(arg) % (sum + 1);
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
