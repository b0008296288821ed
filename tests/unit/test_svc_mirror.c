// SPDX-License-Identifier: BSD-2-Clause
/*
 * The mirror service through the real chain runner, in front of the real
 * forward, with a kernel for next hops (harness__create_net, so root): each
 * client packet leaves once upstream and once per destination; each copy is
 * read back from its bytes with checksums verified from scratch, addressed
 * from the egress address with the client's source port, with the
 * destination's MAC and the payload untouched.  Also: copies that find no
 * frame are counted as no_frame and never cost the original, replies are
 * not copied, config errors, and every UMEM frame accounted for.
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

static void fill(uint8_t *buf, uint32_t len, uint32_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 131 + i * 7);
}

static struct svc_harness *make4(const char *mirror_to)
{
	char yaml[512];
	struct svc_harness *h;

	snprintf(yaml, sizeof(yaml),
		 "[ {mirror: {to: %s}}, {forward: {upstream: 198.18.2.2:6000}} ]", mirror_to);
	h = harness__create_net(MATCH4, yaml);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	return h;
}

static uint64_t counter(struct svc_harness *h, int i)
{
	uint64_t c[FERRY_SERVICE_COUNTERS] = {};

	harness__service_counters(h, 0, c);
	return c[i];
}

/* Finds the output addressed to dst:dport; NULL when none or several. */
static const struct harness_out *find_out(struct svc_harness *h, const char *dst, uint16_t dport,
					  uint32_t from, struct svc_out *out)
{
	const struct harness_out *found = NULL;

	for (uint32_t i = from; i < harness__nr_out(h); i++) {
		struct svc_out o;

		if (svc_out_read(harness__out(h, i), &o) || strcmp(o.dst, dst) || o.dport != dport)
			continue;
		if (found)
			return NULL;
		found = harness__out(h, i);
		*out = o;
	}
	return found;
}

/* A copy from `src`:sport to dst:dport with the client's payload, leaving on h-out. */
static void check_copy(struct svc_harness *h, const char *src, uint16_t sport, const char *dst,
		       uint16_t dport, const uint8_t *payload, uint32_t len, uint32_t from)
{
	uint8_t port_mac[6];
	struct svc_out o;

	harness__port_mac(1, port_mac);
	CU_ASSERT_PTR_NOT_NULL_FATAL(find_out(h, dst, dport, from, &o));
	CU_ASSERT(o.csum_ok);
	CU_ASSERT_STRING_EQUAL(o.src, src);
	CU_ASSERT_EQUAL(o.sport, sport);
	CU_ASSERT_EQUAL(o.ttl, 63);
	CU_ASSERT_EQUAL(o.port, 1);
	CU_ASSERT(svc_out_mac_of(o.dst_mac, dst));
	CU_ASSERT_EQUAL(memcmp(o.src_mac, port_mac, 6), 0);
	CU_ASSERT_EQUAL_FATAL(o.payload_len, len);
	CU_ASSERT_EQUAL(memcmp(o.payload, payload, len), 0);
}

static void test_copies_ipv4(void)
{
	uint8_t frame[2048], payload[700];
	const uint8_t *frames[1] = { frame };
	uint32_t lens[1];
	struct svc_harness *h;
	struct svc_out o;

	if (unit_require_root())
		return;
	h = make4("[198.18.3.2:7000, 198.18.3.3:7001, 198.18.2.3:7002]");
	fill(payload, sizeof(payload), 1);
	lens[0] = harness__udp4(frame, "198.18.1.2", 1234, "198.18.1.1", 5000, payload,
				sizeof(payload));
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 1), 1);
	CU_ASSERT_EQUAL_FATAL(harness__nr_out(h), 4);
	check_copy(h, "198.18.3.1", 1234, "198.18.3.2", 7000, payload, sizeof(payload), 0);
	check_copy(h, "198.18.3.1", 1234, "198.18.3.3", 7001, payload, sizeof(payload), 0);
	check_copy(h, "198.18.2.1", 1234, "198.18.2.3", 7002, payload, sizeof(payload), 0);
	/* The original went on to forward, unchanged by mirror. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(find_out(h, "198.18.2.2", 6000, 0, &o));
	CU_ASSERT(o.csum_ok);
	CU_ASSERT_STRING_EQUAL(o.src, "198.18.2.1");
	CU_ASSERT(o.sport >= 40000 && o.sport <= 40999);
	CU_ASSERT_EQUAL(memcmp(o.payload, payload, sizeof(payload)), 0);

	CU_ASSERT_EQUAL(harness__svc_stats(h, 0)->packets_in, 1);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 0)->passed, 1);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 0)->emitted, 3);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 1)->packets_in, 1);
	CU_ASSERT_EQUAL(counter(h, 0), 1);
	CU_ASSERT_EQUAL(counter(h, 1), 1);
	CU_ASSERT_EQUAL(counter(h, 2), 1);
	CU_ASSERT_EQUAL(counter(h, 3), 0);
	/* No reply rule: copies are one-way; only forward's rule exists. */
	CU_ASSERT_EQUAL(harness__worker(h)->d->nr_rules, 1);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	CU_ASSERT_EQUAL(harness__held_frames(h), 0);
	harness__destroy(h);
}

static void test_copies_ipv6(void)
{
	uint8_t frame[2048], payload[300];
	const uint8_t *frames[1] = { frame };
	uint32_t lens[1];
	struct svc_harness *h;
	struct svc_out o;

	if (unit_require_root())
		return;
	h = harness__create_net(MATCH6, "[ {mirror: {to: ['[fd00:3::2]:7000']}}, "
					"{forward: {upstream: '[fd00:2::2]:6000'}} ]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	fill(payload, sizeof(payload), 2);
	lens[0] = harness__udp6(frame, "fd00:1::2", 4321, "fd00:1::1", 5000, payload,
				sizeof(payload));
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 1), 1);
	CU_ASSERT_EQUAL_FATAL(harness__nr_out(h), 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(find_out(h, "fd00:3::2", 7000, 0, &o));
	CU_ASSERT(o.csum_ok);
	CU_ASSERT_STRING_EQUAL(o.src, "fd00:3::1");
	CU_ASSERT_EQUAL(o.sport, 4321);
	CU_ASSERT_EQUAL(o.ttl, 63);
	CU_ASSERT(svc_out_mac_of(o.dst_mac, "fd00:3::2"));
	CU_ASSERT_EQUAL(o.payload_len, sizeof(payload));
	CU_ASSERT_EQUAL(memcmp(o.payload, payload, sizeof(payload)), 0);
	CU_ASSERT_PTR_NOT_NULL(find_out(h, "fd00:2::2", 6000, 0, &o));
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__destroy(h);
}

/* Grabs all free frames but `keep`; the caller gives them back with give_back(). */
static uint32_t grab(struct svc_harness *h, uint64_t *addrs, uint32_t keep)
{
	struct umem *u = harness__worker(h)->umem;
	uint32_t n = 0;

	while (u->nr_free > keep && umem__alloc(u, &addrs[n]))
		n++;
	return n;
}

static void give_back(struct svc_harness *h, const uint64_t *addrs, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		umem__free(harness__worker(h)->umem, addrs[i]);
}

/* No frame for any copy: every copy is a no_frame drop, every original still goes. */
static void test_pool_exhausted(void)
{
	uint8_t frames_buf[8][256], payload[64];
	const uint8_t *frames[8];
	uint32_t lens[8], n;
	static uint64_t grabbed[4096];
	struct svc_harness *h;

	if (unit_require_root())
		return;
	h = make4("[198.18.3.2:7000, 198.18.3.3:7001]");
	for (int i = 0; i < 8; i++) {
		fill(payload, sizeof(payload), (uint32_t)i);
		lens[i] = harness__udp4(frames_buf[i], "198.18.1.2", (uint16_t)(2000 + i),
					"198.18.1.1", 5000, payload, sizeof(payload));
		frames[i] = frames_buf[i];
	}
	/* Exactly the 8 frames the burst arrives in stay free. */
	n = grab(h, grabbed, 8);
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 8), 8);
	CU_ASSERT_EQUAL(harness__nr_out(h), 8);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_no_frame, 16);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 0)->emitted, 0);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 0)->passed, 8);
	CU_ASSERT_EQUAL(counter(h, 0), 0);
	for (uint32_t i = 0; i < harness__nr_out(h); i++) {
		struct svc_out o;

		CU_ASSERT_EQUAL(svc_out_read(harness__out(h, i), &o), 0);
		CU_ASSERT_STRING_EQUAL(o.dst, "198.18.2.2");
	}
	give_back(h, grabbed, n);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);

	/* With frames again, copies are made again. */
	harness__clear_out(h);
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 8), 8);
	CU_ASSERT_EQUAL(harness__nr_out(h), 24);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_no_frame, 16);
	CU_ASSERT_EQUAL(counter(h, 0), 8);
	CU_ASSERT_EQUAL(counter(h, 1), 8);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__destroy(h);
}

/*
 * A burst larger than a chain run's emit budget (WORKER_MAX_EMIT): the
 * copies that do not fit are no_frame drops; originals and the copies made
 * all leave, and nothing leaks.
 */
static void test_emit_budget(void)
{
	static uint8_t frames_buf[100][128];
	const uint8_t *frames[100];
	uint32_t lens[100], made;
	uint8_t payload[32];
	struct svc_harness *h;

	if (unit_require_root())
		return;
	h = make4("[198.18.3.2:7000, 198.18.3.3:7001, 198.18.3.4:7002, 198.18.3.5:7003]");
	for (int i = 0; i < 100; i++) {
		fill(payload, sizeof(payload), (uint32_t)i);
		lens[i] = harness__udp4(frames_buf[i], "198.18.1.2", (uint16_t)(3000 + i),
					"198.18.1.1", 5000, payload, sizeof(payload));
		frames[i] = frames_buf[i];
	}
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 100), 100);
	made = WORKER_MAX_EMIT < 400 ? WORKER_MAX_EMIT : 400;
	CU_ASSERT_EQUAL(harness__svc_stats(h, 0)->emitted, made);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_no_frame, 400 - made);
	CU_ASSERT_EQUAL(harness__nr_out(h), 100 + made);
	CU_ASSERT_EQUAL(counter(h, 0) + counter(h, 1) + counter(h, 2) + counter(h, 3), made);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	CU_ASSERT_EQUAL(harness__held_frames(h), 0);
	harness__destroy(h);
}

/* Replies (a later service's reply rule) are not copied; a TTL of 1 copies nothing. */
static void test_replies_and_ttl(void)
{
	uint8_t frame[256], payload[40];
	const uint8_t *frames[1] = { frame };
	uint32_t lens[1];
	struct svc_harness *h;

	if (unit_require_root())
		return;
	h = make4("[198.18.3.2:7000]");
	fill(payload, sizeof(payload), 3);
	harness__set_dir(h, FERRY_DIR_REPLY);
	lens[0] = harness__udp4(frame, "198.18.2.2", 6000, "198.18.2.1", 40001, payload,
				sizeof(payload));
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 1), 1);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 0)->emitted, 0);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 0)->passed, 1);
	/* forward knows no such session */
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_no_session, 1);
	CU_ASSERT_EQUAL(harness__nr_out(h), 0);

	harness__set_dir(h, FERRY_DIR_CLIENT);
	lens[0] = harness__udp4(frame, "198.18.1.2", 1234, "198.18.1.1", 5000, payload,
				sizeof(payload));
	frame[14 + 8] = 1; /* TTL 1; the checksum no longer matters: nothing may leave */
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 1), 1);
	CU_ASSERT_EQUAL(harness__nr_out(h), 0);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_ttl_exceeded, 2);
	CU_ASSERT_EQUAL(counter(h, 0), 0);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__destroy(h);
}

/*
 * A destination whose neighbour nobody answers for: its copy waits in the
 * next-hop cache's hold queue (still "held" in the UMEM, the original gone
 * on), then leaves as a no_neighbour drop once the hold time is over.
 */
static void test_unresolved_destination(void)
{
	uint8_t frame[256], payload[40];
	const uint8_t *frames[1] = { frame };
	uint32_t lens[1];
	struct svc_harness *h;
	struct svc_out o;

	if (unit_require_root())
		return;
	/* .10 is on h-out's subnet, not a permanent neighbour: the kernel asks, nobody answers. */
	h = make4("[198.18.3.10:7000]");
	fill(payload, sizeof(payload), 4);
	lens[0] = harness__udp4(frame, "198.18.1.2", 1234, "198.18.1.1", 5000, payload,
				sizeof(payload));
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 1), 1);
	CU_ASSERT_EQUAL_FATAL(harness__nr_out(h), 1);
	CU_ASSERT_EQUAL(svc_out_read(harness__out(h, 0), &o), 0);
	CU_ASSERT_STRING_EQUAL(o.dst, "198.18.2.2");
	CU_ASSERT_EQUAL(harness__svc_stats(h, 0)->emitted, 1);
	CU_ASSERT_EQUAL(harness__held_frames(h), 1);
	CU_ASSERT_EQUAL(counter(h, 0), 1);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);

	/* Past the hold time (1 s on the worker's clock). */
	harness__tick(h, 1500ull * 1000 * 1000);
	harness__tick(h, 1500ull * 1000 * 1000);
	CU_ASSERT_EQUAL(harness__nr_out(h), 1);
	CU_ASSERT_EQUAL(harness__held_frames(h), 0);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_no_neighbour, 1);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__destroy(h);
}

static void test_config_errors(void)
{
	/* configure() alone: no namespace needed. */
	CU_ASSERT_PTR_NULL(harness__create("[ {mirror: {}} ]"));
	CU_ASSERT_PTR_NULL(harness__create("[ {mirror: {to: []}} ]"));
	CU_ASSERT_PTR_NULL(harness__create("[ {mirror: {to: 198.18.3.2:7000}} ]"));
	CU_ASSERT_PTR_NULL(harness__create("[ {mirror: {to: ['[fd00:3::2]:7000']}} ]"));
	CU_ASSERT_PTR_NULL(harness__create("[ {mirror: {to: [198.18.3.2:7000], x: 1}} ]"));
	CU_ASSERT_PTR_NULL(harness__create("[ {mirror: {to: [198.18.3.2:1, 198.18.3.2:2, "
					   "198.18.3.2:3, 198.18.3.2:4, 198.18.3.2:5]}} ]"));
}

static CU_TestInfo mirror_tests[] = {
	{ "IPv4 copies per destination, bytes and checksums", test_copies_ipv4 },
	{ "IPv6 copies", test_copies_ipv6 },
	{ "pool exhausted: copies counted no_frame, originals go", test_pool_exhausted },
	{ "emit budget of a chain run", test_emit_budget },
	{ "replies not copied; TTL 1", test_replies_and_ttl },
	{ "copy held for its neighbour, then dropped", test_unresolved_destination },
	{ "config errors", test_config_errors },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(svc_mirror, "svc_mirror", mirror_tests, NULL, NULL)
