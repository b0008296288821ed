// SPDX-License-Identifier: BSD-2-Clause
/*
 * Capability sets of the calling thread, through capget()/capset()
 * directly: two calls, no library needed (see caps.h for why per thread).
 */
#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "caps.h"

static int caps_read(struct __user_cap_header_struct *hdr, struct __user_cap_data_struct d[2])
{
	hdr->version = _LINUX_CAPABILITY_VERSION_3;
	hdr->pid = 0; /* this thread */
	return syscall(SYS_capget, hdr, d) ? -errno : 0;
}

int caps__get_thread(uint64_t *effective, uint64_t *permitted)
{
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct d[2];
	int err = caps_read(&hdr, d);

	if (err)
		return err;
	*effective = (uint64_t)d[1].effective << 32 | d[0].effective;
	*permitted = (uint64_t)d[1].permitted << 32 | d[0].permitted;
	return 0;
}

bool caps__effective(int cap)
{
	uint64_t eff, prm;

	return !caps__get_thread(&eff, &prm) && (eff & CAPS_BIT(cap));
}

int caps__limit_thread(uint64_t keep)
{
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct d[2];
	int err = caps_read(&hdr, d);

	if (err)
		return err;
	for (int i = 0; i < 2; i++) {
		uint32_t k = (uint32_t)(keep >> (32 * i));

		d[i].effective &= k;
		d[i].permitted &= k;
		d[i].inheritable &= k;
	}
	/* Lowering needs no privilege; the kernel trims the ambient set to match. */
	return syscall(SYS_capset, &hdr, d) ? -errno : 0;
}
