// SPDX-License-Identifier: BSD-2-Clause
/*
 * enum ferry_dir as an out-of-tree service sees it: this file includes only
 * the public header, so its copy is services/ferry_service.h's own
 * (tests/unit/test_service_abi.c compares it with bpf/ferry_shared.h's).
 */
#include "ferry_service.h"

#include "service_abi_public.h"

const int abi_public_dir_client = FERRY_DIR_CLIENT;
const int abi_public_dir_reply = FERRY_DIR_REPLY;
