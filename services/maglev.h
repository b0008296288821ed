/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
 * Software Network Load Balancer", NSDI 2016), for the lb service.
 *
 * A lookup table of prime size M maps a flow's hash to a backend.  Each
 * backend walks its own permutation of the table's slots, fixed by its key
 * alone (a start offset and a step from two hashes of the key; with M prime
 * every step visits every slot).  The backends take turns claiming the next
 * slot of their permutation that is still free until the table is full, so
 * each owns about M / N entries.  A backend's permutation does not depend on
 * the others, so removing one mostly hands its own entries to the rest and
 * leaves theirs alone; adding one takes about M / (N + 1) entries away from
 * the others.  That is Maglev's minimal disruption: close to, though not
 * exactly, the least that any balanced table could move.  The unit tests
 * measure it.
 *
 * Weights: in each round a backend takes `weight` turns instead of one, so
 * it owns about M * weight / (sum of weights) entries.  Backends take their
 * turns in the order of their keys, which makes the table a function of the
 * set of backends, not of the order they were configured in.
 *
 * Building costs O(M log M) expected slot probes and happens at start-up;
 * a lookup is one table read.
 */
#ifndef FERRY_MAGLEV_H
#define FERRY_MAGLEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Entries are uint8_t backend indexes; 0xff marks a free slot while building. */
#define MAGLEV_MAX_BACKENDS 254
#define MAGLEV_MIN_SIZE 7
#define MAGLEV_MAX_SIZE (1u << 22)
#define MAGLEV_MAX_WEIGHT 1000

struct maglev_backend {
	uint64_t key;    /* identifies the backend: a hash of its address and port */
	uint32_t weight; /* 1..MAGLEV_MAX_WEIGHT */
};

bool maglev_is_prime(uint32_t n);

/*
 * Fills table[0..size) with indexes into b[0..n).  `size` must be a prime in
 * MAGLEV_MIN_SIZE..MAGLEV_MAX_SIZE, n 1..MAGLEV_MAX_BACKENDS, every weight
 * 1..MAGLEV_MAX_WEIGHT and every key distinct.  Returns 0, -EINVAL or -ENOMEM.
 */
int maglev_build(uint8_t *table, uint32_t size, const struct maglev_backend *b, uint32_t n);

/* A 64-bit hash of `len` bytes; stable across runs and hosts (no random seed). */
uint64_t maglev_hash(const void *data, size_t len, uint64_t seed);

/* The table slot of a flow hash. */
static inline uint32_t maglev_slot(uint64_t hash, uint32_t size)
{
	return (uint32_t)(hash % size);
}

/*
 * The backend of `slot` when it is in `usable` (bit i: backend i; indexes
 * below 64), else that of the next slot, in table order and wrapping, whose
 * backend is: a fallback that leaves every slot of a usable backend as it
 * is, so only the unusable ones' flows move.  `usable` must name a backend
 * of the table; if it names none, table[slot] after one pass.
 */
static inline uint8_t maglev_pick_usable(const uint8_t *table, uint32_t size, uint32_t slot,
					 uint64_t usable)
{
	for (uint32_t n = 0, s = slot; n < size; n++) {
		if (table[s] < 64 && (usable >> table[s] & 1))
			return table[s];
		if (++s == size)
			s = 0;
	}
	return table[slot];
}

#endif /* FERRY_MAGLEV_H */
