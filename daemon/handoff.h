/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Hand-off of packets between workers: one single-producer/single-consumer
 * ring of fixed-size slots per ordered (from, to) worker pair, plus a
 * doorbell per worker so a sleeping owner wakes up for what was handed to
 * it.  The design and its reasons are at the top of handoff.c.
 */
#ifndef FERRY_HANDOFF_H
#define FERRY_HANDOFF_H

#include <stdbool.h>
#include <stdint.h>

/* Slots per consuming worker, shared out over its incoming rings. */
#define HANDOFF_SLOTS_PER_WORKER 1024
#define HANDOFF_MIN_SLOTS 64

struct handoff_ring;
struct handoff;

/*
 * A ring of `nr_slots` (a power of two) slots of up to `max_len` bytes each,
 * plus a 64-bit tag the producer attaches to each entry.
 */
int handoff_ring__create(struct handoff_ring **out, uint32_t nr_slots, uint32_t max_len);
void handoff_ring__destroy(struct handoff_ring *r);
uint32_t handoff_ring__capacity(const struct handoff_ring *r);

/* Producer side.  Copies `len` bytes in; -ENOBUFS when full, -EMSGSIZE when too long. */
int handoff_ring__push(struct handoff_ring *r, const void *data, uint32_t len, uint64_t tag);

/*
 * Consumer side.  The oldest entry, or NULL when the ring is empty; it stays
 * in the ring (the bytes stay valid) until handoff_ring__pop().
 */
const void *handoff_ring__peek(struct handoff_ring *r, uint32_t *len, uint64_t *tag);
void handoff_ring__pop(struct handoff_ring *r);
/* Consumer side: whether anything is waiting, without caching. */
bool handoff_ring__empty(struct handoff_ring *r);

/*
 * The rings of `nr_workers` workers (2..64), each with slots for `max_len`
 * bytes, sized with handoff__slots_for().
 */
int handoff__create(struct handoff **out, uint32_t nr_workers, uint32_t max_len, uint32_t batch);
void handoff__destroy(struct handoff *h);
/* Slots per ring: HANDOFF_SLOTS_PER_WORKER shared by the nr_workers - 1 senders. */
uint32_t handoff__slots_for(uint32_t nr_workers, uint32_t batch);
/* The ring from worker `from` to worker `to`; NULL when from == to. */
struct handoff_ring *handoff__ring(const struct handoff *h, uint32_t from, uint32_t to);

/*
 * The doorbell of worker `w`: an eventfd that becomes readable when another
 * worker hands it something while it sleeps.  The worker polls it along
 * with its sockets.
 */
int handoff__doorbell_fd(const struct handoff *h, uint32_t w);
/*
 * Worker `w` is about to sleep.  Returns false when something is already
 * waiting in one of its rings (then it must not sleep); true when any later
 * hand-off will ring its doorbell.
 */
bool handoff__prepare_sleep(struct handoff *h, uint32_t w);
/* Worker `w` is awake again; `rung` when poll() reported its doorbell readable. */
void handoff__awake(struct handoff *h, uint32_t w, bool rung);
/* After handing packets to worker `to`: rings its doorbell if it sleeps. */
void handoff__notify(struct handoff *h, uint32_t to);

#endif /* FERRY_HANDOFF_H */
