/* SPDX-License-Identifier: BSD-2-Clause */
/* What tests/unit/service_abi_public.c saw in the public header alone. */
#ifndef FERRY_SERVICE_ABI_PUBLIC_H
#define FERRY_SERVICE_ABI_PUBLIC_H

extern const int abi_public_dir_client;
extern const int abi_public_dir_reply;

#endif /* FERRY_SERVICE_ABI_PUBLIC_H */
