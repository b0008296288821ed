// SPDX-License-Identifier: BSD-2-Clause
/*
 * ferryctl metrics --listen ADDR:PORT: serves what `ferryctl stats --format
 * prometheus` prints at http://ADDR:PORT/metrics, for Prometheus to scrape.
 * Each request reads the pinned maps afresh (ferryctl_prometheus()); ferryd
 * is not involved, so a scrape never touches its packet path.  HTTP is
 * libmicrohttpd's, with one thread that serves one request at a time: a
 * scraper asks every few seconds, and the rest wait their turn, bounded by
 * the connection limit and timeout.
 */
#include <errno.h>
#include <getopt.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "ferryctl_metrics.h"

#define METRICS_PATH "/metrics"
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_MAX_CONNECTIONS 16
#define METRICS_TIMEOUT_S 10

struct metrics {
	const char *pin_path;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status, char *body,
			     size_t len, const char *type)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	/* body is malloc'd: the response frees it. */
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) == MHD_NO ||
	    (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
	     MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") == MHD_NO)) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned int status,
				  const char *text)
{
	char *body = strdup(text);

	if (!body)
		return MHD_NO;
	return reply(conn, status, body, strlen(body), "text/plain; charset=utf-8");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	const struct metrics *m = cls;
	size_t len = 0;
	char *body = NULL;
	FILE *out;
	int err;

	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
	/* A GET with a body: nothing to read it for. */
	if (*upload_data_size)
		return reply_text(conn, MHD_HTTP_BAD_REQUEST, "a request body is not expected\n");
	if (strcmp(url, METRICS_PATH))
		return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found: the metrics are at "
							    METRICS_PATH "\n");
	out = open_memstream(&body, &len);
	if (!out)
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	err = ferryctl_prometheus(m->pin_path, out);
	if (fclose(out) && !err)
		err = -ENOMEM;
	if (err) {
		/* The cause went to stderr; the scraper records the target as down. */
		free(body);
		return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
				  "cannot read ferryd's maps (is ferryd running?); "
				  "see ferryctl's log\n");
	}
	return reply(conn, MHD_HTTP_OK, body, len, METRICS_CONTENT_TYPE);
}

/* ADDR:PORT, ADDR an IPv4 address or a bracketed IPv6 one: [fd00::1]:9464; the port or -EINVAL. */
static int parse_listen(const char *arg, struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	const char *colon = strrchr(arg, ':');
	char host[INET6_ADDRSTRLEN];
	size_t hl;
	char *end;
	long port;

	if (!colon || colon == arg)
		return -EINVAL;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end || port < 1 || port > 65535)
		return -EINVAL;
	hl = (size_t)(colon - arg);
	memset(ss, 0, sizeof(*ss));
	if (arg[0] == '[') {
		if (hl < 3 || arg[hl - 1] != ']' || hl - 2 >= sizeof(host))
			return -EINVAL;
		memcpy(host, arg + 1, hl - 2);
		host[hl - 2] = '\0';
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -EINVAL;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		return (int)port;
	}
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, arg, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
		return -EINVAL;
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	return (int)port;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: ferryctl [-p PIN_PATH] metrics --listen ADDR:PORT\n"
		   "Serve ferry's counters as Prometheus text at http://ADDR:PORT/metrics\n"
		   "(ADDR an IPv4 address or [IPv6]); SIGTERM or SIGINT stops.\n");
}

int ferryctl_metrics_main(const char *pin_path, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct metrics m = { .pin_path = pin_path };
	struct sockaddr_storage addr;
	const char *listen = NULL;
	struct MHD_Daemon *d;
	sigset_t sigs;
	int opt, sig, port;

	argv[0] = "ferryctl metrics"; /* getopt's messages name it */
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			listen = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || !listen) {
		fprintf(stderr, "ferryctl metrics: %s\n",
			listen ? "unexpected argument" : "--listen ADDR:PORT is required");
		usage(stderr);
		return 2;
	}
	port = parse_listen(listen, &addr);
	if (port < 0) {
		fprintf(stderr, "ferryctl metrics: --listen: '%s' is not ADDR:PORT "
				"(an IPv4 address or [IPv6], a port 1..65535)\n", listen);
		return 2;
	}
	/* Blocked before MHD's thread starts, so that only sigwait() takes them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
				     (addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
			     (uint16_t)port, NULL, NULL, handle, &m, MHD_OPTION_SOCK_ADDR, &addr,
			     MHD_OPTION_CONNECTION_LIMIT, (unsigned int)METRICS_MAX_CONNECTIONS,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)METRICS_TIMEOUT_S,
			     MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "ferryctl metrics: cannot listen on %s: %s\n", listen,
			strerror(errno));
		return 1;
	}
	fprintf(stderr, "ferryctl metrics: serving http://%s" METRICS_PATH "\n", listen);
	sigdelset(&sigs, SIGPIPE);
	while (sigwait(&sigs, &sig))
		;
	MHD_stop_daemon(d);
	return 0;
}
