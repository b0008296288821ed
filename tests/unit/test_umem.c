// SPDX-License-Identifier: BSD-2-Clause
/*
 * The buffer pool's accounting: free + kernel_rx + kernel_tx + held == total
 * through every move a worker makes, and umem__check() catching a frame that
 * went missing.  Ring moves without a device are simulated by moving the
 * counters the way port__refill/rx/tx/complete do.
 */
#include <errno.h>
#include <stdlib.h>

#include "xdp_port.h"
#include "unit.h"

static void test_pool_alloc_free(void)
{
	struct umem *u = NULL;
	uint64_t addr[64];

	if (unit_require_root())
		return;
	CU_ASSERT_EQUAL_FATAL(umem__create(&u, 512, 2048, 64), 0);
	CU_ASSERT_EQUAL(u->nr_free, 512);
	CU_ASSERT_EQUAL(umem__check(u, "test"), 0);
	for (int i = 0; i < 64; i++) {
		CU_ASSERT_TRUE(umem__alloc(u, &addr[i]));
		CU_ASSERT_EQUAL(addr[i] % 2048, 0);
		CU_ASSERT_TRUE(addr[i] < 512 * 2048);
		for (int j = 0; j < i; j++)
			CU_ASSERT_NOT_EQUAL(addr[i], addr[j]);
	}
	CU_ASSERT_EQUAL(u->held, 64);
	CU_ASSERT_EQUAL(umem__check(u, "test"), 0);
	/* A frame handed back with a data offset returns as its frame base. */
	umem__free(u, addr[0] + 256);
	CU_ASSERT_TRUE(umem__alloc(u, &addr[0]));
	CU_ASSERT_EQUAL(addr[0] % 2048, 0);
	for (int i = 0; i < 64; i++)
		umem__free(u, addr[i]);
	CU_ASSERT_EQUAL(u->nr_free, 512);
	CU_ASSERT_EQUAL(u->held, 0);
	CU_ASSERT_EQUAL(umem__check(u, "test"), 0);
	CU_ASSERT_EQUAL(umem__destroy(u), 0);
}

static void test_pool_exhaustion(void)
{
	struct umem *u = NULL;
	uint64_t a;

	if (unit_require_root())
		return;
	CU_ASSERT_EQUAL_FATAL(umem__create(&u, 512, 4096, 64), 0);
	for (int i = 0; i < 512; i++)
		CU_ASSERT_TRUE(umem__alloc(u, &a));
	CU_ASSERT_FALSE(umem__alloc(u, &a));
	CU_ASSERT_EQUAL(umem__check(u, "test"), 0);
	u->held = 0; /* give everything back the cheap way for destroy */
	u->nr_free = 512;
	CU_ASSERT_EQUAL(umem__destroy(u), 0);
}

static void test_check_catches_a_lost_frame(void)
{
	struct umem *u = NULL;
	uint64_t a;

	if (unit_require_root())
		return;
	CU_ASSERT_EQUAL_FATAL(umem__create(&u, 512, 4096, 64), 0);
	CU_ASSERT_TRUE(umem__alloc(u, &a));
	/* A service "forgets" the frame: it is neither held nor free any more. */
	u->held--;
	CU_ASSERT_EQUAL(umem__check(u, "test"), -EFAULT);
	/* And one accounted twice. */
	u->held += 2;
	CU_ASSERT_EQUAL(umem__check(u, "test"), -EFAULT);
	u->held--;
	CU_ASSERT_EQUAL(umem__check(u, "test"), 0);
	umem__free(u, a);
	CU_ASSERT_EQUAL(umem__destroy(u), 0);
}

struct sent_log {
	uint32_t n;
	struct xdp_desc d[8];
};

static void log_sent(const struct xdp_desc *d, void *ctx)
{
	struct sent_log *l = ctx;

	if (l->n < 8)
		l->d[l->n] = *d;
	l->n++;
}

/*
 * A port without a socket (what the unit harness and the fuzzers send
 * through): port__tx() fills its TX ring as on a real port, a full ring is
 * counted, port__memory_tx() hands the descriptors over in order, and
 * port__complete() brings the frames home: the accounting holds throughout.
 */
static void test_memory_port(void)
{
	struct sent_log sent = { 0 };
	struct frame_ref f[6];
	struct umem *u = NULL;
	struct port *p = NULL;

	if (unit_require_root())
		return;
	CU_ASSERT_EQUAL_FATAL(umem__create(&u, 64, 2048, 64), 0);
	CU_ASSERT_EQUAL(port__create_memory(&p, u, "mem0", 7, 1, 6), -EINVAL);
	CU_ASSERT_EQUAL_FATAL(port__create_memory(&p, u, "mem0", 7, 1, 4), 0);
	for (int i = 0; i < 6; i++) {
		CU_ASSERT_TRUE_FATAL(umem__alloc(u, &f[i].addr));
		f[i].len = 60 + (uint32_t)i;
	}
	/* Four fill the ring; the next two find it full and the caller still holds them. */
	CU_ASSERT_EQUAL(port__tx(p, f, 4), 4);
	CU_ASSERT_EQUAL(port__tx(p, f + 4, 2), 0);
	CU_ASSERT_EQUAL(p->stats.tx_ring_full, 2);
	CU_ASSERT_EQUAL(p->stats.tx_packets, 4);
	CU_ASSERT_EQUAL(u->kernel_tx, 4);
	CU_ASSERT_EQUAL(u->held, 2);
	CU_ASSERT_EQUAL(umem__check(u, "test"), 0);
	CU_ASSERT_EQUAL(port__memory_tx_pending(p), 4);
	CU_ASSERT_EQUAL(port__memory_tx(p, log_sent, &sent), 4);
	CU_ASSERT_EQUAL(sent.n, 4);
	for (uint32_t i = 0; i < 4 && i < sent.n; i++) {
		CU_ASSERT_EQUAL(sent.d[i].addr, f[i].addr);
		CU_ASSERT_EQUAL(sent.d[i].len, f[i].len);
	}
	CU_ASSERT_EQUAL(port__memory_tx_pending(p), 0);
	port__complete(p);
	CU_ASSERT_EQUAL(u->kernel_tx, 0);
	CU_ASSERT_EQUAL(p->tx_in_flight, 0);
	CU_ASSERT_EQUAL(u->nr_free, 62);
	CU_ASSERT_EQUAL(umem__check(u, "test"), 0);
	/* The rest go on the emptied ring. */
	CU_ASSERT_EQUAL(port__tx(p, f + 4, 2), 2);
	CU_ASSERT_EQUAL(port__memory_tx(p, NULL, NULL), 2);
	port__complete(p);
	CU_ASSERT_EQUAL(u->nr_free, 64);
	CU_ASSERT_EQUAL(u->held, 0);
	CU_ASSERT_EQUAL(umem__check(u, "test"), 0);
	port__destroy(p, -1);
	CU_ASSERT_EQUAL(umem__destroy(u), 0);
}

/*
 * When an idle worker must come back to its ports on a timer: only while
 * the kernel has TX descriptors left to take, or while a FILL ring is under
 * half full and frames are out on TX, on whichever port (they share the
 * UMEM: RX on one port may wait for frames sent on another).  A FILL ring
 * under half full is topped up first when the pool has frames.  A frame
 * merely waiting for its completion is read back when the next packet
 * wakes the worker.
 */
static void test_ports_need_timer(void)
{
	uint32_t fill_prod = 0, fill_cons = 0, fill_flags = 0;
	uint64_t fill_addrs[4];
	struct frame_ref f[4];
	struct port *ports[2] = { NULL, NULL };
	struct port *a, *b;
	struct umem *u = NULL;

	if (unit_require_root())
		return;
	CU_ASSERT_EQUAL_FATAL(umem__create(&u, 8, 2048, 4), 0);
	CU_ASSERT_EQUAL_FATAL(port__create_memory(&ports[0], u, "rx0", 7, 1, 4), 0);
	CU_ASSERT_EQUAL_FATAL(port__create_memory(&ports[1], u, "tx0", 8, 2, 4), 0);
	a = ports[0];
	b = ports[1];
	/* Port a receives: a FILL ring, set up as libxdp sets up a producer ring. */
	a->fill = (struct xsk_ring_prod){
		.cached_cons = 4,
		.mask = 3,
		.size = 4,
		.producer = &fill_prod,
		.consumer = &fill_cons,
		.ring = fill_addrs,
		.flags = &fill_flags,
	};
	port__refill(a);
	CU_ASSERT_EQUAL(fill_prod, 4);
	CU_ASSERT_FALSE(ports__need_timer(ports, 2, u));
	/* Port b sends the other four frames; not taken by the kernel yet. */
	for (int i = 0; i < 4; i++) {
		CU_ASSERT_TRUE_FATAL(umem__alloc(u, &f[i].addr));
		f[i].len = 60;
	}
	CU_ASSERT_EQUAL(u->nr_free, 0);
	CU_ASSERT_EQUAL(port__tx(b, f, 4), 4);
	CU_ASSERT_TRUE(ports__need_timer(ports, 2, u));
	/* Taken; their completions wait, and a's FILL ring is full: no timer. */
	CU_ASSERT_EQUAL(port__memory_tx(b, NULL, NULL), 4);
	CU_ASSERT_FALSE(ports__need_timer(ports, 2, u));
	/*
	 * The kernel took three of a's four frames (received, say, and
	 * dropped): a's RX needs b's frames, and no packet on a would wake
	 * the worker once a has none.
	 */
	fill_cons = 3;
	CU_ASSERT_TRUE(ports__need_timer(ports, 2, u));
	/* b's completions read back: a's FILL ring is topped up from the pool, no timer. */
	port__complete(b);
	CU_ASSERT_EQUAL(u->kernel_tx, 0);
	CU_ASSERT_EQUAL(u->nr_free, 4);
	CU_ASSERT_FALSE(ports__need_timer(ports, 2, u));
	CU_ASSERT_EQUAL(fill_prod, 7);
	CU_ASSERT_EQUAL(u->nr_free, 1);
	a->fill = (struct xsk_ring_prod){ 0 };
	port__destroy(b, -1);
	port__destroy(a, -1);
	CU_ASSERT_EQUAL(umem__destroy(u), 0);
}

static CU_TestInfo umem_tests[] = {
	{ "pool alloc and free keep the invariant", test_pool_alloc_free },
	{ "pool exhaustion", test_pool_exhaustion },
	{ "check catches a lost or doubled frame", test_check_catches_a_lost_frame },
	{ "memory port: TX, full ring, completion", test_memory_port },
	{ "an idle worker's timer: TX not taken, or an RX short of frames", test_ports_need_timer },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(umem, "umem", umem_tests, NULL, NULL)
