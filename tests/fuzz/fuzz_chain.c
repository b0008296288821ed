// SPDX-License-Identifier: BSD-2-Clause
/*
 * libFuzzer harness: a worker's packet path from RX to TX completion.
 *
 * The input is a script for one fresh worker of one of several daemons
 * (fuzz_env.c: real config, real services, real daemon/rx.c, chain.c,
 * worker_nh.c, lib/xdp_port.c and umem.c, stub resolver and notifications,
 * rings in plain memory).  The
 * daemons' configs (configs[] below) between them run every built-in
 * service, with different arguments:
 *
 *   byte 0     the config (configs[byte % NR_CONFIGS])
 *   byte 1     resolver and ring knobs (set_knobs)
 *   then ops   op & 3 == 0/1: a frame arriving on port 0/1; its length is
 *                (op >> 2) << 8 | next byte, its bytes follow
 *              op & 3 == 2: end of burst, then op bits 2-5: time advance in
 *                100 ms steps, bit 6: the worker's tick, bit 7: the next byte
 *                sets new knobs
 *              op & 3 == 3, by op bits 6-7:
 *                0: up to op bits 2-5 (0: all) of the frames sent upstream
 *                   come back as the upstream's replies, on port 1
 *                1: the first frame sent upstream comes back as an ICMP
 *                   error about it; the next byte picks its kind (make_icmp)
 *                2: a route/neighbour/link notification; two bytes (event)
 *                3: as 2, then 10 ms pass and the tick runs
 *
 * A burst is admitted and classified by worker__admit() and grouped per
 * flow by worker__burst_begin()/worker__burst_next(), as daemon/rx.c does;
 * each flow's chain runs through worker__run_chain(), TX through
 * worker__flush_tx() and port__tx(), and the stub kernel completes it.
 * Asserted: every packet leaves the chain sent, dropped or held; what is
 * sent parses, has the length it left its chain with (the length it came
 * in with unless a service of the flow resizes payloads), carries its egress
 * port's MAC and, if it came in with valid checksums, still has them;
 * nothing reads past the end of a received frame (the rest of its UMEM frame
 * is poisoned for ASan); frames are conserved (every one received or emitted
 * by a service is unclassified, counted once as sent or dropped, or still
 * held by a service) after every burst; and once the services stop, every
 * frame is back in the UMEM's pool.
 *
 * FUZZ_CHAIN_COVERAGE=1: at exit, how many inputs ran each built-in service
 * (its process() got packets), and whether every one of them ran;
 * tests/fuzz/run.sh runs the seed corpus so and fails unless all did.
 */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sanitizer/asan_interface.h>

#include "csum.h"
#include "ferry_match.h"
#include "fuzz.h"
#include "fuzz_env.h"
#include "icmp.h"
#include "log.h"
#include "nat.h"
#include "packet.h"
#include "service.h"

#define NR_FRAMES 128
#define MAX_CAPTURED 16
#define CAPTURE_LEN 2048
#define NR_RECENT 4

static const char forward_yaml[] =
	"interfaces:\n"
	"  - name: fz-c\n"
	"  - name: fz-s\n"
	"nat:\n"
	"  ports: 40000-40007\n"
	"  max_sessions: 8\n"
	"  udp_timeout: 1\n"
	"  tcp_syn_timeout: 1\n"
	"  tcp_established_timeout: 2\n"
	"  tcp_closing_timeout: 1\n"
	"umem:\n"
	"  frames: 512\n"
	"  frame_size: 2048\n"
	"  ring_size: 64\n"
	"  batch: 16\n"
	"flows:\n"
	"  - name: udp4\n"
	"    match: {protocol: udp, destination: 198.18.1.1, port: 5000}\n"
	"    services:\n"
	"      - forward: {upstream: '198.18.2.2:6000'}\n"
	"  - name: tcp6\n"
	"    match: {protocol: tcp, destination: 'fd00:1::1', port: 443-444}\n"
	"    services:\n"
	"      - forward: {upstream: '[fd00:2::2]:8443', source: 'fd00:2::1'}\n"
	"  - name: udp4-net\n"
	"    match: {protocol: udp, destination: 198.18.1.0/24, port: 1-65535,\n"
	"            source: 198.18.0.0/15}\n"
	"    services:\n"
	"      - forward: {upstream: '198.18.2.3:53'}\n"
	"  - name: tcp4-any\n"
	"    match: {protocol: tcp, destination: 0.0.0.0/0, port: 1-65535}\n"
	"    services:\n"
	"      - forward: {upstream: '198.18.2.4:80'}\n"
	"  - name: udp6-any\n"
	"    match: {protocol: udp, destination: '::/0', port: 1-65535}\n"
	"    services:\n"
	"      - forward: {upstream: '[fd00:2::5]:5353'}\n";

#define COMMON_YAML                                                                                \
	"interfaces: [{name: fz-c}, {name: fz-s}]\n"                                               \
	"nat: {ports: 40000-40015, max_sessions: 16, udp_timeout: 1, tcp_syn_timeout: 1,\n"         \
	"      tcp_established_timeout: 2, tcp_closing_timeout: 1}\n"                                \
	"umem: {frames: 512, frame_size: 2048, ring_size: 64, batch: 16}\n"

/* Every service but tap, IPv4; each flow has upstreams of its own. */
static const char services_a_yaml[] =
	COMMON_YAML
	"flows:\n"
	"  - name: filter-lb\n"
	"    match: {protocol: udp, destination: 198.18.1.1, port: 5001}\n"
	"    services:\n"
	"      - filter: {deny: [{source_port: 1-1023}], allow: [{source: 198.18.0.0/15}],\n"
	"                 default: deny}\n"
	"      - lb: {upstreams: ['198.18.2.2:6001', {address: '198.18.2.3:6001', weight: 3}],\n"
	"             table_size: 211}\n"
	"  - name: rate-flow\n"
	"    match: {protocol: udp, destination: 198.18.1.1, port: 5002}\n"
	"    services:\n"
	"      - ratelimit: {packets_per_second: 10, burst_packets: 3}\n"
	"      - forward: {upstream: '198.18.2.2:6002'}\n"
	"  - name: rate-source\n"
	"    match: {protocol: tcp, destination: 198.18.1.1, port: 5002}\n"
	"    services:\n"
	"      - ratelimit: {bytes_per_second: 2000, burst_bytes: 3000, per: source,\n"
	"                    max_sources: 8, direction: both}\n"
	"      - forward: {upstream: '198.18.2.2:6003'}\n"
	"  - name: zip\n"
	"    match: {protocol: udp, destination: 198.18.1.1, port: 5003}\n"
	"    services:\n"
	"      - compress: {level: 1, min_size: 16}\n"
	"      - decompress: {direction: reply}\n"
	"      - forward: {upstream: '198.18.2.2:6004'}\n"
	"  - name: unzip\n"
	"    match: {protocol: udp, destination: 198.18.1.1, port: 5004}\n"
	"    services:\n"
	"      - decompress: {max_size: 1400}\n"
	"      - compress: {direction: reply, level: 6}\n"
	"      - forward: {upstream: '198.18.2.2:6005'}\n"
	"  - name: mirror\n"
	"    match: {protocol: udp, destination: 198.18.1.1, port: 5005}\n"
	"    services:\n"
	"      - app: {name: fz-mirror, owner: root}\n"
	"      - mirror: {to: ['198.18.2.9:9', '198.18.2.10:9']}\n"
	"      - forward: {upstream: '198.18.2.2:6006'}\n"
	"  - name: fanout\n"
	"    match: {protocol: udp, destination: 198.18.1.1, port: 5006}\n"
	"    services:\n"
	"      - fanout: {subscribers: ['198.18.2.2:7000', '198.18.2.3:7000', '198.18.2.4:7000']}\n"
	"  - name: paced\n"
	"    match: {protocol: udp, destination: 198.18.1.1, port: 5007}\n"
	"    services:\n"
	"      - forward: {upstream: '198.18.2.2:6007'}\n"
	"      - pace: {rate_pps: 1000, queue: 8}\n";

/* The same services with other arguments, IPv6 and TCP. */
static const char services_b_yaml[] =
	COMMON_YAML
	"flows:\n"
	"  - name: filter6-lb\n"
	"    match: {protocol: udp, destination: 'fd00:1::1', port: 5001-5002}\n"
	"    services:\n"
	"      - filter: {allow: [{payload: {offset: 0, mask: '0xf0', value: '0x40'}},\n"
	"                         {destination_port: 5002}],\n"
	"                 deny: [{source: 'fd00:1::/64'}], default: allow, direction: both}\n"
	"      - lb: {upstreams: ['[fd00:2::2]:6001', '[fd00:2::3]:6001', '[fd00:2::4]:6001'],\n"
	"             table_size: 307}\n"
	"  - name: rate-zip6\n"
	"    match: {protocol: udp, destination: 'fd00:1::1', port: 5003}\n"
	"    services:\n"
	"      - ratelimit: {packets_per_second: 1000, bytes_per_second: 100000, per: source,\n"
	"                    max_sources: 8}\n"
	"      - compress: {level: 9, min_size: 0, direction: both}\n"
	"      - decompress: {direction: both, max_size: 2000}\n"
	"      - forward: {upstream: '[fd00:2::2]:6003'}\n"
	"  - name: mirror6-lb\n"
	"    match: {protocol: udp, destination: 'fd00:1::1', port: 5005}\n"
	"    services:\n"
	"      - mirror: {to: ['[fd00:2::9]:9']}\n"
	"      - lb: {upstreams: ['[fd00:2::2]:6005', '[fd00:2::5]:6005'], table_size: 211}\n"
	"  - name: fanout6\n"
	"    match: {protocol: udp, destination: 'fd00:1::1', port: 5006}\n"
	"    services:\n"
	"      - fanout: {subscribers: ['[fd00:2::2]:7000']}\n"
	"  - name: unzip-paced\n"
	"    match: {protocol: udp, destination: 198.18.1.1, port: 5007}\n"
	"    services:\n"
	"      - decompress: {}\n"
	"      - forward: {upstream: '198.18.2.2:6008'}\n"
	"      - pace: {rate_bps: 100000, rate_pps: 50, queue: 2, direction: client}\n"
	"  - name: tcp-lb-paced\n"
	"    match: {protocol: tcp, destination: 198.18.1.1, port: 443}\n"
	"    services:\n"
	"      - filter: {deny: [{source_port: 1-1023}]}\n"
	"      - lb: {upstreams: ['198.18.2.2:8443', '198.18.2.3:8443'], table_size: 211}\n"
	"      - pace: {rate_pps: 100}\n";

/*
 * tap, into pcap files in a directory of our own (%s, three times).  A tap
 * takes its worker's slot once per conf, so this daemon is made for each
 * input that picks it.
 */
static const char tap_yaml[] =
	COMMON_YAML
	"flows:\n"
	"  - name: tap\n"
	"    match: {protocol: udp, destination: 198.18.1.1, port: 5008}\n"
	"    services:\n"
	"      - tap: {pcap: '%s/in.pcap', max_bytes: 4096, files: 3, snaplen: 64}\n"
	"      - forward: {upstream: '198.18.2.2:6009'}\n"
	"      - tap: {pcap: '%s/out.pcap', direction: client}\n"
	"  - name: tap-zip6\n"
	"    match: {protocol: udp, destination: 'fd00:1::1', port: 5008}\n"
	"    services:\n"
	"      - compress: {}\n"
	"      - tap: {pcap: '%s/zip.pcap', direction: reply}\n"
	"      - forward: {upstream: '[fd00:2::2]:6009'}\n"
	"      - pace: {rate_pps: 2000, queue: 4}\n";

static const struct {
	const char *yaml;
	bool per_input; /* made and destroyed for each input */
} configs[] = {
	{ forward_yaml, false },
	{ services_a_yaml, false },
	{ services_b_yaml, false },
	{ tap_yaml, true },
};
#define NR_CONFIGS (sizeof(configs) / sizeof(configs[0]))

/* The forward config's upstreams, for notifications about them. */
static const union ferry_addr upstreams[] = {
	{ .b = { 198, 18, 2, 2 } },
	{ .b = { 0xfd, 0, 0, 2, [15] = 2 } },
	{ .b = { 198, 18, 2, 3 } },
	{ .b = { 198, 18, 2, 4 } },
	{ .b = { 0xfd, 0, 0, 2, [15] = 5 } },
};

static struct ferry_daemon *daemons[NR_CONFIGS];
/* Flows with a service that changes payload lengths. */
static bool resizes[NR_CONFIGS][CFG_MAX_FLOWS];
static char tap_dir[64];

/* FUZZ_CHAIN_COVERAGE: inputs that ran each built-in service, by name. */
static bool coverage;
static struct {
	const char *name;
	uint64_t inputs;
} ran[32];
static unsigned int nr_ran;
/* FUZZ_CHAIN_VERBOSE=1: one line per input, to see where seeds go; 2: every frame. */
static int verbose;

/* What the harness remembers per UMEM frame between RX and TX. */
struct frame_note {
	uint32_t rx_len;
	uint32_t tx_len; /* as it left its chain, sent or held */
	bool csum_valid;
	bool in_use; /* received or emitted, and not yet seen sent or dropped */
	uint8_t dir;
};

struct pending {
	uint64_t addr;
	uint32_t len;
};

struct recent {
	union ferry_addr addr;
	int family;
};

struct run {
	struct ferry_worker *w;
	struct frame_note notes[NR_FRAMES];
	struct pending pending[CFG_MAX_IFACES][WORKER_MAX_BATCH];
	uint32_t nr_pending[CFG_MAX_IFACES];
	uint8_t captured[MAX_CAPTURED][CAPTURE_LEN];
	uint32_t captured_len[MAX_CAPTURED];
	uint32_t nr_captured;
	struct recent recent[NR_RECENT]; /* sources of received packets */
	uint32_t nr_recent;
	uint64_t received, unclassified, sent, held;
	unsigned int config;
};

/* Empties the tap directory: each tap daemon starts on files of its own. */
static void clear_tap_dir(void)
{
	DIR *dir = opendir(tap_dir);
	struct dirent *de;

	if (!dir)
		return;
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dirfd(dir), de->d_name, 0);
	closedir(dir);
}

static int make_daemon(unsigned int i, struct ferry_daemon **out)
{
	size_t size = strlen(configs[i].yaml) + 3 * sizeof(tap_dir);
	struct ferry_daemon *d;
	char *yaml = malloc(size);
	int err;

	FUZZ_CHECK(yaml, "out of memory");
	snprintf(yaml, size, configs[i].yaml, tap_dir, tap_dir, tap_dir);
	if (configs[i].per_input)
		clear_tap_dir();
	err = fuzz_env__daemon_create(&d, yaml);
	free(yaml);
	if (err) {
		fprintf(stderr, "fuzz_chain: the daemon of config %u does not start: %s\n", i,
			strerror(-err));
		abort();
	}
	for (int f = 0; f < d->nr_flows; f++)
		for (int s = 0; s < d->flows[f].nr; s++)
			if (!strcmp(d->flows[f].ops[s]->name, "compress") ||
			    !strcmp(d->flows[f].ops[s]->name, "decompress"))
				resizes[i][f] = true;
	*out = d;
	return 0;
}

static void count_service(const struct ferry_service_ops *ops, void *ctx)
{
	if (nr_ran < sizeof(ran) / sizeof(ran[0]))
		ran[nr_ran++].name = ops->name;
}

static void report_coverage(void)
{
	unsigned int missing = 0;

	for (unsigned int i = 0; i < nr_ran; i++) {
		fprintf(stderr, "fuzz_chain: coverage: %s ran in %llu inputs\n", ran[i].name,
			(unsigned long long)ran[i].inputs);
		missing += !ran[i].inputs;
	}
	if (missing)
		fprintf(stderr, "fuzz_chain: coverage: %u built-in services never ran\n", missing);
	else
		fprintf(stderr, "fuzz_chain: coverage: all %u built-in services ran\n", nr_ran);
}

/* At exit: the daemons stop (tap's writers with them), the tap directory goes. */
static void cleanup(void)
{
	if (coverage)
		report_coverage();
	for (unsigned int i = 0; i < NR_CONFIGS; i++) {
		fuzz_env__daemon_destroy(daemons[i]);
		daemons[i] = NULL;
	}
	if (tap_dir[0]) {
		clear_tap_dir();
		rmdir(tap_dir);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	log__init("fuzz_chain");
	log__set_level(FERRY_LOG_ERR);
	verbose = getenv("FUZZ_CHAIN_VERBOSE") ? atoi(getenv("FUZZ_CHAIN_VERBOSE")) : 0;
	coverage = getenv("FUZZ_CHAIN_COVERAGE") && atoi(getenv("FUZZ_CHAIN_COVERAGE"));
	service__foreach(count_service, NULL);
	snprintf(tap_dir, sizeof(tap_dir), "%s/fuzz_chain.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(tap_dir)) {
		fprintf(stderr, "fuzz_chain: mkdtemp %s: %s\n", tap_dir, strerror(errno));
		abort();
	}
	atexit(cleanup);
	for (unsigned int i = 0; i < NR_CONFIGS; i++)
		if (!configs[i].per_input)
			make_daemon(i, &daemons[i]);
	return 0;
}

static uint32_t tx_ring_for(uint8_t knobs)
{
	return knobs & 0x80 ? 4 : 64;
}

static void set_knobs(uint8_t k)
{
	fuzz_nh.client_route = (enum fuzz_client_route)((k & 3) == 3 ? 0 : k & 3);
	fuzz_nh.client_unresolved = k & 0x04;
	fuzz_nh.upstream_unresolved = k & 0x08;
	fuzz_nh.upstream_failed = k & 0x10;
	fuzz_nh.route_fails = k & 0x20;
	fuzz_nh.mtu = k & 0x40 ? 576 : 1500;
}

static struct frame_note *note_of(struct run *r, uint64_t addr)
{
	uint64_t i = addr / r->w->umem->frame_size;

	FUZZ_CHECK(i < NR_FRAMES, "frame address %llu outside the UMEM", (unsigned long long)addr);
	return &r->notes[i];
}

/* Frames services took from the pool for packets of their own. */
static uint64_t emitted(const struct ferry_worker *w)
{
	uint64_t n = 0;

	for (int f = 0; f < w->d->nr_flows; f++)
		for (int s = 0; s < w->d->flows[f].nr; s++)
			n += w->svc_stats[f][s].emitted;
	return n;
}

/*
 * Every frame that left the worker's hands: sent, or dropped for a reason.
 * A no_frame drop is a copy that never got a frame: it is no frame's drop.
 */
static uint64_t accounted(const struct ferry_worker *w)
{
	uint64_t n = 0;

	for (int f = 0; f < w->d->nr_flows; f++) {
		const struct ferry_fwd_stats *st = &w->flow_stats[f];
		const __u64 *drop = &st->drop_malformed;

		n += st->tx_packets + st->reply_packets;
		for (int i = 0; i < FERRY_DROP__MAX; i++)
			n += drop[i];
		n -= st->drop_no_frame;
	}
	return n;
}

static void trace(const char *what, int port, const uint8_t *f, uint32_t len)
{
	char src[INET6_ADDRSTRLEN] = "?", dst[INET6_ADDRSTRLEN] = "?";
	struct pkt_info pi;
	enum pkt_parse_result res;

	if (verbose < 2)
		return;
	memset(&pi, 0, sizeof(pi));
	res = pkt_parse(f, len, &pi);
	if (res == PKT_OK) {
		inet_ntop(pi.family == 4 ? AF_INET : AF_INET6, pi.saddr.b, src, sizeof(src));
		inet_ntop(pi.family == 4 ? AF_INET : AF_INET6, pi.daddr.b, dst, sizeof(dst));
	}
	fprintf(stderr,
		"  %s port %d len %u: %s proto %u %s:%u -> %s:%u ttl %u"
		" mac %02x:%02x:%02x:%02x:%02x:%02x -> %02x:%02x:%02x:%02x:%02x:%02x\n",
		what, port, len, pkt_parse_result_str(res), pi.l4_proto, src, pi.sport, dst,
		pi.dport, pi.ttl, f[6], f[7], f[8], f[9], f[10], f[11], f[0], f[1], f[2], f[3],
		f[4], f[5]);
}

static void run_chain(struct run *r, uint32_t flow, struct ferry_pkt **pkts, uint32_t n)
{
	struct ferry_worker *w = r->w;

	/*
	 * A service that grows a payload writes into the rest of the frame
	 * (ferry_worker__frame_room()), legitimately: there ASan sees only
	 * what is past the frame itself.
	 */
	for (uint32_t i = 0; resizes[r->config][flow] && i < n; i++)
		ASAN_UNPOISON_MEMORY_REGION(pkts[i]->data, ferry_worker__frame_room(w, pkts[i]));
	worker__run_chain(w, flow, pkts, n);
	/* What came in and what services emitted on the way (chain_all has both). */
	for (uint32_t i = 0; i < w->chain_nr_all; i++) {
		const struct ferry_pkt *p = w->chain_all[i];
		struct frame_note *note = note_of(r, p->addr);
		bool copy = i >= n;

		FUZZ_CHECK(p->verdict == FERRY_VERDICT_TX || p->verdict == FERRY_VERDICT_DROP ||
				   p->verdict == FERRY_VERDICT_HOLD,
			   "flow %u: packet %u left the chain with verdict %u", flow, i,
			   p->verdict);
		if (copy) {
			/*
			 * A fresh frame from the pool (its note may still say in use:
			 * a held frame that a service dropped later is not seen here).
			 */
			note->rx_len = p->len;
			note->csum_valid = false;
		}
		if (p->verdict == FERRY_VERDICT_HOLD ||
		    (p->verdict == FERRY_VERDICT_TX && p->out_port < w->nr_ports)) {
			note->in_use = true;
			note->tx_len = p->len;
			if (!copy && !resizes[r->config][flow])
				FUZZ_CHECK(p->len == note->rx_len,
					   "flow %u: %u bytes left a chain that does not resize, %u came",
					   flow, p->len, note->rx_len);
		} else {
			note->in_use = false;
		}
		if (p->verdict == FERRY_VERDICT_HOLD) {
			r->held++;
		} else if (p->verdict == FERRY_VERDICT_TX && p->out_port < w->nr_ports) {
			/* Towards the upstream means out of the upstream's port. */
			if (p->dir == FERRY_DIR_CLIENT)
				FUZZ_CHECK(p->out_port == FUZZ_PORT_S,
					   "client packet sent on port %u", p->out_port);
		}
		note->dir = p->dir;
	}
}

static void remember_source(struct run *r, const struct pkt_info *pi)
{
	struct recent *rc = &r->recent[r->nr_recent++ % NR_RECENT];

	rc->addr = pi->saddr;
	rc->family = pi->family == 4 ? AF_INET : AF_INET6;
}

/*
 * One port's burst as daemon/rx.c's worker__rx() takes it (one worker: no
 * handoff): worker__admit() each frame, then worker__run_burst()'s steps,
 * with the checks of each chain run in between.
 */
static void process_burst(struct run *r, int port)
{
	struct ferry_worker *w = r->w;
	struct port *xp = w->ports[port];
	uint32_t nr = 0, pos = 0, flow, m;

	for (uint32_t i = 0; i < r->nr_pending[port]; i++) {
		uint64_t addr = r->pending[port][i].addr;
		struct ferry_pkt *p = &w->pkts[nr];
		struct frame_note *note = note_of(r, addr);

		if (!worker__admit(w, addr, r->pending[port][i].len, xp, false, &nr)) {
			r->unclassified++;
			note->in_use = false;
			continue;
		}
		FUZZ_CHECK(p->flow_id < (uint32_t)w->d->nr_flows, "admitted to flow %u",
			   p->flow_id);
		remember_source(r, &p->pi);
		note->rx_len = p->len;
		note->csum_valid = !icmp_is_error(&p->pi) && csum_verify(p->data, &p->pi) == 1;
	}
	r->nr_pending[port] = 0;
	worker__burst_begin(w, nr);
	while ((m = worker__burst_next(w, nr, &pos, &flow)))
		run_chain(r, flow, w->flow_pkts, m);
}

static void on_sent(const uint8_t *frame, uint32_t len, int port, void *ctx)
{
	struct run *r = ctx;
	struct ferry_worker *w = r->w;
	uint64_t addr = (uint64_t)(frame - (const uint8_t *)w->umem->area);
	struct frame_note *note = note_of(r, addr);
	struct pkt_info pi;

	trace("tx", port, frame, len);
	FUZZ_CHECK(note->in_use, "port %d: sent a frame that was not received", port);
	FUZZ_CHECK(len == note->tx_len, "port %d: sent %u bytes of a %u-byte frame", port, len,
		   note->tx_len);
	FUZZ_CHECK(pkt_parse(frame, len, &pi) == PKT_OK, "port %d: sent frame does not parse",
		   port);
	FUZZ_CHECK(fuzz_env__is_port_mac(w->ports[port]->ifindex, frame + 6),
		   "port %d: sent with another port's MAC", port);
	if (note->csum_valid)
		FUZZ_CHECK(csum_verify(frame, &pi) == 1, "port %d: valid checksums broken", port);
	if (note->dir == FERRY_DIR_CLIENT && !icmp_is_error(&pi) && r->nr_captured < MAX_CAPTURED &&
	    len <= CAPTURE_LEN) {
		memcpy(r->captured[r->nr_captured], frame, len);
		r->captured_len[r->nr_captured++] = len;
	}
	note->in_use = false;
	r->sent++;
}

/* What the stub kernel sent and completed since last time; then the books. */
static void complete_tx(struct run *r)
{
	struct ferry_worker *w = r->w;
	struct umem *u = w->umem;

	for (int port = 0; port < w->nr_ports; port++) {
		fuzz_env__kernel_tx(w, port, on_sent, r);
		port__complete(w->ports[port]);
	}
	FUZZ_CHECK(umem__check(u, "fuzz_chain") == 0, "frame accounting");
	/* Free frames are whole again, for services that build packets in them. */
	for (uint32_t i = 0; i < u->nr_free; i++)
		ASAN_UNPOISON_MEMORY_REGION(umem__data(u, u->stack[i]), u->frame_size);
	FUZZ_CHECK(u->kernel_tx == 0 && u->kernel_rx == 0, "frames left with the kernel");
	FUZZ_CHECK(u->nr_free + u->held == u->nr_frames, "free %u + held %u != %u frames",
		   u->nr_free, u->held, u->nr_frames);
	/* Conservation: whatever was not refused or accounted for is still held by a service. */
	FUZZ_CHECK(r->received - r->unclassified + emitted(w) == accounted(w) + u->held,
		   "%llu received, %llu unclassified, %llu emitted, %llu sent or dropped, %u held",
		   (unsigned long long)r->received, (unsigned long long)r->unclassified,
		   (unsigned long long)emitted(w), (unsigned long long)accounted(w), u->held);
	FUZZ_CHECK(u->held <= r->held, "%u frames held, but services held only %llu", u->held,
		   (unsigned long long)r->held);
}

/* One loop of the worker: RX per port, chains, TX, completions. */
static void end_burst(struct run *r)
{
	struct ferry_worker *w = r->w;

	for (int port = 0; port < w->nr_ports; port++)
		if (r->nr_pending[port])
			process_burst(r, port);
	worker__flush_tx(w);
	for (int i = 0; i < w->nr_ports; i++)
		FUZZ_CHECK(w->nr_tx[i] == 0, "port %d: TX queue not flushed", i);
	complete_tx(r);
}

static void add_frame(struct run *r, int port, const uint8_t *bytes, uint32_t len)
{
	struct ferry_worker *w = r->w;
	uint64_t addr;

	if (r->nr_pending[port] == w->batch)
		end_burst(r);
	/* Like a real FILL ring, RX stops while services hold the pool empty. */
	if (!umem__alloc(w->umem, &addr))
		return;
	/*
	 * The rest of a real frame holds whatever was there before: reading it
	 * is a bug ASan could not see in one big area, so it is poisoned.
	 */
	ASAN_POISON_MEMORY_REGION((uint8_t *)umem__data(w->umem, addr) + len,
				  w->umem->frame_size - len);
	memcpy(umem__data(w->umem, addr), bytes, len);
	trace("rx", port, bytes, len);
	note_of(r, addr)->in_use = true;
	r->pending[port][r->nr_pending[port]].addr = addr;
	r->pending[port][r->nr_pending[port]++].len = len;
	r->received++;
}

static void swap(uint8_t *a, uint8_t *b, unsigned int n)
{
	uint8_t tmp[16];

	memcpy(tmp, a, n);
	memcpy(a, b, n);
	memcpy(b, tmp, n);
}

static void drop_captured(struct run *r, uint32_t n)
{
	memmove(r->captured, r->captured + n, (r->nr_captured - n) * sizeof(r->captured[0]));
	memmove(r->captured_len, r->captured_len + n,
		(r->nr_captured - n) * sizeof(r->captured_len[0]));
	r->nr_captured -= n;
}

/* The upstream answers what ferry sent it: addresses, ports and MACs swapped. */
static void reflect(struct run *r, uint32_t count)
{
	uint32_t n = count && count < r->nr_captured ? count : r->nr_captured;

	for (uint32_t i = 0; i < n; i++) {
		uint8_t *f = r->captured[i];
		struct pkt_info pi;
		unsigned int a, alen;

		FUZZ_CHECK(pkt_parse(f, r->captured_len[i], &pi) == PKT_OK, "captured frame");
		a = pi.l3_off + (pi.family == 4 ? 12 : 8);
		alen = pi.family == 4 ? 4 : 16;
		swap(f, f + 6, 6);
		swap(f + a, f + a + alen, alen);
		swap(f + pi.l4_off, f + pi.l4_off + 2, 2);
		add_frame(r, FUZZ_PORT_S, f, r->captured_len[i]);
	}
	drop_captured(r, n);
}

/*
 * An ICMP error about the first frame sent upstream, as the upstream or a
 * router on the way would send it.  `how`: bits 0-1 the kind (unreachable,
 * time exceeded, too big, parameter problem), bit 2 from a router instead of
 * the upstream, bits 3-7 the quote's length past the L4 header's first
 * 8 bytes, in 8-byte steps.
 */
static void make_icmp(struct run *r, uint8_t how)
{
	static const uint8_t types4[4][2] = { { 3, 3 }, { 11, 0 }, { 3, 4 }, { 12, 0 } };
	static const uint8_t types6[4][2] = { { 1, 4 }, { 3, 0 }, { 2, 0 }, { 4, 0 } };
	static const uint8_t router4[4] = { 198, 18, 2, 254 };
	static const uint8_t router6[16] = { 0xfd, 0, 0, 2, [15] = 0xfe };
	uint8_t f[CAPTURE_LEN], *q = r->captured[0];
	struct pkt_info pi;
	uint32_t hl, ql, len, extra = (uint32_t)(how >> 3) * 8;
	uint16_t c;
	int kind = how & 3;

	if (!r->nr_captured)
		return;
	FUZZ_CHECK(pkt_parse(q, r->captured_len[0], &pi) == PKT_OK, "captured frame");
	/* The quote: the sent IP packet, cut after its first L4 bytes. */
	ql = pi.l4_off - pi.l3_off + 8 + extra;
	if (ql > pi.pkt_len - pi.l3_off)
		ql = pi.pkt_len - pi.l3_off;
	hl = pi.family == 4 ? 20 : 40;
	len = 14 + hl + 8 + ql;
	memset(f, 0, 14 + hl + 8);
	memcpy(f, q + 6, 6);
	memcpy(f + 6, q, 6);
	memcpy(f + 12, q + 12, 2);
	memcpy(f + 14 + hl + 8, q + pi.l3_off, ql);
	if (pi.family == 4) {
		uint8_t *ip = f + 14;

		ip[0] = 0x45;
		ip[2] = (uint8_t)((hl + 8 + ql) >> 8);
		ip[3] = (uint8_t)(hl + 8 + ql);
		ip[8] = 64;
		ip[9] = IPPROTO_ICMP;
		memcpy(ip + 12, how & 4 ? router4 : pi.daddr.b, 4);
		memcpy(ip + 16, pi.saddr.b, 4);
		c = csum_ipv4_header(ip, 20);
		memcpy(ip + 10, &c, 2);
		ip[20] = types4[kind][0];
		ip[21] = types4[kind][1];
		if (kind == 2)
			ip[27] = 0x80; /* next-hop MTU 1152 (0x0480) */
		if (kind == 2)
			ip[26] = 0x04;
		c = csum_fold(csum_partial(ip + 20, 8 + ql, 0));
		memcpy(ip + 22, &c, 2);
	} else {
		uint8_t *ip = f + 14;
		uint32_t plen = 8 + ql, sum;

		ip[0] = 0x60;
		ip[4] = (uint8_t)(plen >> 8);
		ip[5] = (uint8_t)plen;
		ip[6] = IPPROTO_ICMPV6;
		ip[7] = 64;
		memcpy(ip + 8, how & 4 ? router6 : pi.daddr.b, 16);
		memcpy(ip + 24, pi.saddr.b, 16);
		ip[40] = types6[kind][0];
		ip[41] = types6[kind][1];
		if (kind == 2)
			ip[46] = 0x05; /* MTU 1280 (0x0500) */
		sum = csum_partial(ip + 8, 32, 0) + htons((uint16_t)plen) + htons(IPPROTO_ICMPV6);
		sum = csum_partial(ip + 40, plen, sum);
		c = csum_fold(sum);
		memcpy(ip + 42, &c, 2);
	}
	drop_captured(r, 1);
	add_frame(r, FUZZ_PORT_S, f, len);
}

/*
 * A kernel notification: byte a bits 0-2 the type, bit 3 usable, bit 4 with
 * a MAC, bit 5 on fz-s (else fz-c); byte b bit 7 about an upstream (bits
 * 0-2 pick it) else about a recent source (bits 0-1), bits 3-4 the
 * neighbour state (incomplete, reachable, stale, failed), bit 6 a link's
 * MTU of 576 instead of 1500.
 */
static void event(struct run *r, uint8_t a, uint8_t b)
{
	static const uint16_t states[4] = { 0x01, 0x02, 0x04, 0x20 };
	struct nh_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = (enum nh_event_type)((a & 7) % (NH_EV_OVERFLOW + 1));
	ev.usable = a & 0x08;
	ev.has_mac = a & 0x10;
	ev.ifindex = a & 0x20 ? FUZZ_IFINDEX_S : FUZZ_IFINDEX_C;
	if (b & 0x80) {
		const union ferry_addr *up = &upstreams[(b & 7) % 5];

		ev.addr = *up;
		ev.family = up->w[1] || up->w[2] || up->w[3] ? AF_INET6 : AF_INET;
	} else if (r->nr_recent) {
		const struct recent *rc = &r->recent[(b & 3) % (r->nr_recent < NR_RECENT
									? r->nr_recent
									: NR_RECENT)];

		ev.addr = rc->addr;
		ev.family = rc->family;
	} else {
		ev.family = AF_INET;
	}
	ev.state = states[b >> 3 & 3];
	if (ev.type == NH_EV_LINK) {
		/* The interface really changes: the stub's lookups say so once it is heard of. */
		if (ev.has_mac)
			fuzz_env__other_port_mac(ev.ifindex, ev.mac);
		ev.mtu = b & 0x40 ? 576 : 1500;
	} else if (ev.has_mac) {
		fuzz_env__neigh_mac(ev.family, &ev.addr, ev.mac);
		ev.mac[5] ^= b & 0x40; /* the neighbour's MAC may change too */
	}
	fuzz_env__queue_event(&ev);
}

/* daemon/worker.c's tick(). */
static void session_expired(struct nat_session *s, void *ctx)
{
	struct ferry_worker *w = ctx;

	w->flow_stats[s->flow_id].sessions_expired++;
}

static void tick(struct run *r)
{
	struct ferry_worker *w = r->w;
	struct ferry_daemon *d = w->d;

	for (int f = 0; f < d->nr_flows; f++) {
		const struct flow_chain *ch = &d->flows[f];

		for (int s = 0; s < ch->nr; s++)
			if (ch->ops[s]->tick)
				ch->ops[s]->tick(ch->conf[s], w->svc_state[f][s], w);
	}
	nat_table__expire(w->nat, w->now_ns, (uint64_t)d->cfg.nat.udp_timeout_s * 1000000000ull,
			  EXPIRE_BUDGET, session_expired, w);
	/* A tick may send what services held: complete it like a loop would. */
	complete_tx(r);
}

static void report(const struct run *r)
{
	const struct ferry_worker *w = r->w;

	fprintf(stderr,
		"fuzz_chain: %llu received, %llu unclassified, %llu sent, %llu held; drops:",
		(unsigned long long)r->received, (unsigned long long)r->unclassified,
		(unsigned long long)r->sent, (unsigned long long)r->held);
	for (int i = 0; i < FERRY_DROP__MAX; i++) {
		uint64_t n = 0;

		for (int f = 0; f < w->d->nr_flows; f++)
			n += (&w->flow_stats[f].drop_malformed)[i];
		if (n)
			fprintf(stderr, " %d:%llu", i, (unsigned long long)n);
	}
	fputc('\n', stderr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run run;
	struct run *r = &run;
	struct ferry_daemon *d;
	uint64_t created = 0, expired = 0;
	size_t pos = 2;

	if (size < 2)
		return 0;
	memset(r, 0, sizeof(*r));
	r->config = data[0] % NR_CONFIGS;
	if (configs[r->config].per_input) {
		/* Its services start as at start-up: with a resolver that answers. */
		set_knobs(0);
		make_daemon(r->config, &daemons[r->config]);
	}
	d = daemons[r->config];
	set_knobs(data[1]);
	FUZZ_CHECK(fuzz_env__worker_create(&r->w, d, NR_FRAMES, tx_ring_for(data[1])) == 0,
		   "worker");
	r->w->now_ns = 1000000000ull;

	while (pos < size) {
		uint8_t op = data[pos++];
		uint32_t len;

		switch (op & 3) {
		case 0:
		case 1:
			if (pos >= size)
				break;
			len = (uint32_t)(op >> 2) << 8 | data[pos++];
			if (len > size - pos)
				len = (uint32_t)(size - pos);
			if (len > r->w->umem->frame_size)
				len = r->w->umem->frame_size;
			add_frame(r, op & 1, data + pos, len);
			pos += len;
			break;
		case 2:
			end_burst(r);
			r->w->now_ns += (uint64_t)(op >> 2 & 0xf) * TICK_NS;
			if (op & 0x40)
				tick(r);
			if (op & 0x80 && pos < size)
				set_knobs(data[pos++]);
			break;
		case 3:
			if (op >> 6 == 0) {
				reflect(r, op >> 2 & 0xf);
			} else if (op >> 6 == 1) {
				if (pos < size)
					make_icmp(r, data[pos++]);
			} else if (pos + 1 < size) {
				event(r, data[pos], data[pos + 1]);
				pos += 2;
				if (op >> 6 == 3) {
					end_burst(r);
					r->w->now_ns += 10000000;
					tick(r);
				}
			}
			break;
		}
	}
	end_burst(r);

	for (int f = 0; f < r->w->d->nr_flows; f++) {
		created += r->w->flow_stats[f].sessions_created;
		expired += r->w->flow_stats[f].sessions_expired;
	}
	FUZZ_CHECK(nat_table__count(r->w->nat) <= created - expired,
		   "%u sessions in the table, %llu created, %llu expired",
		   nat_table__count(r->w->nat), (unsigned long long)created,
		   (unsigned long long)expired);
	if (verbose)
		report(r);
	for (unsigned int i = 0; coverage && i < nr_ran; i++) {
		bool hit = false;

		for (int f = 0; f < d->nr_flows; f++)
			for (int s = 0; s < d->flows[f].nr; s++)
				hit |= r->w->svc_stats[f][s].packets_in &&
				       !strcmp(d->flows[f].ops[s]->name, ran[i].name);
		ran[i].inputs += hit;
	}

	/* Stopping the services hands back every frame they held. */
	fuzz_env__worker_stop_services(r->w);
	worker__flush_tx(r->w);
	complete_tx(r);
	FUZZ_CHECK(r->w->umem->held == 0, "%u frames still held after the services stopped",
		   r->w->umem->held);
	fuzz_env__worker_destroy(r->w);
	r->w = NULL;
	if (configs[r->config].per_input) {
		fuzz_env__daemon_destroy(d);
		daemons[r->config] = NULL;
	}
	return 0;
}
