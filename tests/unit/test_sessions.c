// SPDX-License-Identifier: BSD-2-Clause
/*
 * ferryctl sessions, the workers' side (daemon/sessions.c): a table of
 * 100000 sessions listed chunk by chunk from a cursor, as the control
 * socket asks for it, finds each session exactly once, each chunk within
 * its bounds (records and slots looked at), the filters find exactly what
 * they name, and sessions removed and added between chunks never make a
 * session that stayed show twice or not at all.  And an idle worker
 * empties a listing's doorbell that rang after its request was served, and
 * (the same idle path) naps for coalescing only while no service waits.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/eventfd.h>

#include "daemon.h"
#include "nat.h"
#include "sessions.h"
#include "unit.h"
#include "worker.h"

#define NR 100000
#define UPSTREAMS 4

static union ferry_addr client_addr(uint32_t i)
{
	/* 198.18.0.0/15 holds 131072 addresses: one per session. */
	uint32_t a = (198u << 24 | 18u << 16) + i;
	union ferry_addr x = { .b = { a >> 24, a >> 16 & 0xff, a >> 8 & 0xff, a & 0xff } };

	return x;
}

static uint32_t index_of(const uint8_t *b)
{
	uint32_t a = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];

	return a - (198u << 24 | 18u << 16);
}

static union ferry_addr upstream_addr(uint32_t u)
{
	union ferry_addr x = { .b = { 198, 19, 255, (uint8_t)(1 + u) } };

	return x;
}

static struct nat_session *add(struct nat_table *t, uint32_t i)
{
	union ferry_addr egress = { .b = { 198, 19, 254, 1 } };
	union ferry_addr up = upstream_addr(i % UPSTREAMS);
	struct nat_tuple c = {
		.saddr = client_addr(i),
		.daddr = { .b = { 198, 19, 253, 1 } },
		.sport = (uint16_t)(1024 + i % 50000),
		.dport = 5000,
		.family = 4,
		.proto = IPPROTO_UDP,
	};
	struct nat_session *s = NULL;

	CU_ASSERT_EQUAL(nat_table__insert(t, &c, &egress, &up, 6000, i % 3, 1000, &s), 0);
	return s;
}

static struct nat_table *full_table(void)
{
	struct nat_table *t = nat_table__create(131072, 1024, 65535);

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (uint32_t i = 0; i < NR; i++)
		add(t, i);
	CU_ASSERT_EQUAL_FATAL(nat_table__count(t), NR);
	return t;
}

/*
 * Lists t with filter (flags, flow, addr) through chunks of `max`, as
 * ferryctl does; seen[i] counts how often session i showed.  Between
 * chunks `between` (or NULL) may change the table.  Returns the records listed.
 */
static uint32_t list(struct nat_table *t, struct sess_snap *q, uint32_t flags, uint32_t flow,
		     const union ferry_addr *addr, uint32_t max, uint8_t *seen,
		     void (*between)(struct nat_table *t, uint32_t chunk))
{
	uint32_t total = 0, chunk = 0, slot = 0, cap = nat_table__capacity(t);

	for (;;) {
		q->slot = slot;
		q->max = max;
		q->flags = flags;
		q->flow_id = flow;
		q->family = 4;
		if (addr)
			memcpy(q->addr, addr->b, 16);
		sessions__collect(t, q, 0, 2000000000ull, NULL, NULL);
		CU_ASSERT(q->nr <= max);
		/* Bounded work: never more slots looked at than the limit. */
		CU_ASSERT(q->next_slot > slot || q->end);
		CU_ASSERT(q->next_slot - slot <= SESS_SCAN_LIMIT);
		CU_ASSERT_EQUAL(q->end, q->next_slot >= cap);
		for (uint32_t k = 0; k < q->nr; k++) {
			uint32_t i = index_of(q->recs[k].client);

			CU_ASSERT_FATAL(i < NR);
			if (seen && seen[i] < 255)
				seen[i]++;
			CU_ASSERT_EQUAL(q->recs[k].family, 4);
			CU_ASSERT_EQUAL(q->recs[k].proto, IPPROTO_UDP);
			CU_ASSERT_EQUAL(q->recs[k].flow_port, 5000);
			CU_ASSERT_EQUAL(q->recs[k].upstream_port, 6000);
			CU_ASSERT_EQUAL(q->recs[k].client_port, 1024 + i % 50000);
			CU_ASSERT_EQUAL(q->recs[k].flow_id, i % 3);
			CU_ASSERT(!memcmp(q->recs[k].upstream, upstream_addr(i % UPSTREAMS).b, 4));
			CU_ASSERT(q->recs[k].nat_port >= 1024);
			CU_ASSERT_EQUAL(q->recs[k].age_ms, (2000000000ull - 1000) / 1000000);
			CU_ASSERT_EQUAL(q->xdp_slot[k], -1);
		}
		total += q->nr;
		if (q->end)
			break;
		slot = q->next_slot;
		if (between)
			between(t, chunk++);
	}
	return total;
}

static void test_whole_table(void)
{
	struct nat_table *t = full_table();
	struct sess_snap *q = calloc(1, sizeof(*q));
	uint8_t *seen = calloc(NR, 1);
	uint32_t once = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	CU_ASSERT_PTR_NOT_NULL_FATAL(seen);
	CU_ASSERT_EQUAL(list(t, q, 0, 0, NULL, FERRY_CTL_SESS_CHUNK, seen, NULL), NR);
	for (uint32_t i = 0; i < NR; i++)
		once += seen[i] == 1;
	CU_ASSERT_EQUAL(once, NR);
	CU_ASSERT_EQUAL(q->count, NR);
	/* A request for more than a chunk gets a chunk. */
	q->slot = 0;
	q->max = 100000;
	q->flags = 0;
	sessions__collect(t, q, 0, 2000000000ull, NULL, NULL);
	CU_ASSERT_EQUAL(q->nr, FERRY_CTL_SESS_CHUNK);
	free(seen);
	free(q);
	nat_table__destroy(t);
}

static void test_filters(void)
{
	struct nat_table *t = full_table();
	struct sess_snap *q = calloc(1, sizeof(*q));
	union ferry_addr one = client_addr(4242), up = upstream_addr(1), none = client_addr(NR + 7);
	uint32_t per_flow1 = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	for (uint32_t i = 0; i < NR; i++)
		per_flow1 += i % 3 == 1;
	CU_ASSERT_EQUAL(list(t, q, FERRY_CTL_SESS_FLOW, 1, NULL, 100, NULL, NULL), per_flow1);
	CU_ASSERT_EQUAL(list(t, q, FERRY_CTL_SESS_ADDR, 0, &one, 100, NULL, NULL), 1);
	CU_ASSERT_EQUAL(list(t, q, FERRY_CTL_SESS_ADDR, 0, &up, FERRY_CTL_SESS_CHUNK, NULL, NULL),
			NR / UPSTREAMS);
	CU_ASSERT_EQUAL(list(t, q, FERRY_CTL_SESS_ADDR, 0, &none, 7, NULL, NULL), 0);
	/* Both filters: flow 1 among upstream 1's sessions. */
	{
		uint32_t want = 0;

		for (uint32_t i = 0; i < NR; i++)
			want += i % 3 == 1 && i % UPSTREAMS == 1;
		CU_ASSERT_EQUAL(list(t, q, FERRY_CTL_SESS_FLOW | FERRY_CTL_SESS_ADDR, 1, &up, 50,
				     NULL, NULL),
				want);
	}
	free(q);
	nat_table__destroy(t);
}

/* Between chunks, the owner removes some sessions (every 7th) and adds others. */
static uint32_t next_new = NR;

static void churn(struct nat_table *t, uint32_t chunk)
{
	uint32_t slot = (chunk * 997u) % nat_table__capacity(t);

	for (int k = 0; k < 20; k++) {
		const struct nat_session *s = nat_table__next(t, &slot, nat_table__capacity(t));

		if (!s)
			break;
		if (index_of(s->client.saddr.b) % 7 == 3)
			nat_table__remove(t, (struct nat_session *)s);
	}
	if (next_new < NR + 20000)
		add(t, next_new++);
}

static void test_churn(void)
{
	struct nat_table *t = nat_table__create(131072, 1024, 65535);
	struct sess_snap *q = calloc(1, sizeof(*q));
	uint8_t *seen = calloc(NR + 20000, 1);
	uint32_t stayed_once = 0, stayed = 0, twice = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	CU_ASSERT_PTR_NOT_NULL_FATAL(seen);
	for (uint32_t i = 0; i < NR; i++)
		add(t, i);
	/* Listed with churn between the chunks. */
	{
		uint32_t slot = 0, cap = nat_table__capacity(t), chunk = 0;

		for (;;) {
			q->slot = slot;
			q->max = FERRY_CTL_SESS_CHUNK;
			q->flags = 0;
			sessions__collect(t, q, 0, 2000000000ull, NULL, NULL);
			for (uint32_t k = 0; k < q->nr; k++) {
				uint32_t i = index_of(q->recs[k].client);

				CU_ASSERT_FATAL(i < NR + 20000);
				if (seen[i] < 255)
					seen[i]++;
			}
			if (q->end || q->next_slot >= cap)
				break;
			slot = q->next_slot;
			churn(t, chunk++);
		}
	}
	for (uint32_t i = 0; i < NR + 20000; i++)
		twice += seen[i] > 1;
	CU_ASSERT_EQUAL(twice, 0);
	/* Sessions that were never removed were each listed exactly once. */
	for (uint32_t i = 0; i < NR; i++) {
		struct nat_tuple c = {
			.saddr = client_addr(i),
			.daddr = { .b = { 198, 19, 253, 1 } },
			.sport = (uint16_t)(1024 + i % 50000),
			.dport = 5000,
			.family = 4,
			.proto = IPPROTO_UDP,
		};

		if (!nat_table__lookup_client(t, &c))
			continue;
		stayed++;
		stayed_once += seen[i] == 1;
	}
	CU_ASSERT(stayed > NR / 2);
	CU_ASSERT_EQUAL(stayed_once, stayed);
	free(seen);
	free(q);
	nat_table__destroy(t);
}

/* The iterator's bound: an empty stretch of the table costs `limit` slots, no more. */
static void test_next_bound(void)
{
	struct nat_table *t = nat_table__create(65536, 1024, 65535);
	uint32_t slot = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_PTR_NULL(nat_table__next(t, &slot, 1000));
	CU_ASSERT_EQUAL(slot, 1000);
	slot = nat_table__capacity(t) - 10;
	CU_ASSERT_PTR_NULL(nat_table__next(t, &slot, 1000));
	CU_ASSERT_EQUAL(slot, nat_table__capacity(t));
	add(t, 1);
	slot = 0;
	CU_ASSERT_PTR_NOT_NULL(nat_table__next(t, &slot, nat_table__capacity(t)));
	CU_ASSERT(slot > 0);
	CU_ASSERT_PTR_NULL(nat_table__next(t, &slot, nat_table__capacity(t)));
	nat_table__destroy(t);
}

/*
 * The control socket's doorbell (daemon/control.c writes it after it
 * publishes snap_req, and after an app slot's generation steps): a busy worker may serve the request before the write lands,
 * its own read of the doorbell finding nothing.  An idle wait that wakes
 * on the doorbell must empty it, or every later one returns at once: the
 * worker spins at 100% of a CPU until the next listing.  A request still
 * pending stays for the loop to serve.
 */
static void test_doorbell_drained(void)
{
	struct ferry_daemon *d = calloc(1, sizeof(*d));
	struct ferry_worker *w = aligned_alloc(64, (sizeof(*w) + 63) & ~63ul);
	struct sess_snap *q = calloc(1, sizeof(*q));
	uint64_t one = 1, v;
	int efd;

	CU_ASSERT_FATAL(d && w && q);
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	CU_ASSERT_FATAL(efd >= 0);
	memset(w, 0, sizeof(*w));
	d->park_fd = -1;
	w->d = d;
	atomic_store(&w->control_fd, efd);
	/* Served already: the doorbell rings late, for nothing. */
	CU_ASSERT_EQUAL(write(efd, &one, sizeof(one)), (ssize_t)sizeof(one));
	worker__idle_wait(w);
	CU_ASSERT_EQUAL(read(efd, &v, sizeof(v)), -1);
	CU_ASSERT_EQUAL(errno, EAGAIN);
	/*
	 * Or for an app slot's new generation: the doorbell only wakes, the
	 * request says to tick the services at once, so the last application's
	 * area is let go now, not after a 100 ms sleep.  Taken whoever emptied
	 * the doorbell (a listing served meanwhile), in any poll mode.
	 */
	CU_ASSERT_EQUAL(w->wake_ns, 0);
	atomic_store(&w->tick_req, true);
	worker__control_requests(w);
	CU_ASSERT_EQUAL(w->wake_ns, 1);
	CU_ASSERT_FALSE(atomic_load(&w->tick_req));
	w->wake_ns = 0;
	worker__control_requests(w);
	CU_ASSERT_EQUAL(w->wake_ns, 0);
	/* A stop rings the doorbell too: no 100 ms idle sleep per worker to stop. */
	worker__request_stop(w);
	CU_ASSERT(w->stop);
	CU_ASSERT_EQUAL(read(efd, &v, sizeof(v)), (ssize_t)sizeof(v));
	CU_ASSERT_EQUAL(v, 1);
	w->stop = 0;
	/* A request pending: the doorbell emptied, the request kept for the loop's top. */
	atomic_store(&w->snap_req, q);
	CU_ASSERT_EQUAL(write(efd, &one, sizeof(one)), (ssize_t)sizeof(one));
	worker__idle_wait(w);
	CU_ASSERT_EQUAL(read(efd, &v, sizeof(v)), -1);
	CU_ASSERT_PTR_EQUAL(atomic_load(&w->snap_req), q);
	close(efd);
	free(q);
	free(w);
	free(d);
}

static int arms;

/* Work is waiting: the worker must not sleep at all. */
static bool arm_busy(void *ctx)
{
	arms++;
	return false;
}

/*
 * With coalesce_usecs, a small burst is followed by a fixed nap; not while
 * a service waits on a descriptor (an app slot with packets out): then the
 * worker arms the wait and sleeps on it, woken as soon as the app answers.
 */
static void test_no_nap_while_waiting(void)
{
	struct ferry_daemon *d = calloc(1, sizeof(*d));
	struct ferry_worker *w = aligned_alloc(64, (sizeof(*w) + 63) & ~63ul);
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	CU_ASSERT_FATAL(d && w && efd >= 0);
	memset(w, 0, sizeof(*w));
	d->park_fd = -1;
	w->d = d;
	atomic_store(&w->control_fd, -1);
	w->coalesce_ns = 50000;
	w->small_bursts = true;
	arms = 0;
	ferry_worker__wait_fd(w, efd, 1, arm_busy, NULL);
	/*
	 * First the yield to the application (test_yield_before_waiting): it
	 * counts as the burst's pause, no nap after the application's answer.
	 */
	worker__sleep(w);
	CU_ASSERT_EQUAL(arms, 0);
	CU_ASSERT_FALSE(w->small_bursts);
	w->small_bursts = true;
	worker__sleep(w);
	CU_ASSERT_EQUAL(arms, 1);
	CU_ASSERT_FALSE(w->small_bursts);
	/* Nothing waited on: the nap, which arms nothing. */
	w->nr_waits = 0;
	w->small_bursts = true;
	worker__sleep(w);
	CU_ASSERT_EQUAL(arms, 1);
	close(efd);
	free(w);
	free(d);
}

static bool arm_idle(void *ctx)
{
	arms++;
	return true;
}

/*
 * Packets out at an application: the worker yields its CPU once before it
 * asks for a wake-up, so an application on the same CPU answers without
 * one; the next time round it arms the wait and sleeps on it.  Each sleep
 * yields afresh.
 */
static void test_yield_before_waiting(void)
{
	struct ferry_daemon *d = calloc(1, sizeof(*d));
	struct ferry_worker *w = aligned_alloc(64, (sizeof(*w) + 63) & ~63ul);
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	uint64_t one = 1;

	CU_ASSERT_FATAL(d && w && efd >= 0);
	memset(w, 0, sizeof(*w));
	d->park_fd = -1;
	w->d = d;
	atomic_store(&w->control_fd, -1);
	arms = 0;
	ferry_worker__wait_fd(w, efd, 1, arm_idle, NULL);
	w->wake_ns = 0;
	worker__sleep(w);
	CU_ASSERT_EQUAL(arms, 0);
	CU_ASSERT_TRUE(w->yielded);
	/* The services are ticked at once: the answer is taken without a sleep. */
	CU_ASSERT_EQUAL(w->wake_ns, 1);
	/* Still waiting: armed and slept on (the eventfd ends the sleep). */
	CU_ASSERT_EQUAL(write(efd, &one, sizeof(one)), (ssize_t)sizeof(one));
	worker__sleep(w);
	CU_ASSERT_EQUAL(arms, 1);
	CU_ASSERT_FALSE(w->yielded);
	/* A new wait: yielded to again. */
	worker__sleep(w);
	CU_ASSERT_EQUAL(arms, 1);
	CU_ASSERT_TRUE(w->yielded);
	/* Nothing waited on: no yield, the plain idle wait (the 1 ns budget ends it). */
	w->nr_waits = 0;
	w->yielded = false;
	w->wake_ns = 1;
	worker__sleep(w);
	CU_ASSERT_FALSE(w->yielded);
	close(efd);
	free(w);
	free(d);
}

static CU_TestInfo sessions_tests[] = {
	{ "100000 sessions listed in chunks, each once", test_whole_table },
	{ "flow and address filters", test_filters },
	{ "churn between chunks: no session twice, every one that stayed once", test_churn },
	{ "nat_table__next looks at `limit` slots at most", test_next_bound },
	{ "an idle worker empties the control doorbell and ticks its services", test_doorbell_drained },
	{ "no coalescing nap while a service waits on its descriptor", test_no_nap_while_waiting },
	{ "one yield to the application before sleeping on its descriptor", test_yield_before_waiting },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(sessions, "sessions listing", sessions_tests, NULL, NULL);
