/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A harness that runs services through the real service ABI and the real
 * chain runner (daemon/chain.c) without a network: a daemon with one flow
 * parsed from YAML, a worker with a real UMEM (no sockets) and hand-built
 * packets.  What the chain transmits is captured instead of sent, so tests
 * check verdicts, bytes, counters and the frame-accounting invariant.
 */
#ifndef FERRY_SVC_HARNESS_H
#define FERRY_SVC_HARNESS_H

#include <stdint.h>

#include "service.h"

struct svc_harness;

struct harness_out {
	uint8_t data[4096];
	uint32_t len;
	uint16_t port;
};

/*
 * `services_yaml` is the YAML sequence of the flow's services, e.g.
 * "[ {filter: {deny: [{source: 198.18.0.0/24}]}} ]".  The flow matches UDP to
 * 198.18.1.1 port 5000 (IPv4).  Returns NULL, with errors in the log, when
 * the config or a service's configure() fails.
 */
struct svc_harness *harness__create(const char *services_yaml);
/* The same with the flow's match, e.g. "{protocol: udp, destination: fd00:1::1, port: 5000}". */
struct svc_harness *harness__create_match(const char *match_yaml, const char *services_yaml);
/*
 * Makes a test's own service usable by name in later harness__create()
 * calls (ahead of the built-in ones), e.g. a stand-in for forward that sets
 * TX; up to 16, for the life of the test binary.
 */
void harness__add_service(const struct ferry_service_ops *ops);
/*
 * Like harness__create_match(), with a kernel to ask for next hops (root
 * only): a private network namespace in which h-in and h-out are veths,
 *   h-in   198.18.1.1/24  fd00:1::1/64
 *   h-out  198.18.2.1/24  198.18.3.1/24  fd00:2::1/64  fd00:3::1/64
 * with permanent neighbours .2 to .9 (::2 to ::9) in each of those subnets,
 * whose MACs harness__neigh_mac() gives; port p has harness__port_mac(p).
 * The services' start() runs there (routes, reply rules), then their
 * worker_init(); the worker gets a resolver.  The calling thread is back in
 * its own namespace on return; the private one goes with the harness.
 */
struct svc_harness *harness__create_net(const char *match_yaml, const char *services_yaml);
void harness__neigh_mac(const char *addr, uint8_t mac[6]);
void harness__port_mac(int port, uint8_t mac[6]);
void harness__destroy(struct svc_harness *h);

/* Runs one burst of frames (copied into UMEM frames) through the chain. */
int harness__run(struct svc_harness *h, const uint8_t *const *frames, const uint32_t *lens,
		 uint32_t n);
/* The direction (enum ferry_dir) of the packets of the next runs; FERRY_DIR_CLIENT at first. */
void harness__set_dir(struct svc_harness *h, uint8_t dir);
/* The frames the chain sent in the last runs (TX verdicts), oldest first. */
uint32_t harness__nr_out(const struct svc_harness *h);
const struct harness_out *harness__out(const struct svc_harness *h, uint32_t i);
void harness__clear_out(struct svc_harness *h);
/*
 * Calls every service's tick() after moving the clock forward, clearing the
 * worker's wake-up deadline first as the worker loop does.
 */
void harness__tick(struct svc_harness *h, uint64_t advance_ns);
struct ferry_worker *harness__worker(struct svc_harness *h);
const struct ferry_fwd_stats *harness__flow_stats(const struct svc_harness *h);
const struct ferry_svc_stats *harness__svc_stats(const struct svc_harness *h, int service);
/* 0 when free + kernel + held == total; held frames of services count as held. */
int harness__check_frames(const struct svc_harness *h);
uint32_t harness__held_frames(const struct svc_harness *h);
/* Adds the service's own counters (its stats(), named in .counter_names) into counters[]. */
void harness__service_counters(struct svc_harness *h, int service,
			       uint64_t counters[FERRY_SERVICE_COUNTERS]);

/* A well-formed IPv4/UDP frame from src:sport to dst:dport with `payload`. */
uint32_t harness__udp4(uint8_t *buf, const char *src, uint16_t sport, const char *dst,
		       uint16_t dport, const void *payload, uint32_t len);
/* The same over IPv6. */
uint32_t harness__udp6(uint8_t *buf, const char *src, uint16_t sport, const char *dst,
		       uint16_t dport, const void *payload, uint32_t len);

#endif /* FERRY_SVC_HARNESS_H */
