// SPDX-License-Identifier: BSD-2-Clause
/*
 * udpprobe: a UDP echo client and server for the namespace tests.
 *
 *   udpprobe server --listen ADDR:PORT [--expect-src PREFIX] [--expect-sport LO-HI]
 *                   --count N --timeout SEC [--no-echo] [--echo-any] [--any-count]
 *                   [--per-sender]
 *   udpprobe client --to ADDR:PORT --count N [--min-size 16] [--max-size 1400]
 *                   [--rate PPS] [--timeout SEC] [--bind ADDR[:PORT]] [--window W]
 *                   [--min-fraction F] [--no-wait] [--text]
 *
 * Datagram `seq` is the 8-byte big-endian sequence number followed by bytes
 * of a PRNG seeded with `seq`, so the server verifies every datagram without
 * knowing the client's settings, and the client checks every echo byte for
 * byte.  Every loop is bounded in both count and time; exit status 0 means
 * everything arrived intact (or, with --min-fraction F, at least that share
 * of the echoes, and nothing corrupt), 1 that something did not, 2 a usage
 * or setup error.  The summary line goes to stdout, diagnostics to stderr.
 *
 * One-way use (fanout, lb): server --no-echo never answers; --any-count
 * succeeds with any number of intact datagrams up to N (at least one), and
 * SIGTERM or SIGINT ends its wait early with the summary; --per-sender adds
 * a line "udpprobe server: sender ADDR:PORT N" per sender.  server --echo-any
 * also echoes what is not a probe datagram (counted invalid all the same),
 * as a server that answers anyone would (the flood test).  client --no-wait
 * sends without waiting for echoes and succeeds once all N are sent.
 *
 * client --text (for compress): the bytes after the header are words drawn
 * by the same PRNG, which deflate shrinks to about half, instead of PRNG
 * bytes, which it cannot shrink at all.  The header's top bit says so, so
 * the server still needs no option to check them.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#define PROBE_HDR 8
#define PROBE_TEXT (1ULL << 63) /* header flag: compressible words follow */
#define PROBE_MAX_SIZE 65507 /* largest IPv4 UDP payload */
#define PROBE_MAX_COUNT (1u << 24)
#define PROBE_MAX_TIMEOUT 3600
#define MAX_REPORTS 5      /* per-datagram complaints printed */
#define MAX_SENDERS 64     /* distinct senders remembered */
#define SHOWN_SENDERS 4    /* and listed in the summary */
#define DRAIN_BATCH 256    /* datagrams read per wakeup */
#define STALL_US 1000000LL /* an echo this late frees its window slot */

struct addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

struct prefix {
	int family;
	uint8_t bytes[16];
	unsigned int len;
};

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Milliseconds for poll(): rounded up so a wait never ends just short of a deadline. */
static int poll_ms(int64_t us)
{
	if (us <= 0)
		return 0;
	if (us > 60 * 1000000LL)
		return 60 * 1000;
	return (int)((us + 999) / 1000);
}

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Both extremes come first so that even a short run covers them. */
static uint32_t probe_size(uint64_t seq, uint32_t min, uint32_t max)
{
	uint64_t s = seq ^ 0x5a5a5a5a5a5a5a5aULL;

	if (seq == 0)
		return min;
	if (seq == 1)
		return max;
	return min + (uint32_t)(splitmix64(&s) % ((uint64_t)max - min + 1));
}

static void probe_fill(uint8_t *buf, uint64_t seq, uint32_t len)
{
	static const char *const words[16] = {
	    "ferry ", "carries ", "udp ",    "datagrams ", "across ", "a ",    "slow ", "link, ",
	    "every ", "byte ",	  "intact ", "and ",	   "in ",     "order", ".\n",	"the ",
	};
	uint64_t state = seq;
	uint32_t i;

	for (i = 0; i < PROBE_HDR; i++)
		buf[i] = (uint8_t)(seq >> (56 - 8 * i));
	while (i < len && (seq & PROBE_TEXT)) {
		const char *w = words[splitmix64(&state) % 16];

		for (size_t k = 0; w[k] && i < len; k++)
			buf[i++] = (uint8_t)w[k];
	}
	while (i < len) {
		uint64_t r = splitmix64(&state);

		for (int k = 0; k < 8 && i < len; k++, r >>= 8)
			buf[i++] = (uint8_t)r;
	}
}

static uint64_t probe_seq(const uint8_t *buf)
{
	uint64_t seq = 0;

	for (int i = 0; i < PROBE_HDR; i++)
		seq = seq << 8 | buf[i];
	return seq;
}

/* True when buf[0..len) is exactly what sequence number probe_seq(buf) carries. */
static bool probe_valid(const uint8_t *buf, uint32_t len, uint8_t *scratch)
{
	if (len < PROBE_HDR)
		return false;
	probe_fill(scratch, probe_seq(buf), len);
	return !memcmp(buf, scratch, len);
}

static const char *addr_str(const struct sockaddr_storage *ss, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(buf, size, "%s:%u", ip, ntohs(sin->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, size, "[%s]:%u", ip, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, size, "(family %d)", ss->ss_family);
	}
	return buf;
}

static bool addr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
	}
	return false;
}

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* "198.18.2.2:6000", "[fd00:2::2]:6000", or without ":PORT" when !need_port. */
static int parse_addr(const char *s, bool need_port, struct addr *a)
{
	char host[INET6_ADDRSTRLEN + 2];
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
	const char *port = NULL, *colon;
	unsigned long p = 0;
	size_t n;

	memset(a, 0, sizeof(*a));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || (close[1] && close[1] != ':'))
			return -EINVAL;
		n = (size_t)(close - s - 1);
		if (close[1] == ':')
			port = close + 2;
		s++;
	} else {
		colon = strchr(s, ':');
		/* Several colons: a bare IPv6 address, which cannot carry a port. */
		if (colon && strchr(colon + 1, ':'))
			colon = NULL;
		n = colon ? (size_t)(colon - s) : strlen(s);
		if (colon)
			port = colon + 1;
	}
	if (n >= sizeof(host) || (need_port && !port))
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = '\0';
	if (port && parse_uint(port, 0, 65535, &p))
		return -EINVAL;
	if (need_port && p == 0)
		return -EINVAL;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		a->len = sizeof(*sin);
		return 0;
	}
	memset(&a->ss, 0, sizeof(a->ss));
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		a->len = sizeof(*sin6);
		return 0;
	}
	return -EINVAL;
}

/* "198.18.2.0/24", "fd00:2::/64", or a bare address meaning just that one. */
static int parse_prefix(const char *s, struct prefix *p)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long len;

	memset(p, 0, sizeof(*p));
	if (n >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, p->bytes) == 1)
		p->family = AF_INET;
	else if (inet_pton(AF_INET6, host, p->bytes) == 1)
		p->family = AF_INET6;
	else
		return -EINVAL;
	len = p->family == AF_INET ? 32 : 128;
	if (slash && parse_uint(slash + 1, 0, len, &len))
		return -EINVAL;
	p->len = (unsigned int)len;
	return 0;
}

static bool prefix_contains(const struct prefix *p, const struct sockaddr_storage *ss)
{
	const uint8_t *b;
	unsigned int full = p->len / 8, rest = p->len % 8;

	if (ss->ss_family != p->family)
		return false;
	b = p->family == AF_INET ? (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr
				 : (const uint8_t *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
	if (memcmp(b, p->bytes, full))
		return false;
	return !rest || !((b[full] ^ p->bytes[full]) & (uint8_t)(0xff << (8 - rest)));
}

static uint16_t addr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static int open_socket(int family)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int one = 1, size = 4 << 20;

	if (fd < 0) {
		fprintf(stderr, "udpprobe: socket: %s\n", strerror(errno));
		return -1;
	}
	/* IPv4-mapped senders would only confuse the prefix check. */
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* Bursts at high rates must not be lost in our own buffers. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	return fd;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: udpprobe server --listen ADDR:PORT [--expect-src PREFIX]\n"
		"           [--expect-sport LO-HI] --count N --timeout SEC\n"
		"           [--no-echo] [--echo-any] [--any-count] [--per-sender]\n"
		"       udpprobe client --to ADDR:PORT --count N [--min-size 16]\n"
		"           [--max-size 1400] [--rate PPS] [--timeout SEC]\n"
		"           [--bind ADDR[:PORT]] [--window W] [--min-fraction F] [--no-wait]\n"
		"           [--text]\n"
		"IPv6 addresses with a port are written [ADDR]:PORT.  --rate 0: no pacing.\n"
		"Defaults: server --timeout 10; client --rate 2000 --timeout 5 --window 256.\n");
}

/* ---- server ---- */

struct server {
	struct addr listen;
	struct prefix src;
	bool check_src;
	unsigned long sport_lo, sport_hi;
	unsigned long count, timeout;
	unsigned long valid, invalid, reports;
	struct sockaddr_storage senders[MAX_SENDERS];
	unsigned long sender_valid[MAX_SENDERS]; /* intact datagrams per sender */
	unsigned int nr_senders;
	bool senders_overflow;
	bool no_echo, echo_any, any_count, per_sender;
};

/* SIGTERM/SIGINT: a --any-count server stops waiting and reports. */
static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* The sender's slot, or -1 once MAX_SENDERS are known. */
static int server_note_sender(struct server *s, const struct sockaddr_storage *from)
{
	for (unsigned int i = 0; i < s->nr_senders; i++)
		if (addr_equal(&s->senders[i], from))
			return (int)i;
	if (s->nr_senders < MAX_SENDERS) {
		s->senders[s->nr_senders] = *from;
		return (int)s->nr_senders++;
	}
	s->senders_overflow = true;
	return -1;
}

static void server_reject(struct server *s, const struct sockaddr_storage *from, ssize_t len,
			  const char *why)
{
	char buf[INET6_ADDRSTRLEN + 16];

	s->invalid++;
	if (s->reports++ < MAX_REPORTS)
		fprintf(stderr, "udpprobe server: invalid datagram of %zd bytes from %s: %s\n", len,
			addr_str(from, buf, sizeof(buf)), why);
}

static void server_handle(struct server *s, int fd, uint8_t *buf, ssize_t n,
			  const struct sockaddr_storage *from, socklen_t fromlen, uint8_t *scratch)
{
	uint16_t sport = addr_port(from);
	int slot = server_note_sender(s, from);

	if (s->echo_any && !s->no_echo &&
	    sendto(fd, buf, (size_t)n, 0, (const struct sockaddr *)from, fromlen) < 0 &&
	    s->reports++ < MAX_REPORTS)
		fprintf(stderr, "udpprobe server: cannot echo: %s\n", strerror(errno));

	if (s->check_src && !prefix_contains(&s->src, from)) {
		server_reject(s, from, n, "source address outside --expect-src");
		return;
	}
	if (sport < s->sport_lo || sport > s->sport_hi) {
		server_reject(s, from, n, "source port outside --expect-sport");
		return;
	}
	if (!probe_valid(buf, (uint32_t)n, scratch)) {
		server_reject(s, from, n,
			      n < PROBE_HDR ? "too short" : "payload differs from the pattern");
		return;
	}
	s->valid++;
	if (slot >= 0)
		s->sender_valid[slot]++;
	if (s->no_echo || s->echo_any)
		return;
	if (sendto(fd, buf, (size_t)n, 0, (const struct sockaddr *)from, fromlen) < 0) {
		char abuf[INET6_ADDRSTRLEN + 16];

		if (s->reports++ < MAX_REPORTS)
			fprintf(stderr, "udpprobe server: cannot echo to %s: %s\n",
				addr_str(from, abuf, sizeof(abuf)), strerror(errno));
	}
}

static void server_summary(const struct server *s)
{
	char buf[INET6_ADDRSTRLEN + 16];

	printf("udpprobe server: received %lu valid, %lu invalid of %lu expected; senders: ",
	       s->valid, s->invalid, s->count);
	if (!s->nr_senders)
		printf("none");
	for (unsigned int i = 0; i < s->nr_senders && i < SHOWN_SENDERS; i++)
		printf("%s%s", i ? "," : "", addr_str(&s->senders[i], buf, sizeof(buf)));
	if (s->nr_senders > SHOWN_SENDERS || s->senders_overflow)
		printf(",... (%s%u distinct)", s->senders_overflow ? "over " : "", s->nr_senders);
	printf("\n");
	for (unsigned int i = 0; s->per_sender && i < s->nr_senders; i++)
		printf("udpprobe server: sender %s %lu\n", addr_str(&s->senders[i], buf, sizeof(buf)),
		       s->sender_valid[i]);
	fflush(stdout);
}

static int server_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "expect-src", required_argument, NULL, 's' },
		{ "expect-sport", required_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "no-echo", no_argument, NULL, 'n' },
		{ "echo-any", no_argument, NULL, 'E' },
		{ "any-count", no_argument, NULL, 'a' },
		{ "per-sender", no_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	static struct server s;
	static uint8_t buf[65536], scratch[65536];
	char lbuf[INET6_ADDRSTRLEN + 16], range[32];
	bool have_listen = false;
	int64_t deadline;
	int opt, fd;

	s.sport_lo = 0;
	s.sport_hi = 65535;
	s.timeout = 10;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *dash;

		switch (opt) {
		case 'l':
			if (parse_addr(optarg, true, &s.listen))
				goto bad;
			have_listen = true;
			break;
		case 's':
			if (parse_prefix(optarg, &s.src))
				goto bad;
			s.check_src = true;
			break;
		case 'p':
			snprintf(range, sizeof(range), "%s", optarg);
			dash = strchr(range, '-');
			if (dash)
				*dash = '\0';
			if (parse_uint(range, 0, 65535, &s.sport_lo) ||
			    parse_uint(dash ? dash + 1 : range, s.sport_lo, 65535, &s.sport_hi))
				goto bad;
			break;
		case 'c':
			if (parse_uint(optarg, 1, PROBE_MAX_COUNT, &s.count))
				goto bad;
			break;
		case 't':
			if (parse_uint(optarg, 1, PROBE_MAX_TIMEOUT, &s.timeout))
				goto bad;
			break;
		case 'n':
			s.no_echo = true;
			break;
		case 'E':
			s.echo_any = true;
			break;
		case 'a':
			s.any_count = true;
			break;
		case 'S':
			s.per_sender = true;
			break;
		default:
			usage();
			return 2;
		}
	}
	if (optind != argc || !have_listen || !s.count) {
		usage();
		return 2;
	}
	if (s.check_src && s.src.family != s.listen.ss.ss_family) {
		fprintf(stderr,
			"udpprobe server: --expect-src and --listen are different families\n");
		return 2;
	}

	fd = open_socket(s.listen.ss.ss_family);
	if (fd < 0)
		return 2;
	if (bind(fd, (struct sockaddr *)&s.listen.ss, s.listen.len) < 0) {
		fprintf(stderr, "udpprobe server: cannot bind %s: %s\n",
			addr_str(&s.listen.ss, lbuf, sizeof(lbuf)), strerror(errno));
		close(fd);
		return 2;
	}
	fprintf(stderr, "udpprobe server: listening on %s for %lu datagrams, %lu s\n",
		addr_str(&s.listen.ss, lbuf, sizeof(lbuf)), s.count, s.timeout);

	if (s.any_count) {
		struct sigaction sa = { .sa_handler = on_stop };

		/* No SA_RESTART: poll() returns EINTR and the loop sees the flag. */
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
	}
	deadline = now_us() + (int64_t)s.timeout * 1000000;
	while (s.valid < s.count && !stop_requested) {
		int64_t left = deadline - now_us();
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int rc;

		if (left <= 0)
			break;
		rc = poll(&pfd, 1, poll_ms(left));
		if (rc < 0 && errno != EINTR) {
			fprintf(stderr, "udpprobe server: poll: %s\n", strerror(errno));
			break;
		}
		if (rc <= 0)
			continue;
		for (int i = 0; i < DRAIN_BATCH && s.valid < s.count; i++) {
			struct sockaddr_storage from;
			socklen_t fromlen = sizeof(from);
			ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT,
					     (struct sockaddr *)&from, &fromlen);

			if (n < 0) {
				if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
					fprintf(stderr, "udpprobe server: recv: %s\n",
						strerror(errno));
				break;
			}
			server_handle(&s, fd, buf, n, &from, fromlen, scratch);
		}
	}
	close(fd);
	server_summary(&s);
	if (s.any_count)
		return s.valid >= 1 && s.invalid == 0 ? 0 : 1;
	return s.valid == s.count && s.invalid == 0 ? 0 : 1;

bad:
	fprintf(stderr, "udpprobe server: bad value '%s'\n", optarg);
	usage();
	return 2;
}

/* ---- client ---- */

enum probe_state {
	PROBE_UNSENT = 0,
	PROBE_OUT,    /* sent, echo awaited, holds a window slot */
	PROBE_LATE,   /* sent, echo overdue, slot given back */
	PROBE_ECHOED, /* echoed intact */
};

struct client {
	struct addr to;
	unsigned long count, min_size, max_size, rate, timeout, window;
	double min_fraction; /* of count that must be echoed; 1 = all */
	bool no_wait;        /* one-way: send, expect no echo */
	bool text;           /* compressible payloads (PROBE_TEXT) */
	uint8_t *state;
	int64_t *sent_at;
	unsigned long sent, echoed, corrupt, dups, outstanding, reports;
};

static void client_complain(struct client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void client_complain(struct client *c, const char *fmt, ...)
{
	va_list ap;

	if (c->reports++ >= MAX_REPORTS)
		return;
	fprintf(stderr, "udpprobe client: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

static void client_echo(struct client *c, const uint8_t *buf, ssize_t n,
			const struct sockaddr_storage *from, uint8_t *scratch)
{
	char abuf[INET6_ADDRSTRLEN + 16];
	uint64_t seq;

	if (!addr_equal(from, &c->to.ss)) {
		c->corrupt++;
		client_complain(c, "echo of %zd bytes from unexpected sender %s", n,
				addr_str(from, abuf, sizeof(abuf)));
		return;
	}
	if (n < PROBE_HDR) {
		c->corrupt++;
		client_complain(c, "echo of only %zd bytes", n);
		return;
	}
	/* An echo without our PROBE_TEXT setting becomes a number never sent. */
	seq = probe_seq(buf) ^ (c->text ? PROBE_TEXT : 0);
	if (seq >= c->count || c->state[seq] == PROBE_UNSENT) {
		c->corrupt++;
		client_complain(c, "echo carries sequence number %llu, never sent",
				(unsigned long long)seq);
		return;
	}
	if ((uint32_t)n != probe_size(seq, (uint32_t)c->min_size, (uint32_t)c->max_size) ||
	    !probe_valid(buf, (uint32_t)n, scratch)) {
		c->corrupt++;
		client_complain(c, "echo %llu (%zd bytes) differs from what was sent (%u bytes)",
				(unsigned long long)seq, n,
				probe_size(seq, (uint32_t)c->min_size, (uint32_t)c->max_size));
		return;
	}
	if (c->state[seq] == PROBE_ECHOED) {
		c->dups++;
		return;
	}
	if (c->state[seq] == PROBE_OUT)
		c->outstanding--;
	c->state[seq] = PROBE_ECHOED;
	c->echoed++;
}

/* Reads what has arrived, waiting at most `wait_us` for the first datagram. */
static int client_receive(struct client *c, int fd, int64_t wait_us, uint8_t *buf,
			  uint8_t *scratch)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int rc = poll(&pfd, 1, poll_ms(wait_us));

	if (rc < 0)
		return errno == EINTR ? 0 : -errno;
	if (rc == 0)
		return 0;
	for (int i = 0; i < DRAIN_BATCH; i++) {
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, 65536, MSG_DONTWAIT, (struct sockaddr *)&from,
				     &fromlen);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return 0;
			/* An ICMP error queued on the socket: note it, keep going. */
			client_complain(c, "recv: %s", strerror(errno));
			return 0;
		}
		client_echo(c, buf, n, &from, scratch);
	}
	return 0;
}

static int client_send(struct client *c, int fd, uint64_t seq, uint8_t *buf)
{
	uint32_t len = probe_size(seq, (uint32_t)c->min_size, (uint32_t)c->max_size);

	probe_fill(buf, seq | (c->text ? PROBE_TEXT : 0), len);
	if (sendto(fd, buf, len, 0, (const struct sockaddr *)&c->to.ss, c->to.len) < 0)
		return -errno;
	return 0;
}

static int client_run(struct client *c, int fd)
{
	static uint8_t txbuf[65536], rxbuf[65536], scratch[65536];
	int64_t start = now_us(), send_deadline, wait_deadline;
	uint64_t next = 0, oldest = 0;
	int err;

	/* Sending may take count/rate plus one --timeout of stalls, never more. */
	send_deadline = start + (int64_t)c->timeout * 1000000;
	if (c->rate)
		send_deadline += (int64_t)(c->count * 1000000ULL / c->rate);
	while (next < c->count) {
		int64_t now = now_us(), due, wait;

		if (now >= send_deadline) {
			fprintf(stderr, "udpprobe client: gave up sending after %lu of %lu\n",
				c->sent, c->count);
			break;
		}
		while (oldest < next && c->state[oldest] != PROBE_OUT)
			oldest++;
		if (c->outstanding >= c->window && now - c->sent_at[oldest] >= STALL_US) {
			c->state[oldest] = PROBE_LATE;
			c->outstanding--;
			continue;
		}
		due = c->rate ? start + (int64_t)(next * 1000000ULL / c->rate) : now;
		if (c->outstanding < c->window && now >= due) {
			err = client_send(c, fd, next, txbuf);
			if (err == -ENOBUFS || err == -EAGAIN || err == -EINTR) {
				/* Queue full for a moment: retry soon, the deadline bounds it. */
				err = client_receive(c, fd, 1000, rxbuf, scratch);
				if (err)
					return err;
				continue;
			}
			if (err) {
				fprintf(stderr, "udpprobe client: cannot send datagram %llu: %s\n",
					(unsigned long long)next, strerror(-err));
				break;
			}
			c->sent++;
			next++;
			/* One-way: nothing will free a window slot. */
			if (c->no_wait)
				continue;
			c->state[next - 1] = PROBE_OUT;
			c->sent_at[next - 1] = now;
			c->outstanding++;
			continue;
		}
		wait = c->outstanding < c->window ? due - now : c->sent_at[oldest] + STALL_US - now;
		if (wait > send_deadline - now)
			wait = send_deadline - now;
		err = client_receive(c, fd, wait, rxbuf, scratch);
		if (err)
			return err;
	}

	if (c->no_wait)
		return 0;
	wait_deadline = now_us() + (int64_t)c->timeout * 1000000;
	while (c->echoed < c->sent) {
		int64_t left = wait_deadline - now_us();

		if (left <= 0)
			break;
		err = client_receive(c, fd, left, rxbuf, scratch);
		if (err)
			return err;
	}
	return 0;
}

static int client_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 'o' },
		{ "count", required_argument, NULL, 'c' },
		{ "min-size", required_argument, NULL, 'm' },
		{ "max-size", required_argument, NULL, 'M' },
		{ "rate", required_argument, NULL, 'r' },
		{ "timeout", required_argument, NULL, 't' },
		{ "bind", required_argument, NULL, 'b' },
		{ "window", required_argument, NULL, 'w' },
		{ "min-fraction", required_argument, NULL, 'f' },
		{ "no-wait", no_argument, NULL, 'N' },
		{ "text", no_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	static struct client c;
	unsigned long need;
	char *end;
	struct addr bind_addr;
	bool have_to = false, have_bind = false;
	char abuf[INET6_ADDRSTRLEN + 16];
	int opt, fd, err;

	c.min_size = 16;
	c.max_size = 1400;
	c.rate = 2000;
	c.timeout = 5;
	c.window = 256;
	c.min_fraction = 1.0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			if (parse_addr(optarg, true, &c.to))
				goto bad;
			have_to = true;
			break;
		case 'c':
			if (parse_uint(optarg, 1, PROBE_MAX_COUNT, &c.count))
				goto bad;
			break;
		case 'm':
			if (parse_uint(optarg, PROBE_HDR, PROBE_MAX_SIZE, &c.min_size))
				goto bad;
			break;
		case 'M':
			if (parse_uint(optarg, PROBE_HDR, PROBE_MAX_SIZE, &c.max_size))
				goto bad;
			break;
		case 'r':
			if (parse_uint(optarg, 0, 10000000, &c.rate))
				goto bad;
			break;
		case 't':
			if (parse_uint(optarg, 1, PROBE_MAX_TIMEOUT, &c.timeout))
				goto bad;
			break;
		case 'b':
			if (parse_addr(optarg, false, &bind_addr))
				goto bad;
			have_bind = true;
			break;
		case 'w':
			if (parse_uint(optarg, 1, 1 << 20, &c.window))
				goto bad;
			break;
		case 'f':
			errno = 0;
			c.min_fraction = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(c.min_fraction > 0) ||
			    c.min_fraction > 1)
				goto bad;
			break;
		case 'T':
			c.text = true;
			break;
		case 'N':
			c.no_wait = true;
			break;
		default:
			usage();
			return 2;
		}
	}
	if (optind != argc || !have_to || !c.count) {
		usage();
		return 2;
	}
	if (c.min_size > c.max_size) {
		fprintf(stderr, "udpprobe client: --min-size %lu is above --max-size %lu\n",
			c.min_size, c.max_size);
		return 2;
	}
	if (have_bind && bind_addr.ss.ss_family != c.to.ss.ss_family) {
		fprintf(stderr, "udpprobe client: --bind and --to are different families\n");
		return 2;
	}
	c.state = calloc(c.count, sizeof(*c.state));
	c.sent_at = calloc(c.count, sizeof(*c.sent_at));
	if (!c.state || !c.sent_at) {
		fprintf(stderr, "udpprobe client: out of memory for %lu datagrams\n", c.count);
		return 2;
	}

	fd = open_socket(c.to.ss.ss_family);
	if (fd < 0)
		return 2;
	if (have_bind && bind(fd, (struct sockaddr *)&bind_addr.ss, bind_addr.len) < 0) {
		fprintf(stderr, "udpprobe client: cannot bind %s: %s\n",
			addr_str(&bind_addr.ss, abuf, sizeof(abuf)), strerror(errno));
		close(fd);
		return 2;
	}
	err = client_run(&c, fd);
	close(fd);
	if (err)
		fprintf(stderr, "udpprobe client: %s\n", strerror(-err));
	printf("udpprobe client: sent %lu, echoed %lu intact, %lu corrupt, %lu duplicate\n", c.sent,
	       c.echoed, c.corrupt, c.dups);
	fflush(stdout);
	free(c.state);
	free(c.sent_at);
	/* Rounded up, so that 1.0 still means every single one. */
	need = (unsigned long)(c.min_fraction * (double)c.count);
	if ((double)need < c.min_fraction * (double)c.count)
		need++;
	if (need < c.count)
		printf("udpprobe client: %lu of %lu needed (--min-fraction %g)\n", need, c.count,
		       c.min_fraction);
	if (c.no_wait)
		return !err && c.sent == c.count && c.corrupt == 0 ? 0 : 1;
	return !err && c.echoed >= need && c.corrupt == 0 ? 0 : 1;

bad:
	fprintf(stderr, "udpprobe client: bad value '%s'\n", optarg);
	usage();
	return 2;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "server"))
		return server_main(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "client"))
		return client_main(argc - 1, argv + 1);
	usage();
	return 2;
}
