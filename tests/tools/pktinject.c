// SPDX-License-Identifier: BSD-2-Clause
/*
 * pktinject: sends hand-crafted, mostly malformed Ethernet frames from an
 * AF_PACKET socket, for the hostile-input namespace test.
 *
 *   pktinject --dev IFACE --dst-mac MAC --case NAME [--count N]
 *             [--src4 A --dst4 A --src6 A --dst6 A --udp-port P --tcp-port P]
 *             [--udp-sport P] [--vary-src N] [--vary-sport] [--rate PPS]
 *   pktinject --list
 *
 * Each case is one frame of the built-in catalogue (--list prints it), sent
 * --count times (default 1, at most 100000), back to back.  The frames go
 * to --dst-mac from IFACE's own address; the addresses and ports default to
 * the tests' topology (198.18.1.2 -> 198.18.1.1, fd00:1::2 -> fd00:1::1, UDP
 * port 5001, from port 40001 over IPv4, TCP port 5002).  Exit status 0
 * when every frame was sent, 1 when a send failed, 2 for a usage or setup
 * error.
 *
 * Floods of spoofed sources (IPv4 cases): --vary-src N sends frame i from
 * --src4 + i % N (N up to 65536, a /16), and --vary-sport gives each round
 * over the N sources the next source port from 1024 on, so that every frame
 * is a new tuple; --rate paces the frames (default: back to back).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>

#define FRAME_MAX 9000
#define MAX_COUNT 100000
#define PAYLOAD 32 /* bytes of UDP/TCP payload in the ordinary cases */

struct opts {
	uint8_t src_mac[6], dst_mac[6];
	struct in_addr src4, dst4;
	struct in6_addr src6, dst6;
	uint16_t udp_port, tcp_port;
	uint16_t udp_sport, tcp_sport; /* udp_sport: of the IPv4 UDP cases */
};

struct frame {
	uint8_t b[FRAME_MAX];
	size_t len;
};

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static size_t eth(const struct opts *o, uint8_t *b, uint16_t proto)
{
	memcpy(b, o->dst_mac, 6);
	memcpy(b + 6, o->src_mac, 6);
	put16(b + 12, proto);
	return 14;
}

/* An IPv4 header of `ihl` words at `ip`, total length `tot`, checksummed. */
static void ipv4(const struct opts *o, uint8_t *ip, unsigned int ihl, uint16_t tot, uint8_t proto,
		 uint16_t frag)
{
	memset(ip, 0, ihl * 4);
	ip[0] = (uint8_t)(0x40 | ihl);
	put16(ip + 2, tot);
	put16(ip + 4, 0x1234);
	put16(ip + 6, frag);
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, &o->src4, 4);
	memcpy(ip + 16, &o->dst4, 4);
	/* Options: NOPs, then end of list. */
	for (unsigned int i = 20; i < ihl * 4; i++)
		ip[i] = i + 1 < ihl * 4 ? 1 : 0;
	put16(ip + 10, fold(sum16(ip, ihl * 4, 0)));
}

static void payload(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)('a' + i % 26);
}

/* L4 checksum over the IPv4 or IPv6 pseudo-header. */
static uint16_t l4_csum(int family, const uint8_t *ip, const uint8_t *l4, size_t len, uint8_t proto)
{
	uint32_t sum = 0;

	if (family == 4)
		sum = sum16(ip + 12, 8, 0);
	else
		sum = sum16(ip + 8, 32, 0);
	sum += proto + (uint32_t)len;
	sum = sum16(l4, len, sum);
	return fold(sum) ?: 0xffff;
}

static size_t udp(uint8_t *u, uint16_t sport, uint16_t dport, size_t plen)
{
	put16(u, sport);
	put16(u + 2, dport);
	put16(u + 4, (uint16_t)(8 + plen));
	put16(u + 6, 0);
	payload(u + 8, plen);
	return 8 + plen;
}

/* A well-formed IPv4 UDP datagram of `plen` payload bytes, IPv4 header `ihl` words. */
static void udp4(const struct opts *o, struct frame *f, unsigned int ihl, size_t plen)
{
	uint8_t *ip = f->b + eth(o, f->b, ETH_P_IP), *u = ip + ihl * 4;
	size_t ulen = udp(u, o->udp_sport, o->udp_port, plen);

	ipv4(o, ip, ihl, (uint16_t)(ihl * 4 + ulen), IPPROTO_UDP, 0x4000);
	put16(u + 6, l4_csum(4, ip, u, ulen, IPPROTO_UDP));
	f->len = 14 + ihl * 4 + ulen;
}

static void tcp4_plen(const struct opts *o, struct frame *f, uint8_t flags, size_t plen)
{
	uint8_t *ip = f->b + eth(o, f->b, ETH_P_IP), *t = ip + 20;

	memset(t, 0, 20);
	put16(t, o->tcp_sport);
	put16(t + 2, o->tcp_port);
	put16(t + 4, 0x1000);
	t[12] = 5 << 4;
	t[13] = flags;
	put16(t + 14, 65535);
	payload(t + 20, plen);
	ipv4(o, ip, 5, (uint16_t)(20 + 20 + plen), IPPROTO_TCP, 0x4000);
	put16(t + 16, l4_csum(4, ip, t, 20 + plen, IPPROTO_TCP));
	f->len = 14 + 20 + 20 + plen;
}

static void tcp4(const struct opts *o, struct frame *f, uint8_t flags)
{
	tcp4_plen(o, f, flags, PAYLOAD);
}

/*
 * IPv6 UDP behind the extension headers `chain` (next-header values, ending
 * with 17); each is 8 bytes: PadN options, a type-0 routing header with no
 * segments left, an atomic fragment header.
 */
static void udp6(const struct opts *o, struct frame *f, const uint8_t *chain, int n)
{
	uint8_t *ip = f->b + eth(o, f->b, ETH_P_IPV6), *p = ip + 40, *u;
	size_t ulen;

	memset(ip, 0, 40);
	ip[0] = 0x60;
	ip[6] = chain[0];
	ip[7] = 64;
	memcpy(ip + 8, &o->src6, 16);
	memcpy(ip + 24, &o->dst6, 16);
	for (int i = 0; i + 1 < n; i++, p += 8) {
		memset(p, 0, 8);
		p[0] = chain[i + 1];
		if (chain[i] == 0 || chain[i] == 60) {
			p[2] = 1; /* PadN, 4 bytes of padding */
			p[3] = 4;
		} else if (chain[i] == 43) {
			p[2] = 0; /* type 0, segments left 0: ignored by receivers */
		} else if (chain[i] == 44) {
			put16(p + 4, 0x5678); /* offset 0, M=0: an atomic fragment */
		}
	}
	u = p;
	ulen = udp(u, 40003, o->udp_port, PAYLOAD);
	put16(u + 6, l4_csum(6, ip, u, ulen, IPPROTO_UDP));
	put16(ip + 4, (uint16_t)(u + ulen - (ip + 40)));
	f->len = (size_t)(u + ulen - f->b);
}

static void c_ok(const struct opts *o, struct frame *f)
{
	udp4(o, f, 5, PAYLOAD);
}

/* A well-formed datagram in a 1674-byte frame: 1600 bytes trail the IP packet. */
static void c_trailer(const struct opts *o, struct frame *f)
{
	udp4(o, f, 5, PAYLOAD);
	memset(f->b + f->len, 0xee, 1600);
	f->len += 1600;
}

static void c_trunc_ip10(const struct opts *o, struct frame *f)
{
	udp4(o, f, 5, PAYLOAD);
	f->len = 14 + 10;
}

static void c_trunc_ip19(const struct opts *o, struct frame *f)
{
	udp4(o, f, 5, PAYLOAD);
	f->len = 14 + 19;
}

static void c_trunc_udp4(const struct opts *o, struct frame *f)
{
	uint8_t *ip = f->b + 14;

	udp4(o, f, 5, PAYLOAD);
	ipv4(o, ip, 5, 24, IPPROTO_UDP, 0x4000);
	f->len = 14 + 24;
}

static void c_trunc_tcp12(const struct opts *o, struct frame *f)
{
	uint8_t *ip = f->b + 14;

	tcp4(o, f, 0x02);
	ipv4(o, ip, 5, 32, IPPROTO_TCP, 0x4000);
	f->len = 14 + 32;
}

static void c_iplen_long(const struct opts *o, struct frame *f)
{
	udp4(o, f, 5, PAYLOAD);
	ipv4(o, f->b + 14, 5, 20 + 8 + PAYLOAD + 100, IPPROTO_UDP, 0x4000);
}

/* The IP length ends the packet inside the UDP payload; the UDP length disagrees. */
static void c_iplen_short(const struct opts *o, struct frame *f)
{
	udp4(o, f, 5, PAYLOAD);
	ipv4(o, f->b + 14, 5, 20 + 8 + 4, IPPROTO_UDP, 0x4000);
}

static void c_udplen_long(const struct opts *o, struct frame *f)
{
	udp4(o, f, 5, PAYLOAD);
	put16(f->b + 14 + 20 + 4, 8 + PAYLOAD + 10);
}

static void c_udplen_short(const struct opts *o, struct frame *f)
{
	udp4(o, f, 5, PAYLOAD);
	put16(f->b + 14 + 20 + 4, 8 + 2);
}

static void c_bad_ipcsum(const struct opts *o, struct frame *f)
{
	udp4(o, f, 5, PAYLOAD);
	f->b[14 + 10] ^= 0x5a;
}

static void c_bad_udpcsum(const struct opts *o, struct frame *f)
{
	udp4(o, f, 5, PAYLOAD);
	f->b[14 + 20 + 6] ^= 0x5a;
}

static void c_ipv4_options(const struct opts *o, struct frame *f)
{
	udp4(o, f, 6, PAYLOAD);
}

/* Options LSRR (131) or SSRR (137) naming one hop, then end of list. */
static void source_route4(const struct opts *o, struct frame *f, uint8_t type)
{
	uint8_t *ip = f->b + 14;

	udp4(o, f, 7, PAYLOAD);
	ip[20] = type;
	ip[21] = 7; /* type, length, pointer, one address */
	ip[22] = 4;
	memcpy(ip + 23, &o->dst4, 4);
	ip[27] = 0;
	put16(ip + 10, 0);
	put16(ip + 10, fold(sum16(ip, 28, 0)));
}

static void c_ipv4_lsrr(const struct opts *o, struct frame *f)
{
	source_route4(o, f, 131);
}

static void c_ipv4_ssrr(const struct opts *o, struct frame *f)
{
	source_route4(o, f, 137);
}

static void c_frag_first(const struct opts *o, struct frame *f)
{
	udp4(o, f, 5, PAYLOAD);
	/* Says 8 + 64 bytes of UDP, of which this first fragment carries 8 + 32. */
	put16(f->b + 14 + 20 + 4, 8 + PAYLOAD + 32);
	ipv4(o, f->b + 14, 5, 20 + 8 + PAYLOAD, IPPROTO_UDP, 0x2000);
}

static void c_frag_later(const struct opts *o, struct frame *f)
{
	uint8_t *ip = f->b + eth(o, f->b, ETH_P_IP);

	payload(ip + 20, PAYLOAD);
	ipv4(o, ip, 5, 20 + PAYLOAD, IPPROTO_UDP, (8 + PAYLOAD) / 8);
	f->len = 14 + 20 + PAYLOAD;
}

static void c_tcp_synfin(const struct opts *o, struct frame *f)
{
	tcp4(o, f, 0x03);
}

static void c_tcp_noflags(const struct opts *o, struct frame *f)
{
	tcp4(o, f, 0x00);
}

static void c_tcp_allflags(const struct opts *o, struct frame *f)
{
	tcp4(o, f, 0xff);
}

static void c_v6_ok(const struct opts *o, struct frame *f)
{
	static const uint8_t chain[] = {IPPROTO_UDP};

	udp6(o, f, chain, 1);
}

static void c_v6_hbh(const struct opts *o, struct frame *f)
{
	static const uint8_t chain[] = {0, IPPROTO_UDP};

	udp6(o, f, chain, 2);
}

static void c_v6_routing(const struct opts *o, struct frame *f)
{
	static const uint8_t chain[] = {43, IPPROTO_UDP};

	udp6(o, f, chain, 2);
}

static void c_v6_frag(const struct opts *o, struct frame *f)
{
	static const uint8_t chain[] = {44, IPPROTO_UDP};

	udp6(o, f, chain, 2);
}

static void c_v6_dstopts(const struct opts *o, struct frame *f)
{
	static const uint8_t chain[] = {60, IPPROTO_UDP};

	udp6(o, f, chain, 2);
}

static void c_v6_chain(const struct opts *o, struct frame *f)
{
	static const uint8_t chain[] = {0, 60, 43, 44, IPPROTO_UDP};

	udp6(o, f, chain, 5);
}

static void c_tcp_syn(const struct opts *o, struct frame *f)
{
	tcp4_plen(o, f, 0x02, 0);
}

static void c_over_mtu(const struct opts *o, struct frame *f)
{
	udp4(o, f, 5, 1700 - 14 - 20 - 8);
}

static void c_over_frame(const struct opts *o, struct frame *f)
{
	udp4(o, f, 5, 2600 - 14 - 20 - 8);
}

static const struct {
	const char *name;
	void (*build)(const struct opts *o, struct frame *f);
	const char *what;
} cases[] = {
    {"ok", c_ok, "a well-formed IPv4 UDP datagram"},
    {"trunc-ip-10", c_trunc_ip10, "frame ends 10 bytes into the IPv4 header"},
    {"trunc-ip-19", c_trunc_ip19, "frame ends 19 bytes into the IPv4 header"},
    {"trunc-udp-4", c_trunc_udp4, "IPv4 packet with 4 bytes of UDP header"},
    {"trunc-tcp-12", c_trunc_tcp12, "IPv4 packet with 12 bytes of TCP header"},
    {"iplen-long", c_iplen_long, "IPv4 total length 100 bytes past the frame"},
    {"iplen-short", c_iplen_short, "IPv4 total length ends inside the UDP payload"},
    {"udplen-long", c_udplen_long, "UDP length 10 bytes past the IP packet"},
    {"udplen-short", c_udplen_short, "UDP length shorter than the IP payload"},
    {"bad-ipcsum", c_bad_ipcsum, "IPv4 header checksum wrong"},
    {"bad-udpcsum", c_bad_udpcsum, "UDP checksum wrong"},
    {"ipv4-options", c_ipv4_options, "IPv4 header with 4 bytes of options"},
    {"ipv4-lsrr", c_ipv4_lsrr, "IPv4 loose source route option (131), then UDP"},
    {"ipv4-ssrr", c_ipv4_ssrr, "IPv4 strict source route option (137), then UDP"},
    {"frag-first", c_frag_first, "first IPv4 fragment (MF, offset 0)"},
    {"frag-later", c_frag_later, "later IPv4 fragment (offset 40)"},
    {"tcp-syn", c_tcp_syn, "a bare TCP SYN, no payload"},
    {"tcp-synfin", c_tcp_synfin, "TCP SYN+FIN"},
    {"tcp-noflags", c_tcp_noflags, "TCP without any flag"},
    {"tcp-allflags", c_tcp_allflags, "TCP with all eight flags"},
    {"v6-ok", c_v6_ok, "a well-formed IPv6 UDP datagram"},
    {"v6-hbh", c_v6_hbh, "IPv6 hop-by-hop options, then UDP"},
    {"v6-routing", c_v6_routing, "IPv6 routing header, then UDP"},
    {"v6-frag", c_v6_frag, "IPv6 fragment header (atomic), then UDP"},
    {"v6-dstopts", c_v6_dstopts, "IPv6 destination options, then UDP"},
    {"v6-chain", c_v6_chain, "IPv6 hop-by-hop, dest opts, routing, fragment, UDP"},
    {"over-mtu", c_over_mtu, "1700-byte frame: over a 1500 MTU"},
    {"over-frame", c_over_frame, "2600-byte frame: over a 2048-byte UMEM frame"},
    {"trailer", c_trailer, "a 74-byte IPv4 UDP datagram with 1600 bytes of trailer"},
};

#define NR_CASES (sizeof(cases) / sizeof(cases[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: pktinject --dev IFACE --dst-mac MAC --case NAME [--count N]\n"
		     "                 [--src4 A] [--dst4 A] [--src6 A] [--dst6 A]\n"
		     "                 [--udp-port P] [--tcp-port P] [--udp-sport P]\n"
		     "                 [--vary-src N] [--vary-sport] [--rate PPS]\n"
		     "       pktinject --list\n");
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int m[6];

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (m[i] > 0xff)
			return -EINVAL;
		mac[i] = (uint8_t)m[i];
	}
	return 0;
}

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end || v < 1 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
	    {"dev", required_argument, NULL, 'd'},
	    {"dst-mac", required_argument, NULL, 'm'},
	    {"case", required_argument, NULL, 'c'},
	    {"count", required_argument, NULL, 'n'},
	    {"src4", required_argument, NULL, '4'},
	    {"dst4", required_argument, NULL, '5'},
	    {"src6", required_argument, NULL, '6'},
	    {"dst6", required_argument, NULL, '7'},
	    {"udp-port", required_argument, NULL, 'u'},
	    {"tcp-port", required_argument, NULL, 't'},
	    {"udp-sport", required_argument, NULL, 's'},
	    {"vary-src", required_argument, NULL, 'v'},
	    {"vary-sport", no_argument, NULL, 'V'},
	    {"rate", required_argument, NULL, 'r'},
	    {"list", no_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {},
	};
	const char *dev = NULL, *name = NULL;
	struct sockaddr_ll sll = {.sll_family = AF_PACKET};
	struct opts o = {.udp_port = 5001, .tcp_port = 5002, .udp_sport = 40001, .tcp_sport = 40002};
	long vary_src = 0, rate = 0;
	bool vary_sport = false;
	struct timespec start;
	uint32_t src_base;
	static struct frame f;
	bool have_mac = false;
	long count = 1;
	struct ifreq ifr;
	int opt, fd, c = -1;

	inet_pton(AF_INET, "198.18.1.2", &o.src4);
	inet_pton(AF_INET, "198.18.1.1", &o.dst4);
	inet_pton(AF_INET6, "fd00:1::2", &o.src6);
	inet_pton(AF_INET6, "fd00:1::1", &o.dst6);
	while ((opt = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		int bad = 0;

		switch (opt) {
		case 'd':
			dev = optarg;
			break;
		case 'm':
			bad = parse_mac(optarg, o.dst_mac);
			have_mac = true;
			break;
		case 'c':
			name = optarg;
			break;
		case 'n':
			count = strtol(optarg, NULL, 10);
			bad = count < 1 || count > MAX_COUNT;
			break;
		case '4':
			bad = inet_pton(AF_INET, optarg, &o.src4) != 1;
			break;
		case '5':
			bad = inet_pton(AF_INET, optarg, &o.dst4) != 1;
			break;
		case '6':
			bad = inet_pton(AF_INET6, optarg, &o.src6) != 1;
			break;
		case '7':
			bad = inet_pton(AF_INET6, optarg, &o.dst6) != 1;
			break;
		case 'u':
			bad = parse_port(optarg, &o.udp_port);
			break;
		case 't':
			bad = parse_port(optarg, &o.tcp_port);
			break;
		case 's':
			bad = parse_port(optarg, &o.udp_sport);
			break;
		case 'v':
			vary_src = strtol(optarg, NULL, 10);
			bad = vary_src < 1 || vary_src > 65536;
			break;
		case 'V':
			vary_sport = true;
			break;
		case 'r':
			rate = strtol(optarg, NULL, 10);
			bad = rate < 1 || rate > 10000000;
			break;
		case 'l':
			for (size_t i = 0; i < NR_CASES; i++)
				printf("%-14s %s\n", cases[i].name, cases[i].what);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (bad) {
			fprintf(stderr, "pktinject: bad value '%s'\n", optarg);
			return 2;
		}
	}
	if (!dev || !have_mac || !name || optind != argc) {
		usage(stderr);
		return 2;
	}
	for (size_t i = 0; i < NR_CASES; i++)
		if (!strcmp(name, cases[i].name))
			c = (int)i;
	if (c < 0) {
		fprintf(stderr, "pktinject: no case '%s' (see --list)\n", name);
		return 2;
	}

	fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0) {
		fprintf(stderr, "pktinject: AF_PACKET socket: %s\n", strerror(errno));
		return 2;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr)) {
		fprintf(stderr, "pktinject: %s: cannot read its address: %s\n", dev,
			strerror(errno));
		close(fd);
		return 2;
	}
	memcpy(o.src_mac, ifr.ifr_hwaddr.sa_data, 6);
	sll.sll_ifindex = (int)if_nametoindex(dev);
	sll.sll_halen = 6;
	memcpy(sll.sll_addr, o.dst_mac, 6);

	memset(&f, 0, sizeof(f));
	cases[c].build(&o, &f);
	src_base = ntohl(o.src4.s_addr);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (long i = 0; i < count; i++) {
		if (vary_src || vary_sport) {
			long n = vary_src ? vary_src : 1;

			o.src4.s_addr = htonl(src_base + (uint32_t)(i % n));
			if (vary_sport)
				o.udp_sport = o.tcp_sport = (uint16_t)(1024 + (i / n) % 64512);
			cases[c].build(&o, &f);
		}
		if (rate) {
			/* Frame i is due i / rate seconds after the start. */
			struct timespec now;
			double due = (double)i / (double)rate, at;

			clock_gettime(CLOCK_MONOTONIC, &now);
			at = (double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9;
			/* Ahead by a millisecond or more: small bursts, few sleeps. */
			if (at + 0.001 < due)
				usleep((useconds_t)((due - at) * 1e6));
		}
		if (sendto(fd, f.b, f.len, 0, (struct sockaddr *)&sll, sizeof(sll)) !=
		    (ssize_t)f.len) {
			fprintf(stderr, "pktinject: %s: frame %ld of %zu bytes: %s\n", name, i,
				f.len, strerror(errno));
			close(fd);
			return 1;
		}
	}
	printf("pktinject: %s: sent %ld frames of %zu bytes\n", name, count, f.len);
	close(fd);
	return 0;
}
