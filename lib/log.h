/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * One logging family for all of ferry.  Every message names the object it
 * concerns ("iface veth1 queue 0: ...", "flow 'telemetry': ...",
 * "config.yaml:12:5: ...").  Output goes to stderr; when stderr is the
 * journal (JOURNAL_STREAM matches) each line starts with its sd-daemon
 * priority ("<3>" for errors ... "<7>" for debug) and no timestamp, which
 * journald adds itself.  libbpf's and libxdp's own messages are routed here
 * at debug, so they only show with -v.
 */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

#include <pthread.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

enum ferry_log_level {
	FERRY_LOG_ERR = 0,
	FERRY_LOG_WARN,
	FERRY_LOG_INFO,
	FERRY_LOG_DEBUG,
};

void log__init(const char *prog);
/* Whether lines are for the journal (priority prefix, no timestamp); log__init() decides. */
void log__set_journal(bool journal);
/* The line log__msg() writes for MSG at LEVEL, newline included; snprintf()'s return. */
int log__format(char *buf, size_t len, enum ferry_log_level level, const char *msg);
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

/*
 * Rate-limited logging for the data path, where one message per packet
 * would flood the journal and slow the workers: each call site has its own
 * token bucket of LOG_RATELIMIT_BURST messages per LOG_RATELIMIT_INTERVAL_S,
 * shared by the threads that reach it.  The first message let through after
 * a suppression says how many were suppressed.
 */
#define LOG_RATELIMIT_BURST 10
#define LOG_RATELIMIT_INTERVAL_S 5

struct log_ratelimit {
	pthread_mutex_t lock;
	uint64_t refill_ns;        /* when tokens were last added, 0 = never used */
	uint32_t tokens;
	uint32_t missed;           /* suppressed since the last message let through */
};

#define LOG_RATELIMIT_INIT { .lock = PTHREAD_MUTEX_INITIALIZER }

/* True when the call site may log now; *missed is then the count suppressed before. */
bool log__ratelimit(struct log_ratelimit *rl, uint32_t *missed);
void log__msg_ratelimited(struct log_ratelimit *rl, enum ferry_log_level level, const char *fmt,
			  ...) __attribute__((format(printf, 3, 4)));

/* The level is checked first: a disabled level costs no lock. */
#define pr_ratelimited(level, ...)                                                                 \
	do {                                                                                       \
		static struct log_ratelimit log_rl_ = LOG_RATELIMIT_INIT;                          \
		if ((level) <= log__level())                                                       \
			log__msg_ratelimited(&log_rl_, (level), __VA_ARGS__);                      \
	} while (0)

#define pr_err_ratelimited(...) pr_ratelimited(FERRY_LOG_ERR, __VA_ARGS__)
#define pr_warn_ratelimited(...) pr_ratelimited(FERRY_LOG_WARN, __VA_ARGS__)
#define pr_info_ratelimited(...) pr_ratelimited(FERRY_LOG_INFO, __VA_ARGS__)
#define pr_debug_ratelimited(...) pr_ratelimited(FERRY_LOG_DEBUG, __VA_ARGS__)

#endif /* FERRY_LOG_H */
