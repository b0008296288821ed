// SPDX-License-Identifier: BSD-2-Clause
/* The shared packet area of an `app` slot: layout and descriptor validation. */
#include <string.h>

#include "app_area.h"

static uint64_t align_up(uint64_t v)
{
	return (v + APP_ALIGN - 1) & ~(uint64_t)(APP_ALIGN - 1);
}

/* One queue's bytes: its struct, two rings of descriptors, its frames, its emit frames. */
static uint64_t queue_size(uint32_t ring_size)
{
	return align_up(sizeof(struct ferry_app_queue)) +
	       2 * align_up((uint64_t)ring_size * sizeof(struct ferry_app_desc)) +
	       2 * (uint64_t)ring_size * APP_FRAME_SIZE;
}

uint64_t app_area__size(uint32_t nr_queues, uint32_t ring_size)
{
	if (!nr_queues || nr_queues > FERRY_APP_MAX_QUEUES || !ring_size ||
	    ring_size > APP_COOKIE_IDX_MASK + 1 || (ring_size & (ring_size - 1)))
		return 0;
	return align_up(sizeof(struct ferry_app_area)) + nr_queues * queue_size(ring_size);
}

void app_area__queue_layout(uint32_t ring_size, uint32_t q, struct app_queue_layout *l)
{
	uint64_t dsz = align_up((uint64_t)ring_size * sizeof(struct ferry_app_desc));

	l->queue_off = align_up(sizeof(struct ferry_app_area)) + q * queue_size(ring_size);
	l->to_desc_off = l->queue_off + align_up(sizeof(struct ferry_app_queue));
	l->from_desc_off = l->to_desc_off + dsz;
	l->frames_off = l->from_desc_off + dsz;
	l->emit_frames_off = l->frames_off + (uint64_t)ring_size * APP_FRAME_SIZE;
}

void app_area__init(void *mem, const char *slot, uint32_t nr_queues, uint32_t ring_size)
{
	struct ferry_app_area *a = mem;

	a->magic = FERRY_APP_MAGIC;
	a->version = FERRY_APP_VERSION;
	a->nr_queues = nr_queues;
	a->size = app_area__size(nr_queues, ring_size);
	strncpy(a->slot, slot, sizeof(a->slot) - 1);
	for (uint32_t q = 0; q < nr_queues; q++) {
		struct app_queue_layout l;
		struct ferry_app_queue *qu;

		app_area__queue_layout(ring_size, q, &l);
		qu = (struct ferry_app_queue *)((char *)mem + l.queue_off);
		a->queue_off[q] = l.queue_off;
		qu->to_app.size = ring_size;
		qu->to_app.desc_off = l.to_desc_off;
		qu->from_app.size = ring_size;
		qu->from_app.desc_off = l.from_desc_off;
		qu->frames_off = l.frames_off;
		qu->frames = ring_size;
		qu->frame_size = APP_FRAME_SIZE;
		qu->emit_frames_off = l.emit_frames_off;
		qu->emit_frames = ring_size;
	}
}

bool app_area__desc_ok(const struct ferry_app_desc *d, const struct app_inflight *inflight,
		       uint32_t frames)
{
	const struct app_inflight *e;

	if (d->frame >= frames || (d->cookie & APP_COOKIE_IDX_MASK) != d->frame)
		return false;
	e = &inflight[d->frame];
	if (!e->live || d->cookie >> APP_COOKIE_IDX_BITS != (e->seq & (UINT32_MAX >> APP_COOKIE_IDX_BITS)))
		return false;
	if (d->verdict != FERRY_APP_PASS && d->verdict != FERRY_APP_DROP)
		return false;
	/* TCP: the NAT's sequence numbers and the peer's stream assume this length. */
	if (d->verdict == FERRY_APP_PASS && e->fixed_len && d->len != e->cap)
		return false;
	return d->len <= e->cap;
}

bool app_area__emit_ok(const struct ferry_app_desc *d, const struct app_inflight *inflight,
		       uint32_t frames)
{
	const struct app_inflight *e;

	if (d->verdict != FERRY_APP_EMIT || d->frame >= frames ||
	    (d->cookie & APP_COOKIE_IDX_MASK) != d->frame)
		return false;
	e = &inflight[d->frame];
	if (!e->live || d->cookie >> APP_COOKIE_IDX_BITS != (e->seq & (UINT32_MAX >> APP_COOKIE_IDX_BITS)))
		return false;
	/* Emit frames are as many as frames (the FROM_APP ring's size). */
	return d->emit_frame < frames && d->len <= APP_FRAME_SIZE && e->emits < FERRY_APP_MAX_EMITS;
}
