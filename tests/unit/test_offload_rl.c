// SPDX-License-Identifier: BSD-2-Clause
/*
 * The ratelimit service in the XDP fast path: its parameters as ferryd
 * writes them (svc_ratelimit__offload_params() on a configuration parsed
 * by the real service, through svc_harness), then ferry_steer run with
 * BPF_PROG_TEST_RUN on an offloaded session's packets: the burst passes,
 * the next packets are dropped and counted, per flow and per source, for
 * the packet and the byte bucket, and only in the configured directions.
 * Then the fold of those drops into the published counters
 * (offload__add_fwd(), offload__add_svc()) and which chains offload__decide()
 * keeps on the workers.
 *
 * bpf_ktime_get_ns() is real time: the rates are 1 packet or 1 byte per
 * second, so nothing refills while a test runs unless it takes a second,
 * which each test measures; past that, only what does not depend on time is
 * asserted.  Buckets are per CPU: the tests run pinned to one CPU.
 */
#include <arpa/inet.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/bpf.h>
#include <linux/if_link.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "daemon.h"
#include "ferry_shared.h"
#include "ferry_steer.skel.h"
#include "offload.h"
#include "service.h"
#include "svc_harness.h"
#include "unit.h"
#include "worker.h"

#define FLOW 3
#define NS_PER_S 1000000000ull

static void sink_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	for (uint32_t i = 0; i < b->n; i++)
		ferry_pkt_tx(b->pkts[i], 1);
}

static const struct ferry_service_ops sink_ops = {
	.name = "offload_rl_test_sink",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.process = sink_process,
};

/* The chain `services` (YAML), parsed and configured by the real services. */
static struct svc_harness *make(const char *services)
{
	struct svc_harness *h;

	harness__add_service(&sink_ops);
	h = harness__create(services);
	CU_ASSERT_PTR_NOT_NULL(h);
	return h;
}

static const struct flow_chain *chain(struct svc_harness *h)
{
	return &harness__worker(h)->d->flows[0];
}

/* What ferryd writes for the chain's ratelimit at position pos. */
static struct ferry_rl_params params_of(struct svc_harness *h, int pos)
{
	struct ferry_rl_params p;

	svc_ratelimit__offload_params(chain(h)->conf[pos], 42, &p);
	return p;
}

/* ---- ferry_steer under test_run, one CPU ---- */

struct fx {
	struct ferry_steer_bpf *skel;
	int ncpus;
	cpu_set_t saved;
	uint64_t start_ns;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static bool fx_load(struct fx *f)
{
	cpu_set_t one;
	int cpu = sched_getcpu();

	memset(f, 0, sizeof(*f));
	f->ncpus = libbpf_num_possible_cpus();
	sched_getaffinity(0, sizeof(f->saved), &f->saved);
	CPU_ZERO(&one);
	CPU_SET(cpu < 0 ? 0 : cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one))
		return false;
	f->skel = ferry_steer_bpf__open();
	if (!f->skel)
		return false;
	bpf_map__set_max_entries(f->skel->maps.ferry_sessions, 16);
	bpf_map__set_max_entries(f->skel->maps.ferry_sess_stats, 16);
	if (ferry_steer_bpf__load(f->skel))
		return false;
	f->start_ns = mono_ns();
	return f->ncpus > 0;
}

static void fx_close(struct fx *f)
{
	ferry_steer_bpf__destroy(f->skel);
	f->skel = NULL;
	sched_setaffinity(0, sizeof(f->saved), &f->saved);
}

/* Whether the test ran within a second: nothing refilled at 1 per second. */
static bool fx_quick(const struct fx *f)
{
	return mono_ns() - f->start_ns < NS_PER_S / 2;
}

#define FX_SETUP(f)                                                                                \
	do {                                                                                       \
		if (unit_require_root())                                                           \
			return;                                                                    \
		CU_ASSERT_FATAL(fx_load(f));                                                       \
	} while (0)

/*
 * An offloaded session whose packets from src:sport to 198.18.1.1:5000 arrive
 * on lo (ifindex 1, what test_run says) and leave by lo, in direction dir.
 */
static void fx_session(struct fx *f, const char *src, uint16_t sport, uint8_t dir, uint32_t slot)
{
	struct bpf_devmap_val dv = { .ifindex = 1 };
	struct ferry_sess_key k = {};
	struct ferry_sess v = {};
	__u32 one = 1;

	inet_pton(AF_INET, src, &k.saddr[0]);
	inet_pton(AF_INET, "198.18.1.1", &k.daddr[0]);
	k.sport = htons(sport);
	k.dport = htons(5000);
	k.ifindex = 1;
	k.family = 4;
	k.l4_proto = IPPROTO_UDP;
	inet_pton(AF_INET, "198.18.2.1", &v.saddr[0]);
	inet_pton(AF_INET, "198.18.2.2", &v.daddr[0]);
	v.sport = htons(40000);
	v.dport = htons(6000);
	v.egress_ifindex = 1;
	v.dir = dir;
	v.flow_id = FLOW;
	v.stats_slot = slot;
	CU_ASSERT_EQUAL(bpf_map_update_elem(bpf_map__fd(f->skel->maps.ferry_tx_ports), &one, &dv,
					    BPF_ANY), 0);
	CU_ASSERT_EQUAL(bpf_map_update_elem(bpf_map__fd(f->skel->maps.ferry_sessions), &k, &v,
					    BPF_NOEXIST), 0);
}

static void fx_params(struct fx *f, const struct ferry_rl_params *p)
{
	__u32 key = FLOW;

	CU_ASSERT_EQUAL(bpf_map_update_elem(bpf_map__fd(f->skel->maps.ferry_rl_params), &key, p,
					    BPF_ANY), 0);
}

/* Runs one frame from src:sport with `payload` bytes; the verdict, or -errno. */
static int fx_send(struct fx *f, const char *src, uint16_t sport, uint32_t payload, uint32_t *len)
{
	static const uint8_t zeros[2048];
	uint8_t buf[2048];
	uint32_t n = harness__udp4(buf, src, sport, "198.18.1.1", 5000, zeros, payload);
	struct xdp_md ctx = { .data_end = n, .ingress_ifindex = 1 };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = buf, .data_size_in = n, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);
	int err;

	if (len)
		*len = n;
	err = bpf_prog_test_run_opts(bpf_program__fd(f->skel->progs.ferry_steer), &opts);
	return err ? err : (int)opts.retval;
}

/* Sends n frames; how many were redirected (forwarded), the others must be dropped. */
static uint32_t fx_burst(struct fx *f, const char *src, uint16_t sport, uint32_t payload,
			 uint32_t n, uint32_t *first_drop)
{
	uint32_t passed = 0;

	if (first_drop)
		*first_drop = n;
	for (uint32_t i = 0; i < n; i++) {
		int ret = fx_send(f, src, sport, payload, NULL);

		CU_ASSERT(ret == XDP_REDIRECT || ret == XDP_DROP);
		if (ret == XDP_REDIRECT)
			passed++;
		else if (first_drop && *first_drop == n)
			*first_drop = i;
	}
	return passed;
}

static struct ferry_flow_stats fx_flow(struct fx *f)
{
	struct ferry_flow_stats *vals = calloc((size_t)f->ncpus, sizeof(*vals)), s = {};
	__u32 key = FLOW;

	CU_ASSERT_PTR_NOT_NULL_FATAL(vals);
	CU_ASSERT_EQUAL(bpf_map_lookup_elem(bpf_map__fd(f->skel->maps.ferry_flow_stats), &key,
					    vals), 0);
	for (int c = 0; c < f->ncpus; c++) {
		s.packets += vals[c].packets;
		s.bytes += vals[c].bytes;
		s.reply_packets += vals[c].reply_packets;
		s.offloaded += vals[c].offloaded;
		s.offload_rate_limited += vals[c].offload_rate_limited;
		s.offload_rate_limited_bytes += vals[c].offload_rate_limited_bytes;
		s.offload_rate_limited_reply += vals[c].offload_rate_limited_reply;
		s.offload_rate_limited_reply_bytes += vals[c].offload_rate_limited_reply_bytes;
		s.offload_rate_limited_over_bytes += vals[c].offload_rate_limited_over_bytes;
	}
	free(vals);
	return s;
}

/* ---- the buckets in XDP ---- */

static void test_params(void)
{
	struct svc_harness *h = make("[ {ratelimit: {packets_per_second: 10, burst_packets: 5, "
				     "direction: both}}, offload_rl_test_sink ]");
	struct ferry_rl_params p;

	if (!h)
		return;
	p = params_of(h, 0);
	/* One worker (queues 1): a bucket of 5 packets, refilled at 10 a second. */
	CU_ASSERT_EQUAL(p.gen, 42);
	CU_ASSERT_EQUAL(p.dirs, 3);
	CU_ASSERT_EQUAL(p.per_source, 0);
	CU_ASSERT_EQUAL(p.pkt.rate, 10);
	CU_ASSERT_EQUAL(p.pkt.cost, NS_PER_S);
	CU_ASSERT_EQUAL(p.pkt.cap, 5 * NS_PER_S);
	CU_ASSERT_EQUAL(p.pkt.fill_ns, NS_PER_S / 2);
	CU_ASSERT_EQUAL(p.byte.rate, 0);
	harness__destroy(h);
}

static void test_flow_burst_then_drop(void)
{
	struct svc_harness *h = make("[ {ratelimit: {packets_per_second: 1, burst_packets: 5}}, "
				     "offload_rl_test_sink ]");
	struct ferry_flow_stats fs;
	struct ferry_rl_params p;
	uint32_t passed, first_drop, len;
	struct fx f;

	if (!h)
		return;
	p = params_of(h, 0);
	harness__destroy(h);
	FX_SETUP(&f);
	fx_session(&f, "198.18.0.1", 1000, FERRY_DIR_CLIENT, 0);
	fx_session(&f, "198.18.0.2", 1000, FERRY_DIR_CLIENT, 2);
	fx_params(&f, &p);

	/* Two sources, one flow bucket: 5 pass, whoever sends them. */
	passed = fx_burst(&f, "198.18.0.1", 1000, 18, 3, NULL) +
		 fx_burst(&f, "198.18.0.2", 1000, 18, 12, &first_drop);
	fx_send(&f, "198.18.0.1", 1000, 18, &len);
	fs = fx_flow(&f);
	if (fx_quick(&f)) {
		CU_ASSERT_EQUAL(passed, 5);
		CU_ASSERT_EQUAL(first_drop, 2);
		CU_ASSERT_EQUAL(fs.offload_rate_limited, 16 - 5);
	}
	/* Whatever the timing: every packet was forwarded or counted as dropped. */
	CU_ASSERT(passed >= 5);
	CU_ASSERT_EQUAL(fs.packets, 16);
	CU_ASSERT_EQUAL(fs.offloaded + fs.offload_rate_limited, 16);
	CU_ASSERT_EQUAL(fs.offload_rate_limited_bytes, fs.offload_rate_limited * len);
	CU_ASSERT_EQUAL(fs.offload_rate_limited_reply, 0);
	CU_ASSERT_EQUAL(fs.offload_rate_limited_over_bytes, 0);

	/* A reload's new parameters (another gen) start with a full bucket. */
	p.gen++;
	fx_params(&f, &p);
	passed = fx_burst(&f, "198.18.0.1", 1000, 18, 8, &first_drop);
	if (fx_quick(&f)) {
		CU_ASSERT_EQUAL(passed, 5);
		CU_ASSERT_EQUAL(first_drop, 5);
	}
	CU_ASSERT(passed >= 5);

	/* No ratelimit (gen 0): everything is forwarded. */
	memset(&p, 0, sizeof(p));
	fx_params(&f, &p);
	CU_ASSERT_EQUAL(fx_burst(&f, "198.18.0.1", 1000, 18, 10, NULL), 10);
	fx_close(&f);
}

static void test_flow_split_over_queues(void)
{
	/* Two workers: each CPU's bucket holds half the burst, as each worker's does. */
	struct ferry_rl_params p = { .gen = 7, .dirs = 1 };
	struct fx f;
	uint32_t passed;

	p.pkt.rate = 1;
	p.pkt.cost = 2 * NS_PER_S;
	p.pkt.cap = 6 * NS_PER_S;
	p.pkt.fill_ns = 6 * NS_PER_S;
	FX_SETUP(&f);
	fx_session(&f, "198.18.0.1", 1000, FERRY_DIR_CLIENT, 0);
	fx_params(&f, &p);
	passed = fx_burst(&f, "198.18.0.1", 1000, 18, 10, NULL);
	if (fx_quick(&f))
		CU_ASSERT_EQUAL(passed, 3);
	CU_ASSERT(passed >= 3);
	CU_ASSERT_EQUAL(fx_flow(&f).offload_rate_limited, 10 - passed);
	fx_close(&f);
}

static void test_per_source(void)
{
	struct svc_harness *h =
		make("[ {ratelimit: {packets_per_second: 1, burst_packets: 4, per: source}}, "
		     "offload_rl_test_sink ]");
	struct ferry_rl_params p;
	uint32_t a, b, a2;
	struct fx f;

	if (!h)
		return;
	p = params_of(h, 0);
	harness__destroy(h);
	CU_ASSERT_EQUAL(p.per_source, 1);
	FX_SETUP(&f);
	fx_session(&f, "198.18.0.1", 1000, FERRY_DIR_CLIENT, 0);
	fx_session(&f, "198.18.0.1", 1001, FERRY_DIR_CLIENT, 2);
	fx_session(&f, "198.18.0.2", 1000, FERRY_DIR_CLIENT, 4);
	fx_params(&f, &p);
	/* Source .1 over two sessions shares one bucket; source .2 has its own. */
	a = fx_burst(&f, "198.18.0.1", 1000, 18, 3, NULL);
	a2 = fx_burst(&f, "198.18.0.1", 1001, 18, 5, NULL);
	b = fx_burst(&f, "198.18.0.2", 1000, 18, 9, NULL);
	if (fx_quick(&f)) {
		CU_ASSERT_EQUAL(a, 3);
		CU_ASSERT_EQUAL(a2, 1);
		CU_ASSERT_EQUAL(b, 4);
	}
	CU_ASSERT(a + a2 >= 4 && b >= 4);
	CU_ASSERT_EQUAL(fx_flow(&f).offload_rate_limited, 17 - a - a2 - b);
	fx_close(&f);
}

static void test_bytes(void)
{
	struct svc_harness *h = make("[ {ratelimit: {bytes_per_second: 1, burst_bytes: 5000}}, "
				     "offload_rl_test_sink ]");
	struct ferry_flow_stats fs;
	struct ferry_rl_params p;
	uint32_t len, big, fit;
	struct fx f;

	if (!h)
		return;
	p = params_of(h, 0);
	harness__destroy(h);
	CU_ASSERT_EQUAL(p.pkt.rate, 0);
	CU_ASSERT_EQUAL(p.byte.cap, 5000 * NS_PER_S);
	FX_SETUP(&f);
	fx_session(&f, "198.18.0.1", 1000, FERRY_DIR_CLIENT, 0);
	fx_params(&f, &p);
	/* 1042-byte frames: 4 fit in 5000 bytes, 832 are left. */
	CU_ASSERT_EQUAL(fx_send(&f, "198.18.0.1", 1000, 1000, &len), XDP_REDIRECT);
	CU_ASSERT_EQUAL(len, 1042);
	big = fx_burst(&f, "198.18.0.1", 1000, 1000, 5, NULL);
	/* A small frame still fits where a big one did not. */
	fit = fx_burst(&f, "198.18.0.1", 1000, 18, 1, NULL);
	fs = fx_flow(&f);
	CU_ASSERT_EQUAL(big, 3);
	CU_ASSERT_EQUAL(fit, 1);
	CU_ASSERT_EQUAL(fs.offload_rate_limited, 2);
	CU_ASSERT_EQUAL(fs.offload_rate_limited_over_bytes, 2);
	CU_ASSERT_EQUAL(fs.offload_rate_limited_bytes, 2 * 1042);
	fx_close(&f);
}

static void test_direction(void)
{
	struct svc_harness *h = make("[ {ratelimit: {packets_per_second: 1, burst_packets: 2, "
				     "direction: reply}}, offload_rl_test_sink ]");
	struct ferry_flow_stats fs;
	struct ferry_rl_params p;
	uint32_t client, reply;
	struct fx f;

	if (!h)
		return;
	p = params_of(h, 0);
	harness__destroy(h);
	FX_SETUP(&f);
	/* (A reply's entry looks like any other: only its dir says what it is.) */
	fx_session(&f, "198.18.0.1", 1000, FERRY_DIR_CLIENT, 0);
	fx_session(&f, "198.18.0.9", 1000, FERRY_DIR_REPLY, 1);
	fx_params(&f, &p);
	client = fx_burst(&f, "198.18.0.1", 1000, 18, 6, NULL);
	reply = fx_burst(&f, "198.18.0.9", 1000, 18, 6, NULL);
	fs = fx_flow(&f);
	CU_ASSERT_EQUAL(client, 6);
	if (fx_quick(&f))
		CU_ASSERT_EQUAL(reply, 2);
	CU_ASSERT(reply >= 2);
	CU_ASSERT_EQUAL(fs.offload_rate_limited, 6 - reply);
	CU_ASSERT_EQUAL(fs.offload_rate_limited_reply, 6 - reply);
	CU_ASSERT_EQUAL(fs.reply_packets, 6);
	fx_close(&f);
}

/* ---- the fold into the published counters, and which chains ---- */

static void test_fold(void)
{
	struct svc_harness *h =
		make("[ {filter: {allow: [{source: 198.18.0.0/24}]}}, "
		     "{ratelimit: {packets_per_second: 10, bytes_per_second: 100000}}, "
		     "offload_rl_test_sink ]");
	struct offload_counts c = {
		.client = 10, .client_bytes = 1000, .reply = 2, .reply_bytes = 200,
		.rl_client = 5, .rl_client_bytes = 500, .rl_reply = 1, .rl_reply_bytes = 100,
		.rl_over_bytes = 2,
	};
	struct ferry_svc_stats st[3];
	struct ferry_fwd_stats fwd = {};
	struct ferry_daemon *d;

	if (!h)
		return;
	d = harness__worker(h)->d;
	memset(st, 0, sizeof(st));
	for (int pos = 0; pos < 3; pos++)
		offload__add_svc(d, 0, pos, &c, &st[pos]);
	/* filter: saw and allowed every packet, the dropped ones too. */
	CU_ASSERT_EQUAL(st[0].packets_in, 18);
	CU_ASSERT_EQUAL(st[0].bytes_in, 1800);
	CU_ASSERT_EQUAL(st[0].passed, 18);
	CU_ASSERT_EQUAL(st[0].dropped, 0);
	CU_ASSERT_EQUAL(st[0].counters[0], 15); /* allowed: client packets only */
	/* ratelimit: dropped 6, 2 of them for the byte bucket. */
	CU_ASSERT_EQUAL(st[1].packets_in, 18);
	CU_ASSERT_EQUAL(st[1].passed, 12);
	CU_ASSERT_EQUAL(st[1].dropped, 6);
	CU_ASSERT_EQUAL(st[1].counters[2], 4); /* over_packets */
	CU_ASSERT_EQUAL(st[1].counters[3], 2); /* over_bytes */
	/* the last service never saw them. */
	CU_ASSERT_EQUAL(st[2].packets_in, 12);
	CU_ASSERT_EQUAL(st[2].bytes_in, 1200);
	CU_ASSERT_EQUAL(st[2].sent, 12);
	CU_ASSERT_EQUAL(st[2].dropped, 0);

	offload__add_fwd(&c, &fwd);
	CU_ASSERT_EQUAL(fwd.rx_packets, 18);
	CU_ASSERT_EQUAL(fwd.rx_bytes, 1800);
	CU_ASSERT_EQUAL(fwd.tx_packets, 10);
	CU_ASSERT_EQUAL(fwd.reply_packets, 2);
	CU_ASSERT_EQUAL(fwd.drop_rate_limited, 6);
	harness__destroy(h);
}

static void test_decide(void)
{
	struct svc_harness *h = make("[ {ratelimit: {packets_per_second: 10}}, "
				     "{ratelimit: {packets_per_second: 20, per: source}}, "
				     "offload_rl_test_sink ]");
	struct ferry_daemon *d;
	struct flow_chain ch;
	struct cfg_flow flow;

	if (!h)
		return;
	d = harness__worker(h)->d;
	d->cfg.nat.offload_max_sessions = 64;
	memset(&flow, 0, sizeof(flow));
	/* ratelimit + forward: offloaded. */
	memset(&ch, 0, sizeof(ch));
	ch.ops[0] = service__find("ratelimit");
	ch.conf[0] = chain(h)->conf[0];
	ch.ops[1] = service__find("forward");
	ch.nr = 2;
	offload__decide(d, &ch, &flow);
	CU_ASSERT(ch.offload);
	/* per source too. */
	ch.conf[0] = chain(h)->conf[1];
	offload__decide(d, &ch, &flow);
	CU_ASSERT(ch.offload);
	/* Two of them: one bucket set per flow in XDP, so the workers keep it. */
	ch.ops[1] = service__find("ratelimit");
	ch.conf[1] = chain(h)->conf[1];
	ch.ops[2] = service__find("forward");
	ch.nr = 3;
	offload__decide(d, &ch, &flow);
	CU_ASSERT(!ch.offload);
	CU_ASSERT_STRING_EQUAL(ch.offload_why, "ratelimit: more than one in the chain");
	harness__destroy(h);
}

static CU_TestInfo offload_rl_tests[] = {
	{ "params from the service's config", test_params },
	{ "xdp per flow: burst, then drops, counted", test_flow_burst_then_drop },
	{ "xdp per flow: a CPU's share of two queues", test_flow_split_over_queues },
	{ "xdp per source: a bucket per address", test_per_source },
	{ "xdp byte bucket", test_bytes },
	{ "xdp direction: replies only", test_direction },
	{ "fold into fwd and service counters", test_fold },
	{ "decide: one ratelimit offloads, two do not", test_decide },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(offload_rl, "offload_ratelimit", offload_rl_tests, NULL, NULL);
