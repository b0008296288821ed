// SPDX-License-Identifier: BSD-2-Clause
/*
 * The STATUS= line and the watchdog pings (health.h).  Reads the workers'
 * published counters and loop stamps only; never touches a worker's rings,
 * sessions or services.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "daemon.h"
#include "health.h"
#include "log.h"
#include "notify.h"
#include "steer.h"

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000ull;
}

void health__init(struct health *h, const struct ferry_daemon *d)
{
	memset(h, 0, sizeof(*h));
	h->watchdog_usec = notify__watchdog_usec();
	h->last_status_us = mono_us();
	for (uint32_t i = 0; i < d->nr_workers && i < FERRY_MAX_QUEUES; i++)
		if (d->workers[i])
			h->loops[i] = worker__loops(d->workers[i]);
	for (uint32_t i = 0; i < FERRY_MAX_QUEUES; i++) {
		h->pub_loops[i] = h->loops[i];
		h->loop_ns[i] = h->last_status_us * 1000ull;
	}
	if (h->watchdog_usec)
		pr_info("systemd watchdog: %llu ms, pinged every %llu ms while all workers run",
			(unsigned long long)(h->watchdog_usec / 1000),
			(unsigned long long)(h->watchdog_usec / 2000));
	/* The first ping waits half an interval: each worker must show a loop first. */
	h->next_ping_us = h->last_status_us + h->watchdog_usec / 2;
}

int health__timeout_ms(const struct health *h, int publish_ms)
{
	uint64_t now, ms;

	if (!h->watchdog_usec)
		return publish_ms;
	now = mono_us();
	if (now >= h->next_ping_us)
		return 0;
	ms = (h->next_ping_us - now + 999) / 1000;
	return ms < (uint64_t)publish_ms ? (int)ms : publish_ms;
}

void health__status(struct health *h, const struct ferry_daemon *d)
{
	const size_t first_drop = offsetof(struct ferry_fwd_stats, drop_malformed) / sizeof(__u64);
	uint64_t forwarded = 0, drops = 0, sessions = 0, now = mono_us(), rate = 0;

	for (int f = 0; f < d->nr_flows; f++) {
		struct ferry_fwd_stats s = {};
		const __u64 *v = (const __u64 *)&s;

		for (uint32_t i = 0; i < d->nr_workers; i++)
			if (d->workers[i])
				worker__add_flow_stats(d->workers[i], (uint32_t)f, &s);
		forwarded += s.tx_packets + s.reply_packets;
		sessions += s.sessions_created - s.sessions_expired - s.sessions_early_dropped;
		for (size_t k = first_drop; k < first_drop + FERRY_DROP__MAX; k++)
			drops += v[k];
	}
	if (now > h->last_status_us && forwarded >= h->last_forwarded)
		rate = (forwarded - h->last_forwarded) * 1000000ull / (now - h->last_status_us);
	h->last_status_us = now;
	h->last_forwarded = forwarded;
	notify__status("%d flow%s, %llu session%s, %llu pkt/s forwarded, %llu drops",
		       d->nr_flows, d->nr_flows == 1 ? "" : "s", (unsigned long long)sessions,
		       sessions == 1 ? "" : "s", (unsigned long long)rate,
		       (unsigned long long)drops);
}

void health__watchdog(struct health *h, const struct ferry_daemon *d)
{
	uint64_t now;
	bool all_ran = true;

	if (!h->watchdog_usec)
		return;
	now = mono_us();
	if (now < h->next_ping_us)
		return;
	h->next_ping_us = now + h->watchdog_usec / 2;
	for (uint32_t i = 0; i < d->nr_workers && i < FERRY_MAX_QUEUES; i++) {
		uint64_t loops;

		if (!d->workers[i])
			continue;
		loops = worker__loops(d->workers[i]);
		if (loops == h->loops[i]) {
			if (!h->stalled)
				pr_err("worker %u: no loop for %llu ms; withholding the systemd "
				       "watchdog ping", i,
				       (unsigned long long)(h->watchdog_usec / 2000));
			all_ran = false;
		}
		h->loops[i] = loops;
	}
	h->stalled = !all_ran;
	if (all_ran)
		notify__watchdog();
}

void health__record(struct health *h, const struct ferry_daemon *d, uint32_t state,
		    uint32_t interval_ms, struct ferry_health *rec)
{
	uint64_t now = mono_us() * 1000ull;

	memset(rec, 0, sizeof(*rec));
	rec->published_ns = now;
	rec->interval_ns = (uint64_t)interval_ms * 1000000ull;
	rec->state = state;
	rec->pid = (uint32_t)getpid();
	/*
	 * A worker's loop count that moved since the last write stamps it now: a
	 * stuck worker's stamp ages, as the watchdog's pings stop (health__watchdog()).
	 */
	for (uint32_t i = 0; i < d->nr_workers && i < FERRY_MAX_QUEUES; i++) {
		uint64_t loops;

		if (!d->workers || !d->workers[i])
			continue;
		loops = worker__loops(d->workers[i]);
		if (loops != h->pub_loops[i])
			h->loop_ns[i] = now;
		h->pub_loops[i] = loops;
		rec->worker_loop_ns[i] = h->loop_ns[i];
		rec->nr_workers = i + 1;
	}
	for (int p = 0; p < d->nr_ports && p < FERRY_MAX_IFACES; p++) {
		struct ferry_health_port *hp = &rec->ports[p];

		snprintf(hp->ifname, sizeof(hp->ifname), "%s", d->ports[p].ifname);
		hp->ifindex = (__u32)d->ports[p].ifindex;
		hp->prog_id = d->steer ? steer__prog_id(d->steer, d->ports[p].ifname) : 0;
		rec->nr_ports = (uint32_t)p + 1;
	}
}

int health__publish(struct health *h, const struct ferry_daemon *d, uint32_t state,
		    uint32_t interval_ms)
{
	int fd = d->steer ? steer__health_fd(d->steer) : -1;
	struct ferry_health rec;
	__u32 key = 0;

	if (fd < 0)
		return -EINVAL;
	health__record(h, d, state, interval_ms, &rec);
	if (bpf_map_update_elem(fd, &key, &rec, BPF_ANY))
		return -errno;
	return 0;
}
