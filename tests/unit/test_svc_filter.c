// SPDX-License-Identifier: BSD-2-Clause
/*
 * The filter service through the real chain runner (svc_harness): which
 * packets each kind of rule lets through, that what passes is unchanged,
 * that every denied packet is counted as "filtered" in the flow's drops, in
 * the service's generic counters and in its own, and that no frame is lost.
 * Config errors are checked word for word with their FILE:LINE:COL, since
 * that text is what an operator acts on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "svc_harness.h"
#include "unit.h"
#include "worker.h"

/* Stands in for forward after the filter: sends whatever reaches it. */
static void sink_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	for (uint32_t i = 0; i < b->n; i++)
		ferry_pkt_tx(b->pkts[i], 1);
}

static const struct ferry_service_ops sink_ops = {
	.name = "filter_test_sink",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.process = sink_process,
};

enum { C_ALLOWED, C_DENIED, C_DEFAULT, C_SKIPPED };

static struct svc_harness *make(const char *filter_args)
{
	char yaml[2048];
	struct svc_harness *h;

	harness__add_service(&sink_ops);
	snprintf(yaml, sizeof(yaml), "[ {filter: %s}, filter_test_sink ]", filter_args);
	h = harness__create(yaml);
	CU_ASSERT_PTR_NOT_NULL(h);
	return h;
}

static struct svc_harness *make6(const char *filter_args)
{
	char yaml[2048];
	struct svc_harness *h;

	harness__add_service(&sink_ops);
	snprintf(yaml, sizeof(yaml), "[ {filter: %s}, filter_test_sink ]", filter_args);
	h = harness__create_match("{protocol: udp, destination: fd00:1::1, port: 5000}", yaml);
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

/* One IPv4 packet through the chain: 1 when it came out unchanged, 0 when dropped. */
static int pass4(struct svc_harness *h, const char *src, uint16_t sport, const void *payload,
		 uint32_t len)
{
	uint8_t frame[2048];
	const uint8_t *frames[1] = {frame};
	uint32_t lens[1], before = harness__nr_out(h);
	const struct harness_out *o;

	lens[0] = harness__udp4(frame, src, sport, "198.18.1.1", 5000, payload, len);
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 1), 1);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	CU_ASSERT_EQUAL(harness__held_frames(h), 0);
	if (harness__nr_out(h) == before)
		return 0;
	CU_ASSERT_EQUAL_FATAL(harness__nr_out(h), before + 1);
	o = harness__out(h, before);
	CU_ASSERT_EQUAL(o->len, lens[0]);
	CU_ASSERT(!memcmp(o->data, frame, lens[0]));
	CU_ASSERT_EQUAL(o->port, 1);
	return 1;
}

static int pass6(struct svc_harness *h, const char *src, uint16_t sport, const char *dst,
		 const void *payload, uint32_t len)
{
	uint8_t frame[2048];
	const uint8_t *frames[1] = {frame};
	uint32_t lens[1], before = harness__nr_out(h);

	lens[0] = harness__udp6(frame, src, sport, dst, 5000, payload, len);
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 1), 1);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	if (harness__nr_out(h) == before)
		return 0;
	CU_ASSERT(!memcmp(harness__out(h, before)->data, frame, lens[0]));
	return 1;
}

static void test_deny_source(void)
{
	struct svc_harness *h = make("{deny: [{source: 198.18.7.0/24}]}");
	const struct ferry_svc_stats *ss, *sink;
	uint64_t c[FERRY_SERVICE_COUNTERS];

	if (!h)
		return;
	CU_ASSERT_EQUAL(pass4(h, "198.18.1.2", 1234, "hello", 5), 1);
	CU_ASSERT_EQUAL(pass4(h, "198.18.7.9", 1234, "hello", 5), 0);
	CU_ASSERT_EQUAL(pass4(h, "198.18.7.255", 1, "x", 1), 0);
	CU_ASSERT_EQUAL(pass4(h, "198.18.6.255", 1, "x", 1), 1);
	CU_ASSERT_EQUAL(pass4(h, "198.18.8.0", 1, "x", 1), 1);

	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_filtered, 2);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_service, 0);
	ss = harness__svc_stats(h, 0);
	CU_ASSERT_EQUAL(ss->packets_in, 5);
	CU_ASSERT_EQUAL(ss->bytes_in, 3 * 43 + 2 * 47);
	CU_ASSERT_EQUAL(ss->passed, 3);
	CU_ASSERT_EQUAL(ss->dropped, 2);
	CU_ASSERT_EQUAL(ss->sent, 0);
	CU_ASSERT_EQUAL(ss->held, 0);
	CU_ASSERT_EQUAL(ss->emitted, 0);
	sink = harness__svc_stats(h, 1);
	CU_ASSERT_EQUAL(sink->packets_in, 3);
	CU_ASSERT_EQUAL(sink->sent, 3);
	counters(h, c);
	CU_ASSERT_EQUAL(c[C_ALLOWED], 3);
	CU_ASSERT_EQUAL(c[C_DENIED], 2);
	CU_ASSERT_EQUAL(c[C_DEFAULT], 3);
	CU_ASSERT_EQUAL(c[C_SKIPPED], 0);
	harness__destroy(h);
}

static void test_allow_list_default_deny(void)
{
	struct svc_harness *h =
	    make("{allow: [{source: 198.18.1.0/24, source_port: 1000-1999}, "
		 "{destination: 198.18.1.1/32, destination_port: 5000, source_port: 7}], "
		 "default: deny}");
	uint64_t c[FERRY_SERVICE_COUNTERS];

	if (!h)
		return;
	CU_ASSERT_EQUAL(pass4(h, "198.18.1.2", 1000, "a", 1), 1);
	CU_ASSERT_EQUAL(pass4(h, "198.18.1.2", 1999, "a", 1), 1);
	CU_ASSERT_EQUAL(pass4(h, "198.18.1.2", 999, "a", 1), 0);
	CU_ASSERT_EQUAL(pass4(h, "198.18.1.2", 2000, "a", 1), 0);
	CU_ASSERT_EQUAL(pass4(h, "198.18.2.2", 1500, "a", 1), 0);
	/* The second rule: any source, source port 7, the flow's own address and port. */
	CU_ASSERT_EQUAL(pass4(h, "198.18.200.1", 7, "a", 1), 1);
	CU_ASSERT_EQUAL(pass4(h, "198.18.200.1", 8, "a", 1), 0);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_filtered, 4);
	counters(h, c);
	CU_ASSERT_EQUAL(c[C_ALLOWED], 3);
	CU_ASSERT_EQUAL(c[C_DENIED], 4);
	CU_ASSERT_EQUAL(c[C_DEFAULT], 4);
	harness__destroy(h);
}

/* Across both lists, the rule written first wins. */
static void test_first_match(void)
{
	struct svc_harness *h;

	h = make("{deny: [{source: 198.18.1.2}], allow: [{source: 198.18.1.0/24}], default: deny}");
	if (!h)
		return;
	CU_ASSERT_EQUAL(pass4(h, "198.18.1.2", 1, "a", 1), 0);
	CU_ASSERT_EQUAL(pass4(h, "198.18.1.3", 1, "a", 1), 1);
	CU_ASSERT_EQUAL(pass4(h, "198.18.3.3", 1, "a", 1), 0);
	harness__destroy(h);

	h = make("{allow: [{source: 198.18.1.0/24}], deny: [{source: 198.18.1.2}], default: deny}");
	if (!h)
		return;
	CU_ASSERT_EQUAL(pass4(h, "198.18.1.2", 1, "a", 1), 1);
	CU_ASSERT_EQUAL(pass4(h, "198.18.1.3", 1, "a", 1), 1);
	CU_ASSERT_EQUAL(pass4(h, "198.18.3.3", 1, "a", 1), 0);
	harness__destroy(h);

	/* An empty rule matches everything. */
	h = make("{deny: [{}]}");
	if (!h)
		return;
	CU_ASSERT_EQUAL(pass4(h, "198.18.1.2", 1, "a", 1), 0);
	CU_ASSERT_EQUAL(pass4(h, "198.19.255.255", 65535, "", 0), 0);
	harness__destroy(h);
}

static void test_payload(void)
{
	struct svc_harness *h = make("{deny: [{payload: {offset: 2, mask: \"0xff00f0\", "
				     "value: \"0x1200a0\"}}]}");
	uint8_t frame[128];
	const uint8_t *frames[1] = {frame};
	uint32_t lens[1];

	if (!h)
		return;
	CU_ASSERT_EQUAL(pass4(h, "198.18.1.2", 1, "\x00\x00\x12\x34\xa7", 5), 0);
	CU_ASSERT_EQUAL(pass4(h, "198.18.1.2", 1, "\x00\x00\x12\x34\xaf\xff", 6), 0);
	CU_ASSERT_EQUAL(pass4(h, "198.18.1.2", 1, "\x00\x00\x13\x34\xa7", 5), 1);
	CU_ASSERT_EQUAL(pass4(h, "198.18.1.2", 1, "\x00\x00\x12\x34\xb7", 5), 1);
	/* offset + length one past the payload: no match. */
	CU_ASSERT_EQUAL(pass4(h, "198.18.1.2", 1, "\x00\x00\x12\x34", 4), 1);
	CU_ASSERT_EQUAL(pass4(h, "198.18.1.2", 1, "", 0), 1);

	/*
	 * A minimum-size frame: its Ethernet padding holds the bytes the rule
	 * wants, but padding is not payload.
	 */
	lens[0] = harness__udp4(frame, "198.18.1.2", 1, "198.18.1.1", 5000, "\x00\x00", 2);
	memset(frame + lens[0], 0, 60 - lens[0]);
	frame[lens[0]] = 0x12;
	frame[lens[0] + 2] = 0xa0;
	lens[0] = 60;
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 1), 1);
	CU_ASSERT_EQUAL(harness__nr_out(h), 5);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_filtered, 2);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__destroy(h);

	/* Without a mask every bit counts; unquoted hex works as well. */
	h = make("{allow: [{payload: {offset: 0, value: 0xcafe}}], default: deny}");
	if (!h)
		return;
	CU_ASSERT_EQUAL(pass4(h, "198.18.1.2", 1, "\xca\xfe", 2), 1);
	CU_ASSERT_EQUAL(pass4(h, "198.18.1.2", 1, "\xca\xff", 2), 0);
	CU_ASSERT_EQUAL(pass4(h, "198.18.1.2", 1, "\xca", 1), 0);
	harness__destroy(h);
}

static void test_ipv6(void)
{
	struct svc_harness *h = make6(
	    "{deny: [{source: \"fd00:7::/32\", source_port: 100-200}], "
	    "allow: [{destination: \"fd00:1::1/128\", payload: {offset: 0, value: \"0x01\"}}], "
	    "default: deny}");
	uint64_t c[FERRY_SERVICE_COUNTERS];

	if (!h)
		return;
	CU_ASSERT_EQUAL(pass6(h, "fd00:7:ffff::9", 150, "fd00:1::1", "\x01", 1), 0);
	CU_ASSERT_EQUAL(pass6(h, "fd00:7:ffff::9", 201, "fd00:1::1", "\x01", 1), 1);
	CU_ASSERT_EQUAL(pass6(h, "fd00:8::9", 150, "fd00:1::1", "\x01", 1), 1);
	CU_ASSERT_EQUAL(pass6(h, "fd00:8::9", 150, "fd00:1::1", "\x02", 1), 0);
	CU_ASSERT_EQUAL(pass6(h, "fd00:8::9", 150, "fd00:1::2", "\x01", 1), 0);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_filtered, 3);
	counters(h, c);
	CU_ASSERT_EQUAL(c[C_ALLOWED], 2);
	CU_ASSERT_EQUAL(c[C_DENIED], 3);
	CU_ASSERT_EQUAL(c[C_DEFAULT], 2);
	harness__destroy(h);

	/* An address-free rule matches either family. */
	h = make6("{deny: [{source_port: 53}]}");
	if (!h)
		return;
	CU_ASSERT_EQUAL(pass6(h, "fd00:8::9", 53, "fd00:1::1", "x", 1), 0);
	CU_ASSERT_EQUAL(pass6(h, "fd00:8::9", 54, "fd00:1::1", "x", 1), 1);
	harness__destroy(h);
}

/* The upstream's replies come through the same chain and are never judged. */
static void test_replies_pass(void)
{
	struct svc_harness *h = make("{deny: [{}]}");
	uint64_t c[FERRY_SERVICE_COUNTERS];
	uint8_t frames_buf[8][128];
	const uint8_t *frames[8];
	uint32_t lens[8];

	if (!h)
		return;
	harness__set_dir(h, FERRY_DIR_REPLY);
	for (int i = 0; i < 8; i++) {
		lens[i] = harness__udp4(frames_buf[i], "198.18.2.2", 6000, "198.18.2.1",
					(uint16_t)(40000 + i), "reply", 5);
		frames[i] = frames_buf[i];
	}
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 8), 8);
	CU_ASSERT_EQUAL(harness__nr_out(h), 8);
	for (int i = 0; i < 8; i++)
		CU_ASSERT(!memcmp(harness__out(h, (uint32_t)i)->data, frames_buf[i], lens[i]));
	harness__set_dir(h, FERRY_DIR_CLIENT);
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 8), 8);
	CU_ASSERT_EQUAL(harness__nr_out(h), 8);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_filtered, 8);
	counters(h, c);
	CU_ASSERT_EQUAL(c[C_SKIPPED], 8);
	CU_ASSERT_EQUAL(c[C_DENIED], 8);
	CU_ASSERT_EQUAL(c[C_ALLOWED], 0);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 0)->passed, 8);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 0)->dropped, 8);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__destroy(h);

	/* direction: reply judges the replies by their own addresses, and skips the clients. */
	h = make("{deny: [{source: 198.18.2.2, source_port: 6000}], direction: reply}");
	if (!h)
		return;
	harness__set_dir(h, FERRY_DIR_REPLY);
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 8), 8);
	CU_ASSERT_EQUAL(harness__nr_out(h), 0);
	harness__set_dir(h, FERRY_DIR_CLIENT);
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 8), 8);
	CU_ASSERT_EQUAL(harness__nr_out(h), 8);
	counters(h, c);
	CU_ASSERT_EQUAL(c[C_DENIED], 8);
	CU_ASSERT_EQUAL(c[C_SKIPPED], 8);
	harness__destroy(h);

	/* both: every packet is judged. */
	h = make("{deny: [{}], direction: both}");
	if (!h)
		return;
	harness__set_dir(h, FERRY_DIR_REPLY);
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 8), 8);
	harness__set_dir(h, FERRY_DIR_CLIENT);
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 8), 8);
	CU_ASSERT_EQUAL(harness__nr_out(h), 0);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_filtered, 16);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__destroy(h);
}

/* A full burst with both verdicts mixed: order kept, nothing lost. */
static void test_burst(void)
{
	struct svc_harness *h = make("{deny: [{source_port: 1-1000}]}");
	static uint8_t bufs[WORKER_MAX_BATCH][256];
	const uint8_t *frames[WORKER_MAX_BATCH];
	uint32_t lens[WORKER_MAX_BATCH], k = 0;

	if (!h)
		return;
	for (uint32_t i = 0; i < WORKER_MAX_BATCH; i++) {
		char payload[64];
		int n = snprintf(payload, sizeof(payload), "datagram %u", i);

		lens[i] = harness__udp4(bufs[i], "198.18.1.2", (uint16_t)(500 + i * 7),
					"198.18.1.1", 5000, payload, (uint32_t)n);
		frames[i] = bufs[i];
	}
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, WORKER_MAX_BATCH), WORKER_MAX_BATCH);
	for (uint32_t i = 0; i < WORKER_MAX_BATCH; i++) {
		if (500 + i * 7 <= 1000)
			continue;
		CU_ASSERT_FATAL(k < harness__nr_out(h));
		CU_ASSERT(!memcmp(harness__out(h, k)->data, bufs[i], lens[i]));
		k++;
	}
	CU_ASSERT_EQUAL(harness__nr_out(h), k);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_filtered, WORKER_MAX_BATCH - k);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__destroy(h);
}

/* ---- configuration errors ---- */

static struct ferry_daemon cfg_d;

/*
 * Loads a flow whose only service is filter with ARGS (written from line 8,
 * column 11) and configures it; returns what configure() returned, with the
 * errors in *capture.
 */
static int configure(const char *dst, const char *args, char **capture)
{
	const struct ferry_service_ops *ops = service__find("filter");
	struct cfg_errors errs = {.file = "t.yaml"};
	struct ferry_flow_ctx fc = {.daemon = &cfg_d};
	char yaml[4096];
	void *conf = NULL;
	int err;

	errs.capture = strdup("");
	snprintf(yaml, sizeof(yaml),
		 "interfaces:\n"
		 "  - name: px-c\n"
		 "flows:\n"
		 "  - name: f\n"
		 "    match: {protocol: udp, destination: %s, port: 5000}\n"
		 "    services:\n"
		 "      - filter:\n"
		 "          %s\n",
		 dst, args);
	err = config__load_string(&cfg_d.cfg, "t.yaml", yaml, &errs);
	CU_ASSERT_EQUAL_FATAL(err, 0);
	fc.flow = &cfg_d.cfg.flows[0];
	err = ops->configure(&fc, cfg_d.cfg.flows[0].services[0].args, &errs, &conf);
	if (!err)
		ops->destroy(conf);
	else
		CU_ASSERT_PTR_NULL(conf);
	config__free(&cfg_d.cfg);
	*capture = errs.capture;
	return err;
}

static void expect_error(const char *args, const char *msg)
{
	char *capture = NULL;

	CU_ASSERT_EQUAL(configure("198.18.1.1", args, &capture), -EINVAL);
	if (!capture || !strstr(capture, msg)) {
		fprintf(stderr, "\n  expected: %s\n  captured:\n%s", msg, capture ? capture : "");
		CU_FAIL("error message");
	}
	free(capture);
}

static void test_config_errors(void)
{
	char many[4096], *capture = NULL;
	size_t len;

	expect_error("{deny: [{source: 198.18.7.0/24}], colour: red}",
		     "t.yaml:8:53: filter: unknown key 'colour'");
	expect_error("{default: maybe, deny: [{}]}",
		     "t.yaml:8:21: filter: default: 'maybe' is not one of allow, deny");
	expect_error("{default: deny}",
		     "t.yaml:8:11: filter: no rules: give 'allow' or 'deny' (or both)");
	expect_error("{deny: {source: 198.18.0.0/15}}",
		     "t.yaml:8:18: filter: deny: expected a sequence of rules");
	expect_error("{deny: [198.18.0.0/15]}",
		     "t.yaml:8:19: filter: a rule is a mapping of source, destination, "
		     "source_port, destination_port, payload");
	expect_error("{deny: [{source: 198.18.0.0/33}]}",
		     "t.yaml:8:28: prefix length in '198.18.0.0/33' is out of range 0..32");
	expect_error("{deny: [{destination: nowhere}]}", "t.yaml:8:33: bad address 'nowhere'");
	expect_error("{deny: [{source: \"fd00::/8\"}]}",
		     "t.yaml:8:28: filter: source is IPv6, but flow 'f' matches IPv4: the rule "
		     "could never match");
	expect_error("{deny: [{source_port: 0-10}]}", "t.yaml:8:33: ");
	/*
	 * A rule's duplicate key ({source: A, source: B}) no longer reaches
	 * filter: the config loader refuses duplicate keys at every level of a
	 * service's arguments (test_config.c, "duplicate keys").
	 */
	expect_error("{deny: [{sauce: 198.18.0.1}]}",
		     "t.yaml:8:27: filter: unknown key 'sauce' in a rule");
	expect_error("{deny: [{payload: {offset: 0, value: \"0x123\"}}]}",
		     "t.yaml:8:48: filter: payload value: '0x123' is not 1..16 bytes of hex, two "
		     "digits a byte");
	expect_error("{deny: [{payload: {offset: 0, value: \"0xzz\"}}]}",
		     "t.yaml:8:48: filter: payload value: '0xzz' is not hex");
	expect_error("{deny: [{payload: {offset: 0, value: \"0x\"}}]}",
		     "t.yaml:8:48: filter: payload value: '0x' is not 1..16 bytes of hex");
	expect_error("{deny: [{payload: {value: \"0x00112233445566778899aabbccddeeff00\"}}]}",
		     "is not 1..16 bytes of hex, two digits a byte");
	expect_error("{deny: [{payload: {offset: 0, mask: \"0xff\", value: \"0x1200\"}}]}",
		     "t.yaml:8:62: filter: payload: mask has 1 bytes and value 2; they must be "
		     "equally long");
	expect_error("{deny: [{payload: {offset: 0, mask: \"0xff00\", value: \"0x1201\"}}]}",
		     "t.yaml:8:64: filter: payload: value has bits set outside the mask (byte 1)");
	expect_error("{deny: [{payload: {offset: 0, mask: \"0xff00\"}}]}",
		     "t.yaml:8:29: filter: payload: missing key 'value'");
	expect_error("{deny: [{payload: {offset: 65536, value: \"0x00\"}}]}",
		     "t.yaml:8:38: value 65536 is out of range 0..65535");
	expect_error("{deny: [{payload: {offset: 1, value: \"0x00\", at: 3}}]}",
		     "t.yaml:8:60: filter: payload: unknown key 'at'");
	expect_error("{deny: [{payload: 0x00}]}",
		     "t.yaml:8:29: filter: payload: expected a mapping {offset, mask, value}");

	/* 64 rules are fine, 65 are not. */
	len = (size_t)snprintf(many, sizeof(many), "{deny: [");
	for (int i = 0; i < 64; i++)
		len += (size_t)snprintf(many + len, sizeof(many) - len, "%s{source_port: %d}",
					i ? ", " : "", i + 1);
	snprintf(many + len, sizeof(many) - len, "]}");
	CU_ASSERT_EQUAL(configure("198.18.1.1", many, &capture), 0);
	free(capture);
	many[len] = '\0';
	snprintf(many + len, sizeof(many) - len, ", {}]}");
	expect_error(many, "filter: too many rules (max 64 in allow and deny)");

	/* IPv6 rules in an IPv6 flow, and every key at once. */
	CU_ASSERT_EQUAL(configure("fd00:1::1",
				  "{allow: [{source: \"fd00:7::/32\", destination: \"fd00:1::1\", "
				  "source_port: 1-2, destination_port: 5000, payload: {offset: 3, "
				  "mask: \"0xFF\", value: \"0X0A\"}}], default: deny}",
				  &capture),
			0);
	free(capture);
}

static void test_config_errors_no_args(void)
{
	char *capture = NULL;

	/* `- filter` with nothing: configure() sees no mapping. */
	CU_ASSERT_EQUAL(configure("198.18.1.1", "", &capture), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(capture, "t.yaml:7:9: filter: expected a mapping of allow, "
					       "deny, default, direction"));
	free(capture);
}

static CU_TestInfo filter_tests[] = {
	{ "deny by source prefix; counters", test_deny_source },
	{ "allow list with ports, default deny", test_allow_list_default_deny },
	{ "first matching rule decides", test_first_match },
	{ "payload match with mask, short payloads, padding", test_payload },
	{ "IPv6 rules", test_ipv6 },
	{ "replies pass unchecked; direction", test_replies_pass },
	{ "a full burst of mixed verdicts", test_burst },
	{ "config errors at FILE:LINE:COL", test_config_errors },
	{ "no arguments", test_config_errors_no_args },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(svc_filter, "svc_filter", filter_tests, NULL, NULL)
