// SPDX-License-Identifier: BSD-2-Clause
/*
 * The log's lines: under the journal each carries its sd-daemon priority
 * (journalctl -p err must find ferry's errors), and libbpf's warnings are
 * debug, not info (the noise of a fallback that works).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "log.h"
#include "unit.h"

static void test_journal_prefix(void)
{
	char line[256];

	log__set_journal(true);
	log__format(line, sizeof(line), FERRY_LOG_ERR, "boom");
	CU_ASSERT_STRING_EQUAL(line, "<3>unit[error]: boom\n");
	log__format(line, sizeof(line), FERRY_LOG_WARN, "hm");
	CU_ASSERT_STRING_EQUAL(line, "<4>unit[warn]: hm\n");
	log__format(line, sizeof(line), FERRY_LOG_INFO, "fine");
	CU_ASSERT_STRING_EQUAL(line, "<6>unit[info]: fine\n");
	log__format(line, sizeof(line), FERRY_LOG_DEBUG, "detail");
	CU_ASSERT_STRING_EQUAL(line, "<7>unit[debug]: detail\n");
	/* A terminal or a file: a timestamp, no prefix. */
	log__set_journal(false);
	log__format(line, sizeof(line), FERRY_LOG_ERR, "boom");
	CU_ASSERT(line[0] >= '0' && line[0] <= '9' && line[2] == ':');
	CU_ASSERT_PTR_NOT_NULL(strstr(line, " unit[error]: boom\n"));
}

/* What libbpf logs through the hook while opening a missing object, at LEVEL. */
static char *libbpf_output(enum ferry_log_level level)
{
	enum ferry_log_level old = log__level();
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	struct bpf_object *obj;
	char *out = calloc(1, 4096);

	if (!tmp || saved < 0 || !out)
		return out;
	fflush(stderr);
	dup2(fileno(tmp), STDERR_FILENO);
	log__set_level(level);
	log__hook_libraries();
	obj = bpf_object__open_file("/nonexistent/ferry-test.bpf.o", NULL);
	bpf_object__close(libbpf_get_error(obj) ? NULL : obj);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	log__set_level(old);
	rewind(tmp);
	if (fread(out, 1, 4095, tmp) == 0)
		out[0] = '\0';
	fclose(tmp);
	return out;
}

static void test_libbpf_at_debug(void)
{
	char *out = libbpf_output(FERRY_LOG_INFO);

	/* libbpf warns that it cannot open the file: not at info. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	CU_ASSERT_STRING_EQUAL(out, "");
	free(out);
	out = libbpf_output(FERRY_LOG_DEBUG);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "unit[debug]: libbpf: "));
	free(out);
}

static CU_TestInfo log_tests[] = {
	{ "journal priority prefixes", test_journal_prefix },
	{ "libbpf's warnings at debug", test_libbpf_at_debug },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(log, "log", log_tests, NULL, NULL)
