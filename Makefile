# ferry: build, test and demo.  Build outputs go to build/.
#
#   make            build ferryd, ferryctl, the XDP object and its skeleton
#   make check      install missing Debian packages, build, run every test
#   make demo       install missing Debian packages, build, run the demo
#   make fleet-demo three ferry hosts behind an ECMP router with BGP (BIRD), one killed
#   make install    PREFIX=/usr/local DESTDIR=  (install-docs: only the manual pages and docs/*.md,
#                   install-headers: only the headers: service ABI, libferry_app)
#   make uninstall  the same variables: removes what make install put
#   make deb        the Debian packages (debian/), in build/deb/
#   make deps       the Debian packages the build needs (make test-deps: the tests')
#
# Every BPF rule is here: clang -target bpf -g -O2, then bpftool gen skeleton,
# so the object is embedded in ferryd and never opened by path at run time.

# Every installed file goes under $(DESTDIR)$(PREFIX), except the config:
# SYSCONFDIR stays /etc whatever the PREFIX (ferryd reads
# /etc/ferry/ferry.yaml unless told otherwise; the unit names SYSCONFDIR's).
# The unit goes where systemd looks for the PREFIX's units:
# /usr/local/lib/systemd/system for /usr/local, the distribution's
# /lib/systemd/system for /usr (Debian 12); set UNITDIR for another PREFIX
# (e.g. /etc/systemd/system).
PREFIX ?= /usr/local
DESTDIR ?=
SBINDIR ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
UNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/ferry
INCLUDEDIR ?= $(PREFIX)/include
LIBDIR ?= $(PREFIX)/lib
# Loadable services (service_dir): the installed config names this one.
SERVICEDIR ?= $(PREFIX)/lib/ferry/services
# Bash completion of ferryctl.
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions

BUILD := build
CC ?= cc
CLANG ?= clang
BPFTOOL ?= bpftool
Q := $(if $(V),,@)
msg = $(if $(V),,@printf '  %-8s %s\n' $(1) $(2);)

ARCH_INCLUDE := /usr/include/$(shell $(CC) -dumpmachine)
WARNINGS := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -Wvla
CFLAGS ?= -O2 -g
FERRY_CFLAGS := $(CPPFLAGS) $(CFLAGS) -std=gnu11 -D_GNU_SOURCE -pthread $(WARNINGS) \
	-Ibpf -Ilib -Iservices -Idaemon -I$(BUILD) $(EXTRA_CFLAGS)
LDLIBS := -lxdp -lbpf -lelf -lz -lyaml -lmnl -lsystemd -pthread
BPF_CFLAGS := -target bpf -g -O2 -Wall -Werror -I$(ARCH_INCLUDE) -Ibpf

LIB_SRCS := $(sort $(wildcard lib/*.c))
SVC_SRCS := $(sort $(wildcard services/*.c))
# Parallel jobs of the builds make check and make demo run.
NPROC ?= $(shell nproc)
FERRYD_SRCS := $(sort $(filter-out daemon/ferryctl%.c,$(wildcard daemon/*.c)))
# ferryctl's subcommands may live in files of their own: daemon/ferryctl_*.c.
CTL_SRCS := $(sort $(wildcard daemon/ferryctl*.c))
UNIT_SRCS := $(sort $(wildcard tests/unit/*.c))
TOOL_SRCS := $(sort $(wildcard tests/tools/*.c))
BPF_SRCS := $(sort $(wildcard bpf/*.bpf.c))

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))
LIB_OBJS := $(call obj,$(LIB_SRCS))
SVC_OBJS := $(call obj,$(SVC_SRCS))
FERRYD_OBJS := $(call obj,$(FERRYD_SRCS))
CTL_OBJS := $(call obj,$(CTL_SRCS))
UNIT_OBJS := $(call obj,$(UNIT_SRCS))
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(BUILD)/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))
TOOLS := $(patsubst tests/tools/%.c,$(BUILD)/tests/%,$(TOOL_SRCS))

LIBFERRY := $(BUILD)/libferry.a
FERRYD := $(BUILD)/ferryd
FERRYCTL := $(BUILD)/ferryctl
UNIT_TESTS := $(BUILD)/tests/unit-tests
# tests/unit/test_reply_lookup.c counts the reply lookups made outside lib/nat.c.
UNIT_LDFLAGS := -Wl,--wrap=nat_table__lookup_reply

# Out-of-tree services (ferry-services(7)) are shared objects that
# call the service ABI in ferryd itself: ferryd exports exactly the functions
# the dynamic list names (the ABI's), nothing else.  So does the unit-test
# binary, which loads service objects too.
SERVICE_MAP := services/ferry_service.map
EXPORT_LDFLAGS := -Wl,--dynamic-list=$(SERVICE_MAP)
# Service objects are built as out of tree: against the installed header
# only (make install-headers into $(SDK_DIR)), never with -Ilib -Idaemon -Ibpf.
SDK_DIR := $(BUILD)/sdk
SDK_HEADER := $(SDK_DIR)/include/ferry/ferry_service.h
SO_CFLAGS := $(CPPFLAGS) $(CFLAGS) -std=gnu11 $(WARNINGS) -fPIC -shared -I$(SDK_DIR)/include
EXAMPLE_SVCS := $(patsubst services/examples/svc_example_%.c,$(BUILD)/services/example_%.so,\
	$(sort $(wildcard services/examples/svc_example_*.c)))
# Objects the loader's unit tests load, next to the test binary (also the ASan one's).
LOADER_TEST_SOS = $(patsubst %,$(1)/tests/svc/%.so,bad_abi no_symbol wrong_name unresolved \
	example_tag mark_a mark_a2 mark_b)

# libferry_app, the client library of application services (ferry-services(7),
# "Application services"): libc only, built like an application would build
# it (only -Iservices, for the contract and its API header), position
# independent for the shared object.  Also in libferry.a (lib/*.c) for the
# unit tests.  The examples link the static one: they run from build/ as is.
APP_LIB := $(BUILD)/libferry_app.so
APP_LIB_A := $(BUILD)/libferry_app.a
APP_SONAME := libferry_app.so.1
APP_CFLAGS := $(CPPFLAGS) $(CFLAGS) -std=gnu11 -D_GNU_SOURCE $(WARNINGS) -Iservices
APP_HEADERS := services/ferry_app.h services/ferry_app_client.h
APP_EXAMPLES := $(patsubst services/examples/app_%.c,$(BUILD)/examples/app_%,\
	$(sort $(wildcard services/examples/app_*.c)))

# Debian 12 packages: what the build of ferryd, ferryctl and libferry_app
# needs (make deps: all a production host that builds from source gets;
# debian/control's Build-Depends lists the same, tests/integration/test_deb.sh
# checks), and what the tests, the demo and make deb add: the unit tests',
# sanitizer and fuzzer builds' libraries, the tools they run, the packaging
# tools (make test-deps).  make bench adds BENCH_PACKAGES (below).
BUILD_PACKAGES := clang llvm make gcc libc6-dev pkg-config libbpf-dev libxdp-dev bpftool \
	libelf-dev zlib1g-dev libyaml-dev libmnl-dev libsystemd-dev \
	libmicrohttpd-dev
DEB_PACKAGES := debhelper dpkg-dev fakeroot
TEST_PACKAGES := libcunit1-dev libclang-rt-14-dev \
	iproute2 iputils-ping iperf3 nftables ethtool netcat-openbsd procps jq \
	curl python3 tcpdump systemd groff-base man-db $(DEB_PACKAGES) lintian bird2 bash-completion

# $(call apt_install,WHO,PACKAGES[,optional]): apt-get install whichever of
# PACKAGES are missing (root only).  A failed install stops make, or with
# "optional" is only reported: what needs those packages is then skipped.
apt_install = missing=""; for p in $(2); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' \
			|| missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "$(1): installing$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "$(1): run as root to install packages" >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
			$(if $(3),|| echo "$(1): could not install$$missing; what needs them is skipped" >&2); \
	fi

.DELETE_ON_ERROR:
# Intermediate, but kept: otherwise make deletes them and rebuilds everything next time.
.SECONDARY: $(SKELS) $(BPF_OBJS)
.PHONY: all deps test-deps check test-unit test-integration demo fleet-demo soak install install-docs \
	install-headers install-app-lib uninstall deb \
	clean format

all: $(FERRYD) $(FERRYCTL) $(EXAMPLE_SVCS) $(APP_LIB) $(APP_LIB_A) $(APP_EXAMPLES)

deps:
	$(Q)$(call apt_install,deps,$(BUILD_PACKAGES))

test-deps:
	$(Q)$(call apt_install,test-deps,$(TEST_PACKAGES))

$(BUILD)/%.bpf.o: bpf/%.bpf.c bpf/ferry_shared.h bpf/ferry_match.h bpf/ferry_fastpath.h
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

# Every C object may include a skeleton: build those first.
$(BUILD)/%.o: %.c $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(FERRY_CFLAGS) -MMD -MP -c $< -o $@

$(LIBFERRY): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(FERRYD): $(FERRYD_OBJS) $(SVC_OBJS) $(LIBFERRY) $(SERVICE_MAP)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(FERRY_CFLAGS) $(LDFLAGS) $(EXPORT_LDFLAGS) -o $@ $(filter-out $(SERVICE_MAP),$^) $(LDLIBS)

# ferryctl metrics serves HTTP with libmicrohttpd: ferryctl alone links it.
CTL_LDLIBS := $(LDLIBS) -lmicrohttpd

$(FERRYCTL): $(CTL_OBJS) $(LIBFERRY)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(FERRY_CFLAGS) $(LDFLAGS) -o $@ $^ $(CTL_LDLIBS)

$(UNIT_TESTS): $(UNIT_OBJS) $(SVC_OBJS) $(filter-out $(BUILD)/daemon/ferryd.o,$(FERRYD_OBJS)) $(LIBFERRY) \
		$(SERVICE_MAP) | $(call LOADER_TEST_SOS,$(BUILD))
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(FERRY_CFLAGS) $(EXPORT_LDFLAGS) $(UNIT_LDFLAGS) -o $@ $(filter-out $(SERVICE_MAP),$^) $(LDLIBS) -lcunit

# The header as `make install` puts it, for building service objects against.
$(SDK_HEADER): services/ferry_service.h
	$(Q)$(MAKE) --no-print-directory install-headers DESTDIR=$(abspath $(SDK_DIR)) INCLUDEDIR=/include

$(BUILD)/services/example_%.so: services/examples/svc_example_%.c $(SDK_HEADER)
	$(call msg,SO,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(SO_CFLAGS) $(LDFLAGS) -MMD -MP -MF $@.d -o $@ $<

$(BUILD)/app/ferry_app.pic.o: lib/ferry_app.c $(APP_HEADERS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(APP_CFLAGS) -fPIC -c $< -o $@

$(BUILD)/app/ferry_app.o: lib/ferry_app.c $(APP_HEADERS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(APP_CFLAGS) -c $< -o $@

$(APP_LIB): $(BUILD)/app/ferry_app.pic.o
	$(call msg,LINK,$@)
	$(Q)$(CC) $(APP_CFLAGS) $(LDFLAGS) -shared -Wl,-soname,$(APP_SONAME) -o $@ $<

$(APP_LIB_A): $(BUILD)/app/ferry_app.o
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/examples/app_%: services/examples/app_%.c $(APP_LIB_A) $(APP_HEADERS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(APP_CFLAGS) $(LDFLAGS) -o $@ $< $(APP_LIB_A)

# The loader's test objects: one source, a -D per way of being wrong.  Built
# with the plain compiler for the ASan test binary too: only binaries are sanitized.
define loader_test_so
	$(call msg,SO,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(SO_CFLAGS) -DSVC_VARIANT_$* -MMD -MP -MF $@.d -o $@ $<
endef

$(BUILD)/tests/svc/%.so: tests/unit/svc/bad_service.c $(SDK_HEADER)
	$(loader_test_so)

$(BUILD)/tests/svc/mark_%.so: tests/unit/svc/mark_service.c $(SDK_HEADER)
	$(loader_test_so)

$(BUILD)/tests/svc/example_tag.so: $(BUILD)/services/example_tag.so
	$(Q)mkdir -p $(@D) && cp $< $@

$(BUILD)/tests/%: tests/tools/%.c $(LIBFERRY) $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(FERRY_CFLAGS) -o $@ $< $(LIBFERRY) $(LDLIBS)

# config_keys (tests/check_docs.sh) configures the built-in services as ferryd does.
$(BUILD)/tests/config_keys: tests/tools/config_keys.c $(SVC_OBJS) \
		$(filter-out $(BUILD)/daemon/ferryd.o,$(FERRYD_OBJS)) $(LIBFERRY) $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(FERRY_CFLAGS) -o $@ $(filter-out $(SKELS),$^) $(LDLIBS)

test-unit: $(UNIT_TESTS)
	$(Q)$(UNIT_TESTS)

test-integration: all $(TOOLS) $(call LOADER_TEST_SOS,$(BUILD)) bench-tools
	$(Q)for t in tests/integration/test_*.sh; do $$t || exit 1; done

# The test command (docs/testing.md): everything, from a fresh machine.  The summary
# line "N passed, N failed" at the end counts the suites.
# The benchmark's tools are built too (not run), so they cannot rot unseen.
check: deps test-deps
	$(Q)$(MAKE) --no-print-directory -j$(NPROC) all $(UNIT_TESTS) $(TOOLS) asan fuzz-build $(BENCH_TOOLS)
	$(Q)tests/run-all.sh

demo: deps test-deps
	$(Q)$(MAKE) --no-print-directory -j$(NPROC) all $(TOOLS)
	$(Q)tests/demo.sh

# A fleet of three ferry hosts behind an ECMP router learning the service
# address by BGP (BIRD); one host's ferryd killed and restarted (docs/fleet.md).
fleet-demo: deps test-deps
	$(Q)$(MAKE) --no-print-directory -j$(NPROC) all $(TOOLS)
	$(Q)tests/integration/test_fleet.sh

# Forwarding at full rate for SOAK_SECONDS (default 60), checking that
# ferryd's RSS stays flat and the frame accounting holds (tests/soak.sh).
soak: deps test-deps
	$(Q)$(MAKE) --no-print-directory -j$(NPROC) all $(TOOLS)
	$(Q)tests/soak.sh

# Manual pages (docs/man/): section from the file name's suffix.
MAN_PAGES := $(sort $(wildcard docs/man/*.[0-9]))

# The rest of the reference (docs/*.md) goes to DOCDIR, where the pages' SEE ALSO points.
DOC_FILES := $(sort $(wildcard docs/*.md))

install-docs:
	for p in $(MAN_PAGES); do \
		install -d $(DESTDIR)$(MANDIR)/man$${p##*.} && \
		install -m 0644 $$p $(DESTDIR)$(MANDIR)/man$${p##*.}/ || exit 1; \
	done
	install -d $(DESTDIR)$(DOCDIR)
	install -m 0644 $(DOC_FILES) $(DESTDIR)$(DOCDIR)/

# The headers: the service ABI and libferry_app's (ferry-services(7)).
install-headers:
	install -d $(DESTDIR)$(INCLUDEDIR)/ferry
	install -m 0644 services/ferry_service.h $(DESTDIR)$(INCLUDEDIR)/ferry/ferry_service.h
	install -m 0644 $(APP_HEADERS) $(DESTDIR)$(INCLUDEDIR)/ferry/

# libferry_app: the shared object under its SONAME, the link-time name beside
# it, and the static library.
install-app-lib: $(APP_LIB) $(APP_LIB_A)
	install -d $(DESTDIR)$(LIBDIR)
	install -m 0755 $(APP_LIB) $(DESTDIR)$(LIBDIR)/$(APP_SONAME)
	ln -sf $(APP_SONAME) $(DESTDIR)$(LIBDIR)/libferry_app.so
	install -m 0644 $(APP_LIB_A) $(DESTDIR)$(LIBDIR)/libferry_app.a

# The unit and the config as installed: they name the installed paths.
UNIT_SED := -e 's|/usr/local/sbin|$(SBINDIR)|g' -e 's|/etc/ferry/|$(SYSCONFDIR)/ferry/|g'
CONFIG_SED := -e 's|^service_dir: /usr/lib/ferry/services$$|service_dir: $(SERVICEDIR)|'
CONFIG := $(DESTDIR)$(SYSCONFDIR)/ferry/ferry.yaml

# An existing config is left as it is.
install: all install-docs install-headers install-app-lib
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/ferry $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SERVICEDIR)
	install -m 0755 $(FERRYD) $(FERRYCTL) $(DESTDIR)$(SBINDIR)/
	sed $(UNIT_SED) configs/ferryd.service >$(BUILD)/ferryd.service.installed
	install -m 0644 $(BUILD)/ferryd.service.installed $(DESTDIR)$(UNITDIR)/ferryd.service
	sed $(CONFIG_SED) configs/ferry.yaml >$(BUILD)/ferry.yaml.installed
	[ -e $(CONFIG) ] || install -m 0644 $(BUILD)/ferry.yaml.installed $(CONFIG)
	sed $(UNIT_SED) configs/ferry-announce.service >$(BUILD)/ferry-announce.service.installed
	install -m 0644 $(BUILD)/ferry-announce.service.installed $(DESTDIR)$(UNITDIR)/ferry-announce.service
	sed $(UNIT_SED) configs/ferry-metrics.service >$(BUILD)/ferry-metrics.service.installed
	install -m 0644 $(BUILD)/ferry-metrics.service.installed $(DESTDIR)$(UNITDIR)/ferry-metrics.service
	install -d $(DESTDIR)$(BASHCOMPDIR)
	install -m 0644 configs/ferryctl.bash-completion $(DESTDIR)$(BASHCOMPDIR)/ferryctl

# Removes every file make install puts, with the same variables, and the
# directories of ferry's own it made once empty (a service_dir with services
# in it stays).  The config goes only when it is still the one make install
# writes: one an operator changed is kept, and said so.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/ferryd $(DESTDIR)$(SBINDIR)/ferryctl \
		$(DESTDIR)$(UNITDIR)/ferryd.service $(DESTDIR)$(UNITDIR)/ferry-announce.service \
		$(DESTDIR)$(UNITDIR)/ferry-metrics.service $(DESTDIR)$(BASHCOMPDIR)/ferryctl
	for p in $(MAN_PAGES); do \
		rm -f $(DESTDIR)$(MANDIR)/man$${p##*.}/$${p##*/}; \
	done
	rm -f $(DESTDIR)$(INCLUDEDIR)/ferry/ferry_service.h \
		$(patsubst services/%,$(DESTDIR)$(INCLUDEDIR)/ferry/%,$(APP_HEADERS))
	rm -f $(DESTDIR)$(LIBDIR)/$(APP_SONAME) $(DESTDIR)$(LIBDIR)/libferry_app.so \
		$(DESTDIR)$(LIBDIR)/libferry_app.a
	rm -f $(patsubst docs/%,$(DESTDIR)$(DOCDIR)/%,$(DOC_FILES))
	mkdir -p $(BUILD) && sed $(CONFIG_SED) configs/ferry.yaml >$(BUILD)/ferry.yaml.installed
	if [ -e $(CONFIG) ]; then \
		if cmp -s $(BUILD)/ferry.yaml.installed $(CONFIG); then rm -f $(CONFIG); \
		else echo "uninstall: kept $(CONFIG): changed since make install"; fi; \
	fi
	for d in $(DESTDIR)$(INCLUDEDIR)/ferry $(DESTDIR)$(SYSCONFDIR)/ferry $(DESTDIR)$(DOCDIR) \
			$(DESTDIR)$(SERVICEDIR) $(patsubst %/services,%,$(filter %/ferry/services,\
			$(DESTDIR)$(SERVICEDIR))); do \
		[ ! -d $$d ] || rmdir --ignore-fail-on-non-empty $$d || exit 1; \
	done

# The Debian packages (debian/): ferry, libferry-app1, ferry-dev and their
# -dbgsym, built by dpkg-buildpackage into $(DEB_DIR).  Their objects,
# built with dpkg-buildflags' hardening flags, live apart from $(BUILD)'s, in
# $(BUILD)/deb-obj, kept between runs (-nc): only what changed is built again.
DEB_DIR := $(BUILD)/deb
# What a package build leaves in debian/ (not dh_clean: it also deletes the
# tree's *.orig, *.rej, *~ files, which are not the package build's).
DEB_CLEAN := dh_clean -d && rm -rf debian/.debhelper debian/debhelper-build-stamp debian/files \
	debian/*.substvars debian/*.debhelper.log debian/*.debhelper
deb: deps
	$(Q)$(call apt_install,deb,$(DEB_PACKAGES))
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)
	$(DEB_CLEAN)
	FERRY_DEB_DIR=$(abspath $(DEB_DIR)) FERRY_DEB_OBJ=$(BUILD)/deb-obj \
		dpkg-buildpackage -b -nc -us -uc -Jauto \
		--buildinfo-file=$(DEB_DIR)/ferry.buildinfo --buildinfo-option=-u$(DEB_DIR) \
		--changes-file=$(DEB_DIR)/ferry.changes --changes-option=-u$(DEB_DIR)
	$(DEB_CLEAN)
	ls $(DEB_DIR)/*.deb

# Benchmarks (tests/bench/, docs/benchmarks.md).  Their BPF programs follow
# the same two steps as bpf/: clang -target bpf, then bpftool gen skeleton.
BENCH_DIR := $(BUILD)/bench
BENCH_BPF_SRCS := $(sort $(wildcard tests/bench/*.bpf.c))
BENCH_SKELS := $(patsubst tests/bench/%.bpf.c,$(BENCH_DIR)/%.skel.h,$(BENCH_BPF_SRCS))
BENCH_TOOL_SRCS := $(filter-out %.bpf.c,$(sort $(wildcard tests/bench/*.c)))
BENCH_TOOLS := $(patsubst tests/bench/%.c,$(BENCH_DIR)/%,$(BENCH_TOOL_SRCS))
BENCH_HDRS := $(wildcard tests/bench/*.h)
BENCH_CFLAGS := $(FERRY_CFLAGS) -Itests/bench -I$(BENCH_DIR)
# Installed by `make bench` only (not by deps/check): the baselines and the profiler.
BENCH_PACKAGES := dpdk dpdk-dev librte-net-af-xdp23 sockperf valgrind

.PHONY: bench bench-deps bench-tools bench-micro
# Kept after a build, like bpf/'s: the skeletons are looked at, not just compiled in.
.SECONDARY: $(BENCH_SKELS) $(BENCH_SKELS:.skel.h=.bpf.o)

$(BENCH_DIR)/%.bpf.o: tests/bench/%.bpf.c $(BENCH_HDRS)
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -Itests/bench -c $< -o $@

$(BENCH_DIR)/%.skel.h: $(BENCH_DIR)/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

$(BENCH_DIR)/%: tests/bench/%.c $(BENCH_HDRS) $(BENCH_SKELS) $(LIBFERRY)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(BENCH_CFLAGS) -o $@ $< $(LIBFERRY) $(LDLIBS)

bench-deps: deps test-deps
	$(Q)$(call apt_install,bench-deps,$(BENCH_PACKAGES),optional)

bench-tools: all $(BENCH_TOOLS)

# The whole comparison (< 20 min; BENCH_QUICK=1: one run, fewer points, < 5 min).
bench: bench-deps
	$(Q)$(MAKE) --no-print-directory bench-tools
	$(Q)tests/bench/run.sh

# The packet path without a network: ns/packet, then instructions/packet under callgrind.
bench-micro: deps
	$(Q)$(call apt_install,bench-micro,valgrind,optional)
	$(Q)$(MAKE) --no-print-directory $(BENCH_DIR)/bench_micro
	$(Q)tests/bench/micro.sh $(BENCH_DIR)/bench_micro

# Fuzzing and sanitizer builds (tests/fuzz/, docs/testing.md).
# Each has its own object directory: sanitizer and coverage instrumentation
# never mix with the normal build's objects.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 20
export FUZZ_SECONDS FUZZ_SMOKE_SECONDS
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_HARNESSES := packet config chain app
FUZZ_BINS := $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_HARNESSES))
# Both builds use clang (libFuzzer needs it).  The gcc build is the warnings
# gate: clang warns about things gcc accepts (-Wsign-compare on constants,
# -Wformat-nonliteral on va_list wrappers), so here the project's code gets
# the same warnings, not as errors; tests/fuzz/ itself is built with -Werror.
SAN_WARNINGS := $(WARNINGS) -Wno-error -Wno-format-nonliteral
FUZZ_CFLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all -std=gnu11 -D_GNU_SOURCE -pthread $(SAN_WARNINGS) \
	-Ibpf -Ilib -Iservices -Idaemon -Itests/fuzz -I$(BUILD)
# The harnesses' stubs (tests/fuzz/fuzz_env.c) stand in for netlink lookups and notifications;
# umem__alloc() is wrapped to hand out frames ASan sees as whole.
FUZZ_WRAP := $(foreach f,create destroy route neigh,-Wl,--wrap=nh_resolver__$(f)) \
	$(foreach f,create destroy fd drain,-Wl,--wrap=nh_events__$(f)) -Wl,--wrap=umem__alloc
FUZZ_SUPPORT_SRCS := $(LIB_SRCS) $(SVC_SRCS) daemon/chain.c daemon/rx.c daemon/service_api.c \
	daemon/worker_nh.c daemon/handoff.c daemon/daemon.c daemon/svc_loader.c daemon/reload.c \
	daemon/offload.c tests/fuzz/fuzz_env.c
FUZZ_SUPPORT_OBJS := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(FUZZ_SUPPORT_SRCS))

# clang here too: gcc's warnings under -fsanitize have false positives
# (-Wrestrict in daemon/ferryd.c).
ASAN_DIR := $(BUILD)/asan
ASAN_CC ?= clang
ASAN_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all -std=gnu11 -D_GNU_SOURCE -pthread $(SAN_WARNINGS) \
	-Ibpf -Ilib -Iservices -Idaemon -I$(BUILD)
asan_obj = $(patsubst %.c,$(ASAN_DIR)/obj/%.o,$(1))
ASAN_LIBFERRY := $(ASAN_DIR)/libferry.a
ASAN_BINS := $(ASAN_DIR)/ferryd $(ASAN_DIR)/ferryctl $(ASAN_DIR)/tests/unit-tests

.PHONY: fuzz fuzz-smoke fuzz-build fuzz-corpus asan

$(FUZZ_DIR)/obj/%.o: %.c $(SKELS)
	$(call msg,FUZZCC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_DIR)/obj/tests/fuzz/%.o: tests/fuzz/%.c $(SKELS)
	$(call msg,FUZZCC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -Werror -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

# A static pattern rule: its objects are targets, not intermediates make would delete.
$(FUZZ_BINS): $(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o $(FUZZ_SUPPORT_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_WRAP) -o $@ $^ $(LDLIBS)

# Writes the seed corpora (committed under tests/fuzz/corpus/); run it after a format change.
$(FUZZ_DIR)/gen_corpus: tests/fuzz/gen_corpus.c $(LIBFERRY)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(FERRY_CFLAGS) -o $@ $< $(LIBFERRY) $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

# Each harness for FUZZ_SECONDS (make check runs fuzz-smoke: FUZZ_SMOKE_SECONDS each).
fuzz: $(FUZZ_BINS)
	$(Q)tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_HARNESSES)

fuzz-smoke: $(FUZZ_BINS)
	$(Q)tests/fuzz/run.sh $(FUZZ_SMOKE_SECONDS) $(FUZZ_HARNESSES)

fuzz-corpus: $(FUZZ_DIR)/gen_corpus
	$(Q)$(FUZZ_DIR)/gen_corpus tests/fuzz/corpus
	$(Q)cp configs/*.yaml tests/fuzz/corpus/config/

$(ASAN_DIR)/obj/%.o: %.c $(SKELS)
	$(call msg,ASANCC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(ASAN_CC) $(ASAN_CFLAGS) -MMD -MP -c $< -o $@

$(ASAN_LIBFERRY): $(call asan_obj,$(LIB_SRCS))
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(ASAN_DIR)/ferryd: $(call asan_obj,$(FERRYD_SRCS) $(SVC_SRCS)) $(ASAN_LIBFERRY) $(SERVICE_MAP)
	$(call msg,LINK,$@)
	$(Q)$(ASAN_CC) $(ASAN_CFLAGS) $(EXPORT_LDFLAGS) -o $@ $(filter-out $(SERVICE_MAP),$^) $(LDLIBS)

$(ASAN_DIR)/ferryctl: $(call asan_obj,$(CTL_SRCS)) $(ASAN_LIBFERRY)
	$(call msg,LINK,$@)
	$(Q)$(ASAN_CC) $(ASAN_CFLAGS) -o $@ $^ $(CTL_LDLIBS)

$(ASAN_DIR)/tests/unit-tests: $(call asan_obj,$(UNIT_SRCS) $(SVC_SRCS) \
		$(filter-out daemon/ferryd.c,$(FERRYD_SRCS))) $(ASAN_LIBFERRY) $(SERVICE_MAP) \
		| $(call LOADER_TEST_SOS,$(ASAN_DIR))
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(ASAN_CC) $(ASAN_CFLAGS) $(EXPORT_LDFLAGS) $(UNIT_LDFLAGS) -o $@ $(filter-out $(SERVICE_MAP),$^) $(LDLIBS) -lcunit

$(ASAN_DIR)/tests/svc/%.so: tests/unit/svc/bad_service.c $(SDK_HEADER)
	$(loader_test_so)

$(ASAN_DIR)/tests/svc/mark_%.so: tests/unit/svc/mark_service.c $(SDK_HEADER)
	$(loader_test_so)

$(ASAN_DIR)/tests/svc/example_tag.so: $(BUILD)/services/example_tag.so
	$(Q)mkdir -p $(@D) && cp $< $@

# ferryd, ferryctl and the unit tests with ASan and UBSan (tests/run-all.sh runs them).
asan: $(ASAN_BINS)

# The version comes from debian/changelog's first line; the commit from git
# when built from a git tree.  Only lib/version.c gets them (in every build:
# normal, ASan, fuzz), rebuilt when either changes (the stamp).
FERRY_VERSION := $(shell head -n 1 debian/changelog 2>/dev/null | cut -d ' ' -f 2 | tr -d '()')
FERRY_COMMIT := $(shell [ -e .git ] && c=$$(git rev-parse --short=12 HEAD 2>/dev/null) && \
	{ git --no-optional-locks diff --quiet HEAD -- 2>/dev/null && echo $$c || echo $$c-dirty; })
VERSION_DEFS := -DFERRY_VERSION='"$(FERRY_VERSION)"' -DFERRY_COMMIT='"$(FERRY_COMMIT)"'
VERSION_OBJS := $(call obj,lib/version.c) $(call asan_obj,lib/version.c) \
	$(FUZZ_DIR)/obj/lib/version.o
$(VERSION_OBJS): $(BUILD)/version.stamp
$(call obj,lib/version.c): FERRY_CFLAGS += $(VERSION_DEFS)
$(call asan_obj,lib/version.c): ASAN_CFLAGS += $(VERSION_DEFS)
$(FUZZ_DIR)/obj/lib/version.o: FUZZ_CFLAGS += $(VERSION_DEFS)

.PHONY: FORCE
$(BUILD)/version.stamp: FORCE
	$(Q)[ -n "$(FERRY_VERSION)" ] || { echo "no version: debian/changelog missing?" >&2; exit 1; }
	$(Q)mkdir -p $(@D)
	$(Q)echo '$(FERRY_VERSION) $(FERRY_COMMIT)' | cmp -s - $@ || \
		echo '$(FERRY_VERSION) $(FERRY_COMMIT)' >$@

format:
	clang-format -i $(LIB_SRCS) $(SVC_SRCS) $(FERRYD_SRCS) $(CTL_SRCS) lib/*.h services/*.h daemon/*.h

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
