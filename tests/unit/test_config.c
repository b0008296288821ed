// SPDX-License-Identifier: BSD-2-Clause
/*
 * The config parser: values, defaults, and the exact "FILE:LINE:COL: message"
 * of each kind of error, since that text is what an operator acts on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "config.h"
#include "unit.h"

/* Large (64 flows): static rather than on the test's stack. */
static struct ferry_config cfg;
static struct cfg_errors errs;

static void reset_errs(void)
{
	free(errs.capture);
	memset(&errs, 0, sizeof(errs));
	errs.capture = strdup("");
}

static int load(const char *yaml)
{
	/* A test may load twice in a row: the first config must not leak. */
	config__free(&cfg);
	reset_errs();
	return config__load_string(&cfg, "t.yaml", yaml, &errs);
}

static void done(void)
{
	config__free(&cfg);
	free(errs.capture);
	memset(&errs, 0, sizeof(errs));
}

/* Shows what was captured when an expected message is missing. */
static int has(const char *msg)
{
	if (errs.capture && strstr(errs.capture, msg))
		return 1;
	fprintf(stderr, "\n  expected: %s\n  captured:\n%s", msg,
		errs.capture ? errs.capture : "(nothing)\n");
	return 0;
}

/* The file has exactly one error, MSG. */
static void expect_one(const char *yaml, const char *msg)
{
	CU_ASSERT_EQUAL(load(yaml), -EINVAL);
	CU_ASSERT_EQUAL(errs.count, 1);
	CU_ASSERT(has(msg));
	done();
}

static void expect_ok(const char *yaml)
{
	int err = load(yaml);

	CU_ASSERT_EQUAL(err, 0);
	if (err)
		fprintf(stderr, "\n  unexpected errors:\n%s", errs.capture);
}

/* Lines 1-5; match keys follow on line 6 at column 7. */
#define HEAD                                                                                       \
	"interfaces:\n"                                                                            \
	"  - name: px-c\n"                                                                         \
	"flows:\n"                                                                                 \
	"  - name: f\n"                                                                            \
	"    match:\n"
#define SVC                                                                                        \
	"    services:\n"                                                                          \
	"      - forward:\n"                                                                       \
	"          upstream: 198.18.2.2:6000\n"
#define MATCH_OK                                                                                   \
	"      protocol: udp\n"                                                                    \
	"      destination: 198.18.1.1\n"                                                          \
	"      port: 5000\n"
#define MINIMAL HEAD MATCH_OK SVC

static const char full_yaml[] = "pin_path: /sys/fs/bpf/ferry-test\n"
				"log_level: debug\n"
				"queues: 4\n"
				"interfaces:\n"
				"  - name: px-c\n"
				"    xdp_mode: native\n"
				"  - name: px-s\n"
				"    xdp_mode: skb\n"
				"  - name: eth2\n"
				"    xdp_mode: native-only\n"
				"nat:\n"
				"  ports: 40000-49999\n"
				"  max_sessions: 1000\n"
				"  udp_timeout: 30\n"
				"umem:\n"
				"  frames: 16384\n"
				"  frame_size: 2048\n"
				"  ring_size: 1024\n"
				"  batch: 32\n"
				"flows:\n"
				"  - name: telemetry\n"
				"    match:\n"
				"      protocol: udp\n"
				"      destination: 198.18.1.1/32\n"
				"      port: 5000\n"
				"      source: 198.18.0.0/15\n"
				"    services:\n"
				"      - forward:\n"
				"          upstream: 198.18.2.2:6000\n"
				"  - name: web.v6\n"
				"    match:\n"
				"      protocol: tcp\n"
				"      destination: fd00::1/128\n"
				"      port: 8000-8010\n"
				"    services:\n"
				"      - count\n"
				"      - forward: {upstream: \"[fd00::2]:80\"}\n";

static void test_full(void)
{
	const struct cfg_flow *f;
	struct in6_addr v6;
	const struct cfg_node *val;
	const char *key;
	cfg_iter it;

	expect_ok(full_yaml);
	CU_ASSERT_STRING_EQUAL(cfg.file, "t.yaml");
	CU_ASSERT_STRING_EQUAL(cfg.pin_path, "/sys/fs/bpf/ferry-test");
	CU_ASSERT_STRING_EQUAL(cfg.log_level, "debug");
	CU_ASSERT_EQUAL(cfg.queues, 4);

	CU_ASSERT_EQUAL(cfg.nr_ifaces, 3);
	CU_ASSERT_STRING_EQUAL(cfg.ifaces[0].name, "px-c");
	CU_ASSERT_EQUAL(cfg.ifaces[0].xdp_mode, CFG_XDP_NATIVE);
	CU_ASSERT_EQUAL(cfg.ifaces[0].mark.line, 5);
	CU_ASSERT_EQUAL(cfg.ifaces[0].mark.col, 5);
	CU_ASSERT_STRING_EQUAL(cfg.ifaces[1].name, "px-s");
	CU_ASSERT_EQUAL(cfg.ifaces[1].xdp_mode, CFG_XDP_SKB);
	CU_ASSERT_STRING_EQUAL(cfg.ifaces[2].name, "eth2");
	CU_ASSERT_EQUAL(cfg.ifaces[2].xdp_mode, CFG_XDP_NATIVE_ONLY);

	CU_ASSERT_EQUAL(cfg.nat.ports.lo, 40000);
	CU_ASSERT_EQUAL(cfg.nat.ports.hi, 49999);
	CU_ASSERT_EQUAL(cfg.nat.max_sessions, 1000);
	CU_ASSERT_EQUAL(cfg.nat.udp_timeout_s, 30);
	CU_ASSERT_EQUAL(cfg.umem.frames, 16384);
	CU_ASSERT_EQUAL(cfg.umem.frame_size, 2048);
	CU_ASSERT_EQUAL(cfg.umem.ring_size, 1024);
	CU_ASSERT_EQUAL(cfg.umem.batch, 32);

	CU_ASSERT_EQUAL_FATAL(cfg.nr_flows, 2);
	f = &cfg.flows[0];
	CU_ASSERT_STRING_EQUAL(f->name, "telemetry");
	CU_ASSERT_EQUAL(f->mark.line, 21);
	CU_ASSERT_EQUAL(f->mark.col, 5);
	CU_ASSERT_EQUAL(f->match.l4_proto, IPPROTO_UDP);
	CU_ASSERT_EQUAL(f->match.dst.family, AF_INET);
	CU_ASSERT_EQUAL(f->match.dst.plen, 32);
	CU_ASSERT_EQUAL(f->match.dst.addr.v4.s_addr, inet_addr("198.18.1.1"));
	CU_ASSERT_EQUAL(f->match.dport.lo, 5000);
	CU_ASSERT_EQUAL(f->match.dport.hi, 5000);
	CU_ASSERT_EQUAL(f->match.src.family, AF_INET);
	CU_ASSERT_EQUAL(f->match.src.plen, 15);
	CU_ASSERT_EQUAL(f->match.src.addr.v4.s_addr, inet_addr("198.18.0.0"));
	CU_ASSERT_EQUAL_FATAL(f->nr_services, 1);
	CU_ASSERT_STRING_EQUAL(f->services[0].name, "forward");
	CU_ASSERT_EQUAL(f->services[0].mark.line, 28);
	CU_ASSERT_EQUAL(f->services[0].mark.col, 9);
	CU_ASSERT(cfg_node_is_map(f->services[0].args));
	cfg_iter_init(&it, f->services[0].args);
	CU_ASSERT(cfg_iter_next(&it, &key, &val));
	CU_ASSERT_STRING_EQUAL(key, "upstream");
	CU_ASSERT_EQUAL(cfg_node_mark(val).line, 29);
	CU_ASSERT_EQUAL(cfg_node_mark(val).col, 21);
	CU_ASSERT(!cfg_iter_next(&it, &key, &val));
	CU_ASSERT_PTR_NULL(key);

	f = &cfg.flows[1];
	CU_ASSERT_STRING_EQUAL(f->name, "web.v6");
	CU_ASSERT_EQUAL(f->match.l4_proto, IPPROTO_TCP);
	CU_ASSERT_EQUAL(f->match.dst.family, AF_INET6);
	CU_ASSERT_EQUAL(f->match.dst.plen, 128);
	inet_pton(AF_INET6, "fd00::1", &v6);
	CU_ASSERT(!memcmp(&f->match.dst.addr.v6, &v6, sizeof(v6)));
	CU_ASSERT_EQUAL(f->match.dport.lo, 8000);
	CU_ASSERT_EQUAL(f->match.dport.hi, 8010);
	CU_ASSERT_EQUAL(f->match.src.family, 0);
	CU_ASSERT_EQUAL_FATAL(f->nr_services, 2);
	CU_ASSERT_STRING_EQUAL(f->services[0].name, "count");
	CU_ASSERT_EQUAL(cfg_node_mark(f->services[0].args).line, 0);
	CU_ASSERT(!cfg_node_is_map(f->services[0].args));
	CU_ASSERT_STRING_EQUAL(f->services[1].name, "forward");
	CU_ASSERT(cfg_node_is_map(f->services[1].args));

	CU_ASSERT_PTR_EQUAL(config__find_flow(&cfg, "web.v6"), &cfg.flows[1]);
	CU_ASSERT_PTR_NULL(config__find_flow(&cfg, "nope"));
	done();
}

static void test_defaults(void)
{
	expect_ok(MINIMAL);
	CU_ASSERT_STRING_EQUAL(cfg.pin_path, "/sys/fs/bpf/ferry");
	CU_ASSERT_STRING_EQUAL(cfg.service_dir, "/usr/lib/ferry/services");
	CU_ASSERT_STRING_EQUAL(cfg.control_socket, "/run/ferry/ferryd.sock");
	CU_ASSERT_STRING_EQUAL(cfg.log_level, "");
	CU_ASSERT_EQUAL(cfg.queues, 1);
	CU_ASSERT_EQUAL(cfg.nr_ifaces, 1);
	CU_ASSERT_EQUAL(cfg.ifaces[0].xdp_mode, CFG_XDP_NATIVE);
	/* Outside Linux's default ip_local_port_range, 32768-60999. */
	CU_ASSERT_EQUAL(cfg.nat.ports.lo, 61000);
	CU_ASSERT_EQUAL(cfg.nat.ports.hi, 65535);
	CU_ASSERT_EQUAL(cfg.nat.max_sessions, 65536);
	CU_ASSERT_EQUAL(cfg.nat.udp_timeout_s, 60);
	CU_ASSERT_EQUAL(cfg.nat.tcp_syn_timeout_s, 30);
	CU_ASSERT_EQUAL(cfg.nat.tcp_established_timeout_s, 7440);
	CU_ASSERT_EQUAL(cfg.nat.tcp_closing_timeout_s, 30);
	CU_ASSERT_EQUAL(cfg.umem.frames, 8192);
	CU_ASSERT_EQUAL(cfg.umem.frame_size, 4096);
	CU_ASSERT_EQUAL(cfg.umem.ring_size, 2048);
	CU_ASSERT_EQUAL(cfg.umem.batch, 64);
	CU_ASSERT_EQUAL(cfg.nr_flows, 1);
	CU_ASSERT_EQUAL(cfg.flows[0].match.src.family, 0);
	CU_ASSERT_EQUAL(cfg.flows[0].on_failure, CFG_ON_FAILURE_PASS);
	CU_ASSERT_EQUAL(errs.count, 0);
	CU_ASSERT_STRING_EQUAL(errs.capture, "");
	done();

	/* Sections present but empty of keys keep their defaults too. */
	expect_ok("nat: {}\numem: {}\n" MINIMAL);
	CU_ASSERT_EQUAL(cfg.nat.max_sessions, 65536);
	CU_ASSERT_EQUAL(cfg.umem.frames, 8192);
	done();
}

static void test_wrong_types(void)
{
	expect_one("nat: 5\n" MINIMAL, "t.yaml:1:6: nat: expected a mapping");
	expect_one("umem: [1]\n" MINIMAL, "t.yaml:1:7: umem: expected a mapping");
	expect_one("queues: [1]\n" MINIMAL, "t.yaml:1:9: queues: expected a scalar");
	expect_one("- a\n- b\n", "t.yaml:1:1: expected a mapping");
	expect_one("interfaces: px-c\n"
		   "flows:\n"
		   "  - name: f\n"
		   "    match: {protocol: udp, destination: 10.0.0.1, port: 1}\n"
		   "    services: [forward]\n",
		   "t.yaml:1:13: interfaces: expected a sequence");
	expect_one(HEAD "      - protocol\n" SVC, "t.yaml:6:7: flow 'f' match: expected a mapping");
	expect_one("interfaces:\n  - px-c\nflows:\n  - name: f\n    match:\n" MATCH_OK SVC,
		   "t.yaml:2:5: interface: expected a mapping");
	expect_one(HEAD MATCH_OK "    services: forward\n",
		   "t.yaml:9:15: flow 'f' services: expected a sequence");
	expect_one(HEAD MATCH_OK "    services:\n      - [forward]\n",
		   "t.yaml:10:9: flow 'f': a service is a name or a one-key mapping");
	expect_one(HEAD MATCH_OK "    services:\n      - forward: [1]\n",
		   "t.yaml:10:18: flow 'f': service 'forward': expected a mapping");
	expect_one(HEAD "      protocol: udp\n"
			"      destination: {a: 1}\n"
			"      port: 5000\n" SVC,
		   "t.yaml:7:20: destination: expected a scalar");
	expect_one("? [a, b]\n: 1\n" MINIMAL, "t.yaml:1:3: expected a scalar key");
}

static void test_missing_keys(void)
{
	CU_ASSERT_EQUAL(load("queues: 2\n"), -EINVAL);
	CU_ASSERT_EQUAL(errs.count, 2);
	CU_ASSERT(has("t.yaml:1:1: missing key 'interfaces'\n"));
	CU_ASSERT(has("t.yaml:1:1: missing key 'flows'\n"));
	done();

	expect_one("interfaces:\n"
		   "  - name: px-c\n"
		   "flows:\n"
		   "  - name: x\n"
		   "    services: [forward]\n",
		   "t.yaml:4:5: flow 'x': missing key 'match'");
	expect_one("interfaces:\n"
		   "  - name: px-c\n"
		   "flows:\n"
		   "  - match: {protocol: udp, destination: 10.0.0.1, port: 1}\n"
		   "    services: [forward]\n",
		   "t.yaml:4:5: flow: missing key 'name'");
	expect_one(HEAD "      protocol: udp\n"
			"      destination: 198.18.1.1\n" SVC,
		   "t.yaml:6:7: flow 'f' match: missing key 'port'");
	expect_one(HEAD "      port: 5000\n"
			"      destination: 198.18.1.1\n" SVC,
		   "t.yaml:6:7: flow 'f' match: missing key 'protocol'");
	expect_one("interfaces:\n  - xdp_mode: skb\nflows:\n  - name: f\n    match:\n" MATCH_OK SVC,
		   "t.yaml:2:5: interface: missing key 'name'");
}

static void test_duplicate_keys(void)
{
	expect_one("queues: 2\nqueues: 3\n" MINIMAL, "t.yaml:2:1: duplicate key 'queues'");
	expect_one(HEAD MATCH_OK "      port: 6000\n" SVC,
		   "t.yaml:9:7: flow 'f' match: duplicate key 'port'");
	expect_one("nat:\n  ports: 1000-2000\n  ports: 3000-4000\n" MINIMAL,
		   "t.yaml:3:3: nat: duplicate key 'ports'");
	/* Service arguments are not interpreted, but their keys are unique too. */
	expect_one(HEAD MATCH_OK "    services:\n"
				 "      - forward:\n"
				 "          upstream: 198.18.2.2:6000\n"
				 "          upstream: 198.18.2.3:6000\n",
		   "t.yaml:12:11: duplicate key 'upstream'");
	/*
	 * At every level of them (found by fuzz_config: lb took one of two
	 * weights, and a reload saw the identical flow as changed).
	 */
	expect_one(HEAD MATCH_OK "    services:\n"
				 "      - lb:\n"
				 "          upstreams:\n"
				 "            - {address: 198.18.2.2:6000, weight: 1, weight: 2}\n",
		   "t.yaml:12:53: duplicate key 'weight'");
}

/*
 * An alias to an enclosing node makes the arguments endless, and aliases
 * of aliases make them exponential: every walk of them (a service's parser,
 * reload's comparison, which overflowed its stack on the first) must end.
 */
static void test_endless_args(void)
{
	expect_one(HEAD MATCH_OK "    services:\n"
				 "      - forward: &a {upstream: 198.18.2.2:6000, x: [*a]}\n",
		   "t.yaml:10:22: service arguments nested deeper than 32 levels");
	expect_one(HEAD MATCH_OK "    services:\n"
				 "      - forward:\n"
				 "          upstream: 198.18.2.2:6000\n"
				 "          a: &a [x, x, x, x, x, x, x, x, x, x]\n"
				 "          b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
				 "          c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
				 "          d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
				 "          e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
				 "          f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
		   "over 65536 nodes");
	/* Deep but finite, and shared but small, is fine. */
	expect_ok(HEAD MATCH_OK "    services:\n"
				"      - forward: {upstream: 198.18.2.2:6000, x: &l [[[[1]]]], y: *l}\n");
	done();
}

static void test_duplicate_names(void)
{
	expect_one("interfaces:\n"
		   "  - name: px-c\n"
		   "  - name: px-s\n"
		   "  - name: px-c\n"
		   "flows:\n"
		   "  - name: f\n"
		   "    match: {protocol: udp, destination: 10.0.0.1, port: 1}\n"
		   "    services: [forward]\n",
		   "t.yaml:4:11: duplicate interface 'px-c' (first at line 2)");
	expect_one(MINIMAL "  - name: f\n"
			   "    match: {protocol: tcp, destination: 10.0.0.1, port: 1}\n"
			   "    services: [forward]\n",
		   "t.yaml:12:11: duplicate flow name 'f' (first at line 4)");
}

/* queues: auto (the default) or a count, and what happens to queues beyond it. */
static void test_queues_keys(void)
{
	expect_ok(MINIMAL);
	CU_ASSERT(cfg.queues_auto);
	CU_ASSERT_EQUAL(cfg.queues, 1);
	CU_ASSERT_EQUAL(cfg.queues_mark.line, 0);
	CU_ASSERT_EQUAL(cfg.unserved_queues, CFG_UNSERVED_REFUSE);
	expect_ok("queues: auto\n" MINIMAL);
	CU_ASSERT(cfg.queues_auto);
	CU_ASSERT_EQUAL(cfg.queues_mark.line, 1);
	CU_ASSERT_EQUAL(cfg.queues_mark.col, 9);
	expect_ok("queues: 3\nunserved_queues: kernel\n" MINIMAL);
	CU_ASSERT(!cfg.queues_auto);
	CU_ASSERT_EQUAL(cfg.queues, 3);
	CU_ASSERT_EQUAL(cfg.unserved_queues, CFG_UNSERVED_KERNEL);
	expect_ok("unserved_queues: refuse\n" MINIMAL);
	CU_ASSERT_EQUAL(cfg.unserved_queues, CFG_UNSERVED_REFUSE);
	expect_one("unserved_queues: drop\n" MINIMAL,
		   "t.yaml:1:18: unserved_queues: 'drop' is not one of refuse, kernel");
	expect_one("queues: Auto\n" MINIMAL, "t.yaml:1:9: queues: expected a number, got 'Auto'");
	/* With auto the NAT range is checked against the count found at start. */
	expect_ok("queues: auto\nnat:\n  ports: 40000-40000\n" MINIMAL);
	done();
}

static void test_numbers(void)
{
	expect_one("queues: abc\n" MINIMAL, "t.yaml:1:9: queues: expected a number, got 'abc'");
	expect_one("queues: 4x\n" MINIMAL, "t.yaml:1:9: queues: expected a number, got '4x'");
	expect_one("queues: 0x4\n" MINIMAL, "t.yaml:1:9: queues: expected a number, got '0x4'");
	expect_one("queues: ' 4'\n" MINIMAL, "t.yaml:1:9: queues: expected a number, got ' 4'");
	expect_one("queues: 65\n" MINIMAL, "t.yaml:1:9: queues: value 65 is out of range 1..64");
	expect_one("queues: 0\n" MINIMAL, "t.yaml:1:9: queues: value 0 is out of range 1..64");
	expect_one("queues: -1\n" MINIMAL, "t.yaml:1:9: queues: value -1 is out of range 1..64");
	expect_one("queues: 99999999999999999999\n" MINIMAL,
		   "t.yaml:1:9: queues: value 99999999999999999999 is out of range 1..64");
	expect_one("queues:\n" MINIMAL, "t.yaml:1:8: queues: expected a number, got ''");
	expect_one("nat:\n  max_sessions: 16777217\n" MINIMAL,
		   "t.yaml:2:17: max_sessions: value 16777217 is out of range 1..16777216");
	expect_one("nat:\n  udp_timeout: 86401\n" MINIMAL,
		   "t.yaml:2:16: udp_timeout: value 86401 is out of range 1..86400");
	expect_one("nat:\n  tcp_syn_timeout: 0\n" MINIMAL,
		   "t.yaml:2:20: tcp_syn_timeout: value 0 is out of range 1..86400");
	expect_one("nat:\n  tcp_established_timeout: 86401\n" MINIMAL,
		   "t.yaml:2:28: tcp_established_timeout: value 86401 is out of range 1..86400");
	expect_one("nat:\n  tcp_closing_timeout: -5\n" MINIMAL,
		   "t.yaml:2:24: tcp_closing_timeout: value -5 is out of range 1..86400");

	/* Quoted numbers are still numbers; the upper bounds are inclusive. */
	expect_ok("queues: \"64\"\nnat: {max_sessions: 16777216, udp_timeout: 86400}\n" MINIMAL);
	CU_ASSERT_EQUAL(cfg.queues, 64);
	CU_ASSERT_EQUAL(cfg.nat.max_sessions, 16777216);
	CU_ASSERT_EQUAL(cfg.nat.udp_timeout_s, 86400);
	expect_ok("nat:\n  tcp_syn_timeout: 86400\n  tcp_established_timeout: 1\n"
		  "  tcp_closing_timeout: 2\n" MINIMAL);
	CU_ASSERT_EQUAL(cfg.nat.tcp_syn_timeout_s, 86400);
	CU_ASSERT_EQUAL(cfg.nat.tcp_established_timeout_s, 1);
	CU_ASSERT_EQUAL(cfg.nat.tcp_closing_timeout_s, 2);
	CU_ASSERT_EQUAL(cfg.nat.udp_timeout_s, 60);
	done();
}

static void test_umem(void)
{
	expect_one("umem:\n  frames: 3000\n" MINIMAL,
		   "t.yaml:2:11: frames: 3000 is not a power of two");
	expect_one("umem:\n  frames: 256\n" MINIMAL,
		   "t.yaml:2:11: frames: value 256 is out of range 512..1048576");
	expect_one("umem:\n  frame_size: 1024\n" MINIMAL,
		   "t.yaml:2:15: frame_size: must be 2048 or 4096, got 1024");
	expect_one("umem:\n  ring_size: 100\n" MINIMAL,
		   "t.yaml:2:14: ring_size: 100 is not a power of two");
	expect_one("umem:\n  batch: 257\n" MINIMAL,
		   "t.yaml:2:10: batch: value 257 is out of range 1..256");
	expect_one("umem:\n  frames: 1024\n  ring_size: 1024\n" MINIMAL,
		   "t.yaml:3:14: umem: ring_size 1024 needs at least 2048 frames, have 1024");
	/* With ring_size left at its default, the blame is on frames. */
	expect_one("umem:\n  frames: 2048\n" MINIMAL,
		   "t.yaml:2:11: umem: ring_size 2048 needs at least 4096 frames, have 2048");
	expect_one("umem:\n  ring_size: 64\n  batch: 128\n" MINIMAL,
		   "t.yaml:3:10: umem: batch 128 is larger than ring_size 64");
	/* A bad value is reported once, not again by the checks across keys. */
	expect_one("umem:\n  frames: 1000\n  ring_size: 4096\n" MINIMAL,
		   "t.yaml:2:11: frames: 1000 is not a power of two");

	expect_ok("umem: {frames: 512, ring_size: 256, batch: 256, frame_size: 2048}\n" MINIMAL);
	CU_ASSERT_EQUAL(cfg.umem.frames, 512);
	CU_ASSERT_EQUAL(cfg.umem.ring_size, 256);
	done();
}

static void test_nat_ports(void)
{
	expect_one("nat:\n  ports: 50000-40000\n" MINIMAL,
		   "t.yaml:2:10: ports: port range '50000-40000' is reversed (50000 > 40000)");
	expect_one("nat:\n  ports: 0-100\n" MINIMAL,
		   "t.yaml:2:10: ports: port '0-100' is out of range 1..65535");
	expect_one("nat:\n  ports: 1000-65536\n" MINIMAL,
		   "t.yaml:2:10: ports: port '1000-65536' is out of range 1..65535");
	expect_one("nat:\n  ports: 1000-\n" MINIMAL,
		   "t.yaml:2:10: ports: expected a port or a range LO-HI, got '1000-'");
	expect_one("queues: 8\nnat:\n  ports: 40000-40006\n" MINIMAL,
		   "t.yaml:3:10: ports: range 40000-40006 has fewer ports than queues (8)");
	/* The check across keys holds whatever order the keys come in. */
	expect_one("nat:\n  ports: 40000-40006\nqueues: 8\n" MINIMAL,
		   "t.yaml:2:10: ports: range 40000-40006 has fewer ports than queues (8)");

	expect_ok("queues: 8\nnat:\n  ports: 40000-40007\n" MINIMAL);
	CU_ASSERT_EQUAL(cfg.nat.ports.lo, 40000);
	CU_ASSERT_EQUAL(cfg.nat.ports.hi, 40007);
	done();
}

static void test_prefixes(void)
{
	expect_one(HEAD "      protocol: udp\n"
			"      destination: 198.18.1.256\n"
			"      port: 5000\n" SVC,
		   "t.yaml:7:20: destination: bad address '198.18.1.256'");
	expect_one(HEAD "      protocol: udp\n"
			"      destination: 198.18.1.1/33\n"
			"      port: 5000\n" SVC,
		   "t.yaml:7:20: destination: prefix length in '198.18.1.1/33' is out of range "
		   "0..32");
	expect_one(HEAD "      protocol: udp\n"
			"      destination: fd00::/129\n"
			"      port: 5000\n" SVC,
		   "t.yaml:7:20: destination: prefix length in 'fd00::/129' is out of range "
		   "0..128");
	expect_one(HEAD "      protocol: udp\n"
			"      destination: 10.0.0.0/x\n"
			"      port: 5000\n" SVC,
		   "t.yaml:7:20: destination: bad prefix length in '10.0.0.0/x'");
	expect_one(HEAD "      protocol: udp\n"
			"      destination: 10.0.0.0/\n"
			"      port: 5000\n" SVC,
		   "t.yaml:7:20: destination: bad prefix length in '10.0.0.0/'");
	expect_one(HEAD MATCH_OK "      source: 10.1\n" SVC,
		   "t.yaml:9:15: source: bad address '10.1'");

	/* Host bits are accepted and cleared. */
	expect_ok(HEAD "      protocol: udp\n"
		       "      destination: 198.18.1.77/23\n"
		       "      port: 5000\n"
		       "      source: 0.0.0.0/0\n" SVC);
	CU_ASSERT_EQUAL(cfg.flows[0].match.dst.plen, 23);
	CU_ASSERT_EQUAL(cfg.flows[0].match.dst.addr.v4.s_addr, inet_addr("198.18.0.0"));
	CU_ASSERT_EQUAL(cfg.flows[0].match.src.plen, 0);
	done();
}

static void test_families(void)
{
	expect_one(HEAD MATCH_OK "      source: fd00::/64\n" SVC,
		   "t.yaml:9:15: flow 'f' match: source and destination are of different families");
	expect_ok(HEAD "      protocol: tcp\n"
		       "      destination: fd00::1\n"
		       "      port: 443\n"
		       "      source: fd00:1:ffff::/36\n" SVC);
	CU_ASSERT_EQUAL(cfg.flows[0].match.src.family, AF_INET6);
	CU_ASSERT_EQUAL(cfg.flows[0].match.src.addr.bytes[4], 0xf0);
	CU_ASSERT_EQUAL(cfg.flows[0].match.src.addr.bytes[5], 0);
	done();
}

static void test_match_ports(void)
{
	expect_one(HEAD "      protocol: udp\n"
			"      destination: 198.18.1.1\n"
			"      port: 0\n" SVC,
		   "t.yaml:8:13: port: port '0' is out of range 1..65535");
	expect_one(HEAD "      protocol: udp\n"
			"      destination: 198.18.1.1\n"
			"      port: 70000\n" SVC,
		   "t.yaml:8:13: port: port '70000' is out of range 1..65535");
	expect_one(HEAD "      protocol: udp\n"
			"      destination: 198.18.1.1\n"
			"      port: 5010-5000\n" SVC,
		   "t.yaml:8:13: port: port range '5010-5000' is reversed (5010 > 5000)");
	expect_one(HEAD "      protocol: udp\n"
			"      destination: 198.18.1.1\n"
			"      port: http\n" SVC,
		   "t.yaml:8:13: port: expected a port or a range LO-HI, got 'http'");
	expect_one(HEAD "      protocol: udp\n"
			"      destination: 198.18.1.1\n"
			"      port: -5\n" SVC,
		   "t.yaml:8:13: port: expected a port or a range LO-HI, got '-5'");
	expect_one(HEAD "      protocol: icmp\n"
			"      destination: 198.18.1.1\n"
			"      port: 5000\n" SVC,
		   "t.yaml:6:17: protocol: 'icmp' is not one of udp, tcp");

	expect_ok(HEAD "      protocol: udp\n"
		       "      destination: 198.18.1.1\n"
		       "      port: 1-65535\n" SVC);
	CU_ASSERT_EQUAL(cfg.flows[0].match.dport.lo, 1);
	CU_ASSERT_EQUAL(cfg.flows[0].match.dport.hi, 65535);
	done();
}

static void test_unknown_keys(void)
{
	expect_one("colour: blue\n" MINIMAL, "t.yaml:1:1: unknown key 'colour' in top level");
	expect_one("interfaces:\n"
		   "  - name: px-c\n"
		   "    mtu: 1500\n"
		   "flows:\n"
		   "  - name: f\n"
		   "    match: {protocol: udp, destination: 10.0.0.1, port: 1}\n"
		   "    services: [forward]\n",
		   "t.yaml:3:5: unknown key 'mtu' in interface 'px-c'");
	expect_one("nat:\n  range: 1-2\n" MINIMAL, "t.yaml:2:3: unknown key 'range' in nat");
	expect_one("umem:\n  hugepages: true\n" MINIMAL,
		   "t.yaml:2:3: unknown key 'hugepages' in umem");
	expect_one(MINIMAL "    priority: 1\n", "t.yaml:12:5: unknown key 'priority' in flow 'f'");
	expect_one(HEAD MATCH_OK "      sport: 53\n" SVC,
		   "t.yaml:9:7: unknown key 'sport' in flow 'f' match");
	/* Keys are case-sensitive. */
	expect_one("Queues: 1\n" MINIMAL, "t.yaml:1:1: unknown key 'Queues' in top level");
	/* Unknown service arguments are the service's to report, not the parser's. */
	expect_ok(HEAD MATCH_OK "    services:\n"
				"      - forward: {upstream: 1.2.3.4:5, colour: blue}\n");
	done();
}

static void test_on_failure(void)
{
	expect_ok(MINIMAL "    on_failure: drop\n");
	CU_ASSERT_EQUAL(cfg.flows[0].on_failure, CFG_ON_FAILURE_DROP);
	done();
	expect_ok(MINIMAL "    on_failure: pass\n");
	CU_ASSERT_EQUAL(cfg.flows[0].on_failure, CFG_ON_FAILURE_PASS);
	done();
	expect_one(MINIMAL "    on_failure: reject\n",
		   "t.yaml:12:17: on_failure: 'reject' is not one of pass, drop");
	expect_one(MINIMAL "    on_failure: [drop]\n",
		   "t.yaml:12:17: on_failure: expected a scalar");
}

/* flows[].offload and nat.offload_max_sessions: defaults, values, errors, reload equality. */
static void test_offload_keys(void)
{
	struct ferry_config base = { 0 };
	struct cfg_errors berrs = { 0 };

	expect_ok(MINIMAL);
	CU_ASSERT_EQUAL(cfg.flows[0].offload, CFG_OFFLOAD_AUTO);
	CU_ASSERT_EQUAL(cfg.nat.offload_max_sessions, 32768);
	done();
	/* The default flow, kept loaded to compare the others with. */
	CU_ASSERT_EQUAL_FATAL(config__load_string(&base, "t.yaml", MINIMAL, &berrs), 0);
	expect_ok(MINIMAL "    offload: off\n");
	CU_ASSERT_EQUAL(cfg.flows[0].offload, CFG_OFFLOAD_OFF);
	/* A flow whose offload changes is a changed flow: its sessions are renewed. */
	CU_ASSERT_FALSE(config__flow_equal(&base.flows[0], &cfg.flows[0]));
	done();
	expect_ok(MINIMAL "    offload: auto\n");
	CU_ASSERT_EQUAL(cfg.flows[0].offload, CFG_OFFLOAD_AUTO);
	CU_ASSERT_TRUE(config__flow_equal(&base.flows[0], &cfg.flows[0]));
	done();
	config__free(&base);
	free(berrs.capture);
	expect_ok("nat: {offload_max_sessions: 0}\n" MINIMAL);
	CU_ASSERT_EQUAL(cfg.nat.offload_max_sessions, 0);
	done();
	expect_one(MINIMAL "    offload: on\n",
		   "t.yaml:12:14: offload: 'on' is not one of auto, off");
	expect_one("nat:\n  offload_max_sessions: 1048577\n" MINIMAL,
		   "t.yaml:2:25: offload_max_sessions: value 1048577 is out of range 0..1048576");
}

static void test_many_errors(void)
{
	static const char yaml[] = "queues: 0\n"                         /* 1 */
				   "log_level: loud\n"                   /* 2 */
				   "interfaces:\n"                       /* 3 */
				   "  - name: a-very-long-interface\n"   /* 4 */
				   "    xdp_mode: turbo\n"               /* 5 */
				   "umem:\n"                             /* 6 */
				   "  frame_size: 100\n"                 /* 7 */
				   "  spare: 1\n"                        /* 8 */
				   "flows:\n"                            /* 9 */
				   "  - name: f\n"                       /* 10 */
				   "    match:\n"                        /* 11 */
				   "      protocol: udp\n"               /* 12 */
				   "      destination: 1.2.3.4/40\n"     /* 13 */
				   "    services: []\n"                  /* 14 */
				   "  - name: bad name!\n"               /* 15 */
				   "    match: {}\n"                     /* 16 */
				   "    services: [forward]\n";          /* 17 */

	CU_ASSERT_EQUAL(load(yaml), -EINVAL);
	CU_ASSERT(has("t.yaml:1:9: queues: value 0 is out of range 1..64\n"));
	CU_ASSERT(has("t.yaml:2:12: log_level: 'loud' is not one of error, warn, info, debug\n"));
	CU_ASSERT(has("t.yaml:4:11: interface name 'a-very-long-interface' is too long (max 15 "
		      "characters)\n"));
	CU_ASSERT(has("t.yaml:5:15: xdp_mode: 'turbo' is not one of native, native-only, skb\n"));
	CU_ASSERT(has("t.yaml:7:15: frame_size: must be 2048 or 4096, got 100\n"));
	CU_ASSERT(has("t.yaml:8:3: unknown key 'spare' in umem\n"));
	CU_ASSERT(has("t.yaml:13:20: destination: prefix length in '1.2.3.4/40' is out of range "
		      "0..32\n"));
	CU_ASSERT(has("t.yaml:12:7: flow 'f' match: missing key 'port'\n"));
	CU_ASSERT(has("t.yaml:14:15: flow 'f' services: at least one entry is required\n"));
	CU_ASSERT(has("t.yaml:15:11: bad flow name 'bad name!' (use A-Z a-z 0-9 _ . -)\n"));
	CU_ASSERT(has("t.yaml:16:12: flow 'bad name!' match: missing key 'protocol'\n"));
	CU_ASSERT(has("t.yaml:16:12: flow 'bad name!' match: missing key 'destination'\n"));
	CU_ASSERT(has("t.yaml:16:12: flow 'bad name!' match: missing key 'port'\n"));
	CU_ASSERT_EQUAL(errs.count, 13);
	/* Every captured line is one counted error. */
	{
		int lines = 0;

		for (const char *c = errs.capture; *c; c++)
			lines += *c == '\n';
		CU_ASSERT_EQUAL(lines, errs.count);
	}
	/* A failed load leaves nothing to free, and freeing again is harmless. */
	CU_ASSERT_PTR_NULL(cfg.tree);
	done();
}

static void test_syntax_error(void)
{
	expect_one("interfaces:\n"
		   "  - name: px-c\n"
		   "flows: [\n"
		   "  name: x\n",
		   "t.yaml:5:1: syntax error: did not find expected ',' or ']' (while parsing a "
		   "flow sequence)");
	expect_one("queues: 1\n  x: 2\n", "t.yaml:2:4: syntax error: mapping values are not "
					    "allowed in this context");
	expect_one("queues: *nope\n", "t.yaml:1:9: syntax error: found undefined alias");
	/* Tabs are not indentation in YAML. */
	expect_one("nat:\n\tports: 1-2\n",
		   "t.yaml:2:1: syntax error: found character that cannot start any token");
}

static void test_documents(void)
{
	expect_one("", "t.yaml:1:1: empty configuration");
	expect_one("# nothing but a comment\n", "t.yaml:1:1: empty configuration");
	expect_one(MINIMAL "---\nqueues: 2\n", "t.yaml:13:1: only one YAML document is allowed");
	/* An explicit start marker alone is fine. */
	expect_ok("---\n" MINIMAL "...\n");
	done();
}

static void test_names(void)
{
	expect_one("interfaces:\n  - name: abcdefghijklmnop\nflows:\n"
		   "  - name: f\n    match:\n" MATCH_OK SVC,
		   "t.yaml:2:11: interface name 'abcdefghijklmnop' is too long (max 15 "
		   "characters)");
	expect_one("interfaces:\n  - name: a/b\nflows:\n  - name: f\n    match:\n" MATCH_OK SVC,
		   "t.yaml:2:11: bad interface name 'a/b'");
	expect_one("interfaces:\n  - name: ''\nflows:\n  - name: f\n    match:\n" MATCH_OK SVC,
		   "t.yaml:2:11: bad interface name ''");
	expect_one("interfaces:\n  - name: px-c\nflows:\n"
		   "  - name: abcdefghijklmnopqrstuvwxyz012345\n    match:\n" MATCH_OK SVC,
		   "t.yaml:4:11: flow name: 'abcdefghijklmnopqrstuvwxyz012345' is too long (max 31 "
		   "characters)");
	expect_one("interfaces:\n  - name: px-c\nflows:\n  - name: a:b\n    match:\n" MATCH_OK SVC,
		   "t.yaml:4:11: bad flow name 'a:b' (use A-Z a-z 0-9 _ . -)");
	expect_one(HEAD MATCH_OK "    services:\n      - 'for ward'\n",
		   "t.yaml:10:9: flow 'f': bad service name 'for ward'");
	expect_one("interfaces:\n  - name: \"a\\0b\"\nflows:\n  - name: f\n    match:\n" MATCH_OK
		   SVC,
		   "t.yaml:2:11: interface name: NUL character in value");

	/* 15 and 31 characters are the limits, inclusive. */
	expect_ok("interfaces:\n  - name: abcdefghijklmno\nflows:\n"
		  "  - name: abcdefghijklmnopqrstuvwxyz01234\n    match:\n" MATCH_OK SVC);
	CU_ASSERT_STRING_EQUAL(cfg.ifaces[0].name, "abcdefghijklmno");
	CU_ASSERT_STRING_EQUAL(cfg.flows[0].name, "abcdefghijklmnopqrstuvwxyz01234");
	done();
}

static void test_top_scalars(void)
{
	expect_one("pin_path: bpf/ferry\n" MINIMAL,
		   "t.yaml:1:11: pin_path: 'bpf/ferry' is not an absolute path");
	expect_one("log_level: [info]\n" MINIMAL, "t.yaml:1:12: log_level: expected a scalar");
	expect_one("service_dir: lib/ferry\n" MINIMAL,
		   "t.yaml:1:14: service_dir: 'lib/ferry' is not an absolute path");
	expect_one("service_dir: {a: b}\n" MINIMAL, "t.yaml:1:14: service_dir: expected a scalar");
	expect_ok("service_dir: /opt/ferry/services\n" MINIMAL);
	CU_ASSERT_STRING_EQUAL(cfg.service_dir, "/opt/ferry/services");
	done();
	for (int i = 0; i < 4; i++) {
		static const char *const levels[] = { "error", "warn", "info", "debug" };
		char yaml[512];

		snprintf(yaml, sizeof(yaml), "log_level: %s\n" MINIMAL, levels[i]);
		expect_ok(yaml);
		CU_ASSERT_STRING_EQUAL(cfg.log_level, levels[i]);
		done();
	}
}

/* control_group: a group by name or number; unknown ones refused at their place. */
static void test_control_group(void)
{
	expect_ok(MINIMAL);
	CU_ASSERT(!cfg.control_group_set);
	done();
	expect_ok("control_group: root\n" MINIMAL);
	CU_ASSERT(cfg.control_group_set);
	CU_ASSERT_EQUAL(cfg.control_gid, 0);
	done();
	expect_ok("control_group: 4242\n" MINIMAL);
	CU_ASSERT(cfg.control_group_set);
	CU_ASSERT_EQUAL(cfg.control_gid, 4242);
	done();
	expect_one("control_group: no-such-group-here\n" MINIMAL,
		   "t.yaml:1:16: control_group: no group 'no-such-group-here'");
	expect_one("control_group: 12x\n" MINIMAL, "t.yaml:1:16: control_group: '12x' is not a group id");
	expect_one("control_group: [a]\n" MINIMAL, "t.yaml:1:16: control_group: expected a scalar");
}

static void test_control_socket(void)
{
	expect_ok("control_socket: /tmp/ferry-t/ctl.sock\n" MINIMAL);
	CU_ASSERT_STRING_EQUAL(cfg.control_socket, "/tmp/ferry-t/ctl.sock");
	done();
	expect_one("control_socket: run/ferry.sock\n" MINIMAL,
		   "t.yaml:1:17: control_socket: 'run/ferry.sock' is not an absolute path to a file");
	expect_one("control_socket: /run/ferry/\n" MINIMAL,
		   "t.yaml:1:17: control_socket: '/run/ferry/' is not an absolute path to a file");
	expect_one("control_socket: [a]\n" MINIMAL, "t.yaml:1:17: control_socket: expected a scalar");
	/* sun_path holds 107 characters and the NUL. */
	expect_one("control_socket: /"
		   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		   "aaaaaaaaaaaaaaaaaaaaaaa\n" MINIMAL,
		   "t.yaml:1:17: control_socket: '/");
	expect_ok("control_socket: /"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaa\n" MINIMAL);
	CU_ASSERT_EQUAL(strlen(cfg.control_socket), 107);
	done();
}

/* `app` slots are found by name: one name, one slot, across all flows. */
static void test_app_names(void)
{
	static const char two[] =
		"interfaces:\n  - name: px-c\nflows:\n"
		"  - name: a\n    match:\n" MATCH_OK
		"    services:\n      - app: {name: x, owner: root}\n"
		"      - app: {name: y, owner: root}\n"
		"  - name: b\n    match:\n      protocol: udp\n      destination: 198.18.1.1\n"
		"      port: 5001\n"
		"    services:\n      - app: {name: %s, owner: root}\n";
	char yaml[1024];

	snprintf(yaml, sizeof(yaml), two, "z");
	expect_ok(yaml);
	done();
	snprintf(yaml, sizeof(yaml), two, "y");
	expect_one(yaml, "t.yaml:18:21: app: name 'y' is taken already by flow 'a' (line 11)");
	expect_one(HEAD MATCH_OK "    services:\n      - app: {name: q, owner: root}\n"
				"      - app: {owner: root, name: q}\n",
		   "t.yaml:11:34: app: name 'q' is taken already by flow 'f' (line 10)");
}

static void test_services_forms(void)
{
	const struct cfg_flow *f;

	expect_ok(HEAD MATCH_OK "    services:\n"
				"      - count\n"
				"      - mirror:\n"
				"      - trace: ~\n"
				"      - forward: {upstream: 198.18.2.2:6000}\n");
	f = &cfg.flows[0];
	CU_ASSERT_EQUAL_FATAL(f->nr_services, 4);
	CU_ASSERT_STRING_EQUAL(f->services[0].name, "count");
	CU_ASSERT_EQUAL(f->services[0].mark.line, 10);
	CU_ASSERT_EQUAL(f->services[0].mark.col, 9);
	CU_ASSERT(!cfg_node_is_map(f->services[0].args));
	CU_ASSERT_EQUAL(cfg_node_mark(f->services[0].args).line, 0);
	CU_ASSERT_STRING_EQUAL(f->services[1].name, "mirror");
	CU_ASSERT(!cfg_node_is_map(f->services[1].args));
	CU_ASSERT_EQUAL(cfg_node_mark(f->services[1].args).line, 0);
	CU_ASSERT_STRING_EQUAL(f->services[2].name, "trace");
	CU_ASSERT(!cfg_node_is_map(f->services[2].args));
	CU_ASSERT_EQUAL(cfg_node_mark(f->services[2].args).line, 0);
	CU_ASSERT_STRING_EQUAL(f->services[3].name, "forward");
	CU_ASSERT(cfg_node_is_map(f->services[3].args));
	CU_ASSERT_EQUAL(cfg_node_mark(f->services[3].args).line, 13);
	done();

	expect_one(HEAD MATCH_OK "    services:\n      - a: {}\n        b: {}\n",
		   "t.yaml:10:9: flow 'f': a service is a name or a one-key mapping");
	expect_one(HEAD MATCH_OK "    services:\n      - forward: 1.2.3.4:5\n",
		   "t.yaml:10:18: flow 'f': service 'forward': expected a mapping");
	expect_one(HEAD MATCH_OK "    services:\n"
				 "      - a\n"
				 "      - b\n"
				 "      - c\n"
				 "      - d\n"
				 "      - e\n"
				 "      - f\n"
				 "      - g\n"
				 "      - h\n"
				 "      - i\n",
		   "t.yaml:18:9: flow 'f' services: too many entries (max 8)");
}

static void test_limits(void)
{
	size_t size = 65 * 128 + 256, len;
	char *yaml = malloc(size);

	CU_ASSERT_FATAL(yaml != NULL);
	expect_one("interfaces: []\n"
		   "flows:\n"
		   "  - name: f\n"
		   "    match: {protocol: udp, destination: 10.0.0.1, port: 1}\n"
		   "    services: [forward]\n",
		   "t.yaml:1:13: interfaces: at least one entry is required");
	expect_one("interfaces: [{name: px-c}]\nflows: []\n",
		   "t.yaml:2:8: flows: at least one entry is required");

	len = snprintf(yaml, size, "interfaces:\n");
	for (int i = 0; i < 9; i++)
		len += snprintf(yaml + len, size - len, "  - name: eth%d\n", i);
	snprintf(yaml + len, size - len,
		 "flows:\n  - name: f\n    match: {protocol: udp, destination: 10.0.0.1, "
		 "port: 1}\n    services: [forward]\n");
	expect_one(yaml, "t.yaml:10:5: interfaces: too many entries (max 8)");

	/* 64 flows are fine, the 65th is one too many. */
	for (int n = 64; n <= 65; n++) {
		len = snprintf(yaml, size, "interfaces: [{name: px-c}]\nflows:\n");
		for (int i = 0; i < n; i++)
			len += snprintf(yaml + len, size - len,
					"  - name: f%d\n"
					"    match: {protocol: udp, destination: 10.0.0.1, "
					"port: %d}\n"
					"    services: [forward]\n",
					i, i + 1);
		if (n == 64) {
			expect_ok(yaml);
			CU_ASSERT_EQUAL(cfg.nr_flows, 64);
			CU_ASSERT_STRING_EQUAL(cfg.flows[63].name, "f63");
			CU_ASSERT_EQUAL(cfg.flows[63].match.dport.lo, 64);
			done();
		} else {
			expect_one(yaml, "t.yaml:195:5: flows: too many entries (max 64)");
		}
	}
	free(yaml);
}

static void test_xdp_modes(void)
{
	expect_ok("interfaces:\n"
		  "  - {name: a, xdp_mode: native}\n"
		  "  - {name: b, xdp_mode: native-only}\n"
		  "  - {name: c, xdp_mode: skb}\n"
		  "  - {name: d}\n"
		  "flows:\n  - name: f\n    match:\n" MATCH_OK SVC);
	CU_ASSERT_EQUAL(cfg.nr_ifaces, 4);
	CU_ASSERT_EQUAL(cfg.ifaces[0].xdp_mode, CFG_XDP_NATIVE);
	CU_ASSERT_EQUAL(cfg.ifaces[1].xdp_mode, CFG_XDP_NATIVE_ONLY);
	CU_ASSERT_EQUAL(cfg.ifaces[2].xdp_mode, CFG_XDP_SKB);
	CU_ASSERT_EQUAL(cfg.ifaces[3].xdp_mode, CFG_XDP_NATIVE);
	CU_ASSERT_EQUAL(cfg.ifaces[2].mark.line, 4);
	CU_ASSERT_EQUAL(cfg.ifaces[2].mark.col, 5);
	done();
	expect_one("interfaces:\n  - {name: a, xdp_mode: Native}\nflows:\n"
		   "  - name: f\n    match:\n" MATCH_OK SVC,
		   "t.yaml:2:25: xdp_mode: 'Native' is not one of native, native-only, skb");
}

static void test_poll_modes_and_cpus(void)
{
	expect_ok("interfaces:\n"
		  "  - {name: a, poll_mode: interrupt}\n"
		  "  - {name: b, poll_mode: busy-poll}\n"
		  "  - {name: c, poll_mode: busy-poll, busy_poll_usecs: 10000}\n"
		  "  - {name: d, poll_mode: spin}\n"
		  "  - {name: e}\n"
		  "flows:\n  - name: f\n    match:\n" MATCH_OK SVC);
	CU_ASSERT_EQUAL(cfg.ifaces[0].poll_mode, CFG_POLL_INTERRUPT);
	CU_ASSERT_EQUAL(cfg.ifaces[1].poll_mode, CFG_POLL_BUSY);
	CU_ASSERT_EQUAL(cfg.ifaces[1].busy_poll_usecs, 20);
	CU_ASSERT_EQUAL(cfg.ifaces[2].poll_mode, CFG_POLL_BUSY);
	CU_ASSERT_EQUAL(cfg.ifaces[2].busy_poll_usecs, 10000);
	CU_ASSERT_EQUAL(cfg.ifaces[3].poll_mode, CFG_POLL_SPIN);
	CU_ASSERT_EQUAL(cfg.ifaces[4].poll_mode, CFG_POLL_INTERRUPT);
	CU_ASSERT_EQUAL(cfg.ifaces[4].busy_poll_usecs, 20);
	/* Not pinned unless asked. */
	CU_ASSERT_EQUAL(cfg.nr_cpus, 0);
	done();
	expect_one("interfaces:\n  - {name: a, poll_mode: busy}\nflows:\n"
		   "  - name: f\n    match:\n" MATCH_OK SVC,
		   "t.yaml:2:26: poll_mode: 'busy' is not one of interrupt, busy-poll, spin");
	expect_one("interfaces:\n  - {name: a, poll_mode: busy-poll, busy_poll_usecs: 0}\n"
		   "flows:\n  - name: f\n    match:\n" MATCH_OK SVC,
		   "t.yaml:2:54: busy_poll_usecs: value 0 is out of range 1..10000");
	expect_one("interfaces:\n  - {name: a, busy_poll_usecs: 50}\nflows:\n"
		   "  - name: f\n    match:\n" MATCH_OK SVC,
		   "t.yaml:2:32: interface 'a': busy_poll_usecs applies only to poll_mode "
		   "busy-poll");
	expect_one("interfaces:\n  - {name: a, poll_mode: spin, busy_poll_usecs: 50}\n"
		   "flows:\n  - name: f\n    match:\n" MATCH_OK SVC,
		   "t.yaml:2:49: interface 'a': busy_poll_usecs applies only to poll_mode "
		   "busy-poll");

	expect_ok("queues: 4\ncpus: [1, 0, 1023]\n" MINIMAL);
	CU_ASSERT_EQUAL(cfg.nr_cpus, 3);
	CU_ASSERT_EQUAL(cfg.cpus[0], 1);
	CU_ASSERT_EQUAL(cfg.cpus[1], 0);
	CU_ASSERT_EQUAL(cfg.cpus[2], 1023);
	done();
	expect_one("cpus: [0, 1024]\n" MINIMAL,
		   "t.yaml:1:11: cpus: value 1024 is out of range 0..1023");
	expect_one("cpus: [0, x]\n" MINIMAL, "t.yaml:1:11: cpus: expected a number, got 'x'");
	expect_one("cpus: []\n" MINIMAL, "t.yaml:1:7: cpus: at least one entry is required");
	expect_one("cpus: 1\n" MINIMAL, "t.yaml:1:7: cpus: expected a sequence");

	expect_ok(MINIMAL);
	CU_ASSERT_EQUAL(cfg.worker_priority, 0);
	done();
	expect_ok("worker_priority: 10\n" MINIMAL);
	CU_ASSERT_EQUAL(cfg.worker_priority, 10);
	done();
	expect_one("worker_priority: 100\n" MINIMAL,
		   "t.yaml:1:18: worker_priority: value 100 is out of range 0..99");
	/* A real-time worker must sleep when idle: interrupt mode on every interface. */
	expect_one("worker_priority: 10\ninterfaces:\n  - {name: a}\n"
		   "  - {name: b, poll_mode: busy-poll}\nflows:\n  - name: f\n    match:\n" MATCH_OK SVC,
		   "t.yaml:1:18: worker_priority: needs poll_mode interrupt, but interface 'b' "
		   "(line 4) is busy-poll: a real-time worker that never sleeps starves the "
		   "kernel's receive processing on its CPU");
	expect_one("worker_priority: 1\ninterfaces:\n  - {name: a, poll_mode: spin}\n"
		   "flows:\n  - name: f\n    match:\n" MATCH_OK SVC,
		   "t.yaml:1:18: worker_priority: needs poll_mode interrupt, but interface 'a' "
		   "(line 3) is spin: a real-time worker that never sleeps starves the "
		   "kernel's receive processing on its CPU");
	expect_ok("worker_priority: 0\ninterfaces:\n  - {name: a, poll_mode: spin}\n"
		  "flows:\n  - name: f\n    match:\n" MATCH_OK SVC);
	done();

	expect_ok("coalesce_usecs: 50\n" MINIMAL);
	CU_ASSERT_EQUAL(cfg.coalesce_usecs, 50);
	done();
	expect_one("coalesce_usecs: 1001\n" MINIMAL,
		   "t.yaml:1:17: coalesce_usecs: value 1001 is out of range 0..1000");
	expect_one("coalesce_usecs: 20\ninterfaces:\n  - {name: a, poll_mode: busy-poll}\n"
		   "flows:\n  - name: f\n    match:\n" MATCH_OK SVC,
		   "t.yaml:1:17: coalesce_usecs: needs poll_mode interrupt, but interface 'a' "
		   "(line 3) is busy-poll: only a worker that sleeps when idle naps");
}

static char tmp_path[64];

static void write_tmp(const char *text)
{
	int fd;

	snprintf(tmp_path, sizeof(tmp_path), "/tmp/ferry-test-XXXXXX");
	fd = mkstemp(tmp_path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
}

static void test_load_file(void)
{
	char want[128];

	write_tmp(full_yaml);
	reset_errs();
	CU_ASSERT_EQUAL(config__load(&cfg, tmp_path, &errs), 0);
	CU_ASSERT_STRING_EQUAL(cfg.file, tmp_path);
	CU_ASSERT_EQUAL(cfg.nr_flows, 2);
	CU_ASSERT_EQUAL(cfg.flows[1].nr_services, 2);
	CU_ASSERT_EQUAL(cfg.umem.batch, 32);
	done();
	unlink(tmp_path);

	write_tmp("queues: 100\n" MINIMAL);
	reset_errs();
	CU_ASSERT_EQUAL(config__load(&cfg, tmp_path, &errs), -EINVAL);
	snprintf(want, sizeof(want), "%s:1:9: queues: value 100 is out of range 1..64\n",
		 tmp_path);
	CU_ASSERT(has(want));
	done();
	unlink(tmp_path);

	/* Without an error sink, errors are only logged; the result is the same. */
	CU_ASSERT_EQUAL(config__load_string(&cfg, "t.yaml", "queues: 100\n", NULL), -EINVAL);
	config__free(&cfg);
}

static void test_missing_file(void)
{
	reset_errs();
	CU_ASSERT_EQUAL(config__load(&cfg, "/nonexistent/ferry.yaml", &errs), -ENOENT);
	CU_ASSERT(has("/nonexistent/ferry.yaml: cannot open: No such file or directory\n"));
	CU_ASSERT_EQUAL(errs.count, 1);
	CU_ASSERT_PTR_NULL(cfg.tree);
	done();

	reset_errs();
	CU_ASSERT_EQUAL(config__load(&cfg, "/tmp", &errs), -EISDIR);
	CU_ASSERT(has("/tmp: cannot read: Is a directory\n"));
	done();
}

/* The example configs are part of the product: they must load as shipped. */
static void test_shipped_configs(void)
{
	const struct cfg_flow *f;
	struct cfg_prefix up;
	const struct cfg_node *val;
	const char *key;
	uint16_t port;
	cfg_iter it;

	reset_errs();
	CU_ASSERT_EQUAL(config__load(&cfg, "configs/ferry.yaml", &errs), 0);
	CU_ASSERT_EQUAL(errs.count, 0);
	if (errs.count)
		fprintf(stderr, "\n  unexpected errors:\n%s", errs.capture);
	done();

	reset_errs();
	CU_ASSERT_EQUAL_FATAL(config__load(&cfg, "configs/demo.yaml", &errs), 0);
	CU_ASSERT_STRING_EQUAL(cfg.pin_path, "/sys/fs/bpf/ferry");
	CU_ASSERT_EQUAL(cfg.nr_ifaces, 2);
	CU_ASSERT_STRING_EQUAL(cfg.ifaces[0].name, "px-c");
	CU_ASSERT_STRING_EQUAL(cfg.ifaces[1].name, "px-s");
	CU_ASSERT_EQUAL(cfg.ifaces[0].xdp_mode, CFG_XDP_NATIVE);
	CU_ASSERT_EQUAL(cfg.ifaces[1].xdp_mode, CFG_XDP_NATIVE);
	CU_ASSERT_EQUAL(cfg.nat.ports.lo, 40000);
	CU_ASSERT_EQUAL(cfg.nat.ports.hi, 40999);
	f = config__find_flow(&cfg, "demo-udp");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(f->match.l4_proto, IPPROTO_UDP);
	CU_ASSERT_EQUAL(f->match.dst.addr.v4.s_addr, inet_addr("198.18.1.1"));
	CU_ASSERT_EQUAL(f->match.dst.plen, 32);
	CU_ASSERT_EQUAL(f->match.dport.lo, 5000);
	CU_ASSERT_EQUAL(f->match.dport.hi, 5000);
	CU_ASSERT_EQUAL_FATAL(f->nr_services, 1);
	CU_ASSERT_STRING_EQUAL(f->services[0].name, "forward");
	cfg_iter_init(&it, f->services[0].args);
	CU_ASSERT_FATAL(cfg_iter_next(&it, &key, &val));
	CU_ASSERT_STRING_EQUAL(key, "upstream");
	CU_ASSERT_EQUAL(cfg_get_endpoint(val, &up, &port, &errs), 0);
	CU_ASSERT_EQUAL(up.addr.v4.s_addr, inet_addr("198.18.2.2"));
	CU_ASSERT_EQUAL(port, 6000);
	done();
}

/*
 * The helpers services use, on the arguments of one service.  Values start
 * at column 14 ("          k: " is 13 wide), from line 11.
 */
static const char helper_yaml[] = HEAD MATCH_OK "    services:\n"
						"      - probe:\n"
						"          a: hello\n"            /* 11 */
						"          b: 42\n"               /* 12 */
						"          c: 70000\n"            /* 13 */
						"          d: -3\n"               /* 14 */
						"          e: 12ab\n"             /* 15 */
						"          f: yes\n"              /* 16 */
						"          g: False\n"            /* 17 */
						"          h: maybe\n"            /* 18 */
						"          i: 198.18.2.2:6000\n"  /* 19 */
						"          j: \"[fd00::2]:53\"\n" /* 20 */
						"          k: fd00::2:53\n"       /* 21 */
						"          l: 198.18.2.2\n"       /* 22 */
						"          m: 198.18.2.2:0\n"     /* 23 */
						"          n: 198.18.2.2:99999\n" /* 24 */
						"          o: 1.2.3:80\n"         /* 25 */
						"          p: \"[10.0.0.1]:80\"\n" /* 26 */
						"          q: \"[fd00::2]80\"\n"  /* 27 */
						"          r: 10.0.0.0/8\n"       /* 28 */
						"          s: 2001:db8::/32\n"    /* 29 */
						"          t: 10.0.0.0/99\n"      /* 30 */
						"          u: 100-200\n"          /* 31 */
						"          v: 200-100\n"          /* 32 */
						"          w: [1, 2]\n"           /* 33 */
						"          x: \"198.18.2.2:\"\n"; /* 34 */

static const struct cfg_node *arg(const char *name)
{
	const struct cfg_node *args = cfg.flows[0].services[0].args;
	const struct cfg_node *val;
	const char *key;
	cfg_iter it;

	cfg_iter_init(&it, args);
	while (cfg_iter_next(&it, &key, &val))
		if (!strcmp(key, name))
			return val;
	CU_FAIL("no such argument");
	return NULL;
}

static const struct cfg_node *A(const char *name)
{
	return arg(name);
}

static void test_helpers_scalars(void)
{
	const struct cfg_node *n;
	char buf[8];
	uint32_t u;
	bool b;

	expect_ok(helper_yaml);
	CU_ASSERT_FATAL(cfg_node_is_map(cfg.flows[0].services[0].args));
	reset_errs();

	n = arg("a");
	CU_ASSERT_EQUAL(cfg_node_mark(n).line, 11);
	CU_ASSERT_EQUAL(cfg_node_mark(n).col, 14);
	CU_ASSERT_EQUAL(cfg_get_string(n, buf, sizeof(buf), &errs), 0);
	CU_ASSERT_STRING_EQUAL(buf, "hello");
	CU_ASSERT_EQUAL(cfg_get_string(n, buf, 5, &errs), -EINVAL);
	CU_ASSERT(has("t.yaml:11:14: 'hello' is too long (max 4 characters)\n"));

	n = arg("b");
	CU_ASSERT_EQUAL(cfg_get_u32(n, 1, 100, &u, &errs), 0);
	CU_ASSERT_EQUAL(u, 42);
	CU_ASSERT_EQUAL(cfg_get_u32(n, 43, 100, &u, &errs), -EINVAL);
	CU_ASSERT(has("t.yaml:12:14: value 42 is out of range 43..100\n"));
	n = arg("c");
	CU_ASSERT_EQUAL(cfg_get_u32(n, 0, 65535, &u, &errs), -EINVAL);
	CU_ASSERT(has("t.yaml:13:14: value 70000 is out of range 0..65535\n"));
	n = arg("d");
	CU_ASSERT_EQUAL(cfg_get_u32(n, 0, 10, &u, &errs), -EINVAL);
	CU_ASSERT(has("t.yaml:14:14: value -3 is out of range 0..10\n"));
	n = arg("e");
	CU_ASSERT_EQUAL(cfg_get_u32(n, 0, 10, &u, &errs), -EINVAL);
	CU_ASSERT(has("t.yaml:15:14: expected a number, got '12ab'\n"));

	n = arg("f");
	CU_ASSERT_EQUAL(cfg_get_bool(n, &b, &errs), 0);
	CU_ASSERT(b);
	n = arg("g");
	CU_ASSERT_EQUAL(cfg_get_bool(n, &b, &errs), 0);
	CU_ASSERT(!b);
	n = arg("h");
	CU_ASSERT_EQUAL(cfg_get_bool(n, &b, &errs), -EINVAL);
	CU_ASSERT(has("t.yaml:18:14: expected true or false, got 'maybe'\n"));

	n = arg("w");
	CU_ASSERT_EQUAL(cfg_get_u32(n, 0, 10, &u, &errs), -EINVAL);
	CU_ASSERT(has("t.yaml:33:14: expected a scalar\n"));
	CU_ASSERT_EQUAL(errs.count, 7);
	done();
}

static void test_helpers_addresses(void)
{
	struct cfg_prefix pfx;
	struct cfg_port_range r;
	struct in6_addr v6;
	const struct cfg_node *n;
	uint16_t port;

	expect_ok(helper_yaml);
	reset_errs();

	n = arg("i");
	CU_ASSERT_EQUAL(cfg_get_endpoint(n, &pfx, &port, &errs), 0);
	CU_ASSERT_EQUAL(pfx.family, AF_INET);
	CU_ASSERT_EQUAL(pfx.plen, 32);
	CU_ASSERT_EQUAL(pfx.addr.v4.s_addr, inet_addr("198.18.2.2"));
	CU_ASSERT_EQUAL(port, 6000);
	n = arg("j");
	CU_ASSERT_EQUAL(cfg_get_endpoint(n, &pfx, &port, &errs), 0);
	CU_ASSERT_EQUAL(pfx.family, AF_INET6);
	CU_ASSERT_EQUAL(pfx.plen, 128);
	inet_pton(AF_INET6, "fd00::2", &v6);
	CU_ASSERT(!memcmp(&pfx.addr.v6, &v6, sizeof(v6)));
	CU_ASSERT_EQUAL(port, 53);
	CU_ASSERT_EQUAL(errs.count, 0);

	CU_ASSERT_EQUAL(cfg_get_endpoint(A("k"), &pfx, &port, &errs), -EINVAL);
	CU_ASSERT(has("t.yaml:21:14: IPv6 endpoint 'fd00::2:53' needs brackets: [ADDR]:PORT\n"));
	CU_ASSERT_EQUAL(cfg_get_endpoint(A("l"), &pfx, &port, &errs), -EINVAL);
	CU_ASSERT(has("t.yaml:22:14: expected ADDR:PORT or [ADDR6]:PORT, got '198.18.2.2'\n"));
	CU_ASSERT_EQUAL(cfg_get_endpoint(A("m"), &pfx, &port, &errs), -EINVAL);
	CU_ASSERT(has("t.yaml:23:14: port in '198.18.2.2:0' is out of range 1..65535\n"));
	CU_ASSERT_EQUAL(cfg_get_endpoint(A("n"), &pfx, &port, &errs), -EINVAL);
	CU_ASSERT(has("t.yaml:24:14: port in '198.18.2.2:99999' is out of range 1..65535\n"));
	CU_ASSERT_EQUAL(cfg_get_endpoint(A("o"), &pfx, &port, &errs), -EINVAL);
	CU_ASSERT(has("t.yaml:25:14: bad address in '1.2.3:80'\n"));
	CU_ASSERT_EQUAL(cfg_get_endpoint(A("p"), &pfx, &port, &errs), -EINVAL);
	CU_ASSERT(has("t.yaml:26:14: bad address in '[10.0.0.1]:80'\n"));
	CU_ASSERT_EQUAL(cfg_get_endpoint(A("q"), &pfx, &port, &errs), -EINVAL);
	CU_ASSERT(has("t.yaml:27:14: expected ADDR:PORT or [ADDR6]:PORT, got '[fd00::2]80'\n"));
	CU_ASSERT_EQUAL(cfg_get_endpoint(A("x"), &pfx, &port, &errs), -EINVAL);
	CU_ASSERT(has("t.yaml:34:14: expected ADDR:PORT or [ADDR6]:PORT, got '198.18.2.2:'\n"));

	/* cfg_get_prefix keeps host bits: a service may want the address itself. */
	CU_ASSERT_EQUAL(cfg_get_prefix(A("r"), &pfx, &errs), 0);
	CU_ASSERT_EQUAL(pfx.family, AF_INET);
	CU_ASSERT_EQUAL(pfx.plen, 8);
	CU_ASSERT_EQUAL(cfg_get_prefix(A("i"), &pfx, &errs), -EINVAL);
	CU_ASSERT(has("t.yaml:19:14: bad address '198.18.2.2:6000'\n"));
	CU_ASSERT_EQUAL(cfg_get_prefix(A("s"), &pfx, &errs), 0);
	CU_ASSERT_EQUAL(pfx.family, AF_INET6);
	CU_ASSERT_EQUAL(pfx.plen, 32);
	CU_ASSERT_EQUAL(cfg_get_prefix(A("t"), &pfx, &errs), -EINVAL);
	CU_ASSERT(has("t.yaml:30:14: prefix length in '10.0.0.0/99' is out of range 0..32\n"));

	CU_ASSERT_EQUAL(cfg_get_port_range(A("u"), &r, &errs), 0);
	CU_ASSERT_EQUAL(r.lo, 100);
	CU_ASSERT_EQUAL(r.hi, 200);
	CU_ASSERT_EQUAL(cfg_get_port_range(A("b"), &r, &errs), 0);
	CU_ASSERT_EQUAL(r.lo, 42);
	CU_ASSERT_EQUAL(r.hi, 42);
	CU_ASSERT_EQUAL(cfg_get_port_range(A("v"), &r, &errs), -EINVAL);
	CU_ASSERT(has("t.yaml:32:14: port range '200-100' is reversed (200 > 100)\n"));
	CU_ASSERT_EQUAL(errs.count, 11);
	done();
}

static void test_node_errors(void)
{
	const struct cfg_service *svc;
	const struct cfg_node *val;
	const char *key;
	cfg_iter it;
	bool b;

	expect_ok(HEAD MATCH_OK "    services:\n      - count\n      - forward: {up: 1}\n");
	reset_errs();
	errs.file = cfg.file;
	svc = &cfg.flows[0].services[0];

	/* A service written without arguments has no node: no pairs, no mark. */
	CU_ASSERT(!cfg_node_is_map(svc->args));
	cfg_iter_init(&it, svc->args);
	CU_ASSERT(!cfg_iter_next(&it, &key, &val));
	CU_ASSERT_EQUAL(cfg_node_mark(svc->args).line, 0);
	cfg_node_error(&errs, svc->args, "count: takes no arguments");
	CU_ASSERT(has("t.yaml: count: takes no arguments\n"));
	CU_ASSERT_EQUAL(cfg_get_bool(NULL, &b, &errs), -EINVAL);

	svc = &cfg.flows[0].services[1];
	cfg_node_error(&errs, svc->args, "forward: missing key '%s'", "upstream");
	CU_ASSERT(has("t.yaml:11:18: forward: missing key 'upstream'\n"));
	cfg_node_error(&errs, svc->args, "plain %d", 7);
	CU_ASSERT(has("t.yaml:11:18: plain 7\n"));
	CU_ASSERT_EQUAL(errs.count, 4);
	done();

	/* Errors are counted even without a capture buffer. */
	memset(&errs, 0, sizeof(errs));
	CU_ASSERT_EQUAL(config__load_string(&cfg, "t.yaml", "queues: x\n" MINIMAL, &errs), -EINVAL);
	CU_ASSERT_EQUAL(errs.count, 1);
	CU_ASSERT_PTR_NULL(errs.capture);
	config__free(&cfg);
	config__free(&cfg);
}

static int cleanup(void)
{
	config__free(&cfg);
	free(errs.capture);
	errs.capture = NULL;
	return 0;
}

/* ---- nat.ports against the host's own ports ---- */

static char host_dir[64];

static void put_file(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", host_dir, name);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
}

static void remove_file(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", host_dir, name);
	CU_ASSERT_EQUAL(unlink(path), 0);
}

/* /proc/net/{udp,tcp}[6] as the kernel writes them: a header, then one socket a line. */
#define PROC_HEAD "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
#define PROC_V4(port, state)                                                                       \
	"   0: 0100007F:" port " 00000000:0000 " state " 00000000:00000000 00:00000000 00000000  0\n"
#define PROC_V6(port, state)                                                                       \
	"   0: 00000000000000000000000001000000:" port " 00000000000000000000000000000000:0000 " state \
	" 00000000:00000000 00:00000000 00000000     0\n"

static int check_host(void)
{
	char range[128];

	reset_errs();
	errs.file = "t.yaml"; /* as ferryd's main() has it */
	snprintf(range, sizeof(range), "%s/ip_local_port_range", host_dir);
	return config__check_host_ports(&cfg, range, host_dir, &errs);
}

static void test_host_ports(void)
{
	/* nat.ports' value is at line 13, column 10. */
	static const char yaml[] = MINIMAL "nat:\n"
					   "  ports: 61000-61999\n";
	static const char yaml_tcp[] = HEAD "      protocol: tcp\n"
					    "      destination: 198.18.1.1\n"
					    "      port: 5000\n" SVC;
	char cmd[128];

	snprintf(host_dir, sizeof(host_dir), "/tmp/ferry-cfg-test.XXXXXX");
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(host_dir));
	put_file("ip_local_port_range", "32768\t60999\n");
	/* 61500 (0xF03C): a TCP connection (01); 62000 (0xF230): a TCP listener (0A). */
	put_file("udp", PROC_HEAD PROC_V4("0035", "07"));
	put_file("tcp", PROC_HEAD PROC_V4("F03C", "01") PROC_V4("F230", "0A"));
	/* No tcp6 or udp6: a host without IPv6. */

	expect_ok(yaml);
	CU_ASSERT_EQUAL(check_host(), 0);
	CU_ASSERT_EQUAL(errs.count, 0);

	/* The kernel's own range: overlapping it is refused, where nat.ports was set. */
	put_file("ip_local_port_range", "32768 61000\n");
	CU_ASSERT_EQUAL(check_host(), -EADDRINUSE);
	CU_ASSERT_EQUAL(errs.count, 1);
	CU_ASSERT(has("t.yaml:13:10: nat.ports: range 61000-61999 overlaps this host's local port "
		      "range 32768-61000 (net.ipv4.ip_local_port_range)"));
	put_file("ip_local_port_range", "61999 62100\n");
	CU_ASSERT_EQUAL(check_host(), -EADDRINUSE);
	put_file("ip_local_port_range", "32768 60999\n");

	/* A UDP socket bound in the range (the IPv6 table), for a UDP flow. */
	put_file("udp6", PROC_HEAD PROC_V6("F03C", "07"));
	CU_ASSERT_EQUAL(check_host(), -EADDRINUSE);
	CU_ASSERT_EQUAL(errs.count, 1);
	CU_ASSERT(has("t.yaml:13:10: nat.ports: range 61000-61999 contains UDP port 61500, which a "
		      "socket of this host is bound to"));
	remove_file("udp6");

	/* The default range and a TCP flow: the listener counts, the connection does not. */
	expect_ok(yaml_tcp);
	CU_ASSERT_EQUAL(check_host(), -EADDRINUSE);
	CU_ASSERT_EQUAL(errs.count, 1);
	CU_ASSERT(has("t.yaml: nat.ports: range 61000-65535 contains TCP port 62000, which a socket "
		      "of this host listens on"));
	put_file("tcp", PROC_HEAD PROC_V4("F03C", "01") PROC_V4("F230", "06"));
	CU_ASSERT_EQUAL(check_host(), 0);

	/* An unreadable sysctl is an error, not a guess. */
	put_file("ip_local_port_range", "garbage\n");
	CU_ASSERT_EQUAL(check_host(), -EINVAL);
	CU_ASSERT(has("nat.ports: cannot read"));
	remove_file("ip_local_port_range");
	CU_ASSERT_EQUAL(check_host(), -ENOENT);
	done();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", host_dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
}

/* nat.max_sessions_per_source: default on, 0 = no limit, the usual number errors. */
static void test_nat_max_sessions_per_source(void)
{
	expect_ok(MINIMAL);
	CU_ASSERT_EQUAL(cfg.nat.max_sessions_per_source, 4096);
	done();
	expect_ok("nat:\n  max_sessions_per_source: 0\n" MINIMAL);
	CU_ASSERT_EQUAL(cfg.nat.max_sessions_per_source, 0);
	CU_ASSERT_EQUAL(cfg.nat.max_sessions, 65536);
	done();
	expect_ok("nat: {max_sessions: 1000, max_sessions_per_source: 16777216}\n" MINIMAL);
	CU_ASSERT_EQUAL(cfg.nat.max_sessions_per_source, 16777216);
	CU_ASSERT_EQUAL(cfg.nat.max_sessions, 1000);
	done();
	expect_ok("nat: {max_sessions_per_source: \"64\"}\n" MINIMAL);
	CU_ASSERT_EQUAL(cfg.nat.max_sessions_per_source, 64);
	done();
	expect_one("nat:\n  max_sessions_per_source: 16777217\n" MINIMAL,
		   "t.yaml:2:28: max_sessions_per_source: value 16777217 is out of range "
		   "0..16777216");
	expect_one("nat:\n  max_sessions_per_source: -1\n" MINIMAL,
		   "t.yaml:2:28: max_sessions_per_source: value -1 is out of range 0..16777216");
	expect_one("nat:\n  max_sessions_per_source: many\n" MINIMAL,
		   "t.yaml:2:28: max_sessions_per_source: expected a number, got 'many'");
	expect_one("nat: {max_sessions_per_source: [1]}\n" MINIMAL,
		   "t.yaml:1:32: max_sessions_per_source: expected a scalar");
	expect_one("nat:\n  max_sessions_per_source: 1\n  max_sessions_per_source: 2\n" MINIMAL,
		   "t.yaml:3:3: nat: duplicate key 'max_sessions_per_source'");
}


/* ---- argument tables (cfg_args_parse) ---- */

struct probe_args {
	uint32_t n;
	bool b;
	char s[8];
	int w;
	struct cfg_endpoint ep;
	struct cfg_prefix pfx;
	struct cfg_port_range ports;
	uint32_t items[4];
	int nr_items;
	uint32_t nested;
	bool have_n, have_nested;
};

static const struct cfg_word probe_words[] = {
	{ "low", 1 },
	{ "high", 2 },
	{ NULL, 0 },
};

static int probe_item(const struct cfg_node *item, int i, void *obj, struct cfg_errors *e)
{
	struct probe_args *a = obj;

	a->nr_items = i + 1;
	return cfg_get_u32(item, 0, 9, &a->items[i], e);
}

static const struct cfg_arg probe_nested_list[] = {
	{ .name = "x",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct probe_args, nested),
	  .required = true,
	  .max = 100 },
};

static const struct cfg_args probe_nested = {
	.prefix = "probe",
	.in = "a part",
	.args = probe_nested_list,
	.nr = 1,
};

static int probe_node(const struct cfg_node *val, void *obj, struct cfg_errors *e)
{
	return cfg_args_parse(&probe_nested, val, obj, e);
}

static const struct cfg_arg probe_list[] = {
	{ .name = "n",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct probe_args, n),
	  .seen = CFG_SEEN(struct probe_args, have_n),
	  .min = 1,
	  .max = 10,
	  .def = 7 },
	{ .name = "b", .type = CFG_ARG_BOOL, .offset = offsetof(struct probe_args, b), .def = true },
	{ .name = "s", .type = CFG_ARG_STRING, .offset = offsetof(struct probe_args, s), .size = 8 },
	{ .name = "w",
	  .type = CFG_ARG_WORD,
	  .offset = offsetof(struct probe_args, w),
	  .words = probe_words,
	  .def = 2 },
	{ .name = "ep",
	  .type = CFG_ARG_ENDPOINT,
	  .offset = offsetof(struct probe_args, ep),
	  .required = true },
	{ .name = "pfx", .type = CFG_ARG_PREFIX, .offset = offsetof(struct probe_args, pfx) },
	{ .name = "ports", .type = CFG_ARG_PORTS, .offset = offsetof(struct probe_args, ports) },
	{ .name = "items", .type = CFG_ARG_LIST, .max = 4, .item = probe_item },
	{ .name = "part",
	  .type = CFG_ARG_NODE,
	  .seen = CFG_SEEN(struct probe_args, have_nested),
	  .parse = probe_node },
};

static const struct cfg_args probe_tbl = {
	.prefix = "probe",
	.expect = " with 'ep'",
	.args = probe_list,
	.nr = sizeof(probe_list) / sizeof(probe_list[0]),
};

/* Loads `- probe: ARGS` (line 10, the arguments at column 16) and parses it. */
static int probe(const char *args, struct probe_args *a)
{
	char yaml[1024];

	snprintf(yaml, sizeof(yaml), HEAD MATCH_OK "    services:\n      - probe: %s\n", args);
	memset(a, 0, sizeof(*a));
	CU_ASSERT_EQUAL_FATAL(load(yaml), 0);
	errs.file = cfg.file;
	return cfg_args_parse(&probe_tbl, cfg.flows[0].services[0].args, a, &errs);
}

static void test_args_table(void)
{
	struct probe_args a;

	/* Every type, and the defaults of those not given. */
	CU_ASSERT_EQUAL(probe("{ep: 198.18.2.2:53, s: abc, pfx: 198.18.0.0/15, ports: 10-20, "
			      "items: [1, 2], part: {x: 5}}",
			      &a),
			0);
	CU_ASSERT_EQUAL(errs.count, 0);
	CU_ASSERT_EQUAL(a.n, 7);
	CU_ASSERT(!a.have_n);
	CU_ASSERT(a.b);
	CU_ASSERT_STRING_EQUAL(a.s, "abc");
	CU_ASSERT_EQUAL(a.w, 2);
	CU_ASSERT_EQUAL(a.ep.addr.family, AF_INET);
	CU_ASSERT_EQUAL(a.ep.addr.addr.v4.s_addr, inet_addr("198.18.2.2"));
	CU_ASSERT_EQUAL(a.ep.port, 53);
	CU_ASSERT_EQUAL(a.pfx.plen, 15);
	CU_ASSERT_EQUAL(a.ports.lo, 10);
	CU_ASSERT_EQUAL(a.ports.hi, 20);
	CU_ASSERT_EQUAL(a.nr_items, 2);
	CU_ASSERT_EQUAL(a.items[1], 2);
	CU_ASSERT_EQUAL(a.nested, 5);
	CU_ASSERT(a.have_nested);
	done();

	CU_ASSERT_EQUAL(probe("{ep: \"[fd00::2]:53\", n: \"3\", b: off, w: low}", &a), 0);
	CU_ASSERT_EQUAL(a.n, 3);
	CU_ASSERT(a.have_n);
	CU_ASSERT(!a.b);
	CU_ASSERT_EQUAL(a.w, 1);
	CU_ASSERT_EQUAL(a.ep.addr.family, AF_INET6);
	done();

	/* Every error is reported, in file order, each at its node. */
	CU_ASSERT_EQUAL(probe("{n: 11, w: medium, colour: red, items: [], part: {y: 1}}", &a),
			-EINVAL);
	CU_ASSERT(has("t.yaml:10:20: value 11 is out of range 1..10\n"));
	CU_ASSERT(has("t.yaml:10:27: probe: w: 'medium' is not one of low, high\n"));
	CU_ASSERT(has("t.yaml:10:43: probe: unknown key 'colour'\n"));
	CU_ASSERT(has("t.yaml:10:55: probe: items: at least one entry is required\n"));
	CU_ASSERT(has("t.yaml:10:69: probe: unknown key 'y' in a part\n"));
	CU_ASSERT(has("t.yaml:10:65: probe: missing key 'x' in a part\n"));
	CU_ASSERT(has("t.yaml:10:16: probe: missing key 'ep'\n"));
	CU_ASSERT_EQUAL(errs.count, 7);
	done();

	CU_ASSERT_EQUAL(probe("{ep: 198.18.2.2:53, items: [1, 2, 3, 4, 5]}", &a), -EINVAL);
	CU_ASSERT(has("t.yaml:10:56: probe: items: too many entries (max 4)\n"));
	done();

	/* No arguments at all: the error points at the service's name. */
	CU_ASSERT_EQUAL(probe("", &a), -EINVAL);
	CU_ASSERT(has("t.yaml:10:9: probe: expected a mapping with 'ep'\n"));
	CU_ASSERT_EQUAL(errs.count, 1);
	done();
}

static CU_TestInfo config_tests[] = {
	{ "full config, every field", test_full },
	{ "defaults", test_defaults },
	{ "wrong node types", test_wrong_types },
	{ "missing keys", test_missing_keys },
	{ "duplicate keys", test_duplicate_keys },
	{ "endless service arguments", test_endless_args },
	{ "duplicate names", test_duplicate_names },
	{ "queues: auto, a count, unserved_queues", test_queues_keys },
	{ "numbers", test_numbers },
	{ "umem values", test_umem },
	{ "nat ports", test_nat_ports },
	{ "prefixes", test_prefixes },
	{ "address families", test_families },
	{ "match ports and protocol", test_match_ports },
	{ "unknown keys at every level", test_unknown_keys },
	{ "on_failure: pass or drop", test_on_failure },
	{ "many errors in one file", test_many_errors },
	{ "YAML syntax errors", test_syntax_error },
	{ "empty and extra documents", test_documents },
	{ "names", test_names },
	{ "pin_path, service_dir and log_level", test_top_scalars },
	{ "control_socket", test_control_socket },
	{ "control_group", test_control_group },
	{ "app slot names are unique", test_app_names },
	{ "service entry forms", test_services_forms },
	{ "entry count limits", test_limits },
	{ "xdp modes", test_xdp_modes },
	{ "poll modes and cpus", test_poll_modes_and_cpus },
	{ "config__load on a file", test_load_file },
	{ "config__load on a missing file", test_missing_file },
	{ "shipped example configs", test_shipped_configs },
	{ "helpers: strings, numbers, booleans", test_helpers_scalars },
	{ "helpers: endpoints, prefixes, port ranges", test_helpers_addresses },
	{ "node errors", test_node_errors },
	{ "argument tables", test_args_table },
	{ "nat.ports against the host's own ports", test_host_ports },
	{ "nat max_sessions_per_source", test_nat_max_sessions_per_source },
	{ "offload and nat offload_max_sessions", test_offload_keys },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(config, "config", config_tests, NULL, cleanup)
