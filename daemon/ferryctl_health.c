// SPDX-License-Identifier: BSD-2-Clause
/*
 * ferryctl health: whether the ferryd of a pin path is alive and forwarding,
 * for a routing daemon to announce the flows' addresses only while it is
 * (docs/fleet.md).  Healthy means all of:
 *
 *   - a process holds the pin directory's lock (ferryd takes it at start and
 *     the kernel drops it when ferryd exits, however it exits: a SIGKILL is
 *     seen at once, through /proc/locks, without taking the lock);
 *   - ferryd's ferry_health record says running and its main loop wrote it
 *     within --max-age (a stopped or frozen ferryd stops writing);
 *   - every worker's loop count moved within --max-age (the watchdog's test);
 *   - every interface is still there (same ifindex), up, with carrier, and
 *     has ferry_steer (the program id ferryd attached) attached.
 *
 * --watch runs that check every INTERVAL and the --up or --down command
 * (through /bin/sh) when the verdict changes, after --rise healthy or
 * --fall unhealthy checks in a row.  A command that fails is run again at
 * the next check; --refresh runs the current one again now and then, so a
 * routing daemon restarted meanwhile hears it too.  Stopping the watcher
 * (SIGTERM, SIGINT, SIGHUP) runs --down: with no watcher, no announcement.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include "ferry_shared.h"
#include "ferryctl_health.h"

#define HEALTH_OK 0
#define HEALTH_BAD 1
#define HEALTH_USAGE 2
#define HEALTH_PERM 3

struct health_opts {
	const char *pin_path;
	double max_age;  /* seconds */
	double interval; /* --watch; 0: check once */
	const char *up, *down;
	unsigned int rise, fall;
	double refresh;  /* 0: never */
	double cmd_timeout;
	bool quiet;
};

static volatile sig_atomic_t stop_signal;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Whether a process holds an flock on the inode, as /proc/locks lists it. */
static int flock_held(const struct stat *st, unsigned int *pid)
{
	char line[256];
	int held = 0;
	FILE *f;

	f = fopen("/proc/locks", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		/* "1: FLOCK  ADVISORY  WRITE 1234 00:1f:5678 0 EOF"; waiters have "->". */
		char type[16], mode[16], access[16];
		unsigned int maj, min, p;
		unsigned long ino;
		char *s = strchr(line, ':');

		if (!s || strstr(line, "->"))
			continue;
		if (sscanf(s + 1, "%15s %15s %15s %u %x:%x:%lu", type, mode, access, &p, &maj, &min,
			   &ino) != 7)
			continue;
		if (strcmp(type, "FLOCK") || ino != st->st_ino || maj != major(st->st_dev) ||
		    min != minor(st->st_dev))
			continue;
		*pid = p;
		held = 1;
		break;
	}
	fclose(f);
	return held;
}

/* ferry_steer, program id ID, on IFINDEX: alone, or among a libxdp dispatcher's programs. */
static bool steer_attached(int ifindex, __u32 id)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct xdp_multiprog *mp;
	struct xdp_program *p;
	bool found = false;

	if (!id)
		return false;
	if (!bpf_xdp_query(ifindex, 0, &q) &&
	    (q.prog_id == id || q.drv_prog_id == id || q.skb_prog_id == id))
		return true;
	mp = xdp_multiprog__get_from_ifindex(ifindex);
	if (!mp || libxdp_get_error(mp))
		return false;
	if (xdp_multiprog__is_legacy(mp)) {
		p = xdp_multiprog__main_prog(mp);
		found = p && xdp_program__id(p) == id;
	}
	for (p = xdp_multiprog__next_prog(NULL, mp); p && !found; p = xdp_multiprog__next_prog(p, mp))
		found = xdp_program__id(p) == id;
	xdp_multiprog__close(mp);
	return found;
}

static int check_port(const struct ferry_health_port *hp, int sock, char *why, size_t len)
{
	char name[IF_NAMESIZE];
	struct ifreq ifr = {};
	unsigned int idx;

	snprintf(name, sizeof(name), "%.*s", IF_NAMESIZE - 1, hp->ifname);
	idx = if_nametoindex(name);
	if (!idx) {
		snprintf(why, len, "interface %s is gone", name);
		return HEALTH_BAD;
	}
	if (idx != hp->ifindex) {
		snprintf(why, len, "interface %s was replaced (ifindex %u, ferryd attached to %u)",
			 name, idx, hp->ifindex);
		return HEALTH_BAD;
	}
	memcpy(ifr.ifr_name, name, sizeof(ifr.ifr_name));
	if (sock >= 0 && !ioctl(sock, SIOCGIFFLAGS, &ifr)) {
		if (!(ifr.ifr_flags & IFF_UP)) {
			snprintf(why, len, "interface %s is down", name);
			return HEALTH_BAD;
		}
		if (!(ifr.ifr_flags & IFF_RUNNING)) {
			snprintf(why, len, "interface %s has no carrier", name);
			return HEALTH_BAD;
		}
	}
	if (!steer_attached((int)idx, hp->prog_id)) {
		snprintf(why, len, "ferry_steer (prog id %u) is no longer attached to %s",
			 hp->prog_id, name);
		return HEALTH_BAD;
	}
	return HEALTH_OK;
}

/* HEALTH_OK with a summary in `why`, or another HEALTH_* with the reason. */
static int check(const struct health_opts *o, char *why, size_t len)
{
	uint64_t max_age = (uint64_t)(o->max_age * 1e9), now;
	struct ferry_health rec = {};
	char path[4096];
	unsigned int pid = 0;
	struct stat st;
	__u32 key = 0;
	int fd, err, sock;

	if (stat(o->pin_path, &st)) {
		err = errno;
		snprintf(why, len, "ferryd is not running: %s: %s", o->pin_path, strerror(err));
		return err == EACCES ? HEALTH_PERM : HEALTH_BAD;
	}
	err = flock_held(&st, &pid);
	if (err < 0) {
		snprintf(why, len, "cannot read /proc/locks: %s", strerror(-err));
		return HEALTH_BAD;
	}
	if (!err) {
		snprintf(why, len, "ferryd is not running: nothing holds %s (stopped or killed)",
			 o->pin_path);
		return HEALTH_BAD;
	}
	snprintf(path, sizeof(path), "%s/%s", o->pin_path, FERRY_PIN_HEALTH);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		err = errno;
		snprintf(why, len, "%.200s: %s", path, strerror(err));
		return err == EACCES || err == EPERM ? HEALTH_PERM : HEALTH_BAD;
	}
	err = bpf_map_lookup_elem(fd, &key, &rec) ? -errno : 0;
	close(fd);
	if (err) {
		snprintf(why, len, "%.200s: cannot read: %s", path, strerror(-err));
		return HEALTH_BAD;
	}
	now = mono_ns();
	if (rec.state == FERRY_HEALTH_STARTING) {
		snprintf(why, len, "ferryd (pid %u) is starting", pid);
		return HEALTH_BAD;
	}
	if (rec.state != FERRY_HEALTH_RUNNING) {
		snprintf(why, len, "ferryd (pid %u) is stopping", pid);
		return HEALTH_BAD;
	}
	if (now > rec.published_ns && now - rec.published_ns > max_age) {
		snprintf(why, len, "ferryd (pid %u) has not written its health for over %g s",
			 pid, o->max_age);
		return HEALTH_BAD;
	}
	for (__u32 i = 0; i < rec.nr_workers && i < FERRY_MAX_QUEUES; i++) {
		if (!rec.worker_loop_ns[i] || now <= rec.worker_loop_ns[i] ||
		    now - rec.worker_loop_ns[i] <= max_age)
			continue;
		snprintf(why, len, "ferryd (pid %u): worker %u has not looped for over %g s", pid,
			 i, o->max_age);
		return HEALTH_BAD;
	}
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	err = HEALTH_OK;
	for (__u32 p = 0; p < rec.nr_ports && p < FERRY_MAX_IFACES && !err; p++)
		err = check_port(&rec.ports[p], sock, why, len);
	if (sock >= 0)
		close(sock);
	if (err)
		return err;
	snprintf(why, len, "ferryd (pid %u) running: %u worker%s, %u interface%s", pid,
		 rec.nr_workers, rec.nr_workers == 1 ? "" : "s", rec.nr_ports,
		 rec.nr_ports == 1 ? "" : "s");
	return HEALTH_OK;
}

static void stamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	snprintf(buf, len, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)(ts.tv_nsec / 1000000) % 1000);
}

/* CMD through /bin/sh, with FERRY_HEALTH=up|down and the reason; 0 when it exits 0 in time. */
static int run_cmd(const struct health_opts *o, const char *cmd, bool up, const char *why)
{
	uint64_t deadline = mono_ns() + (uint64_t)(o->cmd_timeout * 1e9);
	int status;
	pid_t pid, r;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		setenv("FERRY_HEALTH", up ? "up" : "down", 1);
		setenv("FERRY_HEALTH_REASON", why, 1);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	/* Bounded: a command that hangs (a routing daemon that does not answer) is killed. */
	while ((r = waitpid(pid, &status, WNOHANG)) == 0 || (r < 0 && errno == EINTR)) {
		if (mono_ns() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -ETIMEDOUT;
		}
		usleep(10000);
	}
	if (r < 0)
		return -errno;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -ECHILD;
}

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void sleep_s(double s)
{
	struct timespec ts = { .tv_sec = (time_t)s };

	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	/* A signal ends the sleep early: the loop then sees stop_signal. */
	nanosleep(&ts, NULL);
}

enum announce { ANN_NONE, ANN_DOWN, ANN_UP };

static int watch(const struct health_opts *o)
{
	struct sigaction sa = { .sa_handler = on_signal };
	enum announce want = ANN_DOWN, done = ANN_NONE;
	unsigned int good = 0, bad = 0;
	uint64_t last_run = 0;
	char why[512] = "", last_why[512] = "", ts[32];
	int verdict = -1;

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	while (!stop_signal) {
		int v = check(o, why, sizeof(why));
		const char *cmd;
		bool due;

		if (v == HEALTH_OK) {
			good++;
			bad = 0;
		} else {
			bad++;
			good = 0;
		}
		/* Each change of verdict or reason once (no reason carries a clock). */
		if (v != verdict || strcmp(why, last_why)) {
			stamp(ts, sizeof(ts));
			printf("%s %s: %s\n", ts, v == HEALTH_OK ? "healthy" : "unhealthy", why);
			verdict = v;
			snprintf(last_why, sizeof(last_why), "%s", why);
		}
		if (good >= o->rise)
			want = ANN_UP;
		else if (bad >= o->fall)
			want = ANN_DOWN;
		cmd = want == ANN_UP ? o->up : o->down;
		due = want != done ||
		      (o->refresh > 0 && mono_ns() - last_run >= (uint64_t)(o->refresh * 1e9));
		if (due) {
			int err = cmd ? run_cmd(o, cmd, want == ANN_UP, why) : 0;

			stamp(ts, sizeof(ts));
			if (err) {
				fprintf(stderr, "%s ferryctl health: %s command failed (%s); again at "
						"the next check\n",
					ts, want == ANN_UP ? "--up" : "--down",
					err == -ETIMEDOUT ? "timed out" : err == -ECHILD ?
					"non-zero exit" : strerror(-err));
			} else {
				if (want != done)
					printf("%s %s\n", ts, want == ANN_UP ? "announce" : "withdraw");
				done = want;
				last_run = mono_ns();
			}
			fflush(stdout);
		}
		sleep_s(o->interval);
	}
	stamp(ts, sizeof(ts));
	printf("%s %s: stopping, withdraw\n", ts, strsignal(stop_signal));
	fflush(stdout);
	if (o->down && run_cmd(o, o->down, false, "ferryctl health stopped"))
		fprintf(stderr, "ferryctl health: --down command failed at stop\n");
	return HEALTH_OK;
}

static int parse_seconds(const char *opt, const char *arg, double lo, double hi, double *out)
{
	char *end;
	double v = strtod(arg, &end);

	if (end == arg || *end || isnan(v) || v < lo || v > hi) {
		fprintf(stderr, "ferryctl health: %s: '%s' is not %g..%g seconds\n", opt, arg, lo,
			hi);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_count(const char *opt, const char *arg, unsigned int *out)
{
	char *end;
	unsigned long v = strtoul(arg, &end, 10);

	if (end == arg || *end || v < 1 || v > 100) {
		fprintf(stderr, "ferryctl health: %s: '%s' is not 1..100\n", opt, arg);
		return -EINVAL;
	}
	*out = (unsigned int)v;
	return 0;
}

static void health_usage(FILE *f)
{
	fprintf(f,
		"Usage: ferryctl [-p PIN_PATH] health [--max-age SECONDS] [--quiet]\n"
		"       ferryctl [-p PIN_PATH] health --watch INTERVAL [--up CMD] [--down CMD]\n"
		"                [--rise N] [--fall N] [--refresh SECONDS] [--cmd-timeout SECONDS]\n"
		"\n"
		"Exit 0 when ferryd is running and healthy (its pin directory locked, its main\n"
		"loop and every worker looping within --max-age (default 3 s), every interface\n"
		"present, up, with carrier and ferry_steer attached); else 1 and why.\n"
		"--watch checks every INTERVAL seconds and runs --up (healthy --rise times in a\n"
		"row, default 2) or --down (unhealthy --fall times, default 1) through /bin/sh\n"
		"when the verdict changes, with FERRY_HEALTH=up|down and FERRY_HEALTH_REASON\n"
		"set; a failed command is retried at the next check, --refresh re-runs the\n"
		"current one every SECONDS; SIGTERM runs --down and exits.\n");
}

int ferryctl_health(const char *pin_path, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "max-age", required_argument, NULL, 'm' },
		{ "watch", required_argument, NULL, 'w' },
		{ "up", required_argument, NULL, 'u' },
		{ "down", required_argument, NULL, 'd' },
		{ "rise", required_argument, NULL, 'r' },
		{ "fall", required_argument, NULL, 'f' },
		{ "refresh", required_argument, NULL, 'R' },
		{ "cmd-timeout", required_argument, NULL, 'T' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct health_opts o = {
		.pin_path = pin_path, .max_age = 3, .rise = 2, .fall = 1, .cmd_timeout = 10,
	};
	char why[512];
	int opt, v;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "+w:qh", opts, NULL)) != -1) {
		int err = 0;

		switch (opt) {
		case 'm':
			err = parse_seconds("--max-age", optarg, 0.1, 3600, &o.max_age);
			break;
		case 'w':
			err = parse_seconds("--watch", optarg, 0.05, 3600, &o.interval);
			break;
		case 'u':
			o.up = optarg;
			break;
		case 'd':
			o.down = optarg;
			break;
		case 'r':
			err = parse_count("--rise", optarg, &o.rise);
			break;
		case 'f':
			err = parse_count("--fall", optarg, &o.fall);
			break;
		case 'R':
			err = parse_seconds("--refresh", optarg, 0, 86400, &o.refresh);
			break;
		case 'T':
			err = parse_seconds("--cmd-timeout", optarg, 0.1, 600, &o.cmd_timeout);
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'h':
			health_usage(stdout);
			return HEALTH_OK;
		default:
			health_usage(stderr);
			return HEALTH_USAGE;
		}
		if (err)
			return HEALTH_USAGE;
	}
	if (optind < argc) {
		fprintf(stderr, "ferryctl health: unexpected argument '%s'\n", argv[optind]);
		return HEALTH_USAGE;
	}
	if (!o.interval && (o.up || o.down)) {
		fprintf(stderr, "ferryctl health: --up and --down go with --watch\n");
		return HEALTH_USAGE;
	}
	/* libxdp and libbpf explain a missing dispatcher on stderr: not ours to report. */
	libbpf_set_print(NULL);
	libxdp_set_print(NULL);
	if (o.interval)
		return watch(&o);
	v = check(&o, why, sizeof(why));
	if (!o.quiet)
		printf("%s: %s\n", v == HEALTH_OK ? "healthy" : "unhealthy", why);
	return v;
}
