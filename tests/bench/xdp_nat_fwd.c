// SPDX-License-Identifier: BSD-2-Clause
/*
 * xdp_nat_fwd: loads xdp_nat_fwd.bpf.c and attaches it in native mode to the
 * proxy's client-side and upstream-side interfaces, then waits.
 *
 * Like bench_sink it holds the attachments as bpf_link fds, so they vanish
 * with the process; SIGUSR1 prints the program's counters as one JSON line,
 * SIGTERM/SIGINT (or the parent's death, or --max-time) detach and exit.
 * Both interfaces' peers need an XDP program of their own (or GRO) for a
 * native redirect into them to be accepted: the benchmark's sink sits on the
 * server's side.
 */
#include <getopt.h>

#include "bench_xdp.h"
#include "xdp_nat_fwd.h"
#include "xdp_nat_fwd.skel.h"

static int print_stats(struct xdp_nat_fwd_bpf *skel)
{
	int ncpus = libbpf_num_possible_cpus();
	struct nat_fwd_stats sum = {0}, *v;
	__u32 key = 0;
	int err;

	if (ncpus < 0)
		return ncpus;
	v = calloc((size_t)ncpus, sizeof(*v));
	if (!v)
		return -ENOMEM;
	err = bpf_map__lookup_elem(skel->maps.nat_fwd_stats, &key, sizeof(key), v,
				   sizeof(*v) * (size_t)ncpus, 0);
	for (int i = 0; !err && i < ncpus; i++) {
		sum.to_upstream += v[i].to_upstream;
		sum.to_client += v[i].to_client;
		sum.sessions += v[i].sessions;
		sum.no_port += v[i].no_port;
		sum.no_session += v[i].no_session;
		sum.passed += v[i].passed;
	}
	free(v);
	if (err)
		return err;
	printf("{\"to_upstream\":%llu,\"to_client\":%llu,\"sessions\":%llu,\"no_port\":%llu,"
	       "\"no_session\":%llu,\"passed\":%llu}\n",
	       sum.to_upstream, sum.to_client, sum.sessions, sum.no_port, sum.no_session,
	       sum.passed);
	fflush(stdout);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: xdp_nat_fwd --client-dev DEV --upstream-dev DEV --flow ADDR:PORT\n"
		"                   --upstream ADDR:PORT --upstream-mac MAC --egress ADDR\n"
		"                   [--ports LO-HI] [--max-time S]\n");
}

static void report(void *ctx)
{
	if (print_stats(ctx))
		fprintf(stderr, "xdp_nat_fwd: cannot read the counters\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"client-dev", required_argument, NULL, 'c'},
		{"upstream-dev", required_argument, NULL, 'u'},
		{"flow", required_argument, NULL, 'f'},
		{"upstream", required_argument, NULL, 'U'},
		{"upstream-mac", required_argument, NULL, 'm'},
		{"egress", required_argument, NULL, 'e'},
		{"ports", required_argument, NULL, 'p'},
		{"max-time", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	const char *cdev = NULL, *udev = NULL;
	struct nat_fwd_cfg cfg = {.port_lo = 40000, .port_hi = 40999};
	int link_c = -1, link_u = -1, c, err;
	unsigned int lo, hi;
	struct xdp_nat_fwd_bpf *skel;
	double max_time = 3600;
	uint16_t fport = 0, uport = 0;
	int have = 0;
	sigset_t set;
	char tail;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		err = 0;
		switch (c) {
		case 'c':
			cdev = optarg;
			break;
		case 'u':
			udev = optarg;
			break;
		case 'f':
			err = bench_parse_endpoint(optarg, &cfg.flow_addr, &fport);
			have |= 1;
			break;
		case 'U':
			err = bench_parse_endpoint(optarg, &cfg.upstream_addr, &uport);
			have |= 2;
			break;
		case 'm':
			err = bench_parse_mac(optarg, cfg.upstream_mac);
			have |= 4;
			break;
		case 'e':
			err = inet_pton(AF_INET, optarg, &cfg.egress_addr) == 1 ? 0 : -EINVAL;
			have |= 8;
			break;
		case 'p':
			if (sscanf(optarg, "%u-%u%c", &lo, &hi, &tail) != 2 || !lo || lo > hi ||
			    hi > 65535)
				err = -EINVAL;
			cfg.port_lo = lo;
			cfg.port_hi = hi;
			break;
		case 'T':
			err = bench_parse_double(optarg, 1, 86400, &max_time);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (err) {
			fprintf(stderr, "xdp_nat_fwd: invalid value '%s'\n", optarg);
			return 2;
		}
	}
	if (!cdev || !udev || have != 15) {
		usage(stderr);
		return 2;
	}
	cfg.flow_port = htons(fport);
	cfg.upstream_port = htons(uport);
	cfg.upstream_ifindex = if_nametoindex(udev);
	if (!cfg.upstream_ifindex || bench_if_mac(udev, cfg.egress_mac)) {
		fprintf(stderr, "xdp_nat_fwd: interface '%s' not found\n", udev);
		return 1;
	}

	bench_block_signals(&set);

	skel = xdp_nat_fwd_bpf__open();
	if (!skel) {
		fprintf(stderr, "xdp_nat_fwd: cannot open the BPF object: %s\n", strerror(errno));
		return 1;
	}
	memcpy((void *)&skel->rodata->cfg, &cfg, sizeof(cfg));
	err = xdp_nat_fwd_bpf__load(skel);
	if (err) {
		fprintf(stderr, "xdp_nat_fwd: cannot load: %s\n", strerror(-err));
		goto out;
	}
	err = bench_xdp_attach(bpf_program__fd(skel->progs.xdp_nat_fwd), cdev, &link_c);
	if (!err)
		err = bench_xdp_attach(bpf_program__fd(skel->progs.xdp_nat_fwd), udev, &link_u);
	if (err) {
		fprintf(stderr, "xdp_nat_fwd: native XDP attach failed: %s\n", strerror(-err));
		goto out;
	}
	fprintf(stderr, "xdp_nat_fwd: attached (native) to %s and %s\n", cdev, udev);
	printf("{\"ready\":1}\n");
	fflush(stdout);

	bench_serve(&set, max_time, report, skel);
	err = 0;
out:
	if (link_c >= 0)
		close(link_c);
	if (link_u >= 0)
		close(link_u);
	xdp_nat_fwd_bpf__destroy(skel);
	return err ? 1 : 0;
}
