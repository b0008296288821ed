// SPDX-License-Identifier: BSD-2-Clause
/*
 * The frame pool (see umem.h): the UMEM area, registered with the kernel
 * once, its stack of free frames and the accounting invariant.  No rings,
 * no sockets: those are lib/xdp_port.c's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <xdp/xsk.h>

#include "log.h"
#include "umem.h"

int umem__create(struct umem **out, uint32_t nr_frames, uint32_t frame_size, uint32_t ring_size)
{
	struct xsk_umem_config cfg = {
		.fill_size = ring_size,
		.comp_size = ring_size,
		.frame_size = frame_size,
		.frame_headroom = 0,
		.flags = 0,
	};
	struct umem *u;
	int err;

	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->frame_size = frame_size;
	u->nr_frames = nr_frames;
	u->size = (uint64_t)nr_frames * frame_size;
	u->stack = calloc(nr_frames, sizeof(*u->stack));
	if (!u->stack) {
		err = -ENOMEM;
		goto err_free_umem;
	}
	/* Populated up front: a page fault on the packet path costs more than the memory. */
	u->area = mmap(NULL, u->size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (u->area == MAP_FAILED) {
		err = -errno;
		pr_err("umem: cannot map %llu bytes: %s", (unsigned long long)u->size,
		       strerror(errno));
		goto err_free_stack;
	}
	err = xsk_umem__create(&u->xumem, u->area, u->size, &u->fill0, &u->comp0, &cfg);
	if (err) {
		pr_err("umem: cannot register %u frames of %u bytes: %s%s", nr_frames, frame_size,
		       strerror(-err),
		       err == -ENOMEM || err == -EPERM ? " (is RLIMIT_MEMLOCK high enough?)" : "");
		goto err_unmap;
	}
	for (uint32_t i = 0; i < nr_frames; i++)
		u->stack[i] = (uint64_t)(nr_frames - 1 - i) * frame_size;
	u->nr_free = nr_frames;
	*out = u;
	return 0;

err_unmap:
	munmap(u->area, u->size);
err_free_stack:
	free(u->stack);
err_free_umem:
	free(u);
	return err;
}

int umem__destroy(struct umem *u)
{
	int err;

	if (!u)
		return 0;
	err = xsk_umem__delete(u->xumem);
	if (err)
		return err;
	munmap(u->area, u->size);
	free(u->stack);
	free(u);
	return 0;
}

void umem__free(struct umem *u, uint64_t addr)
{
	u->stack[u->nr_free++] = umem__frame_base(u, addr);
	u->held--;
}

bool umem__alloc(struct umem *u, uint64_t *addr)
{
	if (!u->nr_free)
		return false;
	*addr = u->stack[--u->nr_free];
	u->held++;
	return true;
}

int umem__check(const struct umem *u, const char *who)
{
	uint64_t sum = (uint64_t)u->nr_free + u->kernel_rx + u->kernel_tx + u->held;

	if (sum == u->nr_frames)
		return 0;
	pr_err("%s: frame accounting broken: free %u + kernel_rx %u + kernel_tx %u + held %u != %u",
	       who, u->nr_free, u->kernel_rx, u->kernel_tx, u->held, u->nr_frames);
	return -EFAULT;
}
