/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * One logging family for all of ferry.  Every message names the object it
 * concerns ("iface veth1 queue 0: ...", "flow 'telemetry': ...",
 * "config.yaml:12:5: ...").  Output goes to stderr; when stderr is the
 * journal (JOURNAL_STREAM matches) no timestamp is added because journald
 * stamps lines itself.  libbpf's and libxdp's own messages are routed here
 * one level lower than they claim, so they only show with -v.
 */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

#include <stdbool.h>

enum ferry_log_level {
	FERRY_LOG_ERR = 0,
	FERRY_LOG_WARN,
	FERRY_LOG_INFO,
	FERRY_LOG_DEBUG,
};

void log__init(const char *prog);
void log__set_level(enum ferry_log_level level);
enum ferry_log_level log__level(void);
/* Parses "error", "warn", "info", "debug"; returns 0 or -EINVAL. */
int log__parse_level(const char *name, enum ferry_log_level *level);
void log__msg(enum ferry_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Route libbpf and libxdp messages through log__msg. */
void log__hook_libraries(void);

#define pr_err(...) log__msg(FERRY_LOG_ERR, __VA_ARGS__)
#define pr_warn(...) log__msg(FERRY_LOG_WARN, __VA_ARGS__)
#define pr_info(...) log__msg(FERRY_LOG_INFO, __VA_ARGS__)
#define pr_debug(...) log__msg(FERRY_LOG_DEBUG, __VA_ARGS__)

#endif /* FERRY_LOG_H */
