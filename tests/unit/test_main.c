// SPDX-License-Identifier: BSD-2-Clause
/*
 * Runs every registered CUnit suite (or those named on the command line) and
 * ends with CUnit's summary and a plain "unit: N passed, N failed" line that
 * tests/run-all.sh adds up.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "log.h"
#include "unit.h"

#define MAX_SUITES 64

static const struct unit_suite *suites[MAX_SUITES];
static int nr_suites;

void unit_register(const struct unit_suite *suite)
{
	if (nr_suites < MAX_SUITES)
		suites[nr_suites++] = suite;
}

int unit_require_root(void)
{
	if (geteuid() == 0)
		return 0;
	CU_FAIL_FATAL("this test needs root");
	return -1;
}

static int wanted(const char *name, int argc, char **argv)
{
	if (argc < 2)
		return 1;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], name))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	unsigned int run, failed;

	log__init("unit");
	log__set_level(FERRY_LOG_WARN);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	for (int i = 0; i < nr_suites; i++) {
		const struct unit_suite *s = suites[i];
		CU_pSuite suite;

		if (!wanted(s->name, argc, argv))
			continue;
		suite = CU_add_suite(s->name, s->init, s->cleanup);
		if (!suite)
			return 2;
		for (CU_TestInfo *t = s->tests; t->pName; t++)
			CU_add_test(suite, t->pName, t->pTestFunc);
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	run = CU_get_number_of_tests_run();
	failed = CU_get_number_of_tests_failed() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	printf("unit: %u passed, %u failed\n", run - (failed > run ? run : failed), failed);
	return failed ? 1 : 0;
}
