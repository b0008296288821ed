// SPDX-License-Identifier: BSD-2-Clause
/*
 * The buffer pool's accounting: free + kernel_rx + kernel_tx + held == total
 * through every move a worker makes, and umem__check() catching a frame that
 * went missing.  Ring moves without a device are simulated by moving the
 * counters the way port__refill/rx/tx/complete do.
 */
#include <errno.h>
#include <stdlib.h>

#include "umem.h"
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

static CU_TestInfo umem_tests[] = {
	{ "pool alloc and free keep the invariant", test_pool_alloc_free },
	{ "pool exhaustion", test_pool_exhaustion },
	{ "check catches a lost or doubled frame", test_check_catches_a_lost_frame },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(umem, "umem", umem_tests, NULL, NULL)
