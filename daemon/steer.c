// SPDX-License-Identifier: BSD-2-Clause
/*
 * The XDP side of ferry, seen from user space.
 *
 * One skeleton instance per interface, because each interface needs its own
 * XSKMAP.  A first instance whose program is never loaded creates the maps
 * every interface shares, so that rules and flow names can be set before (or
 * without) any interface; per-interface instances reuse those map fds before
 * libxdp loads them.  libxdp does the loading itself on attach, since it
 * must load the program as an extension of its dispatcher.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <linux/magic.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include "caps.h"
#include "ferry_steer.skel.h"
#include "log.h"
#include "steer.h"

#define BPFFS_ROOT "/sys/fs/bpf"
#define STEER_PROG_NAME "ferry_steer"
#define STEER_MAX_IFACES CFG_MAX_IFACES
/* A crashed run leaves one program per run; more than this is not ours to fix. */
#define STEER_MAX_STALE_PROGS 10

enum steer_shared_map {
	SHARED_RULES,
	SHARED_FLOW_STATS,
	SHARED_FWD_STATS,
	SHARED_FLOW_INFO,
	SHARED_SVC_STATS,
	SHARED_SVC_INFO,
	SHARED_APP_SLOTS,
	SHARED_LB_UPSTREAMS,
	SHARED_QUEUE_STATS,
	SHARED_SESSIONS,
	SHARED_SESS_STATS,
	SHARED_TX_PORTS,
	SHARED_RL_PARAMS,
	SHARED_RL_FLOW,
	SHARED_RL_SOURCES,
	SHARED_HEALTH,
	SHARED__MAX,
};

static const char *const shared_pin_names[SHARED__MAX] = {
	[SHARED_RULES] = FERRY_PIN_RULES,
	[SHARED_FLOW_STATS] = FERRY_PIN_FLOW_STATS,
	[SHARED_FWD_STATS] = FERRY_PIN_FWD_STATS,
	[SHARED_FLOW_INFO] = FERRY_PIN_FLOW_INFO,
	[SHARED_SVC_STATS] = FERRY_PIN_SVC_STATS,
	[SHARED_SVC_INFO] = FERRY_PIN_SVC_INFO,
	[SHARED_APP_SLOTS] = FERRY_PIN_APP_SLOTS,
	[SHARED_LB_UPSTREAMS] = FERRY_PIN_LB_UPSTREAMS,
	[SHARED_QUEUE_STATS] = FERRY_PIN_QUEUE_STATS,
	[SHARED_SESSIONS] = FERRY_PIN_SESSIONS,
	[SHARED_SESS_STATS] = FERRY_PIN_SESS_STATS,
	[SHARED_TX_PORTS] = FERRY_PIN_TX_PORTS,
	[SHARED_RL_PARAMS] = FERRY_PIN_RL_PARAMS,
	[SHARED_RL_FLOW] = FERRY_PIN_RL_FLOW,
	[SHARED_RL_SOURCES] = FERRY_PIN_RL_SOURCES,
	[SHARED_HEALTH] = FERRY_PIN_HEALTH,
};

struct steer_iface {
	char name[IF_NAMESIZE];
	int ifindex;
	struct ferry_steer_bpf *skel;
	struct xdp_program *prog;
	enum xdp_attach_mode mode;
	bool attached;
	bool alone;	/* attached without libxdp's dispatcher */
	bool no_libxdp;	/* loaded and attached by libbpf: no CAP_SYS_ADMIN */
	int prog_fd;	/* the attached program, for the detach */
	bool stats_pinned;
	bool prog_pinned; /* alone: pinned for the start after a crash */
};

/*
 * A run that did not stop (SIGKILL, a crash) leaves its program attached,
 * and with it the fast path forwarding its offloaded sessions.  The next
 * start keeps both until it replaces the program in one step
 * (XDP_FLAGS_REPLACE) with its own, which uses the same session maps, so
 * those sessions never stop: see steer__adopting().
 */
struct steer_stale {
	char ifname[IF_NAMESIZE];
	int ifindex;
	int prog_fd;
	__u32 mode_flags; /* XDP_FLAGS_DRV_MODE or XDP_FLAGS_SKB_MODE */
};

/* The fast path's maps, taken over from the run before when they fit. */
enum steer_adopt_map { ADOPT_SESSIONS, ADOPT_SESS_STATS, ADOPT_TX_PORTS, ADOPT__MAX };

struct steer {
	char pin_path[PATH_MAX];
	int dir_fd; /* holds the pin directory's lock */
	bool locked;
	struct ferry_steer_bpf *shared; /* owns the shared maps; its program stays unloaded */
	bool pinned[SHARED__MAX];
	int nr_ifaces;
	struct steer_iface ifaces[STEER_MAX_IFACES];
	struct steer_stale stale[STEER_MAX_IFACES];
	int nr_stale;
	int adopt_fd[ADOPT__MAX]; /* pins of the run before, -1 when absent */
	bool adopting;		  /* they are this run's maps too */
	bool old_flows;		  /* old_flow holds the run before's flow names */
	char old_flow[FERRY_MAX_FLOWS][FERRY_FLOW_NAME_LEN];
};

static const char *const adopt_pin_names[ADOPT__MAX] = {
	[ADOPT_SESSIONS] = FERRY_PIN_SESSIONS,
	[ADOPT_SESS_STATS] = FERRY_PIN_SESS_STATS,
	[ADOPT_TX_PORTS] = FERRY_PIN_TX_PORTS,
};
static const enum steer_shared_map adopt_shared[ADOPT__MAX] = {
	[ADOPT_SESSIONS] = SHARED_SESSIONS,
	[ADOPT_SESS_STATS] = SHARED_SESS_STATS,
	[ADOPT_TX_PORTS] = SHARED_TX_PORTS,
};

static struct bpf_map *shared_map(struct ferry_steer_bpf *skel, enum steer_shared_map which)
{
	switch (which) {
	case SHARED_RULES:
		return skel->maps.ferry_rules;
	case SHARED_FLOW_STATS:
		return skel->maps.ferry_flow_stats;
	case SHARED_FWD_STATS:
		return skel->maps.ferry_fwd_stats;
	case SHARED_FLOW_INFO:
		return skel->maps.ferry_flow_info;
	case SHARED_SVC_STATS:
		return skel->maps.ferry_svc_stats;
	case SHARED_SVC_INFO:
		return skel->maps.ferry_svc_info;
	case SHARED_APP_SLOTS:
		return skel->maps.ferry_app_slots;
	case SHARED_LB_UPSTREAMS:
		return skel->maps.ferry_lb_upstreams;
	case SHARED_QUEUE_STATS:
		return skel->maps.ferry_queue_stats;
	case SHARED_SESSIONS:
		return skel->maps.ferry_sessions;
	case SHARED_SESS_STATS:
		return skel->maps.ferry_sess_stats;
	case SHARED_TX_PORTS:
		return skel->maps.ferry_tx_ports;
	case SHARED_RL_PARAMS:
		return skel->maps.ferry_rl_params;
	case SHARED_RL_FLOW:
		return skel->maps.ferry_rl_flow;
	case SHARED_RL_SOURCES:
		return skel->maps.ferry_rl_sources;
	case SHARED_HEALTH:
		return skel->maps.ferry_health;
	default:
		return NULL;
	}
}

static int shared_fd(struct steer *s, enum steer_shared_map which)
{
	return bpf_map__fd(shared_map(s->shared, which));
}

static const char *xdp_mode_name(enum xdp_attach_mode mode)
{
	switch (mode) {
	case XDP_MODE_NATIVE:
		return "native";
	case XDP_MODE_SKB:
		return "skb";
	case XDP_MODE_HW:
		return "hw";
	default:
		return "unspec";
	}
}

static const char *xdp_strerror(int err, char *buf, size_t len)
{
	if (libxdp_strerror(err, buf, len))
		snprintf(buf, len, "%s", strerror(-err));
	return buf;
}

static int pin_file(struct steer *s, char *buf, size_t len, const char *name)
{
	if (snprintf(buf, len, "%s/%s", s->pin_path, name) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

/* Pins only ever readable by root: the maps steer traffic. */
static int pin_map(struct steer *s, const char *what, int fd, const char *name)
{
	char path[PATH_MAX];
	int err;

	err = pin_file(s, path, sizeof(path), name);
	if (err) {
		pr_err("%s: pin path %s/%s is too long", what, s->pin_path, name);
		return err;
	}
	err = bpf_obj_pin(fd, path);
	if (err) {
		pr_err("%s: cannot pin at %s: %s", what, path, strerror(-err));
		return err;
	}
	if (chmod(path, 0600)) {
		err = -errno;
		pr_err("%s: cannot chmod pin %s: %s", what, path, strerror(-err));
		unlink(path);
		return err;
	}
	return 0;
}

static void unpin(struct steer *s, const char *what, const char *name)
{
	char path[PATH_MAX];

	if (pin_file(s, path, sizeof(path), name))
		return;
	if (unlink(path) && errno != ENOENT)
		pr_warn("%s: cannot remove pin %s: %s", what, path, strerror(errno));
}

static bool on_bpffs(const char *path)
{
	struct statfs st;

	return !statfs(path, &st) && st.f_type == BPF_FS_MAGIC;
}

/*
 * libxdp keeps its dispatcher state under /sys/fs/bpf, so that one must be
 * bpffs even when the pins go elsewhere; the pin path must then be on a
 * bpffs as well, which is checked on its deepest existing ancestor.
 * Mounting needs CAP_SYS_ADMIN; without it ferry does without libxdp's
 * dispatcher (iface_attach()), and only the pin path's bpffs is needed.
 */
static int ensure_bpffs(const char *pin_path)
{
	char dir[PATH_MAX];
	struct stat st;
	char *slash;

	if (!on_bpffs(BPFFS_ROOT) && caps__effective(CAP_SYS_ADMIN)) {
		if (mount("bpf", BPFFS_ROOT, "bpf", 0, "mode=0700")) {
			int err = -errno;

			pr_err("pin path %s: no bpffs on %s and mounting one failed: %s", pin_path,
			       BPFFS_ROOT, strerror(-err));
			return err;
		}
		pr_info("pin path %s: mounted bpffs on %s", pin_path, BPFFS_ROOT);
	}

	snprintf(dir, sizeof(dir), "%s", pin_path);
	while (stat(dir, &st)) {
		if (errno != ENOENT) {
			int err = -errno;

			pr_err("pin path %s: cannot stat %s: %s", pin_path, dir, strerror(-err));
			return err;
		}
		slash = strrchr(dir, '/');
		if (!slash || slash == dir)
			return -EINVAL; /* "/" always exists: not reached */
		*slash = '\0';
	}
	if (!on_bpffs(dir)) {
		pr_err("pin path %s: %s is not on a bpf filesystem", pin_path, dir);
		return -EINVAL;
	}
	return 0;
}

/* mkdir -p with mode 0700 for every directory created. */
static int make_pin_dir(const char *pin_path)
{
	char dir[PATH_MAX];
	struct stat st;
	int err;

	snprintf(dir, sizeof(dir), "%s", pin_path);
	for (char *p = dir + 1;; p++) {
		bool last = *p == '\0';

		if (*p != '/' && !last)
			continue;
		*p = '\0';
		if (!mkdir(dir, 0700)) {
			/* Exactly 0700, whatever the umask. */
			if (chmod(dir, 0700)) {
				err = -errno;
				pr_err("pin path %s: cannot chmod %s: %s", pin_path, dir,
				       strerror(-err));
				return err;
			}
		} else if (errno != EEXIST) {
			err = -errno;
			pr_err("pin path %s: cannot create %s: %s", pin_path, dir, strerror(-err));
			return err;
		}
		if (last)
			break;
		*p = '/';
	}
	if (stat(pin_path, &st)) {
		err = -errno;
		pr_err("pin path %s: %s", pin_path, strerror(-err));
		return err;
	}
	if (!S_ISDIR(st.st_mode)) {
		pr_err("pin path %s: not a directory", pin_path);
		return -ENOTDIR;
	}
	return 0;
}

/*
 * An flock on the directory tells a crashed run's leftovers (no lock) from a
 * live ferryd using the same pin path (locked): only the former may be
 * cleaned up.
 */
static int lock_pin_dir(struct steer *s)
{
	int err;

	s->dir_fd = open(s->pin_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dir_fd < 0) {
		err = -errno;
		pr_err("pin path %s: cannot open: %s", s->pin_path, strerror(-err));
		return err;
	}
	if (flock(s->dir_fd, LOCK_EX | LOCK_NB)) {
		err = -errno;
		if (err == -EWOULDBLOCK) {
			pr_err("pin path %s: in use by another running ferryd", s->pin_path);
			return -EBUSY;
		}
		pr_err("pin path %s: cannot lock: %s", s->pin_path, strerror(-err));
		return err;
	}
	s->locked = true;
	return 0;
}

static bool is_ferry_pin(const char *name)
{
	static const char *const names[] = {
		FERRY_PIN_RULES,     FERRY_PIN_FLOW_STATS, FERRY_PIN_FWD_STATS,
		FERRY_PIN_FLOW_INFO, FERRY_PIN_XDP_STATS,  FERRY_PIN_XSKS,
		FERRY_PIN_SVC_STATS, FERRY_PIN_SVC_INFO,  FERRY_PIN_QUEUE_STATS,
		FERRY_PIN_SESSIONS,  FERRY_PIN_SESS_STATS, FERRY_PIN_TX_PORTS,
		FERRY_PIN_RL_PARAMS, FERRY_PIN_RL_FLOW,    FERRY_PIN_RL_SOURCES,
		FERRY_PIN_APP_SLOTS, FERRY_PIN_HEALTH, FERRY_PIN_LB_UPSTREAMS,
	};
	const size_t plen = strlen(FERRY_PIN_XDP_STATS "_");

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(name, names[i]))
			return true;
	return !strncmp(name, FERRY_PIN_XDP_STATS "_", plen) && name[plen];
}

static bool is_prog_pin(const char *name)
{
	const size_t plen = strlen(FERRY_PIN_PROG "_");

	return !strncmp(name, FERRY_PIN_PROG "_", plen) && name[plen];
}

/*
 * ferry_steer attached alone is pinned (FERRY_PIN_PROG "_" IFNAME) while it
 * is attached, so that the run after a crash can take it off without
 * CAP_SYS_ADMIN: the pin gives a descriptor (BPF_OBJ_GET), where finding the
 * attached program by id (BPF_PROG_GET_FD_BY_ID) would need CAP_SYS_ADMIN.
 * Only the pinned program is detached, and only while it is the one the
 * interface runs (the ids agree, and XDP_FLAGS_REPLACE makes the kernel check
 * it again): a program that is not ferry's is never taken off.  0 once the
 * pin may go; -errno keeps it, for the next start to try again.
 */
static int detach_pinned_prog(struct steer *s, const char *name)
{
	const char *ifname = name + strlen(FERRY_PIN_PROG "_");
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), flags;
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	char path[PATH_MAX];
	int fd, ifindex, err;

	err = pin_file(s, path, sizeof(path), name);
	if (err)
		return err;
	fd = bpf_obj_get(path);
	if (fd < 0) {
		err = -errno;
		pr_err("pin path %s: cannot open the stale program pin %s: %s", s->pin_path,
		       name, strerror(-err));
		return err;
	}
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (err) {
		pr_err("pin path %s: cannot read the stale program pin %s: %s", s->pin_path,
		       name, strerror(-err));
		goto out_close;
	}
	ifindex = if_nametoindex(ifname);
	if (!ifindex) /* the interface is gone, and its programs with it */
		goto out_close;
	err = bpf_xdp_query(ifindex, 0, &q);
	if (err) {
		pr_err("iface %s: cannot query its XDP programs: %s", ifname, strerror(-err));
		goto out_close;
	}
	if (q.drv_prog_id == info.id)
		flags = XDP_FLAGS_DRV_MODE;
	else if (q.skb_prog_id == info.id)
		flags = XDP_FLAGS_SKB_MODE;
	else /* detached already, or replaced by someone else's: not ours to touch */
		goto out_close;
	pr_warn("iface %s: detaching %s (prog id %u) left by an earlier run", ifname,
		STEER_PROG_NAME, info.id);
	{
		LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = fd);

		err = bpf_xdp_detach(ifindex, flags | XDP_FLAGS_REPLACE, &opts);
	}
	if (err)
		pr_err("iface %s: cannot detach the stale %s: %s", ifname, STEER_PROG_NAME,
		       strerror(-err));
out_close:
	close(fd);
	return err;
}

/*
 * The program pin NAME of the run before, kept with its fd while it is the
 * one attached, for steer__attach() to replace.  0 when kept (or nothing is
 * attached any more), else the caller detaches it as before.
 */
static int keep_stale_prog(struct steer *s, const char *name)
{
	const char *ifname = name + strlen(FERRY_PIN_PROG "_");
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct steer_stale *st;
	char path[PATH_MAX];
	int fd, ifindex;

	if (s->nr_stale >= STEER_MAX_IFACES || strlen(ifname) >= IF_NAMESIZE)
		return -ENOSPC;
	if (pin_file(s, path, sizeof(path), name))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	ifindex = if_nametoindex(ifname);
	if (!ifindex || bpf_obj_get_info_by_fd(fd, &info, &len) || bpf_xdp_query(ifindex, 0, &q)) {
		close(fd);
		return ifindex ? -EIO : 0; /* the interface is gone, and the program with it */
	}
	st = &s->stale[s->nr_stale];
	if (q.drv_prog_id == info.id) {
		st->mode_flags = XDP_FLAGS_DRV_MODE;
	} else if (q.skb_prog_id == info.id) {
		st->mode_flags = XDP_FLAGS_SKB_MODE;
	} else {
		close(fd);
		return 0;
	}
	snprintf(st->ifname, sizeof(st->ifname), "%s", ifname);
	st->ifindex = ifindex;
	st->prog_fd = fd;
	s->nr_stale++;
	pr_info("iface %s: %s (prog id %u) left by an earlier run keeps forwarding until "
		"replaced", ifname, STEER_PROG_NAME, info.id);
	return 0;
}

/* What a stale pin of the run before holds that this one takes over, before it goes. */
static void take_over_pin(struct steer *s, const char *name)
{
	char path[PATH_MAX];
	int fd;

	if (pin_file(s, path, sizeof(path), name))
		return;
	for (int i = 0; i < ADOPT__MAX; i++) {
		if (strcmp(name, adopt_pin_names[i]) || s->adopt_fd[i] >= 0)
			continue;
		s->adopt_fd[i] = bpf_obj_get(path);
		return;
	}
	if (!strcmp(name, FERRY_PIN_FLOW_INFO)) {
		fd = bpf_obj_get(path);
		if (fd < 0)
			return;
		for (__u32 id = 0; id < FERRY_MAX_FLOWS; id++) {
			struct ferry_flow_info fi;

			if (bpf_map_lookup_elem(fd, &id, &fi) || !fi.configured)
				continue;
			memcpy(s->old_flow[id], fi.name, sizeof(fi.name));
			s->old_flow[id][FERRY_FLOW_NAME_LEN - 1] = '\0';
			s->old_flows = true;
		}
		close(fd);
	}
}

/* Its program off `st`'s interface, if it is still the one attached. */
static void stale_detach(struct steer_stale *st)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = st->prog_fd);
	int err;

	pr_warn("iface %s: detaching %s left by an earlier run", st->ifname, STEER_PROG_NAME);
	err = bpf_xdp_detach(st->ifindex, st->mode_flags | XDP_FLAGS_REPLACE, &opts);
	if (err && err != -EEXIST)
		pr_err("iface %s: cannot detach the stale %s: %s", st->ifname, STEER_PROG_NAME,
		       strerror(-err));
	close(st->prog_fd);
	st->prog_fd = -1;
}

static struct steer_stale *find_stale(struct steer *s, int ifindex)
{
	for (int i = 0; i < s->nr_stale; i++)
		if (s->stale[i].prog_fd >= 0 && s->stale[i].ifindex == ifindex)
			return &s->stale[i];
	return NULL;
}

void steer__drop_stale(struct steer *s)
{
	for (int i = 0; i < s->nr_stale; i++)
		if (s->stale[i].prog_fd >= 0)
			stale_detach(&s->stale[i]);
	s->nr_stale = 0;
}

/*
 * Whether the pinned fast-path map `fd` of the run before has the shape
 * this run's would: then it is reused, entries and all.
 */
static bool adoptable(int fd, const struct bpf_map *want, uint32_t entries)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
		return false;
	return info.type == bpf_map__type(want) && info.key_size == bpf_map__key_size(want) &&
	       info.value_size == bpf_map__value_size(want) &&
	       (!entries || info.max_entries == entries);
}

static int remove_stale_pins(struct steer *s)
{
	struct dirent *de;
	int err = 0;
	DIR *dir;
	int fd;

	fd = dup(s->dir_fd);
	if (fd < 0 || !(dir = fdopendir(fd))) {
		err = -errno;
		if (fd >= 0)
			close(fd);
		pr_err("pin path %s: cannot list: %s", s->pin_path, strerror(-err));
		return err;
	}
	while ((de = readdir(dir))) {
		if (is_prog_pin(de->d_name)) {
			/* Still forwarding offloaded sessions: replaced at attach, not detached. */
			if (keep_stale_prog(s, de->d_name)) {
				err = detach_pinned_prog(s, de->d_name);
				if (err)
					break;
			}
		} else if (!is_ferry_pin(de->d_name)) {
			continue;
		} else {
			take_over_pin(s, de->d_name);
		}
		pr_warn("pin path %s: removing stale pin %s left by an earlier run", s->pin_path,
			de->d_name);
		if (unlinkat(s->dir_fd, de->d_name, 0) && errno != ENOENT) {
			err = -errno;
			pr_err("pin path %s: cannot remove stale pin %s: %s", s->pin_path,
			       de->d_name, strerror(-err));
			break;
		}
	}
	closedir(dir);
	return err;
}

static int create_shared_maps(struct steer *s, uint32_t offload_sessions)
{
	/* Two entries a session, one per direction; a map cannot be empty. */
	uint32_t entries = offload_sessions ? 2 * offload_sessions : 1;
	int err;

	s->shared = ferry_steer_bpf__open();
	if (!s->shared) {
		err = -errno;
		pr_err("pin path %s: cannot open the BPF object: %s", s->pin_path, strerror(-err));
		return err;
	}
	/* Only the shared maps: the per-interface ones come with each interface. */
	bpf_program__set_autoload(s->shared->progs.ferry_steer, false);
	bpf_map__set_autocreate(s->shared->maps.ferry_xsks, false);
	bpf_map__set_autocreate(s->shared->maps.ferry_xdp_stats, false);
	err = bpf_map__set_max_entries(s->shared->maps.ferry_sessions, entries) ?:
	      bpf_map__set_max_entries(s->shared->maps.ferry_sess_stats, entries);
	if (err) {
		pr_err("pin path %s: cannot size the session maps: %s", s->pin_path,
		       strerror(-err));
		return err;
	}
	/* The fast path of a run that did not stop goes on in this run's maps. */
	s->adopting = offload_sessions && s->adopt_fd[ADOPT_SESSIONS] >= 0;
	for (int i = 0; i < ADOPT__MAX && s->adopting; i++) {
		struct bpf_map *m = shared_map(s->shared, adopt_shared[i]);

		s->adopting = adoptable(s->adopt_fd[i], m, i == ADOPT_TX_PORTS ? 0 : entries);
	}
	if (s->adopt_fd[ADOPT_SESSIONS] >= 0 && !s->adopting)
		pr_warn("pin path %s: the offloaded sessions of an earlier run cannot be taken over "
			"(nat.offload_max_sessions or ferry's version changed): they end here",
			s->pin_path);
	for (int i = 0; i < ADOPT__MAX && s->adopting; i++) {
		err = bpf_map__reuse_fd(shared_map(s->shared, adopt_shared[i]), s->adopt_fd[i]);
		if (err) {
			pr_err("pin path %s: cannot take over %s: %s", s->pin_path,
			       adopt_pin_names[i], strerror(-err));
			return err;
		}
	}
	err = ferry_steer_bpf__load(s->shared);
	if (err) {
		pr_err("pin path %s: cannot create the shared maps: %s", s->pin_path,
		       strerror(-err));
		return err;
	}
	for (int i = 0; i < SHARED__MAX; i++) {
		char what[64];

		snprintf(what, sizeof(what), "map %s", shared_pin_names[i]);
		err = pin_map(s, what, shared_fd(s, i), shared_pin_names[i]);
		if (err)
			return err;
		s->pinned[i] = true;
	}
	return 0;
}

static int set_pin_path(struct steer *s, const char *pin_path)
{
	size_t len = strlen(pin_path);

	while (len > 1 && pin_path[len - 1] == '/')
		len--;
	if (pin_path[0] != '/' || len <= 1) {
		pr_err("pin path '%s': must be an absolute path below /", pin_path);
		return -EINVAL;
	}
	/* Room for the longest pin name, ferry_xdp_stats_<ifname>. */
	if (len + 1 + strlen(FERRY_PIN_XDP_STATS "_") + IF_NAMESIZE > sizeof(s->pin_path)) {
		pr_err("pin path '%s': too long", pin_path);
		return -ENAMETOOLONG;
	}
	memcpy(s->pin_path, pin_path, len);
	s->pin_path[len] = '\0';
	return 0;
}

int steer__create(struct steer **out, const struct steer_opts *opts)
{
	const char *pin_path = opts && opts->pin_path ? opts->pin_path : STEER_DEFAULT_PIN_PATH;
	struct steer *s;
	int err;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->dir_fd = -1;
	for (int i = 0; i < ADOPT__MAX; i++)
		s->adopt_fd[i] = -1;

	err = set_pin_path(s, pin_path);
	if (err)
		goto err_destroy;
	err = ensure_bpffs(s->pin_path);
	if (err)
		goto err_destroy;
	err = make_pin_dir(s->pin_path);
	if (err)
		goto err_destroy;
	err = lock_pin_dir(s);
	if (err)
		goto err_destroy;
	err = remove_stale_pins(s);
	if (err)
		goto err_destroy;
	err = create_shared_maps(s, opts ? opts->offload_sessions : 0);
	if (err)
		goto err_destroy;

	pr_debug("pin path %s: shared maps created and pinned", s->pin_path);
	*out = s;
	return 0;

err_destroy:
	steer__destroy(s);
	return err;
}

static struct steer_iface *find_iface(struct steer *s, const char *ifname)
{
	if (!s || !ifname)
		return NULL;
	for (int i = 0; i < s->nr_ifaces; i++)
		if (!strcmp(s->ifaces[i].name, ifname))
			return &s->ifaces[i];
	return NULL;
}

static void iface_close(struct steer_iface *ifc)
{
	/* The program refers to the skeleton's object: close it first. */
	if (ifc->prog)
		xdp_program__close(ifc->prog);
	ifc->prog = NULL;
	ferry_steer_bpf__destroy(ifc->skel);
	ifc->skel = NULL;
}

static int iface_open(struct steer *s, struct steer_iface *ifc)
{
	char buf[128];
	int err;

	ifc->skel = ferry_steer_bpf__open();
	if (!ifc->skel) {
		err = -errno;
		pr_err("iface %s: cannot open the BPF object: %s", ifc->name, strerror(-err));
		return err;
	}
	for (int i = 0; i < SHARED__MAX; i++) {
		err = bpf_map__reuse_fd(shared_map(ifc->skel, i), shared_fd(s, i));
		if (err) {
			pr_err("iface %s: cannot share map %s: %s", ifc->name, shared_pin_names[i],
			       strerror(-err));
			goto err_close;
		}
	}
	ifc->prog = xdp_program__from_bpf_obj(ifc->skel->obj, "xdp");
	err = libxdp_get_error(ifc->prog);
	if (err) {
		ifc->prog = NULL;
		pr_err("iface %s: cannot find the XDP program in the BPF object: %s", ifc->name,
		       xdp_strerror(err, buf, sizeof(buf)));
		goto err_close;
	}
	return 0;

err_close:
	iface_close(ifc);
	return err;
}

/*
 * Alone, the program comes off through netlink with the fd ferry holds
 * (XDP_FLAGS_REPLACE: only if it is still the one attached), which needs
 * CAP_NET_ADMIN only.  libxdp's own detach looks the attached program up by
 * id (BPF_PROG_GET_FD_BY_ID), which needs CAP_SYS_ADMIN: ferryd keeps that
 * only while a dispatcher is in use (steer__uses_dispatcher()).
 */
static int iface_detach_alone(struct steer_iface *ifc)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = ifc->prog_fd);
	__u32 flags = XDP_FLAGS_REPLACE;

	flags |= ifc->mode == XDP_MODE_SKB ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
	return bpf_xdp_detach(ifc->ifindex, flags, &opts);
}

/*
 * libxdp manages its dispatcher by looking programs up by id
 * (BPF_PROG_GET_FD_BY_ID), which needs CAP_SYS_ADMIN.  Without it ferry
 * loads the program with libbpf and attaches it alone through netlink
 * (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN), as libxdp itself does when the
 * kernel refuses its dispatcher; it then cannot share the interface with
 * another XDP program, and refuses to replace one.
 */
static int iface_attach(struct steer_iface *ifc, enum xdp_attach_mode xmode,
			struct steer_stale *st)
{
	__u32 flags = XDP_FLAGS_UPDATE_IF_NOEXIST;
	int err;

	/* In one step over the program a run that did not stop left: no packet misses both. */
	if (st) {
		LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = st->prog_fd);

		err = ferry_steer_bpf__load(ifc->skel);
		if (err)
			return err;
		ifc->prog_fd = bpf_program__fd(ifc->skel->progs.ferry_steer);
		return bpf_xdp_attach(ifc->ifindex, ifc->prog_fd, st->mode_flags | XDP_FLAGS_REPLACE,
				      &opts);
	}

	if (!ifc->no_libxdp) {
		err = xdp_program__attach(ifc->prog, ifc->ifindex, xmode, 0);
		if (!err)
			ifc->prog_fd = xdp_program__fd(ifc->prog);
		return err;
	}
	err = ferry_steer_bpf__load(ifc->skel);
	if (err)
		return err;
	ifc->prog_fd = bpf_program__fd(ifc->skel->progs.ferry_steer);
	flags |= xmode == XDP_MODE_SKB ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
	return bpf_xdp_attach(ifc->ifindex, ifc->prog_fd, flags, NULL);
}

static int iface_detach(struct steer_iface *ifc)
{
	char buf[128];
	int err;

	if (ifc->alone)
		err = iface_detach_alone(ifc);
	else
		err = xdp_program__detach(ifc->prog, ifc->ifindex, ifc->mode, 0);
	if (err)
		pr_warn("iface %s: cannot detach %s: %s", ifc->name, STEER_PROG_NAME,
			xdp_strerror(err, buf, sizeof(buf)));
	ifc->attached = false;
	return err;
}

static void iface_teardown(struct steer *s, struct steer_iface *ifc)
{
	char pin[sizeof(FERRY_PIN_XDP_STATS "_") + IF_NAMESIZE];
	char what[IF_NAMESIZE + 8];

	snprintf(what, sizeof(what), "iface %s", ifc->name);
	if (ifc->stats_pinned) {
		snprintf(pin, sizeof(pin), "%s_%s", FERRY_PIN_XDP_STATS, ifc->name);
		unpin(s, what, pin);
		ifc->stats_pinned = false;
	}
	/* A program that would not come off keeps its pin: the next start detaches it. */
	if (ifc->attached && iface_detach(ifc))
		ifc->prog_pinned = false;
	if (ifc->prog_pinned) {
		snprintf(pin, sizeof(pin), "%s_%s", FERRY_PIN_PROG, ifc->name);
		unpin(s, what, pin);
		ifc->prog_pinned = false;
	}
	iface_close(ifc);
}

/*
 * libxdp falls back to attaching the program alone when the kernel refuses
 * its dispatcher (freplace programs need BPF trampolines).  Say so once per
 * interface: another XDP program attached later would replace ferry's.
 */
static bool warn_if_alone(const char *ifname, int ifindex)
{
	struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifindex);
	bool alone = !libxdp_get_error(mp) && mp && xdp_multiprog__is_legacy(mp);

	if (alone)
		pr_warn("iface %s: libxdp's multiprog dispatcher is not available on this kernel; "
			"ferry_steer is attached alone and cannot share the interface with other "
			"XDP programs",
			ifname);
	if (!libxdp_get_error(mp))
		xdp_multiprog__close(mp);
	return alone;
}

static struct xdp_program *find_steer_prog(const struct xdp_multiprog *mp)
{
	struct xdp_program *p;

	if (xdp_multiprog__is_legacy(mp)) {
		p = xdp_multiprog__main_prog(mp);
		return p && !strcmp(xdp_program__name(p), STEER_PROG_NAME) ? p : NULL;
	}
	for (p = xdp_multiprog__next_prog(NULL, mp); p; p = xdp_multiprog__next_prog(p, mp))
		if (!strcmp(xdp_program__name(p), STEER_PROG_NAME))
			return p;
	return NULL;
}

/*
 * A ferry_steer already on the interface was left by a run that could not
 * detach it (a crash: the program stays attached, and libxdp's dispatcher
 * keeps its pins).  Left there it would run beside ours with stale rules.
 */
static void detach_stale_progs(struct steer_iface *ifc)
{
	enum xdp_attach_mode mode;
	char buf[128];

	for (int n = 0; n < STEER_MAX_STALE_PROGS; n++) {
		struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifc->ifindex);
		struct xdp_program *p;
		int err;

		if (!mp || libxdp_get_error(mp))
			return;
		p = find_steer_prog(mp);
		if (!p) {
			xdp_multiprog__close(mp);
			return;
		}
		pr_warn("iface %s: detaching %s (prog id %u) left by an earlier run", ifc->name,
			STEER_PROG_NAME, xdp_program__id(p));
		/* Without a dispatcher, ferry_steer is the interface's only program. */
		mode = xdp_multiprog__attach_mode(mp);
		if (xdp_multiprog__is_legacy(mp))
			err = xdp_multiprog__detach(mp);
		else
			err = xdp_program__detach(p, ifc->ifindex, mode, 0);
		xdp_multiprog__close(mp);
		if (err) {
			pr_warn("iface %s: cannot detach stale %s: %s", ifc->name, STEER_PROG_NAME,
				xdp_strerror(err, buf, sizeof(buf)));
			return;
		}
	}
}

int steer__attach(struct steer *s, const char *ifname, enum cfg_xdp_mode mode)
{
	char pin[sizeof(FERRY_PIN_XDP_STATS "_") + IF_NAMESIZE];
	char what[IF_NAMESIZE + 8];
	enum xdp_attach_mode xmode;
	struct steer_stale *stale;
	struct steer_iface *ifc;
	char buf[128];
	int err;

	if (!s || !ifname || !*ifname || strlen(ifname) >= IF_NAMESIZE) {
		pr_err("iface '%s': invalid interface name", ifname ? ifname : "(null)");
		return -EINVAL;
	}
	if (find_iface(s, ifname)) {
		pr_err("iface %s: already attached", ifname);
		return -EEXIST;
	}
	if (s->nr_ifaces >= STEER_MAX_IFACES) {
		pr_err("iface %s: too many interfaces (at most %d)", ifname, STEER_MAX_IFACES);
		return -ENOSPC;
	}
	ifc = &s->ifaces[s->nr_ifaces];
	memset(ifc, 0, sizeof(*ifc));
	snprintf(ifc->name, sizeof(ifc->name), "%s", ifname);
	ifc->ifindex = if_nametoindex(ifname);
	if (!ifc->ifindex) {
		err = -errno;
		pr_err("iface %s: not found: %s", ifname, strerror(-err));
		return err;
	}
	ifc->no_libxdp = !caps__effective(CAP_SYS_ADMIN);
	xmode = mode == CFG_XDP_SKB ? XDP_MODE_SKB : XDP_MODE_NATIVE;
	stale = find_stale(s, ifc->ifindex);
	/* Replaced in place only in the mode it runs in; else it goes first. */
	if (stale && stale->mode_flags != (xmode == XDP_MODE_SKB ? XDP_FLAGS_SKB_MODE :
								    XDP_FLAGS_DRV_MODE)) {
		stale_detach(stale);
		stale = NULL;
	}
	/* Replacing needs the program loaded by libbpf: it runs alone, as the one it replaces. */
	if (stale)
		ifc->no_libxdp = true;

	/* Needs libxdp's look-ups by id; without them an old program makes the attach fail. */
	if (!ifc->no_libxdp)
		detach_stale_progs(ifc);

	err = iface_open(s, ifc);
	if (err)
		return err;
	err = iface_attach(ifc, xmode, stale);
	if (stale) {
		if (err) {
			pr_warn("iface %s: cannot replace the earlier run's %s in place (%s): "
				"detaching it first",
				ifname, STEER_PROG_NAME, xdp_strerror(err, buf, sizeof(buf)));
			stale_detach(stale);
			iface_close(ifc);
			err = iface_open(s, ifc) ?: iface_attach(ifc, xmode, NULL);
		} else {
			pr_info("iface %s: replaced the earlier run's %s in place", ifname,
				STEER_PROG_NAME);
			close(stale->prog_fd);
			stale->prog_fd = -1;
		}
	}
	if (err && mode == CFG_XDP_NATIVE) {
		pr_warn("iface %s: attach in native mode failed (%s): falling back to skb mode",
			ifname, xdp_strerror(err, buf, sizeof(buf)));
		/* The attempt may have loaded the object against a dispatcher now gone. */
		iface_close(ifc);
		err = iface_open(s, ifc);
		if (err)
			return err;
		xmode = XDP_MODE_SKB;
		err = iface_attach(ifc, xmode, NULL);
	}
	if (err) {
		pr_err("iface %s: attach in %s mode failed: %s", ifname, xdp_mode_name(xmode),
		       xdp_strerror(err, buf, sizeof(buf)));
		goto err_close;
	}
	ifc->mode = xmode;
	ifc->attached = true;
	if (ifc->no_libxdp) {
		ifc->alone = true;
		pr_info("iface %s: no CAP_SYS_ADMIN for libxdp's dispatcher: %s is attached alone "
			"and cannot share the interface with other XDP programs",
			ifname, STEER_PROG_NAME);
	} else {
		ifc->alone = warn_if_alone(ifname, ifc->ifindex);
	}

	snprintf(what, sizeof(what), "iface %s", ifname);
	snprintf(pin, sizeof(pin), "%s_%s", FERRY_PIN_XDP_STATS, ifname);
	err = pin_map(s, what, bpf_map__fd(ifc->skel->maps.ferry_xdp_stats), pin);
	if (err)
		goto err_teardown;
	ifc->stats_pinned = true;
	/*
	 * Alone, nothing else remembers the program after a crash (a crash
	 * between the attach and this pin leaves it for a start with
	 * CAP_SYS_ADMIN, or a manual detach).
	 */
	if (ifc->alone) {
		snprintf(pin, sizeof(pin), "%s_%s", FERRY_PIN_PROG, ifname);
		err = pin_map(s, what, ifc->prog_fd, pin);
		if (err)
			goto err_teardown;
		ifc->prog_pinned = true;
	}

	s->nr_ifaces++;
	pr_debug("iface %s: %s attached in %s mode (prog id %u)", ifname, STEER_PROG_NAME,
		 xdp_mode_name(xmode), xdp_program__id(ifc->prog));
	return 0;

err_teardown:
	iface_teardown(s, ifc);
	return err;
err_close:
	iface_close(ifc);
	return err;
}

static int check_rule(uint32_t slot, const struct ferry_rule *r)
{
	unsigned int max_plen = r->family == 4 ? 32 : 128;

	if (!r->enabled)
		return 0;
	if (r->family != 4 && r->family != 6) {
		pr_err("rule slot %u: family %u is neither 4 nor 6", slot, r->family);
		return -EINVAL;
	}
	if (r->flow_id >= FERRY_MAX_FLOWS) {
		pr_err("rule slot %u: flow id %u out of range (max %d)", slot, r->flow_id,
		       FERRY_MAX_FLOWS - 1);
		return -EINVAL;
	}
	if (r->dst_plen > max_plen || r->src_plen > max_plen) {
		pr_err("rule slot %u: prefix length above %u", slot, max_plen);
		return -EINVAL;
	}
	if (r->dport_lo > r->dport_hi || r->sport_lo > r->sport_hi) {
		pr_err("rule slot %u: port range with low above high", slot);
		return -EINVAL;
	}
	return 0;
}

/*
 * The XDP program may read a slot while it is rewritten: rules are meant to
 * be set before traffic is steered, or a packet may see a torn rule.
 */
int steer__set_rule(struct steer *s, uint32_t slot, const struct ferry_rule *rule)
{
	int err;

	if (slot >= FERRY_MAX_RULES) {
		pr_err("rule slot %u: out of range (max %d)", slot, FERRY_MAX_RULES - 1);
		return -ERANGE;
	}
	err = check_rule(slot, rule);
	if (err)
		return err;
	err = bpf_map_update_elem(shared_fd(s, SHARED_RULES), &slot, rule, BPF_ANY);
	if (err)
		pr_err("rule slot %u: cannot write: %s", slot, strerror(-err));
	return err;
}

int steer__clear_rules(struct steer *s, uint32_t from_slot)
{
	const struct ferry_rule off = {};
	int err;

	if (from_slot > FERRY_MAX_RULES) {
		pr_err("rule slot %u: out of range (max %d)", from_slot, FERRY_MAX_RULES - 1);
		return -ERANGE;
	}
	for (uint32_t slot = from_slot; slot < FERRY_MAX_RULES; slot++) {
		err = bpf_map_update_elem(shared_fd(s, SHARED_RULES), &slot, &off, BPF_ANY);
		if (err) {
			pr_err("rule slot %u: cannot clear: %s", slot, strerror(-err));
			return err;
		}
	}
	return 0;
}

int steer__set_flow_info(struct steer *s, uint32_t flow_id, const char *name)
{
	struct ferry_flow_info info = {};
	int err;

	if (flow_id >= FERRY_MAX_FLOWS) {
		pr_err("flow id %u: out of range (max %d)", flow_id, FERRY_MAX_FLOWS - 1);
		return -ERANGE;
	}
	if (name) {
		if (strlen(name) >= sizeof(info.name)) {
			pr_err("flow '%s': name longer than %zu characters", name,
			       sizeof(info.name) - 1);
			return -ENAMETOOLONG;
		}
		strcpy(info.name, name);
		info.configured = 1;
	}
	err = bpf_map_update_elem(shared_fd(s, SHARED_FLOW_INFO), &flow_id, &info, BPF_ANY);
	if (err)
		pr_err("flow id %u: cannot write its name: %s", flow_id, strerror(-err));
	return err;
}

int steer__set_flow_offload(struct steer *s, uint32_t flow_id, bool offload, const char *why)
{
	struct ferry_flow_info info;
	int fd = shared_fd(s, SHARED_FLOW_INFO);
	int err;

	if (flow_id >= FERRY_MAX_FLOWS)
		return -ERANGE;
	if (bpf_map_lookup_elem(fd, &flow_id, &info))
		return -errno;
	info.offload = offload;
	snprintf(info.offload_why, sizeof(info.offload_why), "%s", offload || !why ? "" : why);
	err = bpf_map_update_elem(fd, &flow_id, &info, BPF_ANY);
	if (err)
		pr_err("flow id %u: cannot write its offload state: %s", flow_id, strerror(-err));
	return err;
}

int steer__set_flow_ratelimit(struct steer *s, uint32_t flow_id,
			       const struct ferry_rl_params *p)
{
	int err = 0;

	if (flow_id >= FERRY_MAX_FLOWS)
		return -ERANGE;
	if (bpf_map_update_elem(shared_fd(s, SHARED_RL_PARAMS), &flow_id, p, BPF_ANY)) {
		err = -errno;
		pr_err("flow id %u: cannot write its ratelimit: %s", flow_id, strerror(-err));
	}
	return err;
}

int steer__set_tx_port(struct steer *s, int ifindex, bool on)
{
	struct bpf_devmap_val dv = { .ifindex = (__u32)ifindex };
	__u32 key = (__u32)ifindex;
	int fd = shared_fd(s, SHARED_TX_PORTS);

	if (on ? bpf_map_update_elem(fd, &key, &dv, BPF_ANY) :
		 bpf_map_delete_elem(fd, &key) && errno != ENOENT)
		return -errno;
	return 0;
}

int steer__xsks_fd(struct steer *s, const char *ifname)
{
	struct steer_iface *ifc = find_iface(s, ifname);

	return ifc ? bpf_map__fd(ifc->skel->maps.ferry_xsks) : -ENOENT;
}

int steer__fwd_stats_fd(struct steer *s)
{
	return shared_fd(s, SHARED_FWD_STATS);
}

int steer__svc_stats_fd(struct steer *s)
{
	return shared_fd(s, SHARED_SVC_STATS);
}

int steer__app_slots_fd(struct steer *s)
{
	return shared_fd(s, SHARED_APP_SLOTS);
}

int steer__lb_upstreams_fd(struct steer *s)
{
	return shared_fd(s, SHARED_LB_UPSTREAMS);
}

int steer__queue_stats_fd(struct steer *s)
{
	return shared_fd(s, SHARED_QUEUE_STATS);
}

int steer__health_fd(struct steer *s)
{
	return shared_fd(s, SHARED_HEALTH);
}

__u32 steer__prog_id(const struct steer *s, const char *ifname)
{
	const struct steer_iface *ifc = find_iface((struct steer *)s, ifname);
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	/* By its fd: loaded by libbpf (attached alone), libxdp's object has no id. */
	if (!ifc || !ifc->attached || ifc->prog_fd < 0 ||
	    bpf_obj_get_info_by_fd(ifc->prog_fd, &info, &len))
		return 0;
	return info.id;
}

int steer__flow_stats_fd(struct steer *s)
{
	return shared_fd(s, SHARED_FLOW_STATS);
}

int steer__sessions_fd(struct steer *s)
{
	return shared_fd(s, SHARED_SESSIONS);
}

int steer__sess_stats_fd(struct steer *s)
{
	return shared_fd(s, SHARED_SESS_STATS);
}

int steer__set_svc_info(struct steer *s, uint32_t flow_id, uint32_t pos, const char *name,
			const char *const counter_names[FERRY_SVC_COUNTERS])
{
	struct ferry_svc_info info = {};
	__u32 key = flow_id * FERRY_MAX_SERVICES + pos;
	int err;

	if (flow_id >= FERRY_MAX_FLOWS || pos >= FERRY_MAX_SERVICES) {
		pr_err("flow id %u service %u: out of range", flow_id, pos);
		return -ERANGE;
	}
	if (name) {
		/* Names are for people: a long one is cut, not refused. */
		snprintf(info.service, sizeof(info.service), "%s", name);
		for (int i = 0; i < FERRY_SVC_COUNTERS; i++)
			if (counter_names && counter_names[i])
				snprintf(info.counter_names[i], sizeof(info.counter_names[i]), "%s",
					 counter_names[i]);
		info.configured = 1;
	}
	err = bpf_map_update_elem(shared_fd(s, SHARED_SVC_INFO), &key, &info, BPF_ANY);
	if (err)
		pr_err("flow id %u service %u: cannot write its name: %s", flow_id, pos,
		       strerror(-err));
	return err;
}

const char *steer__mode_name(struct steer *s, const char *ifname)
{
	struct steer_iface *ifc = find_iface(s, ifname);

	return ifc ? xdp_mode_name(ifc->mode) : NULL;
}

bool steer__uses_dispatcher(const struct steer *s)
{
	for (int i = 0; i < s->nr_ifaces; i++)
		if (s->ifaces[i].attached && !s->ifaces[i].alone)
			return true;
	return false;
}

bool steer__adopting(const struct steer *s)
{
	return s->adopting;
}

const char *steer__old_flow_name(const struct steer *s, uint32_t flow_id)
{
	if (!s->old_flows || flow_id >= FERRY_MAX_FLOWS || !s->old_flow[flow_id][0])
		return NULL;
	return s->old_flow[flow_id];
}

void steer__destroy(struct steer *s)
{
	if (!s)
		return;
	for (int i = s->nr_ifaces - 1; i >= 0; i--)
		iface_teardown(s, &s->ifaces[i]);
	/* Nothing of an earlier run stays attached past a start that failed. */
	steer__drop_stale(s);
	for (int i = 0; i < ADOPT__MAX; i++)
		if (s->adopt_fd[i] >= 0)
			close(s->adopt_fd[i]);
	for (int i = 0; i < SHARED__MAX; i++) {
		char what[64];

		if (!s->pinned[i])
			continue;
		snprintf(what, sizeof(what), "map %s", shared_pin_names[i]);
		unpin(s, what, shared_pin_names[i]);
	}
	ferry_steer_bpf__destroy(s->shared);
	/* Only while holding the lock: otherwise the directory is someone else's. */
	if (s->locked && rmdir(s->pin_path) && errno != ENOTEMPTY && errno != ENOENT)
		pr_warn("pin path %s: cannot remove: %s", s->pin_path, strerror(errno));
	if (s->dir_fd >= 0)
		close(s->dir_fd);
	free(s);
}
