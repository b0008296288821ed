// SPDX-License-Identifier: BSD-2-Clause
/*
 * Maglev table population (see maglev.h for the scheme and its properties).
 * Everything here runs at start-up, once per lb flow, never per packet.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "maglev.h"

#define MAGLEV_FREE 0xff

/* Seeds of the two hashes that place a backend's permutation. */
#define MAGLEV_SEED_OFFSET 0x6d61676c65766f66ull
#define MAGLEV_SEED_SKIP 0x736b697020202020ull

bool maglev_is_prime(uint32_t n)
{
	if (n < 2)
		return false;
	if (n % 2 == 0)
		return n == 2;
	for (uint32_t d = 3; (uint64_t)d * d <= n; d += 2)
		if (n % d == 0)
			return false;
	return true;
}

static inline uint64_t rotl64(uint64_t x, unsigned int r)
{
	return x << r | x >> (64 - r);
}

/* Every input bit must reach the low bits that pick a slot: mix thoroughly at the end. */
static inline uint64_t mix64(uint64_t h)
{
	h ^= h >> 31;
	h *= 0xd6e8feb86659fd93ull;
	h ^= h >> 32;
	h *= 0xd6e8feb86659fd93ull;
	h ^= h >> 32;
	return h;
}

uint64_t maglev_hash(const void *data, size_t len, uint64_t seed)
{
	const uint8_t *p = data;
	uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ull);

	for (; len >= 8; p += 8, len -= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		h = rotl64(h ^ (w * 0x9e3779b97f4a7c15ull), 27) * 0xa0761d6478bd642full;
	}
	if (len) {
		uint64_t w = 0;

		memcpy(&w, p, len);
		h = rotl64(h ^ (w * 0x9e3779b97f4a7c15ull), 27) * 0xa0761d6478bd642full;
	}
	return mix64(h);
}

/* A backend's walk through its permutation of the slots. */
struct maglev_walk {
	uint32_t pos;  /* the next slot it will try */
	uint32_t skip; /* 1..size-1: with size prime, it visits every slot */
	uint32_t weight;
	uint32_t index; /* into the caller's b[] */
};

static int walk_cmp(const void *a, const void *b, void *ctx)
{
	const struct maglev_backend *be = ctx;
	uint64_t ka = be[((const struct maglev_walk *)a)->index].key;
	uint64_t kb = be[((const struct maglev_walk *)b)->index].key;

	return ka < kb ? -1 : ka > kb;
}

int maglev_build(uint8_t *table, uint32_t size, const struct maglev_backend *b, uint32_t n)
{
	struct maglev_walk *walk;
	uint32_t filled = 0;

	if (size < MAGLEV_MIN_SIZE || size > MAGLEV_MAX_SIZE || !maglev_is_prime(size) || !n ||
	    n > MAGLEV_MAX_BACKENDS)
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		if (!b[i].weight || b[i].weight > MAGLEV_MAX_WEIGHT)
			return -EINVAL;
		/* Two backends with one key would walk the same permutation. */
		for (uint32_t j = 0; j < i; j++)
			if (b[i].key == b[j].key)
				return -EINVAL;
	}
	walk = calloc(n, sizeof(*walk));
	if (!walk)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t offset = maglev_hash(&b[i].key, 8, MAGLEV_SEED_OFFSET);
		uint64_t skip = maglev_hash(&b[i].key, 8, MAGLEV_SEED_SKIP);

		walk[i].pos = (uint32_t)(offset % size);
		walk[i].skip = (uint32_t)(skip % (size - 1)) + 1;
		walk[i].weight = b[i].weight;
		walk[i].index = i;
	}
	qsort_r(walk, n, sizeof(*walk), walk_cmp, (void *)b);

	memset(table, MAGLEV_FREE, size);
	while (filled < size) {
		for (uint32_t i = 0; i < n && filled < size; i++) {
			struct maglev_walk *wk = &walk[i];

			for (uint32_t t = 0; t < wk->weight && filled < size; t++) {
				/* Terminates: a free slot exists and the walk visits them all. */
				while (table[wk->pos] != MAGLEV_FREE)
					wk->pos = (wk->pos + wk->skip) % size;
				table[wk->pos] = (uint8_t)wk->index;
				wk->pos = (wk->pos + wk->skip) % size;
				filled++;
			}
		}
	}
	free(walk);
	return 0;
}
