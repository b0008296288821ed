/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What ferryd's main loop tells systemd about the data path: a STATUS= line
 * with live counters after each publish, and WATCHDOG=1 pings while every
 * worker keeps looping.  A stuck worker stops the pings, so systemd (with
 * WatchdogSec= in the unit) kills and restarts ferryd.
 */
#ifndef FERRY_HEALTH_H
#define FERRY_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "ferry_shared.h"

struct ferry_daemon;

struct health {
	uint64_t watchdog_usec;        /* the unit's WatchdogSec, 0 = no pings */
	uint64_t next_ping_us;
	uint64_t loops[FERRY_MAX_QUEUES]; /* each worker's loop count at the last ping */
	bool stalled;                  /* a worker was stuck at the last check (logged once) */
	uint64_t last_status_us;
	uint64_t last_forwarded;
	/* The ferry_health record: each worker's loop count at the last write, and when it moved. */
	uint64_t pub_loops[FERRY_MAX_QUEUES];
	uint64_t loop_ns[FERRY_MAX_QUEUES];
};

void health__init(struct health *h, const struct ferry_daemon *d);
/* How long the main loop may sleep (ms) before health__watchdog() is due again. */
int health__timeout_ms(const struct health *h, int publish_ms);
/* STATUS=N flows, X pkt/s forwarded, Y drops (after the counters are published). */
void health__status(struct health *h, const struct ferry_daemon *d);
/*
 * Writes the pinned ferry_health record (ferry_shared.h) in STATE (enum
 * ferry_health_state): the time, each worker's last loop seen moving and the
 * interfaces with ferry_steer's program id on each.  Called at start, after
 * each publish (every INTERVAL_MS) and at stop.  0 or -errno.
 */
int health__publish(struct health *h, const struct ferry_daemon *d, uint32_t state,
		    uint32_t interval_ms);
/* The record health__publish() writes, in *rec. */
void health__record(struct health *h, const struct ferry_daemon *d, uint32_t state,
		    uint32_t interval_ms, struct ferry_health *rec);
/* WATCHDOG=1 when due, and only if every worker looped since the last ping. */
void health__watchdog(struct health *h, const struct ferry_daemon *d);

#endif /* FERRY_HEALTH_H */
