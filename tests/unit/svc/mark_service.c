// SPDX-License-Identifier: BSD-2-Clause
/*
 * Good service objects, one per build (-DSVC_VARIANT_<x>, file mark_<x>.so;
 * see the Makefile), that differ only in their name and in the
 * byte they write: tests/unit/test_svc_loader.c loads several into one
 * loader and checks each runs its own code, not an object loaded before it.
 */
#include <ferry/ferry_service.h>

#if defined(SVC_VARIANT_a)
#define MARK_NAME "mark_a"
#define MARK_BYTE 0xa1
#elif defined(SVC_VARIANT_a2) /* mark_a rebuilt: same name, other code */
#define MARK_NAME "mark_a"
#define MARK_BYTE 0xa2
#elif defined(SVC_VARIANT_b)
#define MARK_NAME "mark_b"
#define MARK_BYTE 0xb2
#else
#error "build with -DSVC_VARIANT_a, -DSVC_VARIANT_a2 or -DSVC_VARIANT_b"
#endif

/* Writes MARK_BYTE over the first byte of each frame. */
static void mark_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	for (uint32_t i = 0; i < b->n; i++)
		if (b->pkts[i]->len)
			b->pkts[i]->data[0] = MARK_BYTE;
}

__attribute__((visibility("default"))) const struct ferry_service_ops ferry_service = {
	.name = MARK_NAME,
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.process = mark_process,
	.counter_names = { MARK_NAME },
};
