// SPDX-License-Identifier: BSD-2-Clause
/*
 * notify_listen PATH [SECONDS]: a stand-in for systemd's notification socket.
 * Binds an AF_UNIX datagram socket at PATH and prints every line of every
 * message it receives (sd_notify(3) sends "KEY=VALUE" lines), one per line,
 * flushed at once, until SIGTERM or SECONDS (default 60) pass.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timespec start, now;
	int fd, seconds = 60;
	char buf[4096];

	if (argc < 2 || argc > 3 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: notify_listen PATH [SECONDS]\n");
		return 2;
	}
	if (argc == 3)
		seconds = atoi(argv[2]);
	strcpy(sa.sun_path, argv[1]);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "notify_listen: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= seconds)
			break;
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		/* One message may carry several assignments ("READY=1\nSTATUS=..."). */
		for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			printf("%s\n", line);
		fflush(stdout);
	}
	unlink(argv[1]);
	return 0;
}
