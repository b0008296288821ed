/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Records shared by the benchmark's BPF programs and their loaders.  One
 * header for both sides, as in bpf/ferry_shared.h, so the generator's
 * settings and the sink's counters cannot drift apart, and bpftool prints
 * the counters with named fields.
 *
 * The generator marks every frame with BENCH_MAGIC at the start of the UDP
 * payload.  The sink only counts and drops marked frames and passes anything
 * else to the kernel, so a latency probe (sockperf, bench_pingpong) can share
 * the server's interface with a background stream.
 */
#ifndef FERRY_BENCH_H
#define FERRY_BENCH_H

#include <linux/types.h>

/* "FERRYBNC": the two 32-bit words as a little-endian load sees them. */
#define BENCH_MAGIC_0 0x52524546u /* "FERR" */
#define BENCH_MAGIC_1 0x434e4259u /* "YBNC" */
#define BENCH_MAGIC_LEN 8

/* Ethernet + IPv4 (no options) + UDP. */
#define BENCH_HDR_LEN (14 + 20 + 8)
#define BENCH_MIN_FRAME (BENCH_HDR_LEN + BENCH_MAGIC_LEN)
#define BENCH_MAX_FRAME 1514

/*
 * What the generator writes into every frame, set in .rodata before load.
 * Addresses and ports are in network byte order.  Frame k of a run (k counts
 * up from 0) goes to flow k % nr_flows; flow i uses source port
 * sport + i % nr_sports and destination port dport + i / nr_sports, so one
 * generator call can open many distinct NAT sessions.
 */
struct bench_gen_cfg {
	__u8 dst_mac[6];
	__u8 src_mac[6];
	__u32 saddr;
	__u32 daddr;
	__u16 sport;        /* first source port, host order */
	__u16 dport;        /* first destination port, host order */
	__u32 nr_flows;     /* >= 1 */
	__u32 nr_sports;    /* >= 1 */
	__u16 frame_len;    /* bytes handed to the device, no FCS */
	__u8 ttl;
	__u8 pad;
	/* One's-complement sum of the UDP payload as the loader wrote it (not folded). */
	__u32 payload_sum;
	/*
	 * Pacing: a token bucket of frames.  rate_fp is frames per nanosecond
	 * times 2^32 (0 = unpaced), burst the bucket's depth in frames.
	 */
	__u64 rate_fp;
	__u32 burst;
	__u32 pad2;
	/* No frame leaves after this many (the load's bound in frames). */
	__u64 max_frames;
};

/* Sink counters, one record per CPU. */
struct bench_sink_stats {
	__u64 packets;      /* marked frames that passed every check */
	__u64 bytes;        /* their frame bytes (no FCS) */
	__u64 bad_dst;      /* marked, but not to this interface's MAC and the expected address:port */
	__u64 bad_ip_csum;  /* IPv4 header checksum wrong */
	__u64 bad_udp_csum; /* UDP checksum wrong (0, "none", counts as wrong too) */
	__u64 other;        /* not a marked frame: passed to the kernel */
	/*
	 * Of packets: those whose payload came XORed with the key of --xor
	 * (mark included), i.e. transformed by an app service or a relay.
	 */
	__u64 xored;
};

/* The MAC of each interface the sink is on (key: ifindex). */
struct bench_mac {
	__u8 addr[6];
	__u16 pad;
};

/* What the sink expects in every marked frame (network order). */
struct bench_sink_cfg {
	__u32 daddr;
	__u16 dport;
	__u8 xor_key; /* 0: only the plain mark; else also the mark XORed with it */
	__u8 pad;
};

/*
 * Copies a MAC out of a `const volatile` .rodata setting.  Casting the
 * volatile away (as in __builtin_memcpy(dst, (void *)cfg.mac, 6)) lets clang
 * fold the read to the zeros the object was compiled with: every byte must
 * be a volatile load.
 */
static inline __attribute__((always_inline)) void bench_copy_mac(__u8 *dst,
								  const volatile __u8 *src)
{
	for (int i = 0; i < 6; i++)
		dst[i] = src[i];
}

#endif /* FERRY_BENCH_H */
