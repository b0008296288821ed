// SPDX-License-Identifier: BSD-2-Clause
/*
 * The service ABI (services/ferry_service.h, services/ferry_service.map):
 * what this binary exports is the ABI's functions and nothing of ferryd's
 * internals (it is linked with the same dynamic list as ferryd and loads
 * service objects too), the public header's enum ferry_dir agrees with
 * bpf/ferry_shared.h's, the flow accessors read the flow a service was
 * configured for, and a service's next hops (ferry_worker__route()) and
 * session lookups (ferry_worker__session()) through the harness, with a
 * kernel for next hops (harness__create_net, so root).
 */
/*
 * First, so this file's enum ferry_dir is bpf/ferry_shared.h's (it includes
 * the public header only after defining it).
 */
#include "ferry_shared.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>

#include "config.h"
#include "service.h"
#include "service_abi_public.h"
#include "svc_harness.h"
#include "unit.h"

/* Every function of the ABI: a service object resolves these in the binary that loads it. */
static const char *const abi_functions[] = {
    "ferry_batch__emit",
    "ferry_flow__family",
    "ferry_flow__l4_proto",
    "ferry_flow__name",
    "ferry_pkt_fix_checksums",
    "ferry_pkt_set_payload_len",
    "ferry_service__log",
    "ferry_session__age_ns",
    "ferry_session__client",
    "ferry_session__flow_id",
    "ferry_session__idle_ns",
    "ferry_session__upstream",
    "ferry_worker__frame_room",
    "ferry_worker__hold",
    "ferry_worker__id",
    "ferry_worker__now_ns",
    "ferry_worker__route",
    "ferry_worker__route_fini",
    "ferry_worker__route_init",
    "ferry_worker__route_poll",
    "ferry_worker__session",
    "ferry_worker__send_held",
    "ferry_worker__wake_at",
    "cfg_args_parse",
    "cfg_for_each_item",
    "cfg_get_bool",
    "cfg_get_endpoint",
    "cfg_get_port_range",
    "cfg_get_prefix",
    "cfg_get_string",
    "cfg_get_u32",
    "cfg_iter_init",
    "cfg_iter_next",
    "cfg_map_get",
    "cfg_mark_error",
    "cfg_node_error",
    "cfg_node_is_map",
    "cfg_node_mark",
    "cfg_seq_item",
    "cfg_seq_len",
};

/* Internals a service once could call (ferryd was linked -rdynamic): now out of reach. */
static const char *const internal_functions[] = {
    "worker__run_chain",
    "worker__flush_tx",
    "ferry_worker__nat",
    "ferry_worker__nh_get",
    "ferry_worker__nh_poll",
    "nh_cache__prepare_deferred",
    "ferry_worker__flow_stats",
    "ferry_daemon__add_rule",
    "ferry_daemon__config",
    "config__load_string",
    "nat_table__create",
    "pkt_parse",
    "service__find",
    "svc_loader__create",
    "log__msg",
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void test_exports(void)
{
	for (size_t i = 0; i < ARRAY_LEN(abi_functions); i++) {
		if (!dlsym(RTLD_DEFAULT, abi_functions[i])) {
			fprintf(stderr, "\n  not exported: %s", abi_functions[i]);
			CU_FAIL("an ABI function is not exported");
		}
	}
	for (size_t i = 0; i < ARRAY_LEN(internal_functions); i++) {
		if (dlsym(RTLD_DEFAULT, internal_functions[i])) {
			fprintf(stderr, "\n  exported: %s", internal_functions[i]);
			CU_FAIL("an internal function is exported");
		}
	}
}

static void test_dir_agrees(void)
{
	CU_ASSERT_EQUAL(abi_public_dir_client, FERRY_DIR_CLIENT);
	CU_ASSERT_EQUAL(abi_public_dir_reply, FERRY_DIR_REPLY);
}

static void test_flow_accessors(void)
{
	static struct ferry_config cfg;
	struct cfg_errors errs = {0};
	struct ferry_flow_ctx fc = {0};
	const char *yaml = "interfaces:\n"
			   "  - name: px-c\n"
			   "flows:\n"
			   "  - name: v4udp\n"
			   "    match:\n"
			   "      protocol: udp\n"
			   "      destination: 198.18.1.1\n"
			   "      port: 5000\n"
			   "    services:\n"
			   "      - example_tag: {value: 1}\n"
			   "  - name: v6tcp\n"
			   "    match:\n"
			   "      protocol: tcp\n"
			   "      destination: fd00::1\n"
			   "      port: 80\n"
			   "    services:\n"
			   "      - example_tag: {value: 1}\n";

	CU_ASSERT_EQUAL_FATAL(config__load_string(&cfg, "t.yaml", yaml, &errs), 0);
	fc.flow = &cfg.flows[0];
	CU_ASSERT_STRING_EQUAL(ferry_flow__name(&fc), "v4udp");
	CU_ASSERT_EQUAL(ferry_flow__family(&fc), AF_INET);
	CU_ASSERT_EQUAL(ferry_flow__l4_proto(&fc), IPPROTO_UDP);
	fc.flow = &cfg.flows[1];
	CU_ASSERT_STRING_EQUAL(ferry_flow__name(&fc), "v6tcp");
	CU_ASSERT_EQUAL(ferry_flow__family(&fc), AF_INET6);
	CU_ASSERT_EQUAL(ferry_flow__l4_proto(&fc), IPPROTO_TCP);
	config__free(&cfg);
}


/* ---- next hops: a service that sends each packet towards its own destination ---- */

#define ROUTE_MAX 64

/* ferry_worker__route()'s returns, in call order, for the test to read. */
static int route_ret[ROUTE_MAX];
static uint32_t route_nr;

/* The worker is kept as the worker state: worker_destroy() gets no other. */
static int route_worker_init(void *conf, struct ferry_worker *w, void **wstate)
{
	int err = ferry_worker__route_init(w);

	if (!err)
		*wstate = w;
	return err;
}

static void route_worker_destroy(void *conf, void *wstate)
{
	ferry_worker__route_fini(wstate);
}

static void route_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	int family = conf ? *(const int *)conf : 0;

	ferry_worker__route_poll(w);
	for (uint32_t i = 0; i < b->n; i++) {
		struct ferry_pkt *p = b->pkts[i];
		int f = family ? family : ferry_pkt_family(p) == 4 ? AF_INET : AF_INET6;
		int ret = ferry_worker__route(w, p, f, ferry_pkt_daddr(p));

		if (route_nr < ROUTE_MAX)
			route_ret[route_nr++] = ret;
	}
}

static void route_tick(void *conf, void *wstate, struct ferry_worker *w)
{
	ferry_worker__route_poll(w);
}

static const struct ferry_service_ops route_ops = {
	.name = "abi_route",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.worker_init = route_worker_init,
	.process = route_process,
	.tick = route_tick,
	.worker_destroy = route_worker_destroy,
};

/* The same without ferry_worker__route_init(): the worker has no next hops for it. */
static const struct ferry_service_ops route_noinit_ops = {
	.name = "abi_route_noinit",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.process = route_process,
};

static int bad_family = 5;

static int route_bad_configure(const struct ferry_flow_ctx *fc, const struct cfg_node *args,
			       struct cfg_errors *errs, void **conf)
{
	*conf = &bad_family;
	return 0;
}

/* A family ferry_worker__route() does not know. */
static const struct ferry_service_ops route_bad_ops = {
	.name = "abi_route_bad",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.configure = route_bad_configure,
	.worker_init = route_worker_init,
	.process = route_process,
	.worker_destroy = route_worker_destroy,
};

#define MATCH4 "{protocol: udp, destination: 198.18.1.1, port: 5000}"
#define MATCH6 "{protocol: udp, destination: fd00:1::1, port: 5000}"

static void run_one4(struct svc_harness *h, const char *dst)
{
	static uint8_t frame[256];
	const uint8_t *frames[1] = { frame };
	uint32_t lens[1];

	lens[0] = harness__udp4(frame, "198.18.1.2", 4321, dst, 5000, "route", 5);
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 1), 1);
}

static void run_one6(struct svc_harness *h, const char *dst)
{
	static uint8_t frame[256];
	const uint8_t *frames[1] = { frame };
	uint32_t lens[1];

	lens[0] = harness__udp6(frame, "fd00:1::2", 4321, dst, 5000, "route", 5);
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 1), 1);
}

/* The last output went out of h-out with dst's MAC and the port's own. */
static void check_out_to(struct svc_harness *h, const char *dst)
{
	const struct harness_out *o;
	uint8_t mac[6];

	CU_ASSERT_EQUAL_FATAL(harness__nr_out(h), 1);
	o = harness__out(h, 0);
	CU_ASSERT_EQUAL(o->port, 1);
	harness__neigh_mac(dst, mac);
	CU_ASSERT_EQUAL(memcmp(o->data, mac, 6), 0);
	harness__port_mac(1, mac);
	CU_ASSERT_EQUAL(memcmp(o->data + 6, mac, 6), 0);
	harness__clear_out(h);
}

static void test_route(void)
{
	struct svc_harness *h;

	if (unit_require_root())
		return;
	harness__add_service(&route_ops);
	h = harness__create_net(MATCH4, "[ {abi_route: {}} ]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	route_nr = 0;
	/* A new destination: held while its lookup waits for the slot, then sent. */
	run_one4(h, "198.18.2.3");
	CU_ASSERT_EQUAL(route_ret[0], FERRY_ROUTE_HELD);
	check_out_to(h, "198.18.2.3");
	CU_ASSERT_EQUAL(harness__flow_stats(h)->nh_lookups, 1);
	/* Known now: sent at once, no lookup. */
	run_one4(h, "198.18.2.3");
	CU_ASSERT_EQUAL(route_ret[1], 0);
	check_out_to(h, "198.18.2.3");
	CU_ASSERT_EQUAL(harness__flow_stats(h)->nh_lookups, 1);
	/*
	 * Another subnet behind the same port, the same cache: one lookup per
	 * slot (1 ms), so it waits held for the next one.
	 */
	run_one4(h, "198.18.3.4");
	CU_ASSERT_EQUAL(route_ret[2], FERRY_ROUTE_HELD);
	CU_ASSERT_EQUAL(harness__nr_out(h), 0);
	CU_ASSERT_EQUAL(harness__held_frames(h), 1);
	harness__tick(h, 1000000);
	check_out_to(h, "198.18.3.4");
	/* No route: held for its lookup, dropped as no_route; then dropped at once. */
	harness__tick(h, 1000000);
	run_one4(h, "198.18.99.9");
	CU_ASSERT_EQUAL(route_ret[3], FERRY_ROUTE_HELD);
	harness__tick(h, 1000000);
	CU_ASSERT_EQUAL(harness__nr_out(h), 0);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_no_route, 1);
	run_one4(h, "198.18.99.9");
	CU_ASSERT_EQUAL(route_ret[4], -ENETUNREACH);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_no_route, 2);
	CU_ASSERT_EQUAL(harness__held_frames(h), 0);

	/*
	 * A burst to a new destination: the cache holds up to NH_HOLD_MAX (32)
	 * frames per entry, the next is dropped as no_neighbour; the held ones
	 * all leave once it resolves.
	 */
	{
		static uint8_t burst[33][128];
		const uint8_t *frames[33];
		uint32_t lens[33];
		uint32_t held = 0;

		harness__tick(h, 1000000);
		for (int i = 0; i < 33; i++) {
			frames[i] = burst[i];
			lens[i] = harness__udp4(burst[i], "198.18.1.2", 4321, "198.18.2.7", 5000,
						"burst", 5);
		}
		route_nr = 0;
		CU_ASSERT_EQUAL(harness__run(h, frames, lens, 33), 33);
		CU_ASSERT_EQUAL_FATAL(route_nr, 33);
		for (int i = 0; i < 32; i++)
			held += route_ret[i] == FERRY_ROUTE_HELD;
		CU_ASSERT_EQUAL(held, 32);
		CU_ASSERT_EQUAL(route_ret[32], -EHOSTUNREACH);
		CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_no_neighbour, 1);
		harness__tick(h, 1000000);
		CU_ASSERT_EQUAL(harness__nr_out(h), 32);
		CU_ASSERT_EQUAL(harness__held_frames(h), 0);
		harness__clear_out(h);
	}
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__destroy(h);

	route_nr = 0;
	h = harness__create_net(MATCH6, "[ {abi_route: {}} ]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	run_one6(h, "fd00:2::5");
	CU_ASSERT_EQUAL(route_ret[0], FERRY_ROUTE_HELD);
	check_out_to(h, "fd00:2::5");
	run_one6(h, "fd00:2::5");
	CU_ASSERT_EQUAL(route_ret[1], 0);
	check_out_to(h, "fd00:2::5");
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__destroy(h);
}

static void test_route_refused(void)
{
	struct svc_harness *h;

	harness__add_service(&route_noinit_ops);
	harness__add_service(&route_bad_ops);
	/* No ferry_worker__route_init() on this worker: dropped as no_route. */
	route_nr = 0;
	h = harness__create_match(MATCH4, "[ {abi_route_noinit: {}} ]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	run_one4(h, "198.18.2.3");
	CU_ASSERT_EQUAL(route_ret[0], -ENODEV);
	CU_ASSERT_EQUAL(harness__nr_out(h), 0);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_no_route, 1);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__destroy(h);

	if (unit_require_root())
		return;
	/* A family that is neither: malformed, whatever the cache knows. */
	route_nr = 0;
	h = harness__create_net(MATCH4, "[ {abi_route_bad: {}} ]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	run_one4(h, "198.18.2.3");
	CU_ASSERT_EQUAL(route_ret[0], -EINVAL);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_malformed, 1);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__destroy(h);
}

/* ---- sessions: what a service before and one after forward find ---- */

struct probe_rec {
	uint32_t seen, found;
	uint32_t flow_id;
	struct ferry_tuple client, upstream;
	uint64_t age_ns, idle_ns;
};

static struct probe_rec probe_before, probe_after;

static int probe_before_configure(const struct ferry_flow_ctx *fc, const struct cfg_node *args,
				  struct cfg_errors *errs, void **conf)
{
	*conf = &probe_before;
	return 0;
}

static int probe_after_configure(const struct ferry_flow_ctx *fc, const struct cfg_node *args,
				 struct cfg_errors *errs, void **conf)
{
	*conf = &probe_after;
	return 0;
}

static void probe_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	struct probe_rec *r = conf;

	for (uint32_t i = 0; i < b->n; i++) {
		const struct ferry_session *s = ferry_worker__session(w, b->pkts[i]);

		r->seen++;
		if (!s)
			continue;
		r->found++;
		r->flow_id = ferry_session__flow_id(s);
		ferry_session__client(s, &r->client);
		ferry_session__upstream(s, &r->upstream);
		r->age_ns = ferry_session__age_ns(s, w);
		r->idle_ns = ferry_session__idle_ns(s, w);
	}
}

static const struct ferry_service_ops probe_before_ops = {
	.name = "abi_probe_before",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.configure = probe_before_configure,
	.process = probe_process,
};

/* After forward: sees the packets it sent (.sees_tx). */
static const struct ferry_service_ops probe_after_ops = {
	.name = "abi_probe_after",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.configure = probe_after_configure,
	.process = probe_process,
	.sees_tx = true,
};

static bool addr_is(const union ferry_addr *a, const char *text)
{
	union ferry_addr want = {0};

	return inet_pton(AF_INET, text, want.b) == 1 && !memcmp(a->b, want.b, sizeof(want.b));
}

static void run_client(struct svc_harness *h, uint16_t sport)
{
	static uint8_t frame[256];
	const uint8_t *frames[1] = { frame };
	uint32_t lens[1];

	harness__set_dir(h, FERRY_DIR_CLIENT);
	lens[0] = harness__udp4(frame, "198.18.1.2", sport, "198.18.1.1", 5000, "hello", 5);
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 1), 1);
}

static void run_reply(struct svc_harness *h, uint16_t dport)
{
	static uint8_t frame[256];
	const uint8_t *frames[1] = { frame };
	uint32_t lens[1];

	harness__set_dir(h, FERRY_DIR_REPLY);
	lens[0] = harness__udp4(frame, "198.18.2.2", 6000, "198.18.2.1", dport, "olleh", 5);
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 1), 1);
}

static void test_session(void)
{
	struct svc_harness *h;
	uint16_t nat_port;

	if (unit_require_root())
		return;
	harness__add_service(&probe_before_ops);
	harness__add_service(&probe_after_ops);
	memset(&probe_before, 0, sizeof(probe_before));
	memset(&probe_after, 0, sizeof(probe_after));
	h = harness__create_net(MATCH4, "[ {abi_probe_before: {}}, "
					"{forward: {upstream: 198.18.2.2:6000}}, {abi_probe_after: {}} ]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);

	/* The first packet: no session before forward, its new one after. */
	run_client(h, 4321);
	CU_ASSERT_EQUAL(probe_before.seen, 1);
	CU_ASSERT_EQUAL(probe_before.found, 0);
	CU_ASSERT_EQUAL(harness__nr_out(h), 1);
	CU_ASSERT_EQUAL(probe_after.seen, 1);
	CU_ASSERT_EQUAL_FATAL(probe_after.found, 1);
	CU_ASSERT_EQUAL(probe_after.flow_id, 0);
	CU_ASSERT(addr_is(&probe_after.client.saddr, "198.18.1.2"));
	CU_ASSERT(addr_is(&probe_after.client.daddr, "198.18.1.1"));
	CU_ASSERT_EQUAL(probe_after.client.sport, 4321);
	CU_ASSERT_EQUAL(probe_after.client.dport, 5000);
	CU_ASSERT_EQUAL(probe_after.client.family, 4);
	CU_ASSERT_EQUAL(probe_after.client.l4_proto, IPPROTO_UDP);
	CU_ASSERT(addr_is(&probe_after.upstream.saddr, "198.18.2.1"));
	CU_ASSERT(addr_is(&probe_after.upstream.daddr, "198.18.2.2"));
	CU_ASSERT_EQUAL(probe_after.upstream.dport, 6000);
	CU_ASSERT(probe_after.upstream.sport >= 40000 && probe_after.upstream.sport <= 40999);
	CU_ASSERT_EQUAL(probe_after.age_ns, 0);
	nat_port = probe_after.upstream.sport;
	harness__clear_out(h);

	/* 5 ms later: found before forward too, as old and as idle as that. */
	harness__tick(h, 5000000);
	run_client(h, 4321);
	CU_ASSERT_EQUAL(probe_before.found, 1);
	CU_ASSERT_EQUAL(probe_before.age_ns, 5000000);
	CU_ASSERT_EQUAL(probe_before.idle_ns, 5000000);
	CU_ASSERT_EQUAL(probe_before.client.sport, 4321);
	CU_ASSERT_EQUAL(probe_before.upstream.sport, nat_port);
	/* Forward saw it after: it is no longer idle. */
	CU_ASSERT_EQUAL(probe_after.found, 2);
	CU_ASSERT_EQUAL(probe_after.idle_ns, 0);
	CU_ASSERT_EQUAL(probe_after.age_ns, 5000000);

	/* Another client port: another (new) session. */
	run_client(h, 4322);
	CU_ASSERT_EQUAL(probe_before.found, 1);
	CU_ASSERT_EQUAL(probe_after.found, 3);
	CU_ASSERT_EQUAL(probe_after.client.sport, 4322);
	CU_ASSERT_NOT_EQUAL(probe_after.upstream.sport, nat_port);

	/* A reply finds its session by the upstream's tuple; one to an unused NAT port none. */
	memset(&probe_before.client, 0, sizeof(probe_before.client));
	run_reply(h, nat_port);
	CU_ASSERT_EQUAL(probe_before.found, 2);
	CU_ASSERT_EQUAL(probe_before.client.sport, 4321);
	CU_ASSERT_EQUAL(probe_before.upstream.sport, nat_port);
	run_reply(h, nat_port == 40999 ? 40000 : 40999);
	CU_ASSERT_EQUAL(probe_before.seen, 5);
	CU_ASSERT_EQUAL(probe_before.found, 2);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__destroy(h);
}

/*
 * The example service (services/examples/svc_example_tag.c, built against
 * the installed header alone) with sessions_only, in front of forward: a
 * client's first packet has no session yet and passes untagged, its second
 * is tagged.  Loaded from next to this binary (build/tests/svc/).
 */
static void test_example_sessions_only(void)
{
	static struct ferry_service_ops tag;
	const struct ferry_service_ops *ops;
	uint8_t frame[256];
	const uint8_t *frames[1] = { frame };
	uint64_t c[FERRY_SERVICE_COUNTERS] = {0};
	struct svc_harness *h;
	char exe[PATH_MAX], so[PATH_MAX + 32];
	uint32_t lens[1];
	void *dl;
	ssize_t n;

	if (unit_require_root())
		return;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	CU_ASSERT_FATAL(n > 0);
	exe[n] = '\0';
	snprintf(so, sizeof(so), "%s/svc/example_tag.so", dirname(exe));
	dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dl);
	ops = dlsym(dl, FERRY_SERVICE_SYMBOL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ops);
	/* The harness keeps what it is given: a copy, under a name of this test's. */
	tag = *ops;
	tag.name = "abi_example_tag";
	harness__add_service(&tag);
	h = harness__create_net(MATCH4, "[ {abi_example_tag: {value: 0x42, sessions_only: true}}, "
					"{forward: {upstream: 198.18.2.2:6000}} ]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	for (int i = 0; i < 2; i++) {
		lens[0] = harness__udp4(frame, "198.18.1.2", 4321, "198.18.1.1", 5000, "abcd", 4);
		CU_ASSERT_EQUAL(harness__run(h, frames, lens, 1), 1);
		CU_ASSERT_EQUAL_FATAL(harness__nr_out(h), 1);
		/* The first payload byte: the tag on the second packet only. */
		CU_ASSERT_EQUAL(harness__out(h, 0)->data[42], i ? 0x42 : 'a');
		harness__clear_out(h);
	}
	harness__service_counters(h, 0, c);
	CU_ASSERT_EQUAL(c[0], 1); /* tagged */
	CU_ASSERT_EQUAL(c[2], 1); /* no_session */
	CU_ASSERT_STRING_EQUAL(tag.counter_names[2], "no_session");
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__destroy(h);
	/* Nothing runs its code any more; the copy's name finds it no more either. */
	tag.name = "abi_example_tag (closed)";
	dlclose(dl);
}

static CU_TestInfo tests[] = {
    {"exports the ABI's functions and no internals", test_exports},
    {"public and BPF enum ferry_dir agree", test_dir_agrees},
    {"flow accessors", test_flow_accessors},
    {"route: next hop from the worker's cache, held while it resolves", test_route},
    {"route: refused without init or with a bad family", test_route_refused},
    {"session: found before and after forward, tuples and times", test_session},
    {"session: the example service tags only packets with a session", test_example_sessions_only},
    CU_TEST_INFO_NULL,
};

UNIT_SUITE(service_abi, "service_abi", tests, NULL, NULL);
