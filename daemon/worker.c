// SPDX-License-Identifier: BSD-2-Clause
/*
 * A worker serves one RX queue on every interface: one UMEM, one AF_XDP
 * socket per interface on it, its own session table, netlink resolver and
 * next-hop cache.  Nothing on its packet path is shared with another worker,
 * so it takes no lock.  This file owns the worker's life (create, start,
 * stop, destroy), its loop, idle waits and ticks, and the counters the main
 * thread reads.  Its loop:
 *
 *   completions -> FILL refill -> packets other workers handed over -> RX
 *   burst per port (daemon/rx.c: classify each packet with the same rule
 *   match as the XDP program, hand a reply whose NAT port is another
 *   worker's to that worker, group per flow) -> run each flow's chain over
 *   that flow's packets as one batch (daemon/chain.c) -> TX bursts per
 *   egress port -> busy polls -> the services' tick() every 100 ms, or
 *   sooner at a deadline a service asked for (ferry_worker__wake_at(), e.g.
 *   pace), which an idle worker does not sleep past
 *
 * It must not parse or classify packets nor run chains itself (rx.c,
 * chain.c), and touches rings only through lib/xdp_port.h.
 *
 * Syscalls happen only when a ring asks for a wake-up (need_wakeup), when
 * the worker is idle (ppoll() in interrupt mode, the busy polls of busy-poll
 * ports), when it wakes a sleeping worker it handed packets to, and when a
 * new session needs a next hop.  In spin mode it never sleeps.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "daemon.h"
#include "worker.h"
#include "ferry_match.h"
#include "caps.h"
#include "handoff.h"
#include "log.h"
#include "nat.h"
#include "nexthop.h"
#include "offload.h"
#include "sessions.h"
#include "steer.h"
#include "xdp_port.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

struct ferry_fwd_stats *ferry_worker__flow_stats(struct ferry_worker *w, uint32_t flow_id)
{
	return &w->flow_stats[flow_id];
}

int worker__cpu_slot(const struct ferry_worker *w)
{
	return (int)w->id;
}

void worker__add_flow_stats(const struct ferry_worker *w, uint32_t flow_id,
			    struct ferry_fwd_stats *sum)
{
	const __u64 *src = (const __u64 *)&w->flow_stats[flow_id];
	__u64 *dst = (__u64 *)sum;

	for (size_t i = 0; i < sizeof(*sum) / sizeof(__u64); i++)
		dst[i] += src[i];
}

_Static_assert(FERRY_SERVICE_COUNTERS == FERRY_SVC_COUNTERS,
	       "a service's counters must fit struct ferry_svc_stats");

void worker__add_svc_stats(const struct ferry_worker *w, uint32_t flow_id, int pos,
			   struct ferry_svc_stats *sum)
{
	const struct flow_chain *ch = &w->d->flows[flow_id];
	const struct ferry_svc_stats *st = &w->svc_stats[flow_id][pos];
	uint64_t own[FERRY_SERVICE_COUNTERS] = { 0 };

	sum->packets_in += st->packets_in;
	sum->bytes_in += st->bytes_in;
	sum->passed += st->passed;
	sum->sent += st->sent;
	sum->dropped += st->dropped;
	sum->held += st->held;
	sum->emitted += st->emitted;
	/* The service reads its worker state's counters while the worker writes them, like ours. */
	if (ch->ops[pos]->stats)
		ch->ops[pos]->stats(ch->conf[pos], w->svc_state[flow_id][pos], own);
	for (int i = 0; i < FERRY_SERVICE_COUNTERS; i++)
		sum->counters[i] += own[i];
}

static void session_expired(struct nat_session *s, void *ctx)
{
	struct ferry_worker *w = ctx;

	w->flow_stats[s->flow_id].sessions_expired++;
}

static void session_early_dropped(struct nat_session *s, void *ctx)
{
	struct ferry_worker *w = ctx;

	w->flow_stats[s->flow_id].sessions_early_dropped++;
}

/* Also run early for a ferry_worker__wake_at() deadline; services re-arm theirs. */
static void tick_services(struct ferry_worker *w)
{
	struct ferry_daemon *d = w->d;

	w->wake_ns = 0;
	w->poll_ns = 0;
	w->nr_waits = 0;
	for (int f = 0; f < d->nr_flows; f++) {
		const struct flow_chain *ch = &d->flows[f];

		for (int s = 0; s < ch->nr; s++)
			if (ch->ops[s]->tick)
				ch->ops[s]->tick(ch->conf[s], w->svc_state[f][s], w);
	}
}

static void tick(struct ferry_worker *w)
{
	struct ferry_daemon *d = w->d;

	tick_services(w);
	offload__tick(w);
	nat_table__expire(w->nat, w->now_ns, (uint64_t)d->cfg.nat.udp_timeout_s * 1000000000ull,
			  EXPIRE_BUDGET, session_expired, w);
}

/* How long the worker may sleep, at most max_ns: never past a service's deadline. */
static uint64_t sleep_budget(const struct ferry_worker *w, uint64_t max_ns)
{
	uint64_t now;

	if (!w->wake_ns)
		return max_ns;
	now = now_ns();
	if (w->wake_ns <= now)
		return 0;
	return w->wake_ns - now < max_ns ? w->wake_ns - now : max_ns;
}

/*
 * Empties a ferry_worker__wait_fd() eventfd: a read that never blocks,
 * whatever O_NONBLOCK says (the application shares the file's flags and
 * may clear it, and may empty the eventfd itself between our poll and read).
 */
static void wait_fd_drain(int fd)
{
	uint64_t v;
	struct iovec iov = { .iov_base = &v, .iov_len = sizeof(v) };

	/*
	 * EAGAIN: the application emptied it first; nothing is lost either way.
	 * (The if only satisfies _FORTIFY_SOURCE's warn_unused_result.)
	 */
	if (preadv2(fd, &iov, 1, -1, RWF_NOWAIT) < 0)
		return;
}

/*
 * The services' wait descriptors, armed (each asks its other side for a
 * wake-up and looks once more) into fds; false when one has work already.
 */
static bool arm_waits(struct ferry_worker *w, struct pollfd *fds)
{
	for (int i = 0; i < w->nr_waits; i++) {
		if (w->waits[i].arm && !w->waits[i].arm(w->waits[i].ctx)) {
			/* Work is waiting: tick the services now, not after a sleep. */
			w->wake_ns = 1;
			return false;
		}
		fds[i].fd = w->waits[i].fd;
		fds[i].events = POLLIN;
		fds[i].revents = 0;
	}
	return true;
}

void worker__idle_wait(struct ferry_worker *w)
{
	/* The sockets, the park and control eventfds, the doorbell, the services' waits. */
	struct pollfd fds[CFG_MAX_IFACES + 3 + WORKER_MAX_WAITS];
	int nfds = w->nr_ports, nr_waits = w->nr_waits, doorbell = -1, snap = -1;
	bool tx_busy;
	uint64_t timeout_ns;
	struct timespec ts;

	for (int i = 0; i < w->nr_ports; i++) {
		fds[i].fd = xsk_socket__fd(w->ports[i]->xsk);
		fds[i].events = POLLIN;
		fds[i].revents = 0;
	}
	tx_busy = ports__need_timer(w->ports, w->nr_ports, w->umem);
	/* A reload must not wait out a 100 ms sleep to park this worker. */
	if (w->d->park_fd >= 0) {
		fds[nfds].fd = w->d->park_fd;
		fds[nfds].events = POLLIN;
		fds[nfds].revents = 0;
		nfds++;
	}
	/* Nor the control socket: a listing's request, an app slot's (de)attach. */
	if (atomic_load_explicit(&w->control_fd, memory_order_relaxed) >= 0) {
		snap = nfds;
		fds[nfds].fd = atomic_load_explicit(&w->control_fd, memory_order_relaxed);
		fds[nfds].events = POLLIN;
		fds[nfds].revents = 0;
		nfds++;
	}
	if (w->handoff) {
		/* The sockets say nothing about our rings: their doorbell does. */
		if (!handoff__prepare_sleep(w->handoff, w->id))
			return;
		doorbell = nfds;
		fds[nfds].fd = handoff__doorbell_fd(w->handoff, w->id);
		fds[nfds].events = POLLIN;
		fds[nfds].revents = 0;
		nfds++;
	}
	/* Last: after the handoff's doorbell, whose sleep is prepared already. */
	if (nr_waits && !arm_waits(w, fds + nfds)) {
		if (w->handoff)
			handoff__awake(w->handoff, w->id, false);
		return;
	}
	/*
	 * TX the kernel has not taken, or an RX short of frames that are out
	 * on TX (any port's: they share the UMEM): back within 1 ms.  Not
	 * merely because frames are in flight, as after every packet sent:
	 * the next packet wakes the worker and it reads the completions
	 * first, and a timer due sooner than the kernel's own costs each
	 * sleep its arming and each wake-up its cancelling (measured on the
	 * benchmark's VM: about 10 us each, on every ping of an idle
	 * ping-pong).
	 */
	timeout_ns = (tx_busy ? 1 : 100) * 1000000ull;
	/* Nor past a service's deadline: ppoll() for pacing finer than 1 ms. */
	timeout_ns = sleep_budget(w, timeout_ns);
	ts.tv_sec = (time_t)(timeout_ns / 1000000000ull);
	ts.tv_nsec = (long)(timeout_ns % 1000000000ull);
	ppoll(fds, (nfds_t)(nfds + nr_waits), &ts, NULL);
	if (w->handoff)
		handoff__awake(w->handoff, w->id, fds[doorbell].revents & POLLIN);
	/*
	 * The control socket's doorbell is emptied here too, not only when a
	 * listing is served: the main thread publishes snap_req before it
	 * writes, so a busy worker may serve the request (its read finding
	 * nothing) before the write lands, and a doorbell left full would end
	 * every idle wait at once.  A request pending is still served at the
	 * loop's top, as is a tick requested (worker__control_requests()).
	 * ferryd's own eventfd, EFD_NONBLOCK: a plain read never blocks.
	 */
	if (snap >= 0 && (fds[snap].revents & POLLIN)) {
		uint64_t v;

		if (read(fds[snap].fd, &v, sizeof(v)) < 0) {
			/* EAGAIN: served and emptied meanwhile; nothing is lost either way. */
		}
	}
	for (int i = nfds; i < nfds + nr_waits; i++) {
		if (!fds[i].revents)
			continue;
		if (fds[i].revents & POLLIN)
			wait_fd_drain(fds[i].fd);
		/* The services' tick at once: it takes what the other side produced. */
		w->wake_ns = 1;
	}
}

/*
 * coalesce_usecs: the rings just ran dry after a loop that received a
 * small burst, so packets are trickling in.  Waking at the next of them
 * (worker__idle_wait()) would run the loop, its syscalls and two context switches
 * for a packet or two; sleeping a fixed short while lets the kernel gather
 * a batch first, as a NIC's adaptive interrupt coalescing does.  Only after
 * small bursts: the first packet after a quiet spell is taken at once, and
 * under load, when the kernel hands over batches of its own, a fixed nap
 * would only leave the CPU idle (measured: 15% off the peak).
 */
static void nap(struct ferry_worker *w)
{
	/* Never past a service's deadline (pace): the nap is shorter then. */
	uint64_t ns = sleep_budget(w, w->coalesce_ns);
	struct timespec ts;

	if (!ns)
		return;
	ts.tv_sec = 0;
	ts.tv_nsec = (long)ns;
	clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
}

void worker__sleep(struct ferry_worker *w)
{
	/*
	 * A service waits on another process (an app slot's application),
	 * which is usually pinned like ferryd: this CPU, this SCHED_FIFO
	 * priority.  One sched_yield() runs it now, and it answers while the
	 * worker has not asked for a wake-up: neither side writes the other's
	 * eventfd or pipe, and the worker does not go through ppoll(), a wake-up
	 * and a read of the eventfd to see the answer.  Once per sleep: an
	 * application elsewhere, slower or at a lower priority is slept on.
	 */
	if (w->nr_waits && !w->yielded) {
		w->yielded = true;
		sched_yield();
		/* The services' tick at once: it takes what the application answered. */
		w->wake_ns = 1;
		/*
		 * The yield was this burst's pause: the application's round trip
		 * gathers packets as a nap would, and a nap after its answer would
		 * only delay the next packet (a ping-pong's reply).
		 */
		w->small_bursts = false;
		return;
	}
	w->yielded = false;
	/*
	 * A service waiting on another process (an app slot's application) is
	 * answered by that process's wake-up, not by the kernel's batching: a
	 * nap would add itself to every round trip through it (measured: 50 us
	 * each way with coalesce_usecs: 50, the app path's idle ping-pong p50
	 * 362 us against 188 us through a socket relay).
	 */
	if (w->coalesce_ns && w->small_bursts && !w->nr_waits)
		nap(w);
	else
		worker__idle_wait(w);
	w->small_bursts = false;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/*
 * The reload quiescent point: between loop iterations no packet is in a
 * chain run and no TX queue is pending, so the main thread may swap the
 * flows and rules and run service hooks for this worker while it waits
 * here (see daemon/reload.c).  Never taken on the packet path itself.
 */
static void park(struct ferry_worker *w)
{
	atomic_store_explicit(&w->parked, 1, memory_order_release);
	while (atomic_load_explicit(&w->d->park, memory_order_acquire) && !w->stop)
		usleep(50);
	atomic_store_explicit(&w->parked, 0, memory_order_release);
	/*
	 * A reload may have destroyed the services that registered wait
	 * descriptors, and closed those: forget them; a tick at once lets
	 * the services there now ask again.
	 */
	w->nr_waits = 0;
	w->poll_ns = 0;
	w->wake_ns = 1;
}

void worker__control_requests(struct ferry_worker *w)
{
	/* Between two bursts: a listing's chunk never meets a half-updated table. */
	if (atomic_load_explicit(&w->snap_req, memory_order_relaxed))
		sessions__serve(w);
	/*
	 * An app slot's new generation: until every worker has taken it up at
	 * a tick, ferryd keeps the last application's area and refuses the
	 * slot's next one (-EAGAIN), and an idle worker ticks every 100 ms.
	 * Acquire: the generation was stored before the request.
	 */
	if (atomic_load_explicit(&w->tick_req, memory_order_relaxed) &&
	    atomic_exchange_explicit(&w->tick_req, false, memory_order_acquire))
		ferry_worker__wake_at(w, 1);
}

static void *worker__run(void *arg)
{
	struct ferry_worker *w = arg;
	bool rx_drained[CFG_MAX_IFACES];
	uint32_t rx;
	int err;

	/* Created with the main thread's start-up capabilities: keep only what the loop needs. */
	err = caps__limit_thread(CAPS_WORKER);
	if (err)
		pr_warn("worker %u: cannot drop capabilities: %s", w->id, strerror(-err));
	while (!w->stop) {
		bool busy = false;

		if (atomic_load_explicit(&w->d->park, memory_order_acquire))
			park(w);

		__atomic_store_n(&w->loops, w->loops + 1, __ATOMIC_RELAXED);
		w->now_ns = now_ns();
		worker__control_requests(w);
		for (int i = 0; i < w->nr_ports; i++) {
			port__complete(w->ports[i]);
			port__refill(w->ports[i]);
		}
		if (w->handoff && worker__take_handoffs(w))
			busy = true;
		rx = 0;
		for (int i = 0; i < w->nr_ports; i++) {
			uint32_t n = worker__rx(w, i);

			rx_drained[i] = n < w->batch;
			if (n) {
				busy = true;
				rx += n;
			}
		}
		worker__flush_tx(w);
		offload__flush(w);
		if (w->handoff_notify)
			worker__notify_owners(w);
		/* Busy-polled queues are run from here, busy or not: nothing else runs them. */
		for (int i = 0; i < w->nr_ports; i++)
			if (w->ports[i]->poll_mode == PORT_POLL_BUSY)
				port__busy_poll(w->ports[i], rx_drained[i]);
		if (w->now_ns >= w->next_tick_ns) {
			tick(w);
			w->next_tick_ns = w->now_ns + TICK_NS;
		} else if ((w->wake_ns && w->now_ns >= w->wake_ns) ||
			   (w->poll_ns && w->now_ns >= w->poll_ns)) {
			tick_services(w);
		}
		if (busy) {
			/* Bursts of a batch or more: the kernel batches for us already. */
			w->small_bursts = rx && rx < w->batch / 2;
			w->yielded = false;
			continue;
		}
		/* The most active of the ports' modes decides whether to sleep. */
		if (w->poll_mode == PORT_POLL_INTERRUPT) {
			worker__sleep(w);
		} else if (w->poll_mode == PORT_POLL_SPIN) {
			cpu_relax();
		}
	}
	return NULL;
}

/* The CPU must exist and be one ferryd may run on (cgroups, taskset). */
static int check_cpu(const struct ferry_worker *w)
{
	cpu_set_t allowed;

	if (sched_getaffinity(0, sizeof(allowed), &allowed)) {
		int err = -errno;

		pr_err("worker %u: cannot read ferryd's CPU affinity: %s", w->id, strerror(-err));
		return err;
	}
	if (!CPU_ISSET(w->cpu, &allowed)) {
		pr_err("worker %u: cannot pin to CPU %d: it is offline, absent, or not allowed for "
		       "ferryd (config key cpus)",
		       w->id, w->cpu);
		return -EINVAL;
	}
	return 0;
}

int worker__create(struct ferry_worker **out, struct ferry_daemon *d, uint32_t id)
{
	const struct ferry_config *cfg = &d->cfg;
	struct ferry_worker *w;
	uint16_t lo, hi;
	int err;

	w = aligned_alloc(64, (sizeof(*w) + 63) & ~63ul);
	if (!w)
		return -ENOMEM;
	memset(w, 0, sizeof(*w));
	w->id = id;
	atomic_store(&w->control_fd, -1);
	w->queue = id;
	w->d = d;
	w->batch = cfg->umem.batch < WORKER_MAX_BATCH ? cfg->umem.batch : WORKER_MAX_BATCH;
	w->coalesce_ns = (uint64_t)cfg->coalesce_usecs * 1000;
	w->handoff = d->handoff;
	w->cpu = cfg->nr_cpus ? cfg->cpus[id % (uint32_t)cfg->nr_cpus] : -1;
	/* Before any worker starts: a bad CPU fails the start-up cleanly. */
	if (w->cpu >= 0) {
		err = check_cpu(w);
		if (err)
			goto err_free;
	}

	/*
	 * Each worker allocates NAT ports from its own slice: no collisions, no
	 * locks, and a reply's NAT port names the worker that owns its session.
	 */
	worker__nat_slice(d, id, &lo, &hi);
	w->nat = nat_table__create(cfg->nat.max_sessions / d->nr_workers ?: 1, lo, hi);
	if (!w->nat) {
		/* ENOMEM, or no entropy for the table's hash key (getrandom()). */
		err = -errno;
		pr_err("worker %u: cannot create the session table: %s", id, strerror(errno));
		goto err_free;
	}
	/*
	 * A flood of new tuples (spoofed sources) must not lock out clients
	 * that work: under pressure, sessions that are neither assured UDP
	 * streams nor established connections give way, and one address
	 * holds at most its share (per worker: a source's flows hash to one
	 * queue mostly).
	 */
	nat_table__set_early_drop(w->nat, session_early_dropped, w);
	err = nat_table__set_source_limit(w->nat, cfg->nat.max_sessions_per_source);
	if (err) {
		pr_err("worker %u: cannot set up the per-source session limit: %s", id,
		       strerror(-err));
		goto err_destroy_nat;
	}
	err = offload__worker_init(w);
	if (err) {
		pr_err("worker %u: cannot set up the XDP fast path: %s", id, strerror(-err));
		goto err_destroy_nat;
	}
	err = nh_resolver__create(&w->nh);
	if (err) {
		pr_err("worker %u: cannot open rtnetlink: %s", id, strerror(-err));
		goto err_destroy_offload;
	}
	err = umem__create(&w->umem, cfg->umem.frames, cfg->umem.frame_size, cfg->umem.ring_size);
	if (err)
		goto err_destroy_nh;
	w->hold_budget = worker__hold_budget(cfg->umem.frames, cfg->umem.ring_size,
					     (uint32_t)d->nr_ports);
	/* Room for a batch of handed-over replies even when the FILL rings want it all. */
	if (w->handoff)
		w->umem->fill_reserve = w->batch;
	for (int i = 0; i < d->nr_ports; i++) {
		const struct ferry_port_info *pi = &d->ports[i];

		err = port__create(&w->ports[i], w->umem, pi->ifname, w->queue, (uint16_t)i,
				   cfg->umem.ring_size, steer__xsks_fd(d->steer, pi->ifname),
				   false);
		if (err)
			goto err_destroy_ports;
		w->nr_ports++;
		/* The config's poll modes are in port_poll_mode's order. */
		err = port__set_poll_mode(w->ports[i],
					  (enum port_poll_mode)cfg->ifaces[i].poll_mode,
					  cfg->ifaces[i].busy_poll_usecs, w->batch);
		if (err)
			goto err_destroy_ports;
		if (w->ports[i]->poll_mode > w->poll_mode)
			w->poll_mode = w->ports[i]->poll_mode;
	}
	for (int f = 0; f < d->nr_flows; f++) {
		const struct flow_chain *ch = &d->flows[f];

		for (int s = 0; s < ch->nr; s++) {
			if (!ch->ops[s]->worker_init)
				continue;
			err = ch->ops[s]->worker_init(ch->conf[s], w, &w->svc_state[f][s]);
			if (err) {
				pr_err("worker %u: flow '%s': service '%s' failed to start: %s", id,
				       ch->fc.flow->name, ch->ops[s]->name, strerror(-err));
				goto err_destroy_svc;
			}
		}
	}
	*out = w;
	return 0;

err_destroy_svc:
	worker__destroy(w);
	return err;
err_destroy_ports:
	while (w->nr_ports--)
		port__destroy(w->ports[w->nr_ports],
			      steer__xsks_fd(d->steer, d->ports[w->nr_ports].ifname));
	umem__destroy(w->umem);
err_destroy_nh:
	nh_resolver__destroy(w->nh);
err_destroy_offload:
	offload__worker_destroy(w);
err_destroy_nat:
	nat_table__destroy(w->nat);
err_free:
	free(w);
	return err;
}

int worker__start(struct ferry_worker *w)
{
	uint32_t prio = w->d->cfg.worker_priority;
	struct sched_param sp = { .sched_priority = (int)prio };
	pthread_attr_t attr;
	char name[16], sched[32], idle[48];
	cpu_set_t set;
	int err;

	err = pthread_attr_init(&attr);
	if (err)
		goto err_log;
	/* Set before the thread exists, so it never runs on another CPU first. */
	if (w->cpu >= 0) {
		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		err = pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
		if (err)
			goto err_destroy_attr;
	}
	/*
	 * worker_priority: the worker outranks the kernel's receive processing
	 * on its CPU (a threaded NAPI, ksoftirqd), which then runs only while
	 * the worker sleeps on empty rings.  Under overload the kernel thus
	 * takes in no more than the worker forwards, and the excess is dropped
	 * where it is cheapest, before it costs this CPU anything.
	 */
	if (prio) {
		err = pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
		if (!err)
			err = pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
		if (!err)
			err = pthread_attr_setschedparam(&attr, &sp);
		if (err)
			goto err_destroy_attr;
	}
	err = pthread_create(&w->thread, &attr, worker__run, w);
	if (err)
		goto err_destroy_attr;
	pthread_attr_destroy(&attr);
	snprintf(name, sizeof(name), "ferry-q%u", w->queue);
	pthread_setname_np(w->thread, name);
	w->running = true;
	if (prio)
		snprintf(sched, sizeof(sched), "SCHED_FIFO %u", prio);
	else
		snprintf(sched, sizeof(sched), "SCHED_OTHER");
	if (w->coalesce_ns)
		snprintf(idle, sizeof(idle), "%s, coalesce %llu us", port__poll_mode_name(w->poll_mode),
			 (unsigned long long)(w->coalesce_ns / 1000));
	else
		snprintf(idle, sizeof(idle), "%s", port__poll_mode_name(w->poll_mode));
	if (w->cpu >= 0)
		pr_info("worker %u: queue %u, pinned to CPU %d, %s, idle mode %s", w->id, w->queue,
			w->cpu, sched, idle);
	else
		pr_info("worker %u: queue %u, not pinned, %s, idle mode %s", w->id, w->queue, sched,
			idle);
	return 0;

err_destroy_attr:
	pthread_attr_destroy(&attr);
err_log:
	if (err == EPERM && prio)
		pr_err("worker %u: cannot start thread at SCHED_FIFO priority %u (config key "
		       "worker_priority): %s; it needs CAP_SYS_NICE",
		       w->id, prio, strerror(err));
	else
		pr_err("worker %u: cannot start thread: %s", w->id, strerror(err));
	return -err;
}

void worker__request_stop(struct ferry_worker *w)
{
	const uint64_t one = 1;
	int fd = atomic_load(&w->control_fd);

	w->stop = 1;
	/* Not a 100 ms idle sleep per worker at every stop and restart. */
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_warn("worker %u: cannot wake it to stop: %s", w->id, strerror(errno));
}

void worker__stop(struct ferry_worker *w)
{
	if (!w || !w->running)
		return;
	worker__request_stop(w);
	pthread_join(w->thread, NULL);
	w->running = false;
}

/* Frames still in the kernel come back when the sockets close; count them home first. */
static void drain(struct ferry_worker *w)
{
	for (int round = 0; round < 100 && w->umem->kernel_tx; round++) {
		for (int i = 0; i < w->nr_ports; i++) {
			port__complete(w->ports[i]);
			/* Nothing else sends or completes a busy-polled queue's frames. */
			if (w->ports[i]->poll_mode == PORT_POLL_BUSY)
				port__busy_poll(w->ports[i], false);
		}
		if (w->umem->kernel_tx)
			usleep(1000);
	}
}

static void log_handoffs(const struct ferry_worker *w)
{
	uint64_t rx = 0, out = 0, drops = 0;

	for (int f = 0; f < w->d->nr_flows; f++) {
		rx += w->flow_stats[f].rx_packets;
		out += w->flow_stats[f].handoff_packets;
		drops += w->flow_stats[f].drop_handoff_full;
	}
	/* rx_packets counts replies at their owner: what our sockets received is this. */
	rx = rx + out - w->handoff_in;
	pr_info("worker %u: received %llu packets, handed %llu replies to their owners, took "
		"over %llu, %llu hand-off drops",
		w->id, (unsigned long long)rx, (unsigned long long)out,
		(unsigned long long)w->handoff_in, (unsigned long long)drops);
}

void worker__destroy(struct ferry_worker *w)
{
	struct ferry_daemon *d;

	if (!w)
		return;
	d = w->d;
	worker__stop(w);
	for (int f = 0; f < d->nr_flows; f++) {
		const struct flow_chain *ch = &d->flows[f];

		for (int s = 0; s < ch->nr; s++)
			if (ch->ops[s]->worker_destroy && w->svc_state[f][s])
				ch->ops[s]->worker_destroy(ch->conf[s], w->svc_state[f][s]);
	}
	if (w->nr_ports)
		drain(w);
	if (w->umem) {
		const struct umem *u = w->umem;

		if (!umem__check(u, "worker"))
			pr_info("worker %u: frame accounting holds: free %u + kernel_rx %u + "
				"kernel_tx %u + held %u == %u frames",
				w->id, u->nr_free, u->kernel_rx, u->kernel_tx, u->held, u->nr_frames);
		if (u->kernel_tx)
			pr_warn("worker %u: %u frames still in flight at stop", w->id,
				u->kernel_tx);
	}
	if (w->handoff)
		log_handoffs(w);
	for (int i = 0; i < w->nr_ports; i++)
		if (w->ports[i]->poll_mode == PORT_POLL_BUSY)
			pr_info("iface %s queue %u: %llu busy polls", w->ports[i]->ifname,
				w->ports[i]->queue,
				(unsigned long long)w->ports[i]->stats.busy_polls);
	for (int i = 0; i < w->nr_ports; i++)
		port__destroy(w->ports[i], steer__xsks_fd(d->steer, d->ports[i].ifname));
	umem__destroy(w->umem);
	nh_resolver__destroy(w->nh);
	offload__worker_destroy(w);
	nat_table__destroy(w->nat);
	free(w);
}

uint64_t worker__unclassified(const struct ferry_worker *w)
{
	return w->unclassified;
}

uint64_t worker__loops(const struct ferry_worker *w)
{
	return __atomic_load_n(&w->loops, __ATOMIC_RELAXED);
}

int worker__queue_stats(const struct ferry_worker *w, int port, struct ferry_queue_stats *qs)
{
	const struct port *p;
	struct xdp_statistics xs = {};
	socklen_t len = sizeof(xs);

	if (port < 0 || port >= w->nr_ports)
		return -ENOENT;
	p = w->ports[port];
	memset(qs, 0, sizeof(*qs));
	snprintf(qs->ifname, sizeof(qs->ifname), "%s", p->ifname);
	qs->ifindex = (__u32)p->ifindex;
	qs->queue = p->queue;
	qs->configured = 1;
	qs->zerocopy = p->zerocopy;
	/* A syscall, but on the main thread: the socket is only read, never driven. */
	if (getsockopt(xsk_socket__fd(p->xsk), SOL_XDP, XDP_STATISTICS, &xs, &len))
		return -errno;
	qs->rx_dropped = xs.rx_dropped;
	qs->rx_invalid_descs = xs.rx_invalid_descs;
	qs->tx_invalid_descs = xs.tx_invalid_descs;
	qs->rx_ring_full = xs.rx_ring_full;
	qs->rx_fill_ring_empty_descs = xs.rx_fill_ring_empty_descs;
	qs->tx_ring_empty_descs = xs.tx_ring_empty_descs;
	qs->rx_packets = p->stats.rx_packets;
	qs->tx_packets = p->stats.tx_packets;
	qs->tx_ring_full = p->stats.tx_ring_full;
	qs->tx_kicks = p->stats.tx_kicks;
	qs->fill_kicks = p->stats.fill_kicks;
	qs->rx_invalid = p->stats.rx_invalid;
	qs->busy_polls = p->stats.busy_polls;
	qs->drop_malformed = p->stats.drop_malformed;
	return 0;
}
