// SPDX-License-Identifier: BSD-2-Clause
/*
 * lib/siphash.h against the reference SipHash-2-4 vectors (key 00..0f,
 * message 00..(n-1), from the SipHash paper's vectors.h), and the 1-3
 * variant the tables use for sensitivity to every key and message bit.
 */
#include <stdint.h>

#include "siphash.h"
#include "unit.h"

static const struct siphash_key ref_key = {
	.k0 = 0x0706050403020100ull,
	.k1 = 0x0f0e0d0c0b0a0908ull,
};

static void test_reference_vectors(void)
{
	uint64_t msg = 0x0706050403020100ull; /* bytes 00..07, little-endian */

	CU_ASSERT_EQUAL(siphash_words(&ref_key, NULL, 0, 2, 4), 0x726fdb47dd0e0e31ull);
	CU_ASSERT_EQUAL(siphash_words(&ref_key, &msg, 1, 2, 4), 0x93f5f5799a932462ull);
}

/* Flipping any one bit of the key or the message changes the hash. */
static void test_every_bit_counts(void)
{
	uint64_t w[3] = { 1, 2, 3 }, base = siphash13(&ref_key, w, 3);
	struct siphash_key k;

	for (int i = 0; i < 3; i++) {
		for (int bit = 0; bit < 64; bit++) {
			w[i] ^= 1ull << bit;
			CU_ASSERT_NOT_EQUAL(siphash13(&ref_key, w, 3), base);
			w[i] ^= 1ull << bit;
		}
	}
	for (int bit = 0; bit < 128; bit++) {
		k = ref_key;
		if (bit < 64)
			k.k0 ^= 1ull << bit;
		else
			k.k1 ^= 1ull << (bit - 64);
		CU_ASSERT_NOT_EQUAL(siphash13(&k, w, 3), base);
	}
}

static void test_random_keys_differ(void)
{
	struct siphash_key a, b;

	CU_ASSERT_EQUAL(siphash_key_random(&a), 0);
	CU_ASSERT_EQUAL(siphash_key_random(&b), 0);
	CU_ASSERT(a.k0 != b.k0 || a.k1 != b.k1);
}

static CU_TestInfo tests[] = {
	{ "reference SipHash-2-4 vectors", test_reference_vectors },
	{ "every key and message bit changes SipHash-1-3", test_every_bit_counts },
	{ "random keys differ", test_random_keys_differ },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(siphash, "siphash", tests, NULL, NULL);
