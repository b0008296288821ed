// SPDX-License-Identifier: BSD-2-Clause
/*
 * bench_gen: a UDP/IPv4 traffic generator built on BPF_PROG_RUN live frames.
 *
 * The kernel runs bench_gen.bpf.c over page-pool frames in a loop and sends
 * each with XDP_TX out of --dev (a veth): no socket, no skb, no copy per
 * frame, which is what lets one CPU offer a few Mpps into a forwarder.  Run
 * it in the client's network namespace (the ifindex is looked up there).
 *
 * It makes one long call and stops it with a signal when the duration is
 * up: a call costs about a millisecond of CPU in setup and teardown (a page
 * pool per call, measured here), so calls must be few.  Pacing is therefore
 * done inside the program (a token bucket, see bench_gen.bpf.c).  The bucket
 * holds 256 frames, the veth's ring size: deep enough that a generator
 * preempted for a while (the sink shares its CPU) catches up instead of
 * losing the rate, shallow enough that the catch-up burst fits the proxy's
 * ring.  The frame count comes from the program's own counter and the rate
 * is measured, never assumed: offered_pps in the output is what was really
 * sent.
 *
 * Every load is bounded twice: --duration seconds and --count frames.
 * The output is one JSON object on stdout.
 */
#include <getopt.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench.h"
#include "bench_util.h"
#include "bench_gen.skel.h"
#include "csum.h"

#define MAX_DURATION_S 600.0
#define DEFAULT_BURST 256

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	/* Only interrupts the running BPF_PROG_RUN (-EINTR) and ends the loop. */
	stop = 1;
}

static void on_alarm(int sig)
{
}

struct gen_opts {
	const char *dev;
	uint8_t dst_mac[6], src_mac[6];
	bool have_dst_mac, have_src_mac;
	uint32_t saddr, daddr;
	uint16_t sport, dport;
	uint32_t flows, sports;
	uint32_t size;
	double rate;       /* frames per second, 0 = unpaced */
	double duration;
	uint64_t count;
	int cpu;           /* CPU whose busy share to report, -1 = none */
	uint32_t batch;
	uint32_t burst;    /* token bucket depth in frames */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_gen --dev DEV --dst-mac MAC --src ADDR --dst ADDR:PORT [options]\n"
		"  --dev DEV          send out of this interface (XDP_TX from a live-frames run)\n"
		"  --dst-mac MAC      destination MAC (the peer's)\n"
		"  --src-mac MAC      source MAC (default: DEV's)\n"
		"  --src ADDR         IPv4 source address\n"
		"  --dst ADDR:PORT    IPv4 destination and first destination port\n"
		"  --sport N          first source port (default 10000)\n"
		"  --flows N          distinct (source port, destination port) pairs (default 1)\n"
		"  --sports N         source ports per destination port (default: --flows)\n"
		"  --size BYTES       frame size without FCS, %d..%d (default 64)\n"
		"  --rate PPS         offered rate, 0 = unpaced (default 0)\n"
		"  --duration S       stop after S seconds (default 1, at most %.0f)\n"
		"  --count N          stop after N frames (default 1e9)\n"
		"  --cpu N            report CPU N's busy share over the run (/proc/stat)\n"
		"  --batch N          frames per kernel batch, 1..256 (default 64)\n"
		"  --burst N          paced: frames sent back to back at most (default %d)\n",
		BENCH_MIN_FRAME, BENCH_MAX_FRAME, MAX_DURATION_S, DEFAULT_BURST);
}

static int parse_args(int argc, char **argv, struct gen_opts *o)
{
	static const struct option longopts[] = {
		{"dev", required_argument, NULL, 'd'},
		{"dst-mac", required_argument, NULL, 'M'},
		{"src-mac", required_argument, NULL, 'm'},
		{"src", required_argument, NULL, 's'},
		{"dst", required_argument, NULL, 't'},
		{"sport", required_argument, NULL, 'p'},
		{"flows", required_argument, NULL, 'f'},
		{"sports", required_argument, NULL, 'F'},
		{"size", required_argument, NULL, 'S'},
		{"rate", required_argument, NULL, 'r'},
		{"duration", required_argument, NULL, 'D'},
		{"count", required_argument, NULL, 'c'},
		{"cpu", required_argument, NULL, 'C'},
		{"batch", required_argument, NULL, 'b'},
		{"burst", required_argument, NULL, 'k'},

		{"help", no_argument, NULL, 'h'},
		{},
	};
	bool have_src = false, have_dst = false;
	uint64_t v;
	int c, err = 0;

	*o = (struct gen_opts){
		.sport = 10000, .flows = 1, .size = 64, .duration = 1.0, .count = 1000000000ull,
		.cpu = -1, .batch = 64,
	};
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			o->dev = optarg;
			break;
		case 'M':
			err = bench_parse_mac(optarg, o->dst_mac);
			o->have_dst_mac = true;
			break;
		case 'm':
			err = bench_parse_mac(optarg, o->src_mac);
			o->have_src_mac = true;
			break;
		case 's':
			err = inet_pton(AF_INET, optarg, &o->saddr) == 1 ? 0 : -EINVAL;
			have_src = true;
			break;
		case 't':
			err = bench_parse_endpoint(optarg, &o->daddr, &o->dport);
			have_dst = true;
			break;
		case 'p':
			err = bench_parse_u64(optarg, 1, 65535, &v);
			o->sport = (uint16_t)v;
			break;
		case 'f':
			err = bench_parse_u64(optarg, 1, 1u << 24, &v);
			o->flows = (uint32_t)v;
			break;
		case 'F':
			err = bench_parse_u64(optarg, 1, 65535, &v);
			o->sports = (uint32_t)v;
			break;
		case 'S':
			err = bench_parse_u64(optarg, BENCH_MIN_FRAME, BENCH_MAX_FRAME, &v);
			o->size = (uint32_t)v;
			break;
		case 'r':
			err = bench_parse_double(optarg, 0, 1e8, &o->rate);
			break;
		case 'D':
			err = bench_parse_double(optarg, 0.001, MAX_DURATION_S, &o->duration);
			break;
		case 'c':
			err = bench_parse_u64(optarg, 1, 1ull << 40, &o->count);
			break;
		case 'C':
			err = bench_parse_u64(optarg, 0, 4095, &v);
			o->cpu = (int)v;
			break;
		case 'b':
			err = bench_parse_u64(optarg, 1, 256, &v);
			o->batch = (uint32_t)v;
			break;
		case 'k':
			err = bench_parse_u64(optarg, 1, 1u << 20, &v);
			o->burst = (uint32_t)v;
			break;

		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -EINVAL;
		}
		if (err) {
			fprintf(stderr, "bench_gen: invalid value '%s'\n", optarg);
			return err;
		}
	}
	if (!o->dev || !o->have_dst_mac || !have_src || !have_dst) {
		fprintf(stderr, "bench_gen: --dev, --dst-mac, --src and --dst are required\n");
		return -EINVAL;
	}
	if (!o->sports)
		o->sports = o->flows < 65535 ? o->flows : 65535;
	if ((uint64_t)o->sport + o->sports - 1 > 65535 ||
	    (uint64_t)o->dport + (o->flows - 1) / o->sports > 65535) {
		fprintf(stderr, "bench_gen: --flows/--sports run past port 65535\n");
		return -EINVAL;
	}
	return 0;
}

/* The frame the kernel copies into each new page: headers get rewritten, the payload never. */
static void build_frame(uint8_t *f, const struct gen_opts *o, uint32_t *payload_sum)
{
	static const char magic[BENCH_MAGIC_LEN] = {'F', 'E', 'R', 'R', 'Y', 'B', 'N', 'C'};
	uint8_t *payload = f + BENCH_HDR_LEN;
	uint32_t plen = o->size - BENCH_HDR_LEN;

	memset(f, 0, BENCH_HDR_LEN);
	memcpy(payload, magic, sizeof(magic));
	for (uint32_t i = sizeof(magic); i < plen; i++)
		payload[i] = (uint8_t)(i * 7 + 1);
	*payload_sum = csum_partial(payload, plen, 0);
}

static int install_handlers(void)
{
	struct sigaction sa = {0};

	/* No SA_RESTART: the signal must end the kernel's loop with EINTR. */
	sa.sa_handler = on_signal;
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL))
		return -errno;
	sa.sa_handler = on_alarm;
	if (sigaction(SIGALRM, &sa, NULL))
		return -errno;
	return 0;
}

static int run_frames(int prog_fd, const uint8_t *frame, uint32_t len, int ifindex, uint32_t batch,
		      uint32_t n)
{
	struct xdp_md ctx = {
		.data = 0,
		.data_end = len,
		.ingress_ifindex = (uint32_t)ifindex,
		.rx_queue_index = 0,
	};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = len, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = n, .flags = BPF_F_TEST_XDP_LIVE_FRAMES,
		    .batch_size = batch);
	int err;

	err = bpf_prog_test_run_opts(prog_fd, &opts);
	return err < 0 ? -errno : 0;
}

int main(int argc, char **argv)
{
	struct bench_cpu_sample cpu0 = {0}, cpu1 = {0};
	uint8_t frame[BENCH_MAX_FRAME];
	struct bench_gen_bpf *skel;
	struct bench_gen_cfg *cfg;
	struct itimerval it = {0};
	struct rusage ru;
	struct gen_opts o;
	double t0, t1, end;
	uint64_t sent = 0;
	int ifindex, prog_fd, err, run_err = 0;

	if (parse_args(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}
	ifindex = (int)if_nametoindex(o.dev);
	if (!ifindex) {
		fprintf(stderr, "bench_gen: interface '%s': %s\n", o.dev, strerror(errno));
		return 1;
	}
	if (!o.have_src_mac && bench_if_mac(o.dev, o.src_mac)) {
		fprintf(stderr, "bench_gen: interface '%s': cannot read its MAC\n", o.dev);
		return 1;
	}
	if (install_handlers())
		return 1;
	skel = bench_gen_bpf__open();
	if (!skel) {
		fprintf(stderr, "bench_gen: cannot open the BPF object: %s\n", strerror(errno));
		return 1;
	}
	cfg = (struct bench_gen_cfg *)&skel->rodata->cfg;
	build_frame(frame, &o, &cfg->payload_sum);
	memcpy(cfg->dst_mac, o.dst_mac, 6);
	memcpy(cfg->src_mac, o.src_mac, 6);
	cfg->saddr = o.saddr;
	cfg->daddr = o.daddr;
	cfg->sport = o.sport;
	cfg->dport = o.dport;
	cfg->nr_flows = o.flows;
	cfg->nr_sports = o.sports;
	cfg->frame_len = (uint16_t)o.size;
	cfg->ttl = 64;
	cfg->max_frames = o.count;
	if (o.rate > 0) {
		cfg->rate_fp = (uint64_t)(o.rate * 4294967296.0 / 1e9);
		cfg->burst = o.burst ?: DEFAULT_BURST;
	}
	err = bench_gen_bpf__load(skel);
	if (err) {
		fprintf(stderr, "bench_gen: cannot load the BPF program: %s\n", strerror(-err));
		goto out;
	}
	prog_fd = bpf_program__fd(skel->progs.bench_gen);

	if (o.cpu >= 0)
		bench_cpu_read(o.cpu, &cpu0);
	t0 = bench_now();
	end = t0 + o.duration;
	it.it_value.tv_sec = (time_t)o.duration;
	it.it_value.tv_usec = (suseconds_t)((o.duration - (double)(time_t)o.duration) * 1e6);
	setitimer(ITIMER_REAL, &it, NULL);
	/* One call normally; another only if --count needs more than a call can take. */
	while (!stop && bench_now() < end && sent < o.count) {
		uint64_t n = o.count - sent;

		/* Paced runs include those that found no token: the program enforces --count. */
		run_err = run_frames(prog_fd, frame, o.size, ifindex, o.batch,
				     n > UINT32_MAX || o.rate > 0 ? UINT32_MAX : (uint32_t)n);
		sent = skel->bss->sent;
		if (run_err && run_err != -EINTR)
			break;
		run_err = 0;
	}
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
	t1 = bench_now();
	if (o.cpu >= 0)
		bench_cpu_read(o.cpu, &cpu1);
	sent = skel->bss->sent;
	if (run_err)
		fprintf(stderr, "bench_gen: BPF_PROG_RUN failed: %s\n", strerror(-run_err));

	printf("{\"sent\":%" PRIu64 ",\"elapsed_s\":%.6f,\"offered_pps\":%.0f,\"size\":%u,"
	       "\"rate\":%.0f,\"flows\":%u,\"idle_runs\":%llu",
	       sent, t1 - t0, (double)sent / (t1 - t0), o.size, o.rate, o.flows,
	       (unsigned long long)skel->bss->idle_runs);
	if (o.cpu >= 0)
		printf(",\"cpu\":%d,\"cpu_busy\":%.4f", o.cpu, bench_cpu_share(&cpu0, &cpu1));
	getrusage(RUSAGE_SELF, &ru);
	printf(",\"gen_cpu_s\":%.3f}\n", (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
					       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6);
	err = run_err;
out:
	bench_gen_bpf__destroy(skel);
	return err ? 1 : 0;
}
