# ferry: build, test and demo.  Build outputs go to build/.
#
#   make            build ferryd, ferryctl, the XDP object and its skeleton
#   make check      install missing Debian packages, build, run every test
#   make demo       install missing Debian packages, build, run the demo
#   make install    PREFIX=/usr/local DESTDIR=
#
# Every BPF rule is here: clang -target bpf -g -O2, then bpftool gen skeleton,
# so the object is embedded in ferryd and never opened by path at run time.

PREFIX ?= /usr/local
DESTDIR ?=
SBINDIR ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
UNITDIR ?= /lib/systemd/system

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
FERRY_CFLAGS := $(CFLAGS) -std=gnu11 -D_GNU_SOURCE -pthread $(WARNINGS) \
	-Ibpf -Ilib -Iservices -Idaemon -I$(BUILD) $(EXTRA_CFLAGS)
LDLIBS := -lxdp -lbpf -lelf -lz -lyaml -lmnl -lsystemd -pthread
BPF_CFLAGS := -target bpf -g -O2 -Wall -Werror -I$(ARCH_INCLUDE) -Ibpf

LIB_SRCS := $(sort $(wildcard lib/*.c))
SVC_SRCS := $(sort $(wildcard services/*.c))
FERRYD_SRCS := $(sort $(filter-out daemon/ferryctl.c,$(wildcard daemon/*.c)))
CTL_SRCS := daemon/ferryctl.c
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

# Debian 12 packages the build, the tests and the demo need.
DEB_PACKAGES := clang llvm make gcc libc6-dev pkg-config libbpf-dev libxdp-dev bpftool \
	libelf-dev zlib1g-dev libyaml-dev libmnl-dev libcunit1-dev libsystemd-dev \
	iproute2 iputils-ping iperf3 nftables ethtool netcat-openbsd procps jq

.DELETE_ON_ERROR:
.PHONY: all deps check test-unit test-integration demo install clean format

all: $(FERRYD) $(FERRYCTL)

deps:
	$(Q)missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' \
			|| missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "deps: run as root to install packages" >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(BUILD)/%.bpf.o: bpf/%.bpf.c bpf/ferry_shared.h
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

$(FERRYD): $(FERRYD_OBJS) $(SVC_OBJS) $(LIBFERRY)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(FERRY_CFLAGS) -o $@ $^ $(LDLIBS)

$(FERRYCTL): $(CTL_OBJS) $(LIBFERRY)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(FERRY_CFLAGS) -o $@ $^ $(LDLIBS)

$(UNIT_TESTS): $(UNIT_OBJS) $(SVC_OBJS) $(filter-out $(BUILD)/daemon/ferryd.o,$(FERRYD_OBJS)) $(LIBFERRY)
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(FERRY_CFLAGS) -o $@ $^ $(LDLIBS) -lcunit

$(BUILD)/tests/%: tests/tools/%.c $(LIBFERRY) $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(FERRY_CFLAGS) -o $@ $< $(LIBFERRY) $(LDLIBS)

test-unit: $(UNIT_TESTS)
	$(Q)$(UNIT_TESTS)

test-integration: all $(TOOLS)
	$(Q)for t in tests/integration/test_*.sh; do $$t || exit 1; done

# The README's test command: everything, from a fresh machine.  The summary
# line "N passed, N failed" at the end counts the suites.
check: deps
	$(Q)$(MAKE) --no-print-directory all $(UNIT_TESTS) $(TOOLS)
	$(Q)tests/run-all.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory all $(TOOLS)
	$(Q)tests/demo.sh

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/ferry $(DESTDIR)$(UNITDIR)
	install -m 0755 $(FERRYD) $(FERRYCTL) $(DESTDIR)$(SBINDIR)/
	install -m 0644 configs/ferryd.service $(DESTDIR)$(UNITDIR)/ferryd.service
	sed -i 's|/usr/local/sbin|$(SBINDIR)|g' $(DESTDIR)$(UNITDIR)/ferryd.service
	[ -e $(DESTDIR)$(SYSCONFDIR)/ferry/ferry.yaml ] || \
		install -m 0644 configs/ferry.yaml $(DESTDIR)$(SYSCONFDIR)/ferry/ferry.yaml

format:
	clang-format -i $(LIB_SRCS) $(SVC_SRCS) $(FERRYD_SRCS) $(CTL_SRCS) lib/*.h services/*.h daemon/*.h

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
