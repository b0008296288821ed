// SPDX-License-Identifier: BSD-2-Clause
/*
 * The `app` service with no application attached, through the real chain
 * runner (svc_harness): on_failure bypass lets payloads on unchanged and
 * counts them, on_failure drop drops them as "app_unavailable"; packets
 * without a payload are not the slot's business.  And its arguments: the
 * owner resolved at configure, every error at FILE:LINE:COL.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "svc_app.h"
#include "svc_harness.h"
#include "unit.h"
#include "worker.h"

enum { C_TO_APP, C_BYPASSED, C_BAD_DESC, C_TIMEOUTS };

static void sink_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	for (uint32_t i = 0; i < b->n; i++)
		ferry_pkt_tx(b->pkts[i], 1);
}

static const struct ferry_service_ops sink_ops = {
	.name = "app_test_sink",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.process = sink_process,
};

static struct svc_harness *make(const char *args)
{
	char yaml[1024];
	struct svc_harness *h;

	harness__add_service(&sink_ops);
	snprintf(yaml, sizeof(yaml), "[ {app: %s}, app_test_sink ]", args);
	h = harness__create(yaml);
	CU_ASSERT_PTR_NOT_NULL(h);
	return h;
}

/* n packets, packet i with i % 3 payload bytes (a third of them none); returns how many came out. */
static uint32_t burst(struct svc_harness *h, uint32_t n)
{
	static uint8_t bufs[WORKER_MAX_BATCH][256];
	const uint8_t *frames[WORKER_MAX_BATCH];
	uint32_t lens[WORKER_MAX_BATCH], before = harness__nr_out(h), out;
	uint8_t payload[8];

	CU_ASSERT_FATAL(n <= WORKER_MAX_BATCH);
	for (uint32_t i = 0; i < n; i++) {
		memset(payload, 'a' + (int)i, sizeof(payload));
		lens[i] = harness__udp4(bufs[i], "198.18.1.2", (uint16_t)(1000 + i), "198.18.1.1",
					5000, payload, i % 3);
		frames[i] = bufs[i];
	}
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, n), (int)n);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	CU_ASSERT_EQUAL(harness__held_frames(h), 0);
	out = harness__nr_out(h) - before;
	return out;
}

static void test_bypass(void)
{
	struct svc_harness *h = make("{name: t, owner: root}");
	uint64_t c[FERRY_SERVICE_COUNTERS] = {};
	uint32_t j = 0;

	if (!h)
		return;
	CU_ASSERT_EQUAL(burst(h, 30), 30);
	/* Unchanged, in order. */
	for (uint32_t i = 0; i < harness__nr_out(h); i++, j++) {
		const struct harness_out *o = harness__out(h, i);
		uint8_t want[256];
		uint8_t payload[8];

		memset(payload, 'a' + (int)i, sizeof(payload));
		CU_ASSERT_EQUAL(o->len, harness__udp4(want, "198.18.1.2", (uint16_t)(1000 + i),
						      "198.18.1.1", 5000, payload, i % 3));
		CU_ASSERT(!memcmp(o->data, want, o->len));
	}
	harness__service_counters(h, 0, c);
	/* 20 of the 30 carry a payload: those took on_failure. */
	CU_ASSERT_EQUAL(c[C_BYPASSED], 20);
	CU_ASSERT_EQUAL(c[C_TO_APP], 0);
	CU_ASSERT_EQUAL(c[C_BAD_DESC], 0);
	CU_ASSERT_EQUAL(c[C_TIMEOUTS], 0);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 0)->passed, 30);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_app_unavailable, 0);
	harness__destroy(h);
}

static void test_drop(void)
{
	struct svc_harness *h = make("{name: t, owner: root, on_failure: drop}");
	uint64_t c[FERRY_SERVICE_COUNTERS] = {};

	if (!h)
		return;
	/* Only the 10 without a payload go on. */
	CU_ASSERT_EQUAL(burst(h, 30), 10);
	for (uint32_t i = 0; i < harness__nr_out(h); i++)
		CU_ASSERT_EQUAL(harness__out(h, i)->len, 42);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_app_unavailable, 20);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 0)->dropped, 20);
	harness__service_counters(h, 0, c);
	CU_ASSERT_EQUAL(c[C_BYPASSED], 0);
	harness__destroy(h);
}

/* ---- configure() alone ---- */

static struct ferry_daemon cfg_d;

static const char cfg_fmt[] = "interfaces:\n"
			      "  - name: px-c\n"
			      "flows:\n"
			      "  - name: f\n"
			      "    match: {protocol: udp, destination: 198.18.1.1, port: 5000}\n"
			      "    services:\n"
			      "      - app:\n"
			      "          %s\n";

static int configure(const char *args, char **capture, void **confp)
{
	const struct ferry_service_ops *ops = service__find("app");
	struct cfg_errors errs = {.file = "t.yaml"};
	struct ferry_flow_ctx fc = {.daemon = &cfg_d, .flow_id = 3};
	char yaml[2048];
	int err;

	errs.capture = strdup("");
	snprintf(yaml, sizeof(yaml), cfg_fmt, args);
	err = config__load_string(&cfg_d.cfg, "t.yaml", yaml, &errs);
	CU_ASSERT_EQUAL_FATAL(err, 0);
	fc.flow = &cfg_d.cfg.flows[0];
	*confp = NULL;
	err = ops->configure(&fc, cfg_d.cfg.flows[0].services[0].args, &errs, confp);
	*capture = errs.capture;
	return err;
}

static const struct svc_app_conf *expect_ok(const char *args)
{
	char *capture = NULL;
	void *conf;

	CU_ASSERT_EQUAL(configure(args, &capture, &conf), 0);
	if (capture && *capture)
		fprintf(stderr, "\n  unexpected:\n%s", capture);
	free(capture);
	return conf;
}

static void done(void *conf)
{
	if (conf)
		service__find("app")->destroy(conf);
	config__free(&cfg_d.cfg);
}

static void expect_error(const char *args, const char *msg)
{
	char *capture = NULL;
	void *conf;

	CU_ASSERT_EQUAL(configure(args, &capture, &conf), -EINVAL);
	CU_ASSERT_PTR_NULL(conf);
	if (!capture || !strstr(capture, msg)) {
		fprintf(stderr, "\n  expected: %s\n  captured:\n%s", msg, capture ? capture : "");
		CU_FAIL("error message");
	}
	free(capture);
	config__free(&cfg_d.cfg);
}

static void test_config(void)
{
	const struct svc_app_conf *c;

	c = expect_ok("{name: transcode, owner: root}");
	CU_ASSERT_STRING_EQUAL(c->name, "transcode");
	CU_ASSERT_EQUAL(c->flow_id, 3);
	CU_ASSERT(!c->owner_is_group);
	CU_ASSERT_EQUAL(c->owner_uid, 0);
	CU_ASSERT_EQUAL(c->on_failure, SVC_APP_BYPASS);
	CU_ASSERT_EQUAL(c->ring_size, 1024);
	CU_ASSERT_EQUAL(c->timeout_ns, 100ull * 1000 * 1000);
	done((void *)c);

	c = expect_ok("{name: A-z_0.9, owner: 'group:root', on_failure: drop, ring_size: 64, "
		      "timeout_ms: 10000}");
	CU_ASSERT(c->owner_is_group);
	CU_ASSERT_EQUAL(c->owner_gid, 0);
	CU_ASSERT_EQUAL(c->on_failure, SVC_APP_DROP);
	CU_ASSERT_EQUAL(c->ring_size, 64);
	CU_ASSERT_EQUAL(c->timeout_ns, 10000ull * 1000 * 1000);
	done((void *)c);

	/* A numeric uid need not exist in passwd; nobody is 65534 on Debian. */
	c = expect_ok("{name: abcdefghijklmnopqrstuvwxyz01234, owner: 4000000, ring_size: 4096}");
	CU_ASSERT_EQUAL(c->owner_uid, 4000000);
	done((void *)c);
	c = expect_ok("{name: n, owner: nobody}");
	CU_ASSERT_EQUAL(c->owner_uid, 65534);
	done((void *)c);
}

static void test_config_errors(void)
{
	expect_error("{owner: root}", "t.yaml:8:11: app: missing key 'name'");
	expect_error("{name: t}", "t.yaml:8:11: app: missing key 'owner'");
	expect_error("", "t.yaml:7:9: app: expected a mapping with name and owner");
	expect_error("{name: 'a b', owner: root}",
		     "t.yaml:8:18: app: name: 'a b' is not 1..31 characters of A-Za-z0-9_.-");
	expect_error("{name: '', owner: root}",
		     "t.yaml:8:18: app: name: '' is not 1..31 characters of A-Za-z0-9_.-");
	expect_error("{name: abcdefghijklmnopqrstuvwxyz012345, owner: root}", "t.yaml:8:18: ");
	expect_error("{name: t, owner: no-such-user-here}",
		     "t.yaml:8:28: app: owner: no such user 'no-such-user-here'");
	expect_error("{name: t, owner: 'group:no-such-group'}",
		     "t.yaml:8:28: app: owner: no such group 'no-such-group'");
	expect_error("{name: t, owner: 4294967295}", "t.yaml:8:28: app: owner: no such user");
	expect_error("{name: t, owner: root, on_failure: pass}",
		     "t.yaml:8:46: app: on_failure: 'pass' is not one of bypass, drop");
	expect_error("{name: t, owner: root, ring_size: 100}",
		     "t.yaml:8:45: app: ring_size: 100 is not a power of two");
	expect_error("{name: t, owner: root, ring_size: 32}",
		     "t.yaml:8:45: value 32 is out of range 64..4096");
	expect_error("{name: t, owner: root, ring_size: 8192}",
		     "t.yaml:8:45: value 8192 is out of range 64..4096");
	expect_error("{name: t, owner: root, timeout_ms: 0}",
		     "t.yaml:8:46: value 0 is out of range 1..10000");
	expect_error("{name: t, owner: root, colour: red}", "t.yaml:8:42: app: unknown key 'colour'");
}

static CU_TestInfo app_tests[] = {
	{ "no app attached: bypass", test_bypass },
	{ "no app attached: drop as app_unavailable", test_drop },
	{ "arguments and owners", test_config },
	{ "config errors at FILE:LINE:COL", test_config_errors },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(svc_app, "svc_app", app_tests, NULL, NULL)
