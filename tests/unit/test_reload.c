// SPDX-License-Identifier: BSD-2-Clause
/*
 * reload__plan(): which flows a reload keeps, changes, adds and removes,
 * which flow ids they get, and which changes are refused as needing a
 * restart.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "nat.h"
#include "reload.h"
#include "unit.h"

/* Large (64 flows each): static rather than on the test's stack. */
static struct ferry_config old_cfg, new_cfg;
static struct cfg_errors errs;

static const char *head = "interfaces: [{name: a0}, {name: a1}]\n"
			  "nat: {ports: 40000-40999}\n"
			  "flows:\n";

static const char *flow_a = "  - name: A\n"
			    "    match: {protocol: udp, destination: 198.18.1.1, port: 5000}\n"
			    "    services: [{forward: {upstream: 198.18.2.2:6000}}]\n";

static int load(struct ferry_config *cfg, const char *top, const char *flows)
{
	char yaml[4096];

	snprintf(yaml, sizeof(yaml), "%s%s", top, flows);
	free(errs.capture);
	memset(&errs, 0, sizeof(errs));
	errs.capture = strdup("");
	return config__load_string(cfg, "t.yaml", yaml, &errs);
}

/* Plans old -> new with the old flows at the given ids. */
static int plan_of(const char *old_top, const char *old_flows, const uint32_t *ids,
		   const char *new_top, const char *new_flows, struct reload_plan *plan)
{
	uint32_t old_id[CFG_MAX_FLOWS] = {};
	int err;

	CU_ASSERT_EQUAL_FATAL(load(&old_cfg, old_top, old_flows), 0);
	for (int i = 0; i < old_cfg.nr_flows; i++)
		old_id[i] = ids ? ids[i] : (uint32_t)i;
	CU_ASSERT_EQUAL_FATAL(load(&new_cfg, new_top, new_flows), 0);
	err = reload__plan(&old_cfg, old_id, &new_cfg, plan, &errs);
	return err;
}

static void done(void)
{
	config__free(&old_cfg);
	config__free(&new_cfg);
	free(errs.capture);
	memset(&errs, 0, sizeof(errs));
}

static void test_identical(void)
{
	struct reload_plan p;

	CU_ASSERT_EQUAL(plan_of(head, flow_a, NULL, head, flow_a, &p), 0);
	CU_ASSERT_EQUAL(p.unchanged_count, 1);
	CU_ASSERT_EQUAL(p.added + p.changed + p.removed, 0);
	CU_ASSERT(p.unchanged[0]);
	CU_ASSERT_EQUAL(p.new_id[0], 0);
	CU_ASSERT_EQUAL(p.keep_mask, 1);
	CU_ASSERT_EQUAL(p.drop_mask | p.add_mask, 0);
	done();
}

/* Formatting, key order and flow order carry no meaning; ids stay. */
static void test_same_meaning(void)
{
	const char *old_flows = "  - name: B\n"
				"    match: {protocol: udp, destination: 198.18.1.1, port: 5001}\n"
				"    services: [{forward: {upstream: 198.18.2.2:7000}}]\n";
	const char *new_flows = "  - services:\n"
				"      - forward:\n"
				"          upstream: \"198.18.2.2:7000\"\n"
				"    match: {port: 5001, destination: 198.18.1.1, protocol: udp}\n"
				"    name: B\n";
	char o[1024], n[1024];
	const uint32_t ids[] = { 3, 7 };
	struct reload_plan p;

	snprintf(o, sizeof(o), "%s%s", flow_a, old_flows);
	snprintf(n, sizeof(n), "%s%s", new_flows, flow_a);
	CU_ASSERT_EQUAL(plan_of(head, o, ids, head, n, &p), 0);
	CU_ASSERT_EQUAL(p.unchanged_count, 2);
	CU_ASSERT_EQUAL(p.new_id[0], 7); /* B, now listed first */
	CU_ASSERT_EQUAL(p.new_id[1], 3);
	CU_ASSERT_EQUAL(p.nr_ids, 8);
	done();
}

static void test_change_add_remove(void)
{
	const char *old_flows = "  - name: B\n"
				"    match: {protocol: udp, destination: 198.18.1.1, port: 5001}\n"
				"    services: [{forward: {upstream: 198.18.2.2:7000}}]\n"
				"  - name: C\n"
				"    match: {protocol: udp, destination: 198.18.1.1, port: 5002}\n"
				"    services: [{forward: {upstream: 198.18.2.2:7000}}]\n";
	const char *new_flows = "  - name: B\n"
				"    match: {protocol: udp, destination: 198.18.1.1, port: 5001}\n"
				"    services: [{forward: {upstream: 198.18.2.2:7001}}]\n"
				"  - name: D\n"
				"    match: {protocol: udp, destination: 198.18.1.1, port: 5003}\n"
				"    services: [{forward: {upstream: 198.18.2.2:7000}}]\n";
	char o[2048], n[2048];
	struct reload_plan p;

	snprintf(o, sizeof(o), "%s%s", flow_a, old_flows);
	snprintf(n, sizeof(n), "%s%s", flow_a, new_flows);
	CU_ASSERT_EQUAL(plan_of(head, o, NULL, head, n, &p), 0);
	CU_ASSERT_EQUAL(p.unchanged_count, 1);
	CU_ASSERT_EQUAL(p.changed, 1);
	CU_ASSERT_EQUAL(p.added, 1);
	CU_ASSERT_EQUAL(p.removed, 1);
	CU_ASSERT(p.unchanged[0] && !p.unchanged[1] && !p.unchanged[2]);
	CU_ASSERT_EQUAL(p.new_id[0], 0);
	/* New ids are ones neither config used: B (was 1) and C (2) are not reused. */
	CU_ASSERT_EQUAL(p.new_id[1], 3);
	CU_ASSERT_EQUAL(p.new_id[2], 4);
	CU_ASSERT_EQUAL(p.keep_mask, 1);
	CU_ASSERT_EQUAL(p.drop_mask, 0x6);
	CU_ASSERT_EQUAL(p.add_mask, 0x18);
	done();
}

/* A changed flow gets a fresh id, not the one its old version had. */
static void test_fresh_id(void)
{
	uint32_t ids[2] = { 0, 1 };
	const char *b = "  - name: B\n"
			"    match: {protocol: udp, destination: 198.18.1.1, port: 5001}\n"
			"    services: [{forward: {upstream: 198.18.2.2:7000}}]\n";
	const char *b2 = "  - name: B\n"
			 "    match: {protocol: udp, destination: 198.18.1.1, port: 5001}\n"
			 "    services: [{forward: {upstream: 198.18.2.2:7001}}]\n";
	uint32_t old_id[CFG_MAX_FLOWS] = {};
	char o[1024], n[1024];
	struct reload_plan p;

	snprintf(o, sizeof(o), "%s%s", flow_a, b);
	snprintf(n, sizeof(n), "%s%s", flow_a, b2);
	CU_ASSERT_EQUAL_FATAL(load(&old_cfg, head, o), 0);
	CU_ASSERT_EQUAL_FATAL(load(&new_cfg, head, n), 0);
	old_id[0] = ids[0];
	old_id[1] = ids[1];
	CU_ASSERT_EQUAL(reload__plan(&old_cfg, old_id, &new_cfg, &p, &errs), 0);
	CU_ASSERT_EQUAL(p.new_id[1], 2);
	done();
}

static void test_needs_restart(void)
{
	const char *top = "interfaces: [{name: a0}, {name: a2, xdp_mode: skb}]\n"
			  "queues: 2\n"
			  "umem: {frames: 4096}\n"
			  "nat: {ports: 40000-40998}\n"
			  "pin_path: /sys/fs/bpf/other\n"
			  "control_socket: /run/other.sock\n"
			  "flows:\n";
	struct reload_plan p;

	CU_ASSERT_EQUAL(plan_of(head, flow_a, NULL, top, flow_a, &p), -EINVAL);
	CU_ASSERT_EQUAL(errs.count, 6);
	CU_ASSERT_PTR_NOT_NULL(strstr(errs.capture, "changing control_socket needs a restart"));
	CU_ASSERT_PTR_NOT_NULL(strstr(errs.capture, "changing interfaces needs a restart"));
	CU_ASSERT_PTR_NOT_NULL(strstr(errs.capture, "changing queues needs a restart"));
	CU_ASSERT_PTR_NOT_NULL(strstr(errs.capture, "changing umem needs a restart"));
	CU_ASSERT_PTR_NOT_NULL(strstr(errs.capture, "changing nat needs a restart"));
	CU_ASSERT_PTR_NOT_NULL(strstr(errs.capture, "changing pin_path needs a restart"));
	done();
}

/* Spelling out a default is no change; log_level may change. */
static void test_defaults_and_log_level(void)
{
	const char *top = "interfaces: [{name: a0, xdp_mode: native}, {name: a1}]\n"
			  "queues: 1\n"
			  "log_level: debug\n"
			  "nat: {ports: 40000-40999, udp_timeout: 60}\n"
			  "flows:\n";
	struct reload_plan p;

	CU_ASSERT_EQUAL(plan_of(head, flow_a, NULL, top, flow_a, &p), 0);
	CU_ASSERT_EQUAL(errs.count, 0);
	CU_ASSERT_EQUAL(p.unchanged_count, 1);
	done();
}

/*
 * Flows are compared as parsed: a bare address and the same address /32, a
 * default spelled out, an empty argument mapping and none, a quoted number
 * and a plain one all mean the same flow, which keeps its id and sessions.
 */
static void test_equivalent_spellings(void)
{
	const char *old_flows = "  - name: A\n"
				"    match: {protocol: udp, destination: 198.18.1.1, port: 5000,\n"
				"            source: 198.18.0.0/15}\n"
				"    services: [compress, {forward: {upstream: 198.18.2.2:6000}}]\n"
				"  - name: B\n"
				"    match: {protocol: udp, destination: 198.18.1.1, port: 5001}\n"
				"    services: [{compress: {min_size: 64}}, {forward: {upstream: 198.18.2.2:6000}}]\n";
	const char *new_flows = "  - name: A\n"
				"    match: {protocol: udp, destination: 198.18.1.1/32, port: \"5000\",\n"
				"            source: 198.18.7.9/15}\n"
				"    on_failure: pass\n"
				"    services: [{compress: {}}, {forward: {upstream: 198.18.2.2:6000}}]\n"
				"  - name: B\n"
				"    match: {protocol: udp, destination: 198.18.1.1, port: 5001}\n"
				"    services: [{compress: {min_size: \"64\"}}, {forward: {upstream: \"198.18.2.2:6000\"}}]\n";
	struct reload_plan p;

	CU_ASSERT_EQUAL(plan_of(head, old_flows, NULL, head, new_flows, &p), 0);
	CU_ASSERT_EQUAL(p.unchanged_count, 2);
	CU_ASSERT_EQUAL(p.changed, 0);
	done();
}

/* What does change the meaning still changes the flow. */
static void test_real_changes(void)
{
	static const char *const variants[] = {
		"    match: {protocol: udp, destination: 198.18.1.0/24, port: 5000}\n"
		"    services: [{forward: {upstream: 198.18.2.2:6000}}]\n",
		"    match: {protocol: udp, destination: 198.18.1.1, port: 5000-5001}\n"
		"    services: [{forward: {upstream: 198.18.2.2:6000}}]\n",
		"    match: {protocol: udp, destination: 198.18.1.1, port: 5000}\n"
		"    on_failure: drop\n"
		"    services: [{forward: {upstream: 198.18.2.2:6000}}]\n",
		"    match: {protocol: udp, destination: 198.18.1.1, port: 5000}\n"
		"    services: [compress, {forward: {upstream: 198.18.2.2:6000}}]\n",
		"    match: {protocol: udp, destination: 198.18.1.1, port: 5000}\n"
		"    services: [{forward: {upstream: 198.18.2.2:6000, source: 198.18.2.1}}]\n",
	};
	char n[1024];

	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		struct reload_plan p;

		snprintf(n, sizeof(n), "  - name: A\n%s", variants[i]);
		CU_ASSERT_EQUAL(plan_of(head, flow_a, NULL, head, n, &p), 0);
		CU_ASSERT_EQUAL(p.changed, 1);
		CU_ASSERT_EQUAL(p.unchanged_count, 0);
		done();
	}
}

/* The report ferryctl reload prints: each flow's role, and for a changed one what changed. */
static void test_report(void)
{
	static const struct {
		const char *flow, *line;
	} cases[] = {
		{ "    match: {protocol: udp, destination: 198.18.1.0/24, port: 5000}\n"
		  "    services: [{forward: {upstream: 198.18.2.2:6000}}]\n",
		  "changed A: match: destination\n" },
		{ "    match: {protocol: udp, destination: 198.18.1.1, port: 5000-5001}\n"
		  "    services: [{forward: {upstream: 198.18.2.2:6000}}]\n",
		  "changed A: match: port\n" },
		{ "    match: {protocol: udp, destination: 198.18.1.1, port: 5000}\n"
		  "    on_failure: drop\n"
		  "    services: [{forward: {upstream: 198.18.2.2:6000}}]\n",
		  "changed A: on_failure\n" },
		{ "    match: {protocol: udp, destination: 198.18.1.1, port: 5000}\n"
		  "    services: [compress, {forward: {upstream: 198.18.2.2:6000}}]\n",
		  "changed A: services: the chain\n" },
		{ "    match: {protocol: udp, destination: 198.18.1.1, port: 5000}\n"
		  "    services: [{forward: {upstream: 198.18.2.2:6001}}]\n",
		  "changed A: services: forward's arguments\n" },
		{ "    match: {protocol: udp, destination: 198.18.1.1, port: 5000}\n"
		  "    services: [{forward: {upstream: 198.18.2.2:6000}}]\n",
		  "unchanged A\n" },
	};
	const char *b = "  - name: B\n"
			"    match: {protocol: udp, destination: 198.18.1.1, port: 5001}\n"
			"    services: [{forward: {upstream: 198.18.2.2:6001}}]\n";
	const char *c = "  - name: C\n"
			"    match: {protocol: udp, destination: 198.18.1.1, port: 5002}\n"
			"    services: [{forward: {upstream: 198.18.2.2:6002}}]\n";
	char olds[1024], news[1024];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct reload_report r = {};
		struct reload_plan p;

		snprintf(news, sizeof(news), "  - name: A\n%s", cases[i].flow);
		CU_ASSERT_EQUAL(plan_of(head, flow_a, NULL, head, news, &p), 0);
		reload__describe(&old_cfg, &new_cfg, &p, &r);
		CU_ASSERT_PTR_NOT_NULL_FATAL(r.text);
		CU_ASSERT_STRING_EQUAL(r.text, cases[i].line);
		reload_report__free(&r);
		done();
	}
	/* A and B running; A, C loaded: C added, B removed, A unchanged, in that order. */
	{
		struct reload_report r = {};
		struct reload_plan p;

		snprintf(olds, sizeof(olds), "%s%s", flow_a, b);
		snprintf(news, sizeof(news), "%s%s", c, flow_a);
		CU_ASSERT_EQUAL(plan_of(head, olds, NULL, head, news, &p), 0);
		reload__describe(&old_cfg, &new_cfg, &p, &r);
		CU_ASSERT_PTR_NOT_NULL_FATAL(r.text);
		CU_ASSERT_STRING_EQUAL(r.text, "added C\nremoved B\nunchanged A\n");
		/* The printf grows its buffer: a long line is kept whole. */
		reload_report__printf(&r, "%0*d\n", 5000, 7);
		CU_ASSERT_EQUAL(r.len, strlen("added C\nremoved B\nunchanged A\n") + 5001);
		CU_ASSERT_EQUAL(strlen(r.text), r.len);
		reload_report__free(&r);
		done();
	}
}

/* Two daemons whose flows are configured, as ferryd's are when it plans a reload. */
static struct ferry_daemon d_old, d_new;

static int configured_plan(const char *old_flows, const char *new_flows, struct reload_plan *plan)
{
	uint32_t old_id[CFG_MAX_FLOWS] = {};
	int err;

	CU_ASSERT_EQUAL_FATAL(load(&d_old.cfg, head, old_flows), 0);
	CU_ASSERT_EQUAL_FATAL(ferry_daemon__configure_flows(&d_old, &errs), 0);
	for (int i = 0; i < d_old.cfg.nr_flows; i++)
		old_id[i] = (uint32_t)i;
	CU_ASSERT_EQUAL_FATAL(load(&d_new.cfg, head, new_flows), 0);
	CU_ASSERT_EQUAL_FATAL(ferry_daemon__configure_flows(&d_new, &errs), 0);
	err = reload__plan(&d_old.cfg, old_id, &d_new.cfg, plan, &errs);
	ferry_daemon__destroy_flows(&d_old);
	ferry_daemon__destroy_flows(&d_new);
	config__free(&d_old.cfg);
	config__free(&d_new.cfg);
	return err;
}

/*
 * Once configured, a service's arguments compare as the values its table
 * read: defaults spelled out, another spelling of the same address, a
 * quoted number are no change; another value is.
 */
static void test_configured_arguments(void)
{
	const char *old_flows =
		"  - name: A\n"
		"    match: {protocol: udp, destination: 198.18.1.1, port: 5000}\n"
		"    services: [{ratelimit: {packets_per_second: 100}},\n"
		"               {forward: {upstream: 198.18.2.2:6000, source: 198.18.2.1}}]\n"
		"  - name: B\n"
		"    match: {protocol: udp, destination: 198.18.1.1, port: 5001}\n"
		"    services: [compress, {forward: {upstream: 198.18.2.2:6000}}]\n"
		"  - name: C\n"
		"    match: {protocol: udp, destination: 198.18.1.1, port: 5002}\n"
		"    services: [{ratelimit: {packets_per_second: 100}},\n"
		"               {forward: {upstream: 198.18.2.2:6000}}]\n";
	const char *new_flows =
		"  - name: A\n"
		"    match: {protocol: udp, destination: 198.18.1.1, port: 5000}\n"
		"    services: [{ratelimit: {per: flow, packets_per_second: \"100\",\n"
		"                            direction: client}},\n"
		"               {forward: {upstream: 198.18.2.2:6000, source: 198.18.2.1/32}}]\n"
		"  - name: B\n"
		"    match: {protocol: udp, destination: 198.18.1.1, port: 5001}\n"
		"    services: [{compress: {level: 1, min_size: 64, direction: client}},\n"
		"               {forward: {upstream: 198.18.2.2:6000}}]\n"
		"  - name: C\n"
		"    match: {protocol: udp, destination: 198.18.1.1, port: 5002}\n"
		"    services: [{ratelimit: {packets_per_second: 101}},\n"
		"               {forward: {upstream: 198.18.2.2:6000}}]\n";
	struct reload_plan p;

	CU_ASSERT_EQUAL(configured_plan(old_flows, new_flows, &p), 0);
	CU_ASSERT_EQUAL(errs.count, 0);
	CU_ASSERT(p.unchanged[0] && p.unchanged[1]);
	CU_ASSERT(!p.unchanged[2]);
	CU_ASSERT_EQUAL(p.unchanged_count, 2);
	CU_ASSERT_EQUAL(p.changed, 1);
	free(errs.capture);
	memset(&errs, 0, sizeof(errs));
}

/* A reload closes exactly the sessions of removed and changed flows. */
static void test_remove_flow_sessions(void)
{
	struct nat_table *t = nat_table__create(64, 40000, 40999);
	union ferry_addr egress = { .b = { 198, 18, 2, 1 } }, up = { .b = { 198, 18, 2, 2 } };
	struct nat_session *s[9];

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (int i = 0; i < 9; i++) {
		struct nat_tuple c = {
			.saddr = { .b = { 198, 18, 1, 2 } },
			.daddr = { .b = { 198, 18, 1, 1 } },
			.sport = (uint16_t)(1000 + i),
			.dport = 5000,
			.family = 4,
			.proto = IPPROTO_UDP,
		};

		CU_ASSERT_EQUAL_FATAL(nat_table__insert(t, &c, &egress, &up, 6000,
							(uint32_t)(i % 3) * 20, 0, &s[i]),
				      0);
	}
	/* Flows 0 and 40 go, flow 20 stays. */
	CU_ASSERT_EQUAL(nat_table__remove_flows(t, 1ull << 0 | 1ull << 40), 6);
	CU_ASSERT_EQUAL(nat_table__count(t), 3);
	for (int i = 0; i < 9; i++) {
		struct nat_session *found = nat_table__lookup_client(t, &s[i]->client);

		if (i % 3 == 1)
			CU_ASSERT_PTR_EQUAL(found, s[i]);
	}
	CU_ASSERT_EQUAL(nat_table__remove_flows(t, ~(1ull << 20)), 0);
	CU_ASSERT_EQUAL(nat_table__remove_flows(t, 1ull << 20), 3);
	CU_ASSERT_EQUAL(nat_table__count(t), 0);
	nat_table__destroy(t);
}

/*
 * A flow whose only change is lb's arguments (weights, upstreams, health)
 * is updated in place: same id, neither dropped nor added; any other
 * change, or another service's arguments changing with it, is a change.
 */
static void test_lb_update_in_place(void)
{
	const char *lb_old = "  - name: L\n"
			     "    match: {protocol: udp, destination: 198.18.1.1, port: 5001}\n"
			     "    services: [{lb: {upstreams: [198.18.2.2:6000, 198.18.2.3:6000]}}]\n";
	const char *lb_new = "  - name: L\n"
			     "    match: {protocol: udp, destination: 198.18.1.1, port: 5001}\n"
			     "    services: [{lb: {upstreams: [{address: 198.18.2.2:6000, weight: 0},"
			     " 198.18.2.3:6000, 198.18.2.4:6000], health: {type: tcp}}}]\n";
	const char *lb_moved = "  - name: L\n"
			       "    match: {protocol: udp, destination: 198.18.1.1, port: 5002}\n"
			       "    services: [{lb: {upstreams: [198.18.2.2:6000]}}]\n";
	const char *fl_old = "  - name: L\n"
			     "    match: {protocol: udp, destination: 198.18.1.1, port: 5001}\n"
			     "    services: [{filter: {deny: [{source: 198.18.0.0/24}]}},"
			     " {lb: {upstreams: [198.18.2.2:6000]}}]\n";
	const char *fl_new = "  - name: L\n"
			     "    match: {protocol: udp, destination: 198.18.1.1, port: 5001}\n"
			     "    services: [{filter: {deny: [{source: 198.18.0.0/25}]}},"
			     " {lb: {upstreams: [198.18.2.3:6000]}}]\n";
	const uint32_t ids[] = { 0, 5 };
	char o[2048], n[2048];
	struct reload_plan p;

	snprintf(o, sizeof(o), "%s%s", flow_a, lb_old);
	snprintf(n, sizeof(n), "%s%s", flow_a, lb_new);
	CU_ASSERT_EQUAL(plan_of(head, o, ids, head, n, &p), 0);
	CU_ASSERT_EQUAL(p.updated_count, 1);
	CU_ASSERT_EQUAL(p.unchanged_count, 1);
	CU_ASSERT_EQUAL(p.added + p.changed + p.removed, 0);
	CU_ASSERT(p.updated[1] && !p.unchanged[1]);
	CU_ASSERT_EQUAL(p.new_id[1], 5);
	CU_ASSERT_EQUAL(p.update_mask, 1ull << 5);
	CU_ASSERT_EQUAL(p.drop_mask | p.add_mask, 0);
	CU_ASSERT_EQUAL(p.nr_ids, 6);
	done();

	snprintf(n, sizeof(n), "%s%s", flow_a, lb_moved);
	CU_ASSERT_EQUAL(plan_of(head, o, ids, head, n, &p), 0);
	CU_ASSERT_EQUAL(p.updated_count, 0);
	CU_ASSERT_EQUAL(p.changed, 1);
	CU_ASSERT_EQUAL(p.drop_mask, 1ull << 5);
	done();

	snprintf(o, sizeof(o), "%s%s", flow_a, fl_old);
	snprintf(n, sizeof(n), "%s%s", flow_a, fl_new);
	CU_ASSERT_EQUAL(plan_of(head, o, ids, head, n, &p), 0);
	CU_ASSERT_EQUAL(p.updated_count, 0);
	CU_ASSERT_EQUAL(p.changed, 1);
	done();
}

static CU_TestInfo reload_tests[] = {
    {"identical", test_identical},
    {"same_meaning", test_same_meaning},
    {"change_add_remove", test_change_add_remove},
    {"fresh_id", test_fresh_id},
    {"needs_restart", test_needs_restart},
    {"defaults_and_log_level", test_defaults_and_log_level},
    {"equivalent_spellings", test_equivalent_spellings},
    {"real_changes", test_real_changes},
    {"configured_arguments", test_configured_arguments},
    {"remove_flow_sessions", test_remove_flow_sessions},
    {"report", test_report},
    {"lb_update_in_place", test_lb_update_in_place},
    CU_TEST_INFO_NULL,
};

UNIT_SUITE(reload, "reload", reload_tests, NULL, NULL);
