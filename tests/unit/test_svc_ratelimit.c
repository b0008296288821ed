// SPDX-License-Identifier: BSD-2-Clause
/*
 * The ratelimit service through the real chain runner (svc_harness), on the
 * harness's clock: bursts, refill at the configured rate, packet and byte
 * buckets, per-source buckets with eviction and idle expiry, the rate split
 * among workers, replies left alone.  Every drop must be "rate_limited" in
 * the flow's drops, in the generic counters and in the service's own, what
 * passes must be unchanged, and no frame may be lost.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "svc_harness.h"
#include "unit.h"
#include "worker.h"

#define MS (1000ull * 1000)

enum { C_BUCKETS, C_EVICTIONS, C_OVER_PACKETS, C_OVER_BYTES };

static void sink_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	for (uint32_t i = 0; i < b->n; i++)
		ferry_pkt_tx(b->pkts[i], 1);
}

static const struct ferry_service_ops sink_ops = {
	.name = "ratelimit_test_sink",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.process = sink_process,
};

static struct svc_harness *make(const char *args)
{
	char yaml[1024];
	struct svc_harness *h;

	harness__add_service(&sink_ops);
	snprintf(yaml, sizeof(yaml), "[ {ratelimit: %s}, ratelimit_test_sink ]", args);
	h = harness__create(yaml);
	CU_ASSERT_PTR_NOT_NULL(h);
	return h;
}

static void counters(struct svc_harness *h, uint64_t out[FERRY_SERVICE_COUNTERS])
{
	struct ferry_worker *w = harness__worker(h);
	const struct flow_chain *ch = &w->d->flows[0];

	memset(out, 0, FERRY_SERVICE_COUNTERS * sizeof(out[0]));
	ch->ops[0]->stats(ch->conf[0], w->svc_state[0][0], out);
}

/*
 * Sends n packets from `src` with `payload_len` bytes in one burst; returns
 * how many came out, each checked against what went in.
 */
static uint32_t burst(struct svc_harness *h, const char *src, uint32_t n, uint32_t payload_len)
{
	static uint8_t bufs[WORKER_MAX_BATCH][1500];
	const uint8_t *frames[WORKER_MAX_BATCH];
	uint32_t lens[WORKER_MAX_BATCH], before = harness__nr_out(h), out;
	uint8_t payload[1400];

	CU_ASSERT_FATAL(n <= WORKER_MAX_BATCH && payload_len <= sizeof(payload));
	for (uint32_t i = 0; i < n; i++) {
		memset(payload, (int)i, payload_len);
		lens[i] = harness__udp4(bufs[i], src, (uint16_t)(1000 + i), "198.18.1.1", 5000,
					payload, payload_len);
		frames[i] = bufs[i];
	}
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, n), (int)n);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	CU_ASSERT_EQUAL(harness__held_frames(h), 0);
	out = harness__nr_out(h) - before;
	/* The first ones pass: a bucket empties, it does not pick. */
	for (uint32_t i = 0; i < out; i++) {
		const struct harness_out *o = harness__out(h, before + i);

		CU_ASSERT_EQUAL(o->len, lens[i]);
		CU_ASSERT(!memcmp(o->data, bufs[i], lens[i]));
	}
	return out;
}

static void test_packets(void)
{
	struct svc_harness *h = make("{packets_per_second: 10, burst_packets: 5}");
	const struct ferry_svc_stats *ss;
	uint64_t c[FERRY_SERVICE_COUNTERS];

	if (!h)
		return;
	CU_ASSERT_EQUAL(burst(h, "198.18.1.2", 8, 10), 5);
	CU_ASSERT_EQUAL(burst(h, "198.18.1.2", 1, 10), 0);
	/* 100 ms at 10/s: one token. */
	harness__tick(h, 100 * MS);
	CU_ASSERT_EQUAL(burst(h, "198.18.1.2", 3, 10), 1);
	/* 50 ms: half a token is not a packet; another 50 ms completes it. */
	harness__tick(h, 50 * MS);
	CU_ASSERT_EQUAL(burst(h, "198.18.1.2", 1, 10), 0);
	harness__tick(h, 50 * MS);
	CU_ASSERT_EQUAL(burst(h, "198.18.1.2", 1, 10), 1);
	/* A long pause refills to the burst, never beyond. */
	harness__tick(h, 3600000 * MS);
	CU_ASSERT_EQUAL(burst(h, "198.18.1.2", 10, 10), 5);

	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_rate_limited, 3 + 1 + 2 + 1 + 5);
	ss = harness__svc_stats(h, 0);
	CU_ASSERT_EQUAL(ss->packets_in, 8 + 1 + 3 + 1 + 1 + 10);
	CU_ASSERT_EQUAL(ss->passed, 12);
	CU_ASSERT_EQUAL(ss->dropped, 12);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 1)->sent, 12);
	counters(h, c);
	CU_ASSERT_EQUAL(c[C_BUCKETS], 1);
	CU_ASSERT_EQUAL(c[C_EVICTIONS], 0);
	CU_ASSERT_EQUAL(c[C_OVER_PACKETS], 12);
	CU_ASSERT_EQUAL(c[C_OVER_BYTES], 0);
	harness__destroy(h);
}

static void test_bytes(void)
{
	/* 1000 bytes of payload: 1042-byte frames. */
	struct svc_harness *h = make("{bytes_per_second: 1042, burst_bytes: 10000}");
	uint64_t c[FERRY_SERVICE_COUNTERS];

	if (!h)
		return;
	CU_ASSERT_EQUAL(burst(h, "198.18.1.2", 12, 1000), 9);
	/* 622 bytes left: a small packet still fits, a big one does not. */
	CU_ASSERT_EQUAL(burst(h, "198.18.1.2", 1, 1000), 0);
	CU_ASSERT_EQUAL(burst(h, "198.18.1.2", 1, 100), 1);
	harness__tick(h, 1000 * MS);
	CU_ASSERT_EQUAL(burst(h, "198.18.1.2", 2, 1000), 1);
	counters(h, c);
	CU_ASSERT_EQUAL(c[C_OVER_BYTES], 3 + 1 + 1);
	CU_ASSERT_EQUAL(c[C_OVER_PACKETS], 0);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_rate_limited, 5);
	harness__destroy(h);

	/* A burst below one frame is raised to one frame (4096 bytes): big packets can pass. */
	h = make("{bytes_per_second: 100, burst_bytes: 100}");
	if (!h)
		return;
	CU_ASSERT_EQUAL(burst(h, "198.18.1.2", 5, 1000), 3);
	harness__destroy(h);
}

static void test_both(void)
{
	struct svc_harness *h =
	    make("{packets_per_second: 1000, burst_packets: 4, bytes_per_second: 1000000, "
		 "burst_bytes: 5000}");
	uint64_t c[FERRY_SERVICE_COUNTERS];

	if (!h)
		return;
	/* 4 packets of 1042 bytes: the packet bucket runs out first. */
	CU_ASSERT_EQUAL(burst(h, "198.18.1.2", 6, 1000), 4);
	counters(h, c);
	CU_ASSERT_EQUAL(c[C_OVER_PACKETS], 2);
	CU_ASSERT_EQUAL(c[C_OVER_BYTES], 0);
	/* 4 ms: 4 packets and 4000 bytes (+ 832 left): 4 packets of 1342 bytes do not fit. */
	harness__tick(h, 4 * MS);
	CU_ASSERT_EQUAL(burst(h, "198.18.1.2", 4, 1300), 3);
	counters(h, c);
	CU_ASSERT_EQUAL(c[C_OVER_PACKETS], 2);
	CU_ASSERT_EQUAL(c[C_OVER_BYTES], 1);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 0)->dropped, 3);
	harness__destroy(h);
}

static void test_defaults(void)
{
	/* The default burst is a tenth of a second's worth. */
	struct svc_harness *h = make("{packets_per_second: 100}");

	if (!h)
		return;
	CU_ASSERT_EQUAL(burst(h, "198.18.1.2", 20, 1), 10);
	harness__destroy(h);
	/* ... and at least one packet. */
	h = make("{packets_per_second: 3}");
	if (!h)
		return;
	CU_ASSERT_EQUAL(burst(h, "198.18.1.2", 5, 1), 1);
	harness__destroy(h);
}

static void test_per_source(void)
{
	struct svc_harness *h = make("{packets_per_second: 10, burst_packets: 2, per: source}");
	uint64_t c[FERRY_SERVICE_COUNTERS];

	if (!h)
		return;
	CU_ASSERT_EQUAL(burst(h, "198.18.1.2", 5, 1), 2);
	CU_ASSERT_EQUAL(burst(h, "198.18.1.3", 5, 1), 2);
	CU_ASSERT_EQUAL(burst(h, "198.18.1.2", 5, 1), 0);
	counters(h, c);
	CU_ASSERT_EQUAL(c[C_BUCKETS], 2);
	CU_ASSERT_EQUAL(c[C_OVER_PACKETS], 11);
	/* A bucket idle until full again is the same as none: the tick frees it. */
	harness__tick(h, 100 * MS);
	counters(h, c);
	CU_ASSERT_EQUAL(c[C_BUCKETS], 2);
	/* Each tick looks at 1024 of the 4096 slots. */
	for (int i = 0; i < 4; i++)
		harness__tick(h, 100 * MS);
	counters(h, c);
	CU_ASSERT_EQUAL(c[C_BUCKETS], 0);
	CU_ASSERT_EQUAL(burst(h, "198.18.1.2", 5, 1), 2);
	counters(h, c);
	CU_ASSERT_EQUAL(c[C_BUCKETS], 1);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_rate_limited, 14);
	harness__destroy(h);
}

static void test_eviction(void)
{
	/* 8 slots: every source shares the one window, so the 9th evicts the stalest. */
	struct svc_harness *h =
	    make("{packets_per_second: 1, burst_packets: 1, per: source, max_sources: 8}");
	uint64_t c[FERRY_SERVICE_COUNTERS];
	char src[32];

	if (!h)
		return;
	for (int i = 0; i < 8; i++) {
		snprintf(src, sizeof(src), "198.18.5.%d", i);
		CU_ASSERT_EQUAL(burst(h, src, 2, 1), 1);
		harness__tick(h, 1 * MS);
	}
	counters(h, c);
	CU_ASSERT_EQUAL(c[C_BUCKETS], 8);
	CU_ASSERT_EQUAL(c[C_EVICTIONS], 0);
	/* Still limited: all 8 are remembered. */
	CU_ASSERT_EQUAL(burst(h, "198.18.5.3", 1, 1), 0);
	CU_ASSERT_EQUAL(burst(h, "198.18.6.0", 2, 1), 1);
	counters(h, c);
	CU_ASSERT_EQUAL(c[C_BUCKETS], 8);
	CU_ASSERT_EQUAL(c[C_EVICTIONS], 1);
	/* 198.18.5.0 was the stalest: it lost its bucket and comes back with a full one. */
	CU_ASSERT_EQUAL(burst(h, "198.18.5.0", 1, 1), 1);
	counters(h, c);
	CU_ASSERT_EQUAL(c[C_EVICTIONS], 2);
	harness__destroy(h);

	/* max_sources is rounded up to a power of two. */
	h = make("{packets_per_second: 1, per: source, max_sources: 9}");
	if (!h)
		return;
	for (int i = 0; i < 12; i++) {
		snprintf(src, sizeof(src), "198.18.5.%d", i);
		burst(h, src, 1, 1);
	}
	counters(h, c);
	CU_ASSERT(c[C_BUCKETS] + c[C_EVICTIONS] == 12);
	CU_ASSERT(c[C_BUCKETS] <= 16);
	harness__destroy(h);
}

/* IPv6 sources get their own buckets too. */
static void test_per_source_ipv6(void)
{
	struct svc_harness *h;
	uint8_t bufs[6][128];
	const uint8_t *frames[6];
	uint32_t lens[6];
	uint64_t c[FERRY_SERVICE_COUNTERS];

	harness__add_service(&sink_ops);
	h = harness__create_match("{protocol: udp, destination: fd00:1::1, port: 5000}",
				  "[ {ratelimit: {packets_per_second: 1, burst_packets: 2, "
				  "per: source}}, ratelimit_test_sink ]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	for (int i = 0; i < 6; i++) {
		lens[i] = harness__udp6(bufs[i], i < 3 ? "fd00:7::1" : "fd00:7::2", 1000,
					"fd00:1::1", 5000, "v6", 2);
		frames[i] = bufs[i];
	}
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 6), 6);
	CU_ASSERT_EQUAL(harness__nr_out(h), 4);
	counters(h, c);
	CU_ASSERT_EQUAL(c[C_BUCKETS], 2);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_rate_limited, 2);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__destroy(h);
}

static void test_replies(void)
{
	struct svc_harness *h = make("{packets_per_second: 1, burst_packets: 1}");

	if (!h)
		return;
	harness__set_dir(h, FERRY_DIR_REPLY);
	CU_ASSERT_EQUAL(burst(h, "198.18.2.2", 50, 10), 50);
	harness__set_dir(h, FERRY_DIR_CLIENT);
	CU_ASSERT_EQUAL(burst(h, "198.18.1.2", 50, 10), 1);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 0)->passed, 51);
	harness__destroy(h);

	/* direction: both puts the replies in the same bucket. */
	h = make("{packets_per_second: 1, burst_packets: 3, direction: both}");
	if (!h)
		return;
	harness__set_dir(h, FERRY_DIR_REPLY);
	CU_ASSERT_EQUAL(burst(h, "198.18.2.2", 2, 10), 2);
	harness__set_dir(h, FERRY_DIR_CLIENT);
	CU_ASSERT_EQUAL(burst(h, "198.18.1.2", 5, 10), 1);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_rate_limited, 4);
	harness__destroy(h);
}

/* ---- without the harness: a two-worker config, and config errors ---- */

static struct ferry_daemon cfg_d;

static const char cfg_fmt[] = "queues: %u\n"
			      "interfaces:\n"
			      "  - name: px-c\n"
			      "flows:\n"
			      "  - name: f\n"
			      "    match: {protocol: udp, destination: 198.18.1.1, port: 5000}\n"
			      "    services:\n"
			      "      - ratelimit:\n"
			      "          %s\n";

static int configure(unsigned int queues, const char *args, char **capture, void **confp)
{
	const struct ferry_service_ops *ops = service__find("ratelimit");
	struct cfg_errors errs = {.file = "t.yaml"};
	struct ferry_flow_ctx fc = {.daemon = &cfg_d};
	char yaml[2048];
	int err;

	errs.capture = strdup("");
	snprintf(yaml, sizeof(yaml), cfg_fmt, queues, args);
	err = config__load_string(&cfg_d.cfg, "t.yaml", yaml, &errs);
	CU_ASSERT_EQUAL_FATAL(err, 0);
	fc.flow = &cfg_d.cfg.flows[0];
	*confp = NULL;
	err = ops->configure(&fc, cfg_d.cfg.flows[0].services[0].args, &errs, confp);
	*capture = errs.capture;
	return err;
}

static void expect_error(const char *args, const char *msg)
{
	char *capture = NULL;
	void *conf;

	CU_ASSERT_EQUAL(configure(1, args, &capture, &conf), -EINVAL);
	CU_ASSERT_PTR_NULL(conf);
	if (!capture || !strstr(capture, msg)) {
		fprintf(stderr, "\n  expected: %s\n  captured:\n%s", msg, capture ? capture : "");
		CU_FAIL("error message");
	}
	free(capture);
	config__free(&cfg_d.cfg);
}

/* Each of two workers gets half the rate and half the burst. */
static void test_split_among_workers(void)
{
	const struct ferry_service_ops *ops = service__find("ratelimit");
	struct ferry_worker *w;
	struct ferry_pkt pkts[10], *pp[10];
	struct ferry_batch b = {.pkts = pp, .n = 10, .cap = 10};
	uint8_t frame[128];
	char *capture;
	void *conf, *ws[2] = {NULL, NULL};
	int passed;

	CU_ASSERT_EQUAL_FATAL(
	    configure(2, "{packets_per_second: 10, burst_packets: 10}", &capture, &conf), 0);
	free(capture);
	w = calloc(1, sizeof(*w));
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	w->d = &cfg_d;
	w->now_ns = 5000000000ull;
	for (int k = 0; k < 2; k++)
		CU_ASSERT_EQUAL_FATAL(ops->worker_init(conf, w, &ws[k]), 0);
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < 10; i++) {
			memset(&pkts[i], 0, sizeof(pkts[i]));
			pkts[i].data = frame;
			pkts[i].len =
			    harness__udp4(frame, "198.18.1.2", 1, "198.18.1.1", 5000, "", 0);
			pkt_parse(frame, pkts[i].len, &pkts[i].pi);
			pp[i] = &pkts[i];
		}
		b.n = 10;
		ops->process(conf, ws[k], w, &b);
		passed = 0;
		for (int i = 0; i < 10; i++)
			passed += pkts[i].verdict == FERRY_VERDICT_NEXT;
		CU_ASSERT_EQUAL(passed, 5);
	}
	/* 1 s: 5 more for each worker, so 10/s in all. */
	w->now_ns += 1000000000ull;
	for (int i = 0; i < 10; i++)
		pkts[i].verdict = FERRY_VERDICT_NEXT;
	ops->process(conf, ws[0], w, &b);
	passed = 0;
	for (int i = 0; i < 10; i++)
		passed += pkts[i].verdict == FERRY_VERDICT_NEXT;
	CU_ASSERT_EQUAL(passed, 5);
	for (int k = 0; k < 2; k++)
		ops->worker_destroy(conf, ws[k]);
	ops->destroy(conf);
	free(w);
	config__free(&cfg_d.cfg);
}

static void test_config_errors(void)
{
	expect_error("{per: flow}",
		     "t.yaml:9:11: ratelimit: give packets_per_second, bytes_per_second, or both");
	expect_error("{bytes_per_second: 10, burst_packets: 3}",
		     "t.yaml:9:11: ratelimit: burst_packets needs packets_per_second");
	expect_error("{packets_per_second: 10, burst_bytes: 3}",
		     "t.yaml:9:11: ratelimit: burst_bytes needs bytes_per_second");
	expect_error("{packets_per_second: 10, per: host}",
		     "t.yaml:9:41: ratelimit: per: 'host' is not one of flow, source");
	expect_error("{packets_per_second: 10, max_sources: 64}",
		     "t.yaml:9:49: ratelimit: max_sources needs per: source");
	expect_error("{packets_per_second: 10, per: source, max_sources: 4}",
		     "t.yaml:9:62: value 4 is out of range 8..1048576");
	expect_error("{packets_per_second: 0}",
		     "t.yaml:9:32: value 0 is out of range 1..4294967295");
	expect_error("{packets_per_second: 10, burst_packets: -1}", "t.yaml:9:51: ");
	expect_error("{packets_per_second: 10, colour: red}",
		     "t.yaml:9:44: ratelimit: unknown key 'colour'");
	/* Errors in several keys are all reported. */
	expect_error("{packets_per_second: x, bytes_per_second: y}", "t.yaml:9:53: ");
	/* `- ratelimit:` with nothing: the error points at the entry. */
	expect_error("", "t.yaml:8:9: ratelimit: expected a mapping with packets_per_second "
			 "and/or bytes_per_second");
	expect_error("{packets_per_second: 10, direction: up}",
		     "t.yaml:9:47: ratelimit: direction: 'up' is not one of client, reply, both");
}

static CU_TestInfo ratelimit_tests[] = {
	{ "packets per second: burst and refill", test_packets },
	{ "bytes per second", test_bytes },
	{ "packet and byte buckets together", test_both },
	{ "default bursts", test_defaults },
	{ "per source, idle buckets freed", test_per_source },
	{ "per source: eviction of the stalest", test_eviction },
	{ "per source over IPv6", test_per_source_ipv6 },
	{ "replies are not limited; direction", test_replies },
	{ "the rate is split among workers", test_split_among_workers },
	{ "config errors at FILE:LINE:COL", test_config_errors },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(svc_ratelimit, "svc_ratelimit", ratelimit_tests, NULL, NULL)
