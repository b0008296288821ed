// SPDX-License-Identifier: BSD-2-Clause
/*
 * The fanout service through the real chain runner with a kernel for next
 * hops (harness__create_net, so root): every datagram of a burst reaches
 * every subscriber, each delivery read back from its bytes with checksums
 * verified from scratch: from the egress address towards that subscriber,
 * the producer's source port, the subscriber's MAC, the payload untouched.
 * Also the per-subscriber counters, copies that find no frame (no_frame,
 * the first subscriber still served), config errors, and every UMEM frame
 * accounted for.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "svc_harness.h"
#include "svc_out.h"
#include "umem.h"
#include "unit.h"
#include "worker.h"

#define MATCH4 "{protocol: udp, destination: 198.18.1.1, port: 5000}"
#define MATCH6 "{protocol: udp, destination: fd00:1::1, port: 5000}"
#define BURST 40

struct sub {
	const char *addr;
	uint16_t port;
	const char *egress;
};

static const struct sub subs4[] = {
	{ "198.18.2.2", 6000, "198.18.2.1" },
	{ "198.18.3.2", 6000, "198.18.3.1" },
	{ "198.18.3.3", 6001, "198.18.3.1" },
};

static void fill(uint8_t *buf, uint32_t len, uint32_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 37 + i * 11 + (i >> 8));
}

static uint32_t payload_len(int i)
{
	return 1 + (uint32_t)i * 37 % 1400;
}

static uint64_t counter(struct svc_harness *h, int i)
{
	uint64_t c[FERRY_SERVICE_COUNTERS] = {};

	harness__service_counters(h, 0, c);
	return c[i];
}

/* Every subscriber got every datagram once, intact, in order. */
static void check_deliveries(struct svc_harness *h, const struct sub *subs, int nr, int burst,
			     uint16_t sport)
{
	static uint8_t payload[1500];
	uint8_t port_mac[6];
	int next[4] = {};

	harness__port_mac(1, port_mac);
	CU_ASSERT_EQUAL_FATAL(harness__nr_out(h), (uint32_t)(nr * burst));
	for (uint32_t i = 0; i < harness__nr_out(h); i++) {
		struct svc_out o;
		int s;

		CU_ASSERT_EQUAL_FATAL(svc_out_read(harness__out(h, i), &o), 0);
		for (s = 0; s < nr; s++)
			if (!strcmp(o.dst, subs[s].addr) && o.dport == subs[s].port)
				break;
		CU_ASSERT_FATAL(s < nr);
		CU_ASSERT(o.csum_ok);
		CU_ASSERT_STRING_EQUAL(o.src, subs[s].egress);
		CU_ASSERT_EQUAL(o.sport, sport);
		CU_ASSERT_EQUAL(o.ttl, 63);
		CU_ASSERT(svc_out_mac_of(o.dst_mac, subs[s].addr));
		CU_ASSERT_EQUAL(memcmp(o.src_mac, port_mac, 6), 0);
		/* Datagram k of the burst, for this subscriber: they leave in order. */
		CU_ASSERT_FATAL(next[s] < burst);
		fill(payload, payload_len(next[s]), (uint32_t)next[s]);
		CU_ASSERT_EQUAL(o.payload_len, payload_len(next[s]));
		CU_ASSERT_EQUAL(memcmp(o.payload, payload, o.payload_len), 0);
		next[s]++;
	}
	for (int s = 0; s < nr; s++)
		CU_ASSERT_EQUAL(next[s], burst);
}

static void make_burst(uint8_t (*bufs)[1600], const uint8_t **frames, uint32_t *lens, int n,
		       bool v6)
{
	static uint8_t payload[1500];

	for (int i = 0; i < n; i++) {
		fill(payload, payload_len(i), (uint32_t)i);
		if (v6)
			lens[i] = harness__udp6(bufs[i], "fd00:1::2", 7777, "fd00:1::1", 5000,
						payload, payload_len(i));
		else
			lens[i] = harness__udp4(bufs[i], "198.18.1.2", 7777, "198.18.1.1", 5000,
						payload, payload_len(i));
		frames[i] = bufs[i];
	}
}

static void test_every_subscriber_ipv4(void)
{
	static uint8_t bufs[BURST][1600];
	const uint8_t *frames[BURST];
	uint32_t lens[BURST];
	struct svc_harness *h;

	if (unit_require_root())
		return;
	h = harness__create_net(MATCH4, "[ {fanout: {subscribers: [198.18.2.2:6000, "
					"198.18.3.2:6000, 198.18.3.3:6001]}} ]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	make_burst(bufs, frames, lens, BURST, false);
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, BURST), BURST);
	check_deliveries(h, subs4, 3, BURST, 7777);
	/* The originals went to subscriber 0, two copies each to the others. */
	CU_ASSERT_EQUAL(harness__svc_stats(h, 0)->sent, BURST);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 0)->emitted, 2 * BURST);
	CU_ASSERT_EQUAL(counter(h, 0), BURST);
	CU_ASSERT_EQUAL(counter(h, 1), BURST);
	CU_ASSERT_EQUAL(counter(h, 2), BURST);
	CU_ASSERT_EQUAL(counter(h, 3), 0);
	/* One-way: no reply rule, no session. */
	CU_ASSERT_EQUAL(harness__worker(h)->d->nr_rules, 0);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->sessions_created, 0);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	CU_ASSERT_EQUAL(harness__held_frames(h), 0);
	harness__destroy(h);
}

static void test_every_subscriber_ipv6(void)
{
	static const struct sub subs6[] = {
		{ "fd00:3::2", 6000, "fd00:3::1" },
		{ "fd00:2::9", 6100, "fd00:2::1" },
	};
	static uint8_t bufs[BURST][1600];
	const uint8_t *frames[BURST];
	uint32_t lens[BURST];
	struct svc_harness *h;

	if (unit_require_root())
		return;
	h = harness__create_net(MATCH6, "[ {fanout: {subscribers: ['[fd00:3::2]:6000', "
					"'[fd00:2::9]:6100']}} ]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	make_burst(bufs, frames, lens, BURST, true);
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, BURST), BURST);
	check_deliveries(h, subs6, 2, BURST, 7777);
	CU_ASSERT_EQUAL(counter(h, 0), BURST);
	CU_ASSERT_EQUAL(counter(h, 1), BURST);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__destroy(h);
}

/* One subscriber: the original itself, no copy. */
static void test_one_subscriber(void)
{
	static uint8_t bufs[4][1600];
	const uint8_t *frames[4];
	uint32_t lens[4];
	struct svc_harness *h;

	if (unit_require_root())
		return;
	h = harness__create_net(MATCH4, "[ {fanout: {subscribers: [198.18.2.2:6000]}} ]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	make_burst(bufs, frames, lens, 4, false);
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 4), 4);
	check_deliveries(h, subs4, 1, 4, 7777);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 0)->emitted, 0);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__destroy(h);
}

/* No frame for the copies: each is a no_frame drop; subscriber 0 still gets everything. */
static void test_pool_exhausted(void)
{
	static uint8_t bufs[8][1600];
	static uint64_t grabbed[4096];
	const uint8_t *frames[8];
	uint32_t lens[8], n = 0;
	struct svc_harness *h;
	struct umem *u;

	if (unit_require_root())
		return;
	h = harness__create_net(MATCH4, "[ {fanout: {subscribers: [198.18.2.2:6000, "
					"198.18.3.2:6000, 198.18.3.3:6001]}} ]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	u = harness__worker(h)->umem;
	make_burst(bufs, frames, lens, 8, false);
	/* One frame beyond the burst's own: one copy is made, 15 are not. */
	while (u->nr_free > 9 && umem__alloc(u, &grabbed[n]))
		n++;
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 8), 8);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_no_frame, 15);
	CU_ASSERT_EQUAL(harness__nr_out(h), 9);
	CU_ASSERT_EQUAL(counter(h, 0), 8);
	CU_ASSERT_EQUAL(counter(h, 1) + counter(h, 2), 1);
	for (uint32_t i = 0; i < n; i++)
		umem__free(u, grabbed[i]);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	CU_ASSERT_EQUAL(harness__held_frames(h), 0);
	harness__destroy(h);
}

static void test_config_errors(void)
{
	CU_ASSERT_PTR_NULL(harness__create("[ {fanout: {}} ]"));
	CU_ASSERT_PTR_NULL(harness__create("[ fanout ]"));
	CU_ASSERT_PTR_NULL(harness__create("[ {fanout: {subscribers: []}} ]"));
	CU_ASSERT_PTR_NULL(harness__create("[ {fanout: {subscribers: [198.18.2.2:6000, "
					   "198.18.2.2:6000]}} ]"));
	CU_ASSERT_PTR_NULL(harness__create("[ {fanout: {subscribers: [198.18.2.2:1, "
					   "198.18.2.2:2, 198.18.2.2:3, 198.18.2.2:4, "
					   "198.18.2.2:5]}} ]"));
	CU_ASSERT_PTR_NULL(harness__create("[ {fanout: {subscribers: ['[fd00:2::2]:6000']}} ]"));
	/* A TCP connection cannot be fanned out. */
	CU_ASSERT_PTR_NULL(harness__create_match("{protocol: tcp, destination: 198.18.1.1, "
						 "port: 5000}",
						 "[ {fanout: {subscribers: [198.18.2.2:6000]}} ]"));
}

static CU_TestInfo fanout_tests[] = {
	{ "IPv4: every datagram to every subscriber, intact", test_every_subscriber_ipv4 },
	{ "IPv6", test_every_subscriber_ipv6 },
	{ "one subscriber: no copy", test_one_subscriber },
	{ "pool exhausted: no_frame, subscriber 0 served", test_pool_exhausted },
	{ "config errors", test_config_errors },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(svc_fanout, "svc_fanout", fanout_tests, NULL, NULL)
