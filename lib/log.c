// SPDX-License-Identifier: BSD-2-Clause
/*
 * ferry's logging (see log.h): the level, the program name, the message
 * format (timestamps unless stderr is the journal), rate-limited messages
 * for the workers' paths, and the hooks that route libbpf's and libxdp's
 * messages here.  It writes to stderr only and owns no other state.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include "log.h"

static enum ferry_log_level log_level = FERRY_LOG_INFO;
static const char *log_prog = "ferry";
static bool log_timestamps = true;
static bool log_journal;

/*
 * sd-daemon(3)'s priority prefixes (SD_ERR, SD_WARNING, SD_INFO, SD_DEBUG):
 * journald strips "<N>" and files the line at that priority, so
 * `journalctl -p err` shows ferry's errors.
 */
static const char *const journal_prefix[] = {
	[FERRY_LOG_ERR] = "<3>",
	[FERRY_LOG_WARN] = "<4>",
	[FERRY_LOG_INFO] = "<6>",
	[FERRY_LOG_DEBUG] = "<7>",
};

static const char *const level_names[] = {
	[FERRY_LOG_ERR] = "error",
	[FERRY_LOG_WARN] = "warn",
	[FERRY_LOG_INFO] = "info",
	[FERRY_LOG_DEBUG] = "debug",
};

/* JOURNAL_STREAM is "dev:ino" of the journal socket when stderr goes there. */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%lu:%lu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return st.st_dev == dev && st.st_ino == ino;
}

void log__init(const char *prog)
{
	log_prog = prog;
	log__set_journal(stderr_is_journal());
}

void log__set_journal(bool journal)
{
	log_journal = journal;
	log_timestamps = !journal;
}

int log__format(char *buf, size_t len, enum ferry_log_level level, const char *msg)
{
	char stamp[32] = "";

	if (log_timestamps) {
		struct timespec ts;
		struct tm tm;
		size_t n;

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		n = strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
		snprintf(stamp + n, sizeof(stamp) - n, ".%03ld ", ts.tv_nsec / 1000000);
	}
	return snprintf(buf, len, "%s%s%s[%s]: %s\n", log_journal ? journal_prefix[level] : "",
			stamp, log_prog, level_names[level], msg);
}

void log__set_level(enum ferry_log_level level)
{
	log_level = level;
}

enum ferry_log_level log__level(void)
{
	return log_level;
}

int log__parse_level(const char *name, enum ferry_log_level *level)
{
	for (unsigned int i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (!strcmp(name, level_names[i])) {
			*level = i;
			return 0;
		}
	}
	return -EINVAL;
}

static void __attribute__((format(printf, 2, 0)))
log__vmsg(enum ferry_log_level level, const char *fmt, va_list ap)
{
	char line[1024], out[1024 + 64];
	size_t n;

	if (level > log_level)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	log__format(out, sizeof(out), level, line);
	/* One write per line so lines of concurrent workers never interleave. */
	fputs(out, stderr);
}

void log__msg(enum ferry_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log__vmsg(level, fmt, ap);
	va_end(ap);
}

bool log__ratelimit(struct log_ratelimit *rl, uint32_t *missed)
{
	const uint64_t per_token = LOG_RATELIMIT_INTERVAL_S * 1000000000ull / LOG_RATELIMIT_BURST;
	struct timespec ts;
	bool pass = false;
	uint64_t now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	/* Another thread is in here: it logs for both of us, so this one is suppressed. */
	if (pthread_mutex_trylock(&rl->lock)) {
		__atomic_fetch_add(&rl->missed, 1, __ATOMIC_RELAXED);
		return false;
	}
	if (!rl->refill_ns) {
		rl->refill_ns = now;
		rl->tokens = LOG_RATELIMIT_BURST;
	} else if (now - rl->refill_ns >= per_token) {
		uint64_t add = (now - rl->refill_ns) / per_token;

		rl->tokens = add >= LOG_RATELIMIT_BURST - rl->tokens ? LOG_RATELIMIT_BURST :
								       rl->tokens + (uint32_t)add;
		rl->refill_ns += add * per_token;
	}
	if (rl->tokens) {
		rl->tokens--;
		*missed = __atomic_exchange_n(&rl->missed, 0, __ATOMIC_RELAXED);
		pass = true;
	} else {
		__atomic_fetch_add(&rl->missed, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&rl->lock);
	return pass;
}

void log__msg_ratelimited(struct log_ratelimit *rl, enum ferry_log_level level, const char *fmt,
			  ...)
{
	uint32_t missed;
	char line[900];
	va_list ap;

	if (level > log_level || !log__ratelimit(rl, &missed))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (missed)
		log__msg(level, "%s (%u similar message%s suppressed)", line, missed,
			 missed == 1 ? "" : "s");
	else
		log__msg(level, "%s", line);
}

/*
 * The libraries' warnings are mostly what they try before a fallback that
 * works (libxdp's dispatcher, libbpf's probes: "permission error ... try
 * raising ulimit -l"): debug, like their info.  A failure ferry acts on is
 * logged by ferry, with the error the call returned; -v shows the libraries'
 * detail.  Their own debug output is never shown.
 */
static enum ferry_log_level demote(int lib_level, int warn, int info)
{
	if (lib_level == warn || lib_level == info)
		return FERRY_LOG_DEBUG;
	return FERRY_LOG_DEBUG + 1;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	log__vmsg(demote(level, LIBBPF_WARN, LIBBPF_INFO), fmt, ap);
	return 0;
}

static int libxdp_print(enum libxdp_print_level level, const char *fmt, va_list ap)
{
	log__vmsg(demote(level, LIBXDP_WARN, LIBXDP_INFO), fmt, ap);
	return 0;
}

void log__hook_libraries(void)
{
	libbpf_set_print(libbpf_print);
	libxdp_set_print(libxdp_print);
}
