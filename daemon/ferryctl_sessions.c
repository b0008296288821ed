// SPDX-License-Identifier: BSD-2-Clause
/*
 * ferryctl sessions: lists the NAT sessions of a running ferryd, as
 * conntrack -L or ipvsadm -Lnc do: client, flow address, NAT address and
 * port, upstream, state, age, idle time, packets and bytes each way (the
 * XDP fast path's included for offloaded sessions).  The listing comes over
 * the control socket in chunks of at most FERRY_CTL_SESS_CHUNK sessions,
 * each copied by the worker that owns them (daemon/sessions.h) and printed
 * at once: memory stays bounded by one chunk whatever the table holds.
 * A chunk is a snapshot; the whole listing is not.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "control_proto.h"
#include "ferryctl_ctl.h"

#define ANSWER_TIMEOUT_MS 10000
/* ferryd answers -EBUSY while another listing holds a worker's chunk: retry this often. */
#define BUSY_RETRIES 500

/* lib/tcp_state.h's states, by value. */
static const char *const tcp_names[] = {
	"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "TIME_WAIT", "CLOSED",
};

struct reply_buf {
	struct ferry_ctl_sessions_reply h;
	struct ferry_ctl_session r[FERRY_CTL_SESS_CHUNK];
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: ferryctl sessions [--flow NAME] [--addr ADDRESS] [--limit N] [--json]\n"
		   "                         [--socket PATH]\n"
		   "       ferryctl [-p PIN_PATH] sessions --count [--json]\n"
		   "\n"
		   "Lists the NAT sessions of the running ferryd, one a line: flow, protocol,\n"
		   "client, flow address, NAT address:port, upstream, state, age and idle\n"
		   "seconds, packets and bytes client->upstream and back (offloaded sessions\n"
		   "include the XDP fast path's), worker.\n"
		   "\n"
		   "  -f, --flow NAME      only that flow's sessions\n"
		   "  -a, --addr ADDRESS   only sessions whose client or upstream is ADDRESS\n"
		   "  -l, --limit N        at most N sessions\n"
		   "  -j, --json           one JSON object per session, a line each\n"
		   "  -s, --socket PATH    ferryd's control socket (default " FERRY_CONTROL_SOCKET ")\n"
		   "      --count          the counts per flow and worker, from the pinned maps\n");
}

static const char *proto_name(uint8_t p)
{
	return p == IPPROTO_TCP ? "tcp" : p == IPPROTO_UDP ? "udp" : "?";
}

static const char *state_name(const struct ferry_ctl_session *r)
{
	if (r->proto == IPPROTO_TCP)
		return r->tcp_state < sizeof(tcp_names) / sizeof(tcp_names[0])
			       ? tcp_names[r->tcp_state]
			       : "?";
	if (r->flags & FERRY_CTL_SESS_ASSURED)
		return "ASSURED";
	return r->flags & FERRY_CTL_SESS_REPLIED ? "REPLIED" : "UNREPLIED";
}

static void addr_text(const struct ferry_ctl_session *r, const uint8_t *a, char *buf,
		      size_t len)
{
	if (!inet_ntop(r->family == 6 ? AF_INET6 : AF_INET, a, buf, (socklen_t)len))
		snprintf(buf, len, "?");
}

/* ADDR:PORT, [ADDR]:PORT for IPv6. */
static void endpoint(const struct ferry_ctl_session *r, const uint8_t *a, uint16_t port,
		     char *buf, size_t len)
{
	char s[INET6_ADDRSTRLEN];

	addr_text(r, a, s, sizeof(s));
	snprintf(buf, len, r->family == 6 ? "[%s]:%u" : "%s:%u", s, port);
}

static void print_text(const struct ferry_ctl_session *r)
{
	char cl[64], fl[64], nat[64], up[64];

	endpoint(r, r->client, r->client_port, cl, sizeof(cl));
	endpoint(r, r->flow, r->flow_port, fl, sizeof(fl));
	endpoint(r, r->nat, r->nat_port, nat, sizeof(nat));
	endpoint(r, r->upstream, r->upstream_port, up, sizeof(up));
	printf("%-12s %-3s %-23s %-23s %-23s %-23s %-11s %7.1f %7.1f %8llu %10llu %8llu %10llu "
	       "%u%s\n",
	       r->flow_name, proto_name(r->proto), cl, fl, nat, up, state_name(r),
	       (double)r->age_ms / 1000, (double)r->idle_ms / 1000,
	       (unsigned long long)r->packets_out, (unsigned long long)r->bytes_out,
	       (unsigned long long)r->packets_in, (unsigned long long)r->bytes_in, r->worker,
	       r->flags & FERRY_CTL_SESS_OFFLOADED ? " xdp" : "");
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void print_json(const struct ferry_ctl_session *r)
{
	char cl[INET6_ADDRSTRLEN], fl[INET6_ADDRSTRLEN], nat[INET6_ADDRSTRLEN],
		up[INET6_ADDRSTRLEN];

	addr_text(r, r->client, cl, sizeof(cl));
	addr_text(r, r->flow, fl, sizeof(fl));
	addr_text(r, r->nat, nat, sizeof(nat));
	addr_text(r, r->upstream, up, sizeof(up));
	printf("{\"flow\":");
	json_str(r->flow_name);
	printf(",\"flow_id\":%u,\"worker\":%u,\"protocol\":\"%s\",\"family\":%u,"
	       "\"client\":\"%s\",\"client_port\":%u,\"flow_address\":\"%s\",\"flow_port\":%u,"
	       "\"nat_address\":\"%s\",\"nat_port\":%u,\"upstream\":\"%s\",\"upstream_port\":%u,"
	       "\"state\":\"%s\",\"offloaded\":%s,\"age_ms\":%llu,\"idle_ms\":%llu,"
	       "\"packets_out\":%llu,\"bytes_out\":%llu,\"packets_in\":%llu,\"bytes_in\":%llu}\n",
	       r->flow_id, r->worker, proto_name(r->proto), r->family, cl, r->client_port, fl,
	       r->flow_port, nat, r->nat_port, up, r->upstream_port, state_name(r),
	       r->flags & FERRY_CTL_SESS_OFFLOADED ? "true" : "false",
	       (unsigned long long)r->age_ms, (unsigned long long)r->idle_ms,
	       (unsigned long long)r->packets_out, (unsigned long long)r->bytes_out,
	       (unsigned long long)r->packets_in, (unsigned long long)r->bytes_in);
}

/* One chunk: 0 with b filled, or an exit status with a message printed. */
static int ask(int fd, const struct ferry_ctl_admin_request *req, struct reply_buf *b)
{
	for (int tries = 0;; tries++) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (send(fd, req, sizeof(*req), MSG_NOSIGNAL) != sizeof(*req)) {
			fprintf(stderr, "ferryctl sessions: cannot send the request: %s\n",
				strerror(errno));
			return FERRYCTL_EXIT_NO_FERRYD;
		}
		if (poll(&pfd, 1, ANSWER_TIMEOUT_MS) <= 0) {
			fprintf(stderr, "ferryctl sessions: no answer from ferryd\n");
			return FERRYCTL_EXIT_NO_FERRYD;
		}
		n = recv(fd, b, sizeof(*b), 0);
		if (n < (ssize_t)sizeof(b->h) || b->h.magic != FERRY_APP_MAGIC ||
		    b->h.nr > FERRY_CTL_SESS_CHUNK ||
		    (size_t)n != sizeof(b->h) + b->h.nr * sizeof(b->r[0])) {
			fprintf(stderr, "ferryctl sessions: %s\n",
				n <= 0 ? "ferryd closed the connection"
				       : "a malformed answer from ferryd");
			return FERRYCTL_EXIT_NO_FERRYD;
		}
		if (b->h.status == -EBUSY && tries < BUSY_RETRIES) {
			struct timespec ts = { 0, 20 * 1000 * 1000 };

			nanosleep(&ts, NULL);
			continue;
		}
		if (b->h.status) {
			b->h.message[sizeof(b->h.message) - 1] = '\0';
			fprintf(stderr, "ferryctl sessions: %s: %s\n", b->h.message,
				strerror(-b->h.status));
			return b->h.status == -EPERM ? FERRYCTL_EXIT_PERM : 1;
		}
		return 0;
	}
}

int ferryctl_sessions(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "flow", required_argument, NULL, 'f' },
		{ "addr", required_argument, NULL, 'a' },
		{ "limit", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct ferry_ctl_admin_request req = {
		.magic = FERRY_APP_MAGIC,
		.version = FERRY_APP_VERSION,
		.op = FERRY_CTL_SESSIONS,
	};
	const char *path = FERRY_CONTROL_SOCKET;
	unsigned long long limit = 0, shown = 0;
	struct reply_buf *b;
	bool json = false;
	int opt, fd, ret = 0;
	char *end;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "f:a:l:js:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			if (strlen(optarg) >= sizeof(req.flow)) {
				fprintf(stderr, "ferryctl sessions: --flow: no flow has so long a "
						"name\n");
				return 2;
			}
			snprintf(req.flow, sizeof(req.flow), "%s", optarg);
			req.flags |= FERRY_CTL_SESS_FLOW;
			break;
		case 'a':
			if (inet_pton(AF_INET, optarg, req.addr) == 1) {
				req.family = 4;
			} else if (inet_pton(AF_INET6, optarg, req.addr) == 1) {
				req.family = 6;
			} else {
				fprintf(stderr, "ferryctl sessions: --addr: '%s' is not an IPv4 "
						"or IPv6 address\n", optarg);
				return 2;
			}
			req.flags |= FERRY_CTL_SESS_ADDR;
			break;
		case 'l':
			errno = 0;
			limit = strtoull(optarg, &end, 10);
			if (errno || *end || !limit || optarg[0] == '-') {
				fprintf(stderr, "ferryctl sessions: --limit: '%s' is not a "
						"positive number\n", optarg);
				return 2;
			}
			break;
		case 'j':
			json = true;
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
		fprintf(stderr, "ferryctl sessions: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	fd = ferryctl_connect(path);
	if (fd < 0)
		return FERRYCTL_EXIT_NO_FERRYD;
	b = malloc(sizeof(*b));
	if (!b) {
		close(fd);
		return 1;
	}
	if (!json)
		printf("%-12s %-3s %-23s %-23s %-23s %-23s %-11s %7s %7s %8s %10s %8s %10s %s\n",
		       "FLOW", "PRO", "CLIENT", "FLOW ADDRESS", "NAT", "UPSTREAM", "STATE", "AGE",
		       "IDLE", "PKTS>", "BYTES>", "PKTS<", "BYTES<", "WORKER");
	for (;;) {
		unsigned long long left = limit ? limit - shown : FERRY_CTL_SESS_CHUNK;

		req.max = left < FERRY_CTL_SESS_CHUNK ? (uint32_t)left : FERRY_CTL_SESS_CHUNK;
		ret = ask(fd, &req, b);
		if (ret)
			break;
		for (uint32_t i = 0; i < b->h.nr && (!limit || shown < limit); i++, shown++) {
			b->r[i].flow_name[sizeof(b->r[i].flow_name) - 1] = '\0';
			if (json)
				print_json(&b->r[i]);
			else
				print_text(&b->r[i]);
		}
		if (b->h.done || (limit && shown >= limit))
			break;
		req.worker = b->h.next_worker;
		req.slot = b->h.next_slot;
	}
	if (!json && !ret)
		printf("%llu session%s\n", shown, shown == 1 ? "" : "s");
	fflush(stdout);
	free(b);
	close(fd);
	return ret;
}
