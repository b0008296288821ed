// SPDX-License-Identifier: BSD-2-Clause
/*
 * A reply's session is looked up once on its way through ferryd: the
 * receiving side (daemon/rx.c) finds it to pick the reply's flow, and
 * forward (services/fwd_core.c) uses what it found, checked against the
 * table, instead of hashing and probing again.  The unit-test binary is
 * linked with --wrap=nat_table__lookup_reply (Makefile), so every call
 * from outside lib/nat.c goes through the counter below.  Also the hint
 * check itself: a stale hint (removed, slot reused, foreign) is never
 * taken for the session.
 */
#include <string.h>
#include <netinet/in.h>

#include "daemon.h"
#include "nat.h"
#include "svc_harness.h"
#include "svc_out.h"
#include "unit.h"
#include "worker.h"

struct nat_session *__real_nat_table__lookup_reply(struct nat_table *t,
						   const struct nat_tuple *reply);
struct nat_session *__wrap_nat_table__lookup_reply(struct nat_table *t,
						   const struct nat_tuple *reply);

static unsigned long reply_lookups;

struct nat_session *__wrap_nat_table__lookup_reply(struct nat_table *t,
						   const struct nat_tuple *reply)
{
	reply_lookups++;
	return __real_nat_table__lookup_reply(t, reply);
}

#define MATCH4 "{protocol: udp, destination: 198.18.1.1, port: 5000}"

/*
 * A client's datagram makes a session; its reply, received on the
 * upstream's port and admitted as the worker admits what its socket reads
 * (worker__admit(), worker__run_burst()), reaches the client with one
 * reply lookup, not two.
 */
static void test_one_lookup_per_reply(void)
{
	static const uint8_t payload[] = "reply lookup";
	uint8_t frame[256];
	const uint8_t *frames[] = {frame};
	uint32_t lens[1], nr = 0, len;
	struct ferry_worker *w;
	struct svc_harness *h;
	char egress[64], upstream[64];
	uint16_t nat, up_port;
	struct nat_tuple client = {.saddr.b = {198, 18, 1, 3}, .daddr.b = {198, 18, 1, 1},
				   .sport = 2222, .dport = 5000, .family = 4,
				   .proto = IPPROTO_UDP};
	struct svc_out o;
	uint64_t addr;

	if (unit_require_root())
		return;
	h = harness__create_net(MATCH4, "[ {forward: {upstream: \"198.18.2.2:6000\"}} ]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	w = harness__worker(h);
	lens[0] = harness__udp4(frame, "198.18.1.3", 2222, "198.18.1.1", 5000, payload,
				sizeof(payload));
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 1), 1);
	CU_ASSERT_EQUAL_FATAL(harness__nr_out(h), 1);
	CU_ASSERT_EQUAL_FATAL(svc_out_read(harness__out(h, 0), &o), 0);
	snprintf(egress, sizeof(egress), "%s", o.src);
	snprintf(upstream, sizeof(upstream), "%s", o.dst);
	nat = o.sport;
	up_port = o.dport;
	harness__clear_out(h);

	/*
	 * forward bound its reply rule to the interface of the kernel's route
	 * and to the configured NAT range; the harness's ports carry ifindexes
	 * of their own (port 1 stands for that interface) and its table a
	 * range of its own.
	 */
	for (uint32_t i = 0; i < w->d->nr_rules; i++) {
		if (w->d->rules[i].dir != FERRY_DIR_REPLY)
			continue;
		w->d->rules[i].ifindex = (uint32_t)w->ports[1]->ifindex;
		w->d->rules[i].dport_lo = 40000;
		w->d->rules[i].dport_hi = 40999;
	}

	len = harness__udp4(frame, upstream, up_port, egress, nat, payload, sizeof(payload));
	CU_ASSERT_FATAL(umem__alloc(w->umem, &addr));
	memcpy(umem__data(w->umem, addr), frame, len);
	reply_lookups = 0;
	CU_ASSERT_FATAL(worker__admit(w, addr, len, w->ports[1], false, &nr));
	worker__run_burst(w, nr);
	CU_ASSERT_EQUAL(reply_lookups, 1);
	/* What rx found rode with the packet (forward took it, see test_hint_checked). */
	CU_ASSERT_PTR_NOT_NULL(w->pkts[0].reply_session);
	CU_ASSERT_PTR_EQUAL(w->pkts[0].reply_session, nat_table__lookup_client(w->nat, &client));
	harness__tick(h, 0); /* sends what the burst queued */
	CU_ASSERT_EQUAL_FATAL(harness__nr_out(h), 1);
	CU_ASSERT_EQUAL_FATAL(svc_out_read(harness__out(h, 0), &o), 0);
	CU_ASSERT(o.csum_ok);
	CU_ASSERT_STRING_EQUAL(o.dst, "198.18.1.3");
	CU_ASSERT_EQUAL(o.dport, 2222);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->reply_packets, 1);

	/* A reply without a session: still one lookup, and dropped as no_session. */
	harness__clear_out(h);
	len = harness__udp4(frame, upstream, up_port, egress, (uint16_t)(nat ^ 1), payload,
			    sizeof(payload));
	CU_ASSERT_FATAL(umem__alloc(w->umem, &addr));
	memcpy(umem__data(w->umem, addr), frame, len);
	nr = 0;
	reply_lookups = 0;
	CU_ASSERT_FATAL(worker__admit(w, addr, len, w->ports[1], false, &nr));
	worker__run_burst(w, nr);
	harness__tick(h, 0);
	CU_ASSERT_EQUAL(harness__nr_out(h), 0);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_no_session, 1);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__destroy(h);
}

static union ferry_addr a4(uint8_t c, uint8_t d)
{
	union ferry_addr a = {.b = {198, 18, c, d}};

	return a;
}

/* The reply tuple of session `s`, as the upstream sends it. */
static struct nat_tuple reply_of(const struct nat_session *s)
{
	struct nat_tuple r = {.saddr = s->upstream.daddr,
			      .daddr = s->upstream.saddr,
			      .sport = s->upstream.dport,
			      .dport = s->upstream.sport,
			      .family = s->upstream.family,
			      .proto = s->upstream.proto};

	return r;
}

/* The hint is taken only while it is that reply's session in this very table. */
static void test_hint_checked(void)
{
	struct nat_table *t = nat_table__create(4, 40000, 40000), *other;
	union ferry_addr up = a4(2, 2), eg = a4(2, 1);
	struct nat_tuple c = {.saddr = a4(1, 3), .daddr = a4(1, 1), .sport = 2222, .dport = 5000,
			      .family = 4, .proto = IPPROTO_UDP};
	struct nat_session *s, *s2, *o;
	struct nat_tuple r, r2;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	other = nat_table__create(4, 40000, 40000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(other);
	CU_ASSERT_EQUAL_FATAL(nat_table__insert(t, &c, &eg, &up, 6000, 0, 1, &s), 0);
	CU_ASSERT_EQUAL_FATAL(nat_table__insert(other, &c, &eg, &up, 6000, 0, 1, &o), 0);
	r = reply_of(s);
	/* Valid: no lookup. */
	reply_lookups = 0;
	CU_ASSERT_PTR_EQUAL(nat_table__lookup_reply_hint(t, s, &r), s);
	CU_ASSERT_EQUAL(reply_lookups, 0);
	/* No hint, or one of another table (same tuple there): the lookup's answer. */
	CU_ASSERT_PTR_EQUAL(nat_table__lookup_reply_hint(t, NULL, &r), s);
	CU_ASSERT_PTR_EQUAL(nat_table__lookup_reply_hint(t, o, &r), s);
	CU_ASSERT_PTR_EQUAL(nat_table__lookup_reply_hint(t, (struct nat_session *)((char *)s + 8), &r),
			    s);
	/* Another reply tuple: the hint is not its session. */
	r2 = r;
	r2.sport = 6001;
	CU_ASSERT_PTR_NULL(nat_table__lookup_reply_hint(t, s, &r2));
	/* Removed: gone, however the memory still reads. */
	nat_table__remove(t, s);
	CU_ASSERT_PTR_NULL(nat_table__lookup_reply_hint(t, s, &r));
	/* The slot reused by another client (the only NAT port again): that one's. */
	c.sport = 3333;
	CU_ASSERT_EQUAL_FATAL(nat_table__insert(t, &c, &eg, &up, 6000, 0, 2, &s2), 0);
	CU_ASSERT_PTR_EQUAL(s2, s);
	CU_ASSERT_PTR_EQUAL(nat_table__lookup_reply_hint(t, s, &r), s2);
	CU_ASSERT_EQUAL(s2->client.sport, 3333);
	nat_table__destroy(other);
	nat_table__destroy(t);
}

static CU_TestInfo reply_lookup_tests[] = {
    {"a reply is looked up once, in rx", test_one_lookup_per_reply},
    {"the session hint is checked against the table", test_hint_checked},
    CU_TEST_INFO_NULL,
};

UNIT_SUITE(reply_lookup, "reply_lookup", reply_lookup_tests, NULL, NULL);
