// SPDX-License-Identifier: BSD-2-Clause
/*
 * An interface's XDP feature bits over generic netlink (xdp_features.h):
 * the netdev family's id, then its device. No state kept here.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include "xdp_features.h"

/* linux/netdev.h (uapi, stable): the family, its command and attributes. */
#define NETDEV_FAMILY_NAME "netdev"
#define NETDEV_CMD_DEV_GET 1
#define NETDEV_A_DEV_IFINDEX 1
#define NETDEV_A_DEV_XDP_FEATURES 3

struct reply {
	uint16_t family;
	uint64_t features;
	bool found;
};

static int family_attr_cb(const struct nlattr *a, void *data)
{
	struct reply *r = data;

	if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID &&
	    !mnl_attr_validate(a, MNL_TYPE_U16)) {
		r->family = mnl_attr_get_u16(a);
		r->found = true;
	}
	return MNL_CB_OK;
}

static int dev_attr_cb(const struct nlattr *a, void *data)
{
	struct reply *r = data;

	if (mnl_attr_get_type(a) == NETDEV_A_DEV_XDP_FEATURES &&
	    !mnl_attr_validate(a, MNL_TYPE_U64)) {
		r->features = mnl_attr_get_u64(a);
		r->found = true;
	}
	return MNL_CB_OK;
}

static int family_cb(const struct nlmsghdr *nlh, void *data)
{
	return mnl_attr_parse(nlh, sizeof(struct genlmsghdr), family_attr_cb, data);
}

static int dev_cb(const struct nlmsghdr *nlh, void *data)
{
	return mnl_attr_parse(nlh, sizeof(struct genlmsghdr), dev_attr_cb, data);
}

/* One request of `type` and `cmd` with one attribute, its answer through cb. */
static int request(struct mnl_socket *nl, uint16_t type, uint8_t cmd, uint16_t attr,
		   const void *val, size_t len, mnl_cb_t cb, struct reply *r)
{
	char buf[8192]; /* a device message is small */
	unsigned int seq = (unsigned int)time(NULL), portid = mnl_socket_get_portid(nl);
	struct genlmsghdr *genl;
	struct nlmsghdr *nlh;
	ssize_t n;
	int ret;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = seq;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = cmd;
	genl->version = 1;
	mnl_attr_put(nlh, attr, len, val);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	r->found = false;
	do {
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		ret = mnl_cb_run(buf, (size_t)n, seq, portid, cb, r);
	} while (ret > 0 && !r->found);
	if (ret < 0)
		return -errno;
	return r->found ? 0 : -ENODATA;
}

int xdp_features__get(int ifindex, uint64_t *features)
{
	struct reply r = {0};
	struct mnl_socket *nl;
	uint32_t idx = (uint32_t)ifindex;
	int err;

	if (ifindex <= 0)
		return -ENODEV;
	nl = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto out_close;
	}
	err = request(nl, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_NAME,
		      NETDEV_FAMILY_NAME, sizeof(NETDEV_FAMILY_NAME), family_cb, &r);
	if (err) {
		/* No such family: a kernel before 6.3, which cannot say. */
		err = err == -ENOENT || err == -ENODATA ? -ENOENT : err;
		goto out_close;
	}
	err = request(nl, r.family, NETDEV_CMD_DEV_GET, NETDEV_A_DEV_IFINDEX, &idx, sizeof(idx),
		      dev_cb, &r);
	if (!err)
		*features = r.features;
out_close:
	mnl_socket_close(nl);
	return err;
}
