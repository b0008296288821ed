// SPDX-License-Identifier: BSD-2-Clause
/*
 * The worker owns its next hops (daemon/worker_nh.c): the services of one
 * worker share one next-hop cache, created by the first
 * fwd_core__nh_get() and destroyed by the last put, and each worker has its
 * own, whatever its id.  (They used to live in a static array in
 * services/fwd_core.c, indexed by worker id: a second worker with the same
 * id, as two test harnesses or a restarted worker have, was refused.)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fwd_core.h"
#include "nh_cache.h"
#include "unit.h"
#include "worker.h"

static struct ferry_worker *zeroed_worker(uint32_t id)
{
	struct ferry_worker *w = aligned_alloc(64, (sizeof(*w) + 63) & ~63ul);

	if (w) {
		memset(w, 0, sizeof(*w));
		w->id = id;
	}
	return w;
}

static void nh_core(struct fwd_core *c)
{
	memset(c, 0, sizeof(*c));
	c->nh_params.capacity = 64;
	c->nh_params.hold_frames = NH_HOLD_MAX;
	c->nh_params.hold_per_entry = NH_HOLD_MAX;
	c->nh_params.hold_ns = 1000000000ull;
	c->nh_params.retry_ns = 1000000000ull;
	c->nh_params.idle_ns = 30000000000ull;
}

/* Two workers with the same id (worker 0 of two daemons) each get next hops. */
static void test_same_id_workers(void)
{
	struct ferry_worker *a = zeroed_worker(0), *b = zeroed_worker(0);
	struct fwd_nh *na = NULL, *nb = NULL;
	struct fwd_core c;

	if (unit_require_root())
		goto out;
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	nh_core(&c);
	CU_ASSERT_EQUAL(fwd_core__nh_get(&c, a, &na), 0);
	CU_ASSERT_EQUAL(fwd_core__nh_get(&c, b, &nb), 0);
	if (na)
		fwd_core__nh_put(na);
	if (nb)
		fwd_core__nh_put(nb);
out:
	free(a);
	free(b);
}

/* The services of one worker share its cache; the last put destroys it. */
static void test_shared_by_services(void)
{
	struct ferry_worker *w = zeroed_worker(3);
	struct fwd_nh *n1 = NULL, *n2 = NULL;
	struct nh_cache *cache;
	struct fwd_core c;

	if (unit_require_root())
		goto out;
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	nh_core(&c);
	CU_ASSERT_EQUAL_FATAL(fwd_core__nh_get(&c, w, &n1), 0);
	cache = w->nexthop.cache;
	CU_ASSERT_PTR_NOT_NULL(cache);
	CU_ASSERT_PTR_NOT_NULL(w->nexthop.events);
	/* Another service's params do not make a second cache. */
	c.nh_params.capacity = 128;
	CU_ASSERT_EQUAL_FATAL(fwd_core__nh_get(&c, w, &n2), 0);
	CU_ASSERT_PTR_EQUAL(w->nexthop.cache, cache);
	CU_ASSERT_EQUAL(w->nexthop.users, 2);
	fwd_core__nh_put(n1);
	CU_ASSERT_PTR_EQUAL(w->nexthop.cache, cache);
	CU_ASSERT_EQUAL(w->nexthop.users, 1);
	fwd_core__nh_put(n2);
	CU_ASSERT_PTR_NULL(w->nexthop.cache);
	CU_ASSERT_PTR_NULL(w->nexthop.events);
	CU_ASSERT_EQUAL(w->nexthop.users, 0);
	/* And a later get makes a new one. */
	CU_ASSERT_EQUAL_FATAL(fwd_core__nh_get(&c, w, &n1), 0);
	CU_ASSERT_PTR_NOT_NULL(w->nexthop.cache);
	fwd_core__nh_put(n1);
out:
	free(w);
}

static CU_TestInfo worker_nh_tests[] = {
	{ "workers with the same id have their own next hops", test_same_id_workers },
	{ "a worker's services share one cache", test_shared_by_services },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(worker_nh, "worker_nh", worker_nh_tests, NULL, NULL)
