// SPDX-License-Identifier: BSD-2-Clause
/*
 * bench_sink: attaches bench_sink.bpf.c in native (driver) mode to the
 * server's interfaces and reports its counters on request.
 *
 * It runs for the whole benchmark in the server's namespace, holding the
 * attachments as bpf_link fds: they go away with the process, so a crashed run
 * leaves no program behind.  The script asks for the counters with SIGUSR1
 * and gets one JSON line on stdout, the sum over CPUs read from the
 * skeleton's map; reading cumulative totals before and after a measurement
 * keeps the sink out of the script's timing.  SIGTERM or SIGINT detach and
 * exit; so does the death of the parent, and --max-time bounds its life.
 */
#include <getopt.h>

#include "bench.h"
#include "bench_sink.skel.h"
#include "bench_xdp.h"

#define MAX_DEVS 4

static int print_stats(struct bench_sink_bpf *skel)
{
	int ncpus = libbpf_num_possible_cpus();
	struct bench_sink_stats sum = {0};
	struct bench_sink_stats *v;
	__u32 key = 0;
	int err;

	if (ncpus < 0)
		return ncpus;
	v = calloc((size_t)ncpus, sizeof(*v));
	if (!v)
		return -ENOMEM;
	err = bpf_map__lookup_elem(skel->maps.sink_stats, &key, sizeof(key), v,
				   sizeof(*v) * (size_t)ncpus, 0);
	if (err) {
		free(v);
		return err;
	}
	for (int i = 0; i < ncpus; i++) {
		sum.packets += v[i].packets;
		sum.bytes += v[i].bytes;
		sum.bad_dst += v[i].bad_dst;
		sum.bad_ip_csum += v[i].bad_ip_csum;
		sum.bad_udp_csum += v[i].bad_udp_csum;
		sum.other += v[i].other;
		sum.xored += v[i].xored;
	}
	free(v);
	printf("{\"packets\":%llu,\"bytes\":%llu,\"bad_dst\":%llu,\"bad_ip_csum\":%llu,"
	       "\"bad_udp_csum\":%llu,\"other\":%llu,\"xored\":%llu}\n",
	       sum.packets, sum.bytes, sum.bad_dst, sum.bad_ip_csum, sum.bad_udp_csum, sum.other,
	       sum.xored);
	fflush(stdout);
	return 0;
}

static void report(void *ctx)
{
	int err = print_stats(ctx);

	if (err)
		fprintf(stderr, "bench_sink: cannot read the counters: %s\n", strerror(-err));
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_sink --dev DEV [--dev DEV...] --expect ADDR:PORT [--xor KEY]\n"
		   "                  [--max-time S]\n"
		   "  SIGUSR1 prints the counters as one JSON line; SIGTERM detaches and exits.\n"
		   "  --xor KEY (1..255): also accept payloads XORed with KEY, counted in xored.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"dev", required_argument, NULL, 'd'},
		{"expect", required_argument, NULL, 'e'},
		{"max-time", required_argument, NULL, 'T'},
		{"xor", required_argument, NULL, 'x'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	int link_fds[MAX_DEVS] = {-1, -1, -1, -1};
	const char *devs[MAX_DEVS];
	struct bench_sink_bpf *skel;
	int ndev = 0, c, err = 0;
	bool have_expect = false;
	uint32_t daddr = 0;
	uint16_t dport = 0;
	double max_time = 3600;
	uint64_t xor_key = 0;
	sigset_t set;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (ndev == MAX_DEVS) {
				fprintf(stderr, "bench_sink: at most %d --dev\n", MAX_DEVS);
				return 2;
			}
			devs[ndev++] = optarg;
			break;
		case 'e':
			if (bench_parse_endpoint(optarg, &daddr, &dport)) {
				fprintf(stderr, "bench_sink: bad --expect '%s'\n", optarg);
				return 2;
			}
			have_expect = true;
			break;
		case 'T':
			if (bench_parse_double(optarg, 1, 86400, &max_time)) {
				fprintf(stderr, "bench_sink: bad --max-time '%s'\n", optarg);
				return 2;
			}
			break;
		case 'x':
			if (bench_parse_u64(optarg, 1, 255, &xor_key)) {
				fprintf(stderr, "bench_sink: bad --xor '%s' (1..255)\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!ndev || !have_expect) {
		usage(stderr);
		return 2;
	}

	bench_block_signals(&set);

	skel = bench_sink_bpf__open();
	if (!skel) {
		fprintf(stderr, "bench_sink: cannot open the BPF object: %s\n", strerror(errno));
		return 1;
	}
	skel->rodata->cfg.daddr = daddr;
	skel->rodata->cfg.dport = htons(dport);
	skel->rodata->cfg.xor_key = (__u8)xor_key;
	err = bench_sink_bpf__load(skel);
	if (err) {
		fprintf(stderr, "bench_sink: cannot load: %s\n", strerror(-err));
		goto out;
	}
	for (int i = 0; i < ndev; i++) {
		int ifindex = (int)if_nametoindex(devs[i]);
		struct bench_mac mac = {0};
		__u32 key = (__u32)ifindex;

		if (!ifindex) {
			fprintf(stderr, "bench_sink: interface '%s': %s\n", devs[i], strerror(errno));
			err = -ENODEV;
			goto out;
		}
		err = bench_if_mac(devs[i], mac.addr);
		if (!err)
			err = bpf_map__update_elem(skel->maps.sink_macs, &key, sizeof(key), &mac,
						   sizeof(mac), BPF_ANY);
		if (err) {
			fprintf(stderr, "bench_sink: interface '%s': cannot record its MAC: %s\n",
				devs[i], strerror(-err));
			goto out;
		}
		err = bench_xdp_attach(bpf_program__fd(skel->progs.bench_sink), devs[i], &link_fds[i]);
		if (err) {
			fprintf(stderr, "bench_sink: interface '%s': native XDP attach failed: %s\n",
				devs[i], strerror(-err));
			goto out;
		}
	}
	fprintf(stderr, "bench_sink: attached (native) to %d interface(s)\n", ndev);
	printf("{\"ready\":1}\n");
	fflush(stdout);

	if (bench_serve(&set, max_time, report, skel) == -ETIMEDOUT)
		fprintf(stderr, "bench_sink: --max-time reached\n");
	err = 0;
out:
	/* Closing a link's last fd detaches its program. */
	for (int i = 0; i < MAX_DEVS; i++)
		if (link_fds[i] >= 0)
			close(link_fds[i]);
	bench_sink_bpf__destroy(skel);
	return err ? 1 : 0;
}
