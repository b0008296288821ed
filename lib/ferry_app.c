// SPDX-License-Identifier: BSD-2-Clause
/*
 * libferry_app: the application side of ferry's application services
 * (services/ferry_app.h is the contract, ferry_app_client.h the API,
 * docs/man/ferry_app.3 the manual).
 *
 * libc only: built into build/libferry_app.so and .a for applications, and
 * into libferry.a so the unit tests can drive it against a fake ferryd.
 *
 * The library trusts ferryd no more than ferryd trusts it: the attach reply
 * and the area's layout are checked before anything in the area is used,
 * every ring's geometry is copied out of the area once at attach (ferryd
 * could change the shared copy later), and every descriptor read from
 * TO_APP is copied out and checked before it becomes a packet.  A bad area
 * is refused; a bad descriptor is handed back as DROP and counted.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ferry_app_client.h"

/* One queue's view, as validated at attach: never re-read from the area. */
struct app_queue {
	struct ferry_app_ring *to_app;
	struct ferry_app_ring *from_app;
	struct ferry_app_desc *to_desc;
	struct ferry_app_desc *from_desc;
	uint8_t *frames;
	uint8_t *emit_frames;	/* NULL: this ferryd takes no emits */
	uint32_t to_mask;
	uint32_t from_mask;
	uint32_t nr_frames;
	uint32_t frame_size;
	/* Our own indexes: the authoritative copies (the shared ones are published). */
	uint32_t to_cons;
	uint32_t from_prod;
};

struct ferry_app {
	int ctl_fd;
	int wake_fd;  /* ferryd writes it: we sleep on it */
	int kick_fd;  /* we write it when FROM_APP asks for a wake-up */
	uint8_t *area;
	size_t area_size;
	unsigned int nr_queues;
	unsigned int next_queue; /* round robin start for recv */
	int armed;               /* to_app.flags ask for a wake-up (got_packets()) */
	uint64_t bad_descs;
	struct app_queue q[];
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* [off, off + len) inside an area of `size` bytes, without overflowing. */
static int in_area(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

static int is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/*
 * A ring's geometry: size a power of two, its descriptors inside the area
 * and aligned.  Copied out once: the shared fields are ferryd's to change.
 */
static int check_ring(const struct ferry_app_ring *r, uint64_t area_size, const char *what,
		      unsigned int q, uint32_t *mask, uint64_t *desc_off, char *err, size_t errlen)
{
	uint32_t size = __atomic_load_n(&r->size, __ATOMIC_RELAXED);
	uint64_t off = __atomic_load_n(&r->desc_off, __ATOMIC_RELAXED);

	if (!is_pow2(size) || size > (1u << 24)) {
		set_err(err, errlen, "queue %u %s ring size %u is not a power of two <= 2^24", q,
			what, size);
		return -EPROTO;
	}
	if (off % _Alignof(struct ferry_app_desc) ||
	    !in_area(off, (uint64_t)size * sizeof(struct ferry_app_desc), area_size)) {
		set_err(err, errlen, "queue %u %s ring descriptors (offset %llu, %u entries) outside the area",
			q, what, (unsigned long long)off, size);
		return -EPROTO;
	}
	*mask = size - 1;
	*desc_off = off;
	return 0;
}

/* The area's header and every queue in it, before the library touches any ring. */
static int check_area(struct ferry_app *a, const struct ferry_ctl_attach_reply *reply,
		      const char *slot, char *err, size_t errlen)
{
	const struct ferry_app_area *h = (const void *)a->area;
	uint64_t size = a->area_size;

	if (h->magic != FERRY_APP_MAGIC || h->version != FERRY_APP_VERSION) {
		set_err(err, errlen, "area magic 0x%x version %u, expected 0x%x version %u", h->magic,
			h->version, FERRY_APP_MAGIC, FERRY_APP_VERSION);
		return -EPROTO;
	}
	if (h->size != size) {
		set_err(err, errlen, "area says %llu bytes, reply %llu", (unsigned long long)h->size,
			(unsigned long long)size);
		return -EPROTO;
	}
	if (h->nr_queues != reply->nr_queues || !h->nr_queues ||
	    h->nr_queues > FERRY_APP_MAX_QUEUES) {
		set_err(err, errlen, "area has %u queues, reply %u (1..%u)", h->nr_queues,
			reply->nr_queues, FERRY_APP_MAX_QUEUES);
		return -EPROTO;
	}
	if (strncmp(h->slot, slot, FERRY_APP_NAME_LEN)) {
		set_err(err, errlen, "area is for slot '%.*s', not '%s'", FERRY_APP_NAME_LEN, h->slot,
			slot);
		return -EPROTO;
	}
	for (unsigned int i = 0; i < h->nr_queues; i++) {
		uint64_t qoff = h->queue_off[i], to_off, from_off, frames_off;
		const struct ferry_app_queue *fq;
		struct app_queue *q = &a->q[i];
		int err_code;

		if (qoff % _Alignof(struct ferry_app_queue) ||
		    !in_area(qoff, sizeof(*fq), size) || qoff < sizeof(*h)) {
			set_err(err, errlen, "queue %u at offset %llu outside the area", i,
				(unsigned long long)qoff);
			return -EPROTO;
		}
		fq = (const void *)(a->area + qoff);
		err_code = check_ring(&fq->to_app, size, "to_app", i, &q->to_mask, &to_off, err, errlen);
		if (err_code)
			return err_code;
		err_code = check_ring(&fq->from_app, size, "from_app", i, &q->from_mask, &from_off,
				      err, errlen);
		if (err_code)
			return err_code;
		q->nr_frames = fq->frames;
		q->frame_size = fq->frame_size;
		frames_off = fq->frames_off;
		if (!q->nr_frames || !q->frame_size || q->frame_size > (1u << 20) ||
		    !in_area(frames_off, (uint64_t)q->nr_frames * q->frame_size, size)) {
			set_err(err, errlen, "queue %u frames (offset %llu, %u x %u bytes) outside the area",
				i, (unsigned long long)frames_off, q->nr_frames, q->frame_size);
			return -EPROTO;
		}
		q->to_app = (struct ferry_app_ring *)(a->area + qoff +
						      offsetof(struct ferry_app_queue, to_app));
		q->from_app = (struct ferry_app_ring *)(a->area + qoff +
							offsetof(struct ferry_app_queue, from_app));
		q->to_desc = (struct ferry_app_desc *)(a->area + to_off);
		q->from_desc = (struct ferry_app_desc *)(a->area + from_off);
		q->frames = a->area + frames_off;
		/* Emit frames: as many as FROM_APP entries, or none (a ferryd without emit). */
		{
			uint32_t ne = fq->emit_frames;
			uint64_t eoff = fq->emit_frames_off;

			if (ne && (ne != q->from_mask + 1 ||
				   !in_area(eoff, (uint64_t)ne * q->frame_size, size))) {
				set_err(err, errlen,
					"queue %u emit frames (offset %llu, %u) outside the area or not one per FROM_APP entry",
					i, (unsigned long long)eoff, ne);
				return -EPROTO;
			}
			q->emit_frames = ne ? a->area + eoff : NULL;
		}
		/* Start where ferryd's rings are: an area may be reused across attaches. */
		q->to_cons = __atomic_load_n(&q->to_app->consumer, __ATOMIC_ACQUIRE);
		q->from_prod = __atomic_load_n(&q->from_app->producer, __ATOMIC_ACQUIRE);
	}
	a->nr_queues = h->nr_queues;
	return 0;
}

/* The wake-up pipe's read end, as the contract says. */
static int is_fifo(int fd)
{
	struct stat st;

	return !fstat(fd, &st) && S_ISFIFO(st.st_mode);
}

/* An eventfd, as the contract says: anything else is refused (never polled or written). */
static int is_eventfd(int fd)
{
	char path[32], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return errno == ENOENT ? 1 : 0; /* no /proc in this sandbox: cannot tell, allow */
	target[n] = '\0';
	return !strcmp(target, "anon_inode:[eventfd]");
}

static int send_request(int fd, const char *slot)
{
	struct ferry_ctl_request req;
	ssize_t n;

	memset(&req, 0, sizeof(req));
	req.magic = FERRY_APP_MAGIC;
	req.version = FERRY_APP_VERSION;
	req.op = FERRY_CTL_ATTACH;
	memcpy(req.slot, slot, strlen(slot) + 1);
	do
		n = send(fd, &req, sizeof(req), MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == sizeof(req) ? 0 : -EPROTO;
}

/*
 * The reply and its descriptors.  fds[] gets up to 3; any extra ferryd sent
 * is closed, and a short or truncated message is an error with every
 * received descriptor closed.
 */
static int recv_reply(int fd, struct ferry_ctl_attach_reply *reply, int fds[3], int *nr_fds)
{
	union {
		char buf[CMSG_SPACE(8 * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { .iov_base = reply, .iov_len = sizeof(*reply) };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf.buf,
		.msg_controllen = sizeof(cbuf.buf),
	};
	struct cmsghdr *c;
	ssize_t n;
	int ret = 0;

	*nr_fds = 0;
	do
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		int cnt, *p;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		p = (int *)CMSG_DATA(c);
		for (int i = 0; i < cnt; i++) {
			int got;

			memcpy(&got, p + i, sizeof(got));
			if (*nr_fds < 3)
				fds[(*nr_fds)++] = got;
			else
				close(got), ret = -EPROTO;
		}
	}
	if (n == 0)
		ret = -ECONNRESET;
	else if (n != sizeof(*reply) || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
		ret = -EPROTO;
	if (ret) {
		while (*nr_fds)
			close(fds[--*nr_fds]);
	}
	return ret;
}

/*
 * -EAGAIN: the slot's last application is still being released (ferryd's
 * workers let its area go within a loop iteration each), or too many are.
 * An application restarted at once (systemd's Restart=) tries again this
 * often, this many times, before it gives up with -EAGAIN.
 */
#define ATTACH_RETRY_NS 10000000L
#define ATTACH_RETRIES 100

static int attach_on(int fd, const char *slot, struct ferry_app **out, char *err, size_t errlen,
		     bool *busy);

int ferry_app_attach(const char *control_socket, const char *slot, struct ferry_app **out,
		     char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const struct timespec pause = { .tv_nsec = ATTACH_RETRY_NS };
	int fd, ret, tries = 0;
	bool busy;

	if (err && errlen)
		err[0] = '\0';
	if (out)
		*out = NULL;
	if (!control_socket)
		control_socket = FERRY_CONTROL_SOCKET;
	if (strlen(control_socket) >= sizeof(sun.sun_path)) {
		set_err(err, errlen, "control socket path too long");
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, control_socket);

	do {
		/* ferryd closes a connection it refused: each try connects anew. */
		if (tries)
			nanosleep(&pause, NULL);
		fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			ret = -errno;
			set_err(err, errlen, "socket: %s", strerror(-ret));
			return ret;
		}
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
			ret = -errno;
			set_err(err, errlen, "connect %s: %s", control_socket, strerror(-ret));
			close(fd);
			return ret;
		}
		busy = false;
		ret = attach_on(fd, slot, out, err, errlen, &busy);
		/* Only ferryd's own -EAGAIN: not an mmap() over RLIMIT_MEMLOCK, say. */
	} while (busy && ++tries < ATTACH_RETRIES);
	return ret;
}

/* ferry_app_attach_fd(); *busy: ferryd itself answered -EAGAIN (worth a retry). */
static int attach_on(int fd, const char *slot, struct ferry_app **out, char *err, size_t errlen,
		     bool *busy)
{
	struct ferry_ctl_attach_reply reply;
	int fds[3], nr_fds = 0, ret, fl;
	struct ferry_app *a;
	struct stat st;
	void *map;

	if (err && errlen)
		err[0] = '\0';
	if (fd < 0)
		return -EBADF;
	if (!slot || !out) {
		set_err(err, errlen, "no slot or handle pointer");
		ret = -EINVAL;
		goto close_socket;
	}
	*out = NULL;
	if (!slot[0] || strlen(slot) >= FERRY_APP_NAME_LEN) {
		set_err(err, errlen, "slot name must be 1..%d bytes", FERRY_APP_NAME_LEN - 1);
		ret = -EINVAL;
		goto close_socket;
	}
	ret = send_request(fd, slot);
	if (ret) {
		set_err(err, errlen, "send attach request: %s", strerror(-ret));
		goto close_socket;
	}
	ret = recv_reply(fd, &reply, fds, &nr_fds);
	if (ret) {
		set_err(err, errlen, "attach reply: %s", strerror(-ret));
		goto close_socket;
	}
	if (reply.magic != FERRY_APP_MAGIC || reply.version != FERRY_APP_VERSION) {
		set_err(err, errlen, "attach reply magic 0x%x version %u, expected 0x%x version %u",
			reply.magic, reply.version, FERRY_APP_MAGIC, FERRY_APP_VERSION);
		ret = -EPROTO;
		goto close_fds;
	}
	if (reply.status) {
		reply.message[sizeof(reply.message) - 1] = '\0';
		/* Only an errno is passed on: a positive or absurd status is a protocol error. */
		ret = reply.status < 0 && reply.status > -4096 ? reply.status : -EPROTO;
		set_err(err, errlen, "ferryd refused slot '%s': %s (%s)", slot,
			reply.message[0] ? reply.message : "no reason given", strerror(-ret));
		*busy = ret == -EAGAIN;
		goto close_fds;
	}
	if (nr_fds != 3) {
		set_err(err, errlen, "attach reply carried %d descriptors, expected 3", nr_fds);
		ret = -EPROTO;
		goto close_fds;
	}
	if (reply.nr_queues == 0 || reply.nr_queues > FERRY_APP_MAX_QUEUES ||
	    reply.area_size < sizeof(struct ferry_app_area) || reply.area_size > SIZE_MAX / 2) {
		set_err(err, errlen, "attach reply: %u queues, area of %llu bytes", reply.nr_queues,
			(unsigned long long)reply.area_size);
		ret = -EPROTO;
		goto close_fds;
	}
	/*
	 * The area must be a memfd (seals are a memfd's) at least as large as
	 * announced: mapping past a file's end would fault (SIGBUS) on access.
	 */
	if (fstat(fds[0], &st) || !S_ISREG(st.st_mode) || fcntl(fds[0], F_GET_SEALS) < 0 ||
	    (uint64_t)st.st_size < reply.area_size) {
		set_err(err, errlen, "the area descriptor is not a memfd of %llu bytes",
			(unsigned long long)reply.area_size);
		ret = -EPROTO;
		goto close_fds;
	}
	/*
	 * Seal the area against shrinking, unless ferryd did: a file cut short
	 * under the mapping would fault (SIGBUS) at the next access, the one
	 * crash an area check at attach cannot rule out.  A memfd created
	 * without MFD_ALLOW_SEALING refuses (EPERM): that residual risk is
	 * ferryd's to remove (ferry_app(3)).
	 */
	if (!(fcntl(fds[0], F_GET_SEALS) & F_SEAL_SHRINK))
		(void)fcntl(fds[0], F_ADD_SEALS, F_SEAL_SHRINK);
	/*
	 * Again, now that it can no longer shrink (when sealed): the file may
	 * have been cut short between the first look and the seal.
	 */
	if (fstat(fds[0], &st) || (uint64_t)st.st_size < reply.area_size) {
		set_err(err, errlen, "the area memfd shrank below %llu bytes",
			(unsigned long long)reply.area_size);
		ret = -EPROTO;
		goto close_fds;
	}
	if (!is_fifo(fds[1]) || !is_eventfd(fds[2])) {
		set_err(err, errlen, "the wake-up descriptors are not a pipe and an eventfd");
		ret = -EPROTO;
		goto close_fds;
	}

	a = calloc(1, sizeof(*a) + reply.nr_queues * sizeof(a->q[0]));
	if (!a) {
		ret = -ENOMEM;
		set_err(err, errlen, "out of memory");
		goto close_fds;
	}
	map = mmap(NULL, reply.area_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	if (map == MAP_FAILED) {
		ret = -errno;
		set_err(err, errlen, "mmap of the area (%llu bytes): %s",
			(unsigned long long)reply.area_size, strerror(-ret));
		goto free_handle;
	}
	a->area = map;
	a->area_size = reply.area_size;
	ret = check_area(a, &reply, slot, err, errlen);
	if (ret)
		goto unmap_area;
	/* The mapping keeps the memory: the memfd itself is no longer needed. */
	close(fds[0]);
	/*
	 * recv empties the wake-up pipe without knowing whether it is
	 * readable: nonblocking, then.  The flag is our read end's own; ferryd
	 * writes through its own end, whose flags no application can change.
	 */
	fl = fcntl(fds[1], F_GETFL);
	if (fl < 0 || fcntl(fds[1], F_SETFL, fl | O_NONBLOCK)) {
		ret = -errno;
		set_err(err, errlen, "wake-up pipe: %s", strerror(-ret));
		goto unmap_area;
	}
	a->ctl_fd = fd;
	a->wake_fd = fds[1];
	a->kick_fd = fds[2];
	*out = a;
	return 0;

unmap_area:
	munmap(a->area, a->area_size);
free_handle:
	free(a);
close_fds:
	while (nr_fds)
		close(fds[--nr_fds]);
close_socket:
	close(fd);
	return ret;
}

int ferry_app_attach_fd(int fd, const char *slot, struct ferry_app **out, char *err,
			size_t errlen)
{
	bool busy = false;

	return attach_on(fd, slot, out, err, errlen, &busy);
}

/* The producer's count past our consumer, never more than the ring holds. */
static uint32_t to_app_ready(struct app_queue *q)
{
	uint32_t prod = __atomic_load_n(&q->to_app->producer, __ATOMIC_ACQUIRE);
	uint32_t ready = prod - q->to_cons;

	/* A producer ahead by more than the ring is a corrupt index: take one ring's worth. */
	return ready > q->to_mask + 1 ? q->to_mask + 1 : ready;
}

static int from_app_put(struct app_queue *q, const struct ferry_app_desc *d);

/*
 * Moves up to max descriptors of one queue into pkts.  Each is copied out
 * of the shared ring before it is checked, so ferryd cannot change it in
 * between; a malformed one goes straight back as DROP (ferryd gets its
 * frame back) and is counted.
 */
static unsigned int take_queue(struct ferry_app *a, unsigned int qi, struct ferry_app_pkt *pkts,
			       unsigned int max)
{
	struct app_queue *q = &a->q[qi];
	uint32_t ready = to_app_ready(q);
	unsigned int got = 0;
	uint32_t i;

	for (i = 0; i < ready && got < max; i++) {
		/*
		 * Each field loaded once into our copy: ferryd's memory is shared,
		 * and a plain struct copy lets the compiler load a field again
		 * after its check (a value checked is then not the value used).
		 */
		const struct ferry_app_desc *sd = &q->to_desc[(q->to_cons + i) & q->to_mask];
		struct ferry_app_desc d = {
			.frame = __atomic_load_n(&sd->frame, __ATOMIC_RELAXED),
			.len = __atomic_load_n(&sd->len, __ATOMIC_RELAXED),
			.cap = __atomic_load_n(&sd->cap, __ATOMIC_RELAXED),
			.cookie = __atomic_load_n(&sd->cookie, __ATOMIC_RELAXED),
			.verdict = __atomic_load_n(&sd->verdict, __ATOMIC_RELAXED),
			.pad = __atomic_load_n(&sd->pad, __ATOMIC_RELAXED),
		};

		if (d.frame >= q->nr_frames || d.cap > q->frame_size || d.len > d.cap) {
			a->bad_descs++;
			d.verdict = FERRY_APP_DROP;
			d.len = 0;
			if (from_app_put(q, &d))
				break; /* FROM_APP full: leave it on TO_APP for later */
			continue;
		}
		pkts[got].data = q->frames + (size_t)d.frame * q->frame_size;
		pkts[got].len = d.len;
		pkts[got].cap = d.cap;
		pkts[got].queue = qi;
		pkts[got].frame = d.frame;
		pkts[got].cookie = d.cookie;
		got++;
	}
	if (i) {
		q->to_cons += i;
		__atomic_store_n(&q->to_app->consumer, q->to_cons, __ATOMIC_RELEASE);
	}
	return got;
}

static unsigned int take_all(struct ferry_app *a, struct ferry_app_pkt *pkts, unsigned int max)
{
	unsigned int got = 0, start = a->next_queue;

	for (unsigned int k = 0; k < a->nr_queues && got < max; k++) {
		unsigned int qi = (start + k) % a->nr_queues;

		got += take_queue(a, qi, pkts + got, max - got);
		/* The next call starts after the last queue served: no queue starves. */
		a->next_queue = (qi + 1) % a->nr_queues;
	}
	return got;
}

static void set_need_wakeup(struct ferry_app *a, int on)
{
	for (unsigned int i = 0; i < a->nr_queues; i++) {
		uint32_t *flags = &a->q[i].to_app->flags;
		uint32_t v = __atomic_load_n(flags, __ATOMIC_RELAXED);

		v = on ? v | FERRY_APP_RING_NEED_WAKEUP : v & ~FERRY_APP_RING_NEED_WAKEUP;
		__atomic_store_n(flags, v, __ATOMIC_RELAXED);
	}
	/*
	 * The flag store must be visible before the re-check's producer loads
	 * (and ferryd orders its producer store before its flag load): otherwise
	 * both sides could miss each other and the application sleeps on a packet.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ferryd has nothing to say after the attach reply: data or EOF means it is gone. */
static int check_control(struct ferry_app *a)
{
	char buf[sizeof(struct ferry_ctl_attach_reply)];
	ssize_t n = recv(a->ctl_fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n == 0)
		return -ENOTCONN;
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return -ENOTCONN;
	return 0; /* an unexpected message: ignored (a later version may speak here) */
}

/* Empties the wake-up pipe (nonblocking: attach made it so); ferryd writes a byte a wake-up. */
static int drain_wake(struct ferry_app *a)
{
	uint8_t buf[256];
	ssize_t n;

	while ((n = read(a->wake_fd, buf, sizeof(buf))) == (ssize_t)sizeof(buf))
		;
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return -errno;
	return 0;
}

/*
 * The handle is "armed" while every queue's to_app.flags asks ferryd for a
 * wake-up: from the moment recv finds nothing until it next finds packets.
 * Left armed when recv returns 0, so that an application sleeping in its
 * own epoll on ferry_app_fd() is woken too; disarmed as soon as packets
 * flow, so that a busy application costs ferryd no eventfd writes.
 */
static unsigned int got_packets(struct ferry_app *a, unsigned int got)
{
	if (got && a->armed) {
		set_need_wakeup(a, 0);
		a->armed = 0;
	}
	return got;
}

int ferry_app_recv(struct ferry_app *a, struct ferry_app_pkt *pkts, unsigned int max,
		   int timeout_ms)
{
	int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
	unsigned int got;
	int ret;

	if (!a || (!pkts && max))
		return -EINVAL;
	if (!max)
		return 0;
	got = take_all(a, pkts, max);
	if (got)
		return got_packets(a, got);

	/*
	 * Idle: empty the wake-up pipe first, then ask for a wake-up and look once
	 * more.  A packet ferryd produces after that look finds the flag set
	 * and makes the pipe readable; one produced before it is taken now.
	 */
	ret = drain_wake(a);
	if (ret)
		return ret;
	set_need_wakeup(a, 1);
	a->armed = 1;
	got = take_all(a, pkts, max);
	if (got || !timeout_ms)
		return got_packets(a, got);

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = a->wake_fd, .events = POLLIN },
			{ .fd = a->ctl_fd, .events = POLLIN | POLLRDHUP },
		};
		int wait = -1;

		if (timeout_ms > 0) {
			int64_t left = deadline - now_ms();

			if (left <= 0)
				return 0;
			wait = left > INT_MAX ? INT_MAX : (int)left;
		}
		if (poll(pfd, 2, wait) < 0)
			return -errno;
		if (pfd[0].revents & (POLLERR | POLLNVAL))
			return -EBADF;
		if (pfd[1].revents) {
			ret = check_control(a);
			if (ret)
				return ret;
		}
		if (pfd[0].revents & POLLIN) {
			ret = drain_wake(a);
			if (ret)
				return ret;
		}
		/* Woken, or a spurious return: the rings say whether there is work. */
		got = take_all(a, pkts, max);
		if (got)
			return got_packets(a, got);
	}
}

/* One descriptor onto a FROM_APP ring, published later by the caller. */
static int from_app_put(struct app_queue *q, const struct ferry_app_desc *d)
{
	uint32_t cons = __atomic_load_n(&q->from_app->consumer, __ATOMIC_ACQUIRE);

	if (q->from_prod - cons >= q->from_mask + 1)
		return -ENOBUFS;
	q->from_desc[q->from_prod & q->from_mask] = *d;
	q->from_prod++;
	__atomic_store_n(&q->from_app->producer, q->from_prod, __ATOMIC_RELEASE);
	return 0;
}

int ferry_app_done(struct ferry_app *a, const struct ferry_app_pkt *pkts, unsigned int n,
		   const uint8_t *verdicts)
{
	uint32_t need[FERRY_APP_MAX_QUEUES] = { 0 };
	uint8_t touched[FERRY_APP_MAX_QUEUES] = { 0 };
	int kick = 0;

	if (!a || (!pkts && n))
		return -EINVAL;
	/* Check everything first: all of the batch goes back, or none of it. */
	for (unsigned int i = 0; i < n; i++) {
		const struct ferry_app_pkt *p = &pkts[i];

		if (p->queue >= a->nr_queues || p->frame >= a->q[p->queue].nr_frames ||
		    p->len > p->cap || p->cap > a->q[p->queue].frame_size)
			return -EINVAL;
		if (verdicts && verdicts[i] != FERRY_APP_PASS && verdicts[i] != FERRY_APP_DROP)
			return -EINVAL;
		need[p->queue]++;
	}
	for (unsigned int qi = 0; qi < a->nr_queues; qi++) {
		struct app_queue *q = &a->q[qi];
		uint32_t cons;

		if (!need[qi])
			continue;
		cons = __atomic_load_n(&q->from_app->consumer, __ATOMIC_ACQUIRE);
		if (q->from_prod - cons > q->from_mask + 1 ||
		    need[qi] > q->from_mask + 1 - (q->from_prod - cons))
			return -ENOBUFS;
	}
	for (unsigned int i = 0; i < n; i++) {
		const struct ferry_app_pkt *p = &pkts[i];
		struct app_queue *q = &a->q[p->queue];
		struct ferry_app_desc *d = &q->from_desc[q->from_prod & q->from_mask];

		d->frame = p->frame;
		d->len = p->len;
		d->cap = p->cap;
		d->cookie = p->cookie;
		d->verdict = verdicts ? verdicts[i] : FERRY_APP_PASS;
		d->pad = 0;
		q->from_prod++;
		touched[p->queue] = 1;
	}
	for (unsigned int qi = 0; qi < a->nr_queues; qi++) {
		struct app_queue *q = &a->q[qi];

		if (!touched[qi])
			continue;
		/* One release per queue and batch: the descriptors before the index. */
		__atomic_store_n(&q->from_app->producer, q->from_prod, __ATOMIC_RELEASE);
		/* Ordered against the flag's load, like the consumer's side in recv. */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(&q->from_app->flags, __ATOMIC_RELAXED) &
		    FERRY_APP_RING_NEED_WAKEUP)
			kick = 1;
	}
	if (kick) {
		uint64_t one = 1;

		/* A sleeping ferryd: the only syscall, once per batch (one eventfd for all queues). */
		if (write(a->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			return -errno;
	}
	return 0;
}

/* After publishing FROM_APP entries: wakes ferryd if a worker sleeps on them. */
static int kick_if_asked(struct ferry_app *a, struct app_queue *q)
{
	uint64_t one = 1;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!(__atomic_load_n(&q->from_app->flags, __ATOMIC_RELAXED) & FERRY_APP_RING_NEED_WAKEUP))
		return 0;
	if (write(a->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

int ferry_app_emit(struct ferry_app *a, const struct ferry_app_pkt *ref, const void *data,
		   uint32_t len)
{
	struct ferry_app_desc *d;
	struct app_queue *q;
	uint32_t cons, slot;

	if (!a || !ref || (!data && len) || ref->queue >= a->nr_queues)
		return -EINVAL;
	q = &a->q[ref->queue];
	if (ref->frame >= q->nr_frames || len > q->frame_size)
		return -EINVAL;
	if (!q->emit_frames)
		return -EOPNOTSUPP;
	cons = __atomic_load_n(&q->from_app->consumer, __ATOMIC_ACQUIRE);
	if (q->from_prod - cons >= q->from_mask + 1)
		return -ENOBUFS;
	/*
	 * The emit frame of this FROM_APP entry: free, since the entry a ring
	 * ago that used it was consumed (ferryd copies the payload then).
	 */
	slot = q->from_prod & q->from_mask;
	memcpy(q->emit_frames + (size_t)slot * q->frame_size, data, len);
	d = &q->from_desc[slot];
	d->frame = ref->frame;
	d->len = len;
	d->cap = 0;
	d->cookie = ref->cookie;
	d->verdict = FERRY_APP_EMIT;
	d->emit_frame = slot;
	q->from_prod++;
	__atomic_store_n(&q->from_app->producer, q->from_prod, __ATOMIC_RELEASE);
	return kick_if_asked(a, q);
}

int ferry_app_fd(const struct ferry_app *a)
{
	return a ? a->wake_fd : -EINVAL;
}

unsigned int ferry_app_nr_queues(const struct ferry_app *a)
{
	return a ? a->nr_queues : 0;
}

uint64_t ferry_app_bad_descs(const struct ferry_app *a)
{
	return a ? a->bad_descs : 0;
}

void ferry_app_detach(struct ferry_app *a)
{
	if (!a)
		return;
	munmap(a->area, a->area_size);
	close(a->kick_fd);
	close(a->wake_fd);
	close(a->ctl_fd);
	free(a);
}
