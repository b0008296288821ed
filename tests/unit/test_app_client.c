// SPDX-License-Identifier: BSD-2-Clause
/*
 * libferry_app (lib/ferry_app.c) against a fake ferryd (app_fake.h): a
 * socketpair stands for the control connection, a memfd for the packet
 * area.  Attach, recv, done, need-wakeup, ferryd going away, refusals, and
 * malformed replies and areas: refused with a reason, never a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app_fake.h"
#include "caps.h"
#include "ferry_app_client.h"
#include "unit.h"

#define SLOT "xform"

struct conn {
	struct app_fake f;
	int ferryd; /* the fake's end of the control connection */
	struct ferry_app *app;
	char err[160];
};

/* The fake area and connection; the caller replies, then attaches. */
static void conn_open(struct conn *c, unsigned int nr_queues, uint32_t ring_size)
{
	int sv[2];

	memset(c, 0, sizeof(*c));
	CU_ASSERT_FATAL(app_fake_build(&c->f, SLOT, nr_queues, ring_size, 2048) == 0);
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
	c->ferryd = sv[0];
	c->app = (void *)(long)sv[1]; /* the app's end, until attach owns it */
}

static int conn_attach(struct conn *c)
{
	int fd = (int)(long)c->app;

	c->app = NULL;
	return ferry_app_attach_fd(fd, SLOT, &c->app, c->err, sizeof(c->err));
}

static void conn_close(struct conn *c)
{
	ferry_app_detach(c->app);
	if (c->ferryd > 0)
		close(c->ferryd);
	app_fake_destroy(&c->f);
}

/* A good area, a good reply: attached and mapped, and the request as the contract says. */
static int attach_ok(struct conn *c, unsigned int nr_queues, uint32_t ring_size)
{
	conn_open(c, nr_queues, ring_size);
	CU_ASSERT_FATAL(app_fake_reply(&c->f, c->ferryd, 0, NULL, NULL, 0) == 0);
	return conn_attach(c);
}

static void test_attach(void)
{
	struct ferry_ctl_request req;
	struct conn c;

	CU_ASSERT_EQUAL_FATAL(attach_ok(&c, 2, 8), 0);
	CU_ASSERT_PTR_NOT_NULL(c.app);
	CU_ASSERT_EQUAL(ferry_app_nr_queues(c.app), 2);
	CU_ASSERT(ferry_app_fd(c.app) >= 0);
	CU_ASSERT_EQUAL(recv(c.ferryd, &req, sizeof(req), MSG_DONTWAIT), (ssize_t)sizeof(req));
	CU_ASSERT_EQUAL(req.magic, FERRY_APP_MAGIC);
	CU_ASSERT_EQUAL(req.version, FERRY_APP_VERSION);
	CU_ASSERT_EQUAL(req.op, FERRY_CTL_ATTACH);
	CU_ASSERT_STRING_EQUAL(req.slot, SLOT);
	/* The area can no longer be cut short under the library's mapping. */
	CU_ASSERT(fcntl(c.f.memfd, F_GET_SEALS) & F_SEAL_SHRINK);
	CU_ASSERT_EQUAL(ftruncate(c.f.memfd, 4096), -1);
	conn_close(&c);
}

static void test_recv_done(void)
{
	struct ferry_app_pkt pkts[16];
	uint8_t verdicts[16];
	struct ferry_app_desc d = { 0 };
	struct conn c;
	int n;

	CU_ASSERT_EQUAL_FATAL(attach_ok(&c, 2, 8), 0);
	CU_ASSERT_EQUAL(ferry_app_recv(c.app, pkts, 16, 0), 0);
	CU_ASSERT_EQUAL(app_fake_push(&c.f, 0, 3, 0x100, "alpha", 5, 100), 0);
	CU_ASSERT_EQUAL(app_fake_push(&c.f, 0, 5, 0x101, "beta", 4, 100), 0);
	CU_ASSERT_EQUAL(app_fake_push(&c.f, 1, 0, 0x200, "gamma", 5, 2048), 0);
	n = ferry_app_recv(c.app, pkts, 16, 0);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	/* Queue 0's in order, then queue 1's. */
	CU_ASSERT(pkts[0].len == 5 && !memcmp(pkts[0].data, "alpha", 5) && pkts[0].cap == 100);
	CU_ASSERT(pkts[1].len == 4 && !memcmp(pkts[1].data, "beta", 4));
	CU_ASSERT(pkts[2].len == 5 && !memcmp(pkts[2].data, "gamma", 5) && pkts[2].queue == 1);
	/* In place in the shared frame (checked below, after the rewrite), TO_APP consumed. */
	CU_ASSERT_EQUAL(app_fake_queue(&c.f, 0)->to_app.consumer, 2);
	CU_ASSERT_EQUAL(app_fake_queue(&c.f, 1)->to_app.consumer, 1);

	memcpy(pkts[0].data, "ALPHA!", 6);
	pkts[0].len = 6;
	verdicts[0] = FERRY_APP_PASS;
	verdicts[1] = FERRY_APP_DROP;
	verdicts[2] = FERRY_APP_PASS;
	CU_ASSERT_EQUAL(ferry_app_done(c.app, pkts, 3, verdicts), 0);
	CU_ASSERT_EQUAL_FATAL(app_fake_pop(&c.f, 0, &d), 0);
	CU_ASSERT(d.frame == 3 && d.cookie == 0x100 && d.len == 6 && d.verdict == FERRY_APP_PASS);
	CU_ASSERT(!memcmp(app_fake_frame(&c.f, 0, 3), "ALPHA!", 6));
	CU_ASSERT_EQUAL_FATAL(app_fake_pop(&c.f, 0, &d), 0);
	CU_ASSERT(d.frame == 5 && d.cookie == 0x101 && d.verdict == FERRY_APP_DROP);
	CU_ASSERT_EQUAL(app_fake_pop(&c.f, 0, &d), -EAGAIN);
	CU_ASSERT_EQUAL_FATAL(app_fake_pop(&c.f, 1, &d), 0);
	CU_ASSERT(d.frame == 0 && d.cookie == 0x200 && d.len == 5 && d.verdict == FERRY_APP_PASS);

	/* NULL verdicts: all PASS; max smaller than what waits: the rest next time. */
	for (uint32_t i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(app_fake_push(&c.f, 1, i, i, "x", 1, 64), 0);
	CU_ASSERT_EQUAL(ferry_app_recv(c.app, pkts, 3, 0), 3);
	CU_ASSERT_EQUAL(ferry_app_recv(c.app, pkts + 3, 3, 0), 1);
	CU_ASSERT_EQUAL(ferry_app_done(c.app, pkts, 4, NULL), 0);
	for (uint32_t i = 0; i < 4; i++) {
		CU_ASSERT_EQUAL(app_fake_pop(&c.f, 1, &d), 0);
		CU_ASSERT(d.cookie == i && d.verdict == FERRY_APP_PASS);
	}
	conn_close(&c);
}

/* done is all or nothing: a bad packet or a full ring returns nothing. */
/* A ferryd without emit frames (this fake: emit_frames 0) refuses emits; bad arguments too. */
static void test_emit_unsupported(void)
{
	struct ferry_app_pkt pkt, bad;
	struct conn c;

	CU_ASSERT_EQUAL_FATAL(attach_ok(&c, 1, 8), 0);
	CU_ASSERT_EQUAL(app_fake_push(&c.f, 0, 3, 0x100, "alpha", 5, 100), 0);
	CU_ASSERT_EQUAL_FATAL(ferry_app_recv(c.app, &pkt, 1, 0), 1);
	CU_ASSERT_EQUAL(ferry_app_emit(c.app, &pkt, "x", 1), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(ferry_app_emit(NULL, &pkt, "x", 1), -EINVAL);
	CU_ASSERT_EQUAL(ferry_app_emit(c.app, NULL, "x", 1), -EINVAL);
	CU_ASSERT_EQUAL(ferry_app_emit(c.app, &pkt, NULL, 1), -EINVAL);
	CU_ASSERT_EQUAL(ferry_app_emit(c.app, &pkt, "x", c.f.frame_size + 1), -EINVAL);
	bad = pkt;
	bad.queue = 1;
	CU_ASSERT_EQUAL(ferry_app_emit(c.app, &bad, "x", 1), -EINVAL);
	/* Nothing went onto FROM_APP. */
	CU_ASSERT_EQUAL(app_fake_queue(&c.f, 0)->from_app.producer, 0);
	CU_ASSERT_EQUAL(ferry_app_done(c.app, &pkt, 1, NULL), 0);
	conn_close(&c);
}

static void test_done_refuses(void)
{
	struct ferry_app_pkt pkts[8], bad;
	uint8_t verdict = 7;
	struct conn c;

	CU_ASSERT_EQUAL_FATAL(attach_ok(&c, 1, 4), 0);
	CU_ASSERT_EQUAL(app_fake_push(&c.f, 0, 1, 9, "abc", 3, 10), 0);
	CU_ASSERT_EQUAL_FATAL(ferry_app_recv(c.app, pkts, 8, 0), 1);
	bad = pkts[0];
	bad.len = 11; /* over cap */
	CU_ASSERT_EQUAL(ferry_app_done(c.app, &bad, 1, NULL), -EINVAL);
	bad = pkts[0];
	bad.queue = 1;
	CU_ASSERT_EQUAL(ferry_app_done(c.app, &bad, 1, NULL), -EINVAL);
	bad = pkts[0];
	bad.frame = 4;
	CU_ASSERT_EQUAL(ferry_app_done(c.app, &bad, 1, NULL), -EINVAL);
	CU_ASSERT_EQUAL(ferry_app_done(c.app, pkts, 1, &verdict), -EINVAL);
	CU_ASSERT_EQUAL(app_fake_queue(&c.f, 0)->from_app.producer, 0);
	/* The same packet five times on a ring of four: only a misuse fills it. */
	for (int i = 0; i < 5; i++)
		pkts[i] = pkts[0];
	CU_ASSERT_EQUAL(ferry_app_done(c.app, pkts, 5, NULL), -ENOBUFS);
	CU_ASSERT_EQUAL(app_fake_queue(&c.f, 0)->from_app.producer, 0);
	CU_ASSERT_EQUAL(ferry_app_done(c.app, pkts, 4, NULL), 0);
	CU_ASSERT_EQUAL(ferry_app_done(c.app, pkts, 1, NULL), -ENOBUFS);
	conn_close(&c);
}

/* A descriptor ferryd got wrong never becomes a packet: back as DROP, counted. */
static void test_bad_desc(void)
{
	struct ferry_app_pkt pkts[8];
	struct ferry_app_desc d = { 0 };
	struct conn c;

	CU_ASSERT_EQUAL_FATAL(attach_ok(&c, 1, 8), 0);
	CU_ASSERT_EQUAL(app_fake_push(&c.f, 0, 8, 1, "x", 1, 10), 0);     /* frame out of range */
	CU_ASSERT_EQUAL(app_fake_push(&c.f, 0, 0, 2, "x", 1, 4096), 0);   /* cap over frame_size */
	CU_ASSERT_EQUAL(app_fake_push(&c.f, 0, 1, 3, "xxxx", 4, 2), 0);   /* len over cap */
	CU_ASSERT_EQUAL(app_fake_push(&c.f, 0, 2, 4, "good", 4, 10), 0);
	CU_ASSERT_EQUAL_FATAL(ferry_app_recv(c.app, pkts, 8, 0), 1);
	CU_ASSERT(pkts[0].cookie == 4 && !memcmp(pkts[0].data, "good", 4));
	CU_ASSERT_EQUAL(ferry_app_bad_descs(c.app), 3);
	for (uint32_t cookie = 1; cookie <= 3; cookie++) {
		CU_ASSERT_EQUAL_FATAL(app_fake_pop(&c.f, 0, &d), 0);
		CU_ASSERT(d.cookie == cookie && d.verdict == FERRY_APP_DROP);
	}
	/* A producer index run far ahead: one ring's worth at most, no overrun of pkts[]. */
	app_fake_queue(&c.f, 0)->to_app.producer += 1000;
	CU_ASSERT(ferry_app_recv(c.app, pkts, 8, 0) <= 8);
	conn_close(&c);
}

struct sleeper {
	struct ferry_app *app;
	struct ferry_app_pkt pkt;
	int ret;
};

static void *sleeper_run(void *arg)
{
	struct sleeper *s = arg;

	s->ret = ferry_app_recv(s->app, &s->pkt, 1, 30000);
	return NULL;
}

/*
 * Need-wakeup: an idle recv sets the flag and sleeps on the eventfd; the
 * fake writes it only because the flag is set, and the sleeper wakes with
 * the packet.  Bounded by the 30 s timeout, never by timing.
 */
static void test_need_wakeup(void)
{
	struct sleeper s = { 0 };
	struct ferry_app_pkt pkt;
	pthread_t th;
	struct conn c;
	int i;

	CU_ASSERT_EQUAL_FATAL(attach_ok(&c, 2, 8), 0);
	/* Busy: packets found at once, no wake-up asked for. */
	CU_ASSERT_EQUAL(app_fake_push(&c.f, 0, 1, 1, "x", 1, 100), 0);
	CU_ASSERT_EQUAL(ferry_app_recv(c.app, &pkt, 1, 1000), 1);
	CU_ASSERT_EQUAL(ferry_app_done(c.app, &pkt, 1, NULL), 0);
	CU_ASSERT_EQUAL(app_fake_wake(&c.f), 0); /* nobody asked: no write */
	/* A short timeout with nothing there: 0, and left asking (see test_epoll). */
	CU_ASSERT_EQUAL(ferry_app_recv(c.app, &pkt, 1, 20), 0);
	CU_ASSERT(app_fake_queue(&c.f, 0)->to_app.flags & FERRY_APP_RING_NEED_WAKEUP);

	s.app = c.app;
	CU_ASSERT_FATAL(pthread_create(&th, NULL, sleeper_run, &s) == 0);
	/* Wait (bounded) until the sleeper asked for a wake-up on every queue. */
	for (i = 0; i < 30000; i++) {
		if ((__atomic_load_n(&app_fake_queue(&c.f, 0)->to_app.flags, __ATOMIC_ACQUIRE) &
		     __atomic_load_n(&app_fake_queue(&c.f, 1)->to_app.flags, __ATOMIC_ACQUIRE)) &
		    FERRY_APP_RING_NEED_WAKEUP)
			break;
		usleep(1000);
	}
	CU_ASSERT(i < 30000);
	CU_ASSERT_EQUAL(app_fake_push(&c.f, 1, 6, 77, "wake", 4, 100), 0);
	CU_ASSERT_EQUAL(app_fake_wake(&c.f), 1);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(s.ret, 1);
	CU_ASSERT(s.pkt.cookie == 77 && !memcmp(s.pkt.data, "wake", 4));
	CU_ASSERT_EQUAL(app_fake_queue(&c.f, 1)->to_app.flags & FERRY_APP_RING_NEED_WAKEUP, 0);
	conn_close(&c);
}

/*
 * An application with its own epoll loop: it calls recv with timeout 0 and
 * sleeps on ferry_app_fd().  A recv that found nothing must leave the
 * handle asking for a wake-up, or the fd never becomes readable.
 */
static void test_epoll(void)
{
	struct pollfd pfd = { .events = POLLIN };
	struct ferry_app_pkt pkt;
	struct conn c;

	CU_ASSERT_EQUAL_FATAL(attach_ok(&c, 2, 8), 0);
	pfd.fd = ferry_app_fd(c.app);
	CU_ASSERT_EQUAL(ferry_app_recv(c.app, &pkt, 1, 0), 0);
	CU_ASSERT_EQUAL(poll(&pfd, 1, 0), 0);
	CU_ASSERT_EQUAL(app_fake_push(&c.f, 1, 2, 5, "epoll", 5, 100), 0);
	CU_ASSERT_EQUAL(app_fake_wake(&c.f), 1); /* asked: written */
	CU_ASSERT_EQUAL(poll(&pfd, 1, 0), 1);
	CU_ASSERT_EQUAL_FATAL(ferry_app_recv(c.app, &pkt, 1, 0), 1);
	CU_ASSERT(pkt.cookie == 5 && !memcmp(pkt.data, "epoll", 5));
	/* Packets flowing: no longer asking, ferryd saves its writes. */
	CU_ASSERT_EQUAL(app_fake_queue(&c.f, 0)->to_app.flags & FERRY_APP_RING_NEED_WAKEUP, 0);
	CU_ASSERT_EQUAL(app_fake_queue(&c.f, 1)->to_app.flags & FERRY_APP_RING_NEED_WAKEUP, 0);
	CU_ASSERT_EQUAL(ferry_app_done(c.app, &pkt, 1, NULL), 0);
	/* Idle again: the old wake-up is emptied, so a level-triggered loop does not spin. */
	CU_ASSERT_EQUAL(ferry_app_recv(c.app, &pkt, 1, 0), 0);
	CU_ASSERT_EQUAL(poll(&pfd, 1, 0), 0);
	conn_close(&c);
}

/* ferryd closing the connection ends a sleeping recv with -ENOTCONN. */
static void test_ferryd_gone(void)
{
	struct ferry_app_pkt pkt;
	struct conn c;

	CU_ASSERT_EQUAL_FATAL(attach_ok(&c, 1, 8), 0);
	close(c.ferryd);
	c.ferryd = -1;
	CU_ASSERT_EQUAL(ferry_app_recv(c.app, &pkt, 1, 30000), -ENOTCONN);
	conn_close(&c);
}

static void test_refused(void)
{
	struct conn c;

	conn_open(&c, 1, 8);
	CU_ASSERT_FATAL(app_fake_reply(&c.f, c.ferryd, -EACCES, "uid 1000 is not alice", NULL, 0) == 0);
	CU_ASSERT_EQUAL(conn_attach(&c), -EACCES);
	CU_ASSERT_PTR_NULL(c.app);
	CU_ASSERT_PTR_NOT_NULL(strstr(c.err, "uid 1000 is not alice"));
	conn_close(&c);

	/* A status that is no errno is a protocol error, not passed on. */
	conn_open(&c, 1, 8);
	CU_ASSERT_FATAL(app_fake_reply(&c.f, c.ferryd, 5, "odd", NULL, 0) == 0);
	CU_ASSERT_EQUAL(conn_attach(&c), -EPROTO);
	conn_close(&c);

	/* No reply at all: ferryd closed the connection (the request cannot even go out). */
	conn_open(&c, 1, 8);
	close(c.ferryd);
	c.ferryd = -1;
	CU_ASSERT_EQUAL(conn_attach(&c), -EPIPE);
	CU_ASSERT(c.err[0] != '\0');
	conn_close(&c);
}

enum corruption {
	BAD_MAGIC,
	BAD_VERSION,
	SIZE_MISMATCH,
	NR_QUEUES_HUGE,
	NR_QUEUES_ZERO,
	QUEUE_OFF_OUT,
	QUEUE_OFF_MISALIGNED,
	RING_HUGE,
	RING_NOT_POW2,
	DESC_OFF_OUT,
	FRAMES_OUT,
	FRAME_SIZE_HUGE,
	WRONG_SLOT,
	REPLY_BAD_MAGIC,
	REPLY_QUEUES_HUGE,
	MEMFD_SHORT,
	TWO_FDS,
	FOUR_FDS,
	PIPE_NOT_EVENTFD,
	NR_CORRUPTIONS,
};

static void corrupt(struct conn *c, enum corruption what)
{
	struct ferry_app_area *h = (void *)c->f.area;
	struct ferry_app_queue *q = app_fake_queue(&c->f, 1);
	struct ferry_ctl_attach_reply reply;
	int fds[3], fds4[4], p[2];

	switch (what) {
	case BAD_MAGIC: h->magic ^= 1; break;
	case BAD_VERSION: h->version = 99; break;
	case SIZE_MISMATCH: h->size -= 64; break;
	case NR_QUEUES_HUGE: h->nr_queues = 1000; break;
	case NR_QUEUES_ZERO: h->nr_queues = 0; break;
	case QUEUE_OFF_OUT: h->queue_off[1] = c->f.size - 64; break;
	case QUEUE_OFF_MISALIGNED: h->queue_off[1] += 8; break;
	case RING_HUGE: q->to_app.size = 1u << 31; break;
	case RING_NOT_POW2: q->from_app.size = 6; break;
	case DESC_OFF_OUT: q->from_app.desc_off = c->f.size - 8; break;
	case FRAMES_OUT: q->frames = 1u << 30; break;
	case FRAME_SIZE_HUGE: q->frame_size = 0xffffffffu; break;
	case WRONG_SLOT: strcpy(h->slot, "other"); break;
	case MEMFD_SHORT: CU_ASSERT_FATAL(ftruncate(c->f.memfd, 4096) == 0); break;
	default: break;
	}
	switch (what) {
	case REPLY_BAD_MAGIC:
	case REPLY_QUEUES_HUGE:
		/* A reply written by hand: the fake's helper only writes good ones. */
		memset(&reply, 0, sizeof(reply));
		reply.magic = what == REPLY_BAD_MAGIC ? 0xdead : FERRY_APP_MAGIC;
		reply.version = FERRY_APP_VERSION;
		reply.nr_queues = what == REPLY_QUEUES_HUGE ? 1000 : c->f.nr_queues;
		reply.area_size = c->f.size;
		CU_ASSERT_FATAL(send(c->ferryd, &reply, sizeof(reply), 0) == sizeof(reply));
		break;
	case TWO_FDS:
		fds[0] = c->f.memfd;
		fds[1] = c->f.wake_fd;
		CU_ASSERT_FATAL(app_fake_reply(&c->f, c->ferryd, 0, NULL, fds, 2) == 0);
		break;
	case FOUR_FDS:
		fds4[0] = c->f.memfd;
		fds4[1] = c->f.wake_fd;
		fds4[2] = c->f.kick_fd;
		fds4[3] = c->f.wake_fd;
		CU_ASSERT_FATAL(app_fake_reply(&c->f, c->ferryd, 0, NULL, fds4, 4) == 0);
		break;
	case PIPE_NOT_EVENTFD:
		CU_ASSERT_FATAL(pipe(p) == 0);
		fds[0] = c->f.memfd;
		fds[1] = p[0];
		fds[2] = p[1];
		CU_ASSERT_FATAL(app_fake_reply(&c->f, c->ferryd, 0, NULL, fds, 3) == 0);
		close(p[0]);
		close(p[1]);
		break;
	default:
		CU_ASSERT_FATAL(app_fake_reply(&c->f, c->ferryd, 0, NULL, NULL, 0) == 0);
	}
}

/* Every way of being wrong: refused with -EPROTO and a reason, no handle, no crash. */
static int open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

/*
 * A fake ferryd on a socket path: it answers each connection with the
 * next of its statuses (0: attached, with the area), the last one for
 * every connection after, and counts the connections.
 */
struct fake_server {
	struct app_fake f;
	char dir[64];
	char path[108];
	int lfd;
	int32_t statuses[4];
	int nr_statuses;
	int conns; /* served so far (read after the join) */
	int stop_after;
	int stopping; /* fake_server_stop() wants the thread back */
	pthread_t thread;
};

static void *fake_serve(void *arg)
{
	struct fake_server *fs = arg;

	while (fs->conns < fs->stop_after) {
		struct ferry_ctl_request req;
		int32_t st = fs->statuses[fs->conns < fs->nr_statuses ? fs->conns
								       : fs->nr_statuses - 1];
		int fd = accept(fs->lfd, NULL, NULL);

		if (fd < 0)
			break;
		if (__atomic_load_n(&fs->stopping, __ATOMIC_ACQUIRE)) {
			close(fd);
			break;
		}
		if (recv(fd, &req, sizeof(req), 0) == (ssize_t)sizeof(req))
			app_fake_reply(&fs->f, fd, st, st ? "scripted refusal" : NULL, NULL, 0);
		fs->conns++;
		/* As ferryd does after a refusal; an attached client keeps it (ignored here). */
		close(fd);
	}
	return NULL;
}

static void fake_server_start(struct fake_server *fs, int stop_after)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	fs->stop_after = stop_after;
	CU_ASSERT_FATAL(app_fake_build(&fs->f, SLOT, 2, 8, 2048) == 0);
	snprintf(fs->dir, sizeof(fs->dir), "/tmp/ferry-unit-app.XXXXXX");
	CU_ASSERT_FATAL(mkdtemp(fs->dir) != NULL);
	snprintf(fs->path, sizeof(fs->path), "%s/ferryd.sock", fs->dir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", fs->path);
	fs->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	CU_ASSERT_FATAL(fs->lfd >= 0);
	CU_ASSERT_FATAL(bind(fs->lfd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	CU_ASSERT_FATAL(listen(fs->lfd, 8) == 0);
	CU_ASSERT_FATAL(pthread_create(&fs->thread, NULL, fake_serve, fs) == 0);
}

static void fake_server_stop(struct fake_server *fs)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	/* A thread still in accept() takes this connection as its cue to end. */
	__atomic_store_n(&fs->stopping, 1, __ATOMIC_RELEASE);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", fs->path);
	if (fd >= 0) {
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
			/* The thread is gone already: nothing to wake. */
		}
		close(fd);
	}
	pthread_join(fs->thread, NULL);
	close(fs->lfd);
	unlink(fs->path);
	rmdir(fs->dir);
	app_fake_destroy(&fs->f);
}

/*
 * ferryd's -EAGAIN (the slot's last application still being released) is
 * tried again on a new connection; any other refusal is returned at once.
 */
static void test_attach_retries(void)
{
	struct fake_server fs = { .statuses = { -EAGAIN, -EAGAIN, 0 }, .nr_statuses = 3 };
	struct ferry_app *app = NULL;
	char err[160];

	fake_server_start(&fs, 3);
	CU_ASSERT_EQUAL(ferry_app_attach(fs.path, SLOT, &app, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NOT_NULL(app);
	fake_server_stop(&fs);
	CU_ASSERT_EQUAL(fs.conns, 3);
	ferry_app_detach(app);

	memset(&fs, 0, sizeof(fs));
	fs.statuses[0] = -EBUSY;
	fs.nr_statuses = 1;
	fake_server_start(&fs, 1);
	CU_ASSERT_EQUAL(ferry_app_attach(fs.path, SLOT, &app, err, sizeof(err)), -EBUSY);
	CU_ASSERT_PTR_NULL(app);
	fake_server_stop(&fs);
	CU_ASSERT_EQUAL(fs.conns, 1);

	/* Bounded: a slot that never comes free gives -EAGAIN after 100 tries (1 s). */
	memset(&fs, 0, sizeof(fs));
	fs.statuses[0] = -EAGAIN;
	fs.nr_statuses = 1;
	fake_server_start(&fs, 100);
	CU_ASSERT_EQUAL(ferry_app_attach(fs.path, SLOT, &app, err, sizeof(err)), -EAGAIN);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "scripted refusal"));
	fake_server_stop(&fs);
	CU_ASSERT_EQUAL(fs.conns, 100);
}

/*
 * An -EAGAIN of the application's own is no reason to attach again: here
 * mmap() of an area over RLIMIT_MEMLOCK after mlockall(MCL_FUTURE), as a
 * pinned real-time application may do.  Once attached, every try would
 * detach and attach the slot anew, its packets going to an area nobody
 * reads.  In a child without CAP_IPC_LOCK (root ignores the limit).
 */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static void test_attach_own_eagain(void)
{
	struct fake_server fs = { .statuses = { 0 }, .nr_statuses = 1 };
	int status = -1;
	pid_t pid;

#ifdef UNDER_ASAN
	/* ASan's own mappings count against the limit: the plain unit run has it. */
	return;
#endif

	fake_server_start(&fs, 100);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (!pid) {
		struct rlimit rl = { .rlim_cur = 4096, .rlim_max = 4096 };
		struct ferry_app *app = NULL;
		char err[160];
		int ret;

		alarm(10);
		if (caps__limit_thread(0) || setrlimit(RLIMIT_MEMLOCK, &rl) ||
		    mlockall(MCL_FUTURE))
			_exit(2);
		ret = ferry_app_attach(fs.path, SLOT, &app, err, sizeof(err));
		_exit(ret == -EAGAIN && strstr(err, "mmap") ? 0 : 1);
	}
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	fake_server_stop(&fs);
	/* Retried, it would have made 100 (each attached, then mmap refused). */
	CU_ASSERT_EQUAL(fs.conns, 1);
}

static void test_corrupt_area(void)
{
	int before = open_fds();

	for (int what = 0; what < NR_CORRUPTIONS; what++) {
		struct conn c;
		int ret;

		conn_open(&c, 2, 8);
		corrupt(&c, what);
		ret = conn_attach(&c);
		if (ret != -EPROTO)
			fprintf(stderr, "corruption %d: attach returned %d (%s)\n", what, ret, c.err);
		CU_ASSERT_EQUAL(ret, -EPROTO);
		CU_ASSERT_PTR_NULL(c.app);
		CU_ASSERT(c.err[0] != '\0');
		conn_close(&c);
	}
	/* Every descriptor a refused reply carried was closed again. */
	CU_ASSERT_EQUAL(open_fds(), before);
}

static void test_bad_args(void)
{
	struct ferry_app *app = (void *)1;
	char err[64];

	CU_ASSERT_EQUAL(ferry_app_attach("/nonexistent/ferry.sock", SLOT, &app, err, sizeof(err)),
			-ENOENT);
	CU_ASSERT_PTR_NULL(app);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/ferry.sock"));
	CU_ASSERT_EQUAL(ferry_app_attach("/nonexistent", "a-slot-name-far-too-long-for-the-area",
					 &app, err, sizeof(err)),
			-ENOENT);
	CU_ASSERT_EQUAL(ferry_app_attach_fd(-1, SLOT, &app, err, sizeof(err)), -EBADF);
	CU_ASSERT_EQUAL(ferry_app_recv(NULL, NULL, 1, 0), -EINVAL);
	ferry_app_detach(NULL);
}

static CU_TestInfo tests[] = {
	{ "emit: refused by a ferryd without emit frames, bad arguments", test_emit_unsupported },
	{ "attach maps the area, request as the contract says", test_attach },
	{ "recv takes TO_APP, done puts verdicts on FROM_APP", test_recv_done },
	{ "done refuses bad packets and a full ring, all or nothing", test_done_refuses },
	{ "a malformed TO_APP descriptor goes back as DROP", test_bad_desc },
	{ "need-wakeup: recv sleeps, the eventfd wakes it", test_need_wakeup },
	{ "epoll users: recv(0) finding nothing asks for a wake-up", test_epoll },
	{ "ferryd closing the connection: -ENOTCONN", test_ferryd_gone },
	{ "a refused attach is reported with ferryd's message", test_refused },
	{ "ferryd's -EAGAIN is tried again, bounded; -EBUSY is not", test_attach_retries },
	{ "an -EAGAIN of the application's own (mmap) is not tried again", test_attach_own_eagain },
	{ "corrupt replies and areas are refused", test_corrupt_area },
	{ "bad arguments", test_bad_args },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(app_client, "app_client", tests, NULL, NULL);
