// SPDX-License-Identifier: BSD-2-Clause
/*
 * compress and decompress through the real chain runner (svc_harness):
 * every payload comes back byte for byte, whole frame included, over IPv4
 * and IPv6, for many sizes and contents; what travels between them has the
 * documented header, valid checksums and inflates with plain zlib; what
 * cannot shrink goes STORED; and anything decompress is handed that is not
 * exactly a payload of the format (wrong magic, version or flags, any
 * truncation, a wrong length, trailing bytes, more than max_size or the
 * frame holds, random garbage, a wrong checksum on arrival) is dropped as
 * bad_payload or too_big, without a crash and without losing a frame.  ASan
 * (make asan) turns any out-of-bounds access of the services into a failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "csum.h"
#include "daemon.h"
#include "svc_harness.h"
#include "unit.h"
#include "worker.h"

#define HDR 4
#define MAGIC 0xfc
#define F_STORED 0x1
#define MAX_STORED_PAYLOAD (4096 - 42 - HDR) /* a harness frame holds 4096 bytes */

/* Stands in for forward: sends whatever reaches it out of port 1. */
static void cz_sink_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	for (uint32_t i = 0; i < b->n; i++)
		ferry_pkt_tx(b->pkts[i], 1);
}

static const struct ferry_service_ops cz_sink_ops = {
	.name = "cz_test_sink",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.process = cz_sink_process,
};

static struct svc_harness *make_match(const char *match, const char *svc)
{
	char yaml[512];
	struct svc_harness *h;

	harness__add_service(&cz_sink_ops);
	snprintf(yaml, sizeof(yaml), "[ %s, cz_test_sink ]", svc);
	h = match ? harness__create_match(match, yaml) : harness__create(yaml);
	CU_ASSERT_PTR_NOT_NULL(h);
	return h;
}

static struct svc_harness *make(const char *svc)
{
	return make_match(NULL, svc);
}

static void counters(struct svc_harness *h, uint64_t out[FERRY_SERVICE_COUNTERS])
{
	struct ferry_worker *w = harness__worker(h);
	const struct flow_chain *ch = &w->d->flows[0];

	memset(out, 0, FERRY_SERVICE_COUNTERS * sizeof(out[0]));
	ch->ops[0]->stats(ch->conf[0], w->svc_state[0][0], out);
}

static uint64_t rng_state = 0x1234567887654321ull;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

enum content { C_RANDOM, C_ZEROS, C_TEXT, C_MIXED, C__MAX };

static void fill(uint8_t *buf, uint32_t len, enum content kind)
{
	static const char *const words[] = { "ferry ", "packet ", "deflate ", "udp ",
					     "proxy ", "the ",	  "stream ",  "\n" };
	uint32_t i = 0;

	switch (kind) {
	case C_RANDOM:
		for (; i < len; i++)
			buf[i] = (uint8_t)rnd();
		break;
	case C_ZEROS:
		memset(buf, 0, len);
		break;
	case C_TEXT:
	case C_MIXED:
		while (i < len) {
			const char *w = words[rnd() % 8];

			for (size_t k = 0; w[k] && i < len; k++)
				buf[i++] = (uint8_t)w[k];
		}
		if (kind == C_MIXED)
			for (i = len / 2; i < len; i++)
				buf[i] = (uint8_t)rnd();
		break;
	default:
		break;
	}
}

/* Runs one frame through h; returns the output (NULL when dropped). */
static const struct harness_out *run1(struct svc_harness *h, const uint8_t *frame, uint32_t len)
{
	const uint8_t *frames[1] = { frame };
	uint32_t lens[1] = { len }, before = harness__nr_out(h);

	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 1), 1);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	CU_ASSERT_EQUAL(harness__held_frames(h), 0);
	if (harness__nr_out(h) == before)
		return NULL;
	CU_ASSERT_EQUAL_FATAL(harness__nr_out(h), before + 1);
	return harness__out(h, before);
}

/* Parses an output frame and checks both checksums; returns its payload length or -1. */
static int out_payload(const struct harness_out *o, struct pkt_info *pi)
{
	if (pkt_parse(o->data, o->len, pi) != PKT_OK)
		return -1;
	CU_ASSERT(csum_verify(o->data, pi));
	return pi->pkt_len - pi->payload_off;
}

/* The test's own inflate of a compressed payload: the format is plain raw deflate. */
static int zlib_inflate(const uint8_t *in, uint32_t len, uint8_t *out, uint32_t cap)
{
	z_stream zs = { 0 };
	int ret, n;

	if (inflateInit2(&zs, -15) != Z_OK)
		return -1;
	zs.next_in = (uint8_t *)in;
	zs.avail_in = len;
	zs.next_out = out;
	zs.avail_out = cap;
	ret = inflate(&zs, Z_FINISH);
	n = ret == Z_STREAM_END && !zs.avail_in ? (int)zs.total_out : -1;
	inflateEnd(&zs);
	return n;
}

/* A compressed payload built by the test itself: header + raw deflate of data. */
static uint32_t zlib_payload(uint8_t *out, uint32_t cap, const uint8_t *data, uint32_t len,
			     uint32_t claimed_len, int window_bits)
{
	z_stream zs = { 0 };

	CU_ASSERT_FATAL(deflateInit2(&zs, 9, Z_DEFLATED, -window_bits, 8, Z_DEFAULT_STRATEGY) ==
			Z_OK);
	out[0] = MAGIC;
	out[1] = 0x10;
	out[2] = (uint8_t)(claimed_len >> 8);
	out[3] = (uint8_t)claimed_len;
	zs.next_in = (uint8_t *)data;
	zs.avail_in = len;
	zs.next_out = out + HDR;
	zs.avail_out = cap - HDR;
	CU_ASSERT_FATAL(deflate(&zs, Z_FINISH) == Z_STREAM_END);
	len = (uint32_t)zs.total_out + HDR;
	deflateEnd(&zs);
	return len;
}

struct rt_stats {
	uint32_t compressed, stored;
};

/* One payload through compress, then decompress: the original frame must come back. */
static void roundtrip(struct svc_harness *hc, struct svc_harness *hd, const uint8_t *payload,
		      uint32_t len, bool v6, struct rt_stats *rs)
{
	static uint8_t frame[8192], mid[8192], check[8192];
	const struct harness_out *o;
	struct pkt_info pi;
	uint32_t flen, mlen, orig;
	int plen;

	if (v6)
		flen = harness__udp6(frame, "fd00:1::2", 4321, "fd00:1::1", 5000, payload, len);
	else
		flen = harness__udp4(frame, "198.18.1.2", 4321, "198.18.1.1", 5000, payload, len);
	o = run1(hc, frame, flen);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	plen = out_payload(o, &pi);
	CU_ASSERT_FATAL(plen >= HDR);
	mlen = o->len;
	memcpy(mid, o->data, mlen);
	CU_ASSERT_EQUAL(mid[pi.payload_off], MAGIC);
	CU_ASSERT_EQUAL(mid[pi.payload_off + 1] >> 4, 1);
	orig = (uint32_t)mid[pi.payload_off + 2] << 8 | mid[pi.payload_off + 3];
	CU_ASSERT_EQUAL(orig, len);
	if (mid[pi.payload_off + 1] & F_STORED) {
		rs->stored++;
		CU_ASSERT_EQUAL((uint32_t)plen, len + HDR);
		CU_ASSERT(!memcmp(mid + pi.payload_off + HDR, payload, len));
	} else {
		rs->compressed++;
		CU_ASSERT((uint32_t)plen < len);
		/* Anyone's inflate restores it: the format is documented raw deflate. */
		CU_ASSERT_EQUAL(zlib_inflate(mid + pi.payload_off + HDR, (uint32_t)plen - HDR,
					     check, sizeof(check)),
				(int)len);
		CU_ASSERT(!memcmp(check, payload, len));
	}
	o = run1(hd, mid, mlen);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_EQUAL(out_payload(o, &pi), (int)len);
	/* Lengths and checksums recomputed: the very same frame as the client sent. */
	CU_ASSERT_EQUAL_FATAL(o->len, flen);
	CU_ASSERT(!memcmp(o->data, frame, flen));
	harness__clear_out(hc);
	harness__clear_out(hd);
}

static const uint32_t sizes[] = { 0,	1,    2,    3,	  4,	5,    7,    8,
				  16,	31,   32,   63,	  64,	65,   100,  127,
				  128,	255,  256,  257,  500,	512,  999,  1000,
				  1200, 1399, 1400, 1472, 2000, 3000, 4000, MAX_STORED_PAYLOAD };

static void test_roundtrip(void)
{
	struct svc_harness *hc = make("{compress: {min_size: 0}}");
	struct svc_harness *hd = make("decompress");
	static uint8_t payload[8192];
	struct rt_stats rs = { 0 };
	uint64_t c[FERRY_SERVICE_COUNTERS];

	if (!hc || !hd)
		goto out;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (int kind = 0; kind < C__MAX; kind++) {
			fill(payload, sizes[i], (enum content)kind);
			roundtrip(hc, hd, payload, sizes[i], false, &rs);
		}
	}
	/* Text and zeros shrink; random bytes do not and travel stored. */
	CU_ASSERT(rs.compressed > 60);
	CU_ASSERT(rs.stored > 30);
	counters(hc, c);
	CU_ASSERT_EQUAL(c[0], rs.compressed);
	CU_ASSERT_EQUAL(c[1], rs.stored);
	CU_ASSERT(c[3] > 0);
	counters(hd, c);
	CU_ASSERT_EQUAL(c[0], rs.compressed);
	CU_ASSERT_EQUAL(c[1], rs.stored);
	CU_ASSERT_EQUAL(harness__flow_stats(hc)->drop_bad_payload, 0);
	CU_ASSERT_EQUAL(harness__flow_stats(hd)->drop_bad_payload, 0);
out:
	harness__destroy(hc);
	harness__destroy(hd);
}

static void test_roundtrip_v6_levels(void)
{
	static const char *const levels[] = { "{compress: {level: 1, min_size: 0}}",
					      "{compress: {level: 5}}", "{compress: {level: 9}}" };
	const char *match = "{protocol: udp, destination: fd00:1::1, port: 5000}";
	static uint8_t payload[8192];

	for (size_t l = 0; l < 3; l++) {
		struct svc_harness *hc = make_match(match, levels[l]);
		struct svc_harness *hd = make_match(match, "{decompress: {max_size: 4096}}");
		struct rt_stats rs = { 0 };

		if (!hc || !hd) {
			harness__destroy(hc);
			harness__destroy(hd);
			return;
		}
		for (int n = 0; n < 200; n++) {
			uint32_t len = (uint32_t)(rnd() % 1453);

			fill(payload, len, (enum content)(rnd() % C__MAX));
			roundtrip(hc, hd, payload, len, true, &rs);
		}
		CU_ASSERT(rs.compressed > 0);
		harness__destroy(hc);
		harness__destroy(hd);
	}
}

/* Under min_size, or not shrinking by more than the header: STORED. */
static void test_stored(void)
{
	struct svc_harness *hc = make("{compress: {min_size: 100}}");
	struct svc_harness *hd = make("decompress");
	static uint8_t payload[2048];
	struct rt_stats rs = { 0 };
	uint64_t c[FERRY_SERVICE_COUNTERS];

	if (!hc || !hd)
		goto out;
	memset(payload, 'a', sizeof(payload));
	roundtrip(hc, hd, payload, 99, false, &rs);
	CU_ASSERT_EQUAL(rs.stored, 1);
	roundtrip(hc, hd, payload, 100, false, &rs);
	CU_ASSERT_EQUAL(rs.compressed, 1);
	fill(payload, 1400, C_RANDOM);
	roundtrip(hc, hd, payload, 1400, false, &rs);
	CU_ASSERT_EQUAL(rs.stored, 2);
	counters(hc, c);
	CU_ASSERT_EQUAL(c[0], 1);
	CU_ASSERT_EQUAL(c[1], 2);
	CU_ASSERT_EQUAL(c[2], 99 + 100 + 1400);
	/* bytes_saved: the 100 'a's minus what they became with the header. */
	CU_ASSERT(c[3] > 80 && c[3] < 100);
out:
	harness__destroy(hc);
	harness__destroy(hd);
}

/* A payload that would not fit its frame once stored: dropped as too_big, frame freed. */
static void test_stored_no_room(void)
{
	struct svc_harness *hc = make("compress");
	static uint8_t payload[8192], frame[8192];
	uint32_t flen;

	if (!hc)
		return;
	fill(payload, MAX_STORED_PAYLOAD + 1, C_RANDOM);
	flen = harness__udp4(frame, "198.18.1.2", 1, "198.18.1.1", 5000, payload,
			     MAX_STORED_PAYLOAD + 1);
	CU_ASSERT_PTR_NULL(run1(hc, frame, flen));
	CU_ASSERT_EQUAL(harness__flow_stats(hc)->drop_too_big, 1);
	harness__destroy(hc);
}

/* Sends `payload` to decompress; returns the output's payload length, or -1 when dropped. */
static int decompress_raw(struct svc_harness *hd, const uint8_t *payload, uint32_t len,
			  uint8_t *out)
{
	static uint8_t frame[8192];
	const struct harness_out *o;
	struct pkt_info pi;
	int plen;

	o = run1(hd, frame,
		 harness__udp4(frame, "198.18.1.2", 1, "198.18.1.1", 5000, payload, len));
	if (!o)
		return -1;
	plen = out_payload(o, &pi);
	if (out && plen > 0)
		memcpy(out, o->data + pi.payload_off, (size_t)plen);
	harness__clear_out(hd);
	return plen;
}

static void test_corrupt(void)
{
	struct svc_harness *hd = make("decompress");
	static uint8_t data[2048], pl[4096], bad[4096], out[8192];
	uint32_t n, drops = 0;

	if (!hd)
		return;
	fill(data, 1000, C_TEXT);
	n = zlib_payload(pl, sizeof(pl), data, 1000, 1000, 15);
	/* The test's own payload is accepted: any window up to 32 KiB. */
	CU_ASSERT_EQUAL(decompress_raw(hd, pl, n, out), 1000);
	CU_ASSERT(!memcmp(out, data, 1000));

	/* Every truncation, header included. */
	for (uint32_t cut = 0; cut < n; cut++) {
		CU_ASSERT_EQUAL(decompress_raw(hd, pl, cut, NULL), -1);
		drops++;
	}
	/* Trailing bytes after the stream. */
	memcpy(bad, pl, n);
	bad[n] = 0;
	CU_ASSERT_EQUAL(decompress_raw(hd, bad, n + 1, NULL), -1);
	drops++;
	/* Header: magic, version, reserved flags, lengths off by one either way. */
	for (int k = 0; k < 6; k++) {
		memcpy(bad, pl, n);
		switch (k) {
		case 0:
			bad[0] ^= 0x01;
			break;
		case 1:
			bad[1] = 0x20;
			break;
		case 2:
			bad[1] = 0x12;
			break;
		case 3:
			bad[1] = 0x18;
			break;
		case 4:
			bad[3] = (uint8_t)(1000 - 1);
			break;
		default:
			bad[3] = (uint8_t)(1000 + 1);
			break;
		}
		CU_ASSERT_EQUAL(decompress_raw(hd, bad, n, NULL), -1);
		drops++;
	}
	/* STORED with a length that disagrees with the payload. */
	bad[0] = MAGIC;
	bad[1] = 0x10 | F_STORED;
	bad[2] = 0;
	bad[3] = 10;
	memset(bad + HDR, 'x', 11);
	CU_ASSERT_EQUAL(decompress_raw(hd, bad, HDR + 11, NULL), -1);
	CU_ASSERT_EQUAL(decompress_raw(hd, bad, HDR + 9, NULL), -1);
	CU_ASSERT_EQUAL(decompress_raw(hd, bad, HDR + 10, out), 10);
	drops += 2;
	/* Plain payloads that never went through compress. */
	CU_ASSERT_EQUAL(decompress_raw(hd, (const uint8_t *)"hello, world", 12, NULL), -1);
	drops++;
	CU_ASSERT_EQUAL(harness__flow_stats(hd)->drop_bad_payload, drops);
	CU_ASSERT_EQUAL(harness__check_frames(hd), 0);
	harness__destroy(hd);
}

/* max_size and the frame's room bound what decompress writes. */
static void test_max_size(void)
{
	struct svc_harness *hd = make("{decompress: {max_size: 100}}");
	struct svc_harness *hd2 = make("decompress");
	static uint8_t data[8192], pl[8192], out[8192];
	uint32_t n;

	if (!hd || !hd2)
		goto out;
	memset(data, 'z', sizeof(data));
	n = zlib_payload(pl, sizeof(pl), data, 100, 100, 12);
	CU_ASSERT_EQUAL(decompress_raw(hd, pl, n, out), 100);
	n = zlib_payload(pl, sizeof(pl), data, 101, 101, 12);
	CU_ASSERT_EQUAL(decompress_raw(hd, pl, n, NULL), -1);
	CU_ASSERT_EQUAL(harness__flow_stats(hd)->drop_bad_payload, 1);
	/* STORED is bounded as well. */
	pl[0] = MAGIC;
	pl[1] = 0x10 | F_STORED;
	pl[2] = 0;
	pl[3] = 101;
	memset(pl + HDR, 'q', 101);
	CU_ASSERT_EQUAL(decompress_raw(hd, pl, HDR + 101, NULL), -1);
	CU_ASSERT_EQUAL(harness__flow_stats(hd)->drop_bad_payload, 2);

	/* A stream that is honest about 8000 bytes, which no 4096-byte frame holds. */
	n = zlib_payload(pl, sizeof(pl), data, 8000, 8000, 15);
	CU_ASSERT_EQUAL(decompress_raw(hd2, pl, n, NULL), -1);
	CU_ASSERT_EQUAL(harness__flow_stats(hd2)->drop_too_big, 1);
	/* A stream that inflates to far more than its header claims. */
	n = zlib_payload(pl, sizeof(pl), data, 8000, 1000, 15);
	CU_ASSERT_EQUAL(decompress_raw(hd2, pl, n, NULL), -1);
	CU_ASSERT_EQUAL(harness__flow_stats(hd2)->drop_bad_payload, 1);
out:
	harness__destroy(hd);
	harness__destroy(hd2);
}

/*
 * Random garbage behind a valid header, and random mutations of valid
 * payloads: each is either dropped as bad_payload or comes out with exactly
 * the length its header claims and valid checksums (a flipped literal can
 * still be a valid stream); frames are never lost.
 */
static void test_fuzz(void)
{
	struct svc_harness *hd = make("{decompress: {max_size: 3000}}");
	static uint8_t data[2048], pl[4096], bad[4096], out[8192];
	uint32_t n, dropped = 0, passed = 0;

	if (!hd)
		return;
	fill(data, 1200, C_TEXT);
	n = zlib_payload(pl, sizeof(pl), data, 1200, 1200, 12);
	for (int iter = 0; iter < 20000; iter++) {
		uint32_t len, claimed;
		int got;

		if (iter % 2) {
			len = (uint32_t)(rnd() % 1500);
			for (uint32_t i = 0; i < len; i++)
				bad[i] = (uint8_t)rnd();
			if (len >= HDR && rnd() % 4) {
				bad[0] = MAGIC;
				bad[1] = (uint8_t)(0x10 | (rnd() % 4 == 0 ? F_STORED : 0));
			}
		} else {
			len = n;
			memcpy(bad, pl, n);
			for (uint64_t m = rnd() % 4 + 1; m; m--)
				bad[HDR + rnd() % (n - HDR)] ^= (uint8_t)(1u << (rnd() % 8));
			if (rnd() % 8 == 0)
				len = HDR + (uint32_t)(rnd() % (n - HDR));
		}
		claimed = len >= HDR ? (uint32_t)bad[2] << 8 | bad[3] : 0;
		got = decompress_raw(hd, bad, len, out);
		if (got < 0) {
			dropped++;
		} else {
			passed++;
			CU_ASSERT_EQUAL(got, (int)claimed);
		}
	}
	CU_ASSERT(dropped > 0);
	CU_ASSERT_EQUAL(harness__flow_stats(hd)->drop_bad_payload +
			    harness__flow_stats(hd)->drop_too_big,
			dropped);
	CU_ASSERT_EQUAL(harness__check_frames(hd), 0);
	CU_ASSERT_EQUAL(harness__held_frames(hd), 0);
	harness__destroy(hd);
}

/*
 * A packet that arrives with a wrong checksum is dropped, not given a fresh
 * one: on either side, the receiver would otherwise never learn of the
 * corruption.  A UDP/IPv4 checksum of 0 (none) is fine.
 */
static void test_bad_checksum(void)
{
	struct svc_harness *hc = make("compress");
	struct svc_harness *hd = make("decompress");
	static uint8_t payload[600], frame[1024], mid[1024];
	const struct harness_out *o;
	uint32_t flen, mlen;

	if (!hc || !hd)
		goto out;
	memset(payload, 'c', sizeof(payload));
	flen = harness__udp4(frame, "198.18.1.2", 1, "198.18.1.1", 5000, payload, 600);
	o = run1(hc, frame, flen);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	mlen = o->len;
	memcpy(mid, o->data, mlen);
	/* A bit flipped on the way, in the payload or the header. */
	frame[100] ^= 0x10;
	CU_ASSERT_PTR_NULL(run1(hc, frame, flen));
	frame[100] ^= 0x10;
	frame[22] ^= 0x01; /* TTL: the IPv4 header checksum no longer holds */
	CU_ASSERT_PTR_NULL(run1(hc, frame, flen));
	frame[22] ^= 0x01;
	CU_ASSERT_EQUAL(harness__flow_stats(hc)->drop_bad_payload, 2);
	mid[mlen - 1] ^= 0x01;
	CU_ASSERT_PTR_NULL(run1(hd, mid, mlen));
	CU_ASSERT_EQUAL(harness__flow_stats(hd)->drop_bad_payload, 1);
	mid[mlen - 1] ^= 0x01;
	CU_ASSERT_PTR_NOT_NULL(run1(hd, mid, mlen));
	/* No UDP checksum at all: accepted, and the output gets one. */
	frame[40] = frame[41] = 0;
	o = run1(hc, frame, flen);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT(o->data[40] || o->data[41]);
out:
	harness__destroy(hc);
	harness__destroy(hd);
}

/* The direction argument: by default only the clients' packets are touched. */
static void test_direction(void)
{
	struct svc_harness *hc = make("compress");
	struct svc_harness *hr = make("{compress: {direction: reply}}");
	static uint8_t payload[512], frame[1024];
	const struct harness_out *o;
	uint32_t flen;

	if (!hc || !hr)
		goto out;
	memset(payload, 'r', sizeof(payload));
	flen = harness__udp4(frame, "198.18.1.2", 1, "198.18.1.1", 5000, payload, 512);
	harness__set_dir(hc, FERRY_DIR_REPLY);
	o = run1(hc, frame, flen);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_EQUAL(o->len, flen);
	CU_ASSERT(!memcmp(o->data, frame, flen));
	harness__set_dir(hr, FERRY_DIR_REPLY);
	o = run1(hr, frame, flen);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT(o->len < flen);
	harness__set_dir(hr, FERRY_DIR_CLIENT);
	o = run1(hr, frame, flen);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_EQUAL(o->len, flen);
out:
	harness__destroy(hc);
	harness__destroy(hr);
}

static int config_errors(const char *match, const char *svc, const char *expect)
{
	char yaml[1024];
	struct ferry_config cfg;
	struct cfg_errors errs = { .capture = strdup("") };
	const struct ferry_service_ops *ops;
	struct ferry_flow_ctx fc = { 0 };
	void *conf = NULL;
	int err;

	snprintf(yaml, sizeof(yaml),
		 "interfaces: [{name: a}]\n"
		 "flows:\n"
		 "  - name: f\n"
		 "    match: %s\n"
		 "    services: [%s]\n",
		 match, svc);
	err = config__load_string(&cfg, "t.yaml", yaml, &errs);
	CU_ASSERT_EQUAL_FATAL(err, 0);
	fc.flow = &cfg.flows[0];
	ops = service__find(cfg.flows[0].services[0].name);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ops);
	err = ops->configure(&fc, cfg.flows[0].services[0].args, &errs, &conf);
	if (!err)
		ops->destroy(conf);
	if (expect && (!errs.capture || !strstr(errs.capture, expect))) {
		fprintf(stderr, "expected '%s', got '%s'\n", expect,
			errs.capture ? errs.capture : "");
		CU_FAIL("message");
	}
	free(errs.capture);
	config__free(&cfg);
	return err;
}

static void test_config(void)
{
	const char *udp = "{protocol: udp, destination: 198.18.1.1, port: 5000}";
	const char *tcp = "{protocol: tcp, destination: 198.18.1.1, port: 5000}";

	CU_ASSERT_EQUAL(config_errors(udp, "compress", NULL), 0);
	CU_ASSERT_EQUAL(config_errors(udp, "{compress: {level: 9, min_size: 0}}", NULL), 0);
	CU_ASSERT_EQUAL(config_errors(udp, "{decompress: {max_size: 1, direction: both}}", NULL),
			0);
	CU_ASSERT_NOT_EQUAL(config_errors(tcp, "compress",
					  "t.yaml:5:16: compress: works on UDP "
					  "flows only"),
			    0);
	CU_ASSERT_NOT_EQUAL(config_errors(udp, "{compress: {level: 10}}",
					  "t.yaml:5:35: value 10 is out of range 1..9"),
			    0);
	CU_ASSERT_NOT_EQUAL(
	    config_errors(udp, "{compress: {max_size: 10}}", "compress: unknown key 'max_size'"),
	    0);
	CU_ASSERT_NOT_EQUAL(
	    config_errors(udp, "{decompress: {max_size: 0}}", "value 0 is out of range 1..65535"),
	    0);
	CU_ASSERT_NOT_EQUAL(config_errors(udp, "{decompress: {direction: up}}",
					  "decompress: direction: 'up' is not one of client, "
					  "reply, both"),
			    0);
}

static CU_TestInfo tests[] = {
	{ "round trip: sizes 0..4050, random/zeros/text/mixed, IPv4", test_roundtrip },
	{ "round trip: IPv6, levels 1, 5, 9, random sizes", test_roundtrip_v6_levels },
	{ "stored: under min_size, incompressible", test_stored },
	{ "stored payload without room in its frame: too_big", test_stored_no_room },
	{ "corrupt, truncated, wrong header: bad_payload", test_corrupt },
	{ "max_size and frame room bound the output", test_max_size },
	{ "20000 random and mutated payloads", test_fuzz },
	{ "wrong checksums on arrival: bad_payload", test_bad_checksum },
	{ "direction", test_direction },
	{ "config", test_config },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(svc_compress, "svc_compress", tests, NULL, NULL);
