// SPDX-License-Identifier: BSD-2-Clause
/*
 * ferryctl reload: asks ferryd over its control socket to reload its
 * config file (as SIGHUP does), waits for the outcome and prints ferryd's
 * report: the flows added, removed, changed (and why) and unchanged, or
 * why the reload was refused, with the config's FILE:LINE:COL errors.
 * Exits 0 when applied, 1 when refused, so that systemctl reload (the
 * unit's ExecReload) fails with it.  --dry-run reports the same without
 * applying anything.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control_proto.h"
#include "ferryctl_ctl.h"

/* A reload parks the workers for at most 2 s; loading and configuring is the rest. */
#define RELOAD_TIMEOUT_MS (120 * 1000)

int ferryctl_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "ferryctl: %s: the socket path is too long\n", path);
		return -1;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "ferryctl: socket: %s\n", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr,
			"ferryctl: cannot reach ferryd at %s: %s (is it running? its socket is "
			"control_socket in ferry.yaml: --socket PATH)\n",
			path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: ferryctl reload [--dry-run] [--socket PATH]\n"
		   "\n"
		   "Asks the running ferryd to reload its configuration file, as SIGHUP does,\n"
		   "and prints what changed: flows added, removed, changed (with what\n"
		   "changed) and unchanged; or why ferryd refused it, the config's errors at\n"
		   "FILE:LINE:COL, the running config staying in force.\n"
		   "\n"
		   "  -n, --dry-run      validate and compare only: nothing is applied\n"
		   "  -s, --socket PATH  ferryd's control socket (default " FERRY_CONTROL_SOCKET ")\n"
		   "\n"
		   "Exit status: 0 applied (or, dry run, would apply), 1 refused, 2 usage error,\n"
		   "3 not permitted (root, ferryd's user or control_group), 4 ferryd not reachable.\n");
}

int ferryctl_reload(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct ferry_ctl_admin_request req = {
		.magic = FERRY_APP_MAGIC,
		.version = FERRY_APP_VERSION,
		.op = FERRY_CTL_RELOAD,
	};
	const char *path = FERRY_CONTROL_SOCKET;
	struct ferry_ctl_text *m;
	int opt, fd, status = 0, ret;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "ns:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			req.flags |= FERRY_CTL_DRY_RUN;
			break;
		case 's':
			path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ferryctl reload: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	fd = ferryctl_connect(path);
	if (fd < 0)
		return FERRYCTL_EXIT_NO_FERRYD;
	m = malloc(sizeof(*m));
	if (!m) {
		close(fd);
		return 1;
	}
	if (send(fd, &req, sizeof(req), MSG_NOSIGNAL) != sizeof(req)) {
		fprintf(stderr, "ferryctl reload: cannot send the request: %s\n", strerror(errno));
		ret = FERRYCTL_EXIT_NO_FERRYD;
		goto out;
	}
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, RELOAD_TIMEOUT_MS) <= 0) {
			fprintf(stderr, "ferryctl reload: no answer from ferryd in %d s\n",
				RELOAD_TIMEOUT_MS / 1000);
			ret = FERRYCTL_EXIT_NO_FERRYD;
			goto out;
		}
		n = recv(fd, m, sizeof(*m), 0);
		if (n < (ssize_t)offsetof(struct ferry_ctl_text, text) ||
		    m->magic != FERRY_APP_MAGIC || m->len > (size_t)n - offsetof(struct ferry_ctl_text, text)) {
			fprintf(stderr, "ferryctl reload: %s\n",
				n <= 0 ? "ferryd closed the connection without an answer"
				       : "a malformed answer from ferryd");
			ret = FERRYCTL_EXIT_NO_FERRYD;
			goto out;
		}
		status = m->status;
		/* The refusal and its errors on stderr, a report on stdout. */
		fwrite(m->text, 1, m->len, status ? stderr : stdout);
		if (!m->more)
			break;
	}
	ret = !status ? 0 : status == -EPERM ? FERRYCTL_EXIT_PERM : FERRYCTL_EXIT_REFUSED;
out:
	free(m);
	close(fd);
	return ret;
}
