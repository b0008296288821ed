// SPDX-License-Identifier: BSD-2-Clause
/*
 * TCP session states and MSS clamping.  States are driven by flag sequences
 * as both ends would send them; expiry goes through the real NAT table.  The
 * MSS golden frames below were built outside ferry (independent checksum
 * code); clamped frames are also checked against a naive checksum here.
 * Malformed option lists are placed against a PROT_NONE page, so any read
 * past the TCP header faults.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/mman.h>

#include "nat.h"
#include "packet.h"
#include "tcp_state.h"
#include "unit.h"

#define ETH_HLEN 14
#define NS 1000000000ull

#define C TCP_DIR_CLIENT
#define U TCP_DIR_UPSTREAM
#define SYN TCP_FLAG_SYN
#define ACK TCP_FLAG_ACK
#define FIN TCP_FLAG_FIN
#define RST TCP_FLAG_RST
#define PSH 0x08

/* ---- state machine ---- */

struct step {
	enum tcp_dir dir;
	uint8_t flags;
	enum tcp_conn_state want;
};

static void run_steps(struct tcp_track *t, const struct step *steps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		enum tcp_conn_state got = tcp_track_update(t, steps[i].dir, steps[i].flags);

		CU_ASSERT_EQUAL(got, steps[i].want);
		CU_ASSERT_EQUAL(t->state, steps[i].want);
		if (got != steps[i].want)
			fprintf(stderr, "\n  step %zu: got %s, want %s\n", i, tcp_state_str(got),
				tcp_state_str(steps[i].want));
	}
}

#define RUN(t, ...)                                                                                \
	do {                                                                                       \
		static const struct step s_[] = {__VA_ARGS__};                                     \
		run_steps(t, s_, sizeof(s_) / sizeof(s_[0]));                                      \
	} while (0)

static void test_client_closes(void)
{
	struct tcp_track t = {0};

	RUN(&t, {C, SYN, TCP_ST_SYN_SENT}, {C, SYN, TCP_ST_SYN_SENT}, /* retransmitted SYN */
	    {U, SYN | ACK, TCP_ST_SYN_RECV}, {U, SYN | ACK, TCP_ST_SYN_RECV},
	    {C, SYN, TCP_ST_SYN_RECV}, /* a late SYN retransmission */
	    {C, ACK, TCP_ST_ESTABLISHED}, {C, ACK | PSH, TCP_ST_ESTABLISHED},
	    {U, ACK, TCP_ST_ESTABLISHED}, {U, ACK | PSH, TCP_ST_ESTABLISHED},
	    {C, FIN | ACK, TCP_ST_FIN_WAIT}, {U, ACK, TCP_ST_FIN_WAIT},
	    {U, ACK | PSH, TCP_ST_FIN_WAIT}, /* half close: data still flows back */
	    {C, FIN | ACK, TCP_ST_FIN_WAIT}, /* retransmitted FIN */
	    {U, FIN | ACK, TCP_ST_TIME_WAIT}, {C, ACK, TCP_ST_TIME_WAIT},
	    {U, FIN | ACK, TCP_ST_TIME_WAIT});
	CU_ASSERT_EQUAL(t.fin_seen, 3);
}

static void test_upstream_closes(void)
{
	struct tcp_track t = {0};

	RUN(&t, {C, SYN, TCP_ST_SYN_SENT}, {U, SYN | ACK, TCP_ST_SYN_RECV},
	    {C, ACK | PSH, TCP_ST_ESTABLISHED}, /* the handshake ACK lost, data acks */
	    {U, FIN | ACK, TCP_ST_FIN_WAIT}, {C, ACK, TCP_ST_FIN_WAIT},
	    {C, FIN | ACK, TCP_ST_TIME_WAIT}, {U, ACK, TCP_ST_TIME_WAIT});
}

static void test_simultaneous_fin(void)
{
	struct tcp_track t = {0};

	RUN(&t, {C, SYN, TCP_ST_SYN_SENT}, {U, SYN | ACK, TCP_ST_SYN_RECV},
	    {C, ACK, TCP_ST_ESTABLISHED}, {C, FIN | ACK, TCP_ST_FIN_WAIT},
	    {U, FIN | ACK, TCP_ST_TIME_WAIT}, {C, ACK, TCP_ST_TIME_WAIT},
	    {U, ACK, TCP_ST_TIME_WAIT});
	/* The other order, and FIN carried by the first data-less segments. */
	memset(&t, 0, sizeof(t));
	RUN(&t, {C, SYN, TCP_ST_SYN_SENT}, {U, SYN | ACK, TCP_ST_SYN_RECV},
	    {C, ACK, TCP_ST_ESTABLISHED}, {U, FIN | ACK, TCP_ST_FIN_WAIT},
	    {C, FIN | ACK, TCP_ST_TIME_WAIT});
}

static void test_rst(void)
{
	struct tcp_track t = {0};

	/* Refused: the upstream answers the SYN with RST. */
	RUN(&t, {C, SYN, TCP_ST_SYN_SENT}, {U, RST | ACK, TCP_ST_CLOSED}, {U, ACK, TCP_ST_CLOSED},
	    {C, ACK, TCP_ST_CLOSED}, {C, FIN, TCP_ST_CLOSED},
	    {U, SYN | ACK, TCP_ST_CLOSED}, /* nothing but a client SYN reopens */
	    {C, SYN, TCP_ST_SYN_SENT});
	/* Client aborts an established connection. */
	memset(&t, 0, sizeof(t));
	RUN(&t, {C, SYN, TCP_ST_SYN_SENT}, {U, SYN | ACK, TCP_ST_SYN_RECV},
	    {C, ACK, TCP_ST_ESTABLISHED}, {C, RST, TCP_ST_CLOSED}, {U, ACK, TCP_ST_CLOSED});
	/* RST in every state, from either side. */
	for (int st = TCP_ST_NONE; st < TCP_ST__MAX; st++) {
		for (int dir = C; dir <= U; dir++) {
			t.state = (uint8_t)st;
			t.fin_seen = 1;
			CU_ASSERT_EQUAL(tcp_track_update(&t, dir, RST), TCP_ST_CLOSED);
			t.state = (uint8_t)st;
			CU_ASSERT_EQUAL(tcp_track_update(&t, dir, RST | ACK | FIN), TCP_ST_CLOSED);
		}
	}
}

static void test_reopen(void)
{
	struct tcp_track t = {0};

	RUN(&t, {C, SYN, TCP_ST_SYN_SENT}, {U, SYN | ACK, TCP_ST_SYN_RECV},
	    {C, ACK, TCP_ST_ESTABLISHED}, {C, FIN | ACK, TCP_ST_FIN_WAIT},
	    {U, FIN | ACK, TCP_ST_TIME_WAIT},
	    /* The client reuses its port: a new connection on the same tuple. */
	    {C, SYN, TCP_ST_SYN_SENT});
	CU_ASSERT_EQUAL(t.fin_seen, 0);
	RUN(&t, {U, SYN | ACK, TCP_ST_SYN_RECV}, {C, ACK, TCP_ST_ESTABLISHED},
	    {U, FIN | ACK, TCP_ST_FIN_WAIT}); /* not TIME_WAIT: old FINs were forgotten */
}

static void test_odd_sequences(void)
{
	struct tcp_track t = {0};

	/* Nothing before the client's SYN, and the upstream cannot open. */
	RUN(&t, {U, SYN, TCP_ST_NONE}, {U, ACK, TCP_ST_NONE}, {C, ACK, TCP_ST_NONE},
	    {C, SYN | ACK, TCP_ST_NONE}, {C, FIN, TCP_ST_NONE});
	/* No ESTABLISHED without the upstream's SYN; a client SYN-ACK is no opener. */
	RUN(&t, {C, SYN, TCP_ST_SYN_SENT}, {C, ACK, TCP_ST_SYN_SENT},
	    {C, SYN | ACK, TCP_ST_SYN_SENT}, {U, ACK, TCP_ST_SYN_SENT},
	    {U, SYN, TCP_ST_SYN_RECV}, /* a bare SYN counts as the answer */
	    {U, ACK, TCP_ST_SYN_RECV}, {C, ACK, TCP_ST_ESTABLISHED}, {C, SYN, TCP_ST_ESTABLISHED},
	    {U, SYN | ACK, TCP_ST_ESTABLISHED});
	/* A FIN during the handshake closes. */
	memset(&t, 0, sizeof(t));
	RUN(&t, {C, SYN, TCP_ST_SYN_SENT}, {C, FIN, TCP_ST_FIN_WAIT},
	    {U, SYN | ACK, TCP_ST_FIN_WAIT}, {U, FIN | ACK, TCP_ST_TIME_WAIT});
	/* SYN+FIN from the client is not an opener; a SYN+RST is a reset. */
	memset(&t, 0, sizeof(t));
	RUN(&t, {C, SYN | FIN, TCP_ST_SYN_SENT}, {C, SYN | RST, TCP_ST_CLOSED});
	CU_ASSERT_EQUAL(tcp_flags_open(SYN), 1);
	CU_ASSERT_EQUAL(tcp_flags_open(SYN | PSH), 1);
	CU_ASSERT_EQUAL(tcp_flags_open(SYN | ACK), 0);
	CU_ASSERT_EQUAL(tcp_flags_open(SYN | RST), 0);
	CU_ASSERT_EQUAL(tcp_flags_open(ACK), 0);
	CU_ASSERT_STRING_EQUAL(tcp_state_str(TCP_ST_ESTABLISHED), "established");
	CU_ASSERT_STRING_EQUAL(tcp_state_str(TCP_ST__MAX), "unknown");
}

/* ---- timeouts and expiry ---- */

static const struct tcp_timeouts TO = {
    .syn_ns = 30 * NS,
    .established_ns = 7440 * NS,
    .closing_ns = 2 * NS,
};

static void test_timeout_select(void)
{
	CU_ASSERT_EQUAL(tcp_state_timeout(TCP_ST_NONE, &TO), TO.syn_ns);
	CU_ASSERT_EQUAL(tcp_state_timeout(TCP_ST_SYN_SENT, &TO), TO.syn_ns);
	CU_ASSERT_EQUAL(tcp_state_timeout(TCP_ST_SYN_RECV, &TO), TO.syn_ns);
	CU_ASSERT_EQUAL(tcp_state_timeout(TCP_ST_ESTABLISHED, &TO), TO.established_ns);
	CU_ASSERT_EQUAL(tcp_state_timeout(TCP_ST_FIN_WAIT, &TO), TO.closing_ns);
	CU_ASSERT_EQUAL(tcp_state_timeout(TCP_ST_TIME_WAIT, &TO), TO.closing_ns);
	CU_ASSERT_EQUAL(tcp_state_timeout(TCP_ST_CLOSED, &TO), TO.closing_ns);
}

static union ferry_addr addr4(uint8_t d)
{
	union ferry_addr a = {.b = {198, 18, 1, d}};

	return a;
}

/* Drive a session through `n` client/upstream flag steps as svc_forward does. */
static void feed(struct nat_session *s, const struct step *steps, size_t n, uint64_t now)
{
	for (size_t i = 0; i < n; i++) {
		enum tcp_conn_state st = tcp_track_update(&s->tcp, steps[i].dir, steps[i].flags);

		CU_ASSERT_EQUAL(st, steps[i].want);
		s->timeout_ns = tcp_state_timeout(st, &TO);
	}
	s->last_seen_ns = now;
}

static uint32_t expire_all(struct nat_table *t, uint64_t now)
{
	/* The UDP default, 60 s, applies to sessions with no timeout of their own. */
	return nat_table__expire(t, now, 60 * NS, 1000, NULL, NULL);
}

static void test_expire_per_state(void)
{
#define OPEN                                                                                       \
	{                                                                                          \
		C, SYN, TCP_ST_SYN_SENT                                                            \
	}
#define HANDSHAKE                                                                                  \
	OPEN, {U, SYN | ACK, TCP_ST_SYN_RECV},                                                     \
	{                                                                                          \
		C, ACK, TCP_ST_ESTABLISHED                                                         \
	}
	static const struct step open[] = {OPEN};
	static const struct step est[] = {HANDSHAKE};
	static const struct step fin[] = {HANDSHAKE, {C, FIN | ACK, TCP_ST_FIN_WAIT}};
	static const struct step tw[] = {
	    HANDSHAKE, {C, FIN, TCP_ST_FIN_WAIT}, {U, FIN, TCP_ST_TIME_WAIT}};
	static const struct step rst[] = {OPEN, {U, RST | ACK, TCP_ST_CLOSED}};
	static const struct step close[] = {{C, FIN | ACK, TCP_ST_FIN_WAIT}};
#undef HANDSHAKE
#undef OPEN
	struct nat_table *t = nat_table__create(16, 40000, 40999);
	union ferry_addr up = addr4(200), egress = addr4(1);
	struct nat_session *s[6];
	struct nat_tuple k[6];
	uint64_t t0 = 1000 * NS;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (int i = 0; i < 6; i++) {
		k[i] = (struct nat_tuple){.saddr = addr4(2),
					  .daddr = addr4(1),
					  .sport = (uint16_t)(50000 + i),
					  .dport = 5201,
					  .family = 4,
					  .proto = i == 5 ? IPPROTO_UDP : IPPROTO_TCP};
		CU_ASSERT_EQUAL_FATAL(nat_table__insert(t, &k[i], &egress, &up, 5201, 0, t0, &s[i]),
				      0);
		/* A new session starts with no state and the table's timeout. */
		CU_ASSERT_EQUAL(s[i]->tcp.state, TCP_ST_NONE);
		CU_ASSERT_EQUAL(s[i]->timeout_ns, 0);
	}
	feed(s[0], open, 1, t0);
	feed(s[1], est, 3, t0);
	feed(s[2], fin, 4, t0);
	feed(s[3], tw, 5, t0);
	feed(s[4], rst, 2, t0);
	CU_ASSERT_EQUAL(s[0]->tcp.state, TCP_ST_SYN_SENT);
	CU_ASSERT_EQUAL(s[1]->tcp.state, TCP_ST_ESTABLISHED);
	CU_ASSERT_EQUAL(s[2]->tcp.state, TCP_ST_FIN_WAIT);
	CU_ASSERT_EQUAL(s[3]->tcp.state, TCP_ST_TIME_WAIT);
	CU_ASSERT_EQUAL(s[4]->tcp.state, TCP_ST_CLOSED);

	/* At exactly the closing timeout nothing is idle "longer" than it. */
	CU_ASSERT_EQUAL(expire_all(t, t0 + 2 * NS), 0);
	CU_ASSERT_EQUAL(expire_all(t, t0 + 2 * NS + 1), 3);
	CU_ASSERT_PTR_NOT_NULL(nat_table__lookup_client(t, &k[0]));
	CU_ASSERT_PTR_NOT_NULL(nat_table__lookup_client(t, &k[1]));
	for (int i = 2; i < 5; i++)
		CU_ASSERT_PTR_NULL(nat_table__lookup_client(t, &k[i]));
	/* syn (30 s) < udp (60 s) < established (7440 s). */
	CU_ASSERT_EQUAL(expire_all(t, t0 + 30 * NS + 1), 1);
	CU_ASSERT_PTR_NULL(nat_table__lookup_client(t, &k[0]));
	CU_ASSERT_EQUAL(expire_all(t, t0 + 60 * NS + 1), 1);
	CU_ASSERT_PTR_NULL(nat_table__lookup_client(t, &k[5]));
	CU_ASSERT_EQUAL(expire_all(t, t0 + 7440 * NS), 0);
	/* Traffic refreshes last_seen; a FIN then shortens the timeout. */
	feed(s[1], close, 1, t0 + 7000 * NS);
	CU_ASSERT_EQUAL(expire_all(t, t0 + 7001 * NS), 0);
	CU_ASSERT_EQUAL(expire_all(t, t0 + 7002 * NS + 1), 1);
	CU_ASSERT_EQUAL(nat_table__count(t), 0);
	nat_table__destroy(t);
}

static const uint8_t syn4_in[] = {
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45,
    0x00, 0x00, 0x3c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x9a, 0x60, 0xc6, 0x12, 0x01, 0x02,
    0xc6, 0x12, 0x01, 0x01, 0x9c, 0x40, 0x14, 0x51, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00,
    0x00, 0xa0, 0x02, 0xfa, 0xf0, 0xf3, 0x43, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02,
    0x08, 0x0a, 0x0b, 0xad, 0xca, 0xfe, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
};

static const uint8_t syn4_mtu1400[] = {
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45,
    0x00, 0x00, 0x3c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x9a, 0x60, 0xc6, 0x12, 0x01, 0x02,
    0xc6, 0x12, 0x01, 0x01, 0x9c, 0x40, 0x14, 0x51, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00,
    0x00, 0xa0, 0x02, 0xfa, 0xf0, 0xf3, 0xa7, 0x00, 0x00, 0x02, 0x04, 0x05, 0x50, 0x04, 0x02,
    0x08, 0x0a, 0x0b, 0xad, 0xca, 0xfe, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
};

static const uint8_t syn4_odd_in[] = {
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45, 0x00,
    0x00, 0x30, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x9a, 0x6c, 0xc6, 0x12, 0x01, 0x02, 0xc6, 0x12,
    0x01, 0x01, 0x9c, 0x41, 0x14, 0x51, 0xfe, 0xdc, 0xba, 0x98, 0x00, 0x00, 0x00, 0x00, 0x70, 0x02,
    0xff, 0xff, 0x91, 0xa6, 0x00, 0x00, 0x01, 0x02, 0x04, 0xff, 0xff, 0x01, 0x01, 0x01,
};

static const uint8_t syn4_odd_mtu1400[] = {
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45, 0x00,
    0x00, 0x30, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x9a, 0x6c, 0xc6, 0x12, 0x01, 0x02, 0xc6, 0x12,
    0x01, 0x01, 0x9c, 0x41, 0x14, 0x51, 0xfe, 0xdc, 0xba, 0x98, 0x00, 0x00, 0x00, 0x00, 0x70, 0x02,
    0xff, 0xff, 0x41, 0xa1, 0x00, 0x00, 0x01, 0x02, 0x04, 0x05, 0x50, 0x01, 0x01, 0x01,
};

static const uint8_t synack6_in[] = {
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd, 0x60,
    0x00, 0x00, 0x00, 0x00, 0x20, 0x06, 0x40, 0xfd, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xfd, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x14, 0x51, 0x9c, 0x40, 0xa0, 0xb0,
    0xc0, 0xd0, 0x11, 0x22, 0x33, 0x45, 0x80, 0x12, 0xfd, 0x20, 0x21, 0x72, 0x00, 0x00, 0x02,
    0x04, 0x05, 0xa0, 0x01, 0x01, 0x04, 0x02, 0x01, 0x03, 0x03, 0x07,
};

static const uint8_t synack6_mtu1280[] = {
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd, 0x60,
    0x00, 0x00, 0x00, 0x00, 0x20, 0x06, 0x40, 0xfd, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xfd, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x14, 0x51, 0x9c, 0x40, 0xa0, 0xb0,
    0xc0, 0xd0, 0x11, 0x22, 0x33, 0x45, 0x80, 0x12, 0xfd, 0x20, 0x22, 0x4e, 0x00, 0x00, 0x02,
    0x04, 0x04, 0xc4, 0x01, 0x01, 0x04, 0x02, 0x01, 0x03, 0x03, 0x07,
};

/* ---- MSS clamping ---- */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Naive one's-complement sum: byte at a time, big-endian words as numbers. */
static uint32_t ref_add(uint32_t s, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		s += (i % 2 == 0) ? (uint32_t)p[i] << 8 : p[i];
		while (s > 0xffff)
			s = (s & 0xffff) + (s >> 16);
	}
	return s;
}

/* Pseudo-header plus segment, checksum field included, from the IP header alone. */
static uint32_t ref_tcp_sum(const uint8_t *f, uint8_t **csum)
{
	uint8_t ph[40] = {0};
	uint32_t l4_off, l4_len, n;

	if (get16(f + 12) == 0x0800) {
		l4_off = ETH_HLEN + (f[ETH_HLEN] & 0x0f) * 4u;
		l4_len = get16(f + ETH_HLEN + 2) - (l4_off - ETH_HLEN);
		memcpy(ph, f + ETH_HLEN + 12, 8);
		ph[9] = IPPROTO_TCP;
		ph[10] = (uint8_t)(l4_len >> 8);
		ph[11] = (uint8_t)l4_len;
		n = 12;
	} else {
		l4_off = ETH_HLEN + 40;
		l4_len = get16(f + ETH_HLEN + 4);
		memcpy(ph, f + ETH_HLEN + 8, 32);
		ph[34] = (uint8_t)(l4_len >> 8);
		ph[35] = (uint8_t)l4_len;
		ph[39] = IPPROTO_TCP;
		n = 40;
	}
	if (csum)
		*csum = (uint8_t *)f + l4_off + 16;
	return ref_add(ref_add(0, ph, n), f + l4_off, l4_len);
}

static bool ref_tcp_ok(const uint8_t *f)
{
	return ref_tcp_sum(f, NULL) == 0xffff;
}

static void ref_tcp_fix(uint8_t *f)
{
	uint8_t *c;
	uint32_t s;

	ref_tcp_sum(f, &c);
	c[0] = c[1] = 0;
	s = ~ref_tcp_sum(f, NULL) & 0xffff;
	c[0] = (uint8_t)(s >> 8);
	c[1] = (uint8_t)s;
}

/*
 * Two pages, the second PROT_NONE: a frame copied to the end of the first
 * faults on any read past its last byte.
 */
static uint8_t *guard_page;
static size_t page_size;

static int tcp_suite_init(void)
{
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	guard_page =
	    mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (guard_page == MAP_FAILED)
		return -1;
	return mprotect(guard_page + page_size, page_size, PROT_NONE);
}

static int tcp_suite_cleanup(void)
{
	if (guard_page && guard_page != MAP_FAILED)
		munmap(guard_page, 2 * page_size);
	return 0;
}

static uint8_t *at_page_end(const uint8_t *frame, size_t len)
{
	uint8_t *p = guard_page + page_size - len;

	memcpy(p, frame, len);
	return p;
}

static void parse(const uint8_t *f, size_t len, struct pkt_info *pi)
{
	CU_ASSERT_EQUAL_FATAL(pkt_parse(f, (uint32_t)len, pi), PKT_OK);
	CU_ASSERT_EQUAL_FATAL(pi->l4_proto, IPPROTO_TCP);
}

/* Clamp `in` at `mtu`: expect `ret` and the frame `want` (NULL: unchanged). */
static void clamp_expect(const uint8_t *in, size_t len, uint16_t mtu, int ret, const uint8_t *want)
{
	struct pkt_info pi;
	uint8_t *f = at_page_end(in, len);

	parse(f, len, &pi);
	CU_ASSERT_EQUAL(tcp_mss_clamp(f, &pi, mtu), ret);
	CU_ASSERT(memcmp(f, want ? want : in, len) == 0);
}

static void test_mss_golden_v4(void)
{
	CU_ASSERT(ref_tcp_ok(syn4_in));
	CU_ASSERT(ref_tcp_ok(syn4_mtu1400));
	/* 1400 - 20 - 20 = 1360 */
	clamp_expect(syn4_in, sizeof(syn4_in), 1400, 1, syn4_mtu1400);
	/* Idempotent, and 1460 fits a 1500 MTU exactly. */
	clamp_expect(syn4_mtu1400, sizeof(syn4_mtu1400), 1400, 0, NULL);
	clamp_expect(syn4_in, sizeof(syn4_in), 1500, 0, NULL);
}

static void test_mss_golden_v4_odd(void)
{
	/* The MSS value at an odd offset straddles two checksum words. */
	CU_ASSERT(ref_tcp_ok(syn4_odd_in));
	CU_ASSERT(ref_tcp_ok(syn4_odd_mtu1400));
	clamp_expect(syn4_odd_in, sizeof(syn4_odd_in), 1400, 1, syn4_odd_mtu1400);
}

static void test_mss_golden_v6(void)
{
	/* A SYN-ACK; 1280 - 40 - 20 = 1220 */
	CU_ASSERT(ref_tcp_ok(synack6_in));
	CU_ASSERT(ref_tcp_ok(synack6_mtu1280));
	clamp_expect(synack6_in, sizeof(synack6_in), 1280, 1, synack6_mtu1280);
	/* 1440 is what a 1500 MTU carries over IPv6. */
	clamp_expect(synack6_in, sizeof(synack6_in), 1500, 0, NULL);
}

/* Every MTU around the boundary, both families: valid checksum, right value. */
static void test_mss_every_mtu(void)
{
	static const struct {
		const uint8_t *f;
		size_t len;
		uint32_t hdrs, mss_off;
		uint16_t mss;
	} c[] = {
	    {syn4_in, sizeof(syn4_in), 40, ETH_HLEN + 20 + 22, 1460},
	    {syn4_odd_in, sizeof(syn4_odd_in), 40, ETH_HLEN + 20 + 23, 0xffff},
	    {synack6_in, sizeof(synack6_in), 60, ETH_HLEN + 40 + 22, 1440},
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		for (uint32_t mtu = 0; mtu <= 1600; mtu++) {
			struct pkt_info pi;
			uint8_t *f = at_page_end(c[i].f, c[i].len);
			bool lower = mtu > c[i].hdrs && mtu - c[i].hdrs < c[i].mss;
			int ret;

			parse(f, c[i].len, &pi);
			ret = tcp_mss_clamp(f, &pi, (uint16_t)mtu);
			CU_ASSERT_EQUAL(ret, lower ? 1 : 0);
			CU_ASSERT(ref_tcp_ok(f));
			CU_ASSERT_EQUAL(get16(f + c[i].mss_off),
					lower ? mtu - c[i].hdrs : c[i].mss);
			if (!lower)
				CU_ASSERT(memcmp(f, c[i].f, c[i].len) == 0);
		}
	}
}

static void test_mss_unchanged(void)
{
	uint8_t f[sizeof(syn4_in)];

	/* No MTU known, or one too small to mean anything. */
	clamp_expect(syn4_in, sizeof(syn4_in), 0, 0, NULL);
	clamp_expect(syn4_in, sizeof(syn4_in), 40, 0, NULL);
	/* Not a SYN: MSS is only meaningful on SYNs. */
	memcpy(f, syn4_in, sizeof(f));
	f[ETH_HLEN + 20 + 13] = ACK;
	ref_tcp_fix(f);
	clamp_expect(f, sizeof(f), 1400, 0, NULL);
	/* No MSS option: NOPs in its place. */
	memcpy(f, syn4_in, sizeof(f));
	memset(f + ETH_HLEN + 40, 1, 4);
	ref_tcp_fix(f);
	clamp_expect(f, sizeof(f), 1400, 0, NULL);
	/* An MSS after the end-of-list option is not an option. */
	memcpy(f, syn4_in, sizeof(f));
	memcpy(f + ETH_HLEN + 40, (const uint8_t[]){0, 2, 4, 0xff}, 4);
	clamp_expect(f, sizeof(f), 1400, 0, NULL);
}

static void test_mss_no_options(void)
{
	/* The bare 20-byte header (doff 5) of syn4_in. */
	uint8_t f[ETH_HLEN + 20 + 20];

	memcpy(f, syn4_in, sizeof(f));
	f[ETH_HLEN + 3] = 40;
	f[ETH_HLEN + 20 + 12] = 5 << 4;
	clamp_expect(f, sizeof(f), 1400, 0, NULL);
}

/* Option lists of syn4_in's 20-byte option space, each malformed somewhere. */
static const uint8_t bad_opts[][20] = {
    /* MSS with length 0, 3 and 5 */
    {2, 0, 5, 0xb4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 3, 5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 5, 5, 0xb4, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    /* another option of length 1, and of length 0 (would loop forever) */
    {2, 4, 5, 0xb4, 4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 4, 5, 0xb4, 8, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    /* a valid MSS, then an option running past the header */
    {2, 4, 5, 0xb4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 8, 10, 0, 0, 0, 0},
    {2, 4, 5, 0xb4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 0xff},
    /* a kind in the last byte, its length byte would be past the header */
    {2, 4, 5, 0xb4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3},
    {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2},
    /* an MSS whose value would be past the header */
    {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4},
};

static void test_mss_malformed(void)
{
	uint8_t f[sizeof(syn4_in)];

	for (size_t i = 0; i < sizeof(bad_opts) / sizeof(bad_opts[0]); i++) {
		memcpy(f, syn4_in, sizeof(f));
		memcpy(f + ETH_HLEN + 40, bad_opts[i], 20);
		ref_tcp_fix(f);
		/* At the page end: a read past the header would fault here. */
		clamp_expect(f, sizeof(f), 1400, -EBADMSG, NULL);
	}
}

static void test_mss_payload_untouched(void)
{
	/* A SYN with data (TFO): only the option changes, never the payload. */
	uint8_t f[sizeof(syn4_in) + 8];
	struct pkt_info pi;
	uint8_t *g;

	memcpy(f, syn4_in, sizeof(syn4_in));
	memcpy(f + sizeof(syn4_in), (const uint8_t[]){2, 4, 0xff, 0xff, 2, 4, 0xff, 0xff}, 8);
	f[ETH_HLEN + 3] = (uint8_t)(sizeof(f) - ETH_HLEN);
	ref_tcp_fix(f);
	g = at_page_end(f, sizeof(f));
	parse(g, sizeof(f), &pi);
	CU_ASSERT_EQUAL(tcp_mss_clamp(g, &pi, 1400), 1);
	CU_ASSERT(ref_tcp_ok(g));
	CU_ASSERT(memcmp(g + sizeof(syn4_in), f + sizeof(syn4_in), 8) == 0);
	CU_ASSERT_EQUAL(get16(g + ETH_HLEN + 42), 1360);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

/*
 * The oracle of the fuzz test, written from RFC 9293 section 3.1 without
 * looking at the code under test: walk the list, refuse it whole when an
 * option does not fit or an MSS is not 4 bytes, lower each MSS above `max`.
 */
static int ref_clamp(uint8_t *th, uint32_t hlen, uint32_t mtu)
{
	uint32_t i = 20;
	int n = 0;

	if (!(th[13] & SYN) || mtu <= 40)
		return 0;
	while (i < hlen && th[i] != 0) {
		if (th[i] == 1) {
			i++;
			continue;
		}
		if (i + 1 >= hlen || th[i + 1] < 2 || i + th[i + 1] > hlen ||
		    (th[i] == 2 && th[i + 1] != 4))
			return -1;
		i += th[i + 1];
	}
	for (i = 20; i < hlen && th[i] != 0; i += th[i] == 1 ? 1 : th[i + 1]) {
		if (th[i] == 2 && get16(th + i + 2) > mtu - 40) {
			th[i + 2] = (uint8_t)((mtu - 40) >> 8);
			th[i + 3] = (uint8_t)(mtu - 40);
			n++;
		}
	}
	return n;
}

/*
 * Random option lists of every length, mostly well formed: never a fault,
 * and the result is exactly the oracle's, checksum included.
 */
static void test_mss_fuzz(void)
{
	static const uint8_t kinds[] = {0, 1, 1, 2, 2, 2, 3, 4, 8, 30, 254};
	uint8_t in[ETH_HLEN + 20 + 60], want[sizeof(in)], *f;
	unsigned int outcome[3] = {0};

	for (int iter = 0; iter < 50000; iter++) {
		uint32_t olen = (rnd() % 11) * 4, len = ETH_HLEN + 40 + olen;
		uint16_t mtu = (uint16_t)(rnd() % 1700);
		struct pkt_info pi;
		int ret, ref;

		memcpy(in, syn4_in, ETH_HLEN + 40);
		in[ETH_HLEN + 3] = (uint8_t)(40 + olen);
		in[ETH_HLEN + 20 + 12] = (uint8_t)((5 + olen / 4) << 4);
		in[ETH_HLEN + 20 + 13] = rnd() % 8 ? SYN : ACK;
		for (uint32_t o = 0; o < olen;) {
			uint8_t *p = in + ETH_HLEN + 40 + o;
			uint32_t l = 2 + rnd() % 9;

			p[0] = rnd() % 32 ? kinds[rnd() % sizeof(kinds)] : (uint8_t)rnd();
			if (p[0] <= 1) {
				o++;
				continue;
			}
			if (p[0] == 2 && rnd() % 4)
				l = 4;
			for (uint32_t j = 1; j < l && o + j < olen; j++)
				p[j] = (uint8_t)rnd();
			if (o + 1 < olen)
				p[1] = rnd() % 16 ? (uint8_t)l : (uint8_t)rnd();
			o += l;
		}
		ref_tcp_fix(in);
		memcpy(want, in, len);
		ref = ref_clamp(want + ETH_HLEN + 20, 20 + olen, mtu);
		if (ref > 0)
			ref_tcp_fix(want);

		f = at_page_end(in, len);
		parse(f, len, &pi);
		ret = tcp_mss_clamp(f, &pi, mtu);
		CU_ASSERT_EQUAL(ret, ref < 0 ? -EBADMSG : ref);
		CU_ASSERT(memcmp(f, want, len) == 0);
		CU_ASSERT(ref_tcp_ok(f));
		outcome[ref < 0 ? 0 : ref ? 2 : 1]++;
	}
	/* The generator must exercise all three outcomes. */
	CU_ASSERT(outcome[0] > 1000);
	CU_ASSERT(outcome[1] > 1000);
	CU_ASSERT(outcome[2] > 1000);
}

/* ---- sequence windows ---- */

/* One segment through the window tracking: its verdict. */
static enum tcp_verdict seg(struct tcp_track *t, enum tcp_dir dir, uint8_t flags, uint32_t seq,
			    uint32_t ack, uint16_t win, uint32_t len)
{
	struct tcp_seg sg = {.seq = seq, .ack = ack, .win = win, .len = len, .flags = flags,
			     .wscale = -1};

	return tcp_track_segment(t, dir, &sg);
}

static enum tcp_verdict syn_seg(struct tcp_track *t, enum tcp_dir dir, uint8_t flags,
				uint32_t seq, uint32_t ack, uint16_t win, int8_t wscale)
{
	struct tcp_seg sg = {.seq = seq, .ack = ack, .win = win, .flags = flags, .wscale = wscale};

	return tcp_track_segment(t, dir, &sg);
}

/* Client ISN and upstream ISN: near the wrap, so the arithmetic must be modular. */
#define CISN 0xfffff000u
#define UISN 0x7ffffff0u

/*
 * Handshake with window scale `cws`/`uws` (-1: no option), both windows
 * 64 KiB once scaled; the client then sends 1000 bytes, the upstream acks
 * them and sends 500.  Client next seq CISN + 1001, upstream UISN + 501.
 */
static void established(struct tcp_track *t, int8_t cws, int8_t uws)
{
	uint16_t cwin = cws >= 0 && uws >= 0 ? 512 : 65535; /* 512 << 7 = 65536 */
	uint16_t uwin = cwin;

	memset(t, 0, sizeof(*t));
	CU_ASSERT_EQUAL(syn_seg(t, C, SYN, CISN, 0, 64240, cws), TCP_ACCEPT);
	CU_ASSERT_EQUAL(syn_seg(t, U, SYN | ACK, UISN, CISN + 1, 65160, uws), TCP_ACCEPT);
	CU_ASSERT_EQUAL(seg(t, C, ACK, CISN + 1, UISN + 1, cwin, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t->state, TCP_ST_ESTABLISHED);
	CU_ASSERT_EQUAL(seg(t, C, ACK | PSH, CISN + 1, UISN + 1, cwin, 1000), TCP_ACCEPT);
	CU_ASSERT_EQUAL(seg(t, U, ACK | PSH, UISN + 1, CISN + 1001, uwin, 500), TCP_ACCEPT);
	CU_ASSERT_EQUAL(seg(t, C, ACK, CISN + 1001, UISN + 501, cwin, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t->state, TCP_ST_ESTABLISHED);
}

/* A RST at exactly the next sequence number closes, from either side. */
static void test_win_rst_in_window(void)
{
	struct tcp_track t;

	established(&t, 7, 7);
	CU_ASSERT_EQUAL(seg(&t, U, RST, UISN + 501, 0, 0, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_CLOSED);

	established(&t, 7, 7);
	CU_ASSERT_EQUAL(seg(&t, C, RST | ACK, CISN + 1001, UISN + 501, 0, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_CLOSED);

	/* A host's answer to a segment for a closed socket: seq = that segment's ack. */
	established(&t, 7, 7);
	CU_ASSERT_EQUAL(seg(&t, U, ACK | PSH, UISN + 501, CISN + 1001, 512, 300), TCP_ACCEPT);
	CU_ASSERT_EQUAL(seg(&t, C, RST, CISN + 1001, 0, 0, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_CLOSED);

	/*
	 * In the window but not exact: forwarded (the host answers with a
	 * challenge ACK, RFC 5961) and the session stays established.
	 */
	established(&t, 7, 7);
	CU_ASSERT_EQUAL(seg(&t, U, RST, UISN + 501 + 20000, 0, 0, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_ESTABLISHED);
	/* ... and the exact RST that follows closes it. */
	CU_ASSERT_EQUAL(seg(&t, U, RST, UISN + 501, 0, 0, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_CLOSED);
}

/* RSTs a blind sender would send: dropped, and nothing tracked changes. */
static void test_win_rst_out_of_window(void)
{
	static const uint32_t off[] = {0x80000000u, 0x40000000u, 0x10000000u, 200000u,
				       (uint32_t)-200000, (uint32_t)-0x10000000};
	struct tcp_track t, before;

	established(&t, 7, 7);
	before = t;
	for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++) {
		CU_ASSERT_EQUAL(seg(&t, U, RST, UISN + 501 + off[i], 0, 0, 0), TCP_OUT_OF_WINDOW);
		CU_ASSERT_EQUAL(seg(&t, U, RST | ACK, UISN + 501 + off[i], CISN + 1001, 0, 0),
				TCP_OUT_OF_WINDOW);
		CU_ASSERT_EQUAL(seg(&t, C, RST, CISN + 1001 + off[i], 0, 0, 0), TCP_OUT_OF_WINDOW);
	}
	CU_ASSERT(memcmp(&t, &before, sizeof(t)) == 0);
	CU_ASSERT_EQUAL(t.state, TCP_ST_ESTABLISHED);
	/* The connection goes on; its real RST still closes it. */
	CU_ASSERT_EQUAL(seg(&t, C, ACK | PSH, CISN + 1001, UISN + 501, 512, 10), TCP_ACCEPT);
	CU_ASSERT_EQUAL(seg(&t, C, RST, CISN + 1011, 0, 0, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_CLOSED);

	/* A spoofed data segment outside the window does not widen it for a later RST. */
	established(&t, 7, 7);
	before = t;
	CU_ASSERT_EQUAL(seg(&t, U, ACK, UISN + 0x40000000, CISN + 1001, 65535, 100), TCP_ACCEPT);
	CU_ASSERT(memcmp(&t, &before, sizeof(t)) == 0);
	CU_ASSERT_EQUAL(seg(&t, U, RST, UISN + 0x40000000 + 100, 0, 0, 0), TCP_OUT_OF_WINDOW);
	CU_ASSERT_EQUAL(t.state, TCP_ST_ESTABLISHED);
}

static void test_win_fin(void)
{
	struct tcp_track t, before;

	established(&t, 7, 7);
	before = t;
	/* Out of the window: forwarded for the end host to judge, and nothing moves. */
	CU_ASSERT_EQUAL(seg(&t, U, FIN | ACK, UISN + 501 + 0x80000000u, CISN + 1001, 512, 0),
			TCP_ACCEPT);
	CU_ASSERT_EQUAL(seg(&t, C, FIN, CISN + 1001 - 0x20000000u, 0, 512, 0), TCP_ACCEPT);
	CU_ASSERT(memcmp(&t, &before, sizeof(t)) == 0);
	CU_ASSERT_EQUAL(t.state, TCP_ST_ESTABLISHED);
	CU_ASSERT_EQUAL(t.fin_seen, 0);
	/*
	 * The real FINs close, each once its peer acknowledged it: the client's
	 * FIN|ACK acks the upstream's FIN, the upstream's retransmitted FIN acks
	 * the client's.
	 */
	CU_ASSERT_EQUAL(seg(&t, U, FIN | ACK, UISN + 501, CISN + 1001, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_ESTABLISHED);
	CU_ASSERT_EQUAL(seg(&t, C, FIN | ACK, CISN + 1001, UISN + 502, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_FIN_WAIT);
	/* A retransmitted FIN is still in the window. */
	CU_ASSERT_EQUAL(seg(&t, U, FIN | ACK, UISN + 501, CISN + 1002, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_TIME_WAIT);
}

/*
 * Data both ways, far past the first windows: the windows follow, so the
 * RST at the new next sequence number is taken and one at the old one is
 * not.
 */
static void test_win_moves(void)
{
	enum { MSS = 1448, SEGS = 2000 };
	uint32_t cseq = CISN + 1001, useq = UISN + 501;
	struct tcp_track t;

	established(&t, 7, 7);
	for (int i = 0; i < SEGS; i++) {
		CU_ASSERT_EQUAL(seg(&t, C, ACK | PSH, cseq, useq, 512, MSS), TCP_ACCEPT);
		cseq += MSS;
		CU_ASSERT_EQUAL(seg(&t, U, ACK | PSH, useq, cseq, 512, MSS / 2), TCP_ACCEPT);
		useq += MSS / 2;
		CU_ASSERT_EQUAL(seg(&t, C, ACK, cseq, useq, 512, 0), TCP_ACCEPT);
	}
	CU_ASSERT_EQUAL(t.win[C].end, cseq);
	CU_ASSERT_EQUAL(t.win[U].end, useq);
	/* Where the connection started is now far below the window. */
	CU_ASSERT_EQUAL(seg(&t, U, RST, UISN + 501, 0, 0, 0), TCP_OUT_OF_WINDOW);
	CU_ASSERT_EQUAL(seg(&t, C, FIN, CISN + 1001, 0, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.fin_sent, 0);
	CU_ASSERT_EQUAL(t.state, TCP_ST_ESTABLISHED);
	CU_ASSERT_EQUAL(seg(&t, C, FIN | ACK, cseq, useq, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_ESTABLISHED);
	CU_ASSERT_EQUAL(seg(&t, U, ACK, useq, cseq + 1, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_FIN_WAIT);
	CU_ASSERT_EQUAL(seg(&t, U, RST, useq, 0, 0, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_CLOSED);
}

/*
 * Window scaling: with both SYNs carrying the option, a window field of 512
 * is 64 KiB, so a FIN 60000 bytes ahead of the last ack is in the window
 * (a sender may have that much in flight).  Without the option on either
 * SYN it is 512 bytes, and the same FIN is not.  In the window, a FIN is
 * accepted (forwarded) but closes nothing until the peer acknowledges it:
 * this one used to move the session to FIN_WAIT at once, which any blind
 * FIN in the window could do; now the upstream's ack of its end does.
 */
static void test_win_scale(void)
{
	struct tcp_track t;

	established(&t, 7, 7);
	CU_ASSERT_EQUAL(t.win[C].scale, 7);
	CU_ASSERT_EQUAL(t.win[U].scale, 7);
	CU_ASSERT_EQUAL(seg(&t, C, FIN | ACK, CISN + 1001 + 60000, UISN + 501, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_ESTABLISHED);
	CU_ASSERT_EQUAL(seg(&t, U, ACK, UISN + 501, CISN + 1001 + 60001, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_FIN_WAIT);

	/* Only the client's SYN has it: no scaling either way. */
	memset(&t, 0, sizeof(t));
	CU_ASSERT_EQUAL(syn_seg(&t, C, SYN, CISN, 0, 64240, 7), TCP_ACCEPT);
	CU_ASSERT_EQUAL(syn_seg(&t, U, SYN | ACK, UISN, CISN + 1, 512, -1), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.win[C].scale, 0);
	CU_ASSERT_EQUAL(t.win[U].scale, 0);
	CU_ASSERT_EQUAL(seg(&t, C, ACK, CISN + 1, UISN + 1, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(seg(&t, U, ACK, UISN + 1, CISN + 1, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(seg(&t, C, FIN | ACK, CISN + 1 + 60000, UISN + 1, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.fin_sent, 0);
	CU_ASSERT_EQUAL(seg(&t, C, FIN | ACK, CISN + 1 + 400, UISN + 1, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_ESTABLISHED);
	CU_ASSERT_EQUAL(seg(&t, U, ACK, UISN + 1, CISN + 1 + 401, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_FIN_WAIT);
}

/* Before the upstream's SYN-ACK only a RST acking the client's SYN counts. */
static void test_win_handshake(void)
{
	struct tcp_track t = {0};

	CU_ASSERT_EQUAL(syn_seg(&t, C, SYN, CISN, 0, 64240, 7), TCP_ACCEPT);
	CU_ASSERT_EQUAL(seg(&t, U, RST, 12345, 0, 0, 0), TCP_OUT_OF_WINDOW);
	CU_ASSERT_EQUAL(seg(&t, U, RST | ACK, 0, CISN + 7, 0, 0), TCP_OUT_OF_WINDOW);
	CU_ASSERT_EQUAL(seg(&t, U, FIN | ACK, 0, CISN + 1, 0, 0), TCP_OUT_OF_WINDOW);
	CU_ASSERT_EQUAL(t.state, TCP_ST_SYN_SENT);
	/* A closed port's answer. */
	CU_ASSERT_EQUAL(seg(&t, U, RST | ACK, 0, CISN + 1, 0, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_CLOSED);

	/* The tuple reused: a new SYN starts both windows afresh. */
	CU_ASSERT_EQUAL(syn_seg(&t, C, SYN, 77, 0, 64240, -1), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_SYN_SENT);
	CU_ASSERT_EQUAL(t.win[U].flags, 0);
	CU_ASSERT_EQUAL(syn_seg(&t, U, SYN | ACK, 900, 78, 65535, -1), TCP_ACCEPT);
	/* During the handshake a RST in the window closes even if not exact. */
	CU_ASSERT_EQUAL(seg(&t, U, RST, 900, 0, 0, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_CLOSED);
}

/* A TCP session in a NAT table, for the tests that idle it past a timeout. */
static struct nat_session *tcp_session(struct nat_table *nt, uint64_t now)
{
	union ferry_addr up = addr4(200), egress = addr4(1);
	struct nat_tuple k = {.saddr = addr4(2),
			      .daddr = addr4(1),
			      .sport = 50000,
			      .dport = 5201,
			      .family = 4,
			      .proto = IPPROTO_TCP};
	struct nat_session *s = NULL;

	CU_ASSERT_EQUAL(nat_table__insert(nt, &k, &egress, &up, 5201, 0, now, &s), 0);
	return s;
}

/* What svc_forward does after each accepted segment. */
static void touch(struct nat_session *s, uint64_t now)
{
	s->timeout_ns = tcp_state_timeout(s->tcp.state, &TO);
	s->last_seen_ns = now;
}

/*
 * A blind FIN that lands in the window (issue 10, item 5): forwarded, but
 * nobody acknowledges it, so the session stays established with its long
 * timeout and an idle past the closing timeout does not remove it.  Data
 * that later flows past the blind FIN's position, and the acks of that
 * data, do not count for it either.  The real close then still closes.
 */
static void test_win_blind_fin(void)
{
	struct nat_table *nt = nat_table__create(16, 40000, 40999);
	uint64_t now = 1000 * NS;
	uint32_t useq = UISN + 501;
	struct nat_session *s;
	struct tcp_track *t;

	CU_ASSERT_PTR_NOT_NULL_FATAL(nt);
	s = tcp_session(nt, now);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	t = &s->tcp;
	established(t, 7, 7);
	/* 20000 bytes ahead of the upstream's next byte: inside its 64 KiB window. */
	CU_ASSERT_EQUAL(seg(t, U, FIN | ACK, useq + 20000, CISN + 1001, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t->state, TCP_ST_ESTABLISHED);
	/* The client's stack does not take it: its acks stay below the FIN. */
	CU_ASSERT_EQUAL(seg(t, C, ACK | PSH, CISN + 1001, useq, 512, 100), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t->state, TCP_ST_ESTABLISHED);
	touch(s, now);
	CU_ASSERT_EQUAL(expire_all(nt, now + TO.closing_ns + NS), 0);
	CU_ASSERT_EQUAL(nat_table__count(nt), 1);

	/* The upstream's real data goes past the blind FIN, and the client acks all of it. */
	now += TO.closing_ns + NS;
	for (int i = 0; i < 30; i++) {
		CU_ASSERT_EQUAL(seg(t, U, ACK | PSH, useq, CISN + 1101, 512, 1000), TCP_ACCEPT);
		useq += 1000;
		CU_ASSERT_EQUAL(seg(t, C, ACK, CISN + 1101, useq, 512, 0), TCP_ACCEPT);
	}
	CU_ASSERT((int32_t)(useq - (UISN + 501 + 20001)) > 0);
	CU_ASSERT_EQUAL(t->state, TCP_ST_ESTABLISHED);
	touch(s, now);
	CU_ASSERT_EQUAL(expire_all(nt, now + TO.closing_ns + NS), 0);

	/* The real close: FIN, its ACK, FIN, its ACK. */
	now += TO.closing_ns + NS;
	CU_ASSERT_EQUAL(seg(t, C, FIN | ACK, CISN + 1101, useq, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t->state, TCP_ST_ESTABLISHED);
	CU_ASSERT_EQUAL(seg(t, U, ACK, useq, CISN + 1102, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t->state, TCP_ST_FIN_WAIT);
	CU_ASSERT_EQUAL(seg(t, U, FIN | ACK, useq, CISN + 1102, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t->state, TCP_ST_FIN_WAIT);
	CU_ASSERT_EQUAL(seg(t, C, ACK, CISN + 1102, useq + 1, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t->state, TCP_ST_TIME_WAIT);
	touch(s, now);
	CU_ASSERT_EQUAL(expire_all(nt, now + TO.closing_ns + NS), 1);
	nat_table__destroy(nt);
}

/*
 * The other order, and the blind FIN the other way: a client FIN in the
 * window that the upstream never acks leaves the session established; the
 * upstream's own FIN, acked, makes it FIN_WAIT (half closed), and the
 * client's real FIN, acked, TIME_WAIT.  A FIN never acked (the peer died)
 * keeps the state, so the session expires on that state's timeout.
 */
static void test_win_real_close(void)
{
	struct tcp_track t;

	established(&t, 7, 7);
	CU_ASSERT_EQUAL(seg(&t, C, FIN | ACK, CISN + 1001 + 30000, UISN + 501, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(seg(&t, U, FIN | ACK, UISN + 501, CISN + 1001, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_ESTABLISHED);
	CU_ASSERT_EQUAL(seg(&t, C, ACK, CISN + 1001, UISN + 502, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_FIN_WAIT);
	CU_ASSERT_EQUAL(t.fin_seen, 1u << U);
	/* The upstream's acks stay below the blind FIN: still half closed. */
	CU_ASSERT_EQUAL(seg(&t, U, ACK, UISN + 502, CISN + 1001, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_FIN_WAIT);
	/* The client's real FIN, right at its next byte, and its ACK. */
	CU_ASSERT_EQUAL(seg(&t, C, FIN | ACK, CISN + 1001, UISN + 502, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_FIN_WAIT);
	CU_ASSERT_EQUAL(seg(&t, U, ACK, UISN + 502, CISN + 1002, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_TIME_WAIT);
	CU_ASSERT_EQUAL(t.fin_seen, 3);
}

/*
 * Segments without ACK, and RSTs, do not move the windows (issue 10, item
 * 5): their window field, 65535 << 7 here (8 MiB), would otherwise let the
 * next blind FIN or RST a megabyte ahead in.
 */
/*
 * A connection the XDP fast path forwarded for 3 GB (past a sequence wrap
 * and more than 2^31 ahead of what the worker last saw): the windows it
 * records are taken back, and the close is judged against them.
 */
static void test_win_resync(void)
{
	const uint32_t far = 3000000000u;
	uint32_t u_end = UISN + 501 + far, c_end = CISN + 1001 + 77;
	struct tcp_track t, stale;

	established(&t, 7, 7);
	stale = t;
	/* Without the fast path's windows, its FIN would be outside: forwarded, not recorded. */
	CU_ASSERT_EQUAL(seg(&stale, U, FIN | ACK, u_end, c_end, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(stale.fin_sent, 0);

	tcp_track_resync(&t, TCP_DIR_CLIENT, c_end, u_end, 512);
	tcp_track_resync(&t, TCP_DIR_UPSTREAM, u_end, c_end, 512);
	CU_ASSERT_EQUAL(t.win[U].end, u_end);
	CU_ASSERT_EQUAL(t.win[C].end, c_end);
	/* A blind RST where the connection was 3 GB ago is outside now. */
	CU_ASSERT_EQUAL(seg(&t, U, RST, UISN + 501, 0, 0, 0), TCP_OUT_OF_WINDOW);
	CU_ASSERT_EQUAL(t.state, TCP_ST_ESTABLISHED);
	/* The real close: FIN recorded, acknowledged, the state moves. */
	CU_ASSERT_EQUAL(seg(&t, U, FIN | ACK, u_end, c_end, 512, 0), TCP_ACCEPT);
	CU_ASSERT(t.fin_sent & (1u << TCP_DIR_UPSTREAM));
	CU_ASSERT_EQUAL(seg(&t, C, ACK, c_end, u_end + 1, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_FIN_WAIT);

	/* A RST at exactly the next sequence number closes a resynced connection too. */
	established(&t, 7, 7);
	tcp_track_resync(&t, TCP_DIR_CLIENT, c_end, u_end, 512);
	tcp_track_resync(&t, TCP_DIR_UPSTREAM, u_end, c_end, 512);
	CU_ASSERT_EQUAL(seg(&t, C, RST, c_end, 0, 0, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_CLOSED);
}

/*
 * A NAT port still in the upstream's TIME_WAIT: the upstream answers the
 * client's SYN with a bare ACK of the old connection, the client resets
 * with that ACK's number, and the SYN sent again opens the connection.
 */
static void test_win_time_wait_challenge(void)
{
	const uint32_t old_ack = 0x12345678u;
	struct tcp_track t = {0};

	CU_ASSERT_EQUAL(syn_seg(&t, C, SYN, CISN, 0, 64240, 7), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_SYN_SENT);
	/* Before the challenge, a RST at that number is a blind one. */
	CU_ASSERT_EQUAL(seg(&t, C, RST, old_ack, 0, 0, 0), TCP_OUT_OF_WINDOW);
	CU_ASSERT_EQUAL(seg(&t, U, ACK, 0x0badf00du, old_ack, 502, 0), TCP_ACCEPT);
	/* Another number is still refused; the exact one goes through and closes. */
	CU_ASSERT_EQUAL(seg(&t, C, RST, old_ack + 1, 0, 0, 0), TCP_OUT_OF_WINDOW);
	CU_ASSERT_EQUAL(t.state, TCP_ST_SYN_SENT);
	CU_ASSERT_EQUAL(seg(&t, C, RST, old_ack, 0, 0, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_CLOSED);
	/* The SYN again: a new connection on the same tuple. */
	CU_ASSERT_EQUAL(syn_seg(&t, C, SYN, CISN, 0, 64240, 7), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_SYN_SENT);
	CU_ASSERT_EQUAL(t.challenged, 0);
	CU_ASSERT_EQUAL(syn_seg(&t, U, SYN | ACK, UISN, CISN + 1, 65160, 7), TCP_ACCEPT);
	CU_ASSERT_EQUAL(seg(&t, C, ACK, CISN + 1, UISN + 1, 512, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.state, TCP_ST_ESTABLISHED);
}

static void test_win_ackless(void)
{
	struct tcp_track t, before;

	established(&t, 7, 7);
	before = t;
	CU_ASSERT_EQUAL(seg(&t, C, PSH, CISN + 1001, 0, 65535, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(seg(&t, U, PSH, UISN + 501, 0, 65535, 0), TCP_ACCEPT);
	/* RSTs in the window, not exact: forwarded, nothing moves. */
	CU_ASSERT_EQUAL(seg(&t, U, RST, UISN + 501 + 1000, 0, 65535, 0), TCP_ACCEPT);
	CU_ASSERT_EQUAL(seg(&t, C, RST | ACK, CISN + 1001 + 1000, UISN + 501, 65535, 0),
			TCP_ACCEPT);
	CU_ASSERT(memcmp(t.win, before.win, sizeof(t.win)) == 0);
	CU_ASSERT_EQUAL(t.state, TCP_ST_ESTABLISHED);
	CU_ASSERT_EQUAL(seg(&t, U, FIN | ACK, UISN + 501 + (1u << 20), CISN + 1001, 512, 0),
			TCP_ACCEPT);
	CU_ASSERT_EQUAL(seg(&t, C, FIN | ACK, CISN + 1001 + (1u << 20), UISN + 501, 512, 0),
			TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.fin_sent, 0);
	CU_ASSERT_EQUAL(seg(&t, U, RST, UISN + 501 + (1u << 20), 0, 0, 0), TCP_OUT_OF_WINDOW);
	CU_ASSERT_EQUAL(t.state, TCP_ST_ESTABLISHED);
	/* A SYN without ACK still sets its side's window: the client's opener. */
	memset(&t, 0, sizeof(t));
	CU_ASSERT_EQUAL(syn_seg(&t, C, SYN, CISN, 0, 64240, -1), TCP_ACCEPT);
	CU_ASSERT_EQUAL(t.win[C].maxwin, 64240);
}

/* tcp_seg_parse() on a SYN with MSS, SACK-permitted, timestamps and window scale 9. */
static void test_seg_parse(void)
{
	static const uint8_t opts[] = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1,
				       0, 0, 0, 0, 1, 3, 3, 9};
	uint8_t f[ETH_HLEN + 20 + 20 + sizeof(opts) + 5] = {0};
	uint8_t *ip = f + ETH_HLEN, *th = ip + 20;
	struct tcp_seg sg;
	struct pkt_info pi;

	f[12] = 0x08;
	ip[0] = 0x45;
	ip[3] = (uint8_t)(sizeof(f) - ETH_HLEN);
	ip[8] = 64;
	ip[9] = IPPROTO_TCP;
	memcpy(ip + 12, "\xc6\x12\x01\x02\xc6\x12\x01\x01", 8);
	th[1] = 80;
	th[3] = 81;
	memcpy(th + 4, "\x80\x00\x00\x01\x00\x00\x00\x02", 8);
	th[12] = (uint8_t)((20 + sizeof(opts)) / 4) << 4;
	th[13] = SYN | ACK;
	th[14] = 0xfe;
	th[15] = 0x88;
	memcpy(th + 20, opts, sizeof(opts));
	CU_ASSERT_EQUAL_FATAL(pkt_parse(f, sizeof(f), &pi), PKT_OK);
	CU_ASSERT_EQUAL(tcp_seg_parse(f, &pi, &sg), 0);
	CU_ASSERT_EQUAL(sg.seq, 0x80000001u);
	CU_ASSERT_EQUAL(sg.ack, 2);
	CU_ASSERT_EQUAL(sg.win, 0xfe88);
	CU_ASSERT_EQUAL(sg.flags, SYN | ACK);
	CU_ASSERT_EQUAL(sg.len, 5);
	CU_ASSERT_EQUAL(sg.wscale, 9);
	/* Larger than 14 is taken as 14 (RFC 7323). */
	th[20 + sizeof(opts) - 1] = 15;
	CU_ASSERT_EQUAL(tcp_seg_parse(f, &pi, &sg), 0);
	CU_ASSERT_EQUAL(sg.wscale, 14);
	/* Not a SYN: options not read. */
	th[13] = ACK;
	CU_ASSERT_EQUAL(tcp_seg_parse(f, &pi, &sg), 0);
	CU_ASSERT_EQUAL(sg.wscale, -1);
	/* A window scale option of the wrong length: malformed, no scale. */
	th[13] = SYN;
	th[20 + sizeof(opts) - 2] = 4;
	CU_ASSERT_EQUAL(tcp_seg_parse(f, &pi, &sg), -EBADMSG);
	CU_ASSERT_EQUAL(sg.wscale, -1);
}

static CU_TestInfo tcp_tests[] = {
    {"client_closes", test_client_closes},
    {"upstream_closes", test_upstream_closes},
    {"simultaneous_fin", test_simultaneous_fin},
    {"rst", test_rst},
    {"reopen", test_reopen},
    {"odd_sequences", test_odd_sequences},
    {"timeout_select", test_timeout_select},
    {"expire_per_state", test_expire_per_state},
    {"win_rst_in_window", test_win_rst_in_window},
    {"win_rst_out_of_window", test_win_rst_out_of_window},
    {"win_fin", test_win_fin},
    {"win_moves", test_win_moves},
    {"win_scale", test_win_scale},
    {"win_handshake", test_win_handshake},
    {"win_blind_fin", test_win_blind_fin},
    {"win_real_close", test_win_real_close},
    {"win_ackless", test_win_ackless},
    {"win_resync", test_win_resync},
    {"win_time_wait_challenge", test_win_time_wait_challenge},
    {"seg_parse", test_seg_parse},
    {"mss_golden_v4", test_mss_golden_v4},
    {"mss_golden_v4_odd", test_mss_golden_v4_odd},
    {"mss_golden_v6", test_mss_golden_v6},
    {"mss_every_mtu", test_mss_every_mtu},
    {"mss_unchanged", test_mss_unchanged},
    {"mss_no_options", test_mss_no_options},
    {"mss_malformed", test_mss_malformed},
    {"mss_payload_untouched", test_mss_payload_untouched},
    {"mss_fuzz", test_mss_fuzz},
    CU_TEST_INFO_NULL,
};

UNIT_SUITE(tcp, "tcp", tcp_tests, tcp_suite_init, tcp_suite_cleanup);
