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
#include "svc_loader.h"

/* Every service of every flow could be a different object. */
#define SVC_LOADER_MAX (CFG_MAX_FLOWS * CFG_MAX_SERVICES)

struct svc_object {
	char name[CFG_NAME_LEN];
	void *handle;
	int fd;        /* open while loaded: /proc/self/fd/<fd> is the object's name */
	const struct ferry_service_ops *ops;
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

static int load(struct svc_loader *l, const struct cfg_service *svc, struct svc_object *obj,
		struct cfg_errors *errs)
{
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
	pr_info("service '%s': loaded from %s", svc->name, path);
	return 0;

err_dlclose:
	dlclose(handle);
err_close:
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
