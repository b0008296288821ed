// SPDX-License-Identifier: BSD-2-Clause
/*
 * The service ABI's enums as an out-of-tree service sees them: this file
 * includes only the public header, so its copies of enum ferry_dir and the
 * drop reasons are services/ferry_service.h's own (tests/unit/
 * test_service_abi.c compares them with bpf/ferry_shared.h's).
 */
#include "ferry_service.h"

#include "service_abi_public.h"

#define ABI_DROP_NAME(name) #name,
const char *const abi_public_drop_names[] = { FERRY_DROP_REASONS(ABI_DROP_NAME) };
const unsigned int abi_public_nr_drops = FERRY_DROP__MAX;
const int abi_public_dir_client = FERRY_DIR_CLIENT;
const int abi_public_dir_reply = FERRY_DIR_REPLY;
const unsigned int abi_public_drop_hold_budget = FERRY_DROP_hold_budget;
