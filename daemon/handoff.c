// SPDX-License-Identifier: BSD-2-Clause
/*
 * Hand-off of misdirected replies to the worker that owns their session.
 *
 * Why it is needed: a session, and the NAT port it was given, belong to the
 * worker whose queue received the client's first packet (each worker takes
 * ports from its own slice of nat.ports).  The NIC, though, picks the queue
 * of the upstream's reply by its own hash, so with several queues a reply
 * often lands on another worker, which has no such session.  That worker
 * sees from the destination port (for an ICMP error, the quoted source
 * port) whose slice the port is in, and hands the packet to the owner.
 *
 * Why the frame is copied: every worker keeps its own UMEM, pool, session
 * table and counters, so nothing on the packet path is shared and nothing
 * takes a lock.  Passing the UMEM frame itself would make the owner
 * transmit, and the kernel complete, a frame of another worker's UMEM on
 * its sockets, and that cannot work: a socket may only carry frames of the
 * UMEM it is bound to, and the frame would have to travel back to its pool
 * through another ring.  So the receiving worker copies the frame's bytes
 * into a ring slot and frees its frame at once; the owner takes a frame of
 * its own pool and copies the bytes in.  Each UMEM's accounting therefore
 * holds per worker, at every moment.  Only the misdirected replies pay for
 * the copy: a client's packet is always handled where it arrives (it
 * creates or finds its session there), and so is a reply that arrives at
 * its owner, which a NIC that hashes both directions of a flow alike makes
 * the common case.
 *
 * The rings: one single-producer/single-consumer ring per ordered (from, to)
 * pair, so each ring has exactly one writer thread and one reader thread and
 * needs neither a lock nor a compare-and-swap.  head (written by the
 * producer) and tail (written by the consumer) are free-running counters on
 * cache lines of their own, so the two sides do not false-share; each side
 * also keeps a private copy of the other's counter and reloads it only when
 * the copy says full (producer) or empty (consumer).  The producer fills a
 * slot and then publishes it with a release store of head; the consumer
 * reads head with acquire, so it sees the slot's bytes, and gives the slot
 * back with a release store of tail after it has copied them out.  Slots
 * have a fixed size, one UMEM frame plus a header, so a push is one memcpy
 * and never allocates.
 *
 * Ordering: the packets of one ring come out in the order they went in.
 * Replies of one session that arrive on one queue therefore stay in order;
 * replies of one session spread over several queues were already unordered
 * between those queues before ferry saw them.  A reply handed off is handled
 * one loop iteration later than it would otherwise have been, and may pass
 * replies of the same session that the owner received itself in the
 * meantime, just as if the NIC had reordered them.
 *
 * Doorbells: a worker in interrupt mode sleeps in poll() on its sockets,
 * which say nothing about the rings.  Before it sleeps it sets its
 * `sleeping` flag and looks at its rings once more; a producer, after
 * pushing, looks at the flag (the two sides separated by full fences, so at
 * least one of them sees the other) and only if it is set writes the
 * worker's eventfd.  So a hand-off costs a syscall only when the owner was
 * asleep, at most once per producer loop iteration, never per packet.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "handoff.h"
#include "log.h"

#define CACHE_LINE 64

struct handoff_slot {
	uint64_t tag;
	uint32_t len;
	uint32_t pad;
	uint8_t data[];
};

struct handoff_ring {
	/* the producer's line */
	_Alignas(CACHE_LINE) _Atomic uint32_t head;
	uint32_t tail_seen;
	/* the consumer's line */
	_Alignas(CACHE_LINE) _Atomic uint32_t tail;
	uint32_t head_seen;
	/* read-only after creation */
	_Alignas(CACHE_LINE) uint32_t mask;
	uint32_t max_len;
	size_t stride;
	size_t size;
	uint8_t *slots;
};

struct handoff_doorbell {
	_Alignas(CACHE_LINE) atomic_int sleeping;
	int efd;
};

struct handoff {
	uint32_t nr_workers;
	struct handoff_ring **rings; /* [from * nr_workers + to], NULL where from == to */
	struct handoff_doorbell *bells;
};

static inline struct handoff_slot *slot_at(const struct handoff_ring *r, uint32_t pos)
{
	return (struct handoff_slot *)(r->slots + (size_t)(pos & r->mask) * r->stride);
}

int handoff_ring__create(struct handoff_ring **out, uint32_t nr_slots, uint32_t max_len)
{
	struct handoff_ring *r;
	int err;

	if (!nr_slots || nr_slots & (nr_slots - 1) || !max_len)
		return -EINVAL;
	r = aligned_alloc(CACHE_LINE, sizeof(*r));
	if (!r)
		return -ENOMEM;
	memset(r, 0, sizeof(*r));
	r->mask = nr_slots - 1;
	r->max_len = max_len;
	r->stride = (sizeof(struct handoff_slot) + max_len + CACHE_LINE - 1) &
		    ~(size_t)(CACHE_LINE - 1);
	r->size = r->stride * nr_slots;
	/* Populated now, like the UMEM: no page faults on the packet path. */
	r->slots = mmap(NULL, r->size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (r->slots == MAP_FAILED) {
		err = -errno;
		goto err_free_ring;
	}
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	*out = r;
	return 0;

err_free_ring:
	free(r);
	return err;
}

void handoff_ring__destroy(struct handoff_ring *r)
{
	if (!r)
		return;
	munmap(r->slots, r->size);
	free(r);
}

uint32_t handoff_ring__capacity(const struct handoff_ring *r)
{
	return r->mask + 1;
}

int handoff_ring__push(struct handoff_ring *r, const void *data, uint32_t len, uint64_t tag)
{
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	struct handoff_slot *s;

	if (len > r->max_len)
		return -EMSGSIZE;
	if (head - r->tail_seen > r->mask) {
		r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
		if (head - r->tail_seen > r->mask)
			return -ENOBUFS;
	}
	s = slot_at(r, head);
	s->tag = tag;
	s->len = len;
	memcpy(s->data, data, len);
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
	return 0;
}

const void *handoff_ring__peek(struct handoff_ring *r, uint32_t *len, uint64_t *tag)
{
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	const struct handoff_slot *s;

	if (tail == r->head_seen) {
		r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
		if (tail == r->head_seen)
			return NULL;
	}
	s = slot_at(r, tail);
	*len = s->len;
	*tag = s->tag;
	return s->data;
}

void handoff_ring__pop(struct handoff_ring *r)
{
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);

	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
}

bool handoff_ring__empty(struct handoff_ring *r)
{
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);

	r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
	return tail == r->head_seen;
}

uint32_t handoff__slots_for(uint32_t nr_workers, uint32_t batch)
{
	uint32_t share = HANDOFF_SLOTS_PER_WORKER / (nr_workers > 1 ? nr_workers - 1 : 1);
	uint32_t slots = HANDOFF_MIN_SLOTS, floor_slots = HANDOFF_MIN_SLOTS;

	/* The largest power of two within the share... */
	while (slots * 2 <= share)
		slots *= 2;
	/* ...but room for two full bursts, so one burst never finds the ring full. */
	while (floor_slots < 2 * batch)
		floor_slots *= 2;
	return slots > floor_slots ? slots : floor_slots;
}

int handoff__create(struct handoff **out, uint32_t nr_workers, uint32_t max_len, uint32_t batch)
{
	uint32_t slots = handoff__slots_for(nr_workers, batch);
	struct handoff *h;
	uint32_t i;
	int err;

	if (nr_workers < 2 || nr_workers > 64)
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->nr_workers = nr_workers;
	h->rings = calloc((size_t)nr_workers * nr_workers, sizeof(*h->rings));
	h->bells = aligned_alloc(CACHE_LINE, nr_workers * sizeof(*h->bells));
	if (!h->rings || !h->bells) {
		err = -ENOMEM;
		goto err_free;
	}
	for (i = 0; i < nr_workers; i++) {
		atomic_init(&h->bells[i].sleeping, 0);
		h->bells[i].efd = -1;
	}
	for (i = 0; i < nr_workers; i++) {
		h->bells[i].efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (h->bells[i].efd < 0) {
			err = -errno;
			pr_err("worker %u: cannot create the hand-off doorbell: %s", i,
			       strerror(errno));
			goto err_destroy;
		}
	}
	for (uint32_t from = 0; from < nr_workers; from++) {
		for (uint32_t to = 0; to < nr_workers; to++) {
			if (from == to)
				continue;
			err = handoff_ring__create(&h->rings[from * nr_workers + to], slots,
						   max_len);
			if (err) {
				pr_err("worker %u: cannot map the hand-off ring to worker %u "
				       "(%u slots of %u bytes): %s",
				       from, to, slots, max_len, strerror(-err));
				goto err_destroy;
			}
		}
	}
	pr_info("hand-off: %u rings of %u slots of %u bytes between %u workers",
		nr_workers * (nr_workers - 1), slots, max_len, nr_workers);
	*out = h;
	return 0;

err_destroy:
	handoff__destroy(h);
	return err;
err_free:
	free(h->rings);
	free(h->bells);
	free(h);
	return err;
}

void handoff__destroy(struct handoff *h)
{
	if (!h)
		return;
	for (uint32_t i = 0; i < h->nr_workers * h->nr_workers; i++)
		handoff_ring__destroy(h->rings[i]);
	for (uint32_t i = 0; i < h->nr_workers; i++)
		if (h->bells[i].efd >= 0)
			close(h->bells[i].efd);
	free(h->rings);
	free(h->bells);
	free(h);
}

struct handoff_ring *handoff__ring(const struct handoff *h, uint32_t from, uint32_t to)
{
	return h->rings[from * h->nr_workers + to];
}

int handoff__doorbell_fd(const struct handoff *h, uint32_t w)
{
	return h->bells[w].efd;
}

bool handoff__prepare_sleep(struct handoff *h, uint32_t w)
{
	struct handoff_doorbell *b = &h->bells[w];

	atomic_store_explicit(&b->sleeping, 1, memory_order_relaxed);
	/* Pairs with the fence in handoff__notify(): flag store before ring loads. */
	atomic_thread_fence(memory_order_seq_cst);
	for (uint32_t from = 0; from < h->nr_workers; from++) {
		struct handoff_ring *r = handoff__ring(h, from, w);

		if (r && !handoff_ring__empty(r)) {
			atomic_store_explicit(&b->sleeping, 0, memory_order_relaxed);
			return false;
		}
	}
	return true;
}

void handoff__awake(struct handoff *h, uint32_t w, bool rung)
{
	struct handoff_doorbell *b = &h->bells[w];
	uint64_t v;

	atomic_store_explicit(&b->sleeping, 0, memory_order_relaxed);
	/* Nonblocking: the count is only a wake-up, its value does not matter. */
	if (rung && read(b->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_debug_ratelimited("worker %u: reading the hand-off doorbell: %s", w,
				     strerror(errno));
}

void handoff__notify(struct handoff *h, uint32_t to)
{
	struct handoff_doorbell *b = &h->bells[to];
	uint64_t one = 1;

	/* Pairs with the fence in handoff__prepare_sleep(): ring stores before flag load. */
	atomic_thread_fence(memory_order_seq_cst);
	if (!atomic_load_explicit(&b->sleeping, memory_order_relaxed))
		return;
	/* Several producers may see the flag: only the one that clears it rings. */
	if (!atomic_exchange_explicit(&b->sleeping, 0, memory_order_relaxed))
		return;
	if (write(b->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_debug_ratelimited("worker %u: ringing the hand-off doorbell: %s", to,
				     strerror(errno));
}
