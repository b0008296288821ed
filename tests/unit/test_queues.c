// SPDX-License-Identifier: BSD-2-Clause
/*
 * queues against the interfaces' channels (lib/queues.h): auto takes their
 * count, a count that leaves queues unserved is refused naming the
 * interface unless unserved_queues says their packets go to the kernel.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "queues.h"
#include "unit.h"

static struct ferry_config cfg;
static struct cfg_errors errs;

/* The fake NICs: px-c and px-s with these channel counts, nothing else. */
static uint32_t chan_c, chan_s;

static int fake_channels(const char *ifname, uint32_t *count, void *ctx)
{
	if (!strcmp(ifname, "px-c"))
		*count = chan_c;
	else if (!strcmp(ifname, "px-s"))
		*count = chan_s;
	else
		return -ENODEV;
	return 0;
}

#define IFACES                                                                                     \
	"interfaces:\n"                                                                            \
	"  - name: px-c\n"                                                                         \
	"  - name: px-s\n"                                                                         \
	"flows:\n"                                                                                 \
	"  - name: f\n"                                                                            \
	"    match: {protocol: udp, destination: 198.18.1.1/32, port: 5000}\n"                      \
	"    services:\n"                                                                          \
	"      - forward: {upstream: 198.18.2.2:6000}\n"

/* Loads HEAD + IFACES with px-c/px-s at C/S channels and resolves: its return. */
static int resolve(const char *head, uint32_t c, uint32_t s)
{
	char yaml[1024];
	int err;

	config__free(&cfg);
	free(errs.capture);
	memset(&errs, 0, sizeof(errs));
	errs.capture = strdup("");
	errs.file = "t.yaml";
	snprintf(yaml, sizeof(yaml), "%s" IFACES, head);
	err = config__load_string(&cfg, "t.yaml", yaml, &errs);
	CU_ASSERT_EQUAL_FATAL(err, 0);
	chan_c = c;
	chan_s = s;
	return queues__resolve(&cfg, fake_channels, NULL, &errs);
}

static int has(const char *msg)
{
	if (errs.capture && strstr(errs.capture, msg))
		return 1;
	fprintf(stderr, "\n  expected: %s\n  captured:\n%s", msg,
		errs.capture ? errs.capture : "(nothing)\n");
	return 0;
}

static void test_auto(void)
{
	CU_ASSERT_EQUAL(resolve("", 1, 1), 0);
	CU_ASSERT_EQUAL(cfg.queues, 1);
	CU_ASSERT_EQUAL(resolve("", 4, 4), 0);
	CU_ASSERT_EQUAL(cfg.queues, 4);
	CU_ASSERT_EQUAL(resolve("queues: auto\n", 2, 2), 0);
	CU_ASSERT_EQUAL(cfg.queues, 2);
	CU_ASSERT_EQUAL(errs.count, 0);
	/* One count serves every interface: different counts need a choice. */
	CU_ASSERT_EQUAL(resolve("queues: auto\n", 2, 4), -EINVAL);
	CU_ASSERT_EQUAL(errs.count, 1);
	CU_ASSERT(has("t.yaml:1:9: queues: auto: interface 'px-s' has 4 channels but 'px-c' has 2"));
	CU_ASSERT_EQUAL(resolve("", 4, 2), -EINVAL);
	CU_ASSERT(has("t.yaml: queues: auto: interface 'px-c' has 4 channels but 'px-s' has 2"));
	CU_ASSERT_EQUAL(resolve("unserved_queues: kernel\n", 2, 4), 0);
	CU_ASSERT_EQUAL(cfg.queues, 2);
	CU_ASSERT_EQUAL(resolve("", 65, 65), -EINVAL);
	CU_ASSERT(has("t.yaml:2:5: queues: auto: interface 'px-c' has 65 channels, more than the "
		      "64 workers"));
	/* Each worker needs a slice of nat.ports. */
	CU_ASSERT_EQUAL(resolve("nat: {ports: 40000-40002}\n", 4, 4), -EINVAL);
	CU_ASSERT(has("t.yaml:1:14: nat.ports: range 40000-40002 has fewer ports than queues "
		      "(auto: 4)"));
	CU_ASSERT_EQUAL(resolve("nat: {ports: 40000-40003}\n", 4, 4), 0);
}

static void test_explicit(void)
{
	CU_ASSERT_EQUAL(resolve("queues: 2\n", 2, 2), 0);
	CU_ASSERT_EQUAL(cfg.queues, 2);
	/* Fewer than a NIC's channels: refused, naming it, at its line. */
	CU_ASSERT_EQUAL(resolve("queues: 1\n", 1, 2), -EINVAL);
	CU_ASSERT_EQUAL(errs.count, 1);
	CU_ASSERT(has("t.yaml:4:5: iface px-s: has 2 channels but queues is 1: the packets of "
		      "queues 1-1 would go to the kernel, not ferry"));
	CU_ASSERT_EQUAL(resolve("queues: 1\n", 2, 2), -EINVAL);
	CU_ASSERT_EQUAL(errs.count, 2);
	CU_ASSERT(has("t.yaml:3:5: iface px-c: has 2 channels"));
	/* ...unless the config says where their packets go. */
	CU_ASSERT_EQUAL(resolve("queues: 1\nunserved_queues: kernel\n", 2, 4), 0);
	CU_ASSERT_EQUAL(cfg.queues, 1);
	/* More than a NIC has: a worker would have no queue to bind there. */
	CU_ASSERT_EQUAL(resolve("queues: 3\nunserved_queues: kernel\n", 4, 2), -EINVAL);
	CU_ASSERT(has("t.yaml:5:5: iface px-s: has 2 channels, fewer than queues: 3"));
}

static void test_missing_iface(void)
{
	CU_ASSERT_EQUAL(resolve("", 1, 1), 0);
	strcpy(cfg.ifaces[1].name, "nope0");
	CU_ASSERT_EQUAL(queues__resolve(&cfg, fake_channels, NULL, &errs), -EINVAL);
	CU_ASSERT(has("t.yaml:3:5: iface nope0: no such interface"));
}

/* The real reader: lo has no channels to report, so sysfs's one RX queue. */
static void test_channels_lo(void)
{
	uint32_t n = 0;

	CU_ASSERT_EQUAL(queues__channels("lo", &n, NULL), 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(queues__channels("ferry-nope0", &n, NULL), -ENODEV);
}

static int cleanup(void)
{
	config__free(&cfg);
	free(errs.capture);
	return 0;
}

static CU_TestInfo queues_tests[] = {
	{ "auto: the interfaces' channel count", test_auto },
	{ "an explicit count against the channels", test_explicit },
	{ "a missing interface", test_missing_iface },
	{ "channels of lo", test_channels_lo },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(queues, "queues", queues_tests, NULL, cleanup)
