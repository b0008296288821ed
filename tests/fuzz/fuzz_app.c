// SPDX-License-Identifier: BSD-2-Clause
/*
 * libFuzzer harness: libferry_app (lib/ferry_app.c) against a hostile
 * ferryd.  The library must never crash, whatever the attach reply and the
 * shared area say, before attach and while attached.
 *
 * Each input builds a good area (tests/unit/app_fake.h: 2 queues, rings of
 * 8, frames of 256 bytes), then:
 *   byte 0      what the reply lies about: bit 0 nr_queues (byte 1), bit 1
 *               area_size (bytes 2-3 added, signed), bit 2 a refusal status
 *   then        until a 0xff byte: patches (offset u16, value u8) on the
 *               area's first 1 KiB (the header and the queues' ring fields)
 *               before attach
 *   the rest    rounds of: up to 4 scribbles (offset u16, value u32) anywhere
 *               in the area (producer indexes, descriptors, flags, sizes),
 *               a descriptor pushed on queue 0 (its frame from the input,
 *               some out of range), then recv, an emit per packet, and done.
 * When attach succeeds, every packet recv returns must lie inside the
 * library's own mapping of the area (data .. data + cap), is written over
 * whole, and done must take it back (0, or -ENOBUFS when the scribbles
 * moved FROM_APP's consumer); a refused attach must leave no handle.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../unit/app_fake.h"
#include "ferry_app_client.h"
#include "fuzz.h"

#define SLOT "fuzz"

int LLVMFuzzerInitialize(int *argc, char **argv[])
{
	(void)argc;
	(void)argv;
	return 0;
}

/* The library's mapping of the memfd: the one in /proc/self/maps that is not the fake's. */
static int library_mapping(const struct app_fake *f, uintptr_t *lo, uintptr_t *hi)
{
	char line[512];
	FILE *maps = fopen("/proc/self/maps", "r");
	int found = 0;

	if (!maps)
		return 0;
	while (fgets(line, sizeof(line), maps)) {
		unsigned long a, b;

		if (!strstr(line, "memfd:ferry-app-fake") || sscanf(line, "%lx-%lx", &a, &b) != 2)
			continue;
		if (a == (uintptr_t)f->area)
			continue;
		*lo = a;
		*hi = b;
		found = 1;
	}
	fclose(maps);
	return found;
}

static uint32_t rd16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ferry_app_pkt pkts[16];
	struct ferry_app *app = NULL;
	struct ferry_app_desc *to_desc;
	struct ferry_app_queue *q0;
	uint8_t *frames;
	uint64_t real_size;
	unsigned int real_queues;
	uintptr_t lo = 0, hi = 0;
	struct app_fake f;
	char err[128];
	int sv[2], ret;
	int32_t status = 0;
	size_t i = 0;

	if (size < 4)
		return 0;
	FUZZ_CHECK(app_fake_build(&f, SLOT, 2, 8, 256) == 0, "area: %s", strerror(errno));
	real_size = f.size;
	real_queues = f.nr_queues;
	q0 = app_fake_queue(&f, 0);
	to_desc = (void *)(f.area + q0->to_app.desc_off);
	frames = f.area + q0->frames_off;
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");

	if (data[0] & 1)
		f.nr_queues = data[1];
	if (data[0] & 2)
		f.size += (int16_t)rd16(data + 2);
	if (data[0] & 4)
		status = -(int32_t)data[1];
	for (i = 4; i + 3 <= size && data[i] != 0xff; i += 3)
		f.area[rd16(data + i) % 1024] = data[i + 2];
	if (i < size)
		i++; /* the 0xff */

	FUZZ_CHECK(app_fake_reply(&f, sv[0], status, "fuzzed", NULL, 0) == 0, "reply");
	f.nr_queues = real_queues;
	f.size = real_size;
	ret = ferry_app_attach_fd(sv[1], SLOT, &app, err, sizeof(err));
	if (ret) {
		FUZZ_CHECK(!app, "attach failed (%d) but gave a handle", ret);
		FUZZ_CHECK(err[0], "attach failed (%d) without a reason", ret);
		goto out;
	}
	FUZZ_CHECK(library_mapping(&f, &lo, &hi), "the library's mapping of the area not found");

	while (i < size) {
		uint32_t frame = 0;
		int n;

		for (int k = 0; k < 4 && i + 6 <= size; k++, i += 6) {
			uint32_t off = rd16(data + i) % (f.size - 3), v;

			memcpy(&v, data + i + 2, 4);
			memcpy(f.area + off, &v, 4);
		}
		if (i < size)
			frame = data[i++] % 10; /* 8 frames: some out of range */
		/*
		 * Pushed where the area was built (q0, desc, frames saved before
		 * any patch): the fake's own view follows the scribbles, and may
		 * be as wrong as the library must survive.
		 */
		{
			uint32_t prod = __atomic_load_n(&q0->to_app.producer, __ATOMIC_RELAXED);
			struct ferry_app_desc *d = to_desc + (prod & 7);

			memcpy(frames + (frame % 8) * 256, "payload", 7);
			d->frame = frame;
			d->len = 7;
			d->cap = 256;
			d->cookie = (uint32_t)i;
			__atomic_store_n(&q0->to_app.producer, prod + 1, __ATOMIC_RELEASE);
		}
		n = ferry_app_recv(app, pkts, 16, 0);
		FUZZ_CHECK(n >= 0 && n <= 16, "recv returned %d", n);
		for (int k = 0; k < n; k++) {
			uintptr_t d = (uintptr_t)pkts[k].data;

			FUZZ_CHECK(d >= lo && d + pkts[k].cap <= hi && pkts[k].len <= pkts[k].cap,
				   "packet %d at %#lx cap %u len %u outside the area [%#lx, %#lx)", k,
				   (unsigned long)d, pkts[k].cap, pkts[k].len, (unsigned long)lo,
				   (unsigned long)hi);
			memset(pkts[k].data, 0xa5, pkts[k].cap);
			/* No emit frames unless a patch made some: then inside the area. */
			ret = ferry_app_emit(app, &pkts[k], "emitted", 7);
			FUZZ_CHECK(ret == 0 || ret == -EOPNOTSUPP || ret == -ENOBUFS,
				   "emit returned %d", ret);
		}
		ret = ferry_app_done(app, pkts, n, NULL);
		FUZZ_CHECK(ret == 0 || ret == -ENOBUFS, "done returned %d", ret);
	}
	ferry_app_detach(app);
	app = NULL;
out:
	close(sv[0]);
	if (app)
		ferry_app_detach(app);
	app_fake_destroy(&f);
	return 0;
}
