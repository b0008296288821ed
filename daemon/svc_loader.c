// SPDX-License-Identifier: BSD-2-Clause
/*
 * Loading out-of-tree services (see svc_loader.h for the contract).
 *
 * The checks and the load must concern the same file: the directory is
 * opened once and the object opened beneath it with O_NOFOLLOW, both are
 * checked with fstat() on those descriptors, and dlopen() is given
 * /proc/self/fd/N of the object's descriptor.  Swapping the file between the
 * check and the load would therefore change nothing, and a symbolic link is
 * refused rather than followed to a place nobody checked.
 *
 * dlopen() knows an object by the name it was given: asked for a name an
 * object already loaded has, it returns that object without opening the
 * file.  Were N closed after the load, the next object would get the same
 * N, the same name, and the first object's code.  So each object's
 * descriptor stays open as long as the object is loaded, which keeps its
 * name unique; one that stays mapped after dlclose() (glibc may mark an
 * object "nodelete") keeps its descriptor, and so its name, for good.
 *
 * glibc also knows an object by its file: a file whose device and inode
 * match an object already loaded gets that object back, whatever its name.
 * So a file overwritten in place (cp over it: same inode) while an earlier
 * load of it is still mapped (the running config's, during a reload) would
 * bring back the old code.  Every object still mapped is remembered with
 * its inode and a digest of its content, in whichever loader: a file on
 * such an inode with other content is refused, and the operator told to
 * replace it with install(1) or mv (a new inode).  The same content on the
 * same inode (a reload that did not touch the file) is the same code.
 *
 * Only the owner and mode of the directory itself and of the object are
 * checked, not those of every ancestor: service_dir is expected to sit in a
 * root-owned tree such as /usr/lib.
 *
 * The first two members of struct ferry_service_ops (name, abi_version)
 * keep their place in every ABI version, so an object of another version
 * can be read that far and refused by number.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "siphash.h"
#include "svc_loader.h"

/* Every service of every flow could be a different object. */
#define SVC_LOADER_MAX (CFG_MAX_FLOWS * CFG_MAX_SERVICES)

/* A file glibc has mapped (see above); main thread only, like every loader. */
struct svc_inode {
	dev_t dev;
	ino_t ino;
	off_t size;
	uint64_t digest; /* of the content at load */
	struct svc_inode *next;
};

static struct svc_inode *mapped_inodes;

struct svc_object {
	char name[CFG_NAME_LEN];
	void *handle;
	int fd;        /* open while loaded: /proc/self/fd/<fd> is the object's name */
	const struct ferry_service_ops *ops;
	struct svc_inode *inode; /* in mapped_inodes while fd is open */
};

struct svc_loader {
	char dir[PATH_MAX];
	int nr;
	struct svc_object objs[SVC_LOADER_MAX];
};

int svc_loader__create(struct svc_loader **out, const char *dir)
{
	struct svc_loader *l;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	snprintf(l->dir, sizeof(l->dir), "%s", dir);
	/* "/usr/lib/ferry/services/" and ".../services" name the same directory. */
	for (size_t n = strlen(l->dir); n > 1 && l->dir[n - 1] == '/'; n--)
		l->dir[n - 1] = '\0';
	*out = l;
	return 0;
}

/* Anyone but root able to change it could run code as ferryd. */
static int check_owner(const struct cfg_service *svc, const char *what, const char *path,
		       const struct stat *st, struct cfg_errors *errs)
{
	if (st->st_uid != 0) {
		cfg_mark_error(errs, svc->mark, "service '%s': %s%s is owned by uid %u, not root",
			       svc->name, what, path, (unsigned int)st->st_uid);
		return -EPERM;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		cfg_mark_error(errs, svc->mark,
			       "service '%s': %s%s is writable by group or others (mode %04o)",
			       svc->name, what, path, (unsigned int)(st->st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* dlerror() names the /proc/self/fd path; the operator knows the file by its own. */
static const char *load_error(const char *proc_path)
{
	const char *msg = dlerror();
	size_t n = strlen(proc_path);

	if (!msg)
		return "unknown error";
	if (!strncmp(msg, proc_path, n) && !strncmp(msg + n, ": ", 2))
		msg += n + 2;
	return msg;
}

/* Checks what the object exports; 0, or -errno after reporting. */
static int check_ops(const struct cfg_service *svc, const char *path,
		     const struct ferry_service_ops *ops, struct cfg_errors *errs)
{
	if (!ops) {
		cfg_mark_error(errs, svc->mark,
			       "service '%s': %s does not export the symbol '%s' (a const struct "
			       "ferry_service_ops)",
			       svc->name, path, FERRY_SERVICE_SYMBOL);
		return -ENOENT;
	}
	if (ops->abi_version != FERRY_SERVICE_ABI_VERSION) {
		cfg_mark_error(errs, svc->mark,
			       "service '%s': %s has service ABI version %u, but this ferryd has "
			       "version %u: rebuild it against this ferryd's ferry/ferry_service.h",
			       svc->name, path, ops->abi_version, FERRY_SERVICE_ABI_VERSION);
		return -EPROTO;
	}
	if (!ops->name || strcmp(ops->name, svc->name)) {
		cfg_mark_error(errs, svc->mark,
			       "service '%s': %s exports the service '%s', not '%s'", svc->name,
			       path, ops->name ? ops->name : "(null)", svc->name);
		return -EINVAL;
	}
	if (!ops->process) {
		cfg_mark_error(errs, svc->mark, "service '%s': %s has no process()", svc->name,
			       path);
		return -EINVAL;
	}
	return 0;
}

/* open() of the directory or the object failed with `err`. */
static int open_error(const struct cfg_service *svc, const char *path, int err,
		      struct cfg_errors *errs)
{
	if (err == -ENOENT || err == -ENOTDIR)
		cfg_mark_error(errs, svc->mark,
			       "unknown service '%s': not built in, and there is no %s", svc->name,
			       path);
	else if (err == -ELOOP)
		cfg_mark_error(errs, svc->mark,
			       "service '%s': %s is a symbolic link; install the object itself",
			       svc->name, path);
	else
		cfg_mark_error(errs, svc->mark, "service '%s': cannot open %s: %s", svc->name, path,
			       strerror(-err));
	return err;
}

/* SipHash of the file's bytes under a fixed key: tells contents apart, no secret needed. */
static int file_digest(int fd, off_t size, uint64_t *digest)
{
	static const struct siphash_key key = { 0x6665727279737663ull, 0x6c6f616465726f62ull };
	size_t words = ((size_t)size + 7) / 8 + 1;
	uint64_t *buf;
	size_t got = 0;

	buf = calloc(words, sizeof(*buf));
	if (!buf)
		return -ENOMEM;
	while (got < (size_t)size) {
		ssize_t n = pread(fd, (char *)buf + got, (size_t)size - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return n < 0 ? -errno : -EIO;
		}
		got += (size_t)n;
	}
	buf[words - 1] = (uint64_t)size; /* the zero padding is not content */
	*digest = siphash_words(&key, buf, words, 2, 4);
	free(buf);
	return 0;
}

/*
 * Refuses a file on the inode of an object still mapped unless it is that
 * object's content (see above); on success *inode is ready for
 * mapped_inodes.
 */
static int check_inode(const struct cfg_service *svc, const char *path, int fd,
		       const struct stat *st, struct svc_inode **inode, struct cfg_errors *errs)
{
	struct svc_inode *n;
	int err;

	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->dev = st->st_dev;
	n->ino = st->st_ino;
	n->size = st->st_size;
	err = file_digest(fd, st->st_size, &n->digest);
	if (err) {
		cfg_mark_error(errs, svc->mark, "service '%s': cannot read %s: %s", svc->name,
			       path, strerror(-err));
		free(n);
		return err;
	}
	for (const struct svc_inode *m = mapped_inodes; m; m = m->next) {
		if (m->dev != n->dev || m->ino != n->ino)
			continue;
		if (m->size == n->size && m->digest == n->digest)
			break;
		cfg_mark_error(errs, svc->mark,
			       "service '%s': %s was overwritten in place while the object "
			       "loaded from it before is still in use (same inode: it would "
			       "load the old code); replace the file with install(1) or mv, "
			       "which give it a new inode",
			       svc->name, path);
		free(n);
		return -ESTALE;
	}
	*inode = n;
	return 0;
}

static void forget_inode(struct svc_inode *inode)
{
	for (struct svc_inode **p = &mapped_inodes; *p; p = &(*p)->next) {
		if (*p == inode) {
			*p = inode->next;
			break;
		}
	}
	free(inode);
}

static int load(struct svc_loader *l, const struct cfg_service *svc, struct svc_object *obj,
		struct cfg_errors *errs)
{
	struct svc_inode *inode = NULL;
	char path[PATH_MAX + CFG_NAME_LEN + 8], file[CFG_NAME_LEN + 4], proc_path[64];
	const struct ferry_service_ops *ops;
	struct stat st;
	int dfd, fd, err;
	void *handle;

	snprintf(file, sizeof(file), "%s.so", svc->name);
	snprintf(path, sizeof(path), "%s/%s", l->dir, file);
	dfd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return open_error(svc, path, -errno, errs);
	if (fstat(dfd, &st)) {
		err = -errno;
		cfg_mark_error(errs, svc->mark, "service '%s': cannot stat service_dir %s: %s",
			       svc->name, l->dir, strerror(-err));
		goto err_close_dir;
	}
	err = check_owner(svc, "service_dir ", l->dir, &st, errs);
	if (err)
		goto err_close_dir;
	fd = openat(dfd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		err = open_error(svc, path, -errno, errs);
		goto err_close_dir;
	}
	if (fstat(fd, &st)) {
		err = -errno;
		cfg_mark_error(errs, svc->mark, "service '%s': cannot stat %s: %s", svc->name, path,
			       strerror(-err));
		goto err_close;
	}
	if (!S_ISREG(st.st_mode)) {
		cfg_mark_error(errs, svc->mark, "service '%s': %s is not a regular file", svc->name,
			       path);
		err = -EINVAL;
		goto err_close;
	}
	err = check_owner(svc, "", path, &st, errs);
	if (err)
		goto err_close;
	err = check_inode(svc, path, fd, &st, &inode, errs);
	if (err)
		goto err_close;

	snprintf(proc_path, sizeof(proc_path), "/proc/self/fd/%d", fd);
	handle = dlopen(proc_path, RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		cfg_mark_error(errs, svc->mark, "service '%s': cannot load %s: %s", svc->name, path,
			       load_error(proc_path));
		err = -ENOEXEC;
		goto err_close;
	}
	ops = dlsym(handle, FERRY_SERVICE_SYMBOL);
	err = check_ops(svc, path, ops, errs);
	if (err)
		goto err_dlclose;
	close(dfd);
	snprintf(obj->name, sizeof(obj->name), "%s", svc->name);
	obj->handle = handle;
	obj->fd = fd;
	obj->ops = ops;
	obj->inode = inode;
	inode->next = mapped_inodes;
	mapped_inodes = inode;
	pr_info("service '%s': loaded from %s", svc->name, path);
	return 0;

err_dlclose:
	dlclose(handle);
err_close:
	free(inode);
	close(fd);
err_close_dir:
	close(dfd);
	return err;
}

const struct ferry_service_ops *svc_loader__get(struct svc_loader *l, const struct cfg_service *svc,
						struct cfg_errors *errs)
{
	for (int i = 0; i < l->nr; i++)
		if (!strcmp(l->objs[i].name, svc->name))
			return l->objs[i].ops;
	/* Not reached: there are never more names than services in the config. */
	if (l->nr == SVC_LOADER_MAX) {
		cfg_mark_error(errs, svc->mark, "service '%s': too many out-of-tree services",
			       svc->name);
		return NULL;
	}
	if (load(l, svc, &l->objs[l->nr], errs))
		return NULL;
	return l->objs[l->nr++].ops;
}

int svc_loader__count(const struct svc_loader *l)
{
	return l ? l->nr : 0;
}

/* Closes the object's descriptor unless the object outlives its dlclose(). */
static void unload(struct svc_object *obj)
{
	char proc_path[64];
	void *still;

	if (dlclose(obj->handle))
		pr_warn("service '%s': dlclose: %s", obj->name, dlerror());
	snprintf(proc_path, sizeof(proc_path), "/proc/self/fd/%d", obj->fd);
	still = dlopen(proc_path, RTLD_NOW | RTLD_NOLOAD);
	if (still) {
		/* Still mapped under this name: a new object must never get it. */
		dlclose(still);
		return;
	}
	forget_inode(obj->inode);
	close(obj->fd);
}

void svc_loader__destroy(struct svc_loader *l)
{
	if (!l)
		return;
	while (l->nr--)
		unload(&l->objs[l->nr]);
	free(l);
}
