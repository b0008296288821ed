// SPDX-License-Identifier: BSD-2-Clause
/*
 * app: a slot in a flow's chain where an unprivileged application process
 * runs the flow's packets (services/ferry_app.h is the contract).
 *
 *   app:
 *     name: transcode        # required: what the application attaches to
 *     owner: alice           # required: a user, group:NAME, or a numeric uid
 *     on_failure: bypass     # or drop: when no application answers
 *     ring_size: 1024        # a power of two 64..4096: frames per worker queue
 *     timeout_ms: 100        # 1..10000: a packet not returned by then takes on_failure
 *
 * The operator declares the slot; the application of `owner` attaches at
 * run time through ferryd's control socket (`control_socket`).  Names are
 * unique across all flows (lib/config.c checks that: an application names
 * a slot, not a flow).  The owner is resolved once, at configure: a user
 * deleted later keeps its uid.
 *
 * With no application attached, a packet that carries a UDP or TCP payload
 * takes the slot's on_failure: `bypass` lets it go on along the chain
 * (counted `bypassed`), `drop` drops it as `app_unavailable`.  Packets
 * without a payload (a bare TCP ACK) and ICMP errors go on untouched: the
 * application sees payloads only.
 */
#include <errno.h>
#include <unistd.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app_area.h"
#include "ferry_app.h"
#include "service.h"
#include "svc_app.h"
#include "svc_args.h"

#define APP_NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"

enum app_counter {
	APP_TO_APP,   /* payloads placed on a TO_APP ring */
	APP_BYPASSED, /* packets let on by on_failure bypass */
	APP_BAD_DESC, /* descriptors from the application that failed validation */
	APP_TIMEOUTS, /* packets not returned within timeout_ms */
};

extern const struct ferry_service_ops svc_app_ops;

struct app_args {
	char name[FERRY_APP_NAME_LEN];
	char owner[64];
	int on_failure;
	uint32_t ring_size, timeout_ms;
};

static const struct cfg_word app_failure_words[] = {
	{ "bypass", SVC_APP_BYPASS },
	{ "drop", SVC_APP_DROP },
	{ NULL, 0 },
};

static const struct cfg_arg app_arg_list[] = {
	{ .name = "name",
	  .type = CFG_ARG_STRING,
	  .offset = offsetof(struct app_args, name),
	  .size = sizeof(((struct app_args *)0)->name),
	  .required = true },
	{ .name = "owner",
	  .type = CFG_ARG_STRING,
	  .offset = offsetof(struct app_args, owner),
	  .size = sizeof(((struct app_args *)0)->owner),
	  .required = true },
	{ .name = "on_failure",
	  .type = CFG_ARG_WORD,
	  .offset = offsetof(struct app_args, on_failure),
	  .words = app_failure_words,
	  .def = SVC_APP_BYPASS },
	{ .name = "ring_size",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct app_args, ring_size),
	  .min = SVC_APP_MIN_RING,
	  .max = SVC_APP_MAX_RING,
	  .def = SVC_APP_DEFAULT_RING },
	{ .name = "timeout_ms",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct app_args, timeout_ms),
	  .min = 1,
	  .max = 10000,
	  .def = 100 },
};

static const struct cfg_args app_args_tbl = {
	.prefix = "app",
	.expect = " with name and owner",
	.args = app_arg_list,
	.nr = sizeof(app_arg_list) / sizeof(app_arg_list[0]),
};

/*
 * The configured slots, for daemon/control.c to know whether a conf it
 * attached an application to still exists after a reload.  Main thread
 * only: configure() and destroy() run there.
 */
static struct svc_app_conf **live;
static size_t nr_live, live_cap;
static uint64_t last_serial;

static int live_add(struct svc_app_conf *c)
{
	if (nr_live == live_cap) {
		size_t cap = live_cap ? live_cap * 2 : 16;
		struct svc_app_conf **n = realloc(live, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		live = n;
		live_cap = cap;
	}
	live[nr_live++] = c;
	return 0;
}

static void live_del(const struct svc_app_conf *c)
{
	for (size_t i = 0; i < nr_live; i++)
		if (live[i] == c) {
			live[i] = live[--nr_live];
			break;
		}
	if (!nr_live) {
		free(live);
		live = NULL;
		live_cap = 0;
	}
}

bool svc_app__alive(const struct svc_app_conf *conf, uint64_t serial)
{
	for (size_t i = 0; i < nr_live; i++)
		if (live[i] == conf)
			return conf->serial == serial;
	return false;
}

/* "alice", "group:video" or "1000": *conf's owner fields, or -ENOENT. */
static int resolve_owner(const char *owner, struct svc_app_conf *c)
{
	char *end;

	if (!strncmp(owner, "group:", 6)) {
		struct group *gr = getgrnam(owner + 6);

		if (!gr)
			return -ENOENT;
		c->owner_is_group = true;
		c->owner_gid = gr->gr_gid;
		return 0;
	}
	if (*owner >= '0' && *owner <= '9') {
		unsigned long v;

		errno = 0;
		v = strtoul(owner, &end, 10);
		/* (uid_t)-1 means "no uid" to setresuid() and friends: never an owner. */
		if (errno || *end || v >= (uid_t)-1)
			return -ENOENT;
		c->owner_uid = (uid_t)v;
		return 0;
	}
	{
		struct passwd *pw = getpwnam(owner);

		if (!pw)
			return -ENOENT;
		c->owner_uid = pw->pw_uid;
	}
	return 0;
}

static int app_configure(const struct ferry_flow_ctx *fc, const struct cfg_node *args,
			 struct cfg_errors *errs, void **confp)
{
	struct app_args a = {};
	struct svc_app_conf *c;

	if (cfg_args_parse(&app_args_tbl, args, &a, errs))
		return -EINVAL;
	if (!a.name[0] || strspn(a.name, APP_NAME_CHARS) != strlen(a.name)) {
		cfg_node_error(errs, cfg_map_get(args, "name"),
			       "app: name: '%s' is not 1..31 characters of A-Za-z0-9_.-", a.name);
		return -EINVAL;
	}
	if (a.ring_size & (a.ring_size - 1)) {
		cfg_node_error(errs, cfg_map_get(args, "ring_size"),
			       "app: ring_size: %u is not a power of two", a.ring_size);
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (resolve_owner(a.owner, c)) {
		cfg_node_error(errs, cfg_map_get(args, "owner"),
			       "app: owner: no such %s '%s'",
			       strncmp(a.owner, "group:", 6) ? "user" : "group",
			       strncmp(a.owner, "group:", 6) ? a.owner : a.owner + 6);
		free(c);
		return -EINVAL;
	}
	memcpy(c->name, a.name, sizeof(c->name));
	c->flow_id = fc->flow_id;
	c->on_failure = (enum svc_app_failure)a.on_failure;
	c->ring_size = a.ring_size;
	c->timeout_ns = (uint64_t)a.timeout_ms * 1000000;
	c->pos = svc_entry_index(fc, args);
	c->slot.wake_app_fd = -1;
	c->slot.wake_ferry_fd = -1;
	c->serial = ++last_serial;
	if (live_add(c)) {
		free(c);
		return -ENOMEM;
	}
	*confp = c;
	return 0;
}

/*
 * Stalls in a row after which a worker asks for the application's detach.
 * A stall is a timeout_ms with packets timing out and no answer: the
 * packets of one stall (a burst the application never returned) time out
 * together and count once, so a hung application is told from a slow
 * burst by time, not by how many packets it held.
 */
#define APP_HUNG_STALLS 3
/*
 * While packets are out, an awake worker looks at FROM_APP this often; an
 * idle one (interrupt mode) sleeps until the application wakes it.
 */
#define APP_POLL_NS (20 * 1000)
/*
 * Packets resumed per ferry_worker__resume() call: a chain run holds a
 * burst (WORKER_MAX_BATCH) and what its services emit, and drops a larger one.
 */
#define APP_RESUME_MAX 256
/* Packets out are checked for timeouts at most this often. */
#define APP_SCAN_NS (200 * 1000)

/* A packet the application has: ferryd's copy of its ferry_pkt. */
struct app_entry {
	struct ferry_pkt pkt;
	uint64_t sent_ns;
};

struct app_worker {
	uint64_t counters[FERRY_SERVICE_COUNTERS];
	struct ferry_worker *w;
	uint32_t id;		/* the worker's, and its queue's in the area */
	uint64_t gen;		/* the slot generation this state follows */
	bool attached;
	/* The worker's queue in the attached area. */
	struct ferry_app_queue *q;
	struct ferry_app_desc *to_desc, *from_desc;
	uint8_t *frames, *emit_frames;
	uint32_t to_prod, from_cons; /* ferryd's own indexes: never read back */
	int wake_fd;		/* the eventfd the application writes, -1: none */
	bool armed;		/* FROM_APP's NEED_WAKEUP is ours to clear */
	uint64_t sleeps;	/* times the worker went idle asking the application for a wake-up */
	/* Frames not out: a stack of indexes. */
	uint32_t *free_frames;
	uint32_t nr_free;
	struct app_inflight *inflight; /* per frame */
	struct app_entry *ent;	       /* per frame */
	struct ferry_pkt *emit;	       /* one drain's emitted packets, ring_size at most */
	uint64_t next_scan_ns; /* the next look for packets out too long */
	uint32_t nr_out;
	uint32_t stalls_in_row;	/* timeout periods with timeouts and no answer since */
	uint64_t stall_ns;	/* when the last one began */
	uint64_t rtt_ns, rtts;
	uint64_t out, dropped; /* for ferryctl apps: PASSed back; dropped, however */
	uint64_t emitted, emit_dropped; /* FERRY_APP_EMIT sent on; refused for want of a frame */
};

static int app_worker_init(void *conf, struct ferry_worker *w, void **wstate)
{
	const struct svc_app_conf *c = conf;
	struct app_worker *aw = calloc(1, sizeof(*aw));

	if (!aw)
		return -ENOMEM;
	aw->w = w;
	aw->id = ferry_worker__id(w);
	aw->free_frames = calloc(c->ring_size, sizeof(*aw->free_frames));
	aw->inflight = calloc(c->ring_size, sizeof(*aw->inflight));
	aw->ent = calloc(c->ring_size, sizeof(*aw->ent));
	aw->emit = calloc(c->ring_size, sizeof(*aw->emit));
	if (!aw->free_frames || !aw->inflight || !aw->ent || !aw->emit ||
	    aw->id >= FERRY_APP_MAX_QUEUES) {
		int err = aw->id >= FERRY_APP_MAX_QUEUES ? -E2BIG : -ENOMEM;

		free(aw->free_frames);
		free(aw->inflight);
		free(aw->ent);
		free(aw->emit);
		free(aw);
		return err;
	}
	*wstate = aw;
	return 0;
}

bool svc_app__has_payload(const struct ferry_pkt *p)
{
	unsigned int proto = ferry_pkt_l4_proto(p);

	return (proto == IPPROTO_UDP || proto == IPPROTO_TCP) &&
	       ferry_pkt_payload_off(p) < ferry_pkt_ip_end(p);
}

/* What the slot does with a packet no application takes, in a chain run. */
static void app_fail(const struct svc_app_conf *c, struct app_worker *aw, struct ferry_pkt *p)
{
	if (c->on_failure == SVC_APP_DROP) {
		ferry_pkt_drop(p, FERRY_DROP_app_unavailable);
		aw->dropped++;
		return;
	}
	aw->counters[APP_BYPASSED]++;
}

/* Frame `f` comes back from the application (or is taken back): not out any more. */
static void frame_back(struct app_worker *aw, uint32_t f)
{
	aw->inflight[f].live = false;
	aw->inflight[f].seq++;
	aw->free_frames[aw->nr_free++] = f;
	aw->nr_out--;
}

/*
 * Held packets that leave the slot outside a chain run (tick): PASS ones go
 * on along the chain after the slot, the others are dropped with their
 * reason.  At most ring_size at a time.
 */
static void app_release(const struct svc_app_conf *c, struct app_worker *aw,
			struct ferry_pkt **pass, uint32_t np, struct ferry_pkt **drop, uint32_t nd)
{
	uint32_t i = 0;

	aw->dropped += nd;
	ferry_worker__send_held(aw->w, drop, nd);
	/*
	 * Resume per flow id (one, unless a reload renumbered the flows), in
	 * chain runs of at most a burst: a run has room for a burst and what
	 * its services emit, and drops what exceeds it.
	 */
	while (i < np) {
		uint32_t j = i + 1;

		while (j < np && j - i < APP_RESUME_MAX && pass[j]->flow_id == pass[i]->flow_id)
			j++;
		ferry_worker__resume(aw->w, pass + i, j - i, c->pos);
		i = j;
	}
}

/* Every packet out takes on_failure: the application went away (tick or destroy). */
static void app_flush(const struct svc_app_conf *c, struct app_worker *aw, bool can_resume)
{
	struct ferry_pkt *pass[SVC_APP_MAX_RING], *drop[SVC_APP_MAX_RING];
	uint32_t np = 0, nd = 0;

	for (uint32_t f = 0; f < c->ring_size; f++) {
		struct ferry_pkt *p = &aw->ent[f].pkt;

		if (!aw->inflight[f].live)
			continue;
		frame_back(aw, f);
		if (c->on_failure == SVC_APP_DROP || !can_resume) {
			ferry_pkt_drop(p, FERRY_DROP_app_unavailable);
			drop[nd++] = p;
		} else {
			aw->counters[APP_BYPASSED]++;
			pass[np++] = p;
		}
	}
	app_release(c, aw, pass, np, drop, nd);
}

/* Takes up the slot's generation g: the area it names when odd, none when even. */
static void app_follow(struct svc_app_conf *c, struct app_worker *aw, uint64_t g)
{
	aw->attached = false;
	if (g & 1) {
		struct app_queue_layout l;

		/* Offsets from ferryd's own layout: the application may rewrite the area's. */
		app_area__queue_layout(c->ring_size, aw->id, &l);
		aw->q = (struct ferry_app_queue *)(c->slot.area + l.queue_off);
		aw->to_desc = (struct ferry_app_desc *)(c->slot.area + l.to_desc_off);
		aw->from_desc = (struct ferry_app_desc *)(c->slot.area + l.from_desc_off);
		aw->frames = c->slot.area + l.frames_off;
		aw->emit_frames = c->slot.area + l.emit_frames_off;
		aw->to_prod = 0;
		aw->from_cons = 0;
		aw->wake_fd = c->slot.wake_ferry_fd;
		aw->armed = false;
		aw->nr_free = 0;
		for (uint32_t f = c->ring_size; f-- > 0;)
			aw->free_frames[aw->nr_free++] = f;
		aw->next_scan_ns = 0;
		aw->stalls_in_row = 0;
		aw->attached = true;
	}
	aw->gen = g;
	/*
	 * The ack lets daemon/control.c unmap the old area and close its
	 * eventfd: no registration of ours may point at them after it.
	 */
	ferry_worker__forget_waits(aw->w, aw);
	atomic_store_explicit(&c->slot.ack[aw->id], g, memory_order_release);
}

/* The payload room of p's frame from its payload on, capped at a frame of the area. */
static uint32_t payload_cap(const struct app_worker *aw, const struct ferry_pkt *p, uint32_t len)
{
	uint32_t room = ferry_worker__frame_room(aw->w, p), off = ferry_pkt_payload_off(p);

	/* TCP: a payload that changes length would need sequence numbers rewritten. */
	if (ferry_pkt_l4_proto(p) != IPPROTO_UDP)
		return len;
	room = room > off ? room - off : 0;
	return room < APP_FRAME_SIZE ? room : APP_FRAME_SIZE;
}

/* Places p's payload in a free frame and on TO_APP; false when there is no room. */
static bool app_send(const struct svc_app_conf *c, struct app_worker *aw, struct ferry_pkt *p,
		     uint64_t now)
{
	struct ferry_app_ring *r = &aw->q->to_app;
	uint32_t off = ferry_pkt_payload_off(p), len = ferry_pkt_ip_end(p) - off, f, cons;
	struct ferry_app_desc *d;

	cons = atomic_load_explicit((_Atomic uint32_t *)&r->consumer, memory_order_acquire);
	/* A consumer index the application moved beyond what was produced is as good as full. */
	if (!aw->nr_free || aw->to_prod - cons >= c->ring_size || len > APP_FRAME_SIZE)
		return false;
	/*
	 * The worker's budget of held frames is spent: as a full queue, the
	 * slot's on_failure decides, not a hold_budget drop.
	 */
	if (ferry_worker__hold(aw->w, p)) {
		p->verdict = FERRY_VERDICT_NEXT;
		p->drop_reason = 0;
		return false;
	}
	f = aw->free_frames[--aw->nr_free];
	memcpy(aw->frames + (size_t)f * APP_FRAME_SIZE, ferry_pkt_data(p) + off, len);
	aw->inflight[f].live = true;
	aw->inflight[f].emits = 0;
	aw->inflight[f].cap = payload_cap(aw, p, len);
	/* TCP: the session's sequence numbers cannot absorb a length change. */
	aw->inflight[f].fixed_len = ferry_pkt_l4_proto(p) != IPPROTO_UDP;
	aw->ent[f].pkt = *p;
	aw->ent[f].sent_ns = now;
	d = &aw->to_desc[aw->to_prod & (c->ring_size - 1)];
	d->frame = f;
	d->len = len;
	d->cap = aw->inflight[f].cap;
	d->cookie = app_cookie(f, aw->inflight[f].seq);
	d->verdict = 0;
	d->pad = 0;
	aw->to_prod++;
	aw->nr_out++;
	aw->counters[APP_TO_APP]++;
	return true;
}

/*
 * The worker is about to sleep with packets out: asks the application for
 * a wake-up on FROM_APP and looks once more (need-wakeup, like the
 * application's side in libferry_app's recv).  false: answers are there.
 */
static bool app_arm(void *ctx)
{
	struct app_worker *aw = ctx;
	_Atomic uint32_t *flags;

	/* Detached: the area may be unmapped already; nothing to ask for. */
	if (!aw->attached)
		return true;
	flags = (_Atomic uint32_t *)&aw->q->from_app.flags;
	atomic_store_explicit(flags, FERRY_APP_RING_NEED_WAKEUP, memory_order_relaxed);
	aw->armed = true;
	/*
	 * Store-load, the mirror of app_kick()'s: the flag visible before the
	 * producer is read, while the application publishes its producer and
	 * then reads the flag.
	 */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit((_Atomic uint32_t *)&aw->q->from_app.producer,
				 memory_order_acquire) != aw->from_cons)
		return false;
	aw->sleeps++;
	return true;
}

/*
 * Packets are out: FROM_APP is polled while the worker is awake, slept on
 * when it is idle, and the timeout scan bounds the sleep in any case.
 */
static void app_wait(struct app_worker *aw, uint64_t now)
{
	ferry_worker__wait_fd(aw->w, aw->wake_fd, now + APP_POLL_NS, app_arm, aw);
	ferry_worker__wake_at(aw->w, aw->next_scan_ns > now ? aw->next_scan_ns : now);
}

/* Publishes what app_send() placed, and wakes a sleeping application once. */
static void app_kick(struct svc_app_conf *c, struct app_worker *aw, uint64_t now)
{
	const uint8_t one = 1;

	atomic_store_explicit((_Atomic uint32_t *)&aw->q->to_app.producer, aw->to_prod,
			      memory_order_release);
	/*
	 * Store-load: without a full fence the flag may be read before the
	 * producer is visible, while the application sets the flag and reads
	 * the producer (its own fence between them) and sleeps: neither side
	 * would see the other.
	 */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit((_Atomic uint32_t *)&aw->q->to_app.flags, memory_order_relaxed) &
	    FERRY_APP_RING_NEED_WAKEUP) {
		/*
		 * The write end of a pipe only ferryd holds, O_NONBLOCK: a full
		 * pipe (EAGAIN) means a wake-up is pending already.
		 */
		if (write(c->slot.wake_app_fd, &one, sizeof(one)) < 0) {
		}
	}
	app_wait(aw, now);
}

/*
 * A FERRY_APP_EMIT descriptor, validated: a copy of the reference packet's
 * headers in a fresh frame, the emit frame's payload after them, in
 * *e for the caller to send on; false when it is not sent (counted).
 */
static bool app_emit(struct app_worker *aw, const struct ferry_app_desc *d, struct ferry_pkt *e)
{
	const struct ferry_pkt *ref = &aw->ent[d->frame].pkt;

	/* A TCP payload of its own would need sequence space the session does not have. */
	if (ferry_pkt_l4_proto(ref) != IPPROTO_UDP) {
		aw->counters[APP_BAD_DESC]++;
		return false;
	}
	aw->inflight[d->frame].emits++;
	if (ferry_worker__copy_held(aw->w, ref, e)) {
		/* No free frame, or the services hold their budget: the emit is lost, counted. */
		aw->emit_dropped++;
		return false;
	}
	if (ferry_pkt_set_payload_len(aw->w, e, d->len)) {
		/* Longer than the new frame holds after the headers. */
		aw->counters[APP_BAD_DESC]++;
		ferry_pkt_drop(e, FERRY_DROP_service);
		ferry_worker__send_held(aw->w, &e, 1);
		return false;
	}
	memcpy(ferry_pkt_data(e) + ferry_pkt_payload_off(e),
	       aw->emit_frames + (size_t)d->emit_frame * APP_FRAME_SIZE, d->len);
	ferry_pkt_fix_checksums(e);
	aw->emitted++;
	return true;
}

/*
 * Takes back what the application returned on FROM_APP and packets out for
 * longer than timeout_ms: outside a chain run only (tick), as PASS resumes
 * the chain.
 */
static void app_drain(struct svc_app_conf *c, struct app_worker *aw, uint64_t now)
{
	/* Passed: the packets out (returned or timed out) and up to a ring of emits. */
	struct ferry_pkt *pass[2 * SVC_APP_MAX_RING], *drop[SVC_APP_MAX_RING];
	struct ferry_app_ring *r = &aw->q->from_app;
	uint32_t np = 0, nd = 0, ne = 0, prod, n;

	/* Awake: the application need not write the eventfd until we sleep again. */
	if (aw->armed) {
		atomic_store_explicit((_Atomic uint32_t *)&r->flags, 0, memory_order_relaxed);
		aw->armed = false;
	}
	prod = atomic_load_explicit((_Atomic uint32_t *)&r->producer, memory_order_acquire);
	n = prod - aw->from_cons;
	/*
	 * More than the ring holds: a corrupt index, which says nothing of
	 * which descriptors are answers.  Counted once and skipped up to prod
	 * (below), none read: left behind, the same garbage would be drained
	 * again at every tick, the worker busy for nothing.  What is out
	 * takes on_failure at its timeout.
	 */
	if (n > c->ring_size) {
		aw->counters[APP_BAD_DESC]++;
		n = 0;
	}
	for (uint32_t i = 0; i < n; i++) {
		/*
		 * One read of each field of shared memory, into our copy: the
		 * application may change it meanwhile, and a plain struct copy
		 * would let the compiler read a field again after its check.
		 */
		const struct ferry_app_desc *sd =
			&aw->from_desc[(aw->from_cons + i) & (c->ring_size - 1)];
		struct ferry_app_desc d = {
			.frame = __atomic_load_n(&sd->frame, __ATOMIC_RELAXED),
			.len = __atomic_load_n(&sd->len, __ATOMIC_RELAXED),
			.cookie = __atomic_load_n(&sd->cookie, __ATOMIC_RELAXED),
			.verdict = __atomic_load_n(&sd->verdict, __ATOMIC_RELAXED),
			.emit_frame = __atomic_load_n(&sd->emit_frame, __ATOMIC_RELAXED),
		};
		struct ferry_pkt *p;
		uint8_t *frame;

		if (d.verdict == FERRY_APP_EMIT) {
			if (!app_area__emit_ok(&d, aw->inflight, c->ring_size))
				aw->counters[APP_BAD_DESC]++;
			else if (app_emit(aw, &d, &aw->emit[ne]))
				pass[np++] = &aw->emit[ne++];
			continue;
		}
		if (!app_area__desc_ok(&d, aw->inflight, c->ring_size)) {
			aw->counters[APP_BAD_DESC]++;
			continue;
		}
		p = &aw->ent[d.frame].pkt;
		aw->rtt_ns += now - aw->ent[d.frame].sent_ns;
		aw->rtts++;
		frame = aw->frames + (size_t)d.frame * APP_FRAME_SIZE;
		frame_back(aw, d.frame);
		aw->stalls_in_row = 0;
		if (d.verdict == FERRY_APP_DROP) {
			/* The application's own decision: the generic "service" reason. */
			ferry_pkt_drop(p, FERRY_DROP_service);
			drop[nd++] = p;
			continue;
		}
		if (d.len != ferry_pkt_ip_end(p) - ferry_pkt_payload_off(p) &&
		    ferry_pkt_set_payload_len(aw->w, p, d.len)) {
			/* Within cap, so within the frame: cannot happen, but never trust. */
			aw->counters[APP_BAD_DESC]++;
			ferry_pkt_drop(p, FERRY_DROP_service);
			drop[nd++] = p;
			continue;
		}
		memcpy(ferry_pkt_data(p) + ferry_pkt_payload_off(p), frame, d.len);
		ferry_pkt_fix_checksums(p);
		aw->out++;
		pass[np++] = p;
	}
	aw->from_cons = prod;
	atomic_store_explicit((_Atomic uint32_t *)&r->consumer, aw->from_cons, memory_order_release);

	/*
	 * Timeouts: a scan of the frames out, an eighth of the timeout apart
	 * (at least APP_SCAN_NS), so a packet takes on_failure at most 1/8
	 * late, whatever order the application returns them in.
	 */
	if (aw->nr_out && now >= aw->next_scan_ns) {
		uint64_t step = c->timeout_ns / 8;
		bool timed_out = false;

		aw->next_scan_ns = now + (step > APP_SCAN_NS ? step : APP_SCAN_NS);
		for (uint32_t f = 0; f < c->ring_size; f++) {
			struct ferry_pkt *p = &aw->ent[f].pkt;

			if (!aw->inflight[f].live || now - aw->ent[f].sent_ns < c->timeout_ns)
				continue;
			frame_back(aw, f);
			aw->counters[APP_TIMEOUTS]++;
			timed_out = true;
			if (c->on_failure == SVC_APP_DROP) {
				ferry_pkt_drop(p, FERRY_DROP_app_unavailable);
				drop[nd++] = p;
			} else {
				aw->counters[APP_BYPASSED]++;
				pass[np++] = p;
			}
		}
		/* A new stall only a whole timeout after the last one began. */
		if (timed_out && (!aw->stalls_in_row || now - aw->stall_ns >= c->timeout_ns)) {
			aw->stall_ns = now;
			if (++aw->stalls_in_row == APP_HUNG_STALLS)
				atomic_store_explicit(&c->slot.hung, true, memory_order_relaxed);
		}
	}
	app_release(c, aw, pass, np, drop, nd);
}

static void app_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	struct svc_app_conf *c = conf;
	struct app_worker *aw = wstate;
	uint64_t g = atomic_load_explicit(&c->slot.gen, memory_order_acquire);
	uint64_t now = ferry_worker__now_ns(w);
	bool sent = false;

	/*
	 * A new generation: taken up here only with nothing out, as the
	 * packets out may have to resume the chain (tick's job); until then
	 * this batch takes on_failure.
	 */
	if (g != aw->gen) {
		if (aw->nr_out) {
			ferry_worker__wake_at(w, now);
			for (uint32_t i = 0; i < b->n; i++)
				if (svc_app__has_payload(b->pkts[i]))
					app_fail(c, aw, b->pkts[i]);
			return;
		}
		app_follow(c, aw, g);
	}
	for (uint32_t i = 0; i < b->n; i++) {
		struct ferry_pkt *p = b->pkts[i];

		if (!svc_app__has_payload(p))
			continue;
		if (!aw->attached) {
			app_fail(c, aw, p);
			continue;
		}
		if (app_send(c, aw, p, now)) {
			sent = true;
			continue;
		}
		if (c->on_failure == SVC_APP_DROP) {
			ferry_pkt_drop(p, FERRY_DROP_queue_full);
			aw->dropped++;
		} else {
			aw->counters[APP_BYPASSED]++;
		}
	}
	if (sent)
		app_kick(c, aw, now);
}

static void app_tick(void *conf, void *wstate, struct ferry_worker *w)
{
	struct svc_app_conf *c = conf;
	struct app_worker *aw = wstate;
	uint64_t g = atomic_load_explicit(&c->slot.gen, memory_order_acquire);
	uint64_t now = ferry_worker__now_ns(w);

	if (aw->attached)
		app_drain(c, aw, now);
	if (g != aw->gen) {
		/* The old area is still mapped until this worker acknowledges. */
		app_flush(c, aw, true);
		app_follow(c, aw, g);
	}
	/*
	 * After the generation step, not in app_drain(): a wait registered on
	 * an area this tick then acknowledges away would outlive the area.
	 */
	if (aw->attached && aw->nr_out)
		app_wait(aw, now);
	/* For ferryctl apps (daemon/ferryd.c reads them at each publish). */
	atomic_store_explicit(&c->slot.wstat[aw->id].depth, aw->nr_out, memory_order_relaxed);
	atomic_store_explicit(&c->slot.wstat[aw->id].rtt_ns, aw->rtt_ns, memory_order_relaxed);
	atomic_store_explicit(&c->slot.wstat[aw->id].rtts, aw->rtts, memory_order_relaxed);
	atomic_store_explicit(&c->slot.wstat[aw->id].out, aw->out, memory_order_relaxed);
	atomic_store_explicit(&c->slot.wstat[aw->id].dropped, aw->dropped, memory_order_relaxed);
	atomic_store_explicit(&c->slot.wstat[aw->id].sleeps, aw->sleeps, memory_order_relaxed);
	atomic_store_explicit(&c->slot.wstat[aw->id].emitted, aw->emitted, memory_order_relaxed);
	atomic_store_explicit(&c->slot.wstat[aw->id].emit_dropped, aw->emit_dropped,
			      memory_order_relaxed);
}

static void app_stats(void *conf, void *wstate, uint64_t counters[FERRY_SERVICE_COUNTERS])
{
	const struct app_worker *aw = wstate;

	for (int i = 0; i < FERRY_SERVICE_COUNTERS; i++)
		counters[i] += aw->counters[i];
}

static void app_worker_destroy(void *conf, void *wstate)
{
	struct svc_app_conf *c = conf;
	struct app_worker *aw = wstate;

	/* The worker is parked or stopped: nothing runs the chain any more. */
	app_flush(c, aw, false);
	atomic_store_explicit(&c->slot.ack[aw->id], UINT64_MAX, memory_order_release);
	free(aw->free_frames);
	free(aw->inflight);
	free(aw->ent);
	free(aw->emit);
	free(aw);
}

static void app_destroy(void *conf)
{
	live_del(conf);
	free(conf);
}

bool svc_app__is_app(const struct ferry_service_ops *ops)
{
	return ops == &svc_app_ops;
}

const struct ferry_service_ops svc_app_ops = {
	.name = "app",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.configure = app_configure,
	.worker_init = app_worker_init,
	.process = app_process,
	.tick = app_tick,
	.stats = app_stats,
	.worker_destroy = app_worker_destroy,
	.destroy = app_destroy,
	.counter_names = {
		[APP_TO_APP] = "to_app",
		[APP_BYPASSED] = "bypassed",
		[APP_BAD_DESC] = "bad_desc",
		[APP_TIMEOUTS] = "timeouts",
	},
};
