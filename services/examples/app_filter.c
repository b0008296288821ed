// SPDX-License-Identifier: BSD-2-Clause
/*
 * app_filter: an application service that drops every packet whose payload
 * contains a byte string and passes the rest unchanged (a stream filter).
 *
 *   app_filter [-s CONTROL_SOCKET] [-x] SLOT PATTERN
 *
 * PATTERN is taken as text, or with -x as hex digits ("deadbeef").  Runs as
 * the slot's owner; stops on SIGINT/SIGTERM, exits 3 when ferryd detaches
 * the slot.
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

/* "deadbeef" -> 4 bytes; -1 on odd length or a non-hex digit. */
static int parse_hex(const char *s, uint8_t *out, size_t max)
{
	size_t n = strlen(s);

	if (!n || n % 2 || n / 2 > max)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned int b;

		if (sscanf(s + 2 * i, "%2x", &b) != 1 || !strchr("0123456789abcdefABCDEF", s[2 * i + 1]))
			return -1;
		out[i] = (uint8_t)b;
	}
	return (int)(n / 2);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal }; /* no SA_RESTART: recv returns -EINTR */
	struct ferry_app_pkt pkts[BATCH];
	uint8_t verdicts[BATCH], pat[256];
	const char *sock = NULL;
	struct ferry_app *app;
	int opt, n, ret, hex = 0, patlen;
	char err[160];

	while ((opt = getopt(argc, argv, "s:x")) != -1) {
		if (opt == 's')
			sock = optarg;
		else if (opt == 'x')
			hex = 1;
		else
			goto usage;
	}
	if (argc - optind != 2)
		goto usage;
	if (hex) {
		patlen = parse_hex(argv[optind + 1], pat, sizeof(pat));
	} else {
		patlen = (int)strlen(argv[optind + 1]);
		if (patlen > (int)sizeof(pat))
			patlen = -1;
		else
			memcpy(pat, argv[optind + 1], patlen);
	}
	if (patlen <= 0)
		goto usage;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	ret = ferry_app_attach(sock, argv[optind], &app, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "app_filter: %s\n", err);
		return 2;
	}
	fprintf(stderr, "app_filter: attached to '%s', %u queues\n", argv[optind],
		ferry_app_nr_queues(app));
	while (!stop) {
		n = ferry_app_recv(app, pkts, BATCH, 1000);
		if (n == -EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "app_filter: %s\n", strerror(-n));
			ferry_app_detach(app);
			return n == -ENOTCONN ? 3 : 1;
		}
		for (int i = 0; i < n; i++)
			verdicts[i] = memmem(pkts[i].data, pkts[i].len, pat, patlen) ? FERRY_APP_DROP
										   : FERRY_APP_PASS;
		ret = ferry_app_done(app, pkts, n, verdicts);
		if (ret) {
			fprintf(stderr, "app_filter: done: %s\n", strerror(-ret));
			break;
		}
	}
	ferry_app_detach(app);
	return 0;

usage:
	fprintf(stderr, "usage: %s [-s CONTROL_SOCKET] [-x] SLOT PATTERN\n", argv[0]);
	return 64;
}
