// SPDX-License-Identifier: BSD-2-Clause
/*
 * app_echo: an application for test_app.sh, written against
 * services/ferry_app.h alone (no client library): it attaches to an `app`
 * slot, XORs every payload with a key and returns it with PASS.
 *
 *   app_echo --socket PATH --slot NAME --key BYTE [--hostile] [--drop]
 *
 * --hostile writes three bad descriptors before each good one: a frame
 * index out of range, a length beyond the cap, a wrong cookie.  --drop
 * returns every packet with DROP.  --stall takes nothing and returns
 * nothing (a hung application) until ferryd closes the connection, then
 * prints "app_echo: detached by ferryd".  Prints "app_echo: attached ..." once
 * attached, and at the end (SIGTERM, or ferryd closing the connection)
 * "app_echo: queue Q returned N" for each queue, then "app_echo: returned
 * N, bad M".  --hold-ms N keeps each batch N ms before
 * returning it (a slow application, with packets out at it meanwhile).
 * After returning a batch it writes the eventfd when ferryd asked for a
 * wake-up (FROM_APP's need-wakeup), as the contract says.  Exit status: 0, 1 on a refused attach
 * (the status printed as "refused: -ERRNO MESSAGE"), 2 on a usage or setup
 * error.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ferry_app.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint32_t load_acq(uint32_t *p)
{
	return atomic_load_explicit((_Atomic uint32_t *)p, memory_order_acquire);
}

static void store_rel(uint32_t *p, uint32_t v)
{
	atomic_store_explicit((_Atomic uint32_t *)p, v, memory_order_release);
}

static int attach(const char *path, const char *slot, int fds[3],
		  struct ferry_ctl_attach_reply *r)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ferry_ctl_request req = {
		.magic = FERRY_APP_MAGIC, .version = FERRY_APP_VERSION, .op = FERRY_CTL_ATTACH
	};
	union {
		char buf[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = r, .iov_len = sizeof(*r) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	snprintf(req.slot, sizeof(req.slot), "%s", slot);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    send(fd, &req, sizeof(req), 0) != sizeof(req) ||
	    recvmsg(fd, &mh, MSG_CMSG_CLOEXEC) != sizeof(*r)) {
		fprintf(stderr, "app_echo: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (r->status)
		return fd;
	cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(3 * sizeof(int))) {
		fprintf(stderr, "app_echo: no descriptors in the reply\n");
		return -1;
	}
	memcpy(fds, CMSG_DATA(cm), 3 * sizeof(int));
	return fd;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' }, { "slot", required_argument, NULL, 'n' },
		{ "key", required_argument, NULL, 'k' },    { "hostile", no_argument, NULL, 'H' },
		{ "drop", no_argument, NULL, 'D' },	    { "stall", no_argument, NULL, 'S' },
		{ "hold-ms", required_argument, NULL, 'h' },
		{},
	};
	const char *path = FERRY_CONTROL_SOCKET, *slot = NULL;
	struct ferry_ctl_attach_reply r;
	bool hostile = false, drop = false, stall = false;
	uint64_t returned = 0, bad = 0, returned_q[FERRY_APP_MAX_QUEUES] = { 0 };
	int opt, fds[3], cfd, idle = 0, hold_ms = 0;
	struct ferry_app_area *a;
	uint8_t key = 0;
	uint8_t *area;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's': path = optarg; break;
		case 'n': slot = optarg; break;
		case 'k': key = (uint8_t)strtoul(optarg, NULL, 0); break;
		case 'H': hostile = true; break;
		case 'D': drop = true; break;
		case 'S': stall = true; break;
		case 'h': hold_ms = atoi(optarg); break;
		default: return 2;
		}
	}
	if (!slot) {
		fprintf(stderr, "usage: app_echo --socket PATH --slot NAME --key BYTE [--hostile] [--drop]\n");
		return 2;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	cfd = attach(path, slot, fds, &r);
	if (cfd < 0)
		return 2;
	if (r.status) {
		printf("app_echo: refused: %d %s\n", r.status, r.message);
		return 1;
	}
	area = mmap(NULL, r.area_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	if (area == MAP_FAILED) {
		perror("app_echo: mmap");
		return 2;
	}
	a = (struct ferry_app_area *)area;
	if (a->magic != FERRY_APP_MAGIC || a->nr_queues != r.nr_queues) {
		fprintf(stderr, "app_echo: not an area\n");
		return 2;
	}
	printf("app_echo: attached slot %s, %u queues, %llu bytes\n", a->slot, a->nr_queues,
	       (unsigned long long)r.area_size);
	fflush(stdout);
	while (stall && !stop) {
		struct pollfd p = { .fd = cfd, .events = POLLIN };

		if (poll(&p, 1, 100) > 0) {
			printf("app_echo: detached by ferryd\n");
			return 0;
		}
	}
	while (!stop) {
		bool any = false;

		for (uint32_t qi = 0; qi < a->nr_queues; qi++) {
			struct ferry_app_queue *q = (struct ferry_app_queue *)(area + a->queue_off[qi]);
			struct ferry_app_desc *to = (struct ferry_app_desc *)(area + q->to_app.desc_off);
			struct ferry_app_desc *from =
				(struct ferry_app_desc *)(area + q->from_app.desc_off);
			uint32_t mask = q->to_app.size - 1, cons = q->to_app.consumer;
			uint32_t prod = load_acq(&q->to_app.producer), fprod = q->from_app.producer;

			while (cons != prod) {
				struct ferry_app_desc d = to[cons & mask];
				uint8_t *f = area + q->frames_off + (uint64_t)d.frame * q->frame_size;
				uint32_t need = hostile ? 4 : 1;

				/* Room on FROM_APP for what this one takes. */
				if (q->from_app.size - (fprod - load_acq(&q->from_app.consumer)) < need)
					break;
				if (hostile) {
					struct ferry_app_desc b = d;

					b.verdict = FERRY_APP_PASS;
					b.frame = q->frames + 7;
					from[fprod++ & mask] = b;
					b = d;
					b.verdict = FERRY_APP_PASS;
					b.len = d.cap + 1;
					from[fprod++ & mask] = b;
					b = d;
					b.verdict = FERRY_APP_PASS;
					b.cookie = d.cookie ^ 0x5a5a000;
					from[fprod++ & mask] = b;
					bad += 3;
				}
				for (uint32_t i = 0; i < d.len && d.frame < q->frames; i++)
					f[i] ^= key;
				d.verdict = drop ? FERRY_APP_DROP : FERRY_APP_PASS;
				from[fprod++ & mask] = d;
				returned++;
				returned_q[qi]++;
				cons++;
				any = true;
			}
			store_rel(&q->to_app.consumer, cons);
			if (fprod == q->from_app.producer)
				continue;
			if (hold_ms)
				usleep((useconds_t)hold_ms * 1000);
			store_rel(&q->from_app.producer, fprod);
			/* A sleeping ferryd asked for a wake-up: the producer before the flag. */
			atomic_thread_fence(memory_order_seq_cst);
			if (load_acq(&q->from_app.flags) & FERRY_APP_RING_NEED_WAKEUP) {
				uint64_t one = 1;

				if (write(fds[2], &one, sizeof(one)) < 0) {
				}
			}
		}
		if (any) {
			idle = 0;
			continue;
		}
		/* Idle for a while: sleep on the eventfd, need_wakeup set, rings checked again. */
		if (++idle < 1000) {
			struct pollfd p = { .fd = cfd, .events = POLLIN };

			if (poll(&p, 1, 0) > 0)
				break; /* ferryd closed the connection */
			usleep(10);
			continue;
		}
		{
			struct pollfd p[2] = { { .fd = fds[1], .events = POLLIN },
					       { .fd = cfd, .events = POLLIN } };
			bool pending = false;
			uint64_t v;

			for (uint32_t qi = 0; qi < a->nr_queues; qi++) {
				struct ferry_app_queue *q =
					(struct ferry_app_queue *)(area + a->queue_off[qi]);

				store_rel(&q->to_app.flags, FERRY_APP_RING_NEED_WAKEUP);
				pending |= load_acq(&q->to_app.producer) != q->to_app.consumer;
			}
			if (!pending && poll(p, 2, 100) > 0) {
				if (p[1].revents)
					break;
				if (read(fds[1], &v, sizeof(v)) < 0) {
				}
			}
			for (uint32_t qi = 0; qi < a->nr_queues; qi++)
				store_rel(&((struct ferry_app_queue *)(area + a->queue_off[qi]))->to_app.flags, 0);
			idle = 0;
		}
	}
	for (uint32_t qi = 0; qi < a->nr_queues && qi < FERRY_APP_MAX_QUEUES; qi++)
		printf("app_echo: queue %u returned %llu\n", qi, (unsigned long long)returned_q[qi]);
	printf("app_echo: returned %llu, bad %llu\n", (unsigned long long)returned,
	       (unsigned long long)bad);
	return 0;
}
