/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * CUnit glue: each test file declares its suite with UNIT_SUITE() and is
 * picked up by test_main.c without being listed anywhere else.
 */
#ifndef FERRY_UNIT_H
#define FERRY_UNIT_H

#include <CUnit/CUnit.h>

struct unit_suite {
	const char *name;
	CU_TestInfo *tests;
	int (*init)(void);
	int (*cleanup)(void);
};

void unit_register(const struct unit_suite *suite);

#define UNIT_SUITE(ident, sname, test_array, init_fn, cleanup_fn)                                  \
	static const struct unit_suite ident##_suite = {                                           \
		.name = sname,                                                                     \
		.tests = test_array,                                                               \
		.init = init_fn,                                                                   \
		.cleanup = cleanup_fn,                                                             \
	};                                                                                         \
	static void __attribute__((constructor)) ident##_register(void)                           \
	{                                                                                          \
		unit_register(&ident##_suite);                                                     \
	}

/* Tests that need root (BPF, namespaces) call this first: fail, never skip, in CI. */
int unit_require_root(void);

#endif /* FERRY_UNIT_H */
