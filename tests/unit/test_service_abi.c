// SPDX-License-Identifier: BSD-2-Clause
/*
 * The service ABI (services/ferry_service.h, services/ferry_service.map):
 * what this binary exports is the ABI's functions and nothing of ferryd's
 * internals (it is linked with the same dynamic list as ferryd and loads
 * service objects too), the public header's enum ferry_dir agrees with
 * bpf/ferry_shared.h's, and the flow accessors read the flow a service was
 * configured for.
 */
/*
 * First, so this file's enum ferry_dir is bpf/ferry_shared.h's (it includes
 * the public header only after defining it).
 */
#include "ferry_shared.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "config.h"
#include "service.h"
#include "service_abi_public.h"
#include "unit.h"

/* Every function of the ABI: a service object resolves these in the binary that loads it. */
static const char *const abi_functions[] = {
    "ferry_batch__emit",
    "ferry_flow__family",
    "ferry_flow__l4_proto",
    "ferry_flow__name",
    "ferry_pkt_fix_checksums",
    "ferry_pkt_set_payload_len",
    "ferry_service__log",
    "ferry_worker__frame_room",
    "ferry_worker__hold",
    "ferry_worker__id",
    "ferry_worker__now_ns",
    "ferry_worker__send_held",
    "ferry_worker__wake_at",
    "cfg_args_parse",
    "cfg_for_each_item",
    "cfg_get_bool",
    "cfg_get_endpoint",
    "cfg_get_port_range",
    "cfg_get_prefix",
    "cfg_get_string",
    "cfg_get_u32",
    "cfg_iter_init",
    "cfg_iter_next",
    "cfg_map_get",
    "cfg_mark_error",
    "cfg_node_error",
    "cfg_node_is_map",
    "cfg_node_mark",
    "cfg_seq_item",
    "cfg_seq_len",
};

/* Internals a service once could call (ferryd was linked -rdynamic): now out of reach. */
static const char *const internal_functions[] = {
    "worker__run_chain",
    "worker__flush_tx",
    "ferry_worker__nat",
    "ferry_worker__nh_get",
    "ferry_worker__flow_stats",
    "ferry_daemon__add_rule",
    "ferry_daemon__config",
    "config__load_string",
    "nat_table__create",
    "pkt_parse",
    "service__find",
    "svc_loader__create",
    "log__msg",
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void test_exports(void)
{
	for (size_t i = 0; i < ARRAY_LEN(abi_functions); i++) {
		if (!dlsym(RTLD_DEFAULT, abi_functions[i])) {
			fprintf(stderr, "\n  not exported: %s", abi_functions[i]);
			CU_FAIL("an ABI function is not exported");
		}
	}
	for (size_t i = 0; i < ARRAY_LEN(internal_functions); i++) {
		if (dlsym(RTLD_DEFAULT, internal_functions[i])) {
			fprintf(stderr, "\n  exported: %s", internal_functions[i]);
			CU_FAIL("an internal function is exported");
		}
	}
}

static void test_dir_agrees(void)
{
	CU_ASSERT_EQUAL(abi_public_dir_client, FERRY_DIR_CLIENT);
	CU_ASSERT_EQUAL(abi_public_dir_reply, FERRY_DIR_REPLY);
}

static void test_flow_accessors(void)
{
	static struct ferry_config cfg;
	struct cfg_errors errs = {0};
	struct ferry_flow_ctx fc = {0};
	const char *yaml = "interfaces:\n"
			   "  - name: px-c\n"
			   "flows:\n"
			   "  - name: v4udp\n"
			   "    match:\n"
			   "      protocol: udp\n"
			   "      destination: 198.18.1.1\n"
			   "      port: 5000\n"
			   "    services:\n"
			   "      - example_tag: {value: 1}\n"
			   "  - name: v6tcp\n"
			   "    match:\n"
			   "      protocol: tcp\n"
			   "      destination: fd00::1\n"
			   "      port: 80\n"
			   "    services:\n"
			   "      - example_tag: {value: 1}\n";

	CU_ASSERT_EQUAL_FATAL(config__load_string(&cfg, "t.yaml", yaml, &errs), 0);
	fc.flow = &cfg.flows[0];
	CU_ASSERT_STRING_EQUAL(ferry_flow__name(&fc), "v4udp");
	CU_ASSERT_EQUAL(ferry_flow__family(&fc), AF_INET);
	CU_ASSERT_EQUAL(ferry_flow__l4_proto(&fc), IPPROTO_UDP);
	fc.flow = &cfg.flows[1];
	CU_ASSERT_STRING_EQUAL(ferry_flow__name(&fc), "v6tcp");
	CU_ASSERT_EQUAL(ferry_flow__family(&fc), AF_INET6);
	CU_ASSERT_EQUAL(ferry_flow__l4_proto(&fc), IPPROTO_TCP);
	config__free(&cfg);
}

static CU_TestInfo tests[] = {
    {"exports the ABI's functions and no internals", test_exports},
    {"public and BPF enum ferry_dir agree", test_dir_agrees},
    {"flow accessors", test_flow_accessors},
    CU_TEST_INFO_NULL,
};

UNIT_SUITE(service_abi, "service_abi", tests, NULL, NULL);
