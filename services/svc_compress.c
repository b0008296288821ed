// SPDX-License-Identifier: BSD-2-Clause
/*
 * compress, decompress: carry a UDP flow's payloads deflated between two
 * ferry proxies, for example across a slow link:
 *
 *   client -> A [compress -> forward] -> slow link -> B [decompress -> forward] -> server
 *
 * On-wire format, version 1: a 4-byte header in front of the payload.
 *
 *   byte 0     magic 0xfc
 *   byte 1     version in the high nibble (1), flags in the low nibble:
 *                0x1  STORED: the original payload follows unchanged
 *                0x2, 0x4, 0x8  reserved, sent as 0; decompress refuses them
 *   bytes 2-3  length of the original payload, big endian
 *   then       STORED: the original payload, exactly that long; otherwise a
 *              raw deflate stream (RFC 1951, no zlib or gzip wrapper) that
 *              inflates to exactly that many bytes and ends with the payload
 *
 * Every payload gets the header, so that decompress needs no guessing: one
 * shorter than min_size, or whose deflate output plus header would not be
 * smaller than the payload itself, is sent STORED (4 bytes longer).  The
 * link between the proxies therefore needs 4 bytes of MTU headroom for such
 * packets; forward drops what does not fit its egress MTU as too_big.
 *
 * The compressor uses a 4 KiB window and small hash tables: a payload never
 * exceeds a UMEM frame (at most 4096 bytes), so a larger window would find
 * nothing more, and deflateReset() clears the hash heads for every packet,
 * which for the default memLevel would be 64 KiB of memset per packet.  The
 * decompressor accepts any window up to 32 KiB, so the format does not
 * depend on this choice.
 *
 * Each worker owns one z_stream per service and flow, set up in
 * worker_init() (inflate's lazily allocated window included, see cz_prime)
 * and reset, not reallocated, for every packet, with one scratch buffer for
 * the output: process() allocates nothing.  decompress bounds its
 * output by the header's length, which must not exceed max_size nor the
 * room left in the frame, and accepts the payload only if the stream ends
 * exactly there, after all of its input: anything else (wrong magic,
 * version or flags, truncation, corruption, trailing bytes, a length that
 * does not match) is a drop counted as bad_payload.  zlib reads only the
 * avail_in bytes it is given and writes only avail_out, so a hostile payload
 * cannot make it read or write outside the packet and the scratch buffer.
 *
 * Both act only on UDP packets of the configured direction (default: the
 * clients' packets); other packets of the flow, ICMP errors included, pass
 * untouched.  Lengths and checksums are recomputed from scratch through
 * ferry_pkt_set_payload_len(), so both first verify the checksums a packet
 * came with and drop it as bad_payload if they are wrong: a fresh checksum
 * over a payload corrupted on the way would hide the corruption from the
 * receiver, and raw deflate has no checksum of its own.  (A UDP/IPv4
 * checksum of 0, none, is accepted.)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <zlib.h>

#include "csum.h"
#include "log.h"
#include "service.h"
#include "svc_args.h"

#define CZ_MAGIC 0xfc
#define CZ_VERSION 1
#define CZ_F_STORED 0x1
#define CZ_HDR 4
#define CZ_MAX_PAYLOAD 65535
#define CZ_WINDOW_BITS 12 /* 4 KiB: a whole UMEM frame */
#define CZ_MEM_LEVEL 5	  /* 4096 hash heads, 8 KiB to clear per packet */

struct cz_conf {
	char flow_name[CFG_NAME_LEN];
	enum svc_dir dirs;
	uint32_t level;	   /* compress: 1..9 */
	uint32_t min_size; /* compress: smaller payloads are sent STORED */
	uint32_t max_size; /* decompress: largest payload it restores */
};

enum { CZ_C_PACKETS, CZ_C_STORED, CZ_C_BYTES_IN, CZ_C_BYTES_SAVED };
enum { DZ_C_INFLATED, DZ_C_STORED, DZ_C_BYTES_IN, DZ_C_BYTES_OUT };

struct cz_worker {
	z_stream zs;
	uint8_t *buf; /* deflate output, or the inflated payload */
	uint32_t buf_size;
	uint64_t counters[FERRY_SERVICE_COUNTERS];
};

static const struct cfg_arg compress_arg_list[] = {
	SVC_DIR_ARG(struct cz_conf, dirs, SVC_DIR_CLIENT),
	{ .name = "level",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct cz_conf, level),
	  .min = 1,
	  .max = 9,
	  .def = 1 },
	{ .name = "min_size",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct cz_conf, min_size),
	  .min = 0,
	  .max = CZ_MAX_PAYLOAD,
	  .def = 64 },
};

static const struct cfg_arg decompress_arg_list[] = {
	SVC_DIR_ARG(struct cz_conf, dirs, SVC_DIR_CLIENT),
	{ .name = "max_size",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct cz_conf, max_size),
	  .min = 1,
	  .max = CZ_MAX_PAYLOAD,
	  .def = CZ_MAX_PAYLOAD },
};

static const struct cfg_args cz_args[2] = {
	{ .prefix = "compress",
	  .expect = " of arguments",
	  .optional = true,
	  .args = compress_arg_list,
	  .nr = sizeof(compress_arg_list) / sizeof(compress_arg_list[0]) },
	{ .prefix = "decompress",
	  .expect = " of arguments",
	  .optional = true,
	  .args = decompress_arg_list,
	  .nr = sizeof(decompress_arg_list) / sizeof(decompress_arg_list[0]) },
};

static int cz_configure(const struct ferry_flow_ctx *fc, const struct cfg_node *args,
			struct cfg_errors *errs, void **confp, bool inflate)
{
	struct cz_conf *c;

	if (ferry_flow__l4_proto(fc) != IPPROTO_UDP) {
		cfg_mark_error(errs, svc_entry_mark(fc, args), "%s: works on UDP flows only",
			       cz_args[inflate].prefix);
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	snprintf(c->flow_name, sizeof(c->flow_name), "%s", ferry_flow__name(fc));
	c->max_size = CZ_MAX_PAYLOAD;
	if (cfg_args_parse(&cz_args[inflate], args, c, errs)) {
		free(c);
		return -EINVAL;
	}
	*confp = c;
	return 0;
}

static int compress_configure(const struct ferry_flow_ctx *fc, const struct cfg_node *args,
			      struct cfg_errors *errs, void **confp)
{
	return cz_configure(fc, args, errs, confp, false);
}

static int decompress_configure(const struct ferry_flow_ctx *fc, const struct cfg_node *args,
				struct cfg_errors *errs, void **confp)
{
	return cz_configure(fc, args, errs, confp, true);
}

static void cz_destroy(void *conf)
{
	free(conf);
}

static int compress_worker_init(void *conf, struct ferry_worker *w, void **wstate)
{
	const struct cz_conf *c = conf;
	struct cz_worker *cw;
	int zerr, err = -ENOMEM;

	cw = calloc(1, sizeof(*cw));
	if (!cw)
		return -ENOMEM;
	cw->buf_size = CZ_MAX_PAYLOAD;
	cw->buf = malloc(cw->buf_size);
	if (!cw->buf)
		goto err_free;
	/* Negative window bits: a raw deflate stream, without zlib's header and Adler-32. */
	zerr = deflateInit2(&cw->zs, (int)c->level, Z_DEFLATED, -CZ_WINDOW_BITS, CZ_MEM_LEVEL,
			    Z_DEFAULT_STRATEGY);
	if (zerr != Z_OK) {
		pr_err("flow '%s': compress: worker %u: deflateInit2: %s", c->flow_name,
		       ferry_worker__id(w), zerr == Z_MEM_ERROR ? "out of memory" : "error");
		err = zerr == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
		goto err_free_buf;
	}
	*wstate = cw;
	return 0;

err_free_buf:
	free(cw->buf);
err_free:
	free(cw);
	return err;
}

/* A raw deflate stored block of 5 bytes (LEN 5, NLEN ~5), cut after the first. */
static const uint8_t cz_prime[] = { 0x00, 0x05, 0x00, 0xfa, 0xff, 'x' };

static int decompress_worker_init(void *conf, struct ferry_worker *w, void **wstate)
{
	const struct cz_conf *c = conf;
	struct cz_worker *cw;
	int zerr, err = -ENOMEM;

	cw = calloc(1, sizeof(*cw));
	if (!cw)
		return -ENOMEM;
	cw->buf_size = c->max_size;
	cw->buf = malloc(cw->buf_size);
	if (!cw->buf)
		goto err_free;
	/* Any raw deflate window up to 32 KiB, whatever the compressor chose. */
	zerr = inflateInit2(&cw->zs, -15);
	if (zerr != Z_OK) {
		pr_err("flow '%s': decompress: worker %u: inflateInit2: %s", c->flow_name,
		       ferry_worker__id(w), zerr == Z_MEM_ERROR ? "out of memory" : "error");
		err = zerr == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
		goto err_free_buf;
	}
	/*
	 * inflate() allocates its window the first time a stream stops short
	 * with output produced, as a truncated payload will.  A stored block
	 * that promises 5 bytes and carries 1 makes that happen here, once,
	 * instead of in process(); inflateReset() keeps the window.
	 */
	cw->zs.next_in = (uint8_t *)cz_prime;
	cw->zs.avail_in = sizeof(cz_prime);
	cw->zs.next_out = cw->buf;
	cw->zs.avail_out = cw->buf_size;
	inflate(&cw->zs, Z_FINISH);
	*wstate = cw;
	return 0;

err_free_buf:
	free(cw->buf);
err_free:
	free(cw);
	return err;
}

static void compress_worker_destroy(void *conf, void *wstate)
{
	struct cz_worker *cw = wstate;

	deflateEnd(&cw->zs);
	free(cw->buf);
	free(cw);
}

static void decompress_worker_destroy(void *conf, void *wstate)
{
	struct cz_worker *cw = wstate;

	inflateEnd(&cw->zs);
	free(cw->buf);
	free(cw);
}

static void cz_stats(void *conf, void *wstate, uint64_t counters[FERRY_SERVICE_COUNTERS])
{
	const struct cz_worker *cw = wstate;

	for (int i = 0; i < FERRY_SERVICE_COUNTERS; i++)
		counters[i] += cw->counters[i];
}

/* The packets this service works on: UDP, of its direction. */
static bool cz_applies(const struct cz_conf *c, const struct ferry_pkt *p)
{
	return p->pi.l4_proto == IPPROTO_UDP && svc_dir_match(c->dirs, p);
}

static void cz_put_hdr(uint8_t *h, uint8_t flags, uint32_t orig_len)
{
	h[0] = CZ_MAGIC;
	h[1] = CZ_VERSION << 4 | flags;
	h[2] = (uint8_t)(orig_len >> 8);
	h[3] = (uint8_t)orig_len;
}

/* The payload moves 4 bytes up and gets the STORED header; 0 or a drop reason. */
static int cz_store(struct ferry_worker *w, struct ferry_pkt *p, uint32_t len)
{
	uint8_t *payload = p->data + p->pi.payload_off;

	if (p->pi.payload_off + len + CZ_HDR > ferry_worker__frame_room(w, p))
		return FERRY_DROP_too_big;
	memmove(payload + CZ_HDR, payload, len);
	cz_put_hdr(payload, CZ_F_STORED, len);
	return ferry_pkt_set_payload_len(w, p, len + CZ_HDR) ? FERRY_DROP_too_big : 0;
}

/* Returns 0 with the payload replaced by its compressed form, or a drop reason. */
static int cz_compress_one(const struct cz_conf *c, struct cz_worker *cw, struct ferry_worker *w,
			   struct ferry_pkt *p)
{
	uint8_t *payload = p->data + p->pi.payload_off;
	uint32_t len = p->pi.pkt_len - p->pi.payload_off, out;
	int zerr;

	if (!csum_verify(p->data, &p->pi))
		return FERRY_DROP_bad_payload;
	cw->counters[CZ_C_BYTES_IN] += len;
	/* Worth trying only if the output may come out smaller with its header. */
	if (len < c->min_size || len <= CZ_HDR + 1 || len > CZ_MAX_PAYLOAD - CZ_HDR)
		goto stored;
	if (deflateReset(&cw->zs) != Z_OK)
		goto stored;
	cw->zs.next_in = payload;
	cw->zs.avail_in = len;
	cw->zs.next_out = cw->buf;
	/* Room for less than the payload minus the header: more is not worth sending. */
	cw->zs.avail_out = len - CZ_HDR - 1;
	zerr = deflate(&cw->zs, Z_FINISH);
	if (zerr != Z_STREAM_END)
		goto stored; /* did not fit: incompressible */
	out = (uint32_t)cw->zs.total_out;
	cz_put_hdr(payload, 0, len);
	memcpy(payload + CZ_HDR, cw->buf, out);
	/* Shrinking always fits the frame. */
	if (ferry_pkt_set_payload_len(w, p, out + CZ_HDR))
		return FERRY_DROP_too_big;
	cw->counters[CZ_C_PACKETS]++;
	cw->counters[CZ_C_BYTES_SAVED] += len - out - CZ_HDR;
	return 0;

stored:
	cw->counters[CZ_C_STORED]++;
	return cz_store(w, p, len);
}

/* Returns 0 with the original payload back in place, or a drop reason. */
static int cz_decompress_one(const struct cz_conf *c, struct cz_worker *cw, struct ferry_worker *w,
			     struct ferry_pkt *p)
{
	uint8_t *payload = p->data + p->pi.payload_off;
	uint32_t len = p->pi.pkt_len - p->pi.payload_off, orig, room;
	int zerr;

	if (!csum_verify(p->data, &p->pi))
		return FERRY_DROP_bad_payload;
	if (len < CZ_HDR || payload[0] != CZ_MAGIC || payload[1] >> 4 != CZ_VERSION ||
	    (payload[1] & 0xf & ~CZ_F_STORED))
		return FERRY_DROP_bad_payload;
	orig = (uint32_t)payload[2] << 8 | payload[3];
	if (orig > c->max_size)
		return FERRY_DROP_bad_payload;
	cw->counters[DZ_C_BYTES_IN] += len;
	if (payload[1] & CZ_F_STORED) {
		if (orig != len - CZ_HDR)
			return FERRY_DROP_bad_payload;
		memmove(payload, payload + CZ_HDR, orig);
		if (ferry_pkt_set_payload_len(w, p, orig))
			return FERRY_DROP_bad_payload;
		cw->counters[DZ_C_STORED]++;
		cw->counters[DZ_C_BYTES_OUT] += orig;
		return 0;
	}
	room = ferry_worker__frame_room(w, p);
	if (p->pi.payload_off + orig > room || orig > cw->buf_size)
		return FERRY_DROP_too_big;
	if (inflateReset(&cw->zs) != Z_OK)
		return FERRY_DROP_bad_payload;
	cw->zs.next_in = payload + CZ_HDR;
	cw->zs.avail_in = len - CZ_HDR;
	cw->zs.next_out = cw->buf;
	cw->zs.avail_out = orig;
	zerr = inflate(&cw->zs, Z_FINISH);
	/* Exactly `orig` bytes, from all of the input and nothing after the stream. */
	if (zerr != Z_STREAM_END || cw->zs.total_out != orig || cw->zs.avail_in)
		return FERRY_DROP_bad_payload;
	memcpy(payload, cw->buf, orig);
	if (ferry_pkt_set_payload_len(w, p, orig))
		return FERRY_DROP_too_big;
	cw->counters[DZ_C_INFLATED]++;
	cw->counters[DZ_C_BYTES_OUT] += orig;
	return 0;
}

/* Compresses or restores one packet: 0, or the reason to drop it. */
typedef int cz_one_fn(const struct cz_conf *c, struct cz_worker *cw, struct ferry_worker *w,
		      struct ferry_pkt *p);

/*
 * Both services' batch: each packet still on its way that the service
 * applies to goes through one(); inlined with one() a constant.
 */
static inline void cz_process(const struct cz_conf *c, struct cz_worker *cw,
			      struct ferry_worker *w, struct ferry_batch *b, cz_one_fn *one)
{
	for (uint32_t i = 0; i < b->n; i++) {
		struct ferry_pkt *p = b->pkts[i];
		int reason;

		if (p->verdict != FERRY_VERDICT_NEXT || !cz_applies(c, p))
			continue;
		reason = one(c, cw, w, p);
		if (reason)
			ferry_pkt_drop(p, reason);
	}
}

static void compress_process(void *conf, void *wstate, struct ferry_worker *w,
			     struct ferry_batch *b)
{
	cz_process(conf, wstate, w, b, cz_compress_one);
}

static void decompress_process(void *conf, void *wstate, struct ferry_worker *w,
			       struct ferry_batch *b)
{
	cz_process(conf, wstate, w, b, cz_decompress_one);
}

const struct ferry_service_ops svc_compress_ops = {
	.name = "compress",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.configure = compress_configure,
	.worker_init = compress_worker_init,
	.process = compress_process,
	.stats = cz_stats,
	.worker_destroy = compress_worker_destroy,
	.destroy = cz_destroy,
	.counter_names = { "compressed", "stored", "bytes_in", "bytes_saved" },
};

const struct ferry_service_ops svc_decompress_ops = {
	.name = "decompress",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.configure = decompress_configure,
	.worker_init = decompress_worker_init,
	.process = decompress_process,
	.stats = cz_stats,
	.worker_destroy = decompress_worker_destroy,
	.destroy = cz_destroy,
	.counter_names = { "inflated", "stored", "bytes_in", "bytes_out" },
};
