// SPDX-License-Identifier: BSD-2-Clause
/*
 * The resolver against a real kernel: two private namespaces joined by a
 * veth pair, so ARP and ND have someone to answer them.  The test process
 * itself moves into namespace "a" for the lookups and back afterwards; the
 * host's own routes and neighbours are never read or touched.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "nexthop.h"
#include "unit.h"

static const uint8_t mac_a[6] = { 0x02, 0x66, 0x65, 0x00, 0x00, 0x01 };
static const uint8_t mac_b[6] = { 0x02, 0x66, 0x65, 0x00, 0x00, 0x02 };
static const uint8_t mac_perm[6] = { 0x02, 0x66, 0x65, 0x00, 0x00, 0x50 };
static const uint8_t mac_stale[6] = { 0x02, 0x66, 0x65, 0x00, 0x00, 0x51 };
#define VETH_MTU 1400

static char ns_a[64], ns_b[64];
static bool created_a, created_b;
static int orig_netns = -1;
static struct nh_resolver *res;
static int veth_a;
static bool ready;

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "test_nexthop: '%s' failed (status %d)\n", cmd, rc);
	return rc == 0 ? 0 : -1;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static union ferry_addr addr(int family, const char *s)
{
	union ferry_addr a;

	memset(&a, 0, sizeof(a));
	if (inet_pton(family, s, a.b) != 1)
		fprintf(stderr, "test_nexthop: bad address %s\n", s);
	return a;
}

static bool addr_eq(int family, const union ferry_addr *a, const char *s)
{
	union ferry_addr b = addr(family, s);

	return !memcmp(a->b, b.b, sizeof(b.b));
}

static int build_namespaces(void)
{
	pid_t pid = getpid();

	/* make check's tag (tests/run-all.sh), so its leftover check sees these too. */
	const char *tag = getenv("FERRY_RUN_TAG") ? getenv("FERRY_RUN_TAG") : "ut";

	snprintf(ns_a, sizeof(ns_a), "ferry-%.16s-%d-a", tag, (int)pid);
	snprintf(ns_b, sizeof(ns_b), "ferry-%.16s-%d-b", tag, (int)pid);
	if (run("ip netns add %s", ns_a))
		return -1;
	created_a = true;
	if (run("ip netns add %s", ns_b))
		return -1;
	created_b = true;
	/*
	 * Without skipping DAD the link-local address stays tentative for a
	 * second or so, and the kernel sends no neighbour solicitation for an
	 * NTF_USE request until it has a usable link-local source.
	 */
	if (run("ip netns exec %s sysctl -qw net.ipv6.conf.default.accept_dad=0", ns_a) ||
	    run("ip netns exec %s sysctl -qw net.ipv6.conf.default.accept_dad=0", ns_b))
		return -1;
	/* Both ends are born inside the namespaces: nothing appears on the host. */
	if (run("ip -n %s link add veth0 address 02:66:65:00:00:01 type veth "
		"peer name veth1 address 02:66:65:00:00:02 netns %s",
		ns_a, ns_b) ||
	    run("ip -n %s link set lo up && ip -n %s link set lo up", ns_a, ns_b) ||
	    run("ip -n %s link set veth0 mtu %d up && ip -n %s link set veth1 up", ns_a, VETH_MTU,
		ns_b) ||
	    run("ip -n %s addr add 198.18.100.1/24 dev veth0 && "
		"ip -n %s addr add fd00:100::1/64 dev veth0 nodad",
		ns_a, ns_a) ||
	    run("ip -n %s addr add 198.18.100.2/24 dev veth1 && "
		"ip -n %s addr add fd00:100::2/64 dev veth1 nodad",
		ns_b, ns_b) ||
	    run("ip -n %s route add 198.18.200.0/24 via 198.18.100.2 && "
		"ip -n %s -6 route add fd00:200::/64 via fd00:100::2",
		ns_a, ns_a) ||
	    run("ip -n %s route add 198.18.210.0/24 via inet6 fd00:100::2 dev veth0", ns_a) ||
	    run("ip -n %s route add blackhole 198.18.201.0/24 && "
		"ip -n %s route add unreachable 198.18.202.0/24 && "
		"ip -n %s route add prohibit 198.18.203.0/24",
		ns_a, ns_a, ns_a) ||
	    run("ip -n %s -6 route add blackhole fd00:201::/64 && "
		"ip -n %s -6 route add unreachable fd00:202::/64 && "
		"ip -n %s -6 route add prohibit fd00:203::/64",
		ns_a, ns_a, ns_a) ||
	    /* Give up on an absent neighbour after ~0.3 s instead of 3 s. */
	    run("ip netns exec %s sysctl -qw net.ipv4.neigh.veth0.retrans_time_ms=100 "
		"net.ipv6.neigh.veth0.retrans_time_ms=100",
		ns_a))
		return -1;
	return 0;
}

static int enter_ns_a(void)
{
	char path[128];
	int fd, err;

	orig_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (orig_netns < 0)
		return -errno;
	snprintf(path, sizeof(path), "/run/netns/%s", ns_a);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = setns(fd, CLONE_NEWNET) ? -errno : 0;
	close(fd);
	return err;
}

static int nexthop_cleanup(void)
{
	int err = 0;

	nh_resolver__destroy(res);
	res = NULL;
	ready = false;
	if (orig_netns >= 0) {
		if (setns(orig_netns, CLONE_NEWNET)) {
			perror("test_nexthop: cannot return to the original namespace");
			err = -1;
		}
		close(orig_netns);
		orig_netns = -1;
	}
	if (created_a && run("ip netns del %s", ns_a))
		err = -1;
	if (created_b && run("ip netns del %s", ns_b))
		err = -1;
	created_a = created_b = false;
	return err;
}

static void test_setup(void)
{
	if (unit_require_root())
		return;
	CU_ASSERT_FATAL(build_namespaces() == 0);
	CU_ASSERT_FATAL(enter_ns_a() == 0);
	CU_ASSERT_FATAL(nh_resolver__create(&res) == 0);
	veth_a = (int)if_nametoindex("veth0");
	CU_ASSERT_FATAL(veth_a > 0);
	ready = true;
}

static void test_route_onlink(void)
{
	union ferry_addr dst = addr(AF_INET, "198.18.100.2");
	struct nh_route rt;

	CU_ASSERT_FATAL(ready);
	CU_ASSERT_EQUAL_FATAL(nh_resolver__route(res, AF_INET, &dst, &rt), 0);
	CU_ASSERT_EQUAL(rt.ifindex, veth_a);
	CU_ASSERT_EQUAL(rt.family, AF_INET);
	CU_ASSERT(addr_eq(AF_INET, &rt.gateway, "198.18.100.2"));
	CU_ASSERT(addr_eq(AF_INET, &rt.prefsrc, "198.18.100.1"));
	CU_ASSERT_EQUAL(rt.mtu, VETH_MTU);
	CU_ASSERT(!memcmp(rt.src_mac, mac_a, 6));
}

static void test_route_gateway(void)
{
	union ferry_addr dst = addr(AF_INET, "198.18.200.7");
	struct nh_route rt;

	CU_ASSERT_FATAL(ready);
	CU_ASSERT_EQUAL_FATAL(nh_resolver__route(res, AF_INET, &dst, &rt), 0);
	CU_ASSERT_EQUAL(rt.ifindex, veth_a);
	CU_ASSERT_EQUAL(rt.family, AF_INET);
	CU_ASSERT(addr_eq(AF_INET, &rt.gateway, "198.18.100.2"));
	CU_ASSERT(addr_eq(AF_INET, &rt.prefsrc, "198.18.100.1"));
	CU_ASSERT_EQUAL(rt.mtu, VETH_MTU);
	CU_ASSERT(!memcmp(rt.src_mac, mac_a, 6));
}

/* RFC 5549: the neighbour to resolve is IPv6 although the packet is IPv4. */
static void test_route_v4_via_v6(void)
{
	union ferry_addr dst = addr(AF_INET, "198.18.210.7");
	struct nh_route rt;

	CU_ASSERT_FATAL(ready);
	CU_ASSERT_EQUAL_FATAL(nh_resolver__route(res, AF_INET, &dst, &rt), 0);
	CU_ASSERT_EQUAL(rt.ifindex, veth_a);
	CU_ASSERT_EQUAL(rt.family, AF_INET6);
	CU_ASSERT(addr_eq(AF_INET6, &rt.gateway, "fd00:100::2"));
	CU_ASSERT(addr_eq(AF_INET, &rt.prefsrc, "198.18.100.1"));
}

static void expect_no_route(int family, const char *s)
{
	union ferry_addr dst = addr(family, s);
	struct nh_route rt;
	int err = nh_resolver__route(res, family, &dst, &rt);

	if (err != -ENETUNREACH)
		fprintf(stderr, "test_nexthop: route to %s: got %d, want -ENETUNREACH\n", s, err);
	CU_ASSERT_EQUAL(err, -ENETUNREACH);
}

static void test_route_none(void)
{
	CU_ASSERT_FATAL(ready);
	expect_no_route(AF_INET, "198.19.99.99"); /* no default route */
	expect_no_route(AF_INET, "198.18.201.1"); /* blackhole */
	expect_no_route(AF_INET, "198.18.202.1"); /* unreachable */
	expect_no_route(AF_INET, "198.18.203.1"); /* prohibit */
	expect_no_route(AF_INET, "198.18.100.1"); /* local: no neighbour to send to */
}

static void test_route6_onlink(void)
{
	union ferry_addr dst = addr(AF_INET6, "fd00:100::2");
	struct nh_route rt;

	CU_ASSERT_FATAL(ready);
	CU_ASSERT_EQUAL_FATAL(nh_resolver__route(res, AF_INET6, &dst, &rt), 0);
	CU_ASSERT_EQUAL(rt.ifindex, veth_a);
	CU_ASSERT_EQUAL(rt.family, AF_INET6);
	CU_ASSERT(addr_eq(AF_INET6, &rt.gateway, "fd00:100::2"));
	CU_ASSERT(addr_eq(AF_INET6, &rt.prefsrc, "fd00:100::1"));
	CU_ASSERT_EQUAL(rt.mtu, VETH_MTU);
	CU_ASSERT(!memcmp(rt.src_mac, mac_a, 6));
}

static void test_route6_gateway(void)
{
	union ferry_addr dst = addr(AF_INET6, "fd00:200::7");
	struct nh_route rt;

	CU_ASSERT_FATAL(ready);
	CU_ASSERT_EQUAL_FATAL(nh_resolver__route(res, AF_INET6, &dst, &rt), 0);
	CU_ASSERT_EQUAL(rt.ifindex, veth_a);
	CU_ASSERT_EQUAL(rt.family, AF_INET6);
	CU_ASSERT(addr_eq(AF_INET6, &rt.gateway, "fd00:100::2"));
	CU_ASSERT(addr_eq(AF_INET6, &rt.prefsrc, "fd00:100::1"));
	CU_ASSERT_EQUAL(rt.mtu, VETH_MTU);
}

static void test_route6_none(void)
{
	CU_ASSERT_FATAL(ready);
	expect_no_route(AF_INET6, "fd00:99::99");
	expect_no_route(AF_INET6, "fd00:201::1");
	expect_no_route(AF_INET6, "fd00:202::1");
	expect_no_route(AF_INET6, "fd00:203::1");
}

static void test_bad_family(void)
{
	union ferry_addr a = addr(AF_INET, "198.18.100.2");
	struct nh_route rt;
	uint8_t mac[6];

	CU_ASSERT_FATAL(ready);
	CU_ASSERT_EQUAL(nh_resolver__route(res, AF_UNIX, &a, &rt), -EAFNOSUPPORT);
	CU_ASSERT_EQUAL(nh_resolver__neigh(res, AF_UNIX, &a, veth_a, mac), -EAFNOSUPPORT);
}

static bool neigh_state_is(const char *ip, const char *state)
{
	char cmd[256], line[256] = "";
	FILE *f;

	snprintf(cmd, sizeof(cmd), "ip -n %s neigh show %s dev veth0", ns_a, ip);
	f = popen(cmd, "r");
	if (!f)
		return false;
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	pclose(f);
	return strstr(line, state) != NULL;
}

/* Polls every 10 ms until the neighbour resolves; each call must be quick. */
static void expect_resolves(int family, const char *s, const uint8_t want[6])
{
	union ferry_addr a = addr(family, s);
	uint8_t mac[6] = {};
	int64_t start = now_ms(), t;
	int err, calls = 0;

	CU_ASSERT_EQUAL_FATAL(run("ip -n %s neigh flush dev veth0", ns_a), 0);
	err = nh_resolver__neigh(res, family, &a, veth_a, mac);
	CU_ASSERT_EQUAL(err, -EAGAIN);
	do {
		usleep(10000);
		t = now_ms();
		err = nh_resolver__neigh(res, family, &a, veth_a, mac);
		CU_ASSERT(now_ms() - t < 200);
		calls++;
	} while (err == -EAGAIN && now_ms() - start < 1000);
	if (err)
		fprintf(stderr, "test_nexthop: %s did not resolve: %d after %d calls\n", s, err,
			calls);
	CU_ASSERT_EQUAL_FATAL(err, 0);
	CU_ASSERT(!memcmp(mac, want, 6));
	CU_ASSERT(neigh_state_is(s, "REACHABLE"));
	/* Known now: answered from the cache at once. */
	memset(mac, 0, sizeof(mac));
	CU_ASSERT_EQUAL(nh_resolver__neigh(res, family, &a, veth_a, mac), 0);
	CU_ASSERT(!memcmp(mac, want, 6));
}

static void test_neigh_resolve(void)
{
	CU_ASSERT_FATAL(ready);
	expect_resolves(AF_INET, "198.18.100.2", mac_b);
}

static void test_neigh6_resolve(void)
{
	CU_ASSERT_FATAL(ready);
	expect_resolves(AF_INET6, "fd00:100::2", mac_b);
}

/*
 * Nobody owns the address: -EAGAIN while the kernel probes, then
 * -EHOSTUNREACH once it gives up, and asking again starts a new attempt.
 */
static void expect_fails(int family, const char *s)
{
	union ferry_addr a = addr(family, s);
	int64_t start = now_ms(), t;
	uint8_t mac[6];
	int err;

	t = now_ms();
	err = nh_resolver__neigh(res, family, &a, veth_a, mac);
	CU_ASSERT(now_ms() - t < 200);
	CU_ASSERT_EQUAL(err, -EAGAIN);
	do {
		usleep(20000);
		t = now_ms();
		err = nh_resolver__neigh(res, family, &a, veth_a, mac);
		CU_ASSERT(now_ms() - t < 200);
	} while (err == -EAGAIN && now_ms() - start < 3000);
	if (err != -EHOSTUNREACH)
		fprintf(stderr, "test_nexthop: %s: got %d, want -EHOSTUNREACH\n", s, err);
	CU_ASSERT_EQUAL(err, -EHOSTUNREACH);
	/* That call asked for a new attempt, so the entry is probing again. */
	CU_ASSERT_EQUAL(nh_resolver__neigh(res, family, &a, veth_a, mac), -EAGAIN);
}

static void test_neigh_failed(void)
{
	CU_ASSERT_FATAL(ready);
	expect_fails(AF_INET, "198.18.100.77");
}

static void test_neigh6_failed(void)
{
	CU_ASSERT_FATAL(ready);
	expect_fails(AF_INET6, "fd00:100::77");
}

static void test_neigh_static(void)
{
	union ferry_addr perm = addr(AF_INET, "198.18.100.50");
	union ferry_addr stale = addr(AF_INET, "198.18.100.51");
	uint8_t mac[6];

	CU_ASSERT_FATAL(ready);
	CU_ASSERT_EQUAL_FATAL(run("ip -n %s neigh replace 198.18.100.50 lladdr 02:66:65:00:00:50 "
				  "nud permanent dev veth0 && "
				  "ip -n %s neigh replace 198.18.100.51 lladdr 02:66:65:00:00:51 "
				  "nud stale dev veth0",
				  ns_a, ns_a),
			      0);
	CU_ASSERT_EQUAL(nh_resolver__neigh(res, AF_INET, &perm, veth_a, mac), 0);
	CU_ASSERT(!memcmp(mac, mac_perm, 6));
	CU_ASSERT(neigh_state_is("198.18.100.50", "PERMANENT"));
	/* STALE is usable, and the lookup has the kernel re-confirm it. */
	CU_ASSERT(neigh_state_is("198.18.100.51", "STALE"));
	CU_ASSERT_EQUAL(nh_resolver__neigh(res, AF_INET, &stale, veth_a, mac), 0);
	CU_ASSERT(!memcmp(mac, mac_stale, 6));
	CU_ASSERT(neigh_state_is("198.18.100.51", "DELAY"));
}

static void test_neigh_bad_ifindex(void)
{
	union ferry_addr a = addr(AF_INET, "198.18.100.2");
	int64_t t = now_ms();
	uint8_t mac[6];

	CU_ASSERT_FATAL(ready);
	CU_ASSERT(nh_resolver__neigh(res, AF_INET, &a, 99999, mac) < 0);
	CU_ASSERT(now_ms() - t < 1500);
}

static CU_TestInfo nexthop_tests[] = {
	{ "setup: two namespaces and a veth pair", test_setup },
	{ "route: IPv4 on-link", test_route_onlink },
	{ "route: IPv4 via gateway", test_route_gateway },
	{ "route: IPv4 via an IPv6 gateway", test_route_v4_via_v6 },
	{ "route: IPv4 none, blackhole, unreachable, prohibit, local", test_route_none },
	{ "route: IPv6 on-link", test_route6_onlink },
	{ "route: IPv6 via gateway", test_route6_gateway },
	{ "route: IPv6 none, blackhole, unreachable, prohibit", test_route6_none },
	{ "route/neigh: unknown family", test_bad_family },
	{ "neigh: IPv4 unknown, then resolved", test_neigh_resolve },
	{ "neigh: IPv6 unknown, then resolved", test_neigh6_resolve },
	{ "neigh: IPv4 nobody there", test_neigh_failed },
	{ "neigh: IPv6 nobody there", test_neigh6_failed },
	{ "neigh: permanent and stale entries", test_neigh_static },
	{ "neigh: unknown interface", test_neigh_bad_ifindex },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(nexthop, "nexthop", nexthop_tests, NULL, nexthop_cleanup)
