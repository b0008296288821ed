// SPDX-License-Identifier: BSD-2-Clause
/*
 * The hand-off rings between workers (daemon/handoff.c): order, a full ring,
 * wrap-around, a producer and a consumer thread racing over a small ring
 * (every item arrives once, intact and in order), the doorbells of sleeping
 * workers, and the NAT-port ownership the workers hand off by.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "handoff.h"
#include "unit.h"

#define STRESS_ITEMS 200000u
#define STRESS_SLOTS 64u
#define STRESS_MAX_LEN 300u
#define STRESS_SECONDS 60

static uint64_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

/* Item `seq`: a length and bytes that both follow from seq. */
static uint32_t item_len(uint32_t seq)
{
	return 1 + seq * 7919u % STRESS_MAX_LEN;
}

static void item_fill(uint8_t *buf, uint32_t seq)
{
	for (uint32_t i = 0; i < item_len(seq); i++)
		buf[i] = (uint8_t)(seq * 31u + i);
}

static bool item_ok(const uint8_t *buf, uint32_t len, uint32_t seq)
{
	if (len != item_len(seq))
		return false;
	for (uint32_t i = 0; i < len; i++)
		if (buf[i] != (uint8_t)(seq * 31u + i))
			return false;
	return true;
}

static void test_push_pop_order(void)
{
	struct handoff_ring *r = NULL;
	uint8_t buf[STRESS_MAX_LEN];
	const void *data;
	uint32_t len;
	uint64_t tag;

	CU_ASSERT_EQUAL_FATAL(handoff_ring__create(&r, 8, STRESS_MAX_LEN), 0);
	CU_ASSERT_EQUAL(handoff_ring__capacity(r), 8);
	CU_ASSERT_PTR_NULL(handoff_ring__peek(r, &len, &tag));
	CU_ASSERT_TRUE(handoff_ring__empty(r));
	for (uint32_t seq = 0; seq < 5; seq++) {
		item_fill(buf, seq);
		CU_ASSERT_EQUAL(handoff_ring__push(r, buf, item_len(seq), 1000 + seq), 0);
	}
	CU_ASSERT_FALSE(handoff_ring__empty(r));
	for (uint32_t seq = 0; seq < 5; seq++) {
		data = handoff_ring__peek(r, &len, &tag);
		CU_ASSERT_PTR_NOT_NULL_FATAL(data);
		CU_ASSERT_EQUAL(tag, 1000 + seq);
		CU_ASSERT_TRUE(item_ok(data, len, seq));
		/* Peeking again gives the same entry until it is popped. */
		CU_ASSERT_PTR_EQUAL(handoff_ring__peek(r, &len, &tag), data);
		handoff_ring__pop(r);
	}
	CU_ASSERT_PTR_NULL(handoff_ring__peek(r, &len, &tag));
	CU_ASSERT_TRUE(handoff_ring__empty(r));
	/* A zero-length entry is still an entry. */
	CU_ASSERT_EQUAL(handoff_ring__push(r, buf, 0, 7), 0);
	CU_ASSERT_PTR_NOT_NULL(handoff_ring__peek(r, &len, &tag));
	CU_ASSERT_EQUAL(len, 0);
	handoff_ring__pop(r);
	handoff_ring__destroy(r);
}

static void test_bad_arguments(void)
{
	struct handoff_ring *r = NULL;
	uint8_t buf[65] = { 0 };

	CU_ASSERT_EQUAL(handoff_ring__create(&r, 0, 64), -EINVAL);
	CU_ASSERT_EQUAL(handoff_ring__create(&r, 48, 64), -EINVAL);
	CU_ASSERT_EQUAL(handoff_ring__create(&r, 64, 0), -EINVAL);
	CU_ASSERT_EQUAL_FATAL(handoff_ring__create(&r, 4, 64), 0);
	CU_ASSERT_EQUAL(handoff_ring__push(r, buf, 65, 0), -EMSGSIZE);
	CU_ASSERT_EQUAL(handoff_ring__push(r, buf, 64, 0), 0);
	handoff_ring__destroy(r);
	handoff_ring__destroy(NULL);
}

static void test_full_ring(void)
{
	struct handoff_ring *r = NULL;
	uint8_t buf[STRESS_MAX_LEN];
	uint32_t len;
	uint64_t tag;

	CU_ASSERT_EQUAL_FATAL(handoff_ring__create(&r, 4, STRESS_MAX_LEN), 0);
	for (uint32_t seq = 0; seq < 4; seq++) {
		item_fill(buf, seq);
		CU_ASSERT_EQUAL(handoff_ring__push(r, buf, item_len(seq), seq), 0);
	}
	item_fill(buf, 4);
	CU_ASSERT_EQUAL(handoff_ring__push(r, buf, item_len(4), 4), -ENOBUFS);
	CU_ASSERT_EQUAL(handoff_ring__push(r, buf, item_len(4), 4), -ENOBUFS);
	/* A refused push changed nothing: the oldest is still item 0. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(handoff_ring__peek(r, &len, &tag));
	CU_ASSERT_EQUAL(tag, 0);
	handoff_ring__pop(r);
	/* One slot free again: exactly one push fits. */
	CU_ASSERT_EQUAL(handoff_ring__push(r, buf, item_len(4), 4), 0);
	CU_ASSERT_EQUAL(handoff_ring__push(r, buf, item_len(5), 5), -ENOBUFS);
	for (uint32_t seq = 1; seq <= 4; seq++) {
		const void *data = handoff_ring__peek(r, &len, &tag);

		CU_ASSERT_PTR_NOT_NULL_FATAL(data);
		CU_ASSERT_EQUAL(tag, seq);
		CU_ASSERT_TRUE(item_ok(data, len, seq));
		handoff_ring__pop(r);
	}
	CU_ASSERT_PTR_NULL(handoff_ring__peek(r, &len, &tag));
	handoff_ring__destroy(r);
}

/* Many laps around a small ring, at every fill level from empty to full. */
static void test_wrap_around(void)
{
	struct handoff_ring *r = NULL;
	uint8_t buf[STRESS_MAX_LEN];
	uint32_t pushed = 0, popped = 0, len;
	uint64_t tag;

	CU_ASSERT_EQUAL_FATAL(handoff_ring__create(&r, 8, STRESS_MAX_LEN), 0);
	for (uint32_t round = 0; round < 500; round++) {
		uint32_t fill = round % 9; /* 0..8 entries in flight */

		while (pushed - popped < fill) {
			item_fill(buf, pushed);
			CU_ASSERT_EQUAL_FATAL(handoff_ring__push(r, buf, item_len(pushed), pushed),
					      0);
			pushed++;
		}
		if (fill == 8) {
			CU_ASSERT_EQUAL(handoff_ring__push(r, buf, 1, 0), -ENOBUFS);
		}
		while (popped < pushed) {
			const void *data = handoff_ring__peek(r, &len, &tag);

			CU_ASSERT_PTR_NOT_NULL_FATAL(data);
			CU_ASSERT_EQUAL_FATAL(tag, popped);
			CU_ASSERT_TRUE_FATAL(item_ok(data, len, popped));
			handoff_ring__pop(r);
			popped++;
		}
	}
	/* 500 rounds of 0..8 entries went around the 8 slots hundreds of times. */
	CU_ASSERT_TRUE(pushed > 100 * 8);
	CU_ASSERT_TRUE(handoff_ring__empty(r));
	handoff_ring__destroy(r);
}

struct stress {
	struct handoff_ring *r;
	uint64_t deadline_s;
	uint32_t pushed;
	uint32_t full_retries;
	bool timed_out;
};

static void *stress_producer(void *arg)
{
	struct stress *st = arg;
	uint8_t buf[STRESS_MAX_LEN];

	for (uint32_t seq = 0; seq < STRESS_ITEMS; seq++) {
		item_fill(buf, seq);
		while (handoff_ring__push(st->r, buf, item_len(seq), seq) == -ENOBUFS) {
			st->full_retries++;
			if (mono_s() > st->deadline_s) {
				st->timed_out = true;
				return NULL;
			}
			sched_yield();
		}
		st->pushed = seq + 1;
	}
	return NULL;
}

static void test_two_thread_stress(void)
{
	struct stress st = { .deadline_s = mono_s() + STRESS_SECONDS };
	uint32_t next = 0, bad = 0, len;
	pthread_t producer;
	uint64_t tag;

	CU_ASSERT_EQUAL_FATAL(handoff_ring__create(&st.r, STRESS_SLOTS, STRESS_MAX_LEN), 0);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&producer, NULL, stress_producer, &st), 0);
	while (next < STRESS_ITEMS && mono_s() <= st.deadline_s) {
		const void *data = handoff_ring__peek(st.r, &len, &tag);

		if (!data) {
			sched_yield();
			continue;
		}
		/* Every item once, in order, with its own bytes. */
		if (tag != next || !item_ok(data, len, next))
			bad++;
		handoff_ring__pop(st.r);
		next++;
	}
	pthread_join(producer, NULL);
	CU_ASSERT_FALSE(st.timed_out);
	CU_ASSERT_EQUAL(next, STRESS_ITEMS);
	CU_ASSERT_EQUAL(st.pushed, STRESS_ITEMS);
	CU_ASSERT_EQUAL(bad, 0);
	/* Nothing extra: the ring is empty once everything arrived. */
	CU_ASSERT_PTR_NULL(handoff_ring__peek(st.r, &len, &tag));
	handoff_ring__destroy(st.r);
}

static void test_slots_for(void)
{
	/* Two workers share the whole budget; many share it, but keep two bursts. */
	CU_ASSERT_EQUAL(handoff__slots_for(2, 64), HANDOFF_SLOTS_PER_WORKER);
	CU_ASSERT_EQUAL(handoff__slots_for(3, 64), 512);
	CU_ASSERT_EQUAL(handoff__slots_for(5, 64), 256);
	CU_ASSERT_EQUAL(handoff__slots_for(64, 64), 128);
	CU_ASSERT_EQUAL(handoff__slots_for(64, 1), HANDOFF_MIN_SLOTS);
	CU_ASSERT_EQUAL(handoff__slots_for(64, 256), 512);
	for (uint32_t n = 2; n <= 64; n++) {
		uint32_t s = handoff__slots_for(n, 100);

		CU_ASSERT_TRUE(s >= 200 && !(s & (s - 1)));
	}
}

static bool readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

static void test_doorbells(void)
{
	struct handoff *h = NULL;
	uint8_t buf[16] = { 0 };

	CU_ASSERT_EQUAL(handoff__create(&h, 1, 2048, 64), -EINVAL);
	CU_ASSERT_EQUAL(handoff__create(&h, 65, 2048, 64), -EINVAL);
	CU_ASSERT_EQUAL_FATAL(handoff__create(&h, 3, 2048, 64), 0);
	for (uint32_t from = 0; from < 3; from++) {
		for (uint32_t to = 0; to < 3; to++) {
			if (from == to) {
				CU_ASSERT_PTR_NULL(handoff__ring(h, from, to));
			} else {
				CU_ASSERT_PTR_NOT_NULL(handoff__ring(h, from, to));
			}
		}
	}
	CU_ASSERT_PTR_NOT_EQUAL(handoff__ring(h, 0, 1), handoff__ring(h, 1, 0));
	CU_ASSERT_EQUAL(handoff_ring__capacity(handoff__ring(h, 0, 1)), 512);

	/* Awake worker: a hand-off rings nothing. */
	CU_ASSERT_EQUAL(handoff_ring__push(handoff__ring(h, 0, 1), buf, sizeof(buf), 0), 0);
	handoff__notify(h, 1);
	CU_ASSERT_FALSE(readable(handoff__doorbell_fd(h, 1)));
	/* Something is waiting: it must not go to sleep. */
	CU_ASSERT_FALSE(handoff__prepare_sleep(h, 1));
	handoff_ring__pop(handoff__ring(h, 0, 1));

	/* Asleep with empty rings: the next hand-off rings, once. */
	CU_ASSERT_TRUE(handoff__prepare_sleep(h, 1));
	CU_ASSERT_EQUAL(handoff_ring__push(handoff__ring(h, 2, 1), buf, sizeof(buf), 0), 0);
	handoff__notify(h, 1);
	CU_ASSERT_TRUE(readable(handoff__doorbell_fd(h, 1)));
	CU_ASSERT_FALSE(readable(handoff__doorbell_fd(h, 0)));
	handoff__notify(h, 1);
	handoff__awake(h, 1, true);
	CU_ASSERT_FALSE(readable(handoff__doorbell_fd(h, 1)));
	handoff_ring__pop(handoff__ring(h, 2, 1));

	/* Woken for another reason: later hand-offs ring nothing. */
	CU_ASSERT_TRUE(handoff__prepare_sleep(h, 1));
	handoff__awake(h, 1, false);
	handoff__notify(h, 1);
	CU_ASSERT_FALSE(readable(handoff__doorbell_fd(h, 1)));
	handoff__destroy(h);
	handoff__destroy(NULL);
}

/* Every NAT port has exactly one owner: the worker whose slice holds it. */
static void test_nat_owner(void)
{
	static const struct {
		uint16_t lo, hi;
		uint32_t workers;
	} cases[] = {
		{ 40000, 40999, 1 }, { 40000, 40999, 2 }, { 40000, 40999, 3 }, { 32768, 60999, 7 },
		{ 1, 65535, 64 },    { 5000, 5063, 64 },  { 5000, 5001, 2 },   { 65534, 65535, 2 },
	};
	struct ferry_daemon *d = calloc(1, sizeof(*d));

	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		uint32_t next = cases[c].lo;
		uint16_t lo, hi;

		d->cfg.nat.ports.lo = cases[c].lo;
		d->cfg.nat.ports.hi = cases[c].hi;
		d->nr_workers = cases[c].workers;
		/* The slices tile the range in worker order. */
		for (uint32_t id = 0; id < d->nr_workers; id++) {
			worker__nat_slice(d, id, &lo, &hi);
			CU_ASSERT_EQUAL(lo, next);
			CU_ASSERT_TRUE(lo <= hi);
			for (uint32_t port = lo; port <= hi; port++)
				CU_ASSERT_EQUAL(worker__nat_owner(d, (uint16_t)port), (int)id);
			next = (uint32_t)hi + 1;
		}
		CU_ASSERT_EQUAL(next, (uint32_t)cases[c].hi + 1);
		if (cases[c].lo > 0) {
			CU_ASSERT_EQUAL(worker__nat_owner(d, (uint16_t)(cases[c].lo - 1)), -ENOENT);
		}
		if (cases[c].hi < 65535) {
			CU_ASSERT_EQUAL(worker__nat_owner(d, (uint16_t)(cases[c].hi + 1)), -ENOENT);
		}
	}
	free(d);
}

static CU_TestInfo handoff_tests[] = {
	{ "push and pop keep order, bytes and tags", test_push_pop_order },
	{ "bad sizes are refused", test_bad_arguments },
	{ "a full ring refuses, then takes one per pop", test_full_ring },
	{ "wrap-around at every fill level", test_wrap_around },
	{ "two threads: every item once, intact, in order", test_two_thread_stress },
	{ "slots per ring", test_slots_for },
	{ "doorbells wake only sleeping workers", test_doorbells },
	{ "every NAT port has one owner", test_nat_owner },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(handoff, "handoff", handoff_tests, NULL, NULL)
