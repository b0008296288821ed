// SPDX-License-Identifier: BSD-2-Clause
/*
 * lib/link_stats.c: an interface's kernel counters by rtnetlink.  The
 * loopback interface exists in every network namespace: a datagram sent to
 * 127.0.0.1 is counted by lo as sent and as received.
 */
#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "link_stats.h"
#include "unit.h"

static void send_to_lo(int n)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	CU_ASSERT_FATAL(fd >= 0);
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int i = 0; i < n; i++)
		CU_ASSERT_EQUAL(sendto(fd, "x", 1, 0, (struct sockaddr *)&to, sizeof(to)), 1);
	close(fd);
}

static void test_loopback_counts(void)
{
	struct ferry_link_stats before, after;
	int lo = (int)if_nametoindex("lo");

	CU_ASSERT_FATAL(lo > 0);
	CU_ASSERT_EQUAL_FATAL(link_stats__get(lo, &before), 0);
	send_to_lo(5);
	CU_ASSERT_EQUAL_FATAL(link_stats__get(lo, &after), 0);
	/* Other tests may use lo at the same time: at least ours. */
	CU_ASSERT(after.tx_packets >= before.tx_packets + 5);
	CU_ASSERT(after.rx_packets >= before.rx_packets + 5);
	CU_ASSERT(after.rx_dropped >= before.rx_dropped);
}

static void test_no_such_interface(void)
{
	struct ferry_link_stats st;

	CU_ASSERT_EQUAL(link_stats__get(0, &st), -ENODEV);
	/* The highest index there is: no interface has it. */
	CU_ASSERT_EQUAL(link_stats__get(0x7fffffff, &st), -ENODEV);
}

static CU_TestInfo tests[] = {
	{ "loopback's counters grow with what is sent", test_loopback_counts },
	{ "a missing interface is -ENODEV", test_no_such_interface },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(link_stats, "link_stats", tests, NULL, NULL);
