/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * systemd notifications (sd_notify(3)) for the Type=notify unit.  Outside
 * systemd (no NOTIFY_SOCKET) every call is a no-op, so callers never check
 * for it.  Only the main thread calls these.
 */
#ifndef FERRY_NOTIFY_H
#define FERRY_NOTIFY_H

#include <stdint.h>

/* READY=1, with STATUS= when `status` is not NULL: start-up or a reload is complete. */
int notify__ready(const char *status);
/* RELOADING=1 with MONOTONIC_USEC=, as Type=notify-reload expects; READY=1 ends it. */
int notify__reloading(void);
/* STOPPING=1: the clean stop has begun. */
int notify__stopping(void);
/* STATUS=...: one line that `systemctl status` shows. */
int notify__status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The unit's WatchdogSec in microseconds (sd_watchdog_enabled), 0 when off. */
uint64_t notify__watchdog_usec(void);
/* WATCHDOG=1. */
int notify__watchdog(void);

#endif /* FERRY_NOTIFY_H */
