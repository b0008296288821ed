/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The shared packet area of an `app` slot (services/ferry_app.h): its
 * layout, and the validation of what an application writes into it.  Pure
 * functions, so that both are unit-tested without a process on the other
 * side (tests/unit/test_app_area.c).
 */
#ifndef FERRY_APP_AREA_H
#define FERRY_APP_AREA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry_app.h"

#define APP_FRAME_SIZE 2048
#define APP_ALIGN 64
/* A cookie is the frame's index in its low bits and the frame's use count above. */
#define APP_COOKIE_IDX_BITS 12
#define APP_COOKIE_IDX_MASK ((1u << APP_COOKIE_IDX_BITS) - 1)

/* Bytes the area of nr_queues queues of ring_size frames takes; 0 if out of range. */
uint64_t app_area__size(uint32_t nr_queues, uint32_t ring_size);
/*
 * Lays the area out in `mem` (app_area__size() bytes, zeroed): the header,
 * then per queue its struct ferry_app_queue, the two rings' descriptors
 * and its frames, each 64-byte aligned.
 */
void app_area__init(void *mem, const char *slot, uint32_t nr_queues, uint32_t ring_size);

/*
 * Where queue q's parts are, from the area's start: ferryd's own
 * arithmetic.  ferryd never reads an offset back from the area, which the
 * application can write.
 */
struct app_queue_layout {
	uint64_t queue_off, to_desc_off, from_desc_off, frames_off, emit_frames_off;
};

void app_area__queue_layout(uint32_t ring_size, uint32_t q, struct app_queue_layout *l);

/* ferryd's record of a frame it gave the application: its in-flight entry. */
struct app_inflight {
	bool live;
	uint32_t seq; /* uses of this frame, in the cookie above the index */
	uint32_t cap; /* what the payload may grow to */
	uint32_t emits; /* FERRY_APP_EMIT descriptors it carried */
	bool fixed_len; /* a PASS must keep the length, cap (TCP) */
};

static inline uint32_t app_cookie(uint32_t frame, uint32_t seq)
{
	return frame | seq << APP_COOKIE_IDX_BITS;
}

/*
 * Whether a FROM_APP descriptor (a copy the caller took: the application
 * may change shared memory at any time) names a frame ferryd has out, with
 * that frame's current cookie, a verdict, and a length within the cap
 * (a PASS of a fixed_len frame: the length it had).
 * `inflight` has `frames` entries.
 */
bool app_area__desc_ok(const struct ferry_app_desc *d, const struct app_inflight *inflight,
		       uint32_t frames);

/*
 * Whether a FERRY_APP_EMIT descriptor (the caller's copy) names a packet
 * ferryd has out with its current cookie (the reference), an emit frame in
 * range (the queue has as many as frames) and a length within a frame, and
 * the reference has fewer than FERRY_APP_MAX_EMITS emits so far.
 */
bool app_area__emit_ok(const struct ferry_app_desc *d, const struct app_inflight *inflight,
		       uint32_t frames);

#endif /* FERRY_APP_AREA_H */
