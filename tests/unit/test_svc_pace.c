// SPDX-License-Identifier: BSD-2-Clause
/*
 * pace through the real chain runner (svc_harness), after a stand-in for
 * forward that sets TX, so this also covers the chain runner's .sees_tx.
 * The harness's worker clock is exact, so release times are checked exactly:
 * a burst leaves one packet per interval, in order, each at the first tick
 * at or after its departure time, and pace always asks the worker to wake
 * at the next departure.  Also: the bit rate, the queue bound (queue_full),
 * release from process(), both directions, frame accounting while frames
 * are held and after the service stops, and the config rules.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "svc_harness.h"
#include "unit.h"
#include "worker.h"

#define MS 1000000ull
#define US 1000ull

/* Stands in for forward before pace: every packet leaves on port 1. */
static void pc_sink_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	for (uint32_t i = 0; i < b->n; i++)
		ferry_pkt_tx(b->pkts[i], 1);
}

static const struct ferry_service_ops pc_sink_ops = {
	.name = "pace_test_tx",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.process = pc_sink_process,
};

static struct svc_harness *make(const char *pace_args)
{
	char yaml[512];
	struct svc_harness *h;

	harness__add_service(&pc_sink_ops);
	snprintf(yaml, sizeof(yaml), "[ pace_test_tx, {pace: %s} ]", pace_args);
	h = harness__create(yaml);
	CU_ASSERT_PTR_NOT_NULL(h);
	return h;
}

static void counters(struct svc_harness *h, uint64_t out[FERRY_SERVICE_COUNTERS])
{
	struct ferry_worker *w = harness__worker(h);
	const struct flow_chain *ch = &w->d->flows[0];

	memset(out, 0, FERRY_SERVICE_COUNTERS * sizeof(out[0]));
	ch->ops[1]->stats(ch->conf[1], w->svc_state[0][1], out);
}

/* A burst of n packets carrying sequence numbers first..first+n-1 (payload_len bytes each). */
static int burst(struct svc_harness *h, uint32_t first, uint32_t n, uint32_t payload_len)
{
	static uint8_t frames[256][2048];
	const uint8_t *fp[256];
	uint32_t lens[256];
	uint8_t payload[1500] = { 0 };

	for (uint32_t i = 0; i < n && i < 256; i++) {
		uint32_t seq = first + i;

		memcpy(payload, &seq, sizeof(seq));
		lens[i] = harness__udp4(frames[i], "198.18.1.2", 1000, "198.18.1.1", 5000, payload,
					payload_len);
		fp[i] = frames[i];
	}
	return harness__run(h, fp, lens, n);
}

static uint32_t out_seq(const struct svc_harness *h, uint32_t i)
{
	uint32_t seq;

	memcpy(&seq, harness__out(h, i)->data + 42, sizeof(seq));
	return seq;
}

/* A burst of 20 at 1000 pps: one packet per millisecond, on the dot, in order. */
static void test_even_spacing(void)
{
	struct svc_harness *h = make("{rate_pps: 1000, queue: 64}");
	struct ferry_worker *w;
	uint64_t t0, released[20] = { 0 }, c[FERRY_SERVICE_COUNTERS];

	if (!h)
		return;
	w = harness__worker(h);
	t0 = w->now_ns;
	CU_ASSERT_EQUAL(burst(h, 0, 20, 100), 20);
	/* The first leaves at once; the others wait, and pace wants to wake for the next. */
	CU_ASSERT_EQUAL(harness__nr_out(h), 1);
	CU_ASSERT_EQUAL(harness__held_frames(h), 19);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	CU_ASSERT_EQUAL(w->wake_ns, t0 + 1 * MS);
	released[0] = t0;
	for (int step = 0; step < 300 && harness__nr_out(h) < 20; step++) {
		uint32_t before = harness__nr_out(h);

		/* What the worker loop does: tick early at the deadline asked for. */
		w->wake_ns = 0;
		harness__tick(h, 100 * US);
		for (uint32_t i = before; i < harness__nr_out(h); i++)
			released[i] = w->now_ns;
		if (harness__nr_out(h) < 20)
			CU_ASSERT_EQUAL(w->wake_ns, t0 + harness__nr_out(h) * MS);
	}
	CU_ASSERT_EQUAL_FATAL(harness__nr_out(h), 20);
	for (uint32_t i = 0; i < 20; i++) {
		CU_ASSERT_EQUAL(out_seq(h, i), i);
		CU_ASSERT_EQUAL(released[i], t0 + i * MS);
		CU_ASSERT_EQUAL(harness__out(h, i)->port, 1);
	}
	CU_ASSERT_EQUAL(w->wake_ns, 0);
	CU_ASSERT_EQUAL(harness__held_frames(h), 0);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	counters(h, c);
	CU_ASSERT_EQUAL(c[0], 1);  /* immediate */
	CU_ASSERT_EQUAL(c[1], 19); /* delayed */
	CU_ASSERT_EQUAL(c[2], 19); /* queue_peak */
	CU_ASSERT_EQUAL(harness__svc_stats(h, 1)->held, 19);
	/* Arrived at TX and went on at TX: passed, not sent, by pace. */
	CU_ASSERT_EQUAL(harness__svc_stats(h, 1)->passed, 1);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 1)->sent, 0);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 1)->packets_in, 20);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_service, 0);
	harness__destroy(h);
}

/* A late wake-up sends what is overdue together; the schedule does not slip. */
static void test_late_wakeup(void)
{
	struct svc_harness *h = make("{rate_pps: 1000}");
	struct ferry_worker *w;
	uint64_t t0;

	if (!h)
		return;
	w = harness__worker(h);
	t0 = w->now_ns;
	CU_ASSERT_EQUAL(burst(h, 0, 10, 10), 10);
	harness__tick(h, 3500 * US); /* due: 1, 2, 3 ms */
	CU_ASSERT_EQUAL(harness__nr_out(h), 4);
	CU_ASSERT_EQUAL(w->wake_ns, t0 + 4 * MS);
	harness__tick(h, 500 * US);
	CU_ASSERT_EQUAL(harness__nr_out(h), 5);
	harness__tick(h, 10 * MS);
	CU_ASSERT_EQUAL(harness__nr_out(h), 10);
	/* Idle since: no credit was earned, the next burst is spaced afresh. */
	CU_ASSERT_EQUAL(burst(h, 10, 3, 10), 3);
	CU_ASSERT_EQUAL(harness__nr_out(h), 11);
	CU_ASSERT_EQUAL(w->wake_ns, w->now_ns + 1 * MS);
	harness__tick(h, 2 * MS);
	CU_ASSERT_EQUAL(harness__nr_out(h), 13);
	for (uint32_t i = 0; i < 13; i++)
		CU_ASSERT_EQUAL(out_seq(h, i), i);
	harness__destroy(h);
}

/* rate_bps: a 1042-byte frame at 83360 bit/s takes 100 ms, longer than 1/rate_pps. */
static void test_bit_rate(void)
{
	struct svc_harness *h = make("{rate_pps: 100, rate_bps: 83360}");
	struct ferry_worker *w;
	uint64_t t0;

	if (!h)
		return;
	w = harness__worker(h);
	t0 = w->now_ns;
	CU_ASSERT_EQUAL(burst(h, 0, 3, 1000), 3);
	CU_ASSERT_EQUAL(harness__nr_out(h), 1);
	CU_ASSERT_EQUAL(w->wake_ns, t0 + 100 * MS);
	harness__tick(h, 99 * MS);
	CU_ASSERT_EQUAL(harness__nr_out(h), 1);
	harness__tick(h, 1 * MS);
	CU_ASSERT_EQUAL(harness__nr_out(h), 2);
	harness__tick(h, 100 * MS);
	CU_ASSERT_EQUAL(harness__nr_out(h), 3);
	/* 52-byte frames take 5 ms at that bit rate: the packet rate's 10 ms is longer. */
	harness__tick(h, 1000 * MS);
	t0 = w->now_ns;
	CU_ASSERT_EQUAL(burst(h, 3, 2, 10), 2);
	CU_ASSERT_EQUAL(w->wake_ns, t0 + 10 * MS);
	harness__destroy(h);
}

/* queue: 8 held at most; the rest of the burst is dropped as queue_full. */
static void test_queue_bound(void)
{
	struct svc_harness *h = make("{rate_pps: 100, queue: 8}");
	struct ferry_worker *w;
	const struct flow_chain *ch;

	if (!h)
		return;
	w = harness__worker(h);
	CU_ASSERT_EQUAL(burst(h, 0, 30, 64), 30);
	CU_ASSERT_EQUAL(harness__nr_out(h), 1);
	CU_ASSERT_EQUAL(harness__held_frames(h), 8);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_queue_full, 21);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 1)->dropped, 21);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__tick(h, 45 * MS);
	CU_ASSERT_EQUAL(harness__nr_out(h), 5);
	CU_ASSERT_EQUAL(harness__held_frames(h), 4);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	/* Stopping the service hands the held frames back, counted as queue_full. */
	ch = &w->d->flows[0];
	ch->ops[1]->worker_destroy(ch->conf[1], w->svc_state[0][1]);
	w->svc_state[0][1] = NULL;
	CU_ASSERT_EQUAL(harness__held_frames(h), 0);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_queue_full, 25);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	CU_ASSERT_EQUAL(w->umem->nr_free, w->umem->nr_frames);
	harness__destroy(h);
}

/*
 * The worker's budget of held frames (all services together) bounds pace
 * below its own queue: beyond it packets are dropped as hold_budget, and
 * frames that leave give their room back.
 */
static void test_hold_budget(void)
{
	struct svc_harness *h = make("{rate_pps: 100, queue: 64}");
	struct ferry_worker *w;
	const struct flow_chain *ch;

	if (!h)
		return;
	w = harness__worker(h);
	/*
	 * Each port's FILL ring and its TX/COMPLETION side (ring_size each) and
	 * a chain run set aside; at least an eighth, as with the defaults.
	 */
	CU_ASSERT_EQUAL(worker__hold_budget(16384, 2048, 2), 16384 - 2 * 2 * 2048 - CHAIN_MAX_PKTS);
	CU_ASSERT_EQUAL(worker__hold_budget(2048, 256, 2), 2048 - 2 * 2 * 256 - CHAIN_MAX_PKTS);
	CU_ASSERT_EQUAL(worker__hold_budget(8192, 2048, 2), 8192 / 8);
	CU_ASSERT_EQUAL(worker__hold_budget(1024, 256, 2), 1024 / 8);
	CU_ASSERT_EQUAL(worker__hold_budget(4096, 2048, 2), 4096 / 8);
	CU_ASSERT_EQUAL(w->hold_budget, 128);
	w->hold_budget = 10;
	CU_ASSERT_EQUAL(burst(h, 0, 30, 64), 30);
	/* One leaves at once, ten are held, the other 19 are over the budget. */
	CU_ASSERT_EQUAL(harness__nr_out(h), 1);
	CU_ASSERT_EQUAL(harness__held_frames(h), 10);
	CU_ASSERT_EQUAL(w->held_frames, 10);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_hold_budget, 19);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_queue_full, 0);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 1)->held, 10);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 1)->dropped, 19);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	/* Four leave (10 ms apart): room for four more, not five. */
	harness__tick(h, 45 * MS);
	CU_ASSERT_EQUAL(harness__nr_out(h), 5);
	CU_ASSERT_EQUAL(w->held_frames, 6);
	CU_ASSERT_EQUAL(burst(h, 30, 5, 64), 5);
	CU_ASSERT_EQUAL(w->held_frames, 10);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_hold_budget, 20);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	/* Stopping hands them all back: nothing is held any more. */
	ch = &w->d->flows[0];
	ch->ops[1]->worker_destroy(ch->conf[1], w->svc_state[0][1]);
	w->svc_state[0][1] = NULL;
	CU_ASSERT_EQUAL(w->held_frames, 0);
	CU_ASSERT_EQUAL(harness__held_frames(h), 0);
	CU_ASSERT_EQUAL(w->umem->nr_free, w->umem->nr_frames);
	harness__destroy(h);
}

/* process() sends what is due before the new batch, so the flow keeps its order. */
static void test_release_in_process(void)
{
	struct svc_harness *h = make("{rate_pps: 1000}");
	struct ferry_worker *w;

	if (!h)
		return;
	w = harness__worker(h);
	CU_ASSERT_EQUAL(burst(h, 0, 5, 10), 5);
	CU_ASSERT_EQUAL(harness__nr_out(h), 1);
	/* The clock moves on, as it does between two bursts, with no tick. */
	w->now_ns += 2500 * US;
	CU_ASSERT_EQUAL(burst(h, 5, 1, 10), 1);
	CU_ASSERT_EQUAL(harness__nr_out(h), 3);
	harness__tick(h, 10 * MS);
	CU_ASSERT_EQUAL_FATAL(harness__nr_out(h), 6);
	for (uint32_t i = 0; i < 6; i++)
		CU_ASSERT_EQUAL(out_seq(h, i), i);
	harness__destroy(h);
}

/* Each direction has its own schedule; direction: client leaves replies alone. */
static void test_directions(void)
{
	struct svc_harness *h = make("{rate_pps: 10}");
	struct svc_harness *hc = make("{rate_pps: 10, direction: client}");

	if (!h || !hc)
		goto out;
	CU_ASSERT_EQUAL(burst(h, 0, 3, 10), 3);
	harness__set_dir(h, FERRY_DIR_REPLY);
	CU_ASSERT_EQUAL(burst(h, 3, 3, 10), 3);
	CU_ASSERT_EQUAL(harness__nr_out(h), 2);
	CU_ASSERT_EQUAL(harness__held_frames(h), 4);
	harness__tick(h, 100 * MS);
	CU_ASSERT_EQUAL(harness__nr_out(h), 4);
	harness__tick(h, 100 * MS);
	CU_ASSERT_EQUAL(harness__nr_out(h), 6);

	harness__set_dir(hc, FERRY_DIR_REPLY);
	CU_ASSERT_EQUAL(burst(hc, 0, 5, 10), 5);
	CU_ASSERT_EQUAL(harness__nr_out(hc), 5);
	CU_ASSERT_EQUAL(harness__held_frames(hc), 0);
out:
	harness__destroy(h);
	harness__destroy(hc);
}

/* Without a TX verdict there is no egress to pace towards: the chain drops it as before. */
static void test_no_egress(void)
{
	struct svc_harness *h = harness__create("[ {pace: {rate_pps: 10}} ]");

	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	CU_ASSERT_EQUAL(burst(h, 0, 3, 10), 3);
	CU_ASSERT_EQUAL(harness__nr_out(h), 0);
	CU_ASSERT_EQUAL(harness__held_frames(h), 0);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_service, 3);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__destroy(h);
}

static int configure(const char *services, const char *expect)
{
	char yaml[1024];
	struct ferry_config cfg;
	struct cfg_errors errs = { .capture = strdup("") };
	struct ferry_flow_ctx fc = { 0 };
	int err = 0;

	snprintf(yaml, sizeof(yaml),
		 "interfaces: [{name: a}]\n"
		 "flows:\n"
		 "  - name: f\n"
		 "    match: {protocol: udp, destination: 198.18.1.1, port: 5000}\n"
		 "    services: %s\n",
		 services);
	CU_ASSERT_EQUAL_FATAL(config__load_string(&cfg, "t.yaml", yaml, &errs), 0);
	fc.flow = &cfg.flows[0];
	for (int s = 0; s < cfg.flows[0].nr_services && !err; s++) {
		const struct ferry_service_ops *ops = service__find(cfg.flows[0].services[s].name);
		void *conf = NULL;

		CU_ASSERT_PTR_NOT_NULL_FATAL(ops);
		if (!ops->configure)
			continue;
		err = ops->configure(&fc, cfg.flows[0].services[s].args, &errs, &conf);
		if (!err)
			ops->destroy(conf);
	}
	if (expect && !strstr(errs.capture, expect)) {
		fprintf(stderr, "expected '%s', got '%s'\n", expect, errs.capture);
		CU_FAIL("message");
	}
	free(errs.capture);
	config__free(&cfg);
	return err;
}

static void test_config(void)
{
	CU_ASSERT_EQUAL(configure("[{pace: {rate_pps: 1}}]", NULL), 0);
	CU_ASSERT_EQUAL(
	    configure("[{pace: {rate_bps: 1000000, queue: 1, direction: reply}}]", NULL), 0);
	CU_ASSERT_NOT_EQUAL(configure("[pace]", "t.yaml:5:16: pace: expected a mapping"), 0);
	CU_ASSERT_NOT_EQUAL(configure("[{pace: {queue: 5}}]",
				      "t.yaml:5:23: pace: missing key 'rate_pps' or 'rate_bps'"),
			    0);
	CU_ASSERT_NOT_EQUAL(configure("[{pace: {rate_pps: 0}}]", "value 0 is out of range"), 0);
	CU_ASSERT_NOT_EQUAL(configure("[{pace: {rate_pps: 5, queue: 65537}}]",
				      "value 65537 is out of range 1..65536"),
			    0);
	CU_ASSERT_NOT_EQUAL(configure("[{pace: {rate_pps: 5}}, {tap: {pcap: /tmp/x.pcap}}]",
				      "pace: must be the last service of the flow"),
			    0);
	CU_ASSERT_NOT_EQUAL(
	    configure("[{pace: {rate_pps: 5, burst: 3}}]", "pace: unknown key 'burst'"), 0);
}

static CU_TestInfo tests[] = {
	{ "a burst leaves evenly spaced, in order", test_even_spacing },
	{ "late wake-up: overdue packets together, no credit when idle", test_late_wakeup },
	{ "rate_bps", test_bit_rate },
	{ "queue bound, frame accounting, stop", test_queue_bound },
	{ "the worker's hold budget bounds it, counted as hold_budget", test_hold_budget },
	{ "release from process() keeps the order", test_release_in_process },
	{ "directions", test_directions },
	{ "no TX verdict: not paced", test_no_egress },
	{ "config", test_config },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(svc_pace, "svc_pace", tests, NULL, NULL);
