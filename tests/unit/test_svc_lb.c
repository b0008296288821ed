// SPDX-License-Identifier: BSD-2-Clause
/*
 * lb: the Maglev table on its own (balance with and without weights,
 * independence of the configured order, minimal disruption when an upstream
 * is removed or added, counted entry by entry between two tables), then the
 * service through the real chain runner and the real NAT path with a kernel
 * for next hops (harness__create_net, so root): many client flows spread
 * over every upstream, each packet read back with checksums verified from
 * scratch, a flow stays on its upstream (its session, and the same tuple in
 * a fresh instance), replies come back to the client, one reply rule per
 * upstream, per-upstream counters, config errors, frame accounting.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "maglev.h"
#include "svc_harness.h"
#include "svc_out.h"
#include "unit.h"
#include "worker.h"

#define M 65537

static void backends(struct maglev_backend *b, uint32_t n, uint32_t first_id)
{
	for (uint32_t i = 0; i < n; i++) {
		uint64_t id = first_id + i;

		b[i].key = maglev_hash(&id, sizeof(id), 42);
		b[i].weight = 1;
	}
}

static void shares(const uint8_t *t, uint32_t *count, uint32_t n)
{
	memset(count, 0, n * sizeof(*count));
	for (uint32_t s = 0; s < M; s++)
		count[t[s]]++;
}

static void test_prime(void)
{
	CU_ASSERT(maglev_is_prime(2));
	CU_ASSERT(maglev_is_prime(7));
	CU_ASSERT(maglev_is_prime(65537));
	CU_ASSERT(maglev_is_prime(4194301));
	CU_ASSERT(!maglev_is_prime(0));
	CU_ASSERT(!maglev_is_prime(1));
	CU_ASSERT(!maglev_is_prime(65536));
	CU_ASSERT(!maglev_is_prime(65539 * 3));
	CU_ASSERT(!maglev_is_prime(4294967295u));
}

static void test_balance(void)
{
	static uint8_t t[M];
	struct maglev_backend b[8];
	uint32_t count[8], total = 0;

	for (uint32_t n = 1; n <= 8; n++) {
		backends(b, n, 100);
		CU_ASSERT_EQUAL_FATAL(maglev_build(t, M, b, n), 0);
		shares(t, count, n);
		/* Turn by turn: every share is M / n rounded either way. */
		for (uint32_t i = 0; i < n; i++)
			CU_ASSERT(count[i] == M / n || count[i] == M / n + 1);
	}
	/* Weights 1..8: shares in proportion, within a few entries of the ideal. */
	for (uint32_t i = 0; i < 8; i++) {
		b[i].weight = i + 1;
		total += i + 1;
	}
	CU_ASSERT_EQUAL_FATAL(maglev_build(t, M, b, 8), 0);
	shares(t, count, 8);
	for (uint32_t i = 0; i < 8; i++) {
		double ideal = (double)M * b[i].weight / total;

		CU_ASSERT(count[i] > ideal - 2 * b[i].weight - 1 &&
			  count[i] < ideal + 2 * b[i].weight + 1);
	}
}

/* The table is a function of the set: the configured order does not matter. */
static void test_order_independent(void)
{
	static uint8_t t1[M], t2[M];
	struct maglev_backend b[6], r[6];

	backends(b, 6, 7);
	b[2].weight = 3;
	for (int i = 0; i < 6; i++)
		r[i] = b[5 - i];
	CU_ASSERT_EQUAL_FATAL(maglev_build(t1, M, b, 6), 0);
	CU_ASSERT_EQUAL_FATAL(maglev_build(t2, M, r, 6), 0);
	for (uint32_t s = 0; s < M; s++)
		CU_ASSERT_EQUAL_FATAL(t1[s], 5 - t2[s]);
}

/*
 * Minimal disruption on removal, entry by entry: every entry of the removed
 * upstream moves (it must), spread over all the others; of the others'
 * entries almost none move.  With 8 upstreams and M = 65537 it is about 0.2%
 * of them (the test prints the count); the bound is 1% of the table.
 */
static void test_disruption_remove(void)
{
	static uint8_t before[M], after[M];
	struct maglev_backend b[8], rest[7];
	uint32_t map[7], moved_own = 0, moved_other = 0, got[8] = {};

	backends(b, 8, 1000);
	CU_ASSERT_EQUAL_FATAL(maglev_build(before, M, b, 8), 0);
	for (uint32_t removed = 0; removed < 8; removed++) {
		uint32_t n = 0;

		for (uint32_t i = 0; i < 8; i++) {
			if (i == removed)
				continue;
			map[n] = i;
			rest[n++] = b[i];
		}
		CU_ASSERT_EQUAL_FATAL(maglev_build(after, M, rest, 7), 0);
		moved_own = moved_other = 0;
		memset(got, 0, sizeof(got));
		for (uint32_t s = 0; s < M; s++) {
			uint32_t now = map[after[s]];

			if (before[s] == removed) {
				moved_own++;
				got[now]++;
			} else if (now != before[s]) {
				moved_other++;
			}
		}
		CU_ASSERT(moved_other < M / 100);
		/* The removed upstream's flows are shared out among all the others. */
		for (uint32_t i = 0; i < 8; i++)
			if (i != removed)
				CU_ASSERT(got[i] > moved_own / 7 / 2);
	}
	printf("\n    removing 1 of 8 upstreams moved %u entries of the others (%.2f%%) ",
	       moved_other, 100.0 * moved_other / (M - moved_own));
}

/* Adding one upstream: it takes its share, and almost only that moves. */
static void test_disruption_add(void)
{
	static uint8_t before[M], after[M];
	struct maglev_backend b[9];
	uint32_t to_new = 0, other = 0;

	backends(b, 9, 5000);
	CU_ASSERT_EQUAL_FATAL(maglev_build(before, M, b, 8), 0);
	CU_ASSERT_EQUAL_FATAL(maglev_build(after, M, b, 9), 0);
	for (uint32_t s = 0; s < M; s++) {
		if (after[s] == 8)
			to_new++;
		else if (after[s] != before[s])
			other++;
	}
	CU_ASSERT(to_new == M / 9 || to_new == M / 9 + 1);
	CU_ASSERT(other < M / 100);
}

static void test_build_rejects(void)
{
	static uint8_t t[M];
	struct maglev_backend b[2];

	backends(b, 2, 1);
	CU_ASSERT_EQUAL(maglev_build(t, 65536, b, 2), -EINVAL);
	CU_ASSERT_EQUAL(maglev_build(t, 5, b, 2), -EINVAL);
	CU_ASSERT_EQUAL(maglev_build(t, M, b, 0), -EINVAL);
	b[1].weight = 0;
	CU_ASSERT_EQUAL(maglev_build(t, M, b, 2), -EINVAL);
	b[1].weight = 1;
	b[1].key = b[0].key;
	CU_ASSERT_EQUAL(maglev_build(t, M, b, 2), -EINVAL);
}

/* ---- the service ---- */

#define MATCH4 "{protocol: udp, destination: 198.18.1.1, port: 5000}"
#define LB4                                                                                        \
	"[ {lb: {upstreams: [{address: 198.18.2.2:6000, weight: 1}, 198.18.2.3:6000, "           \
	"{address: 198.18.3.2:6000}, {address: 198.18.3.3:6001, weight: 1}]}} ]"
#define FLOWS 512

static const struct {
	const char *addr;
	uint16_t port;
	const char *egress;
} ups[4] = {
	{ "198.18.2.2", 6000, "198.18.2.1" },
	{ "198.18.2.3", 6000, "198.18.2.1" },
	{ "198.18.3.2", 6000, "198.18.3.1" },
	{ "198.18.3.3", 6001, "198.18.3.1" },
};

static int upstream_of(const struct svc_out *o)
{
	for (int u = 0; u < 4; u++)
		if (!strcmp(o->dst, ups[u].addr) && o->dport == ups[u].port)
			return u;
	return -1;
}

/*
 * Sends one datagram of each of FLOWS client flows (distinct source ports),
 * in bursts; checks every packet that leaves and records each flow's
 * upstream and NAT port.
 */
static void run_flows(struct svc_harness *h, int *up_of, uint16_t *nat_port, uint32_t *per_up)
{
	static uint8_t bufs[256][128];
	const uint8_t *frames[256];
	uint32_t lens[256];
	uint8_t payload[48];

	memset(per_up, 0, 4 * sizeof(*per_up));
	for (int base = 0; base < FLOWS; base += 256) {
		harness__clear_out(h);
		for (int i = 0; i < 256; i++) {
			memset(payload, base + i, sizeof(payload));
			lens[i] = harness__udp4(bufs[i], "198.18.1.2", (uint16_t)(10000 + base + i),
						"198.18.1.1", 5000, payload, sizeof(payload));
			frames[i] = bufs[i];
		}
		CU_ASSERT_EQUAL(harness__run(h, frames, lens, 256), 256);
		CU_ASSERT_EQUAL_FATAL(harness__nr_out(h), 256);
		for (int i = 0; i < 256; i++) {
			struct svc_out o;
			int u;

			CU_ASSERT_EQUAL_FATAL(svc_out_read(harness__out(h, (uint32_t)i), &o), 0);
			u = upstream_of(&o);
			CU_ASSERT_FATAL(u >= 0);
			CU_ASSERT(o.csum_ok);
			CU_ASSERT_STRING_EQUAL(o.src, ups[u].egress);
			CU_ASSERT(svc_out_mac_of(o.dst_mac, ups[u].addr));
			CU_ASSERT_EQUAL(o.ttl, 63);
			CU_ASSERT(o.sport >= 40000 && o.sport <= 40999);
			CU_ASSERT_EQUAL(o.payload[0], (uint8_t)(base + i));
			up_of[base + i] = u;
			nat_port[base + i] = o.sport;
			per_up[u]++;
		}
	}
}

static uint64_t counter(struct svc_harness *h, int i)
{
	uint64_t c[FERRY_SERVICE_COUNTERS] = {};

	harness__service_counters(h, 0, c);
	return c[i];
}

static void test_spread_and_stickiness(void)
{
	static int up1[FLOWS], up2[FLOWS], up3[FLOWS];
	static uint16_t nat1[FLOWS], nat2[FLOWS], nat3[FLOWS];
	uint32_t per1[4], per2[4], per3[4];
	struct svc_harness *h, *fresh;
	const struct ferry_daemon *d;

	if (unit_require_root())
		return;
	h = harness__create_net(MATCH4, LB4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	/* One reply rule per upstream, from it to the egress address its route gives. */
	d = harness__worker(h)->d;
	CU_ASSERT_EQUAL(d->nr_rules, 4);
	for (uint32_t r = 0; r < d->nr_rules && r < 4; r++) {
		CU_ASSERT_EQUAL(d->rules[r].dir, FERRY_DIR_REPLY);
		CU_ASSERT_EQUAL(d->rules[r].sport_lo, ups[r].port);
	}

	run_flows(h, up1, nat1, per1);
	/* Every upstream gets a share of FLOWS / 4 = 128, give or take chance. */
	for (int u = 0; u < 4; u++) {
		CU_ASSERT(per1[u] > FLOWS / 4 / 2);
		CU_ASSERT_EQUAL(counter(h, u), per1[u]);
	}
	CU_ASSERT_EQUAL(harness__flow_stats(h)->sessions_created, FLOWS);

	/* The same flows again: their sessions keep upstream and NAT port. */
	run_flows(h, up2, nat2, per2);
	for (int f = 0; f < FLOWS; f++) {
		CU_ASSERT_EQUAL(up2[f], up1[f]);
		CU_ASSERT_EQUAL(nat2[f], nat1[f]);
	}
	CU_ASSERT_EQUAL(harness__flow_stats(h)->sessions_created, FLOWS);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	/* A worker's next hops are one per worker id: one harness at a time. */
	harness__destroy(h);

	/* A fresh instance (no sessions) maps each tuple to the same upstream. */
	fresh = harness__create_net(MATCH4, LB4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fresh);
	run_flows(fresh, up3, nat3, per3);
	for (int f = 0; f < FLOWS; f++)
		CU_ASSERT_EQUAL(up3[f], up1[f]);
	CU_ASSERT_EQUAL(harness__check_frames(fresh), 0);
	harness__destroy(fresh);
}

/*
 * A fleet (docs/fleet.md): every host builds its table from the same config,
 * so ECMP may move a client's flow to any host and it still reaches the
 * same upstream.  Two instances built apart, as two hosts would, from the
 * same upstreams written in another order and notation, choose alike.
 */
#define LB4_OTHER_HOST                                                                             \
	"[ {lb: {upstreams: [{address: 198.18.3.3:6001}, 198.18.3.2:6000, "                      \
	"{address: 198.18.2.3:6000, weight: 1}, 198.18.2.2:6000], table_size: 65537}} ]"

static void test_same_choice_on_every_host(void)
{
	static int up_a[FLOWS], up_b[FLOWS];
	static uint16_t nat_a[FLOWS], nat_b[FLOWS];
	uint32_t per_a[4], per_b[4];
	struct svc_harness *h;
	int same = 0;

	if (unit_require_root())
		return;
	h = harness__create_net(MATCH4, LB4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	run_flows(h, up_a, nat_a, per_a);
	harness__destroy(h);
	h = harness__create_net(MATCH4, LB4_OTHER_HOST);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	run_flows(h, up_b, nat_b, per_b);
	harness__destroy(h);
	for (int f = 0; f < FLOWS; f++)
		same += up_a[f] == up_b[f];
	CU_ASSERT_EQUAL(same, FLOWS);
	for (int u = 0; u < 4; u++)
		CU_ASSERT_EQUAL(per_a[u], per_b[u]);
}

/* An upstream's reply goes back to the client, from the flow address. */
static void test_reply(void)
{
	uint8_t frame[256], payload[20] = "hello, balanced";
	const uint8_t *frames[1] = { frame };
	uint32_t lens[1];
	struct svc_harness *h;
	struct svc_out o;
	char egress[64], upstream[64];
	uint16_t nat, up_port;

	if (unit_require_root())
		return;
	h = harness__create_net(MATCH4, LB4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	lens[0] = harness__udp4(frame, "198.18.1.3", 2222, "198.18.1.1", 5000, payload,
				sizeof(payload));
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 1), 1);
	CU_ASSERT_EQUAL_FATAL(harness__nr_out(h), 1);
	CU_ASSERT_EQUAL_FATAL(svc_out_read(harness__out(h, 0), &o), 0);
	CU_ASSERT_FATAL(upstream_of(&o) >= 0);
	snprintf(egress, sizeof(egress), "%s", o.src);
	snprintf(upstream, sizeof(upstream), "%s", o.dst);
	nat = o.sport;
	up_port = o.dport;

	harness__clear_out(h);
	harness__set_dir(h, FERRY_DIR_REPLY);
	lens[0] = harness__udp4(frame, upstream, up_port, egress, nat, payload, sizeof(payload));
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 1), 1);
	CU_ASSERT_EQUAL_FATAL(harness__nr_out(h), 1);
	CU_ASSERT_EQUAL_FATAL(svc_out_read(harness__out(h, 0), &o), 0);
	CU_ASSERT(o.csum_ok);
	CU_ASSERT_STRING_EQUAL(o.src, "198.18.1.1");
	CU_ASSERT_EQUAL(o.sport, 5000);
	CU_ASSERT_STRING_EQUAL(o.dst, "198.18.1.3");
	CU_ASSERT_EQUAL(o.dport, 2222);
	CU_ASSERT_EQUAL(o.port, 0);
	CU_ASSERT(svc_out_mac_of(o.dst_mac, "198.18.1.3"));

	/* A reply for no session is dropped and counted. */
	harness__clear_out(h);
	lens[0] = harness__udp4(frame, upstream, up_port, egress, (uint16_t)(nat ^ 1), payload,
				sizeof(payload));
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 1), 1);
	CU_ASSERT_EQUAL(harness__nr_out(h), 0);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_no_session, 1);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__destroy(h);
}

/* Weights through the service: 3:1 over two upstreams. */
static void test_weights_in_service(void)
{
	static int up[FLOWS];
	static uint16_t nat[FLOWS];
	uint32_t per[4];
	struct svc_harness *h;

	if (unit_require_root())
		return;
	h = harness__create_net(MATCH4, "[ {lb: {upstreams: [{address: 198.18.2.2:6000, "
					"weight: 3}, {address: 198.18.2.3:6000, weight: 1}], "
					"table_size: 4099}} ]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	run_flows(h, up, nat, per);
	/* 384 and 128 expected; chance moves them a little. */
	CU_ASSERT(per[0] > 320 && per[0] < 448);
	CU_ASSERT_EQUAL(per[0] + per[1], FLOWS);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__destroy(h);
}

static void test_config_errors(void)
{
	CU_ASSERT_PTR_NULL(harness__create("[ {lb: {}} ]"));
	CU_ASSERT_PTR_NULL(harness__create("[ lb ]"));
	CU_ASSERT_PTR_NULL(harness__create("[ {lb: {upstreams: []}} ]"));
	CU_ASSERT_PTR_NULL(harness__create("[ {lb: {upstreams: [198.18.2.2:6000], "
					   "table_size: 65536}} ]"));
	CU_ASSERT_PTR_NULL(harness__create("[ {lb: {upstreams: [198.18.2.2:6000, "
					   "198.18.2.3:6000], table_size: 199}} ]"));
	CU_ASSERT_PTR_NULL(harness__create("[ {lb: {upstreams: [198.18.2.2:6000, "
					   "198.18.2.2:6000]}} ]"));
	CU_ASSERT_PTR_NULL(harness__create("[ {lb: {upstreams: [{address: 198.18.2.2:6000, "
					   "weight: 0}]}} ]"));
	CU_ASSERT_PTR_NULL(harness__create("[ {lb: {upstreams: [{weight: 2}]}} ]"));
	CU_ASSERT_PTR_NULL(harness__create("[ {lb: {upstreams: [{address: 198.18.2.2:6000, "
					   "port: 1}]}} ]"));
	CU_ASSERT_PTR_NULL(harness__create("[ {lb: {upstreams: ['[fd00:2::2]:6000']}} ]"));
	CU_ASSERT_PTR_NULL(harness__create("[ {lb: {upstreams: [198.18.2.2:6000], "
					   "source: 'fd00:2::1'}} ]"));
	/* Without start() there is no table: worker_init() refuses. */
	CU_ASSERT_PTR_NULL(harness__create("[ {lb: {upstreams: [198.18.2.2:6000]}} ]"));
}

static CU_TestInfo lb_tests[] = {
	{ "primes", test_prime },
	{ "maglev balance, with weights", test_balance },
	{ "maglev table independent of the order", test_order_independent },
	{ "maglev minimal disruption: removal", test_disruption_remove },
	{ "maglev minimal disruption: addition", test_disruption_add },
	{ "maglev rejects bad input", test_build_rejects },
	{ "flows spread over all upstreams and stay", test_spread_and_stickiness },
	{ "the same upstream per tuple on every host", test_same_choice_on_every_host },
	{ "replies back to the client", test_reply },
	{ "weights through the service", test_weights_in_service },
	{ "config errors", test_config_errors },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(svc_lb, "svc_lb", lb_tests, NULL, NULL)
