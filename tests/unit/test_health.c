// SPDX-License-Identifier: BSD-2-Clause
/*
 * The systemd side of ferryd's main loop (daemon/health.c, daemon/notify.c)
 * against a notification socket of our own, and the data path's log rate
 * limiter (lib/log.c).  The watchdog must stop pinging as soon as one
 * worker stops looping, and resume when it loops again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "health.h"
#include "log.h"
#include "notify.h"
#include "unit.h"
#include "worker.h"

static int sock = -1;
static char sock_path[108];

static int notify_init(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(sock_path, sizeof(sock_path), "/tmp/ferry-unit-notify-%d", (int)getpid());
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	unlink(sock_path);
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sock < 0 || bind(sock, (struct sockaddr *)&sa, sizeof(sa)))
		return -1;
	setenv("NOTIFY_SOCKET", sock_path, 1);
	setenv("WATCHDOG_USEC", "1000000", 1);
	unsetenv("WATCHDOG_PID");
	return 0;
}

static int notify_cleanup(void)
{
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	if (sock >= 0)
		close(sock);
	unlink(sock_path);
	return 0;
}

/* The next message, or "" when none is waiting. */
static const char *next_msg(void)
{
	static char buf[512];
	ssize_t n = recv(sock, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void test_notify_messages(void)
{
	CU_ASSERT_EQUAL(notify__ready(NULL), 0);
	CU_ASSERT_STRING_EQUAL(next_msg(), "READY=1");
	CU_ASSERT_EQUAL(notify__ready("reloaded"), 0);
	CU_ASSERT_STRING_EQUAL(next_msg(), "READY=1\nSTATUS=reloaded");
	CU_ASSERT_EQUAL(notify__reloading(), 0);
	CU_ASSERT_NSTRING_EQUAL(next_msg(), "RELOADING=1\nMONOTONIC_USEC=", 27);
	CU_ASSERT_EQUAL(notify__status("%d flows", 3), 0);
	CU_ASSERT_STRING_EQUAL(next_msg(), "STATUS=3 flows");
	CU_ASSERT_EQUAL(notify__stopping(), 0);
	CU_ASSERT_STRING_EQUAL(next_msg(), "STOPPING=1");
	CU_ASSERT_EQUAL(notify__watchdog_usec(), 1000000);
	CU_ASSERT_STRING_EQUAL(next_msg(), "");
}

static void test_watchdog_needs_every_worker(void)
{
	struct ferry_daemon *d = calloc(1, sizeof(*d));
	struct ferry_worker *w[2] = { calloc(1, sizeof(**w)), calloc(1, sizeof(**w)) };
	struct health h;

	CU_ASSERT_FATAL(d && w[0] && w[1]);
	d->nr_workers = 2;
	d->workers = w;
	d->nr_flows = 1;
	health__init(&h, d);
	CU_ASSERT_EQUAL(h.watchdog_usec, 1000000);

	/* Not due yet: nothing, whatever the workers did. */
	w[0]->loops++;
	w[1]->loops++;
	health__watchdog(&h, d);
	CU_ASSERT_STRING_EQUAL(next_msg(), "");

	h.next_ping_us = 0;
	health__watchdog(&h, d);
	CU_ASSERT_STRING_EQUAL(next_msg(), "WATCHDOG=1");

	/* Worker 1 is stuck: no ping. */
	w[0]->loops++;
	h.next_ping_us = 0;
	health__watchdog(&h, d);
	CU_ASSERT_STRING_EQUAL(next_msg(), "");
	CU_ASSERT(h.stalled);

	/* Both loop again: pings resume. */
	w[0]->loops++;
	w[1]->loops++;
	h.next_ping_us = 0;
	health__watchdog(&h, d);
	CU_ASSERT_STRING_EQUAL(next_msg(), "WATCHDOG=1");
	CU_ASSERT(!h.stalled);

	/* STATUS: forwarded packets in both directions, drops of every reason. */
	w[0]->flow_stats[0].tx_packets = 7;
	w[1]->flow_stats[0].reply_packets = 3;
	w[0]->flow_stats[0].sessions_created = 5;
	w[0]->flow_stats[0].sessions_expired = 2;
	w[1]->flow_stats[0].drop_malformed = 1;
	w[1]->flow_stats[0].drop_no_frame = 2;
	health__status(&h, d);
	CU_ASSERT_NSTRING_EQUAL(next_msg(), "STATUS=1 flow, 3 sessions, ", 27);
	free(w[0]);
	free(w[1]);
	free(d);
}

/*
 * The ferry_health record ferryctl health reads: a worker whose loop count
 * stands still keeps the stamp of its last move while the record's own
 * time goes on, so its age shows; the interfaces are listed.
 */
static void test_health_record(void)
{
	struct ferry_daemon *d = calloc(1, sizeof(*d));
	struct ferry_worker *w[2] = { calloc(1, sizeof(**w)), calloc(1, sizeof(**w)) };
	struct ferry_health r1, r2;
	struct health h;

	CU_ASSERT_FATAL(d && w[0] && w[1]);
	d->nr_workers = 2;
	d->workers = w;
	d->nr_ports = 2;
	snprintf(d->ports[0].ifname, sizeof(d->ports[0].ifname), "up0");
	d->ports[0].ifindex = 7;
	snprintf(d->ports[1].ifname, sizeof(d->ports[1].ifname), "dn0");
	d->ports[1].ifindex = 9;
	health__init(&h, d);

	w[0]->loops++;
	w[1]->loops++;
	health__record(&h, d, FERRY_HEALTH_RUNNING, 1000, &r1);
	CU_ASSERT_EQUAL(r1.state, FERRY_HEALTH_RUNNING);
	CU_ASSERT_EQUAL(r1.pid, (uint32_t)getpid());
	CU_ASSERT_EQUAL(r1.interval_ns, 1000000000ull);
	CU_ASSERT_EQUAL(r1.nr_workers, 2);
	CU_ASSERT_EQUAL(r1.worker_loop_ns[0], r1.published_ns);
	CU_ASSERT_EQUAL(r1.worker_loop_ns[1], r1.published_ns);
	CU_ASSERT_EQUAL(r1.nr_ports, 2);
	CU_ASSERT_STRING_EQUAL(r1.ports[1].ifname, "dn0");
	CU_ASSERT_EQUAL(r1.ports[1].ifindex, 9);
	CU_ASSERT_EQUAL(r1.ports[0].prog_id, 0); /* no steer: nothing attached */

	/* Worker 1 is stuck: its stamp stays where it was. */
	usleep(2000);
	w[0]->loops++;
	health__record(&h, d, FERRY_HEALTH_STOPPING, 1000, &r2);
	CU_ASSERT(r2.published_ns > r1.published_ns);
	CU_ASSERT_EQUAL(r2.worker_loop_ns[0], r2.published_ns);
	CU_ASSERT_EQUAL(r2.worker_loop_ns[1], r1.published_ns);
	CU_ASSERT_EQUAL(r2.state, FERRY_HEALTH_STOPPING);
	free(w[0]);
	free(w[1]);
	free(d);
}

static void test_ratelimit_bucket(void)
{
	struct log_ratelimit rl = LOG_RATELIMIT_INIT;
	uint32_t missed = 99;
	int passed = 0;

	for (int i = 0; i < LOG_RATELIMIT_BURST + 5; i++)
		passed += log__ratelimit(&rl, &missed);
	CU_ASSERT_EQUAL(passed, LOG_RATELIMIT_BURST);
	CU_ASSERT_EQUAL(missed, 0);
	CU_ASSERT(!log__ratelimit(&rl, &missed));
	/* One token's worth of time later: one message, which reports the 6 suppressed. */
	rl.refill_ns -= LOG_RATELIMIT_INTERVAL_S * 1000000000ull / LOG_RATELIMIT_BURST;
	CU_ASSERT(log__ratelimit(&rl, &missed));
	CU_ASSERT_EQUAL(missed, 6);
	CU_ASSERT(!log__ratelimit(&rl, &missed));
	/* A long pause refills the bucket to its burst, no more. */
	rl.refill_ns -= 3600ull * 1000000000ull;
	passed = 0;
	for (int i = 0; i < LOG_RATELIMIT_BURST * 2; i++)
		passed += log__ratelimit(&rl, &missed);
	CU_ASSERT_EQUAL(passed, LOG_RATELIMIT_BURST);
}

static CU_TestInfo health_tests[] = {
	{ "notify_messages", test_notify_messages },
	{ "watchdog_needs_every_worker", test_watchdog_needs_every_worker },
	{ "health_record: a stuck worker's stamp ages", test_health_record },
	{ "ratelimit_bucket", test_ratelimit_bucket },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(health, "health", health_tests, notify_init, notify_cleanup);
