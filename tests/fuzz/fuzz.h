/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Shared bits of ferry's libFuzzer harnesses (tests/fuzz/fuzz_*.c).
 *
 * An invariant that fails must crash the process so that libFuzzer keeps
 * the input as a crash file: FUZZ_CHECK prints what failed and where, then
 * abort()s.  It is not assert(): it must stay on whatever NDEBUG says.
 */
#ifndef FERRY_FUZZ_H
#define FERRY_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__,       \
				#cond);                                                            \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* libFuzzer's entry points (the harnesses define them). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#endif /* FERRY_FUZZ_H */
