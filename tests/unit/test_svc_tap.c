// SPDX-License-Identifier: BSD-2-Clause
/*
 * tap through the real chain runner (svc_harness).  pcap files are parsed
 * back here with a reader of the test's own: the global header, then every
 * record's header, lengths, timestamp and bytes against the frames that
 * were sent, from a tap before a stand-in for forward (packets at NEXT) and
 * one after it (at TX, .sees_tx).  Also snaplen, the direction filter,
 * rotation by size keeping N files with no record lost or repeated, and the
 * interface mode through a veth pair in a private network namespace, where
 * a packet socket of the test reads the copies back at the far end.  The original
 * packets always go on unchanged.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "daemon.h"
#include "svc_harness.h"
#include "unit.h"
#include "worker.h"

#define MAX_RECORDS 256

static void tp_sink_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	for (uint32_t i = 0; i < b->n; i++)
		ferry_pkt_tx(b->pkts[i], 1);
}

/* Stands in for forward: every packet leaves on port 1. */
static const struct ferry_service_ops tp_sink_ops = {
	.name = "tap_test_tx",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.process = tp_sink_process,
};

struct record {
	uint64_t ts_us;
	uint32_t incl, orig;
	uint8_t data[4096];
};

struct capture {
	uint32_t magic, snaplen, linktype;
	uint16_t major, minor;
	uint32_t n;
	struct record rec[MAX_RECORDS];
};

/* Reads a whole pcap file; 0, or -1 when it is not well-formed. */
static int read_pcap(const char *path, struct capture *cap)
{
	uint8_t gh[24], rh[16];
	FILE *f = fopen(path, "rb");
	int ret = -1;

	memset(cap, 0, sizeof(*cap));
	if (!f)
		return -1;
	if (fread(gh, sizeof(gh), 1, f) != 1)
		goto out;
	memcpy(&cap->magic, gh, 4);
	memcpy(&cap->major, gh + 4, 2);
	memcpy(&cap->minor, gh + 6, 2);
	memcpy(&cap->snaplen, gh + 16, 4);
	memcpy(&cap->linktype, gh + 20, 4);
	for (;;) {
		struct record *r;
		uint32_t sec, usec;
		size_t got = fread(rh, 1, sizeof(rh), f);

		if (got == 0)
			break;
		if (got != sizeof(rh) || cap->n == MAX_RECORDS)
			goto out;
		r = &cap->rec[cap->n++];
		memcpy(&sec, rh, 4);
		memcpy(&usec, rh + 4, 4);
		memcpy(&r->incl, rh + 8, 4);
		memcpy(&r->orig, rh + 12, 4);
		if (usec >= 1000000 || r->incl > sizeof(r->data) || r->incl > r->orig ||
		    r->incl > cap->snaplen)
			goto out;
		r->ts_us = (uint64_t)sec * 1000000 + usec;
		if (fread(r->data, 1, r->incl, f) != r->incl)
			goto out;
	}
	ret = 0;
out:
	fclose(f);
	return ret;
}

static char tmpdir[64];

static int tap_init(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ferry-tap-test.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int tap_cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static uint32_t frame_of(uint8_t *buf, uint32_t seq, uint32_t len)
{
	uint8_t payload[2048];

	for (uint32_t i = 0; i < len; i++)
		payload[i] = (uint8_t)(seq * 7 + i);
	memcpy(payload, &seq, len < 4 ? len : 4);
	return harness__udp4(buf, "198.18.1.2", 2000, "198.18.1.1", 5000, payload, len);
}

static uint32_t record_seq(const struct record *r)
{
	uint32_t seq;

	memcpy(&seq, r->data + 42, 4);
	return seq;
}

static struct capture cap_a, cap_b, cap_c;

/* A tap before the stand-in for forward and one after it: both see every packet. */
static void test_pcap(void)
{
	static uint8_t frames[40][2048];
	char yaml[512], a[128], b[128];
	uint32_t lens[40];
	struct svc_harness *h;

	snprintf(a, sizeof(a), "%s/before.pcap", tmpdir);
	snprintf(b, sizeof(b), "%s/after.pcap", tmpdir);
	harness__add_service(&tp_sink_ops);
	snprintf(yaml, sizeof(yaml), "[ {tap: {pcap: '%s'}}, tap_test_tx, {tap: {pcap: '%s'}} ]", a,
		 b);
	h = harness__create(yaml);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	for (uint32_t i = 0; i < 40; i++)
		lens[i] = frame_of(frames[i], i, 10 + i * 37);
	for (int k = 0; k < 4; k++) {
		const uint8_t *fp[10];

		for (int i = 0; i < 10; i++)
			fp[i] = frames[k * 10 + i];
		CU_ASSERT_EQUAL(harness__run(h, fp, lens + k * 10, 10), 10);
		harness__tick(h, 1500 * 1000ull);
	}
	/* The packets themselves went on untouched. */
	CU_ASSERT_EQUAL_FATAL(harness__nr_out(h), 40);
	for (uint32_t i = 0; i < 40; i++) {
		CU_ASSERT_EQUAL(harness__out(h, i)->len, lens[i]);
		CU_ASSERT(!memcmp(harness__out(h, i)->data, frames[i], lens[i]));
	}
	/* .sees_tx: the tap after the sink saw the packets the sink had sent. */
	CU_ASSERT_EQUAL(harness__svc_stats(h, 1)->sent, 40);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 2)->packets_in, 40);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 2)->passed, 40);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 2)->sent, 0);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	/* Stopping the service writes the last records and closes the file. */
	harness__destroy(h);

	CU_ASSERT_EQUAL_FATAL(read_pcap(a, &cap_a), 0);
	CU_ASSERT_EQUAL_FATAL(read_pcap(b, &cap_b), 0);
	for (int f = 0; f < 2; f++) {
		const struct capture *c = f ? &cap_b : &cap_a;

		CU_ASSERT_EQUAL(c->magic, 0xa1b2c3d4);
		CU_ASSERT_EQUAL(c->major, 2);
		CU_ASSERT_EQUAL(c->minor, 4);
		CU_ASSERT_EQUAL(c->linktype, 1);
		CU_ASSERT_EQUAL(c->snaplen, 65535);
		CU_ASSERT_EQUAL_FATAL(c->n, 40);
		for (uint32_t i = 0; i < 40; i++) {
			const struct record *r = &c->rec[i];

			CU_ASSERT_EQUAL(r->incl, lens[i]);
			CU_ASSERT_EQUAL(r->orig, lens[i]);
			CU_ASSERT(!memcmp(r->data, frames[i], lens[i]));
			/* The worker's clock moved 1.5 ms between bursts, and so do the stamps. */
			if (i % 10) {
				CU_ASSERT_EQUAL(r->ts_us, c->rec[i - 1].ts_us);
			} else if (i) {
				CU_ASSERT(r->ts_us - c->rec[i - 1].ts_us >= 1499 &&
					  r->ts_us - c->rec[i - 1].ts_us <= 1501);
			}
		}
	}
}

/* snaplen cuts the copies; direction: client leaves replies out. */
static void test_snaplen_direction(void)
{
	static uint8_t frame[2048];
	const uint8_t *fp[1] = { frame };
	char yaml[256], path[128];
	struct svc_harness *h;
	uint32_t len;

	snprintf(path, sizeof(path), "%s/snap.pcap", tmpdir);
	snprintf(yaml, sizeof(yaml), "[ {tap: {pcap: '%s', snaplen: 64, direction: client}} ]",
		 path);
	h = harness__create(yaml);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	len = frame_of(frame, 1, 500);
	CU_ASSERT_EQUAL(harness__run(h, fp, &len, 1), 1);
	harness__set_dir(h, FERRY_DIR_REPLY);
	len = frame_of(frame, 2, 300);
	CU_ASSERT_EQUAL(harness__run(h, fp, &len, 1), 1);
	/* Nothing sends them here: both fall off the chain, as without a tap. */
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_service, 2);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	harness__destroy(h);
	CU_ASSERT_EQUAL_FATAL(read_pcap(path, &cap_a), 0);
	CU_ASSERT_EQUAL(cap_a.snaplen, 64);
	CU_ASSERT_EQUAL_FATAL(cap_a.n, 1);
	CU_ASSERT_EQUAL(cap_a.rec[0].incl, 64);
	CU_ASSERT_EQUAL(cap_a.rec[0].orig, 542);
	CU_ASSERT_EQUAL(record_seq(&cap_a.rec[0]), 1);
}

/* max_bytes 4096, files 3: 100 records of 516 bytes, only the newest files kept. */
static void test_rotation(void)
{
	static uint8_t frame[2048];
	char yaml[256], path[128], name[160];
	uint32_t next = 0, total = 0;
	struct svc_harness *h;
	struct stat st;

	snprintf(path, sizeof(path), "%s/rot.pcap", tmpdir);
	snprintf(yaml, sizeof(yaml), "[ {tap: {pcap: '%s', max_bytes: 4096, files: 3}} ]", path);
	h = harness__create(yaml);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	for (uint32_t i = 0; i < 100; i++) {
		const uint8_t *fp[1] = { frame };
		uint32_t len = frame_of(frame, i, 500 - 42);

		CU_ASSERT_EQUAL(len, 500);
		CU_ASSERT_EQUAL(harness__run(h, fp, &len, 1), 1);
	}
	harness__destroy(h);

	/* 24 + 7 * 516 = 3636 bytes fit, an 8th record would not: 7 per file. */
	snprintf(name, sizeof(name), "%s.3", path);
	CU_ASSERT_EQUAL(stat(name, &st), -1);
	for (int k = 2; k >= 0; k--) {
		struct capture *c = k == 2 ? &cap_a : k == 1 ? &cap_b : &cap_c;

		if (k)
			snprintf(name, sizeof(name), "%s.%d", path, k);
		else
			snprintf(name, sizeof(name), "%s", path);
		CU_ASSERT_EQUAL_FATAL(stat(name, &st), 0);
		CU_ASSERT(st.st_size <= 4096);
		CU_ASSERT_EQUAL_FATAL(read_pcap(name, c), 0);
		CU_ASSERT_EQUAL(c->magic, 0xa1b2c3d4);
		CU_ASSERT(c->n >= 1 && c->n <= 7);
		if (k)
			CU_ASSERT_EQUAL(c->n, 7);
		/* Oldest file first, the records carry on without a gap. */
		for (uint32_t i = 0; i < c->n; i++) {
			if (k == 2 && i == 0)
				next = record_seq(&c->rec[0]);
			CU_ASSERT_EQUAL(record_seq(&c->rec[i]), next);
			CU_ASSERT_EQUAL(c->rec[i].incl, 500);
			next++;
			total++;
		}
	}
	CU_ASSERT_EQUAL(next, 100);
	CU_ASSERT_EQUAL(total, 14 + 100 % 7);
}

/* The interface mode, in a private network namespace with a veth pair. */
static void test_interface(void)
{
	static uint8_t frames[8][2048], buf[4096];
	const uint8_t *fp[8];
	uint32_t lens[8], got = 0;
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	struct timeval tv = { .tv_sec = 1 };
	struct svc_harness *h;
	uint64_t c[FERRY_SERVICE_COUNTERS];
	int orig_ns, fd;

	if (unit_require_root())
		return;
	orig_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	CU_ASSERT_FATAL(orig_ns >= 0);
	if (unshare(CLONE_NEWNET)) {
		CU_FAIL("unshare(CLONE_NEWNET)");
		close(orig_ns);
		return;
	}
	/* The child `ip` runs in this namespace too. */
	CU_ASSERT_EQUAL_FATAL(system("ip link add ftap0 type veth peer name ftap1 && "
				     "ip link set ftap1 up && ip link set ftap0 up"),
			      0);
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	CU_ASSERT_FATAL(fd >= 0);
	/* The copies arrive at the other end of the pair. */
	sll.sll_ifindex = (int)if_nametoindex("ftap1");
	CU_ASSERT_EQUAL(bind(fd, (struct sockaddr *)&sll, sizeof(sll)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

	harness__add_service(&tp_sink_ops);
	h = harness__create("[ tap_test_tx, {tap: {interface: ftap0}} ]");
	CU_ASSERT_PTR_NOT_NULL(h);
	if (h) {
		for (uint32_t i = 0; i < 8; i++) {
			lens[i] = frame_of(frames[i], i, 20 + i * 100);
			fp[i] = frames[i];
		}
		CU_ASSERT_EQUAL(harness__run(h, fp, lens, 8), 8);
		CU_ASSERT_EQUAL(harness__nr_out(h), 8);
		for (int reads = 0; got < 8 && reads < 64; reads++) {
			ssize_t n = recv(fd, buf, sizeof(buf), 0);

			if (n < 0)
				break;
			/* The kernel's own IPv6 chatter on a fresh link is not ours. */
			if (n < 42 || buf[12] != 0x08 || buf[13] != 0x00)
				continue;
			CU_ASSERT_EQUAL((uint32_t)n, lens[got]);
			CU_ASSERT(!memcmp(buf, frames[got], lens[got]));
			got++;
		}
		CU_ASSERT_EQUAL(got, 8);
		/* An interface that is down takes nothing: counted, the packets go on. */
		CU_ASSERT_EQUAL(system("ip link set ftap0 down"), 0);
		CU_ASSERT_EQUAL(harness__run(h, fp, lens, 2), 2);
		CU_ASSERT_EQUAL(harness__nr_out(h), 10);
		memset(c, 0, sizeof(c));
		harness__worker(h)->d->flows[0].ops[1]->stats(
		    harness__worker(h)->d->flows[0].conf[1], harness__worker(h)->svc_state[0][1],
		    c);
		CU_ASSERT_EQUAL(c[0], 8);
		CU_ASSERT_EQUAL(c[1], 2);
		CU_ASSERT_EQUAL(harness__check_frames(h), 0);
		harness__destroy(h);
	}
	close(fd);
	/* The namespace and its veths go away with their last user. */
	CU_ASSERT_EQUAL(setns(orig_ns, CLONE_NEWNET), 0);
	close(orig_ns);
}

static int configure(const char *services, const char *expect)
{
	char yaml[1024];
	struct ferry_config cfg;
	struct cfg_errors errs = { .capture = strdup("") };
	struct ferry_flow_ctx fc = { 0 };
	const struct ferry_service_ops *ops = service__find("tap");
	void *conf = NULL;
	int err;

	snprintf(yaml, sizeof(yaml),
		 "interfaces: [{name: a}]\n"
		 "flows:\n"
		 "  - name: f\n"
		 "    match: {protocol: udp, destination: 198.18.1.1, port: 5000}\n"
		 "    services: %s\n",
		 services);
	CU_ASSERT_EQUAL_FATAL(config__load_string(&cfg, "t.yaml", yaml, &errs), 0);
	fc.flow = &cfg.flows[0];
	err = ops->configure(&fc, cfg.flows[0].services[0].args, &errs, &conf);
	if (!err)
		ops->destroy(conf);
	if (expect && !strstr(errs.capture, expect)) {
		fprintf(stderr, "expected '%s', got '%s'\n", expect, errs.capture);
		CU_FAIL("message");
	}
	free(errs.capture);
	config__free(&cfg);
	return err;
}

static void test_config(void)
{
	CU_ASSERT_EQUAL(configure("[{tap: {pcap: /x.pcap, max_bytes: 100000, files: 5}}]", NULL),
			0);
	CU_ASSERT_EQUAL(configure("[{tap: {interface: dummy0, direction: reply}}]", NULL), 0);
	CU_ASSERT_NOT_EQUAL(configure("[tap]", "t.yaml:5:16: tap: expected a mapping"), 0);
	CU_ASSERT_NOT_EQUAL(configure("[{tap: {pcap: /x, interface: y}}]",
				      "t.yaml:5:22: tap: needs exactly one of 'pcap' and "
				      "'interface'"),
			    0);
	CU_ASSERT_NOT_EQUAL(configure("[{tap: {snaplen: 100}}]", "needs exactly one of"), 0);
	CU_ASSERT_NOT_EQUAL(configure("[{tap: {pcap: x.pcap}}]",
				      "t.yaml:5:29: tap: pcap: 'x.pcap' is not an absolute path"),
			    0);
	CU_ASSERT_NOT_EQUAL(configure("[{tap: {interface: y, files: 2}}]",
				      "max_bytes and files go with 'pcap' only"),
			    0);
	CU_ASSERT_NOT_EQUAL(configure("[{tap: {pcap: /x, max_bytes: 100}}]",
				      "value 100 is out of range 4096..4294967295"),
			    0);
	CU_ASSERT_NOT_EQUAL(configure("[{tap: {interface: 'a/b'}}]", "bad interface name 'a/b'"),
			    0);
	/* mode: three or four octal digits, read/write bits, no write for group or others. */
	CU_ASSERT_EQUAL(configure("[{tap: {pcap: /x.pcap, mode: '0640'}}]", NULL), 0);
	CU_ASSERT_EQUAL(configure("[{tap: {pcap: /x.pcap, mode: 644}}]", NULL), 0);
	CU_ASSERT_NOT_EQUAL(configure("[{tap: {pcap: /x.pcap, mode: '0666'}}]",
				      "t.yaml:5:44: tap: mode: 0666 allows more than reading and "
				      "writing by the owner and reading by group and others"),
			    0);
	CU_ASSERT_NOT_EQUAL(configure("[{tap: {pcap: /x.pcap, mode: '0700'}}]", "allows more than"),
			    0);
	CU_ASSERT_NOT_EQUAL(configure("[{tap: {pcap: /x.pcap, mode: '4600'}}]",
				      "tap: mode: '4600' is not an octal file mode such as 0600 or "
				      "0640"),
			    0);
	CU_ASSERT_NOT_EQUAL(configure("[{tap: {pcap: /x.pcap, mode: '0680'}}]",
				      "is not an octal file mode"),
			    0);
	CU_ASSERT_NOT_EQUAL(configure("[{tap: {pcap: /x.pcap, mode: '60'}}]",
				      "is not an octal file mode"),
			    0);
	CU_ASSERT_NOT_EQUAL(configure("[{tap: {pcap: /x.pcap, mode: ' 0600'}}]",
				      "is not an octal file mode"),
			    0);
	CU_ASSERT_NOT_EQUAL(configure("[{tap: {pcap: /x.pcap, mode: '0400'}}]",
				      "tap: mode: 0400 does not let ferryd write the file"),
			    0);
	CU_ASSERT_NOT_EQUAL(configure("[{tap: {interface: y, mode: '0600'}}]",
				      "tap: mode goes with 'pcap' only"),
			    0);
	CU_ASSERT_NOT_EQUAL(configure("[{tap: {pcap: /var/}}]",
				      "tap: pcap: '/var/' does not end in a file name"),
			    0);
}

/* Runs one small packet through a tap writing to PATH (extra args ARGS); 0 if it started. */
static int tap_once(const char *path, const char *args)
{
	static uint8_t frame[2048];
	const uint8_t *fp[1] = { frame };
	struct svc_harness *h;
	char yaml[512];
	uint32_t len;

	snprintf(yaml, sizeof(yaml), "[ {tap: {pcap: '%s'%s}} ]", path, args);
	h = harness__create(yaml);
	if (!h)
		return -1;
	len = frame_of(frame, 1, 100);
	CU_ASSERT_EQUAL(harness__run(h, fp, &len, 1), 1);
	harness__destroy(h);
	return 0;
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	if (lstat(path, &st))
		return (mode_t)-1;
	return st.st_mode & 07777;
}

static char *slurp(const char *path)
{
	static char buf[256];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
}

/*
 * The files: mode 0600 whatever the umask, or the configured mode; an
 * existing file replaced by a new one; a symbolic link (or anything but a
 * regular file) at the path refused, its target untouched.
 */
static void test_file_safety(void)
{
	char path[128], target[128], dir[128];
	mode_t old_umask = umask(0);
	struct stat st1, st2;

	snprintf(path, sizeof(path), "%s/safe.pcap", tmpdir);
	snprintf(target, sizeof(target), "%s/victim", tmpdir);
	CU_ASSERT_EQUAL(tap_once(path, ""), 0);
	CU_ASSERT_EQUAL(mode_of(path), 0600);
	CU_ASSERT_EQUAL_FATAL(read_pcap(path, &cap_a), 0);
	CU_ASSERT_EQUAL(cap_a.n, 1);
	CU_ASSERT_EQUAL(tap_once(path, ", mode: '0640'"), 0);
	CU_ASSERT_EQUAL(mode_of(path), 0640);

	/* An existing file is not written into: a new one takes its name (a hard link keeps the old). */
	snprintf(dir, sizeof(dir), "%s/safe.link", tmpdir);
	CU_ASSERT_EQUAL(link(path, dir), 0);
	CU_ASSERT_EQUAL(stat(dir, &st1), 0);
	CU_ASSERT_EQUAL(tap_once(path, ""), 0);
	CU_ASSERT_EQUAL(stat(path, &st2), 0);
	CU_ASSERT_NOT_EQUAL(st1.st_ino, st2.st_ino);
	CU_ASSERT_EQUAL(mode_of(dir), 0640);
	CU_ASSERT_EQUAL(mode_of(path), 0600);
	unlink(dir);

	/* A symbolic link in its place: refused, the target keeps its bytes. */
	write_file(target, "not a capture\n");
	CU_ASSERT_EQUAL(unlink(path), 0);
	CU_ASSERT_EQUAL(symlink(target, path), 0);
	CU_ASSERT_EQUAL(tap_once(path, ""), -1);
	CU_ASSERT_STRING_EQUAL(slurp(target), "not a capture\n");
	CU_ASSERT_EQUAL(mode_of(target), 0666);
	/* Also a dangling one: nothing is created at its target. */
	CU_ASSERT_EQUAL(unlink(target), 0);
	CU_ASSERT_EQUAL(tap_once(path, ""), -1);
	CU_ASSERT_EQUAL(access(target, F_OK), -1);
	CU_ASSERT_EQUAL(unlink(path), 0);
	/* A directory in its place. */
	CU_ASSERT_EQUAL(mkdir(path, 0700), 0);
	CU_ASSERT_EQUAL(tap_once(path, ""), -1);
	CU_ASSERT_EQUAL(rmdir(path), 0);
	umask(old_umask);
}

/* The directory must be ferryd's own and writable by nobody else. */
static void test_dir_safety(void)
{
	char dir[128], path[160];

	snprintf(dir, sizeof(dir), "%s/capdir", tmpdir);
	snprintf(path, sizeof(path), "%s/x.pcap", dir);
	CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
	CU_ASSERT_EQUAL(tap_once(path, ""), 0);
	CU_ASSERT_EQUAL(chmod(dir, 0770), 0);
	CU_ASSERT_EQUAL(tap_once(path, ""), -1);
	CU_ASSERT_EQUAL(chmod(dir, 01777), 0);
	CU_ASSERT_EQUAL(tap_once(path, ""), -1);
	CU_ASSERT_EQUAL(chmod(dir, 0755), 0);
	CU_ASSERT_EQUAL(tap_once(path, ""), 0);
	if (geteuid() == 0) {
		/* Another user's directory, even one only it may write to. */
		CU_ASSERT_EQUAL(chown(dir, 65534, 65534), 0);
		CU_ASSERT_EQUAL(tap_once(path, ""), -1);
		CU_ASSERT_EQUAL(chown(dir, 0, 0), 0);
	}
	CU_ASSERT_EQUAL(unlink(path), 0);
	CU_ASSERT_EQUAL(rmdir(dir), 0);
}

/* tap_once(), with what ferryd logged meanwhile (stderr) in `out`. */
static int tap_once_logged(const char *path, char *out, size_t len)
{
	char name[] = "/tmp/ferry-tap-log.XXXXXX";
	int fd = mkstemp(name), saved, ret;
	ssize_t n;

	CU_ASSERT_FATAL(fd >= 0);
	unlink(name);
	fflush(stderr);
	saved = dup(2);
	CU_ASSERT_FATAL(saved >= 0);
	dup2(fd, 2);
	ret = tap_once(path, "");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, out, len - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	return ret;
}

/*
 * No symbolic link in any component of the directory's path: one higher up
 * is as good as one at the end for whoever may change it.
 */
static void test_dir_symlinks(void)
{
	char real[128], sub[160], via[128], path[192], msg[4096], want[256];

	snprintf(real, sizeof(real), "%s/real", tmpdir);
	snprintf(sub, sizeof(sub), "%s/capdir", real);
	snprintf(via, sizeof(via), "%s/via", tmpdir);
	CU_ASSERT_EQUAL_FATAL(mkdir(real, 0700), 0);
	CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0700), 0);
	CU_ASSERT_EQUAL_FATAL(symlink(real, via), 0);
	/* The real path works. */
	snprintf(path, sizeof(path), "%s/x.pcap", sub);
	CU_ASSERT_EQUAL(tap_once(path, ""), 0);
	CU_ASSERT_EQUAL(unlink(path), 0);
	/* A link in the middle of the path. */
	snprintf(path, sizeof(path), "%s/capdir/x.pcap", via);
	CU_ASSERT_EQUAL(tap_once_logged(path, msg, sizeof(msg)), -1);
	snprintf(want, sizeof(want),
		 "tap: the path of the directory %s/capdir goes through a symbolic link: "
		 "give the real path", via);
	if (!strstr(msg, want)) {
		fprintf(stderr, "\n  expected: %s\n  logged: %s", want, msg);
		CU_FAIL("symbolic link in the directory's path: message");
	}
	CU_ASSERT_EQUAL(access(sub, F_OK), 0);
	snprintf(path, sizeof(path), "%s/x.pcap", sub);
	CU_ASSERT_EQUAL(access(path, F_OK), -1);
	/* The directory itself a link. */
	snprintf(path, sizeof(path), "%s/x.pcap", via);
	CU_ASSERT_EQUAL(tap_once_logged(path, msg, sizeof(msg)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "goes through a symbolic link"));
	snprintf(path, sizeof(path), "%s/x.pcap", real);
	CU_ASSERT_EQUAL(access(path, F_OK), -1);
	unlink(via);
	rmdir(sub);
	rmdir(real);
}

/* From here on openat2() fails with ENOSYS, as on a kernel before 5.6. */
static int no_openat2(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(filter) / sizeof(filter[0]), .filter = filter };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/*
 * Without openat2() the path is walked one component at a time, with the
 * same result: the real path works, a link anywhere is refused.  In a child,
 * which the seccomp filter dies with.
 */
static void test_dir_symlinks_walk(void)
{
	char real[128], sub[160], via[128], path[192], msg[4096];
	int *res, status = -1;
	pid_t pid;

	snprintf(real, sizeof(real), "%s/wreal", tmpdir);
	snprintf(sub, sizeof(sub), "%s/capdir", real);
	snprintf(via, sizeof(via), "%s/wvia", tmpdir);
	CU_ASSERT_EQUAL_FATAL(mkdir(real, 0700), 0);
	CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0700), 0);
	CU_ASSERT_EQUAL_FATAL(symlink(real, via), 0);
	res = mmap(NULL, 4 * sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		   0);
	CU_ASSERT_FATAL(res != MAP_FAILED);
	res[0] = res[1] = res[2] = res[3] = -2;
	fflush(stderr);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		struct open_how how = { .flags = O_RDONLY };

		if (no_openat2())
			_exit(1);
		res[0] = syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof(how)) < 0 ? errno : 0;
		snprintf(path, sizeof(path), "%s/x.pcap", sub);
		res[1] = tap_once(path, "");
		snprintf(path, sizeof(path), "%s/capdir/x.pcap", via);
		res[2] = tap_once_logged(path, msg, sizeof(msg));
		res[3] = !!strstr(msg, "goes through a symbolic link: give the real path");
		fflush(stderr);
		_exit(0);
	}
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT_EQUAL(status, 0);
	CU_ASSERT_EQUAL(res[0], ENOSYS);
	CU_ASSERT_EQUAL(res[1], 0);
	CU_ASSERT_EQUAL(res[2], -1);
	CU_ASSERT_EQUAL(res[3], 1);
	snprintf(path, sizeof(path), "%s/x.pcap", sub);
	CU_ASSERT_EQUAL(unlink(path), 0);
	munmap(res, 4 * sizeof(int));
	unlink(via);
	rmdir(sub);
	rmdir(real);
}

/*
 * Rotation renames names, never through them: links planted at the names it
 * rotates to are moved or removed, their targets untouched, and every file
 * it makes is a new regular file of mode 0600.
 */
static void test_rotation_links(void)
{
	static uint8_t frame[2048];
	char yaml[256], path[128], name[160], target[128];
	mode_t old_umask = umask(0);
	struct svc_harness *h;

	snprintf(path, sizeof(path), "%s/rl.pcap", tmpdir);
	snprintf(target, sizeof(target), "%s/rl-victim", tmpdir);
	write_file(target, "keep\n");
	for (int k = 1; k <= 2; k++) {
		snprintf(name, sizeof(name), "%s.%d", path, k);
		CU_ASSERT_EQUAL(symlink(target, name), 0);
	}
	snprintf(yaml, sizeof(yaml), "[ {tap: {pcap: '%s', max_bytes: 4096, files: 3}} ]", path);
	h = harness__create(yaml);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	for (uint32_t i = 0; i < 40; i++) {
		const uint8_t *fp[1] = { frame };
		uint32_t len = frame_of(frame, i, 500 - 42);

		CU_ASSERT_EQUAL(harness__run(h, fp, &len, 1), 1);
	}
	harness__destroy(h);
	CU_ASSERT_STRING_EQUAL(slurp(target), "keep\n");
	CU_ASSERT_EQUAL(mode_of(target), 0666);
	for (int k = 0; k <= 2; k++) {
		struct stat st;

		if (k)
			snprintf(name, sizeof(name), "%s.%d", path, k);
		else
			snprintf(name, sizeof(name), "%s", path);
		CU_ASSERT_EQUAL_FATAL(lstat(name, &st), 0);
		CU_ASSERT(S_ISREG(st.st_mode));
		CU_ASSERT_EQUAL(st.st_mode & 07777, 0600);
		CU_ASSERT_EQUAL(read_pcap(name, &cap_a), 0);
	}
	snprintf(name, sizeof(name), "%s.3", path);
	CU_ASSERT_EQUAL(access(name, F_OK), -1);
	umask(old_umask);
}

/* A directory that does not exist fails the worker's start, with the path named. */
static void test_open_error(void)
{
	char yaml[256];

	snprintf(yaml, sizeof(yaml), "[ {tap: {pcap: '%s/no/such/dir/x.pcap'}} ]", tmpdir);
	CU_ASSERT_PTR_NULL(harness__create(yaml));
}

static CU_TestInfo tests[] = {
	{ "pcap before and after forward: headers, records, bytes, times", test_pcap },
	{ "snaplen, direction", test_snaplen_direction },
	{ "rotation by size, files kept", test_rotation },
	{ "interface: copies through a veth pair (root)", test_interface },
	{ "config", test_config },
	{ "pcap file cannot be opened", test_open_error },
	{ "files: mode 0600 or configured, new file, symlink refused", test_file_safety },
	{ "directory: ferryd's own, not writable by others", test_dir_safety },
	{ "directory: no symbolic link anywhere in its path", test_dir_symlinks },
	{ "directory: the same without openat2", test_dir_symlinks_walk },
	{ "rotation moves links, never writes through them", test_rotation_links },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(svc_tap, "svc_tap", tests, tap_init, tap_cleanup);
