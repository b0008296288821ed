/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Small helpers shared by the benchmark's user-space tools: argument
 * parsing that fails loudly, a monotonic clock, interface lookups and the
 * /proc/stat busy share of one CPU.  Header-only so each tool stays one
 * .c file; every function is static inline and used by most tools.
 */
#ifndef FERRY_BENCH_UTIL_H
#define FERRY_BENCH_UTIL_H

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* 0 and *out set, or -EINVAL for anything but a whole number in [lo, hi]. */
static inline int bench_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	double d;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	/* Accepts 1e6 as well as 1000000: rates and counts read better that way. */
	d = strtod(s, &end);
	if (errno || *end || d < (double)lo || d > (double)hi || d != (double)(uint64_t)d)
		return -EINVAL;
	*out = (uint64_t)d;
	return 0;
}

static inline int bench_parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	*out = strtod(s, &end);
	if (errno || *end || *out < lo || *out > hi)
		return -EINVAL;
	return 0;
}

static inline int bench_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	char tail;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (b[i] > 0xff)
			return -EINVAL;
		mac[i] = (uint8_t)b[i];
	}
	return 0;
}

/* "A.B.C.D:PORT" into network-order address and host-order port. */
static inline int bench_parse_endpoint(const char *s, uint32_t *addr, uint16_t *port)
{
	char buf[64];
	char *colon;
	uint64_t p;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	colon = strrchr(buf, ':');
	if (!colon)
		return -EINVAL;
	*colon = '\0';
	if (inet_pton(AF_INET, buf, addr) != 1 || bench_parse_u64(colon + 1, 1, 65535, &p))
		return -EINVAL;
	*port = (uint16_t)p;
	return 0;
}

static inline int bench_if_mac(const char *ifname, uint8_t mac[6])
{
	struct ifreq ifr = {0};
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		err = -errno;
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(fd);
	return err;
}

struct bench_cpu_sample {
	uint64_t busy;
	uint64_t total;
};

/*
 * Jiffies of one CPU from /proc/stat.  Busy is everything but idle and
 * iowait; guest time is already inside user, so it is not added twice.
 */
static inline int bench_cpu_read(int cpu, struct bench_cpu_sample *s)
{
	unsigned long long v[8] = {0};
	char line[256], want[16];
	FILE *f;
	int err = -ENOENT;

	snprintf(want, sizeof(want), "cpu%d ", cpu);
	f = fopen("/proc/stat", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, want, strlen(want)))
			continue;
		if (sscanf(line + strlen(want), "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
			   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 8)
			break;
		s->total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
		s->busy = s->total - v[3] - v[4];
		err = 0;
		break;
	}
	fclose(f);
	return err;
}

static inline double bench_cpu_share(const struct bench_cpu_sample *a,
				     const struct bench_cpu_sample *b)
{
	uint64_t total = b->total - a->total;

	return total ? (double)(b->busy - a->busy) / (double)total : 0.0;
}

#endif /* FERRY_BENCH_UTIL_H */
