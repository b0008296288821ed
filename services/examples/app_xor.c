// SPDX-License-Identifier: BSD-2-Clause
/*
 * app_xor: an application service that XORs every payload byte with a key,
 * the canonical payload transform (applying it twice gives the original).
 *
 *   app_xor [-s CONTROL_SOCKET] [-e] SLOT KEY      KEY: 0..255 (0x.. accepted)
 *
 * -e also emits each payload as received, untransformed, as a new packet
 * of the same session ahead of the transformed one (ferry_app_emit()): the
 * receiver gets two datagrams for each one sent.
 *
 * Runs as the slot's owner, never as root; stops on SIGINT/SIGTERM, and
 * exits 3 when ferryd detaches the slot (a supervisor restarts it).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry_app_client.h"

#define BATCH 64

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal }; /* no SA_RESTART: recv returns -EINTR */
	struct ferry_app_pkt pkts[BATCH];
	const char *sock = NULL;
	struct ferry_app *app;
	unsigned long key;
	char err[160], *end;
	unsigned long long emitted = 0, emit_failed = 0;
	int opt, n, ret, emit = 0;

	while ((opt = getopt(argc, argv, "es:")) != -1) {
		if (opt == 'e') {
			emit = 1;
			continue;
		}
		if (opt != 's')
			goto usage;
		sock = optarg;
	}
	if (argc - optind != 2)
		goto usage;
	key = strtoul(argv[optind + 1], &end, 0);
	if (*end || key > 255)
		goto usage;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	ret = ferry_app_attach(sock, argv[optind], &app, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "app_xor: %s\n", err);
		return 2;
	}
	fprintf(stderr, "app_xor: attached to '%s', %u queues, key 0x%02lx\n", argv[optind],
		ferry_app_nr_queues(app), key);
	while (!stop) {
		n = ferry_app_recv(app, pkts, BATCH, 1000);
		if (n == -EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "app_xor: %s\n", strerror(-n));
			ferry_app_detach(app);
			return n == -ENOTCONN ? 3 : 1;
		}
		for (int i = 0; i < n; i++) {
			/* Before the transform: the copy goes out as received. */
			if (emit) {
				ret = ferry_app_emit(app, &pkts[i], pkts[i].data, pkts[i].len);
				if (ret)
					emit_failed++;
				else
					emitted++;
			}
			for (uint32_t j = 0; j < pkts[i].len; j++)
				pkts[i].data[j] ^= (uint8_t)key;
		}
		ret = ferry_app_done(app, pkts, n, NULL);
		if (ret) {
			fprintf(stderr, "app_xor: done: %s\n", strerror(-ret));
			break;
		}
	}
	if (emit)
		fprintf(stderr, "app_xor: emitted %llu, failed %llu\n", emitted, emit_failed);
	ferry_app_detach(app);
	return 0;

usage:
	fprintf(stderr, "usage: %s [-s CONTROL_SOCKET] [-e] SLOT KEY(0..255)\n", argv[0]);
	return 64;
}
