/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A fake ferryd for libferry_app's tests (tests/unit/test_app_client.c,
 * tests/tools/app_fake_ferryd.c): builds a packet area in a memfd laid out
 * per services/ferry_app.h, answers an attach on a control connection, and
 * plays the worker's side of the rings.  Static functions in a header: the
 * tool is one file linked against libferry.a, the unit tests another.
 */
#ifndef FERRY_APP_FAKE_H
#define FERRY_APP_FAKE_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ferry_app.h"

struct app_fake {
	int memfd, wake_fd, kick_fd; /* wake_fd: the read end of the wake-up pipe, sent */
	int wake_w;                  /* its write end, the fake ferryd's own */
	uint8_t *area;
	uint64_t size;
	unsigned int nr_queues;
	uint32_t ring_size, frame_size;
};

static inline struct ferry_app_queue *app_fake_queue(struct app_fake *f, unsigned int q)
{
	struct ferry_app_area *h = (void *)f->area;

	return (void *)(f->area + h->queue_off[q]);
}

static inline uint64_t app_fake_align(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* An area of nr_queues queues, each ring_size descriptors a ring and ring_size frames. */
static inline int app_fake_build(struct app_fake *f, const char *slot, unsigned int nr_queues,
				 uint32_t ring_size, uint32_t frame_size)
{
	uint64_t off, qsize;
	struct ferry_app_area *h;

	memset(f, 0, sizeof(*f));
	f->nr_queues = nr_queues;
	f->ring_size = ring_size;
	f->frame_size = frame_size;
	qsize = app_fake_align(sizeof(struct ferry_app_queue), 64) +
		2 * app_fake_align((uint64_t)ring_size * sizeof(struct ferry_app_desc), 64) +
		(uint64_t)ring_size * frame_size;
	f->size = app_fake_align(sizeof(*h), 64) + nr_queues * app_fake_align(qsize, 64);
	f->memfd = memfd_create("ferry-app-fake", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (f->memfd < 0)
		return -errno;
	if (ftruncate(f->memfd, f->size))
		return -errno;
	f->area = mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
	if (f->area == MAP_FAILED)
		return -errno;
	{
		int p[2];

		if (pipe2(p, O_CLOEXEC | O_NONBLOCK))
			return -errno;
		f->wake_fd = p[0];
		f->wake_w = p[1];
	}
	f->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->kick_fd < 0)
		return -errno;
	h = (void *)f->area;
	h->magic = FERRY_APP_MAGIC;
	h->version = FERRY_APP_VERSION;
	h->nr_queues = nr_queues;
	h->size = f->size;
	strncpy(h->slot, slot, sizeof(h->slot) - 1);
	off = app_fake_align(sizeof(*h), 64);
	for (unsigned int i = 0; i < nr_queues; i++) {
		struct ferry_app_queue *q = (void *)(f->area + off);
		uint64_t p = off + app_fake_align(sizeof(*q), 64);

		h->queue_off[i] = off;
		q->to_app.size = ring_size;
		q->to_app.desc_off = p;
		p += app_fake_align((uint64_t)ring_size * sizeof(struct ferry_app_desc), 64);
		q->from_app.size = ring_size;
		q->from_app.desc_off = p;
		p += app_fake_align((uint64_t)ring_size * sizeof(struct ferry_app_desc), 64);
		q->frames_off = p;
		q->frames = ring_size;
		q->frame_size = frame_size;
		off += app_fake_align(qsize, 64);
	}
	return 0;
}

static inline void app_fake_destroy(struct app_fake *f)
{
	if (f->area && f->area != MAP_FAILED)
		munmap(f->area, f->size);
	if (f->memfd > 0)
		close(f->memfd);
	if (f->wake_fd > 0)
		close(f->wake_fd);
	if (f->wake_w > 0)
		close(f->wake_w);
	if (f->kick_fd > 0)
		close(f->kick_fd);
	memset(f, 0, sizeof(*f));
}

/*
 * The attach reply on sock: status 0 with the three descriptors (or the
 * nr_fds first of fds[], when given), or a refusal with a message.
 */
static inline int app_fake_reply(struct app_fake *f, int sock, int32_t status, const char *message,
				 const int *fds, int nr_fds)
{
	struct ferry_ctl_attach_reply reply;
	union {
		char buf[CMSG_SPACE(8 * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { .iov_base = &reply, .iov_len = sizeof(reply) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	int own[3] = { f->memfd, f->wake_fd, f->kick_fd };

	memset(&reply, 0, sizeof(reply));
	memset(&cbuf, 0, sizeof(cbuf));
	reply.magic = FERRY_APP_MAGIC;
	reply.version = FERRY_APP_VERSION;
	reply.status = status;
	reply.nr_queues = f->nr_queues;
	reply.area_size = f->size;
	if (message)
		strncpy(reply.message, message, sizeof(reply.message) - 1);
	if (!fds) {
		fds = own;
		nr_fds = status ? 0 : 3;
	}
	if (nr_fds) {
		struct cmsghdr *c;

		msg.msg_control = cbuf.buf;
		msg.msg_controllen = CMSG_SPACE(nr_fds * sizeof(int));
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nr_fds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nr_fds * sizeof(int));
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == sizeof(reply) ? 0 : -errno;
}

/* ferryd's worker: one payload onto queue q's TO_APP in frame `frame`. */
static inline int app_fake_push(struct app_fake *f, unsigned int q, uint32_t frame,
				uint32_t cookie, const void *payload, uint32_t len, uint32_t cap)
{
	struct ferry_app_queue *fq = app_fake_queue(f, q);
	struct ferry_app_desc *d = (void *)(f->area + fq->to_app.desc_off);
	uint32_t prod = fq->to_app.producer;

	if (prod - __atomic_load_n(&fq->to_app.consumer, __ATOMIC_ACQUIRE) >= fq->to_app.size)
		return -ENOBUFS;
	if (frame < fq->frames && len <= f->frame_size)
		memcpy(f->area + fq->frames_off + (uint64_t)frame * f->frame_size, payload, len);
	d += prod & (fq->to_app.size - 1);
	d->frame = frame;
	d->len = len;
	d->cap = cap;
	d->cookie = cookie;
	d->verdict = 0;
	__atomic_store_n(&fq->to_app.producer, prod + 1, __ATOMIC_RELEASE);
	return 0;
}

/* After producing: wake the application if it asked (ferryd's side of need-wakeup). */
static inline int app_fake_wake(struct app_fake *f)
{
	const uint8_t one = 1;
	int need = 0;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (unsigned int q = 0; q < f->nr_queues; q++)
		need |= __atomic_load_n(&app_fake_queue(f, q)->to_app.flags, __ATOMIC_RELAXED) &
			FERRY_APP_RING_NEED_WAKEUP;
	if (need && write(f->wake_w, &one, sizeof(one)) != sizeof(one) && errno != EAGAIN)
		return -errno;
	return need;
}

/* One returned descriptor from queue q's FROM_APP, or -EAGAIN. */
static inline int app_fake_pop(struct app_fake *f, unsigned int q, struct ferry_app_desc *out)
{
	struct ferry_app_queue *fq = app_fake_queue(f, q);
	struct ferry_app_desc *d = (void *)(f->area + fq->from_app.desc_off);
	uint32_t cons = fq->from_app.consumer;

	if (__atomic_load_n(&fq->from_app.producer, __ATOMIC_ACQUIRE) == cons)
		return -EAGAIN;
	*out = d[cons & (fq->from_app.size - 1)];
	__atomic_store_n(&fq->from_app.consumer, cons + 1, __ATOMIC_RELEASE);
	return 0;
}

static inline uint8_t *app_fake_frame(struct app_fake *f, unsigned int q, uint32_t frame)
{
	return f->area + app_fake_queue(f, q)->frames_off + (uint64_t)frame * f->frame_size;
}

#endif /* FERRY_APP_FAKE_H */
