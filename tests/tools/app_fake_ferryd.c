// SPDX-License-Identifier: BSD-2-Clause
/*
 * app_fake_ferryd: ferryd's side of one application attach, without
 * ferryd, for tests/integration/test_app_examples.sh: runs the example
 * applications (C and Python) through libferry_app end to end.
 *
 *   app_fake_ferryd [-k] SOCKET SLOT PAYLOAD...
 *
 * Listens on SOCKET (mode 0666, made visible only once listening), serves
 * one attach of SLOT (any other slot is refused -ENOENT), puts each PAYLOAD
 * on the area's two queues in turn (cookie = its index), waits up to 10 s
 * for all of them to come back, prints "INDEX PASS|DROP PAYLOAD" per packet
 * in index order (bytes outside printable ASCII as \xNN), closes the
 * connection and exits 0; 1 when something did not come back or came back
 * wrong (a cookie, a frame changed, twice).  With -k the connection is
 * kept open after that until the application closes it (up to 10 s):
 * "detached" is printed then, so a test sees a clean detach on SIGTERM.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../unit/app_fake.h"

#define NR_QUEUES 2
#define RING 64
#define MAX_PKTS RING

static int listen_on(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char tmp[sizeof(sun.sun_path)];
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, tmp);
	unlink(tmp);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) || chmod(tmp, 0666) ||
	    listen(fd, 4) || rename(tmp, path))
		return -errno;
	return fd;
}

static void print_payload(const uint8_t *p, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			putchar(p[i]);
		else
			printf("\\x%02x", p[i]);
	}
	putchar('\n');
}

int main(int argc, char **argv)
{
	struct ferry_app_desc back[MAX_PKTS];
	struct ferry_ctl_request req;
	int lfd, cfd, nr, returned = 0, bad = 0;
	uint32_t frame_of[MAX_PKTS];
	struct pollfd pfd;
	struct app_fake f;
	int keep = 0, ret;
	time_t deadline;

	if (argc > 1 && !strcmp(argv[1], "-k")) {
		keep = 1;
		argv++;
		argc--;
	}
	if (argc < 4 || argc - 3 > MAX_PKTS) {
		fprintf(stderr, "usage: app_fake_ferryd [-k] SOCKET SLOT PAYLOAD... (at most %d)\n",
			MAX_PKTS);
		return 64;
	}
	nr = argc - 3;
	if (app_fake_build(&f, argv[2], NR_QUEUES, RING, 2048)) {
		perror("app_fake_ferryd: area");
		return 1;
	}
	lfd = listen_on(argv[1]);
	if (lfd < 0) {
		fprintf(stderr, "app_fake_ferryd: listen on %s: %s\n", argv[1], strerror(-lfd));
		return 1;
	}
	pfd = (struct pollfd){ .fd = lfd, .events = POLLIN };
	if (poll(&pfd, 1, 10000) != 1) {
		fprintf(stderr, "app_fake_ferryd: nobody attached within 10 s\n");
		return 1;
	}
	cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (cfd < 0 || recv(cfd, &req, sizeof(req), 0) != sizeof(req) ||
	    req.magic != FERRY_APP_MAGIC || req.op != FERRY_CTL_ATTACH) {
		fprintf(stderr, "app_fake_ferryd: no attach request\n");
		return 1;
	}
	req.slot[FERRY_APP_NAME_LEN - 1] = '\0';
	if (strcmp(req.slot, argv[2])) {
		app_fake_reply(&f, cfd, -ENOENT, "no such slot", NULL, 0);
		fprintf(stderr, "app_fake_ferryd: refused slot '%s'\n", req.slot);
		return 1;
	}
	if (app_fake_reply(&f, cfd, 0, NULL, NULL, 0)) {
		perror("app_fake_ferryd: reply");
		return 1;
	}
	for (int i = 0; i < nr; i++) {
		/* Frames from the end, so that a client using the index as frame is caught. */
		frame_of[i] = RING - 1 - i;
		if (app_fake_push(&f, i % NR_QUEUES, frame_of[i], 1000 + i, argv[3 + i],
				  strlen(argv[3 + i]), 2048)) {
			fprintf(stderr, "app_fake_ferryd: TO_APP full\n");
			return 1;
		}
		back[i].verdict = 0;
	}
	app_fake_wake(&f);

	deadline = time(NULL) + 10;
	while (returned < nr && time(NULL) < deadline) {
		struct ferry_app_desc d;
		int got = 0;

		for (unsigned int q = 0; q < NR_QUEUES; q++) {
			while (!app_fake_pop(&f, q, &d)) {
				int i = (int)d.cookie - 1000;

				got = 1;
				if (i < 0 || i >= nr || back[i].verdict || (unsigned int)i % NR_QUEUES != q ||
				    d.frame != frame_of[i] || d.len > 2048 ||
				    (d.verdict != FERRY_APP_PASS && d.verdict != FERRY_APP_DROP)) {
					fprintf(stderr, "app_fake_ferryd: bad descriptor: queue %u frame %u cookie %u len %u verdict %u\n",
						q, d.frame, d.cookie, d.len, d.verdict);
					bad++;
					continue;
				}
				back[i] = d;
				returned++;
			}
		}
		if (!got)
			usleep(1000); /* the real worker polls each loop; a test can nap */
	}
	for (int i = 0; i < nr; i++) {
		if (!back[i].verdict) {
			printf("%d MISSING\n", i);
			continue;
		}
		printf("%d %s ", i, back[i].verdict == FERRY_APP_PASS ? "PASS" : "DROP");
		print_payload(app_fake_frame(&f, i % NR_QUEUES, frame_of[i]), back[i].len);
	}
	fflush(stdout);
	ret = returned == nr && !bad ? 0 : 1;
	if (keep) {
		char buf[64];

		/* The application closing its end: EOF (or a reset) within 10 s. */
		pfd = (struct pollfd){ .fd = cfd, .events = POLLIN };
		if (poll(&pfd, 1, 10000) == 1 && recv(cfd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			printf("detached\n");
		else
			ret = 1;
		fflush(stdout);
	}
	close(cfd);
	close(lfd);
	unlink(argv[1]);
	app_fake_destroy(&f);
	return ret;
}
