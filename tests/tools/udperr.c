// SPDX-License-Identifier: BSD-2-Clause
/*
 * udperr: does a connected UDP socket get ECONNREFUSED?  For the ICMP tests:
 * the error a client's kernel hands to its socket is what an application
 * sees of an ICMP port unreachable.
 *
 *   udperr --to ADDR:PORT [--bind ADDR:PORT] [--expect-from ADDR]
 *          [--tries N] [--timeout SEC]
 *
 * Sends one datagram at a time (up to --tries, default 5, one per second)
 * until a receive fails with ECONNREFUSED, then reads the error queue
 * (IP_RECVERR / IPV6_RECVERR) for the ICMP details: type, code, the sender
 * of the error (the offender) and the quoted destination, which must be
 * --to itself.  --expect-from also requires the error's sender.  Exit status
 * 0 when all of that holds, 1 when not, 2 on a usage or setup error.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define MAX_TRIES 100
#define MAX_TIMEOUT 600

struct addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ADDR, ADDR:PORT, [ADDR6] or [ADDR6]:PORT. */
static int parse_addr(const char *s, bool need_port, struct addr *a)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
	char host[INET6_ADDRSTRLEN + 1];
	const char *port = NULL, *end;
	unsigned long p = 0;
	size_t n;

	memset(a, 0, sizeof(*a));
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end || (end[1] && end[1] != ':'))
			return -EINVAL;
		port = end[1] ? end + 2 : NULL;
		s++;
		n = (size_t)(end - s);
	} else {
		end = strchr(s, ':');
		if (end && strchr(end + 1, ':'))
			end = NULL; /* a bare IPv6 address */
		port = end ? end + 1 : NULL;
		n = end ? (size_t)(end - s) : strlen(s);
	}
	if (n >= sizeof(host) || (need_port && !port))
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = '\0';
	if (port) {
		char *e;

		errno = 0;
		p = strtoul(port, &e, 10);
		if (errno || !*port || *e || p > 65535)
			return -EINVAL;
	}
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		a->len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		a->len = sizeof(*sin6);
		return 0;
	}
	return -EINVAL;
}

static const char *addr_str(const struct sockaddr_storage *ss, bool with_port, char *buf,
			    size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned int port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		port = ntohs(sin->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		port = ntohs(sin6->sin6_port);
	}
	if (!with_port)
		snprintf(buf, size, "%s", ip);
	else if (ss->ss_family == AF_INET6)
		snprintf(buf, size, "[%s]:%u", ip, port);
	else
		snprintf(buf, size, "%s:%u", ip, port);
	return buf;
}

/* Same address (and port, when `port`) in the same family. */
static bool addr_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b, bool port)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_addr.s_addr == y->sin_addr.s_addr &&
		       (!port || x->sin_port == y->sin_port);
	}
	{
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) &&
		       (!port || x->sin6_port == y->sin6_port);
	}
}

/* The queued ICMP error: 0 and its details, or -1. */
static int read_errqueue(int fd, struct sock_extended_err *ee, struct sockaddr_storage *quoted_dst,
			 struct sockaddr_storage *offender)
{
	char ctrl[512], data[64];
	struct iovec iov = {.iov_base = data, .iov_len = sizeof(data)};
	struct msghdr msg = {
	    .msg_name = quoted_dst,
	    .msg_namelen = sizeof(*quoted_dst),
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = ctrl,
	    .msg_controllen = sizeof(ctrl),
	};
	struct cmsghdr *cm;

	memset(quoted_dst, 0, sizeof(*quoted_dst));
	memset(offender, 0, sizeof(*offender));
	if (recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
		return -1;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		const struct sock_extended_err *e = (const void *)CMSG_DATA(cm);
		const struct sockaddr *off;

		if (!((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) ||
		      (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR)))
			continue;
		memcpy(ee, e, sizeof(*ee));
		off = SO_EE_OFFENDER(e);
		if (off->sa_family == AF_INET)
			memcpy(offender, off, sizeof(struct sockaddr_in));
		else if (off->sa_family == AF_INET6)
			memcpy(offender, off, sizeof(struct sockaddr_in6));
		return 0;
	}
	return -1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: udperr --to ADDR:PORT [--bind ADDR:PORT] [--expect-from ADDR]\n"
		   "              [--tries N] [--timeout SEC]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"to", required_argument, NULL, 't'},
	    {"bind", required_argument, NULL, 'b'},
	    {"expect-from", required_argument, NULL, 'f'},
	    {"tries", required_argument, NULL, 'n'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct addr to = {.len = 0}, bind_to = {.len = 0}, from = {.len = 0};
	long tries = 5, timeout = 10;
	struct sockaddr_storage quoted, offender;
	struct sock_extended_err ee;
	char s1[64], s2[64];
	int64_t deadline;
	int fd, c, on = 1, sent = 0;
	bool refused = false;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_addr(optarg, true, &to))
				goto bad_arg;
			break;
		case 'b':
			if (parse_addr(optarg, false, &bind_to))
				goto bad_arg;
			break;
		case 'f':
			if (parse_addr(optarg, false, &from))
				goto bad_arg;
			break;
		case 'n':
			tries = strtol(optarg, NULL, 10);
			if (tries < 1 || tries > MAX_TRIES)
				goto bad_arg;
			break;
		case 'T':
			timeout = strtol(optarg, NULL, 10);
			if (timeout < 1 || timeout > MAX_TIMEOUT)
				goto bad_arg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!to.len || optind != argc) {
		usage(stderr);
		return 2;
	}

	fd = socket(to.ss.ss_family, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("udperr: socket");
		return 2;
	}
	if (to.ss.ss_family == AF_INET)
		c = setsockopt(fd, SOL_IP, IP_RECVERR, &on, sizeof(on));
	else
		c = setsockopt(fd, SOL_IPV6, IPV6_RECVERR, &on, sizeof(on));
	if (c || (bind_to.len && bind(fd, (struct sockaddr *)&bind_to.ss, bind_to.len)) ||
	    connect(fd, (struct sockaddr *)&to.ss, to.len)) {
		perror("udperr: socket setup");
		close(fd);
		return 2;
	}

	deadline = now_ms() + timeout * 1000;
	while (!refused && sent < tries && now_ms() < deadline) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		char buf[64];
		int64_t wait;

		if (send(fd, "udperr probe", 12, 0) < 0 && errno != ECONNREFUSED) {
			perror("udperr: send");
			break;
		}
		sent++;
		wait = deadline - now_ms();
		if (wait > 1000)
			wait = 1000;
		if (wait <= 0 || poll(&pfd, 1, (int)wait) <= 0)
			continue;
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0) {
			fprintf(stderr, "udperr: got a reply, not an error\n");
			continue;
		}
		if (errno == ECONNREFUSED)
			refused = true;
		else if (errno != EAGAIN)
			fprintf(stderr, "udperr: receive failed: %s\n", strerror(errno));
	}
	if (!refused) {
		printf("udperr: no ECONNREFUSED from %s after %d datagrams\n",
		       addr_str(&to.ss, true, s1, sizeof(s1)), sent);
		close(fd);
		return 1;
	}
	if (read_errqueue(fd, &ee, &quoted, &offender)) {
		printf("udperr: ECONNREFUSED, but no ICMP error in the error queue\n");
		close(fd);
		return 1;
	}
	close(fd);
	printf("udperr: ECONNREFUSED after %d datagrams: ICMP%s type %u code %u from %s about %s\n",
	       sent, ee.ee_origin == SO_EE_ORIGIN_ICMP6 ? "v6" : "", ee.ee_type, ee.ee_code,
	       addr_str(&offender, false, s1, sizeof(s1)), addr_str(&quoted, true, s2, sizeof(s2)));
	if (ee.ee_errno != ECONNREFUSED ||
	    (ee.ee_origin != SO_EE_ORIGIN_ICMP && ee.ee_origin != SO_EE_ORIGIN_ICMP6)) {
		printf("udperr: the queued error is not an ICMP port unreachable\n");
		return 1;
	}
	if (!addr_eq(&quoted, &to.ss, true)) {
		printf("udperr: the error quotes another destination\n");
		return 1;
	}
	if (from.len && !addr_eq(&offender, &from.ss, false)) {
		printf("udperr: the error comes from %s, expected %s\n",
		       addr_str(&offender, false, s1, sizeof(s1)),
		       addr_str(&from.ss, false, s2, sizeof(s2)));
		return 1;
	}
	return 0;

bad_arg:
	fprintf(stderr, "udperr: bad argument '%s'\n", optarg);
	usage(stderr);
	return 2;
}
