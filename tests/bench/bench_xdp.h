/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What the benchmark's XDP helpers (bench_sink, xdp_nat_fwd) share: native
 * attachment as a bpf_link fd, which vanishes with the process so a crashed
 * run leaves no program behind, and a life driven by signals taken
 * synchronously (no handler runs): SIGUSR1 asks for the counters,
 * SIGTERM/SIGINT/SIGHUP, the parent's death or --max-time end it.
 */
#ifndef FERRY_BENCH_XDP_H
#define FERRY_BENCH_XDP_H

#include <errno.h>
#include <signal.h>
#include <time.h>
#include <net/if.h>
#include <sys/prctl.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "bench_util.h"

/* Attaches prog_fd to `dev` in native mode; the link lives as long as *link_fd. */
static inline int bench_xdp_attach(int prog_fd, const char *dev, int *link_fd)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = XDP_FLAGS_DRV_MODE);
	int ifindex = (int)if_nametoindex(dev);

	if (!ifindex)
		return -ENODEV;
	*link_fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
	return *link_fd < 0 ? -errno : 0;
}

/* Blocks the signals bench_serve() takes; call before anything can be sent one. */
static inline void bench_block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigprocmask(SIG_BLOCK, set, NULL);
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
}

/*
 * Serves SIGUSR1 with report(ctx) until another signal of `set` arrives or
 * max_time seconds pass.  Returns 0, or -ETIMEDOUT after max_time.
 */
static inline int bench_serve(const sigset_t *set, double max_time, void (*report)(void *ctx),
			      void *ctx)
{
	double deadline = bench_now() + max_time;

	for (;;) {
		double left = deadline - bench_now();
		struct timespec timeout = {
			.tv_sec = left > 0 ? (time_t)left : 0,
			.tv_nsec = left > 0 ? (long)((left - (double)(time_t)left) * 1e9) : 0,
		};
		int sig = sigtimedwait(set, NULL, &timeout);

		if (sig == SIGUSR1) {
			report(ctx);
			continue;
		}
		if (sig < 0 && errno == EINTR)
			continue;
		return sig < 0 ? -ETIMEDOUT : 0;
	}
}

#endif /* FERRY_BENCH_XDP_H */
