// SPDX-License-Identifier: BSD-2-Clause
/* worker_priority for the NAPI threads of ferry's interfaces: see napi_prio.h. */
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include "log.h"
#include "napi_prio.h"

/* include/uapi/linux/netdev.h (Linux 6.9+; Debian 12's headers predate it). */
#define NETDEV_FAMILY_NAME "netdev"
#define NETDEV_CMD_NAPI_GET 11
#define NETDEV_A_NAPI_IFINDEX 1
#define NETDEV_A_NAPI_PID 4

struct genl_reply {
	uint16_t family; /* CTRL_CMD_GETFAMILY: the family id */
	int ifindex;	 /* NAPI_GET: the interface asked about */
	pid_t *pids;
	int nr, max;
	uint32_t msg_ifindex; /* of the message being parsed */
	uint32_t msg_pid;
};

static int family_attr(const struct nlattr *a, void *data)
{
	struct genl_reply *r = data;

	if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID && mnl_attr_validate(a, MNL_TYPE_U16) == 0)
		r->family = mnl_attr_get_u16(a);
	return MNL_CB_OK;
}

static int family_msg(const struct nlmsghdr *nlh, void *data)
{
	return mnl_attr_parse(nlh, sizeof(struct genlmsghdr), family_attr, data);
}

static int napi_attr(const struct nlattr *a, void *data)
{
	struct genl_reply *r = data;

	if (mnl_attr_validate(a, MNL_TYPE_U32))
		return MNL_CB_OK;
	if (mnl_attr_get_type(a) == NETDEV_A_NAPI_IFINDEX)
		r->msg_ifindex = mnl_attr_get_u32(a);
	else if (mnl_attr_get_type(a) == NETDEV_A_NAPI_PID)
		r->msg_pid = mnl_attr_get_u32(a);
	return MNL_CB_OK;
}

static int napi_msg(const struct nlmsghdr *nlh, void *data)
{
	struct genl_reply *r = data;
	int ret;

	r->msg_ifindex = 0;
	r->msg_pid = 0;
	ret = mnl_attr_parse(nlh, sizeof(struct genlmsghdr), napi_attr, data);
	/* A kernel that ignores the filter dumps every NAPI: keep ours, threaded ones. */
	if (ret == MNL_CB_OK && r->msg_ifindex == (uint32_t)r->ifindex && r->msg_pid &&
	    r->nr < r->max)
		r->pids[r->nr++] = (pid_t)r->msg_pid;
	return ret;
}

/* One request and its replies (a dump with NLM_F_DUMP). */
static int genl_talk(struct mnl_socket *nl, struct nlmsghdr *nlh, mnl_cb_t cb, struct genl_reply *r)
{
	char buf[16384];
	unsigned int portid = mnl_socket_get_portid(nl), seq = nlh->nlmsg_seq;
	ssize_t len;
	int ret;

	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		len = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (len < 0)
			return -errno;
		ret = mnl_cb_run(buf, (size_t)len, seq, portid, cb, r);
	} while (ret > 0 && (nlh->nlmsg_flags & NLM_F_DUMP));
	return ret < 0 ? -errno : 0;
}

static struct nlmsghdr *genl_msg(char *buf, uint16_t type, uint16_t flags, uint8_t cmd,
				 unsigned int seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = cmd;
	g->version = 1;
	return nlh;
}

int napi_prio__threads(int ifindex, pid_t *pids, int max)
{
	char buf[512];
	struct genl_reply r = {.ifindex = ifindex, .pids = pids, .max = max};
	unsigned int seq = (unsigned int)time(NULL);
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	int err;

	nl = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto out_close;
	}
	nlh = genl_msg(buf, GENL_ID_CTRL, 0, CTRL_CMD_GETFAMILY, seq);
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, NETDEV_FAMILY_NAME);
	err = genl_talk(nl, nlh, family_msg, &r);
	if (!err && !r.family)
		err = -ENOENT;
	if (err)
		goto out_close; /* no netdev family: a kernel before 6.5 */
	nlh = genl_msg(buf, r.family, NLM_F_DUMP, NETDEV_CMD_NAPI_GET, seq + 1);
	mnl_attr_put_u32(nlh, NETDEV_A_NAPI_IFINDEX, (uint32_t)ifindex);
	err = genl_talk(nl, nlh, napi_msg, &r);
out_close:
	mnl_socket_close(nl);
	return err ? err : r.nr;
}

int napi_prio__raise(struct napi_prio *np, int ifindex, const char *ifname, uint32_t prio)
{
	struct sched_param sp = {.sched_priority = (int)prio};
	pid_t pids[64];
	int n, raised = 0, err = 0;

	n = napi_prio__threads(ifindex, pids, (int)(sizeof(pids) / sizeof(pids[0])));
	if (n < 0) {
		pr_warn("%s: cannot list its NAPI threads (netdev netlink, Linux 6.9+): %s; "
			"worker_priority may starve them",
			ifname, strerror(-n));
		return n;
	}
	if (!n) {
		pr_debug("%s: NAPI not threaded: nothing to raise to worker_priority", ifname);
		return 0;
	}
	for (int i = 0; i < n; i++) {
		struct sched_param old;
		int policy = sched_getscheduler(pids[i]);

		if (policy < 0 || sched_getparam(pids[i], &old)) {
			err = -errno;
			continue;
		}
		/* An operator's real-time choice stands. */
		if (policy == SCHED_FIFO || policy == SCHED_RR)
			continue;
		if (np->nr == NAPI_PRIO_MAX_THREADS) {
			err = -ENOSPC;
			break;
		}
		if (sched_setscheduler(pids[i], SCHED_FIFO, &sp)) {
			err = -errno;
			continue;
		}
		np->saved[np->nr].pid = pids[i];
		np->saved[np->nr].policy = policy;
		np->saved[np->nr].priority = old.sched_priority;
		snprintf(np->saved[np->nr].ifname, sizeof(np->saved[np->nr].ifname), "%s", ifname);
		np->nr++;
		raised++;
	}
	if (raised)
		pr_info("%s: %d NAPI thread%s at SCHED_FIFO %u (worker_priority - 1, at least 1), until stop",
			ifname, raised, raised == 1 ? "" : "s", prio);
	if (err)
		pr_warn("%s: cannot raise every NAPI thread to SCHED_FIFO %u: %s; worker_priority "
			"may starve them",
			ifname, prio, strerror(-err));
	return err;
}

/* Still a NAPI thread: a pid freed with its interface may be another task's now. */
static bool is_napi_thread(pid_t pid)
{
	char path[64], comm[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	return !strncmp(comm, "napi/", 5);
}

void napi_prio__restore(struct napi_prio *np)
{
	for (int i = 0; i < np->nr; i++) {
		struct sched_param sp = {.sched_priority = np->saved[i].priority};

		/* A thread that is gone (interface deleted) needs nothing. */
		if (!is_napi_thread(np->saved[i].pid))
			continue;
		if (sched_setscheduler(np->saved[i].pid, np->saved[i].policy, &sp) &&
		    errno != ESRCH)
			pr_warn("%s: cannot put NAPI thread %d back to its scheduling: %s",
				np->saved[i].ifname, (int)np->saved[i].pid, strerror(errno));
	}
	np->nr = 0;
}
