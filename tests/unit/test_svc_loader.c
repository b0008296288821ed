// SPDX-License-Identifier: BSD-2-Clause
/*
 * Out-of-tree services (daemon/svc_loader.c): every refusal with its exact
 * FILE:LINE:COL message, since an operator fixes the file from that text,
 * and the one way to succeed.  The objects are built by the Makefile into
 * svc/ next to this binary (tests/unit/svc/bad_service.c and the example
 * service); each test copies what it needs into a service_dir of its own
 * and sets owner and mode there.  Needs root: only root can own the files
 * the loader accepts.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "csum.h"
#include "daemon.h"
#include "svc_harness.h"
#include "svc_loader.h"
#include "unit.h"
#include "worker.h"

static char so_dir[PATH_MAX];	    /* where the Makefile put the objects */
static char top[PATH_MAX];	    /* the test's own directory */
static char svc_dir[PATH_MAX + 16]; /* top/services: the service_dir under test */
static struct cfg_errors errs;

static int loader_init(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		return -1;
	exe[n] = '\0';
	snprintf(so_dir, sizeof(so_dir), "%s/svc", dirname(exe));
	snprintf(top, sizeof(top), "/tmp/ferry-loader.XXXXXX");
	if (!mkdtemp(top))
		return -1;
	snprintf(svc_dir, sizeof(svc_dir), "%s/services", top);
	return 0;
}

static int rm_rf(const char *dir)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static int loader_cleanup(void)
{
	free(errs.capture);
	if (top[0] && strncmp(top, "/tmp/ferry-loader.", 18) == 0)
		rm_rf(top);
	return 0;
}

/* A fresh root-owned 0755 service_dir. */
static void fresh_dir(void)
{
	rm_rf(svc_dir);
	CU_ASSERT_EQUAL_FATAL(mkdir(svc_dir, 0755), 0);
	CU_ASSERT_EQUAL_FATAL(chmod(svc_dir, 0755), 0);
}

/* Copies svc/FROM.so to service_dir/TO.so with MODE. */
static void install(const char *from, const char *to, mode_t mode)
{
	char src[PATH_MAX + 32], dst[PATH_MAX + 32], buf[65536];
	int in, out;
	ssize_t n;

	snprintf(src, sizeof(src), "%s/%s.so", so_dir, from);
	snprintf(dst, sizeof(dst), "%s/%s.so", svc_dir, to);
	in = open(src, O_RDONLY);
	if (in < 0)
		fprintf(stderr, "\n  %s: %s (build it with make)\n", src, strerror(errno));
	CU_ASSERT_FATAL(in >= 0);
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CU_ASSERT_FATAL(out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		CU_ASSERT_EQUAL_FATAL(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
	CU_ASSERT_EQUAL_FATAL(chmod(dst, mode), 0);
}

static void reset_errs(void)
{
	free(errs.capture);
	memset(&errs, 0, sizeof(errs));
	errs.file = "t.yaml";
	errs.capture = strdup("");
}

static struct cfg_service service(const char *name)
{
	struct cfg_service s;

	memset(&s, 0, sizeof(s));
	snprintf(s.name, sizeof(s.name), "%s", name);
	s.mark.line = 12;
	s.mark.col = 9;
	return s;
}

/* Loading NAME from a loader on `dir` fails with exactly one error: MSG, "%s" = service_dir. */
static void expect_refusal(const char *dir, const char *name, const char *want)
{
	struct cfg_service s = service(name);
	const char *at = strstr(want, "%s");
	char msg[2 * PATH_MAX + 256];
	struct svc_loader *l;

	if (at)
		snprintf(msg, sizeof(msg), "%.*s%s%s", (int)(at - want), want, svc_dir, at + 2);
	else
		snprintf(msg, sizeof(msg), "%s", want);
	reset_errs();
	CU_ASSERT_EQUAL_FATAL(svc_loader__create(&l, dir), 0);
	CU_ASSERT_PTR_NULL(svc_loader__get(l, &s, &errs));
	CU_ASSERT_EQUAL(errs.count, 1);
	CU_ASSERT_EQUAL(svc_loader__count(l), 0);
	if (!strstr(errs.capture, msg)) {
		fprintf(stderr, "\n  expected: %s\n  captured: %s", msg, errs.capture);
		CU_FAIL("refusal message");
	}
	svc_loader__destroy(l);
}

static void test_missing(void)
{
	if (unit_require_root())
		return;
	fresh_dir();
	expect_refusal(svc_dir, "nope",
		       "t.yaml:12:9: unknown service 'nope': not built in, and there is no "
		       "%s/nope.so\n");
	/* A missing service_dir says the same: there is no such file either. */
	rm_rf(svc_dir);
	expect_refusal(svc_dir, "nope",
		       "t.yaml:12:9: unknown service 'nope': not built in, and there is no "
		       "%s/nope.so\n");
}

static void test_bad_objects(void)
{
	if (unit_require_root())
		return;
	fresh_dir();
	install("bad_abi", "bad_abi", 0644);
	install("no_symbol", "no_symbol", 0644);
	install("wrong_name", "wrong_name", 0644);
	install("unresolved", "unresolved", 0644);
	expect_refusal(svc_dir, "bad_abi",
		       "t.yaml:12:9: service 'bad_abi': %s/bad_abi.so has service ABI version 1, "
		       "but this ferryd has version 3: rebuild it against this ferryd's "
		       "ferry/ferry_service.h\n");
	expect_refusal(svc_dir, "no_symbol",
		       "t.yaml:12:9: service 'no_symbol': %s/no_symbol.so does not export the "
		       "symbol 'ferry_service' (a const struct ferry_service_ops)\n");
	expect_refusal(svc_dir, "wrong_name",
		       "t.yaml:12:9: service 'wrong_name': %s/wrong_name.so exports the service "
		       "'right_name', not 'wrong_name'\n");
	expect_refusal(svc_dir, "unresolved",
		       "t.yaml:12:9: service 'unresolved': cannot load %s/unresolved.so: "
		       "undefined symbol: ferry_worker__no_such_function\n");
	/* Not an ELF object at all. */
	{
		char path[PATH_MAX + 32];
		FILE *f;

		snprintf(path, sizeof(path), "%s/garbage.so", svc_dir);
		f = fopen(path, "w");
		CU_ASSERT_PTR_NOT_NULL_FATAL(f);
		fputs("not an object\n", f);
		fclose(f);
	}
	expect_refusal(svc_dir, "garbage",
		       "t.yaml:12:9: service 'garbage': cannot load "
		       "%s/garbage.so: ");
}

static void test_file_permissions(void)
{
	char path[PATH_MAX + 32], target[PATH_MAX + 32];

	if (unit_require_root())
		return;
	fresh_dir();
	snprintf(path, sizeof(path), "%s/example_tag.so", svc_dir);
	install("example_tag", "example_tag", 0646);
	expect_refusal(svc_dir, "example_tag",
		       "t.yaml:12:9: service 'example_tag': %s/example_tag.so is writable by group "
		       "or others (mode 0646)\n");
	CU_ASSERT_EQUAL(chmod(path, 0664), 0);
	expect_refusal(svc_dir, "example_tag",
		       "t.yaml:12:9: service 'example_tag': %s/example_tag.so is writable by group "
		       "or others (mode 0664)\n");
	CU_ASSERT_EQUAL(chmod(path, 0755), 0);
	CU_ASSERT_EQUAL(chown(path, 65534, 0), 0);
	expect_refusal(svc_dir, "example_tag",
		       "t.yaml:12:9: service 'example_tag': %s/example_tag.so is owned by uid "
		       "65534, not root\n");

	/* A symbolic link, even to a good object, is not followed. */
	CU_ASSERT_EQUAL(unlink(path), 0);
	snprintf(target, sizeof(target), "%s/example_tag.so", so_dir);
	CU_ASSERT_EQUAL(symlink(target, path), 0);
	expect_refusal(svc_dir, "example_tag",
		       "t.yaml:12:9: service 'example_tag': %s/example_tag.so is a symbolic link; "
		       "install the object itself\n");
	CU_ASSERT_EQUAL(unlink(path), 0);
	CU_ASSERT_EQUAL(mkdir(path, 0755), 0);
	expect_refusal(svc_dir, "example_tag",
		       "t.yaml:12:9: service 'example_tag': %s/example_tag.so is not a regular "
		       "file\n");
}

static void test_dir_permissions(void)
{
	if (unit_require_root())
		return;
	fresh_dir();
	install("example_tag", "example_tag", 0644);
	CU_ASSERT_EQUAL(chmod(svc_dir, 0777), 0);
	expect_refusal(svc_dir, "example_tag",
		       "t.yaml:12:9: service 'example_tag': service_dir %s is writable by group or "
		       "others (mode 0777)\n");
	CU_ASSERT_EQUAL(chmod(svc_dir, 0775), 0);
	expect_refusal(svc_dir, "example_tag",
		       "t.yaml:12:9: service 'example_tag': service_dir %s is writable by group or "
		       "others (mode 0775)\n");
	CU_ASSERT_EQUAL(chmod(svc_dir, 0755), 0);
	CU_ASSERT_EQUAL(chown(svc_dir, 65534, 65534), 0);
	expect_refusal(svc_dir, "example_tag",
		       "t.yaml:12:9: service 'example_tag': service_dir %s is owned by uid 65534, "
		       "not root\n");
	CU_ASSERT_EQUAL(chown(svc_dir, 0, 0), 0);
}

/* Stands in for forward after the example service: sends what reaches it. */
static void sink_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	for (uint32_t i = 0; i < b->n; i++)
		ferry_pkt_tx(b->pkts[i], 1);
}

static const struct ferry_service_ops sink_ops = {
	.name = "loader_test_sink",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.process = sink_process,
};

static struct ferry_service_ops tag_copy;

/* The example service loaded, then run through the real chain runner. */
static void test_load_and_run(void)
{
	struct cfg_service s = service("example_tag");
	const struct ferry_service_ops *ops;
	char slash_dir[sizeof(svc_dir) + 2];
	uint8_t frame[256], want[256];
	const uint8_t *frames[1] = {frame};
	const struct harness_out *o;
	struct svc_harness *h;
	struct svc_loader *l;
	struct pkt_info pi;
	uint32_t lens[1];
	uint64_t c[FERRY_SERVICE_COUNTERS] = {0};

	if (unit_require_root())
		return;
	fresh_dir();
	install("example_tag", "example_tag", 0755);
	reset_errs();
	/* A trailing slash names the same directory. */
	snprintf(slash_dir, sizeof(slash_dir), "%s/", svc_dir);
	CU_ASSERT_EQUAL_FATAL(svc_loader__create(&l, slash_dir), 0);
	ops = svc_loader__get(l, &s, &errs);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ops);
	CU_ASSERT_EQUAL(errs.count, 0);
	CU_ASSERT_STRING_EQUAL(ops->name, "example_tag");
	CU_ASSERT_EQUAL(ops->abi_version, FERRY_SERVICE_ABI_VERSION);
	CU_ASSERT_STRING_EQUAL(ops->counter_names[0], "tagged");
	/* Loaded once, however many flows name it. */
	CU_ASSERT_PTR_EQUAL(svc_loader__get(l, &s, &errs), ops);
	CU_ASSERT_EQUAL(svc_loader__count(l), 1);

	/*
	 * The harness keeps what it is given for the life of the binary, but the
	 * object is closed below: give it a copy whose name is not in the object.
	 */
	tag_copy = *ops;
	tag_copy.name = "example_tag";
	harness__add_service(&tag_copy);
	harness__add_service(&sink_ops);
	h = harness__create("[ {example_tag: {offset: 3, value: 0x42}}, loader_test_sink ]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	lens[0] = harness__udp4(frame, "198.18.1.2", 1000, "198.18.1.1", 5000, "abcdefgh", 8);
	memcpy(want, frame, lens[0]);
	want[42 + 3] = 0x42;
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 1), 1);
	/* Too short for offset 3: passes unchanged. */
	lens[0] = harness__udp4(frame, "198.18.1.2", 1000, "198.18.1.1", 5000, "abc", 3);
	CU_ASSERT_EQUAL(harness__run(h, frames, lens, 1), 1);
	CU_ASSERT_EQUAL_FATAL(harness__nr_out(h), 2);
	o = harness__out(h, 0);
	CU_ASSERT_EQUAL(o->len, 50);
	/* Only the byte and the UDP checksum differ, and the checksum is right. */
	CU_ASSERT(!memcmp(o->data, want, 40));
	CU_ASSERT(!memcmp(o->data + 42, want + 42, 8));
	CU_ASSERT_EQUAL_FATAL(pkt_parse(o->data, o->len, &pi), PKT_OK);
	CU_ASSERT_EQUAL(csum_verify(o->data, &pi), 1);
	CU_ASSERT(!memcmp(harness__out(h, 1)->data, frame, lens[0]));
	CU_ASSERT_EQUAL(harness__svc_stats(h, 0)->packets_in, 2);
	CU_ASSERT_EQUAL(harness__svc_stats(h, 0)->passed, 2);
	CU_ASSERT_EQUAL(harness__check_frames(h), 0);
	{
		struct ferry_worker *w = harness__worker(h);
		const struct flow_chain *ch = &w->d->flows[0];

		ch->ops[0]->stats(ch->conf[0], w->svc_state[0][0], c);
	}
	CU_ASSERT_EQUAL(c[0], 1);
	CU_ASSERT_EQUAL(c[1], 1);
	harness__destroy(h);
	/* After every destroy(): the code lives in the object. */
	svc_loader__destroy(l);
}

/* Runs ops->process over one frame and returns the first byte it left. */
static uint8_t mark_of(const struct ferry_service_ops *ops)
{
	uint8_t frame[64] = {0};
	struct ferry_pkt p = { .data = frame, .len = sizeof(frame) };
	struct ferry_pkt *pp = &p;
	struct ferry_batch b = { .pkts = &pp, .n = 1, .cap = 1 };

	ops->process(NULL, NULL, NULL, &b);
	return frame[0];
}

/*
 * Several objects in one loader, as a config naming two out-of-tree
 * services and a reload adding a third do it: each is its own object, with
 * its own name and code, not the one loaded before it under the same
 * /proc/self/fd name.
 */
static void test_several_objects(void)
{
	struct cfg_service tag = service("example_tag"), a = service("mark_a"),
			   bsvc = service("mark_b");
	const struct ferry_service_ops *ops_tag, *ops_a, *ops_b;
	struct svc_loader *l;

	if (unit_require_root())
		return;
	fresh_dir();
	install("example_tag", "example_tag", 0644);
	install("mark_a", "mark_a", 0644);
	install("mark_b", "mark_b", 0644);
	reset_errs();
	CU_ASSERT_EQUAL_FATAL(svc_loader__create(&l, svc_dir), 0);
	ops_tag = svc_loader__get(l, &tag, &errs);
	ops_a = svc_loader__get(l, &a, &errs);
	if (errs.count)
		fprintf(stderr, "\n  captured: %s", errs.capture);
	CU_ASSERT_EQUAL(errs.count, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ops_tag);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ops_a);
	CU_ASSERT_STRING_EQUAL(ops_tag->name, "example_tag");
	CU_ASSERT_STRING_EQUAL(ops_a->name, "mark_a");
	CU_ASSERT_EQUAL(mark_of(ops_a), 0xa1);
	/* The one a reload adds, after the first two were used. */
	ops_b = svc_loader__get(l, &bsvc, &errs);
	if (errs.count)
		fprintf(stderr, "\n  captured: %s", errs.capture);
	CU_ASSERT_EQUAL(errs.count, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ops_b);
	CU_ASSERT_STRING_EQUAL(ops_b->name, "mark_b");
	CU_ASSERT_STRING_EQUAL(ops_b->counter_names[0], "mark_b");
	CU_ASSERT_EQUAL(mark_of(ops_b), 0xb2);
	CU_ASSERT_EQUAL(mark_of(ops_a), 0xa1);
	CU_ASSERT_EQUAL(svc_loader__count(l), 3);
	/* Each is still found by its own name. */
	CU_ASSERT_PTR_EQUAL(svc_loader__get(l, &a, &errs), ops_a);
	CU_ASSERT_PTR_EQUAL(svc_loader__get(l, &tag, &errs), ops_tag);
	svc_loader__destroy(l);

	/* A new loader after the old one is gone loads them afresh, in another order. */
	CU_ASSERT_EQUAL_FATAL(svc_loader__create(&l, svc_dir), 0);
	ops_b = svc_loader__get(l, &bsvc, &errs);
	ops_a = svc_loader__get(l, &a, &errs);
	CU_ASSERT_EQUAL(errs.count, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ops_b);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ops_a);
	CU_ASSERT_EQUAL(mark_of(ops_b), 0xb2);
	CU_ASSERT_EQUAL(mark_of(ops_a), 0xa1);
	svc_loader__destroy(l);
}

/* What test_overwritten_in_place()'s child saw. */
struct overwrite_result {
	int untouched_mark;   /* the unchanged file loaded by a second loader */
	int same_inode;       /* the overwrite kept the inode */
	int refused;          /* the overwritten file: NULL, one error, nothing loaded */
	int message;          /* ... with the expected message */
	int replaced_mark;    /* the file replaced with a new inode: its code */
	int replaced_new_ops; /* ... a new object, not the old one */
};

static void overwrite_child(struct overwrite_result *res)
{
	struct cfg_service a = service("mark_a");
	const struct ferry_service_ops *ops_old, *ops;
	char path[PATH_MAX + 32], want[2 * PATH_MAX];
	struct svc_loader *running, *l;
	struct stat before, after;

	install("mark_a", "mark_a", 0644);
	reset_errs();
	if (svc_loader__create(&running, svc_dir) || !(ops_old = svc_loader__get(running, &a, &errs)))
		return;

	/* Untouched: the reload gets the same code. */
	if (svc_loader__create(&l, svc_dir))
		return;
	ops = svc_loader__get(l, &a, &errs);
	res->untouched_mark = ops && !errs.count ? mark_of(ops) : -1;
	svc_loader__destroy(l);

	/* Overwritten in place with a rebuild (install() truncates and rewrites). */
	snprintf(path, sizeof(path), "%s/mark_a.so", svc_dir);
	stat(path, &before);
	install("mark_a2", "mark_a", 0644);
	stat(path, &after);
	res->same_inode = before.st_ino == after.st_ino;
	snprintf(want, sizeof(want),
		 "t.yaml:12:9: service 'mark_a': %s was overwritten in place while the object "
		 "loaded from it before is still in use (same inode: it would load the old "
		 "code); replace the file with install(1) or mv, which give it a new inode\n",
		 path);
	reset_errs();
	if (svc_loader__create(&l, svc_dir))
		return;
	ops = svc_loader__get(l, &a, &errs);
	res->refused = !ops && errs.count == 1 && svc_loader__count(l) == 0;
	res->message = !!strstr(errs.capture, want);
	if (!res->message)
		fprintf(stderr, "\n  expected: %s\n  captured: %s", want, errs.capture);
	svc_loader__destroy(l);

	/* Replaced as the message says: a new inode, the new code. */
	unlink(path);
	install("mark_a2", "mark_a", 0644);
	reset_errs();
	if (svc_loader__create(&l, svc_dir))
		return;
	ops = svc_loader__get(l, &a, &errs);
	res->replaced_mark = ops && !errs.count ? mark_of(ops) : -1;
	res->replaced_new_ops = ops && ops != ops_old;
	svc_loader__destroy(l);
	/* `running` stays: its pages are a file rewritten under it, not fit for dlclose(). */
}

/*
 * A reload while the running config holds an object: glibc matches files by
 * inode, so one overwritten in place (cp: same inode, new code) would load
 * as the old object.  Refused, with what to do; the same file untouched
 * loads (the same code), and one replaced with a new inode loads its new
 * code.  In a child: the running object's file is rewritten under it, and
 * the child leaves without unloading it.
 */
static void test_overwritten_in_place(void)
{
	struct overwrite_result *res;
	int status = -1;
	pid_t pid;

	if (unit_require_root())
		return;
	fresh_dir();
	res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_FATAL(res != MAP_FAILED);
	memset(res, 0, sizeof(*res));
	fflush(stderr);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		overwrite_child(res);
		fflush(stderr);
		_exit(0);
	}
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT_EQUAL(status, 0);
	CU_ASSERT_EQUAL(res->untouched_mark, 0xa1);
	CU_ASSERT(res->same_inode);
	CU_ASSERT(res->refused);
	CU_ASSERT(res->message);
	CU_ASSERT_EQUAL(res->replaced_mark, 0xa2);
	CU_ASSERT(res->replaced_new_ops);
	munmap(res, sizeof(*res));
}

static CU_TestInfo loader_tests[] = {
	{ "missing object or directory", test_missing },
	{ "wrong ABI, no symbol, wrong name, unresolved symbol, not ELF", test_bad_objects },
	{ "object: writable, wrong owner, symlink, not a file", test_file_permissions },
	{ "service_dir: writable, wrong owner", test_dir_permissions },
	{ "the example service loaded and run", test_load_and_run },
	{ "several objects: each its own, a third added later", test_several_objects },
	{ "object overwritten in place during a reload: refused", test_overwritten_in_place },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(svc_loader, "svc_loader", loader_tests, loader_init, loader_cleanup)
