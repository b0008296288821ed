// SPDX-License-Identifier: BSD-2-Clause
/*
 * syscall_filter [--mdwe] LIST CMD [ARGS...]: runs CMD under a seccomp filter that
 * allows only the system calls named in the file LIST (one per line) and
 * fails every other with EPERM, as systemd does for a unit's
 * SystemCallFilter= allow list with SystemCallErrorNumber=EPERM.  Names this
 * kernel's architecture does not have are skipped.  no_new_privs is set
 * first (the unit's NoNewPrivileges=yes), so no privilege is needed.
 * --mdwe: no mapping may become writable and executable (PR_SET_MDWE), as
 * the unit's MemoryDenyWriteExecute=yes.
 *
 * libseccomp (libseccomp2, which systemd itself needs) is opened at run
 * time: its headers are not installed here, and only this tool uses it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define SCMP_ACT_ALLOW 0x7fff0000U
#define SCMP_ACT_ERRNO(x) (0x00050000U | ((x) & 0x0000ffffU))
#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_MDWE_REFUSE_EXEC_GAIN 1
#endif

int main(int argc, char **argv)
{
	void *(*init)(uint32_t def_action);
	int (*rule_add)(void *ctx, uint32_t action, int syscall, unsigned int arg_cnt, ...);
	int (*resolve)(const char *name);
	int (*load)(void *ctx);
	int allowed = 0, nr, err, mdwe = 0;
	char line[128];
	void *lib, *ctx;
	FILE *f;

	if (argc > 1 && !strcmp(argv[1], "--mdwe")) {
		mdwe = 1;
		argc--;
		argv++;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: syscall_filter [--mdwe] LIST CMD [ARGS...]\n");
		return 2;
	}
	lib = dlopen("libseccomp.so.2", RTLD_NOW);
	if (!lib) {
		fprintf(stderr, "syscall_filter: %s\n", dlerror());
		return 125;
	}
	init = (void *(*)(uint32_t))dlsym(lib, "seccomp_init");
	rule_add = (int (*)(void *, uint32_t, int, unsigned int, ...))dlsym(lib, "seccomp_rule_add");
	resolve = (int (*)(const char *))dlsym(lib, "seccomp_syscall_resolve_name");
	load = (int (*)(void *))dlsym(lib, "seccomp_load");
	if (!init || !rule_add || !resolve || !load) {
		fprintf(stderr, "syscall_filter: libseccomp lacks a function\n");
		return 125;
	}
	ctx = init(SCMP_ACT_ERRNO(EPERM));
	f = fopen(argv[1], "re");
	if (!ctx || !f) {
		fprintf(stderr, "syscall_filter: %s: %s\n", argv[1], strerror(errno));
		return 125;
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, " \t\n")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		nr = resolve(line);
		if (nr < 0) /* __NR_SCMP_ERROR: not a call of this architecture */
			continue;
		err = rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (err && err != -EEXIST) {
			fprintf(stderr, "syscall_filter: %s: %s\n", line, strerror(-err));
			return 125;
		}
		allowed++;
	}
	fclose(f);
	if (mdwe && prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0)) {
		fprintf(stderr, "syscall_filter: PR_SET_MDWE: %s\n", strerror(errno));
		return 125;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || (err = load(ctx))) {
		fprintf(stderr, "syscall_filter: cannot load the filter (%d allowed)\n", allowed);
		return 125;
	}
	execvp(argv[2], argv + 2);
	fprintf(stderr, "syscall_filter: %s: %s\n", argv[2], strerror(errno));
	return 127;
}
