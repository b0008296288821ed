// SPDX-License-Identifier: BSD-2-Clause
/*
 * sd_notify(3) messages for the Type=notify unit (notify.h).  Formats and
 * sends; knows nothing of workers or counters (health.c composes STATUS=).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "notify.h"

/* sd_notify() returns > 0 when sent, 0 without NOTIFY_SOCKET, < 0 on error. */
static int notify__send(const char *msg)
{
	int err = sd_notify(0, msg);

	if (err < 0) {
		pr_debug("systemd: cannot send '%s': %s", msg, strerror(-err));
		return err;
	}
	return 0;
}

int notify__ready(const char *status)
{
	char msg[300];

	if (!status)
		return notify__send("READY=1");
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
	return notify__send(msg);
}

int notify__reloading(void)
{
	struct timespec ts;
	char msg[64];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ull +
			 (unsigned long long)ts.tv_nsec / 1000ull);
	return notify__send(msg);
}

int notify__stopping(void)
{
	return notify__send("STOPPING=1");
}

int notify__status(const char *fmt, ...)
{
	char msg[300];
	va_list ap;
	int n;

	n = snprintf(msg, sizeof(msg), "STATUS=");
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	return notify__send(msg);
}

uint64_t notify__watchdog_usec(void)
{
	uint64_t usec = 0;

	/* 0 = WATCHDOG_USEC unset or meant for another process (WATCHDOG_PID). */
	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return usec;
}

int notify__watchdog(void)
{
	return notify__send("WATCHDOG=1");
}
