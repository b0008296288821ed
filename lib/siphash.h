/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * SipHash (Aumasson and Bernstein), the keyed hash for tables whose keys an
 * attacker chooses: the NAT session indexes and the per-source tables.  With
 * a random key drawn at start, an outside sender cannot predict which keys
 * share a bucket, so it cannot build long probe runs (hash flooding).  Linux
 * keys conntrack's hash with SipHash for the same reason.
 *
 * Inline over whole 64-bit words, because every key here is a fixed number
 * of words and the per-packet cost matters: the compiler unrolls the loop
 * for a constant count.  libsodium's crypto_shorthash is SipHash-2-4 over a
 * byte string through a call; the tables use SipHash-1-3 (one compression
 * round, three finalisation rounds: the kernel's hsiphash on 64-bit, Rust's
 * default hasher), which keeps the flooding resistance at about half the
 * cost.  siphash_words() takes the round counts so the unit tests can check
 * the implementation against the reference SipHash-2-4 vectors.
 *
 * Owns: the hash function and its key type.  Not: table layout or seeding
 * policy (each table draws its own key with siphash_key_random()).
 */
#ifndef FERRY_SIPHASH_H
#define FERRY_SIPHASH_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

struct siphash_key {
	uint64_t k0, k1;
};

static inline uint64_t siphash_rotl(uint64_t x, unsigned int r)
{
	return x << r | x >> (64 - r);
}

#define SIPHASH_ROUND(v0, v1, v2, v3)                                                              \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = siphash_rotl(v1, 13);                                                         \
		v1 ^= v0;                                                                          \
		v0 = siphash_rotl(v0, 32);                                                         \
		v2 += v3;                                                                          \
		v3 = siphash_rotl(v3, 16);                                                         \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = siphash_rotl(v3, 21);                                                         \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = siphash_rotl(v1, 17);                                                         \
		v1 ^= v2;                                                                          \
		v2 = siphash_rotl(v2, 32);                                                         \
	} while (0)

/*
 * SipHash-c-d of `n` little-endian 64-bit words (a message of 8n bytes).
 * `w` need not be aligned for callers that memcpy into a local array first.
 */
static inline uint64_t siphash_words(const struct siphash_key *key, const uint64_t *w,
				     size_t n, int c_rounds, int d_rounds)
{
	uint64_t v0 = key->k0 ^ 0x736f6d6570736575ull;
	uint64_t v1 = key->k1 ^ 0x646f72616e646f6dull;
	uint64_t v2 = key->k0 ^ 0x6c7967656e657261ull;
	uint64_t v3 = key->k1 ^ 0x7465646279746573ull;
	uint64_t b = (uint64_t)(n * 8) << 56;

	for (size_t i = 0; i < n; i++) {
		v3 ^= w[i];
		for (int r = 0; r < c_rounds; r++)
			SIPHASH_ROUND(v0, v1, v2, v3);
		v0 ^= w[i];
	}
	v3 ^= b;
	for (int r = 0; r < c_rounds; r++)
		SIPHASH_ROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	for (int r = 0; r < d_rounds; r++)
		SIPHASH_ROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/* The tables' hash: SipHash-1-3 of n words. */
static inline uint64_t siphash13(const struct siphash_key *key, const uint64_t *w, size_t n)
{
	return siphash_words(key, w, n, 1, 3);
}

/*
 * A fresh random key; 0 or -errno.  Without entropy (getrandom() failing,
 * which needs a kernel without a seeded pool) the caller refuses to start
 * rather than hashing with a guessable key.
 */
static inline int siphash_key_random(struct siphash_key *key)
{
	uint8_t buf[16];
	size_t got = 0;

	while (got < sizeof(buf)) {
		ssize_t n = getrandom(buf + got, sizeof(buf) - got, 0);

		if (n < 0)
			return -errno;
		got += (size_t)n;
	}
	memcpy(&key->k0, buf, 8);
	memcpy(&key->k1, buf + 8, 8);
	return 0;
}

#endif /* FERRY_SIPHASH_H */
