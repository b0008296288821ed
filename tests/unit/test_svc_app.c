// SPDX-License-Identifier: BSD-2-Clause
/*
 * The `app` service with no application attached, through the real chain
 * runner (svc_harness): on_failure bypass lets payloads on unchanged and
 * counts them, on_failure drop drops them as "app_unavailable"; packets
 * without a payload are not the slot's business.  And its arguments: the
 * owner resolved at configure, every error at FILE:LINE:COL.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "app_area.h"
#include "csum.h"
#include "daemon.h"
#include "svc_app.h"
#include "svc_harness.h"
#include "svc_out.h"
#include "unit.h"
#include "worker.h"

enum { C_TO_APP, C_BYPASSED, C_BAD_DESC, C_TIMEOUTS };

static void sink_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	for (uint32_t i = 0; i < b->n; i++)
		ferry_pkt_tx(b->pkts[i], 1);
}

static const struct ferry_service_ops sink_ops = {
	.name = "app_test_sink",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.process = sink_process,
};

/* The flow's match for the next make(), NULL: the harness's UDP one. */
static const char *make_match;

static struct svc_harness *make(const char *args)
{
	char yaml[1024];
	struct svc_harness *h;

	harness__add_service(&sink_ops);
	snprintf(yaml, sizeof(yaml), "[ {app: %s}, app_test_sink ]", args);
	h = make_match ? harness__create_match(make_match, yaml) : harness__create(yaml);
	CU_ASSERT_PTR_NOT_NULL(h);
	return h;
}

/* n packets, packet i with i % 3 payload bytes (a third of them none); returns how many came out. */
static uint32_t burst(struct svc_harness *h, uint32_t n)
{
	static uint8_t bufs[WORKER_MAX_BATCH][256];
	const uint8_t *frames[WORKER_MAX_BATCH];
	uint32_t lens[WORKER_MAX_BATCH], before = harness__nr_out(h), out;
	uint8_t payload[8];

	CU_ASSERT_FATAL(n <= WORKER_MAX_BATCH);
	for (uint32_t i = 0; i < n; i++) {
		memset(payload, 'a' + (int)i, sizeof(payload));
		lens[i] = harness__udp4(bufs[i], "198.18.1.2", (uint16_t)(1000 + i), "198.18.1.1",
					5000, payload, i % 3);
		frames[i] = bufs[i];
	}
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, n), (int)n);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	CU_ASSERT_EQUAL(harness__held_frames(h), 0);
	out = harness__nr_out(h) - before;
	return out;
}

static void test_bypass(void)
{
	struct svc_harness *h = make("{name: t, owner: root}");
	uint64_t c[FERRY_SERVICE_COUNTERS] = {};
	uint32_t j = 0;

	if (!h)
		return;
	CU_ASSERT_EQUAL(burst(h, 30), 30);
	/* Unchanged, in order. */
	for (uint32_t i = 0; i < harness__nr_out(h); i++, j++) {
		const struct harness_out *o = harness__out(h, i);
		uint8_t want[256];
		uint8_t payload[8];

		memset(payload, 'a' + (int)i, sizeof(payload));
		CU_ASSERT_EQUAL(o->len, harness__udp4(want, "198.18.1.2", (uint16_t)(1000 + i),
						      "198.18.1.1", 5000, payload, i % 3));
		CU_ASSERT(!memcmp(o->data, want, o->len));
	}
	harness__service_counters(h, 0, c);
	/* 20 of the 30 carry a payload: those took on_failure. */
	CU_ASSERT_EQUAL(c[C_BYPASSED], 20);
	CU_ASSERT_EQUAL(c[C_TO_APP], 0);
	CU_ASSERT_EQUAL(c[C_BAD_DESC], 0);
	CU_ASSERT_EQUAL(c[C_TIMEOUTS], 0);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 0)->passed, 30);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_app_unavailable, 0);
	harness__destroy(h);
}

static void test_drop(void)
{
	struct svc_harness *h = make("{name: t, owner: root, on_failure: drop}");
	uint64_t c[FERRY_SERVICE_COUNTERS] = {};

	if (!h)
		return;
	/* Only the 10 without a payload go on. */
	CU_ASSERT_EQUAL(burst(h, 30), 10);
	for (uint32_t i = 0; i < harness__nr_out(h); i++)
		CU_ASSERT_EQUAL(harness__out(h, i)->len, 42);
	CU_ASSERT_EQUAL(harness__flow_stats(h)->drop_app_unavailable, 20);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 0)->dropped, 20);
	harness__service_counters(h, 0, c);
	CU_ASSERT_EQUAL(c[C_BYPASSED], 0);
	harness__destroy(h);
}

/* ---- an application attached: the test plays it on a real area ---- */

#define MS (1000ull * 1000)

struct fake_app {
	struct svc_harness *h;
	struct svc_app_conf *c;
	uint8_t *area;
	struct ferry_app_queue *q;
	struct ferry_app_desc *to, *from;
	uint8_t *frames;
	uint32_t to_cons, from_prod;
};

/* A harness whose slot has an area attached, as daemon/control.c does it. */
static bool attach(struct fake_app *a, const char *args)
{
	uint64_t size;

	memset(a, 0, sizeof(*a));
	a->h = make(args);
	if (!a->h)
		return false;
	a->c = harness__worker(a->h)->d->flows[0].conf[0];
	size = app_area__size(1, a->c->ring_size);
	a->area = aligned_alloc(64, size);
	CU_ASSERT_FATAL(a->area != NULL);
	memset(a->area, 0, size);
	app_area__init(a->area, a->c->name, 1, a->c->ring_size);
	a->q = (struct ferry_app_queue *)(a->area + ((struct ferry_app_area *)a->area)->queue_off[0]);
	a->to = (struct ferry_app_desc *)(a->area + a->q->to_app.desc_off);
	a->from = (struct ferry_app_desc *)(a->area + a->q->from_app.desc_off);
	a->frames = a->area + a->q->frames_off;
	a->c->slot.area = a->area;
	atomic_store(&a->c->slot.gen, 1);
	return true;
}

static void detach(struct fake_app *a)
{
	uint64_t g = atomic_load(&a->c->slot.gen) + 1;

	atomic_store(&a->c->slot.gen, g);
	harness__tick(a->h, 1000);
	CU_ASSERT_EQUAL(atomic_load(&a->c->slot.ack[0]), g);
	CU_ASSERT_EQUAL(harness__check_frames(a->h), 0);
	CU_ASSERT_EQUAL(harness__held_frames(a->h), 0);
	harness__destroy(a->h);
	free(a->area);
}

/* The application's side: the next descriptor on TO_APP, or NULL. */
static struct ferry_app_desc *app_next(struct fake_app *a)
{
	if (a->to_cons == a->q->to_app.producer)
		return NULL;
	return &a->to[a->to_cons++ & (a->q->to_app.size - 1)];
}

static void app_return(struct fake_app *a, const struct ferry_app_desc *d)
{
	a->from[a->from_prod++ & (a->q->from_app.size - 1)] = *d;
	a->q->to_app.consumer = a->to_cons;
	a->q->from_app.producer = a->from_prod;
}

/* n UDP packets with payloads "pkt N ..." of 20 bytes into the chain. */
static void send_n(struct svc_harness *h, uint32_t n, uint32_t first)
{
	static uint8_t bufs[WORKER_MAX_BATCH][256];
	const uint8_t *frames[WORKER_MAX_BATCH];
	uint32_t lens[WORKER_MAX_BATCH];
	char payload[21];

	for (uint32_t i = 0; i < n; i++) {
		snprintf(payload, sizeof(payload), "pkt %-15u.", first + i);
		lens[i] = harness__udp4(bufs[i], "198.18.1.2", 1000, "198.18.1.1", 5000, payload,
					20);
		frames[i] = bufs[i];
	}
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, n), (int)n);
}

static void test_round_trip(void)
{
	struct fake_app a;
	struct ferry_app_desc *d;
	uint64_t c[FERRY_SERVICE_COUNTERS] = {};
	struct svc_out o;
	uint32_t n = 0;

	if (!attach(&a, "{name: t, owner: root}"))
		return;
	send_n(a.h, 6, 0);
	/* All six are out with the application, none at TX. */
	CU_ASSERT_EQUAL(harness__nr_out(a.h), 0);
	CU_ASSERT_EQUAL(harness__held_frames(a.h), 6);
	CU_ASSERT_EQUAL(a.q->to_app.producer, 6);
	while ((d = app_next(&a))) {
		uint8_t *f = a.frames + (size_t)d->frame * a.q->frame_size;
		struct ferry_app_desc r = *d;

		CU_ASSERT_EQUAL(d->len, 20);
		CU_ASSERT(d->cap >= 20 && d->cap <= 2048);
		for (uint32_t i = 0; i < d->len; i++)
			f[i] ^= 0x20;
		r.verdict = FERRY_APP_PASS;
		if (n == 1)
			r.verdict = FERRY_APP_DROP;
		if (n == 2) {
			/* Grows by 30 bytes. */
			memset(f + 20, 'z', 30);
			r.len = 50;
		}
		if (n == 3)
			r.len = 5; /* shrinks */
		n++;
		app_return(&a, &r);
	}
	CU_ASSERT_EQUAL(n, 6);
	/* A returned descriptor waits for the worker's next look: a tick. */
	harness__tick(a.h, 1000);
	CU_ASSERT_EQUAL_FATAL(harness__nr_out(a.h), 5);
	CU_ASSERT_EQUAL(svc_out_read(harness__out(a.h, 0), &o), 0);
	CU_ASSERT(o.csum_ok);
	CU_ASSERT_EQUAL(o.payload_len, 20);
	{
		char want[21];

		snprintf(want, sizeof(want), "pkt %-15u.", 0);
		for (int i = 0; i < 20; i++)
			want[i] ^= 0x20;
		CU_ASSERT(!memcmp(o.payload, want, 20));
	}
	CU_ASSERT_EQUAL(svc_out_read(harness__out(a.h, 1), &o), 0);
	CU_ASSERT(o.csum_ok);
	CU_ASSERT_EQUAL(o.payload_len, 50);
	CU_ASSERT(!memcmp(o.payload, "PKT", 3));
	CU_ASSERT_EQUAL(o.payload[49], 'z');
	CU_ASSERT_EQUAL(svc_out_read(harness__out(a.h, 2), &o), 0);
	CU_ASSERT(o.csum_ok);
	CU_ASSERT_EQUAL(o.payload_len, 5);
	CU_ASSERT_EQUAL(harness__held_frames(a.h), 0);
	CU_ASSERT_EQUAL(harness__check_frames(a.h), 0);
	/* The chain after the slot ran for the five: the sink sent them. */
	CU_ASSERT_EQUAL(harness__svc_stats(a.h, 1)->sent, 5);
	CU_ASSERT_EQUAL(harness__svc_stats(a.h, 0)->held, 6);
	CU_ASSERT_EQUAL(harness__flow_stats(a.h)->drop_service, 1);
	harness__service_counters(a.h, 0, c);
	CU_ASSERT_EQUAL(c[C_TO_APP], 6);
	CU_ASSERT_EQUAL(c[C_BAD_DESC], 0);
	CU_ASSERT_EQUAL(atomic_load(&a.c->slot.wstat[0].rtts), 6);
	CU_ASSERT_EQUAL(atomic_load(&a.c->slot.wstat[0].depth), 0);
	CU_ASSERT_EQUAL(atomic_load(&a.c->slot.wstat[0].out), 5);
	CU_ASSERT_EQUAL(atomic_load(&a.c->slot.wstat[0].dropped), 1);
	detach(&a);
}

/* Every way a descriptor can lie is counted and ignored; the packets time out. */
static void test_hostile(void)
{
	struct fake_app a;
	struct ferry_app_desc *d, r;
	uint64_t c[FERRY_SERVICE_COUNTERS] = {};

	if (!attach(&a, "{name: t, owner: root, ring_size: 64, timeout_ms: 10}"))
		return;
	send_n(a.h, 2, 0);
	d = app_next(&a);
	CU_ASSERT_FATAL(d != NULL);
	r = *d;
	r.verdict = FERRY_APP_PASS;
	r.frame = 64; /* out of range */
	app_return(&a, &r);
	r = *d;
	r.verdict = FERRY_APP_PASS;
	r.cookie ^= 1 << 12; /* a stale use of the frame */
	app_return(&a, &r);
	r = *d;
	r.verdict = FERRY_APP_PASS;
	r.len = d->cap + 1; /* beyond the cap */
	app_return(&a, &r);
	r = *d;
	r.verdict = 7; /* no such verdict */
	app_return(&a, &r);
	r = *d;
	r.verdict = FERRY_APP_PASS;
	r.frame = (d->frame + 1) & 63; /* another frame, this one's cookie */
	app_return(&a, &r);
	r = *d;
	r.verdict = FERRY_APP_PASS;
	r.frame = 63; /* a frame that is not out */
	r.cookie = 63;
	app_return(&a, &r);
	harness__tick(a.h, 1000);
	harness__service_counters(a.h, 0, c);
	CU_ASSERT_EQUAL(c[C_BAD_DESC], 6);
	CU_ASSERT_EQUAL(harness__nr_out(a.h), 0);
	CU_ASSERT_EQUAL(harness__held_frames(a.h), 2);
	/* The same good one twice: the second is stale. */
	r = *d;
	r.verdict = FERRY_APP_PASS;
	app_return(&a, &r);
	app_return(&a, &r);
	harness__tick(a.h, 1000);
	CU_ASSERT_EQUAL(harness__nr_out(a.h), 1);
	memset(c, 0, sizeof(c));
	harness__service_counters(a.h, 0, c);
	CU_ASSERT_EQUAL(c[C_BAD_DESC], 7);
	/* A producer index far ahead: counted once, skipped. */
	a.q->from_app.producer += 1000;
	harness__tick(a.h, 1000);
	memset(c, 0, sizeof(c));
	harness__service_counters(a.h, 0, c);
	CU_ASSERT_EQUAL(c[C_BAD_DESC], 8);
	/* The other packet times out and bypasses the application. */
	harness__tick(a.h, 20 * MS);
	CU_ASSERT_EQUAL(harness__nr_out(a.h), 2);
	memset(c, 0, sizeof(c));
	harness__service_counters(a.h, 0, c);
	CU_ASSERT_EQUAL(c[C_TIMEOUTS], 1);
	CU_ASSERT_EQUAL(c[C_BYPASSED], 1);
	CU_ASSERT_EQUAL(harness__held_frames(a.h), 0);
	CU_ASSERT(!atomic_load(&a.c->slot.hung));
	detach(&a);
}

/*
 * A FROM_APP producer set far ahead (+2^31): one ring's worth is looked
 * at and the index counted once as bad_desc, then skipped: the ticks
 * after it do not drain the same garbage again, and the application's
 * next answer, from where its producer now is, is taken.
 */
static void test_producer_far_ahead(void)
{
	uint64_t c[FERRY_SERVICE_COUNTERS] = {};
	struct ferry_app_desc *d, r;
	struct fake_app a;

	if (!attach(&a, "{name: t, owner: root, ring_size: 64}"))
		return;
	send_n(a.h, 2, 0);
	d = app_next(&a);
	CU_ASSERT_FATAL(d != NULL);
	r = *d;
	r.verdict = FERRY_APP_PASS;
	a.from_prod += 1u << 31;
	a.q->from_app.producer = a.from_prod;
	for (int i = 0; i < 5; i++)
		harness__tick(a.h, 1000);
	harness__service_counters(a.h, 0, c);
	CU_ASSERT_EQUAL(c[C_BAD_DESC], 1);
	CU_ASSERT_EQUAL(a.q->from_app.consumer, a.from_prod);
	CU_ASSERT_EQUAL(harness__nr_out(a.h), 0);
	CU_ASSERT_EQUAL(harness__held_frames(a.h), 2);
	app_return(&a, &r);
	harness__tick(a.h, 1000);
	CU_ASSERT_EQUAL(harness__nr_out(a.h), 1);
	memset(c, 0, sizeof(c));
	harness__service_counters(a.h, 0, c);
	CU_ASSERT_EQUAL(c[C_BAD_DESC], 1);
	CU_ASSERT(!atomic_load(&a.c->slot.hung));
	detach(&a);
}

/*
 * An application that answers nothing: timeouts, then the request to
 * detach it after three stalls.  The packets of one stall count once,
 * however many they are; an answer starts the count again.
 */
static void test_hung(void)
{
	struct fake_app a;
	struct ferry_app_desc *d, r;
	uint64_t c[FERRY_SERVICE_COUNTERS] = {};

	if (!attach(&a, "{name: t, owner: root, on_failure: drop, timeout_ms: 5}"))
		return;
	send_n(a.h, 3, 0);
	harness__tick(a.h, 4 * MS);
	CU_ASSERT_EQUAL(harness__held_frames(a.h), 3);
	CU_ASSERT(!atomic_load(&a.c->slot.hung));
	harness__tick(a.h, 2 * MS);
	CU_ASSERT_EQUAL(harness__held_frames(a.h), 0);
	CU_ASSERT_EQUAL(harness__nr_out(a.h), 0);
	CU_ASSERT_EQUAL(harness__flow_stats(a.h)->drop_app_unavailable, 3);
	harness__service_counters(a.h, 0, c);
	CU_ASSERT_EQUAL(c[C_TIMEOUTS], 3);
	/* Three packets, one stall: not hung yet. */
	CU_ASSERT(!atomic_load(&a.c->slot.hung));
	/* A second stall, then an answer: the count starts again. */
	send_n(a.h, 1, 0);
	harness__tick(a.h, 6 * MS);
	CU_ASSERT(!atomic_load(&a.c->slot.hung));
	send_n(a.h, 1, 0);
	while ((d = app_next(&a)))
		if (d->len == 20) {
			r = *d;
			r.verdict = FERRY_APP_PASS;
			app_return(&a, &r);
		}
	harness__tick(a.h, 1 * MS);
	CU_ASSERT_EQUAL(harness__nr_out(a.h), 1);
	/* Now three stalls, a timeout apart, with nothing answered. */
	for (int i = 0; i < 3; i++) {
		CU_ASSERT(!atomic_load(&a.c->slot.hung));
		send_n(a.h, 2, 0);
		harness__tick(a.h, 6 * MS);
	}
	memset(c, 0, sizeof(c));
	harness__service_counters(a.h, 0, c);
	CU_ASSERT_EQUAL(c[C_TIMEOUTS], 3 + 1 + 6);
	CU_ASSERT(atomic_load(&a.c->slot.hung));
	detach(&a);
}

/* A TCP segment as 198.18.1.2:1000 -> 198.18.1.1:5000 carrying payload. */
static uint32_t tcp4(uint8_t *buf, const char *payload, uint32_t len)
{
	static const uint8_t macs[12] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2 };
	uint8_t *ip = buf + 14, *tcp = buf + 34;
	struct pkt_info pi;
	uint16_t c;

	memcpy(buf, macs, 12);
	buf[12] = 0x08;
	buf[13] = 0x00;
	memset(ip, 0, 40);
	ip[0] = 0x45;
	ip[2] = (uint8_t)((40 + len) >> 8);
	ip[3] = (uint8_t)(40 + len);
	ip[8] = 64;
	ip[9] = IPPROTO_TCP;
	inet_pton(AF_INET, "198.18.1.2", ip + 12);
	inet_pton(AF_INET, "198.18.1.1", ip + 16);
	tcp[0] = 1000 >> 8;
	tcp[1] = 1000 & 0xff;
	tcp[2] = 5000 >> 8;
	tcp[3] = 5000 & 0xff;
	tcp[7] = 1;       /* seq 1 */
	tcp[11] = 1;      /* ack 1 */
	tcp[12] = 5 << 4; /* 20 bytes */
	tcp[13] = 0x18;   /* PSH, ACK */
	tcp[15] = 0xff;   /* window */
	memcpy(tcp + 20, payload, len);
	c = csum_ipv4_header(ip, 20);
	memcpy(ip + 10, &c, 2);
	if (pkt_parse(buf, 54 + len, &pi) == PKT_OK) {
		c = csum_l4_compute(buf, &pi);
		memcpy(tcp + 16, &c, 2);
	}
	return 54 + len;
}

/*
 * TCP: a PASS that changes the payload's length is rejected and counted,
 * and the packet stays with the application, which may still return it
 * as it should.
 */
static void test_tcp_len(void)
{
	static uint8_t buf[256];
	const uint8_t *frames[1] = { buf };
	uint32_t lens[1] = { tcp4(buf, "tcp payload of 24 bytes.", 24) };
	uint64_t c[FERRY_SERVICE_COUNTERS] = {};
	struct ferry_app_desc *d, r;
	struct fake_app a;
	struct svc_out o;

	make_match = "{protocol: tcp, destination: 198.18.1.1, port: 5000}";
	if (!attach(&a, "{name: t, owner: root}")) {
		make_match = NULL;
		return;
	}
	make_match = NULL;
	CU_ASSERT_EQUAL(harness__run(a.h, frames, lens, 1), 1);
	d = app_next(&a);
	CU_ASSERT_FATAL(d != NULL);
	CU_ASSERT_EQUAL(d->len, 24);
	CU_ASSERT_EQUAL(d->cap, 24);
	memcpy(a.frames + (size_t)d->frame * a.q->frame_size, "TCP", 3);
	r = *d;
	r.verdict = FERRY_APP_PASS;
	r.len = 20; /* shorter */
	app_return(&a, &r);
	r.len = 25; /* longer */
	app_return(&a, &r);
	harness__tick(a.h, 1000);
	harness__service_counters(a.h, 0, c);
	CU_ASSERT_EQUAL(c[C_BAD_DESC], 2);
	CU_ASSERT_EQUAL(harness__nr_out(a.h), 0);
	CU_ASSERT_EQUAL(harness__flow_stats(a.h)->drop_service, 0);
	CU_ASSERT_EQUAL(harness__held_frames(a.h), 1);
	/* Still the application's: returned with its length, it goes on. */
	r.len = 24;
	app_return(&a, &r);
	harness__tick(a.h, 1000);
	CU_ASSERT_EQUAL_FATAL(harness__nr_out(a.h), 1);
	CU_ASSERT_EQUAL(svc_out_read(harness__out(a.h, 0), &o), 0);
	CU_ASSERT(o.csum_ok);
	CU_ASSERT_EQUAL(o.proto, IPPROTO_TCP);
	CU_ASSERT_EQUAL(o.payload_len, 24);
	CU_ASSERT(!memcmp(o.payload, "TCP payload", 11));
	memset(c, 0, sizeof(c));
	harness__service_counters(a.h, 0, c);
	CU_ASSERT_EQUAL(c[C_BAD_DESC], 2);
	detach(&a);
}

/*
 * One packet the application keeps while many others make the round trip
 * (more than the ring holds): it still times out, alone, and nothing else.
 */
static void test_one_kept(void)
{
	struct fake_app a;
	struct ferry_app_desc *d, kept;
	uint64_t c[FERRY_SERVICE_COUNTERS] = {};

	if (!attach(&a, "{name: t, owner: root, ring_size: 64, timeout_ms: 50}"))
		return;
	send_n(a.h, 1, 0);
	kept = *app_next(&a);
	a.q->to_app.consumer = a.to_cons;
	for (int round = 0; round < 10; round++) {
		send_n(a.h, 30, 0);
		while ((d = app_next(&a))) {
			struct ferry_app_desc r = *d;

			r.verdict = FERRY_APP_PASS;
			app_return(&a, &r);
		}
		harness__tick(a.h, 1 * MS);
	}
	CU_ASSERT_EQUAL(harness__nr_out(a.h), 300);
	CU_ASSERT_EQUAL(harness__held_frames(a.h), 1);
	harness__tick(a.h, 50 * MS);
	CU_ASSERT_EQUAL(harness__nr_out(a.h), 301);
	CU_ASSERT_EQUAL(harness__held_frames(a.h), 0);
	harness__service_counters(a.h, 0, c);
	CU_ASSERT_EQUAL(c[C_TIMEOUTS], 1);
	CU_ASSERT_EQUAL(c[C_BYPASSED], 1);
	CU_ASSERT_EQUAL(c[C_TO_APP], 301);
	/* Returned after its timeout: stale, counted, ignored. */
	kept.verdict = FERRY_APP_PASS;
	app_return(&a, &kept);
	harness__tick(a.h, 1 * MS);
	memset(c, 0, sizeof(c));
	harness__service_counters(a.h, 0, c);
	CU_ASSERT_EQUAL(c[C_BAD_DESC], 1);
	CU_ASSERT_EQUAL(harness__nr_out(a.h), 301);
	detach(&a);
}

/*
 * The application rewrites the area's offsets and sizes before the worker
 * takes the attach up: the worker keeps to its own layout.
 */
static void test_scribbled_header(void)
{
	struct fake_app a;
	struct ferry_app_queue saved;
	uint64_t qoff;

	if (!attach(&a, "{name: t, owner: root, ring_size: 64}"))
		return;
	saved = *a.q;
	qoff = ((struct ferry_app_area *)a.area)->queue_off[0];
	((struct ferry_app_area *)a.area)->queue_off[0] = 1ull << 40;
	((struct ferry_app_area *)a.area)->nr_queues = 1000;
	a.q->to_app.desc_off = 1ull << 41;
	a.q->from_app.desc_off = UINT64_MAX - 8;
	a.q->frames_off = 1ull << 42;
	a.q->to_app.size = 1u << 30;
	a.q->frames = 1u << 30;
	send_n(a.h, 3, 0);
	/* Where ferryd laid them out: the descriptors and payloads are there. */
	CU_ASSERT_EQUAL(a.q->to_app.producer, 3);
	CU_ASSERT_EQUAL(((struct ferry_app_desc *)(a.area + saved.to_app.desc_off))[2].len, 20);
	CU_ASSERT(!memcmp(a.area + saved.frames_off +
				  (size_t)((struct ferry_app_desc *)(a.area + saved.to_app.desc_off))[0].frame *
					  2048,
			  "pkt 0", 5));
	CU_ASSERT_EQUAL(qoff, (uint64_t)((uint8_t *)a.q - a.area));
	*a.q = saved;
	a.q->to_app.producer = 3;
	detach(&a);
}

/*
 * Need-wakeup: the wake-up pipe is written once per batch, only when the
 * flag is set; a full pipe (an application that never reads) never blocks
 * the worker.
 */
static void test_wakeup(void)
{
	struct fake_app a;
	uint8_t buf[64];
	uint32_t prod;
	int p[2];

	if (!attach(&a, "{name: t, owner: root}"))
		return;
	CU_ASSERT_FATAL(!pipe2(p, O_NONBLOCK | O_CLOEXEC));
	a.c->slot.wake_app_fd = p[1];
	send_n(a.h, 4, 0);
	CU_ASSERT_EQUAL(read(p[0], buf, sizeof(buf)), -1);
	a.q->to_app.flags = FERRY_APP_RING_NEED_WAKEUP;
	send_n(a.h, 4, 0);
	send_n(a.h, 4, 0);
	CU_ASSERT_EQUAL(read(p[0], buf, sizeof(buf)), 2);
	a.q->to_app.flags = 0;
	send_n(a.h, 4, 0);
	CU_ASSERT_EQUAL(read(p[0], buf, sizeof(buf)), -1);
	/* Filled to the brim: the worker's writes fail with EAGAIN, nothing waits. */
	while (write(p[1], buf, sizeof(buf)) > 0)
		;
	a.q->to_app.flags = FERRY_APP_RING_NEED_WAKEUP;
	prod = a.q->to_app.producer;
	send_n(a.h, 4, 0);
	CU_ASSERT_NOT_EQUAL(a.q->to_app.producer, prod);
	detach(&a);
	close(p[0]);
	close(p[1]);
}

/*
 * The worker's side of need-wakeup: with packets out it registers the
 * slot's eventfd to sleep on (and a poll deadline for when it is awake);
 * arming sets FROM_APP's flag and says whether verdicts are there
 * already; the next tick clears the flag; nothing out, nothing registered.
 */
static void test_worker_sleep(void)
{
	struct ferry_worker *w;
	struct ferry_app_desc *d, r[2];
	struct fake_app a;
	int efd;

	if (!attach(&a, "{name: t, owner: root}"))
		return;
	w = harness__worker(a.h);
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	CU_ASSERT_FATAL(efd >= 0);
	a.c->slot.wake_ferry_fd = efd;
	send_n(a.h, 2, 0);
	CU_ASSERT_EQUAL_FATAL(w->nr_waits, 1);
	CU_ASSERT_EQUAL(w->waits[0].fd, efd);
	CU_ASSERT(w->poll_ns > w->now_ns);
	/* The timeout scan bounds the sleep. */
	CU_ASSERT(w->wake_ns > 0 && w->wake_ns <= w->now_ns + a.c->timeout_ns);
	CU_ASSERT_EQUAL(a.q->from_app.flags, 0);
	CU_ASSERT(w->waits[0].arm(w->waits[0].ctx));
	CU_ASSERT_EQUAL(a.q->from_app.flags, FERRY_APP_RING_NEED_WAKEUP);
	for (int i = 0; i < 2; i++) {
		d = app_next(&a);
		CU_ASSERT_FATAL(d != NULL);
		r[i] = *d;
		r[i].verdict = FERRY_APP_PASS;
	}
	app_return(&a, &r[0]);
	/* A verdict is there: no sleep. */
	CU_ASSERT(!w->waits[0].arm(w->waits[0].ctx));
	harness__tick(a.h, 1000);
	CU_ASSERT_EQUAL(harness__nr_out(a.h), 1);
	CU_ASSERT_EQUAL(a.q->from_app.flags, 0);
	/* One still out: registered again. */
	CU_ASSERT_EQUAL(w->nr_waits, 1);
	app_return(&a, &r[1]);
	harness__tick(a.h, 1000);
	CU_ASSERT_EQUAL(harness__nr_out(a.h), 2);
	CU_ASSERT_EQUAL(w->nr_waits, 0);
	CU_ASSERT_EQUAL(w->poll_ns, 0);
	CU_ASSERT_EQUAL(atomic_load(&a.c->slot.wstat[0].sleeps), 1);
	detach(&a);
	close(efd);
}

/*
 * Detach with packets out: the tick that acknowledges the even generation
 * leaves no wait registered on the old area, whose memory and eventfd
 * daemon/control.c frees as soon as every worker has acknowledged (an idle
 * worker would arm the wait: write FROM_APP's flags in the unmapped area,
 * poll a closed or reused descriptor).
 */
static void test_detach_no_wait(void)
{
	struct worker_wait saved;
	struct ferry_worker *w;
	struct fake_app a;
	uint64_t g;
	int efd;

	if (!attach(&a, "{name: t, owner: root}"))
		return;
	w = harness__worker(a.h);
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	CU_ASSERT_FATAL(efd >= 0);
	a.c->slot.wake_ferry_fd = efd;
	send_n(a.h, 2, 0);
	CU_ASSERT_EQUAL_FATAL(w->nr_waits, 1);
	saved = w->waits[0];
	g = atomic_load(&a.c->slot.gen) + 1;
	atomic_store(&a.c->slot.gen, g);
	harness__tick(a.h, 1000);
	CU_ASSERT_EQUAL(atomic_load(&a.c->slot.ack[0]), g);
	CU_ASSERT_EQUAL(harness__held_frames(a.h), 0);
	CU_ASSERT_EQUAL(w->nr_waits, 0);
	/* A registration armed after the ack all the same touches nothing of the area. */
	a.q->from_app.flags = 0;
	CU_ASSERT(saved.arm(saved.ctx));
	CU_ASSERT_EQUAL(a.q->from_app.flags, 0);
	/* As reap_pending() does once acknowledged: the area is gone. */
	a.c->slot.area = NULL;
	a.c->slot.wake_ferry_fd = -1;
	/* Detached, nothing out: nothing registered at the next tick either. */
	harness__tick(a.h, 1000);
	CU_ASSERT_EQUAL(w->nr_waits, 0);
	harness__destroy(a.h);
	free(a.area);
	close(efd);
}

/*
 * A detach taken up in a chain run (nothing out): the slot's wait
 * registrations, would one be left, are dropped before the ack.
 */
static void test_detach_forgets_waits(void)
{
	struct worker_wait saved;
	struct ferry_worker *w;
	struct ferry_app_desc *d;
	struct fake_app a;
	uint64_t g;
	int efd;

	if (!attach(&a, "{name: t, owner: root}"))
		return;
	w = harness__worker(a.h);
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	CU_ASSERT_FATAL(efd >= 0);
	a.c->slot.wake_ferry_fd = efd;
	send_n(a.h, 1, 0);
	CU_ASSERT_EQUAL_FATAL(w->nr_waits, 1);
	saved = w->waits[0];
	d = app_next(&a);
	CU_ASSERT_FATAL(d != NULL);
	d->verdict = FERRY_APP_PASS;
	app_return(&a, d);
	harness__tick(a.h, 1000);
	CU_ASSERT_EQUAL(harness__nr_out(a.h), 1);
	CU_ASSERT_EQUAL(w->nr_waits, 0);
	/* As if registered since: the chain run that takes up the detach must drop it. */
	w->waits[w->nr_waits++] = saved;
	g = atomic_load(&a.c->slot.gen) + 1;
	atomic_store(&a.c->slot.gen, g);
	send_n(a.h, 1, 1);
	CU_ASSERT_EQUAL(atomic_load(&a.c->slot.ack[0]), g);
	CU_ASSERT_EQUAL(w->nr_waits, 0);
	harness__destroy(a.h);
	free(a.area);
	close(efd);
}

/* The worker's hold budget spent: on_failure, as for a full queue. */
static void test_hold_budget(void)
{
	struct fake_app a;
	uint64_t c[FERRY_SERVICE_COUNTERS] = {};

	if (!attach(&a, "{name: t, owner: root}"))
		return;
	harness__worker(a.h)->hold_budget = 2;
	send_n(a.h, 5, 0);
	CU_ASSERT_EQUAL(harness__held_frames(a.h), 2);
	CU_ASSERT_EQUAL(harness__nr_out(a.h), 3);
	CU_ASSERT_EQUAL(harness__flow_stats(a.h)->drop_hold_budget, 0);
	harness__service_counters(a.h, 0, c);
	CU_ASSERT_EQUAL(c[C_TO_APP], 2);
	CU_ASSERT_EQUAL(c[C_BYPASSED], 3);
	detach(&a);
}

/* A full queue (the application consumes nothing) takes on_failure at once. */
static void test_queue_full(void)
{
	struct fake_app a;
	uint64_t c[FERRY_SERVICE_COUNTERS] = {};

	if (!attach(&a, "{name: t, owner: root, ring_size: 64}"))
		return;
	for (int i = 0; i < 3; i++)
		send_n(a.h, 30, 30 * i);
	CU_ASSERT_EQUAL(harness__held_frames(a.h), 64);
	CU_ASSERT_EQUAL(harness__nr_out(a.h), 26);
	harness__service_counters(a.h, 0, c);
	CU_ASSERT_EQUAL(c[C_TO_APP], 64);
	CU_ASSERT_EQUAL(c[C_BYPASSED], 26);
	/* Detached with packets out: they bypass too, nothing is lost. */
	atomic_store(&a.c->slot.gen, 2);
	harness__tick(a.h, 1000);
	CU_ASSERT_EQUAL(harness__nr_out(a.h), 90);
	CU_ASSERT_EQUAL(atomic_load(&a.c->slot.ack[0]), 2);
	/* Attached again: a fresh queue. */
	a.q->to_app.producer = a.q->to_app.consumer = 0;
	a.q->from_app.producer = a.q->from_app.consumer = 0;
	a.to_cons = a.from_prod = 0;
	atomic_store(&a.c->slot.gen, 3);
	send_n(a.h, 1, 0);
	CU_ASSERT_EQUAL(a.q->to_app.producer, 1);
	CU_ASSERT_EQUAL(atomic_load(&a.c->slot.ack[0]), 3);
	detach(&a);
}

/* The application's side: an emit of `text` with `ref`'s headers, through emit frame ef. */
static void app_emit(struct fake_app *a, const struct ferry_app_desc *ref, uint32_t ef,
		     const char *text, uint32_t len)
{
	struct ferry_app_desc e = *ref;

	if (ef < a->q->emit_frames)
		memcpy(a->area + a->q->emit_frames_off + (size_t)ef * a->q->frame_size, text,
		       strlen(text));
	e.verdict = FERRY_APP_EMIT;
	e.emit_frame = ef;
	e.len = len;
	app_return(a, &e);
}

/*
 * Emit: a new packet with a held packet's headers and the emit frame's
 * payload goes on along the chain ahead of it; the reference still comes
 * back itself.  Every frame accounted for.
 */
static void test_emit(void)
{
	struct fake_app a;
	struct ferry_app_desc *d, r0, r1;
	uint64_t c[FERRY_SERVICE_COUNTERS] = {};
	struct svc_out o, ref;

	if (!attach(&a, "{name: t, owner: root, ring_size: 64}"))
		return;
	CU_ASSERT_EQUAL(a.q->emit_frames, 64);
	send_n(a.h, 2, 0);
	d = app_next(&a);
	r0 = *d;
	d = app_next(&a);
	r1 = *d;
	app_emit(&a, &r0, 0, "an emitted payload, longer than the packet", 42);
	app_emit(&a, &r1, 1, "tiny", 4);
	r0.verdict = r1.verdict = FERRY_APP_PASS;
	app_return(&a, &r0);
	app_return(&a, &r1);
	harness__tick(a.h, 1000);
	CU_ASSERT_EQUAL_FATAL(harness__nr_out(a.h), 4);
	/* In FROM_APP's order: the two emits, then their references. */
	CU_ASSERT_EQUAL(svc_out_read(harness__out(a.h, 2), &ref), 0);
	CU_ASSERT_EQUAL(ref.payload_len, 20);
	CU_ASSERT(!memcmp(ref.payload, "pkt 0", 5));
	CU_ASSERT_EQUAL(svc_out_read(harness__out(a.h, 0), &o), 0);
	CU_ASSERT(o.csum_ok);
	CU_ASSERT_EQUAL(o.payload_len, 42);
	CU_ASSERT(!memcmp(o.payload, "an emitted payload, longer than the packet", 42));
	/* The reference's session: its addresses and ports, never the application's. */
	CU_ASSERT_STRING_EQUAL(o.src, ref.src);
	CU_ASSERT_STRING_EQUAL(o.dst, ref.dst);
	CU_ASSERT_EQUAL(o.sport, ref.sport);
	CU_ASSERT_EQUAL(o.dport, ref.dport);
	CU_ASSERT_EQUAL(svc_out_read(harness__out(a.h, 1), &o), 0);
	CU_ASSERT(o.csum_ok);
	CU_ASSERT_EQUAL(o.payload_len, 4);
	CU_ASSERT(!memcmp(o.payload, "tiny", 4));
	CU_ASSERT_EQUAL(svc_out_read(harness__out(a.h, 3), &o), 0);
	CU_ASSERT(o.csum_ok);
	CU_ASSERT_EQUAL(o.payload_len, 20);
	CU_ASSERT(!memcmp(o.payload, "pkt 1", 5));
	CU_ASSERT_EQUAL(harness__svc_stats(a.h, 1)->sent, 4);
	CU_ASSERT_EQUAL(atomic_load(&a.c->slot.wstat[0].emitted), 2);
	CU_ASSERT_EQUAL(atomic_load(&a.c->slot.wstat[0].emit_dropped), 0);
	CU_ASSERT_EQUAL(atomic_load(&a.c->slot.wstat[0].out), 2);
	harness__service_counters(a.h, 0, c);
	CU_ASSERT_EQUAL(c[C_BAD_DESC], 0);
	CU_ASSERT_EQUAL(harness__held_frames(a.h), 0);
	CU_ASSERT_EQUAL(harness__check_frames(a.h), 0);
	detach(&a);
}

/* Every bad emit is counted in bad_desc and sends nothing; no free frame: emit_dropped. */
static void test_emit_bad(void)
{
	struct fake_app a;
	struct ferry_app_desc *d, r, gone;
	uint64_t c[FERRY_SERVICE_COUNTERS] = {};
	uint64_t bad = 0;

	if (!attach(&a, "{name: t, owner: root, ring_size: 64}"))
		return;
	send_n(a.h, 2, 0);
	d = app_next(&a);
	r = *d;
	gone = *app_next(&a);
	gone.verdict = FERRY_APP_PASS;
	app_return(&a, &gone);
	harness__tick(a.h, 1000);
	CU_ASSERT_EQUAL(harness__nr_out(a.h), 1);
	harness__clear_out(a.h);

	app_emit(&a, &r, 64, "x", 1); /* emit frame out of range */
	bad++;
	app_emit(&a, &r, 0, "x", 2049); /* longer than a frame */
	bad++;
	app_emit(&a, &gone, 0, "x", 1); /* a reference returned already */
	bad++;
	{
		struct ferry_app_desc e = r;

		e.frame = 64; /* a reference out of range */
		app_emit(&a, &e, 0, "x", 1);
		e = r;
		e.cookie ^= 1 << 12; /* a stale cookie */
		app_emit(&a, &e, 0, "x", 1);
		e = r;
		e.frame = (r.frame + 1) & 63; /* another frame, this cookie */
		app_emit(&a, &e, 0, "x", 1);
		bad += 3;
	}
	harness__tick(a.h, 1000);
	harness__service_counters(a.h, 0, c);
	CU_ASSERT_EQUAL(c[C_BAD_DESC], bad);
	CU_ASSERT_EQUAL(harness__nr_out(a.h), 0);
	/* FERRY_APP_MAX_EMITS per reference, then bad. */
	for (int i = 0; i < FERRY_APP_MAX_EMITS + 2; i++)
		app_emit(&a, &r, (uint32_t)i, "more", 4);
	bad += 2;
	harness__tick(a.h, 1000);
	memset(c, 0, sizeof(c));
	harness__service_counters(a.h, 0, c);
	CU_ASSERT_EQUAL(c[C_BAD_DESC], bad);
	CU_ASSERT_EQUAL(harness__nr_out(a.h), FERRY_APP_MAX_EMITS);
	CU_ASSERT_EQUAL(atomic_load(&a.c->slot.wstat[0].emitted), FERRY_APP_MAX_EMITS);
	r.verdict = FERRY_APP_PASS;
	app_return(&a, &r);
	harness__tick(a.h, 1000);
	CU_ASSERT_EQUAL(harness__nr_out(a.h), FERRY_APP_MAX_EMITS + 1);
	CU_ASSERT_EQUAL(harness__held_frames(a.h), 0);
	CU_ASSERT_EQUAL(harness__check_frames(a.h), 0);

	/* No frame for it (the services' budget spent): counted, and the reference unharmed. */
	harness__clear_out(a.h);
	send_n(a.h, 1, 0);
	r = *app_next(&a);
	harness__worker(a.h)->hold_budget = harness__held_frames(a.h);
	app_emit(&a, &r, 5, "none", 4);
	r.verdict = FERRY_APP_PASS;
	app_return(&a, &r);
	harness__tick(a.h, 1000);
	CU_ASSERT_EQUAL(atomic_load(&a.c->slot.wstat[0].emit_dropped), 1);
	CU_ASSERT_EQUAL(atomic_load(&a.c->slot.wstat[0].emitted), FERRY_APP_MAX_EMITS);
	CU_ASSERT_EQUAL(harness__nr_out(a.h), 1);
	memset(c, 0, sizeof(c));
	harness__service_counters(a.h, 0, c);
	CU_ASSERT_EQUAL(c[C_BAD_DESC], bad);
	CU_ASSERT_EQUAL(harness__held_frames(a.h), 0);
	CU_ASSERT_EQUAL(harness__check_frames(a.h), 0);
	detach(&a);
}

/* ---- the area's layout and descriptor checks, pure ---- */

static void test_area_layout(void)
{
	uint32_t rings[] = { 64, 1024, 4096 };

	CU_ASSERT_EQUAL(app_area__size(0, 64), 0);
	CU_ASSERT_EQUAL(app_area__size(65, 64), 0);
	CU_ASSERT_EQUAL(app_area__size(1, 100), 0);
	CU_ASSERT_EQUAL(app_area__size(1, 8192), 0);
	for (unsigned int k = 0; k < 3; k++) {
		for (uint32_t nq = 1; nq <= 64; nq *= 4) {
			uint64_t size = app_area__size(nq, rings[k]), end = 0;
			uint8_t *mem = aligned_alloc(64, size);
			struct ferry_app_area *a = (struct ferry_app_area *)mem;

			CU_ASSERT_FATAL(mem != NULL);
			memset(mem, 0, size);
			app_area__init(mem, "slot", nq, rings[k]);
			CU_ASSERT_EQUAL(a->magic, FERRY_APP_MAGIC);
			CU_ASSERT_EQUAL(a->version, FERRY_APP_VERSION);
			CU_ASSERT_EQUAL(a->nr_queues, nq);
			CU_ASSERT_EQUAL(a->size, size);
			CU_ASSERT_STRING_EQUAL(a->slot, "slot");
			end = sizeof(*a);
			for (uint32_t q = 0; q < nq; q++) {
				struct app_queue_layout l;
				struct ferry_app_queue *qu =
					(struct ferry_app_queue *)(mem + a->queue_off[q]);

				app_area__queue_layout(rings[k], q, &l);
				CU_ASSERT_EQUAL(l.queue_off, a->queue_off[q]);
				CU_ASSERT_EQUAL(l.to_desc_off, qu->to_app.desc_off);
				CU_ASSERT_EQUAL(l.from_desc_off, qu->from_app.desc_off);
				CU_ASSERT_EQUAL(l.frames_off, qu->frames_off);
			}
			for (uint32_t q = 0; q < nq; q++) {
				struct ferry_app_queue *qu =
					(struct ferry_app_queue *)(mem + a->queue_off[q]);
				uint64_t dsz = (uint64_t)rings[k] * sizeof(struct ferry_app_desc);

				/* In order, aligned, not overlapping, inside the area. */
				CU_ASSERT(a->queue_off[q] >= end && a->queue_off[q] % 64 == 0);
				CU_ASSERT(qu->to_app.desc_off >= a->queue_off[q] + sizeof(*qu));
				CU_ASSERT(qu->to_app.desc_off % 64 == 0);
				CU_ASSERT(qu->from_app.desc_off >= qu->to_app.desc_off + dsz);
				CU_ASSERT(qu->from_app.desc_off % 64 == 0);
				CU_ASSERT(qu->frames_off >= qu->from_app.desc_off + dsz);
				CU_ASSERT(qu->frames_off % 64 == 0);
				CU_ASSERT_EQUAL(qu->to_app.size, rings[k]);
				CU_ASSERT_EQUAL(qu->from_app.size, rings[k]);
				CU_ASSERT_EQUAL(qu->frames, rings[k]);
				CU_ASSERT_EQUAL(qu->frame_size, 2048);
				CU_ASSERT(qu->emit_frames_off >= qu->frames_off + (uint64_t)rings[k] * 2048);
				CU_ASSERT(qu->emit_frames_off % 64 == 0);
				CU_ASSERT_EQUAL(qu->emit_frames, rings[k]);
				end = qu->emit_frames_off + (uint64_t)rings[k] * 2048;
				CU_ASSERT(end <= size);
			}
			free(mem);
		}
	}
}

static void test_desc_checks(void)
{
	struct app_inflight fl[64] = {};
	struct ferry_app_desc d = { .frame = 5, .len = 100, .cookie = app_cookie(5, 7),
				    .verdict = FERRY_APP_PASS };

	fl[5] = (struct app_inflight){ .live = true, .seq = 7, .cap = 100 };
	CU_ASSERT(app_area__desc_ok(&d, fl, 64));
	d.verdict = FERRY_APP_DROP;
	CU_ASSERT(app_area__desc_ok(&d, fl, 64));
	d.verdict = 0;
	CU_ASSERT(!app_area__desc_ok(&d, fl, 64));
	d.verdict = 3;
	CU_ASSERT(!app_area__desc_ok(&d, fl, 64));
	d.verdict = FERRY_APP_PASS;
	d.len = 101;
	CU_ASSERT(!app_area__desc_ok(&d, fl, 64));
	d.len = 0;
	CU_ASSERT(app_area__desc_ok(&d, fl, 64));
	d.cookie = app_cookie(5, 8);
	CU_ASSERT(!app_area__desc_ok(&d, fl, 64));
	d.cookie = app_cookie(6, 7);
	CU_ASSERT(!app_area__desc_ok(&d, fl, 64));
	d.frame = 64;
	d.cookie = app_cookie(64, 7);
	CU_ASSERT(!app_area__desc_ok(&d, fl, 64));
	d.frame = UINT32_MAX;
	d.cookie = UINT32_MAX;
	CU_ASSERT(!app_area__desc_ok(&d, fl, 64));
	d.frame = 5;
	d.cookie = app_cookie(5, 7);
	fl[5].live = false;
	CU_ASSERT(!app_area__desc_ok(&d, fl, 64));
	/* The use count wraps within its bits. */
	fl[5] = (struct app_inflight){ .live = true, .seq = 1u << 20, .cap = 100 };
	d.cookie = app_cookie(5, 0);
	CU_ASSERT(app_area__desc_ok(&d, fl, 64));
	/* A fixed length (TCP): PASS exactly cap; DROP whatever. */
	fl[5].fixed_len = true;
	d.len = 99;
	CU_ASSERT(!app_area__desc_ok(&d, fl, 64));
	d.len = 100;
	CU_ASSERT(app_area__desc_ok(&d, fl, 64));
	d.len = 0;
	d.verdict = FERRY_APP_DROP;
	CU_ASSERT(app_area__desc_ok(&d, fl, 64));
}

/* ---- configure() alone ---- */

static struct ferry_daemon cfg_d;

static const char cfg_fmt[] = "interfaces:\n"
			      "  - name: px-c\n"
			      "flows:\n"
			      "  - name: f\n"
			      "    match: {protocol: udp, destination: 198.18.1.1, port: 5000}\n"
			      "    services:\n"
			      "      - app:\n"
			      "          %s\n";

static int configure(const char *args, char **capture, void **confp)
{
	const struct ferry_service_ops *ops = service__find("app");
	struct cfg_errors errs = {.file = "t.yaml"};
	struct ferry_flow_ctx fc = {.daemon = &cfg_d, .flow_id = 3};
	char yaml[2048];
	int err;

	errs.capture = strdup("");
	snprintf(yaml, sizeof(yaml), cfg_fmt, args);
	err = config__load_string(&cfg_d.cfg, "t.yaml", yaml, &errs);
	CU_ASSERT_EQUAL_FATAL(err, 0);
	fc.flow = &cfg_d.cfg.flows[0];
	*confp = NULL;
	err = ops->configure(&fc, cfg_d.cfg.flows[0].services[0].args, &errs, confp);
	*capture = errs.capture;
	return err;
}

static const struct svc_app_conf *expect_ok(const char *args)
{
	char *capture = NULL;
	void *conf;

	CU_ASSERT_EQUAL(configure(args, &capture, &conf), 0);
	if (capture && *capture)
		fprintf(stderr, "\n  unexpected:\n%s", capture);
	free(capture);
	return conf;
}

static void done(void *conf)
{
	if (conf)
		service__find("app")->destroy(conf);
	config__free(&cfg_d.cfg);
}

static void expect_error(const char *args, const char *msg)
{
	char *capture = NULL;
	void *conf;

	CU_ASSERT_EQUAL(configure(args, &capture, &conf), -EINVAL);
	CU_ASSERT_PTR_NULL(conf);
	if (!capture || !strstr(capture, msg)) {
		fprintf(stderr, "\n  expected: %s\n  captured:\n%s", msg, capture ? capture : "");
		CU_FAIL("error message");
	}
	free(capture);
	config__free(&cfg_d.cfg);
}

static void test_config(void)
{
	const struct svc_app_conf *c;

	c = expect_ok("{name: transcode, owner: root}");
	CU_ASSERT_STRING_EQUAL(c->name, "transcode");
	CU_ASSERT_EQUAL(c->flow_id, 3);
	CU_ASSERT(!c->owner_is_group);
	CU_ASSERT_EQUAL(c->owner_uid, 0);
	CU_ASSERT_EQUAL(c->on_failure, SVC_APP_BYPASS);
	CU_ASSERT_EQUAL(c->ring_size, 1024);
	CU_ASSERT_EQUAL(c->timeout_ns, 100ull * 1000 * 1000);
	done((void *)c);

	c = expect_ok("{name: A-z_0.9, owner: 'group:root', on_failure: drop, ring_size: 64, "
		      "timeout_ms: 10000}");
	CU_ASSERT(c->owner_is_group);
	CU_ASSERT_EQUAL(c->owner_gid, 0);
	CU_ASSERT_EQUAL(c->on_failure, SVC_APP_DROP);
	CU_ASSERT_EQUAL(c->ring_size, 64);
	CU_ASSERT_EQUAL(c->timeout_ns, 10000ull * 1000 * 1000);
	done((void *)c);

	/* A numeric uid need not exist in passwd; nobody is 65534 on Debian. */
	c = expect_ok("{name: abcdefghijklmnopqrstuvwxyz01234, owner: 4000000, ring_size: 4096}");
	CU_ASSERT_EQUAL(c->owner_uid, 4000000);
	done((void *)c);
	c = expect_ok("{name: n, owner: nobody}");
	CU_ASSERT_EQUAL(c->owner_uid, 65534);
	done((void *)c);
}

static void test_config_errors(void)
{
	expect_error("{owner: root}", "t.yaml:8:11: app: missing key 'name'");
	expect_error("{name: t}", "t.yaml:8:11: app: missing key 'owner'");
	expect_error("", "t.yaml:7:9: app: expected a mapping with name and owner");
	expect_error("{name: 'a b', owner: root}",
		     "t.yaml:8:18: app: name: 'a b' is not 1..31 characters of A-Za-z0-9_.-");
	expect_error("{name: '', owner: root}",
		     "t.yaml:8:18: app: name: '' is not 1..31 characters of A-Za-z0-9_.-");
	expect_error("{name: abcdefghijklmnopqrstuvwxyz012345, owner: root}", "t.yaml:8:18: ");
	expect_error("{name: t, owner: no-such-user-here}",
		     "t.yaml:8:28: app: owner: no such user 'no-such-user-here'");
	expect_error("{name: t, owner: 'group:no-such-group'}",
		     "t.yaml:8:28: app: owner: no such group 'no-such-group'");
	expect_error("{name: t, owner: 4294967295}", "t.yaml:8:28: app: owner: no such user");
	expect_error("{name: t, owner: root, on_failure: pass}",
		     "t.yaml:8:46: app: on_failure: 'pass' is not one of bypass, drop");
	expect_error("{name: t, owner: root, ring_size: 100}",
		     "t.yaml:8:45: app: ring_size: 100 is not a power of two");
	expect_error("{name: t, owner: root, ring_size: 32}",
		     "t.yaml:8:45: value 32 is out of range 64..4096");
	expect_error("{name: t, owner: root, ring_size: 8192}",
		     "t.yaml:8:45: value 8192 is out of range 64..4096");
	expect_error("{name: t, owner: root, timeout_ms: 0}",
		     "t.yaml:8:46: value 0 is out of range 1..10000");
	expect_error("{name: t, owner: root, colour: red}", "t.yaml:8:42: app: unknown key 'colour'");
}

static CU_TestInfo app_tests[] = {
	{ "no app attached: bypass", test_bypass },
	{ "no app attached: drop as app_unavailable", test_drop },
	{ "attached: payloads out and back, PASS, DROP, grow, shrink", test_round_trip },
	{ "attached: hostile descriptors counted and ignored", test_hostile },
	{ "attached: a FROM_APP producer far ahead counted once, not drained again", test_producer_far_ahead },
	{ "attached: timeouts, a hung application (stalls, not packets)", test_hung },
	{ "attached: TCP: a PASS with another length is refused", test_tcp_len },
	{ "attached: a full queue, detach with packets out, re-attach", test_queue_full },
	{ "attached: one packet kept while many pass, its timeout", test_one_kept },
	{ "attached: the worker's hold budget spent takes on_failure", test_hold_budget },
	{ "attached: need-wakeup, one eventfd write per batch", test_wakeup },
	{ "attached: the worker sleeps on the application's eventfd", test_worker_sleep },
	{ "attached: detach with packets out leaves no wait on the old area", test_detach_no_wait },
	{ "attached: a detach taken up in a chain run drops the slot's waits first", test_detach_forgets_waits },
	{ "attached: an area header rewritten by the application is not trusted", test_scribbled_header },
	{ "attached: emit, a new packet with a held packet's headers", test_emit },
	{ "attached: bad emits counted, no frame for one counted", test_emit_bad },
	{ "area layout", test_area_layout },
	{ "descriptor checks", test_desc_checks },
	{ "arguments and owners", test_config },
	{ "config errors at FILE:LINE:COL", test_config_errors },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(svc_app, "svc_app", app_tests, NULL, NULL)
