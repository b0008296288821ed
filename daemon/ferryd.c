// SPDX-License-Identifier: BSD-2-Clause
/*
 * ferryd: loads the config, configures each flow's service chain, attaches
 * the XDP program to every interface, fills the flow table, starts one
 * worker per RX queue, then sleeps on a signalfd and publishes the workers'
 * counters once a second.  Start-up is all or nothing: on any failure
 * everything done so far is undone in reverse order (workers, sockets, XDP
 * programs, pins) and ferryd exits non-zero.
 */
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "caps.h"
#include "config.h"
#include "control.h"
#include "daemon.h"
#include "handoff.h"
#include "health.h"
#include "link_stats.h"
#include "log.h"
#include "napi_prio.h"
#include "nexthop.h"
#include "notify.h"
#include "offload.h"
#include "service.h"
#include "steer.h"
#include "svc_app.h"
#include "svc_lb.h"
#include "svc_loader.h"
#include "queues.h"
#include "reload.h"
#include "version.h"

#define PUBLISH_INTERVAL_MS 1000

static void usage(FILE *out)
{
	fprintf(out, "usage: ferryd -c FILE [--check] [-v]...\n"
		     "       ferryd --version\n"
		     "  -c, --config FILE  the YAML configuration (default /etc/ferry/ferry.yaml)\n"
		     "      --check        validate the configuration and exit (1 when invalid)\n"
		     "  -v, --verbose      debug output (overrides log_level)\n"
		     "  -h, --help         this text\n"
		     "      --version      the version, and the git commit it was built from\n");
}

/* "ferryd 0.1.0 (git 3f2a9c1d0b4e)": what a bug report should quote. */
static void print_version(void)
{
	if (ferry_build_info.commit[0])
		printf("ferryd %s (git %s)\n", ferry_version(), ferry_build_info.commit);
	else
		printf("ferryd %s\n", ferry_version());
}

/*
 * Reply rules are the more specific ones: they go first.  The workers
 * classify with d->rules, so it is reordered to be exactly the table the
 * XDP program scans.
 */
static int install_rules(struct ferry_daemon *d)
{
	struct ferry_rule sorted[FERRY_MAX_RULES];
	uint32_t n = 0;
	int err;

	for (int pass = 0; pass < 2; pass++)
		for (uint32_t i = 0; i < d->nr_rules; i++)
			if ((d->rules[i].dir == FERRY_DIR_REPLY) == (pass == 0))
				sorted[n++] = d->rules[i];
	memcpy(d->rules, sorted, n * sizeof(sorted[0]));
	for (uint32_t i = 0; i < n; i++) {
		err = steer__set_rule(d->steer, i, &d->rules[i]);
		if (err)
			return err;
	}
	return steer__clear_rules(d->steer, n);
}

/* Each service of each chain, the same way as ferry_fwd_stats: worker i in CPU slot i. */
static int publish_svc_stats(struct ferry_daemon *d, int ncpus)
{
	int fd = steer__svc_stats_fd(d->steer);
	struct ferry_svc_stats *vals;
	struct offload_counts oc;
	int err = 0;

	if (fd < 0 || !d->workers)
		return -EINVAL;
	vals = calloc((size_t)ncpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (int f = 0; f < d->nr_flows; f++) {
		for (int pos = 0; pos < d->flows[f].nr; pos++) {
			__u32 key = (__u32)(f * FERRY_MAX_SERVICES + pos);

			memset(vals, 0, (size_t)ncpus * sizeof(*vals));
			for (uint32_t i = 0; i < d->nr_workers; i++)
				if (d->workers[i])
					worker__add_svc_stats(
						d->workers[i], (uint32_t)f, pos,
						&vals[worker__cpu_slot(d->workers[i]) % ncpus]);
			if (!offload__flow_counts(d, (uint32_t)f, &oc))
				offload__add_svc(d, (uint32_t)f, pos, &oc, &vals[0]);
			if (bpf_map_update_elem(fd, &key, vals, BPF_ANY))
				err = -errno;
		}
	}
	free(vals);
	return err;
}

_Static_assert(FERRY_APP_SLOT_NAME_LEN == FERRY_APP_NAME_LEN, "app slot names differ in size");

/*
 * The flows' app slots for ferryctl apps, in config order: who is attached
 * (the control socket's record), the service's own counters and what the
 * workers report through the slot (services/svc_app.h).
 */
static int publish_app_slots(struct ferry_daemon *d)
{
	int fd = steer__app_slots_fd(d->steer), err = 0;
	__u32 k = 0;

	if (fd < 0 || !d->workers)
		return -EINVAL;
	for (int f = 0; f < d->nr_flows; f++) {
		for (int pos = 0; pos < d->flows[f].nr && k < FERRY_MAX_APP_SLOTS; pos++) {
			struct svc_app_conf *c = d->flows[f].conf[pos];
			struct ferry_app_slot_stats st = {};
			struct ferry_svc_stats ss = {};
			uint64_t rtt = 0, rtts = 0;

			if (!svc_app__is_app(d->flows[f].ops[pos]))
				continue;
			memcpy(st.slot, c->name, sizeof(st.slot));
			st.configured = 1;
			st.flow_id = (__u32)f;
			st.owner_is_group = c->owner_is_group;
			st.owner_uid = c->owner_uid;
			st.owner_gid = c->owner_gid;
			st.attached_pid = (__u32)c->slot.pid;
			st.attached_uid = c->slot.pid ? c->slot.uid : 0;
			st.on_failure_drop = c->on_failure == SVC_APP_DROP;
			for (uint32_t i = 0; i < d->nr_workers && i < FERRY_APP_MAX_QUEUES; i++) {
				if (d->workers[i])
					worker__add_svc_stats(d->workers[i], (uint32_t)f, pos, &ss);
				st.out += atomic_load_explicit(&c->slot.wstat[i].out,
							       memory_order_relaxed);
				st.dropped += atomic_load_explicit(&c->slot.wstat[i].dropped,
								   memory_order_relaxed);
				st.queue_depth += atomic_load_explicit(&c->slot.wstat[i].depth,
								       memory_order_relaxed);
				rtt += atomic_load_explicit(&c->slot.wstat[i].rtt_ns,
							    memory_order_relaxed);
				rtts += atomic_load_explicit(&c->slot.wstat[i].rtts,
							     memory_order_relaxed);
				st.sleeps += atomic_load_explicit(&c->slot.wstat[i].sleeps,
								  memory_order_relaxed);
				st.emitted += atomic_load_explicit(&c->slot.wstat[i].emitted,
								   memory_order_relaxed);
				st.emit_dropped += atomic_load_explicit(
					&c->slot.wstat[i].emit_dropped, memory_order_relaxed);
			}
			/* The service's counters: to_app, bypassed, bad_desc, timeouts. */
			st.in = ss.counters[0];
			st.bypassed = ss.counters[1];
			st.bad_desc = ss.counters[2];
			st.timeouts = ss.counters[3];
			st.rtt_avg_ns = rtts ? rtt / rtts : 0;
			if (bpf_map_update_elem(fd, &k, &st, BPF_ANY))
				err = -errno;
			k++;
		}
	}
	/* Slots a reload removed. */
	for (struct ferry_app_slot_stats none = {}; k < FERRY_MAX_APP_SLOTS; k++)
		if (bpf_map_update_elem(fd, &k, &none, BPF_ANY))
			err = -errno;
	return err;
}

/*
 * lb's upstreams by address (the first lb of each flow's chain), for
 * ferryctl stats; the entries of flows that no longer have one are cleared.
 */
static int publish_lb_upstreams(struct ferry_daemon *d)
{
	static uint64_t published; /* flow ids with entries from the last time */
	int fd = steer__lb_upstreams_fd(d->steer), err = 0;
	uint64_t now = 0;

	if (fd < 0)
		return -EINVAL;
	for (int f = 0; f < d->nr_flows && f < FERRY_MAX_FLOWS; f++) {
		struct ferry_lb_upstream_stats st[FERRY_LB_MAX_UPSTREAMS] = {};

		for (int pos = 0; pos < d->flows[f].nr; pos++) {
			if (!svc_lb__is_lb(d->flows[f].ops[pos]))
				continue;
			svc_lb__upstreams(d->flows[f].conf[pos], st);
			now |= 1ull << f;
			break;
		}
		if (!(now >> f & 1) && !(published >> f & 1))
			continue;
		for (__u32 i = 0; i < FERRY_LB_MAX_UPSTREAMS; i++) {
			__u32 key = (__u32)f * FERRY_LB_MAX_UPSTREAMS + i;

			if (bpf_map_update_elem(fd, &key, &st[i], BPF_ANY))
				err = -errno;
		}
	}
	for (int f = d->nr_flows; f < FERRY_MAX_FLOWS; f++) {
		struct ferry_lb_upstream_stats none = {};

		if (!(published >> f & 1))
			continue;
		for (__u32 i = 0; i < FERRY_LB_MAX_UPSTREAMS; i++) {
			__u32 key = (__u32)f * FERRY_LB_MAX_UPSTREAMS + i;

			if (bpf_map_update_elem(fd, &key, &none, BPF_ANY))
				err = -errno;
		}
	}
	published = now;
	return err;
}

_Static_assert(CFG_MAX_IFACES == FERRY_MAX_IFACES, "ferry_queue_stats has a slot per interface");

/*
 * Each AF_XDP socket's counters: worker i's sockets are queue i of every
 * port.  Each slot also gets its interface's kernel counters, asked once
 * per port: the kernel's drops are loss that no counter of ferry's sees.
 */
static int publish_queue_stats(struct ferry_daemon *d)
{
	/* A failed ask keeps the last answer: counters never go backwards. */
	static struct ferry_link_stats link[CFG_MAX_IFACES];
	int fd = steer__queue_stats_fd(d->steer);
	int err = 0;

	if (fd < 0 || !d->workers)
		return -EINVAL;
	for (int port = 0; port < d->nr_ports; port++) {
		struct ferry_link_stats now;

		if (!link_stats__get(d->ports[port].ifindex, &now))
			link[port] = now;
	}
	for (uint32_t i = 0; i < d->nr_workers; i++) {
		if (!d->workers[i])
			continue;
		for (int port = 0; port < d->nr_ports; port++) {
			struct ferry_queue_stats qs;
			__u32 key;

			if (worker__queue_stats(d->workers[i], port, &qs))
				continue;
			qs.link = link[port];
			key = (__u32)port * FERRY_MAX_QUEUES + qs.queue;
			if (bpf_map_update_elem(fd, &key, &qs, BPF_ANY))
				err = -errno;
		}
	}
	return err;
}

static int publish_stats(struct ferry_daemon *d)
{
	int ncpus = libbpf_num_possible_cpus();
	int fd = steer__fwd_stats_fd(d->steer);
	struct ferry_fwd_stats *vals;
	int err = 0;

	if (ncpus <= 0 || fd < 0)
		return -EINVAL;
	vals = calloc((size_t)ncpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (int f = 0; f < d->nr_flows; f++) {
		struct offload_counts oc;
		__u32 key = (__u32)f;

		memset(vals, 0, (size_t)ncpus * sizeof(*vals));
		for (uint32_t i = 0; i < d->nr_workers; i++)
			if (d->workers[i])
				worker__add_flow_stats(d->workers[i], key,
						       &vals[worker__cpu_slot(d->workers[i]) % ncpus]);
		/* What the XDP fast path forwarded counts as if a worker had. */
		if (!offload__flow_counts(d, key, &oc))
			offload__add_fwd(&oc, &vals[0]);
		if (bpf_map_update_elem(fd, &key, vals, BPF_ANY))
			err = -errno;
	}
	free(vals);
	err = publish_queue_stats(d) ?: err;
	err = publish_app_slots(d) ?: err;
	err = publish_lb_upstreams(d) ?: err;
	return publish_svc_stats(d, ncpus) ?: err;
}

static int open_ports(struct ferry_daemon *d)
{
	for (int i = 0; i < d->cfg.nr_ifaces; i++) {
		const struct cfg_iface *ifc = &d->cfg.ifaces[i];
		struct ferry_port_info *p = &d->ports[i];

		snprintf(p->ifname, sizeof(p->ifname), "%s", ifc->name);
		p->ifindex = (int)if_nametoindex(ifc->name);
		if (!p->ifindex) {
			pr_err("%s:%u:%u: iface %s: no such interface", d->cfg.file, ifc->mark.line,
			       ifc->mark.col, ifc->name);
			return -ENODEV;
		}
		d->nr_ports++;
	}
	return 0;
}

static int attach_all(struct ferry_daemon *d)
{
	struct steer_opts opts = { .pin_path = d->cfg.pin_path,
				   .offload_sessions = d->cfg.nat.offload_max_sessions };
	int err;

	err = steer__create(&d->steer, &opts);
	if (err)
		return err;
	d->offload_map_fd = steer__sessions_fd(d->steer);
	d->offload_stats_fd = steer__sess_stats_fd(d->steer);
	d->flow_stats_fd = steer__flow_stats_fd(d->steer);
	d->offload_maps = true;
	for (int i = 0; i < d->nr_ports; i++) {
		err = steer__attach(d->steer, d->ports[i].ifname, d->cfg.ifaces[i].xdp_mode);
		if (err)
			return err;
		pr_info("iface %s: XDP program attached in %s mode", d->ports[i].ifname,
			steer__mode_name(d->steer, d->ports[i].ifname));
	}
	for (int f = 0; f < d->nr_flows; f++) {
		err = steer__set_flow_info(d->steer, (uint32_t)f, d->cfg.flows[f].name) ?:
		      steer__set_flow_offload(d->steer, (uint32_t)f, d->flows[f].offload,
					      d->flows[f].offload_why) ?:
		      offload__write_ratelimit(d, (uint32_t)f, true);
		if (err)
			return err;
		/* What each ferry_svc_stats slot is, so ferryctl needs no config. */
		for (int pos = 0; pos < d->flows[f].nr; pos++) {
			const struct ferry_service_ops *ops = d->flows[f].ops[pos];

			err = steer__set_svc_info(d->steer, (uint32_t)f, (uint32_t)pos, ops->name,
						  ops->counter_names);
			if (err)
				return err;
		}
	}
	/* What an earlier run left attached on interfaces this run does not use. */
	steer__drop_stale(d->steer);
	offload__follow_egress(d);
	return 0;
}

static int start_workers(struct ferry_daemon *d)
{
	int err;

	d->nr_workers = d->cfg.queues;
	d->workers = calloc(d->nr_workers, sizeof(*d->workers));
	if (!d->workers)
		return -ENOMEM;
	/* Replies that land on another worker's queue go to their session's owner. */
	if (d->nr_workers > 1) {
		err = handoff__create(&d->handoff, d->nr_workers, d->cfg.umem.frame_size,
				      d->cfg.umem.batch);
		if (err)
			return err;
	}
	for (uint32_t i = 0; i < d->nr_workers; i++) {
		err = worker__create(&d->workers[i], d, i);
		if (err)
			return err;
	}
	/* Before any worker runs: the sessions an earlier run left forwarding in XDP. */
	err = offload__adopt(d);
	if (err)
		pr_warn("offload: cannot take over an earlier run's sessions: %s", strerror(-err));
	for (uint32_t i = 0; i < d->nr_workers; i++) {
		err = worker__start(d->workers[i]);
		if (err)
			return err;
	}
	return 0;
}

static void stop_workers(struct ferry_daemon *d)
{
	if (!d->workers)
		return;
	for (uint32_t i = 0; i < d->nr_workers; i++)
		worker__stop(d->workers[i]);
}

static void destroy_workers(struct ferry_daemon *d)
{
	if (!d->workers)
		return;
	for (uint32_t i = 0; i < d->nr_workers; i++)
		worker__destroy(d->workers[i]);
	free(d->workers);
	d->workers = NULL;
	/* Only once no worker can touch a ring any more. */
	handoff__destroy(d->handoff);
	d->handoff = NULL;
}

/*
 * UMEM registration pins memory, charged to RLIMIT_MEMLOCK unless the process
 * has CAP_IPC_LOCK.  Without CAP_SYS_RESOURCE only the soft limit can rise.
 */
static void raise_memlock(void)
{
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

	if (!setrlimit(RLIMIT_MEMLOCK, &rl) || getrlimit(RLIMIT_MEMLOCK, &rl))
		return;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_MEMLOCK, &rl);
	pr_debug("RLIMIT_MEMLOCK stays at %llu bytes (no CAP_SYS_RESOURCE)",
		 (unsigned long long)rl.rlim_max);
}

/*
 * The main thread's capabilities once running (CAPS_RUNNING, lib/caps.h):
 * what reload and stop still need, and CAP_SYS_ADMIN only if libxdp's
 * dispatcher must be detached at stop.  A failure leaves ferryd running with
 * more than it needs, which is logged, not fatal.
 */
static void drop_capabilities(const struct ferry_daemon *d)
{
	uint64_t keep = CAPS_RUNNING, eff, prm;
	int err;

	if (steer__uses_dispatcher(d->steer)) {
		keep |= CAPS_BIT(CAP_SYS_ADMIN);
		pr_info("keeping CAP_SYS_ADMIN: libxdp's dispatcher needs it to detach at stop");
	}
	/* The kernel refuses to put a raised NAPI kthread back without it. */
	if (d->cfg.worker_priority) {
		keep |= CAPS_BIT(CAP_SYS_NICE);
		pr_debug("keeping CAP_SYS_NICE: the NAPI threads' scheduling is restored at stop");
	}
	err = caps__limit_thread(keep);
	if (!err)
		err = caps__get_thread(&eff, &prm);
	if (err) {
		pr_warn("cannot drop capabilities: %s", strerror(-err));
		return;
	}
	pr_debug("capabilities now: effective %#llx, permitted %#llx", (unsigned long long)eff,
		 (unsigned long long)prm);
}

static int setup_signals(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	/* Blocked before any worker starts, so every thread inherits the mask. */
	if (pthread_sigmask(SIG_BLOCK, &mask, NULL))
		return -errno;
	return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

/* Route notifications, for the reply rules' interfaces (reload__follow_routes()). */
struct routes {
	struct nh_events *events;
	struct nh_resolver *nh;
	bool moved;
};

static void routes_init(struct routes *r, struct pollfd *pfd)
{
	int err;

	memset(r, 0, sizeof(*r));
	err = nh_events__create(&r->events);
	if (!err)
		err = nh_resolver__create(&r->nh);
	if (err) {
		pr_warn("cannot follow route changes (%s): reply rules keep the interfaces they "
			"have now",
			strerror(-err));
		nh_events__destroy(r->events);
		r->events = NULL;
		return;
	}
	pfd->fd = nh_events__fd(r->events);
}

static void route_event(const struct nh_event *ev, void *ctx)
{
	struct routes *r = ctx;

	if (ev->type == NH_EV_ROUTE || ev->type == NH_EV_LINK || ev->type == NH_EV_LINK_DEL ||
	    ev->type == NH_EV_OVERFLOW)
		r->moved = true;
}

static void routes_changed(struct routes *r, struct ferry_daemon *d)
{
	int err;

	r->moved = false;
	while (nh_events__drain(r->events, 256, route_event, r) == 256)
		;
	if (!r->moved)
		return;
	err = reload__follow_routes(d, r->nh);
	if (err)
		pr_warn("cannot move reply rules after a route change: %s", strerror(-err));
}

static void routes_fini(struct routes *r)
{
	nh_resolver__destroy(r->nh);
	nh_events__destroy(r->events);
}

/*
 * A reload, from SIGHUP or ferryctl (rep then gets the report).  Every
 * outcome is logged; a refused reload keeps the old config.  systemd hears
 * READY=1 again either way, or `systemctl reload` would wait forever; a dry
 * run changes nothing and tells systemd nothing.
 */
static int do_reload(struct ferry_daemon *d, const char *file, bool keep_log_level,
		     struct control *ctl, struct reload_report *rep)
{
	bool dry_run = rep && rep->dry_run;
	int err;

	if (!dry_run)
		notify__reloading();
	err = reload__run(d, file, keep_log_level, rep);
	control__sync(ctl);
	if (!dry_run)
		notify__ready(NULL);
	return err;
}

static void run(struct ferry_daemon *d, int sfd, const char *file, bool keep_log_level,
		struct control *ctl)
{
	/* The signalfd, route notifications, then the control socket and its clients. */
	struct pollfd pfd[2 + CONTROL_MAX_FDS] = { { .fd = sfd, .events = POLLIN },
						   { .fd = -1, .events = POLLIN } };
	uint64_t next_publish = mono_ms() + PUBLISH_INTERVAL_MS;
	struct routes routes;
	struct health h;

	health__init(&h, d);
	health__publish(&h, d, FERRY_HEALTH_RUNNING, PUBLISH_INTERVAL_MS);
	routes_init(&routes, &pfd[1]);
	while (!d->stop) {
		struct signalfd_siginfo si;
		uint64_t now = mono_ms();
		bool dry_run;
		int timeout = now < next_publish ? (int)(next_publish - now) : 0;
		int nctl = control__fill(ctl, &pfd[2]);

		/* The watchdog may want pings more often than the counters are published. */
		timeout = health__timeout_ms(&h, timeout);
		timeout = control__timeout(ctl, timeout);
		for (int i = 0; i < 2 + nctl; i++)
			pfd[i].revents = 0;
		if (poll(pfd, 2 + (nfds_t)nctl, timeout) > 0 && (pfd[1].revents & POLLIN))
			routes_changed(&routes, d);
		control__handle(ctl, &pfd[2], nctl);
		if (!nctl)
			control__sync(ctl);
		/* ferryctl reload: here, where SIGHUP's reload runs too. */
		if (control__reload_wanted(ctl, &dry_run)) {
			struct reload_report rep = { .dry_run = dry_run };
			int err = do_reload(d, file, keep_log_level, ctl, &rep);

			control__reload_done(ctl, err, &rep);
			reload_report__free(&rep);
			continue;
		}
		if ((pfd[0].revents & POLLIN) && read(sfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGHUP) {
				do_reload(d, file, keep_log_level, ctl, NULL);
				continue;
			}
			pr_info("%s: stopping", strsignal((int)si.ssi_signo));
			d->stop = 1;
			break;
		}
		health__watchdog(&h, d);
		if (mono_ms() < next_publish)
			continue;
		next_publish = mono_ms() + PUBLISH_INTERVAL_MS;
		offload__follow_egress(d);
		publish_stats(d);
		health__status(&h, d);
		health__publish(&h, d, FERRY_HEALTH_RUNNING, PUBLISH_INTERVAL_MS);
	}
	/* Before the teardown: an announcer withdraws the routes while the workers still run. */
	health__publish(&h, d, FERRY_HEALTH_STOPPING, PUBLISH_INTERVAL_MS);
	routes_fini(&routes);
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	const char *file = "/etc/ferry/ferry.yaml";
	static struct napi_prio napi; /* what it changed, to put back at stop */
	struct cfg_errors errs = {};
	enum ferry_log_level level;
	struct ferry_daemon *d;
	struct control *ctl = NULL;
	bool check = false;
	int verbose = 0, opt, err, sfd, ret = 1;

	log__init("ferryd");
	while ((opt = getopt_long(argc, argv, "c:vh", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			file = optarg;
			break;
		case 'C':
			check = true;
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			print_version();
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	log__hook_libraries();

	d = calloc(1, sizeof(*d));
	if (!d)
		return 1;
	d->park_fd = -1;
	errs.file = file;
	err = config__load(&d->cfg, file, &errs);
	if (!err && d->cfg.log_level[0] && !log__parse_level(d->cfg.log_level, &level))
		log__set_level(level);
	if (verbose)
		log__set_level(FERRY_LOG_DEBUG);
	/*
	 * The workers' count, before the services are configured: some divide
	 * their budgets by it.  --check reads no interface: it may run where
	 * they do not exist (a package's build root).
	 */
	if (!err && !check)
		err = queues__resolve(&d->cfg, queues__channels, NULL, &errs);
	if (!err)
		err = ferry_daemon__configure_flows(d, &errs);
	if (err) {
		if (errs.count)
			pr_err("%s: %d error%s", file, errs.count, errs.count == 1 ? "" : "s");
		goto out_free_flows;
	}
	if (check) {
		printf("%s: configuration is valid (%d interface%s, %d flow%s)\n", file,
		       d->cfg.nr_ifaces, d->cfg.nr_ifaces == 1 ? "" : "s", d->cfg.nr_flows,
		       d->cfg.nr_flows == 1 ? "" : "s");
		ret = 0;
		goto out_free_flows;
	}

	/* The host's own ports, as the namespace ferryd runs in has them. */
	if (config__check_host_ports(&d->cfg, "/proc/sys/net/ipv4/ip_local_port_range", "/proc/net",
				     &errs))
		goto out_free_flows;
	raise_memlock();
	sfd = setup_signals();
	if (sfd < 0) {
		pr_err("cannot set up signal handling: %s", strerror(-sfd));
		goto out_free_flows;
	}
	if (open_ports(d) || ferry_daemon__client_rules(d) ||
	    ferry_daemon__start_services(d))
		goto out_close_signals;
	if (attach_all(d))
		goto out_detach;
	if (install_rules(d))
		goto out_detach;
	/* Without its eventfd a reload still works, parking idle workers more slowly. */
	reload__init(d);
	if (start_workers(d))
		goto out_stop_workers;
	/* After the workers: an area has one queue per worker. */
	if (control__create(&ctl, d))
		goto out_stop_workers;
	/*
	 * Real-time workers must not starve the NAPI threads that feed them
	 * (napi_prio.h).  After the XDP attach, which may re-create them; a
	 * failure is logged and ferryd runs on, as it would have before.
	 */
	if (d->cfg.worker_priority)
		for (int i = 0; i < d->nr_ports; i++)
			napi_prio__raise(&napi, d->ports[i].ifindex, d->ports[i].ifname,
					 napi_prio__for_workers(d->cfg.worker_priority));

	/* Everything that needed more has happened: the workers run. */
	drop_capabilities(d);
	pr_info("running: %d interface%s, %d flow%s, %u worker%s", d->nr_ports,
		d->nr_ports == 1 ? "" : "s", d->nr_flows, d->nr_flows == 1 ? "" : "s",
		d->nr_workers, d->nr_workers == 1 ? "" : "s");
	notify__ready(NULL);
	run(d, sfd, file, verbose, ctl);
	notify__stopping();
	ret = 0;

out_stop_workers:
	stop_workers(d);
	napi_prio__restore(&napi);
	publish_stats(d);
	destroy_workers(d);
	/* The workers gave their packets back: the areas may go. */
	control__destroy(ctl);
	reload__fini(d);
out_detach:
	steer__destroy(d->steer);
out_close_signals:
	close(sfd);
out_free_flows:
	ferry_daemon__destroy_flows(d);
	/* After every destroy(): the services' code lives in these objects. */
	svc_loader__destroy(d->loader);
	config__free(&d->cfg);
	free(errs.capture);
	free(d);
	return ret;
}
