// SPDX-License-Identifier: BSD-2-Clause
/*
 * udp_relay: the best a plain socket program does as a UDP proxy, as a
 * baseline for ferry.  It has ferry's NAT semantics with sockets:
 *
 *   client C:c -> F:f (the flow socket)      becomes  E:n -> U:u
 *   (one socket per client, bound to E:0 and connected to U:u, so n is the
 *   kernel's ephemeral port)
 *   U:u -> E:n (that client's socket)        becomes  F:f -> C:c
 *
 * It is as cheap per packet as sockets allow: recvmmsg() and sendmmsg() in
 * batches (64 by default), a flat open-addressing table of clients, one
 * level-triggered epoll set, no allocation after start-up, and socket
 * buffers forced large so a burst is queued rather than dropped.  It is one
 * thread; pin it with taskset.  SIGTERM or SIGINT print the counters on
 * stderr and exit; --max-time bounds its life.
 *
 * --xor KEY (0..255) makes it the baseline of an app service
 * (services/examples/app_xor.c): every datagram's payload, both ways, is
 * XORed byte for byte with KEY in this same process, with app_xor's own
 * loop, between the batch's recvmmsg() and its sendmmsg().  Key 0 does the
 * same work and leaves the bytes as they are (for ping-pong probes that
 * check their own messages).
 */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>

#include "bench_util.h"

#define MAX_BATCH 256
#define BUF_SIZE 2048
#define SOCK_BUF (4 << 20)
#define FLOW_TAG UINT32_MAX

struct session {
	struct sockaddr_in client;
	int fd;
	bool used;
};

struct relay {
	int flow_fd, ep;
	struct sockaddr_in flow, upstream, source;
	struct session *sessions;
	uint32_t nr_slots;     /* a power of two, twice --max-sessions */
	uint32_t nr_sessions, max_sessions;
	uint32_t batch;
	bool xor;
	uint8_t xor_key;
	struct mmsghdr msgs[MAX_BATCH];
	struct iovec iovs[MAX_BATCH];
	struct sockaddr_in names[MAX_BATCH];
	uint8_t (*bufs)[BUF_SIZE];
	uint64_t rx_client, tx_upstream, rx_upstream, tx_client, tx_errors, no_session;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static int udp_socket(const struct sockaddr_in *bind_to, const struct sockaddr_in *connect_to)
{
	int fd, big = SOCK_BUF, err;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* FORCE: the namespace's rmem_max would cap a plain SO_RCVBUF far lower. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
	if (bind(fd, (const struct sockaddr *)bind_to, sizeof(*bind_to)) ||
	    (connect_to &&
	     connect(fd, (const struct sockaddr *)connect_to, sizeof(*connect_to)))) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static uint32_t hash_client(const struct sockaddr_in *a)
{
	uint64_t h = ((uint64_t)a->sin_addr.s_addr << 16 | a->sin_port) * 0x9e3779b97f4a7c15ull;

	return (uint32_t)(h >> 32);
}

/* The session of a client, created on its first datagram; NULL when the table is full. */
static struct session *session_of(struct relay *r, const struct sockaddr_in *client)
{
	uint32_t i = hash_client(client) & (r->nr_slots - 1);
	struct session *s;
	struct epoll_event ev = {.events = EPOLLIN};

	for (;; i = (i + 1) & (r->nr_slots - 1)) {
		s = &r->sessions[i];
		if (!s->used)
			break;
		if (s->client.sin_addr.s_addr == client->sin_addr.s_addr &&
		    s->client.sin_port == client->sin_port)
			return s;
	}
	if (r->nr_sessions == r->max_sessions)
		return NULL;
	s->fd = udp_socket(&r->source, &r->upstream);
	if (s->fd < 0)
		return NULL;
	ev.data.u32 = i;
	if (epoll_ctl(r->ep, EPOLL_CTL_ADD, s->fd, &ev)) {
		close(s->fd);
		return NULL;
	}
	s->client = *client;
	s->used = true;
	r->nr_sessions++;
	return s;
}

static void prepare_rx(struct relay *r)
{
	for (uint32_t i = 0; i < r->batch; i++) {
		r->iovs[i].iov_base = r->bufs[i];
		r->iovs[i].iov_len = BUF_SIZE;
		r->msgs[i].msg_hdr = (struct msghdr){
			.msg_name = &r->names[i],
			.msg_namelen = sizeof(r->names[i]),
			.msg_iov = &r->iovs[i],
			.msg_iovlen = 1,
		};
	}
}

/* The app service's transform, as services/examples/app_xor.c does it. */
static void xor_payloads(struct relay *r, uint32_t n)
{
	if (!r->xor)
		return;
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < r->msgs[i].msg_len; j++)
			r->bufs[i][j] ^= r->xor_key;
}

/* Sends msgs[from, to) on fd; what the kernel refuses is counted, not retried. */
static void send_batch(struct relay *r, int fd, uint32_t from, uint32_t to, uint64_t *sent)
{
	while (from < to) {
		int n = sendmmsg(fd, &r->msgs[from], to - from, MSG_DONTWAIT);

		if (n <= 0) {
			r->tx_errors += to - from;
			return;
		}
		*sent += (uint64_t)n;
		from += (uint32_t)n;
	}
}

/* Client datagrams: one sendmmsg() per run of consecutive datagrams of one client. */
static void from_clients(struct relay *r)
{
	struct session *cur = NULL;
	uint32_t start = 0;
	int n;

	prepare_rx(r);
	n = recvmmsg(r->flow_fd, r->msgs, r->batch, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return;
	r->rx_client += (uint64_t)n;
	xor_payloads(r, (uint32_t)n);
	for (uint32_t i = 0; i < (uint32_t)n; i++) {
		struct session *s = session_of(r, &r->names[i]);

		/* Connected sockets: the datagrams go out with no address. */
		r->iovs[i].iov_len = r->msgs[i].msg_len;
		r->msgs[i].msg_hdr.msg_name = NULL;
		r->msgs[i].msg_hdr.msg_namelen = 0;
		if (s != cur) {
			if (cur)
				send_batch(r, cur->fd, start, i, &r->tx_upstream);
			else
				r->no_session += i - start;
			cur = s;
			start = i;
		}
	}
	if (cur)
		send_batch(r, cur->fd, start, (uint32_t)n, &r->tx_upstream);
	else
		r->no_session += (uint32_t)n - start;
}

/* The upstream's replies to one client, sent back from the flow socket. */
static void from_upstream(struct relay *r, struct session *s)
{
	int n;

	prepare_rx(r);
	n = recvmmsg(s->fd, r->msgs, r->batch, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return;
	r->rx_upstream += (uint64_t)n;
	xor_payloads(r, (uint32_t)n);
	for (int i = 0; i < n; i++) {
		r->iovs[i].iov_len = r->msgs[i].msg_len;
		r->names[i] = s->client;
		r->msgs[i].msg_hdr.msg_namelen = sizeof(s->client);
	}
	send_batch(r, r->flow_fd, 0, (uint32_t)n, &r->tx_client);
}

static int parse_args(int argc, char **argv, struct relay *r, double *max_time)
{
	static const struct option longopts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"upstream", required_argument, NULL, 'u'},
		{"source", required_argument, NULL, 's'},
		{"batch", required_argument, NULL, 'b'},
		{"max-sessions", required_argument, NULL, 'm'},
		{"max-time", required_argument, NULL, 'T'},
		{"xor", required_argument, NULL, 'x'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	uint32_t addr;
	uint16_t port;
	uint64_t v;
	int c, have = 0, err;

	r->batch = 64;
	r->max_sessions = 4096;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		err = 0;
		switch (c) {
		case 'l':
		case 'u':
			err = bench_parse_endpoint(optarg, &addr, &port);
			if (!err) {
				struct sockaddr_in *sa = c == 'l' ? &r->flow : &r->upstream;

				sa->sin_family = AF_INET;
				sa->sin_addr.s_addr = addr;
				sa->sin_port = htons(port);
				have |= c == 'l' ? 1 : 2;
			}
			break;
		case 's':
			r->source.sin_family = AF_INET;
			err = inet_pton(AF_INET, optarg, &r->source.sin_addr) == 1 ? 0 : -EINVAL;
			have |= 4;
			break;
		case 'b':
			err = bench_parse_u64(optarg, 1, MAX_BATCH, &v);
			r->batch = (uint32_t)v;
			break;
		case 'm':
			err = bench_parse_u64(optarg, 1, 1u << 20, &v);
			r->max_sessions = (uint32_t)v;
			break;
		case 'T':
			err = bench_parse_double(optarg, 1, 86400, max_time);
			break;
		case 'x':
			err = bench_parse_u64(optarg, 0, 255, &v);
			r->xor = true;
			r->xor_key = (uint8_t)v;
			break;
		case 'h':
			printf("usage: udp_relay --listen F:f --upstream U:u --source E [--batch N]\n"
			       "                 [--max-sessions N] [--max-time S] [--xor KEY]\n");
			exit(0);
		default:
			return -EINVAL;
		}
		if (err) {
			fprintf(stderr, "udp_relay: invalid value '%s'\n", optarg);
			return err;
		}
	}
	if (have != 7) {
		fprintf(stderr, "udp_relay: --listen, --upstream and --source are required\n");
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct epoll_event evs[64], ev = {.events = EPOLLIN, .data.u32 = FLOW_TAG};
	struct sigaction sa = {.sa_handler = on_signal};
	double max_time = 3600, deadline;
	struct relay *r;

	r = calloc(1, sizeof(*r));
	if (!r || parse_args(argc, argv, r, &max_time))
		return 2;
	for (r->nr_slots = 2; r->nr_slots < 2 * r->max_sessions; r->nr_slots <<= 1)
		;
	r->sessions = calloc(r->nr_slots, sizeof(*r->sessions));
	r->bufs = calloc(MAX_BATCH, BUF_SIZE);
	if (!r->sessions || !r->bufs)
		return 1;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);

	r->flow_fd = udp_socket(&r->flow, NULL);
	if (r->flow_fd < 0) {
		fprintf(stderr, "udp_relay: cannot bind the flow address: %s\n",
			strerror(-r->flow_fd));
		return 1;
	}
	r->ep = epoll_create1(EPOLL_CLOEXEC);
	if (r->ep < 0 || epoll_ctl(r->ep, EPOLL_CTL_ADD, r->flow_fd, &ev)) {
		fprintf(stderr, "udp_relay: epoll: %s\n", strerror(errno));
		return 1;
	}
	if (r->xor)
		fprintf(stderr, "udp_relay: ready, batch %u, xor 0x%02x\n", r->batch, r->xor_key);
	else
		fprintf(stderr, "udp_relay: ready, batch %u\n", r->batch);
	deadline = bench_now() + max_time;
	while (!stop && bench_now() < deadline) {
		int n = epoll_wait(r->ep, evs, 64, 100);

		for (int i = 0; i < n; i++) {
			if (evs[i].data.u32 == FLOW_TAG)
				from_clients(r);
			else
				from_upstream(r, &r->sessions[evs[i].data.u32]);
		}
	}
	fprintf(stderr,
		"udp_relay: rx_client %" PRIu64 " tx_upstream %" PRIu64 " rx_upstream %" PRIu64
		" tx_client %" PRIu64 " tx_errors %" PRIu64 " no_session %" PRIu64
		" sessions %u\n",
		r->rx_client, r->tx_upstream, r->rx_upstream, r->tx_client, r->tx_errors,
		r->no_session, r->nr_sessions);
	return 0;
}
