// SPDX-License-Identifier: BSD-2-Clause
/*
 * tap: a copy of each packet of a flow, as it is at this point of the chain,
 * into a pcap file or out of a named interface.  The packet itself goes on
 * untouched.
 *
 * Why: steered packets are invisible to tcpdump.  The XDP program redirects
 * them into AF_XDP sockets before the kernel builds an skb, so packet
 * sockets on the interface never see them arrive, and what ferry sends
 * leaves from its AF_XDP sockets past the kernel's packet taps too.  tap is
 * how to look at them; with .sees_tx set (services/service.h) it can sit
 * after forward and record the packets as they leave, after NAT:
 *
 *   services: [tap: {pcap: /var/lib/ferry/in.pcap}, forward: {...},
 *              tap: {pcap: /var/lib/ferry/out.pcap}]
 *
 * pcap: the classic libpcap format (magic 0xa1b2c3d4 in host byte order,
 * version 2.4, microsecond timestamps, link type Ethernet), which tcpdump,
 * tshark and wireshark read.  A record's time is the worker's clock when it
 * ran the chain, moved to the wall clock.  With max_bytes, a file that would
 * grow past it is closed and renamed PATH.1 (PATH.1 becomes PATH.2, and so
 * on), keeping `files` files in all; an existing PATH is replaced at
 * start-up.  Packets are cut to snaplen bytes.
 *
 * Files: ferryd runs as root, so the pcap files are made where nobody else
 * can point them elsewhere.  The directory must belong to ferryd's user and
 * be writable by nobody else (as svc_loader requires of service_dir); it is
 * opened once and every later name is resolved beneath that descriptor.  A
 * file is always created anew (O_CREAT | O_EXCL | O_NOFOLLOW) with mode
 * 0600 unless `mode` says otherwise: never opened through a symbolic link,
 * never an existing file with its owner, mode or other names (a hard link).
 * An existing PATH that is a symbolic link or not a regular file is refused;
 * a regular one is unlinked first.  Rotation renames with
 * RENAME_NOREPLACE after unlinking the oldest name, so it neither follows a
 * link nor replaces a name it did not just free.
 *
 * The workers never touch the file: a write may block on the disk, and a
 * worker that blocks stalls every flow of its queue.  Each worker copies
 * the packets into a single-producer, single-consumer ring of fixed slots
 * (C11 atomics, no locks, no syscalls), and one writer thread per tap
 * service drains all rings into a stdio-buffered file, sleeping 2 ms
 * whenever they are empty; it also does the rotation.  If the writer falls
 * behind, a full ring loses the copy, never the packet: counted as
 * `missed`.  Records of different workers may be out of time order in the
 * file.
 *
 * interface: an AF_PACKET socket per worker, bound to the interface, sends
 * the copies as they are, one sendmmsg() per process() call for the whole
 * batch, never blocking (MSG_DONTWAIT): what the socket does not take is
 * counted as `missed`.  A dummy interface works well:
 *   ip link add ferry-tap type dummy && ip link set ferry-tap up
 *   tcpdump -ni ferry-tap
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/openat2.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "caps.h"
#include "log.h"
#include "service.h"
#include "svc_args.h"

#define TAP_MAX_WORKERS 64 /* config: queues 1..64 */
#define TAP_MAX_FRAME 4096 /* a UMEM frame holds no more */
#define TAP_RING_SLOTS 512 /* per worker */
#define TAP_SEND_BATCH 256 /* sendmmsg() messages per call */
#define TAP_IDLE_NS (2ull * 1000 * 1000)
#define TAP_MIN_MAX_BYTES 4096
#define TAP_MAX_FILES 1000
#define TAP_DEFAULT_MODE 0600

#define PCAP_MAGIC_USEC 0xa1b2c3d4u
#define PCAP_LINKTYPE_ETHERNET 1
#define PCAP_HDR_LEN 24
#define PCAP_REC_HDR_LEN 16

struct pcap_file_hdr {
	uint32_t magic;
	uint16_t version_major, version_minor;
	int32_t thiszone;
	uint32_t sigfigs;
	uint32_t snaplen;
	uint32_t linktype;
};

struct pcap_rec_hdr {
	uint32_t ts_sec, ts_usec;
	uint32_t incl_len, orig_len;
};

_Static_assert(sizeof(struct pcap_file_hdr) == PCAP_HDR_LEN, "pcap file header layout");
_Static_assert(sizeof(struct pcap_rec_hdr) == PCAP_REC_HDR_LEN, "pcap record header layout");

struct tap_slot {
	uint64_t ts_ns; /* worker clock */
	uint32_t caplen, len;
	uint8_t data[];
};

/*
 * One worker's copies on their way to the writer.  The worker alone writes
 * `head` and the slots before it publishes them; the writer alone writes
 * `tail`.  Each on its own cache line.
 */
struct tap_ring {
	_Atomic uint32_t head __attribute__((aligned(64)));
	_Atomic uint32_t tail __attribute__((aligned(64)));
	uint32_t slot_size __attribute__((aligned(64)));
	uint8_t *slots;
};

struct tap_conf {
	char flow_name[CFG_NAME_LEN];
	enum svc_dir dirs;
	char path[256];		  /* pcap mode */
	char dir[256];		  /* path's directory and file name */
	char name[256];
	int dirfd;		  /* dir, opened and checked once; -1 until then */
	mode_t mode;		  /* of the files created */
	char ifname[IF_NAMESIZE]; /* interface mode */
	uint64_t max_bytes;	  /* 0: no rotation */
	uint32_t files;
	uint32_t snaplen;
	bool have_max_bytes, have_files, have_mode; /* given, not the defaults */
	/* pcap mode, set up by the first worker_init(), on the main thread */
	bool writer_started;
	pthread_t writer;
	atomic_int stop;
	_Atomic(struct tap_ring *) rings[TAP_MAX_WORKERS];
	FILE *f;
	uint64_t file_bytes;
	int64_t wall_offset_ns; /* realtime - monotonic */
	bool write_failed;	/* logged once per file */
};

enum { TAP_C_CAPTURED, TAP_C_MISSED, TAP_C_BYTES };

struct tap_worker {
	struct tap_conf *c;
	struct tap_ring *ring; /* pcap mode */
	int fd;		       /* interface mode */
	struct mmsghdr *msgs;
	struct iovec *iov;
	struct sockaddr_ll sll;
	uint64_t counters[FERRY_SERVICE_COUNTERS];
};

/*
 * path -> dir + name.  The name must leave room for rotation's ".NNN", and
 * "." or ".." would name a directory.
 */
static int tap_split_path(struct tap_conf *c)
{
	const char *slash = strrchr(c->path, '/');
	size_t dlen = (size_t)(slash - c->path);

	if (!slash[1] || !strcmp(slash + 1, ".") || !strcmp(slash + 1, "..") ||
	    strlen(slash + 1) + 8 > sizeof(c->name))
		return -EINVAL;
	snprintf(c->name, sizeof(c->name), "%s", slash + 1);
	snprintf(c->dir, sizeof(c->dir), "%.*s", (int)(dlen ? dlen : 1), c->path);
	return 0;
}

/*
 * mode: the pcap files' permissions, an octal string of three or four
 * digits such as "0640".  Read and write bits only, and no write for group
 * or others: the files hold the traffic itself.
 */
static int tap_parse_mode(const struct cfg_node *n, mode_t *out, struct cfg_errors *errs)
{
	char s[16];
	size_t len;
	unsigned long v;

	if (cfg_get_string(n, s, sizeof(s), errs))
		return -EINVAL;
	len = strlen(s);
	if (len < 3 || len > 4 || strspn(s, "01234567") != len || (len == 4 && s[0] != '0')) {
		cfg_node_error(errs, n,
			       "tap: mode: '%s' is not an octal file mode such as 0600 or 0640",
			       s);
		return -EINVAL;
	}
	v = strtoul(s, NULL, 8);
	if (v & ~0666ul || v & 022) {
		cfg_node_error(errs, n,
			       "tap: mode: %s allows more than reading and writing by the owner "
			       "and reading by group and others",
			       s);
		return -EINVAL;
	}
	if (!(v & 0200)) {
		cfg_node_error(errs, n, "tap: mode: %s does not let ferryd write the file", s);
		return -EINVAL;
	}
	*out = (mode_t)v;
	return 0;
}

static int tap_parse_pcap(const struct cfg_node *val, void *obj, struct cfg_errors *errs)
{
	struct tap_conf *c = obj;

	if (cfg_get_string(val, c->path, sizeof(c->path), errs))
		return -EINVAL;
	if (c->path[0] != '/') {
		cfg_node_error(errs, val, "tap: pcap: '%s' is not an absolute path", c->path);
		return -EINVAL;
	}
	if (tap_split_path(c)) {
		cfg_node_error(errs, val, "tap: pcap: '%s' does not end in a file name", c->path);
		return -EINVAL;
	}
	return 0;
}

static int tap_parse_ifname(const struct cfg_node *val, void *obj, struct cfg_errors *errs)
{
	struct tap_conf *c = obj;

	if (cfg_get_string(val, c->ifname, sizeof(c->ifname), errs))
		return -EINVAL;
	if (!c->ifname[0] || strpbrk(c->ifname, "/: \t")) {
		cfg_node_error(errs, val, "tap: bad interface name '%s'", c->ifname);
		return -EINVAL;
	}
	return 0;
}

static int tap_parse_mode_arg(const struct cfg_node *val, void *obj, struct cfg_errors *errs)
{
	return tap_parse_mode(val, &((struct tap_conf *)obj)->mode, errs);
}

static int tap_parse_max_bytes(const struct cfg_node *val, void *obj, struct cfg_errors *errs)
{
	struct tap_conf *c = obj;
	uint32_t v;

	if (cfg_get_u32(val, TAP_MIN_MAX_BYTES, UINT32_MAX, &v, errs))
		return -EINVAL;
	c->max_bytes = v;
	return 0;
}

static const struct cfg_arg tap_arg_list[] = {
	{ .name = "pcap", .type = CFG_ARG_NODE, .parse = tap_parse_pcap },
	{ .name = "mode",
	  .type = CFG_ARG_NODE,
	  .seen = CFG_SEEN(struct tap_conf, have_mode),
	  .parse = tap_parse_mode_arg },
	{ .name = "interface", .type = CFG_ARG_NODE, .parse = tap_parse_ifname },
	{ .name = "max_bytes",
	  .type = CFG_ARG_NODE,
	  .seen = CFG_SEEN(struct tap_conf, have_max_bytes),
	  .parse = tap_parse_max_bytes },
	{ .name = "files",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct tap_conf, files),
	  .seen = CFG_SEEN(struct tap_conf, have_files),
	  .min = 1,
	  .max = TAP_MAX_FILES,
	  .def = 2 },
	{ .name = "snaplen",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct tap_conf, snaplen),
	  .min = 64,
	  .max = 65535,
	  .def = 65535 },
	SVC_DIR_ARG(struct tap_conf, dirs, SVC_DIR_BOTH),
};

static const struct cfg_args tap_args = {
	.prefix = "tap",
	.expect = " with 'pcap' or 'interface'",
	.args = tap_arg_list,
	.nr = sizeof(tap_arg_list) / sizeof(tap_arg_list[0]),
};

static int tap_configure(const struct ferry_flow_ctx *fc, const struct cfg_node *args,
			 struct cfg_errors *errs, void **confp)
{
	struct tap_conf *c;
	bool have_rotation;
	int err = 0;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	snprintf(c->flow_name, sizeof(c->flow_name), "%s", ferry_flow__name(fc));
	c->dirfd = -1;
	c->mode = TAP_DEFAULT_MODE;
	if (cfg_args_parse(&tap_args, args, c, errs))
		err = -EINVAL;
	have_rotation = c->have_max_bytes || c->have_files;
	if (!err && !c->path[0] == !c->ifname[0]) {
		cfg_node_error(errs, args, "tap: needs exactly one of 'pcap' and 'interface'");
		err = -EINVAL;
	}
	if (!err && c->ifname[0] && have_rotation) {
		cfg_node_error(errs, args, "tap: max_bytes and files go with 'pcap' only");
		err = -EINVAL;
	}
	if (!err && c->ifname[0] && c->have_mode) {
		cfg_node_error(errs, args, "tap: mode goes with 'pcap' only");
		err = -EINVAL;
	}
	if (err) {
		free(c);
		return err;
	}
	*confp = c;
	return 0;
}

/* ---- pcap writer (its own thread) ---- */

/*
 * Without openat2(): the path one component at a time, none followed if it
 * is a symbolic link (O_NOFOLLOW), which is -ELOOP as with
 * RESOLVE_NO_SYMLINKS.  Returns the directory's descriptor or -errno.
 */
static int open_dir_walk(const char *dir)
{
	char buf[sizeof(((struct tap_conf *)0)->dir)], *comp, *save = NULL;
	int fd, next;

	snprintf(buf, sizeof(buf), "%s", dir);
	fd = open(dir[0] == '/' ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (comp = strtok_r(buf, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		struct stat st;
		int err;

		next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			err = -errno;
			/* With O_DIRECTORY a link fails ENOTDIR: say what it is. */
			if (err == -ENOTDIR && !fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) &&
			    S_ISLNK(st.st_mode))
				err = -ELOOP;
			close(fd);
			return err;
		}
		close(fd);
		fd = next;
	}
	return fd;
}

/*
 * The directory, with no symbolic link followed in any component of its
 * path: a link higher up would let whoever may change it point ferryd's
 * files elsewhere after the checks on the last directory.
 */
static int open_dir_nofollow(const char *dir)
{
	struct open_how how = {
		.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_NO_SYMLINKS,
	};
	long fd = syscall(SYS_openat2, AT_FDCWD, dir, &how, sizeof(how));

	if (fd >= 0)
		return (int)fd;
	if (errno != ENOSYS)
		return -errno;
	return open_dir_walk(dir);
}

/* Opens the file's directory once, if it belongs to ferryd and nobody else may write to it. */
static int tap_open_dir(struct tap_conf *c)
{
	struct stat st;
	int fd, err;

	if (c->dirfd >= 0)
		return 0;
	fd = open_dir_nofollow(c->dir);
	if (fd == -ELOOP) {
		pr_err("flow '%s': tap: the path of the directory %s goes through a symbolic "
		       "link: give the real path",
		       c->flow_name, c->dir);
		return fd;
	}
	if (fd < 0) {
		err = fd;
		pr_err("flow '%s': tap: cannot open the directory %s: %s", c->flow_name, c->dir,
		       strerror(-err));
		return err;
	}
	if (fstat(fd, &st)) {
		err = -errno;
		pr_err("flow '%s': tap: cannot stat %s: %s", c->flow_name, c->dir, strerror(-err));
		goto err_close;
	}
	if (st.st_uid != geteuid()) {
		pr_err("flow '%s': tap: the directory %s is owned by uid %u, not ferryd's (%u): "
		       "its owner could put a link where ferryd writes",
		       c->flow_name, c->dir, (unsigned int)st.st_uid, (unsigned int)geteuid());
		err = -EPERM;
		goto err_close;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		pr_err("flow '%s': tap: the directory %s is writable by group or others "
		       "(mode %04o)",
		       c->flow_name, c->dir, (unsigned int)(st.st_mode & 07777));
		err = -EPERM;
		goto err_close;
	}
	c->dirfd = fd;
	return 0;

err_close:
	close(fd);
	return err;
}

/*
 * A new file at c->name, mode c->mode, beneath the checked directory; an
 * old regular file of that name is unlinked first, anything else refused.
 * Returns the descriptor or -errno after logging.
 */
static int tap_create(struct tap_conf *c)
{
	struct stat st;
	int fd, err;

	err = tap_open_dir(c);
	if (err)
		return err;
	if (!fstatat(c->dirfd, c->name, &st, AT_SYMLINK_NOFOLLOW)) {
		if (S_ISLNK(st.st_mode)) {
			pr_err("flow '%s': tap: %s is a symbolic link; ferryd does not write "
			       "through one",
			       c->flow_name, c->path);
			return -ELOOP;
		}
		if (!S_ISREG(st.st_mode)) {
			pr_err("flow '%s': tap: %s is not a regular file", c->flow_name, c->path);
			return -EINVAL;
		}
		if (unlinkat(c->dirfd, c->name, 0) && errno != ENOENT) {
			err = -errno;
			pr_err("flow '%s': tap: cannot replace %s: %s", c->flow_name, c->path,
			       strerror(-err));
			return err;
		}
	}
	fd = openat(c->dirfd, c->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    c->mode);
	if (fd < 0) {
		err = -errno;
		pr_err("flow '%s': tap: cannot create %s: %s", c->flow_name, c->path,
		       strerror(-err));
		return err;
	}
	/* The mode asked for, whatever ferryd's umask. */
	if (fchmod(fd, c->mode)) {
		err = -errno;
		pr_err("flow '%s': tap: cannot set the mode of %s: %s", c->flow_name, c->path,
		       strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

static int tap_open_file(struct tap_conf *c)
{
	struct pcap_file_hdr h = {
		.magic = PCAP_MAGIC_USEC,
		.version_major = 2,
		.version_minor = 4,
		.snaplen = c->snaplen,
		.linktype = PCAP_LINKTYPE_ETHERNET,
	};
	int err, fd;

	fd = tap_create(c);
	if (fd < 0)
		return fd;
	c->f = fdopen(fd, "w");
	if (!c->f) {
		err = -errno;
		pr_err("flow '%s': tap: cannot open %s: %s", c->flow_name, c->path, strerror(-err));
		close(fd);
		return err;
	}
	/* Whole records per write(): the file is read while it grows. */
	setvbuf(c->f, NULL, _IOFBF, 256 * 1024);
	c->file_bytes = PCAP_HDR_LEN;
	c->write_failed = false;
	if (fwrite(&h, sizeof(h), 1, c->f) != 1 || fflush(c->f)) {
		err = -errno ?: -EIO;
		pr_err("flow '%s': tap: cannot write %s: %s", c->flow_name, c->path,
		       strerror(-err));
		fclose(c->f);
		c->f = NULL;
		return err;
	}
	return 0;
}

/*
 * PATH -> PATH.1 -> ... -> PATH.(files-1), the oldest dropped; then a new
 * PATH.  Names beneath the checked directory; unlinking the oldest frees
 * the first target, and each rename frees the next, so RENAME_NOREPLACE
 * only ever refuses a name something else put there.
 */
static void tap_rotate(struct tap_conf *c)
{
	char from[sizeof(c->name) + 16], to[sizeof(c->name) + 16];

	if (fclose(c->f))
		pr_warn("flow '%s': tap: closing %s: %s", c->flow_name, c->path, strerror(errno));
	c->f = NULL;
	for (uint32_t i = c->files - 1; i >= 1; i--) {
		if (i == 1)
			snprintf(from, sizeof(from), "%s", c->name);
		else
			snprintf(from, sizeof(from), "%s.%u", c->name, i - 1);
		snprintf(to, sizeof(to), "%s.%u", c->name, i);
		if (i == c->files - 1 && unlinkat(c->dirfd, to, 0) && errno != ENOENT)
			pr_warn("flow '%s': tap: cannot remove %s/%s: %s", c->flow_name, c->dir,
				to, strerror(errno));
		if (renameat2(c->dirfd, from, c->dirfd, to, RENAME_NOREPLACE) && errno != ENOENT)
			pr_warn("flow '%s': tap: cannot rename %s/%s to %s: %s", c->flow_name,
				c->dir, from, to, strerror(errno));
	}
	/* files == 1: the file starts over. */
	tap_open_file(c);
}

static void tap_write_record(struct tap_conf *c, const struct tap_slot *s)
{
	int64_t wall = (int64_t)s->ts_ns + c->wall_offset_ns;
	struct pcap_rec_hdr r = {
		.ts_sec = (uint32_t)(wall / 1000000000),
		.ts_usec = (uint32_t)(wall % 1000000000 / 1000),
		.incl_len = s->caplen,
		.orig_len = s->len,
	};
	uint64_t size = PCAP_REC_HDR_LEN + s->caplen;

	if (c->max_bytes && c->f && c->file_bytes > PCAP_HDR_LEN &&
	    c->file_bytes + size > c->max_bytes)
		tap_rotate(c);
	if (!c->f)
		return;
	if (fwrite(&r, sizeof(r), 1, c->f) != 1 || fwrite(s->data, s->caplen, 1, c->f) != 1) {
		if (!c->write_failed)
			pr_warn("flow '%s': tap: cannot write %s: %s; records are lost",
				c->flow_name, c->path, strerror(errno));
		c->write_failed = true;
		return;
	}
	c->file_bytes += size;
}

/* Writes what the rings hold; returns how many records. */
static uint32_t tap_drain(struct tap_conf *c)
{
	uint32_t n = 0;

	for (int i = 0; i < TAP_MAX_WORKERS; i++) {
		struct tap_ring *r = atomic_load_explicit(&c->rings[i], memory_order_acquire);
		uint32_t tail, head;

		if (!r)
			continue;
		tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
		head = atomic_load_explicit(&r->head, memory_order_acquire);
		for (; tail != head; tail++, n++)
			tap_write_record(
			    c,
			    (const struct tap_slot *)(r->slots + (size_t)(tail % TAP_RING_SLOTS) *
								     r->slot_size));
		/* The slots are free again once written. */
		atomic_store_explicit(&r->tail, tail, memory_order_release);
	}
	return n;
}

static void *tap_writer(void *arg)
{
	struct tap_conf *c = arg;
	const struct timespec idle = { .tv_nsec = TAP_IDLE_NS };
	int err;

	/* It writes files in ferryd's own directory and needs no capability at all. */
	err = caps__limit_thread(0);
	if (err)
		pr_warn("flow '%s': tap: writer: cannot drop capabilities: %s", c->flow_name,
			strerror(-err));

	while (!atomic_load_explicit(&c->stop, memory_order_acquire)) {
		if (tap_drain(c))
			continue;
		/* Idle: what is written becomes visible to readers of the file. */
		if (c->f && fflush(c->f) && !c->write_failed) {
			pr_warn("flow '%s': tap: cannot write %s: %s; records are lost",
				c->flow_name, c->path, strerror(errno));
			c->write_failed = true;
		}
		nanosleep(&idle, NULL);
	}
	/* The workers have stopped: write their last records. */
	tap_drain(c);
	return NULL;
}

static int tap_start_writer(struct tap_conf *c)
{
	struct timespec rt, mono;
	int err;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	c->wall_offset_ns =
	    ((int64_t)rt.tv_sec - mono.tv_sec) * 1000000000 + (rt.tv_nsec - mono.tv_nsec);
	err = tap_open_file(c);
	if (err)
		return err;
	atomic_store(&c->stop, 0);
	err = pthread_create(&c->writer, NULL, tap_writer, c);
	if (err) {
		pr_err("flow '%s': tap: cannot start the writer thread: %s", c->flow_name,
		       strerror(err));
		fclose(c->f);
		c->f = NULL;
		return -err;
	}
	pthread_setname_np(c->writer, "ferry-tap");
	c->writer_started = true;
	return 0;
}

static void tap_destroy(void *conf)
{
	struct tap_conf *c = conf;

	if (c->writer_started) {
		atomic_store_explicit(&c->stop, 1, memory_order_release);
		pthread_join(c->writer, NULL);
	}
	if (c->f && fclose(c->f))
		pr_warn("flow '%s': tap: closing %s: %s", c->flow_name, c->path, strerror(errno));
	if (c->dirfd >= 0)
		close(c->dirfd);
	for (int i = 0; i < TAP_MAX_WORKERS; i++) {
		struct tap_ring *r = atomic_load(&c->rings[i]);

		if (r) {
			free(r->slots);
			free(r);
		}
	}
	free(c);
}

/* ---- per worker ---- */

static int tap_init_ring(struct tap_conf *c, struct tap_worker *tw, uint32_t id)
{
	struct tap_ring *r;
	int err;

	if (id >= TAP_MAX_WORKERS || atomic_load(&c->rings[id]))
		return -EBUSY;
	r = aligned_alloc(64, sizeof(*r));
	if (!r)
		return -ENOMEM;
	memset(r, 0, sizeof(*r));
	/* No packet is longer than a frame: slots need no more room. */
	r->slot_size = (uint32_t)((sizeof(struct tap_slot) +
				   (c->snaplen < TAP_MAX_FRAME ? c->snaplen : TAP_MAX_FRAME) + 7) &
				  ~7ul);
	r->slots = malloc((size_t)r->slot_size * TAP_RING_SLOTS);
	if (!r->slots) {
		err = -ENOMEM;
		goto err_free_ring;
	}
	if (!c->writer_started) {
		err = tap_start_writer(c);
		if (err)
			goto err_free_slots;
	}
	/* Published for the writer only once complete; freed by tap_destroy(). */
	atomic_store_explicit(&c->rings[id], r, memory_order_release);
	tw->ring = r;
	return 0;

err_free_slots:
	free(r->slots);
err_free_ring:
	free(r);
	return err;
}

static int tap_init_socket(struct tap_conf *c, struct tap_worker *tw, uint32_t id)
{
	int ifindex = (int)if_nametoindex(c->ifname), err;

	if (!ifindex) {
		err = -errno;
		pr_err("flow '%s': tap: worker %u: interface %s: %s", c->flow_name, id, c->ifname,
		       strerror(-err));
		return err;
	}
	tw->msgs = calloc(TAP_SEND_BATCH, sizeof(*tw->msgs));
	tw->iov = calloc(TAP_SEND_BATCH, sizeof(*tw->iov));
	if (!tw->msgs || !tw->iov)
		return -ENOMEM; /* the caller frees both */
	/* Protocol 0: a socket that only sends, so it queues nothing received. */
	tw->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (tw->fd < 0) {
		err = -errno;
		pr_err("flow '%s': tap: worker %u: AF_PACKET socket: %s", c->flow_name, id,
		       strerror(-err));
		return err;
	}
	tw->sll.sll_family = AF_PACKET;
	tw->sll.sll_ifindex = ifindex;
	tw->sll.sll_protocol = 0;
	if (bind(tw->fd, (struct sockaddr *)&tw->sll, sizeof(tw->sll))) {
		err = -errno;
		pr_err("flow '%s': tap: worker %u: cannot bind to %s: %s", c->flow_name, id,
		       c->ifname, strerror(-err));
		close(tw->fd);
		tw->fd = -1;
		return err;
	}
	for (int i = 0; i < TAP_SEND_BATCH; i++) {
		tw->msgs[i].msg_hdr.msg_iov = &tw->iov[i];
		tw->msgs[i].msg_hdr.msg_iovlen = 1;
		tw->msgs[i].msg_hdr.msg_name = &tw->sll;
		tw->msgs[i].msg_hdr.msg_namelen = sizeof(tw->sll);
	}
	return 0;
}

static int tap_worker_init(void *conf, struct ferry_worker *w, void **wstate)
{
	struct tap_conf *c = conf;
	struct tap_worker *tw;
	int err;

	tw = calloc(1, sizeof(*tw));
	if (!tw)
		return -ENOMEM;
	tw->c = c;
	tw->fd = -1;
	if (c->path[0])
		err = tap_init_ring(c, tw, ferry_worker__id(w));
	else
		err = tap_init_socket(c, tw, ferry_worker__id(w));
	if (err) {
		free(tw->msgs);
		free(tw->iov);
		free(tw);
		return err;
	}
	*wstate = tw;
	return 0;
}

static void tap_worker_destroy(void *conf, void *wstate)
{
	struct tap_worker *tw = wstate;

	/* A ring stays with the writer, which drains it, until tap_destroy(). */
	if (tw->fd >= 0)
		close(tw->fd);
	free(tw->msgs);
	free(tw->iov);
	free(tw);
}

static void tap_stats(void *conf, void *wstate, uint64_t counters[FERRY_SERVICE_COUNTERS])
{
	const struct tap_worker *tw = wstate;

	for (int i = 0; i < FERRY_SERVICE_COUNTERS; i++)
		counters[i] += tw->counters[i];
}

/* Is the packet still in this chain run, and of a direction we copy? */
static bool tap_wants(const struct tap_conf *c, const struct ferry_pkt *p)
{
	return (p->verdict == FERRY_VERDICT_NEXT || p->verdict == FERRY_VERDICT_TX) &&
	       svc_dir_match(c->dirs, p);
}

static void tap_to_ring(struct tap_worker *tw, struct ferry_worker *w, struct ferry_batch *b)
{
	struct tap_ring *r = tw->ring;
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	uint32_t max = tw->c->snaplen < TAP_MAX_FRAME ? tw->c->snaplen : TAP_MAX_FRAME;
	uint64_t now = ferry_worker__now_ns(w);

	for (uint32_t i = 0; i < b->n; i++) {
		const struct ferry_pkt *p = b->pkts[i];
		struct tap_slot *s;

		if (!tap_wants(tw->c, p))
			continue;
		if (head - tail == TAP_RING_SLOTS) {
			tw->counters[TAP_C_MISSED]++;
			continue;
		}
		s = (struct tap_slot *)(r->slots + (size_t)(head % TAP_RING_SLOTS) * r->slot_size);
		s->ts_ns = now;
		s->len = p->len;
		s->caplen = p->len < max ? p->len : max;
		memcpy(s->data, p->data, s->caplen);
		head++;
		tw->counters[TAP_C_CAPTURED]++;
		tw->counters[TAP_C_BYTES] += p->len;
	}
	/* One publication per batch: the writer sees whole slots only. */
	atomic_store_explicit(&r->head, head, memory_order_release);
}

static void tap_to_socket(struct tap_worker *tw, struct ferry_batch *b)
{
	uint32_t i = 0;

	while (i < b->n) {
		uint32_t n = 0;
		int sent;

		for (; i < b->n && n < TAP_SEND_BATCH; i++) {
			const struct ferry_pkt *p = b->pkts[i];

			if (!tap_wants(tw->c, p))
				continue;
			/* The frame stays where it is until process() returns: no copy. */
			tw->iov[n].iov_base = p->data;
			tw->iov[n].iov_len = p->len;
			n++;
		}
		if (!n)
			break;
		sent = sendmmsg(tw->fd, tw->msgs, n, MSG_DONTWAIT);
		if (sent < 0)
			sent = 0;
		for (int k = 0; k < sent; k++)
			tw->counters[TAP_C_BYTES] += tw->iov[k].iov_len;
		tw->counters[TAP_C_CAPTURED] += (uint32_t)sent;
		tw->counters[TAP_C_MISSED] += n - (uint32_t)sent;
	}
}

static void tap_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	struct tap_worker *tw = wstate;

	if (tw->ring)
		tap_to_ring(tw, w, b);
	else
		tap_to_socket(tw, b);
}

const struct ferry_service_ops svc_tap_ops = {
	.name = "tap",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.configure = tap_configure,
	.worker_init = tap_worker_init,
	.process = tap_process,
	.stats = tap_stats,
	.worker_destroy = tap_worker_destroy,
	.destroy = tap_destroy,
	.counter_names = { "captured", "missed", "bytes" },
	.sees_tx = true,
};
