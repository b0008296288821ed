#!/bin/bash
# Installing ferry: the Debian packages and make install/uninstall.
#
#   (deb)       make deb builds ferry, libferry-app1 and ferry-dev into
#               build/deb/ (its objects kept in build/deb-obj/: a second
#               run builds only what changed)
#   (files)     each package's file list (dpkg-deb -c): ferryd and ferryctl
#               in /usr/sbin, the unit in /lib/systemd/system whose Exec
#               paths are /usr/sbin's, /etc/ferry/ferry.yaml, every manual
#               page of docs/man/ (section 3 in ferry-dev, the others in
#               ferry), /usr/lib/ferry/services, the headers, the library
#               under its SONAME, the link name and the static library
#   (conffile)  /etc/ferry/ferry.yaml is a conffile: in the package's
#               conffiles, and registered so by dpkg installing the packages
#               into a scratch root (dpkg --root -i, the maintainer scripts
#               chrooted there, with stand-ins of deb-systemd-helper,
#               deb-systemd-invoke and systemctl that log their arguments)
#   (scripts)   the maintainer scripts parse (sh -n); a first install enables
#               nothing; dpkg -r stops ferryd and keeps a changed config,
#               dpkg -P removes it and purges the unit's state
#   (run)       the scratch root's ferryd and ferryctl --version print the
#               version of debian/changelog; its ferryd --check accepts its
#               /etc/ferry/ferry.yaml
#   (dev)       a service and an application build against the scratch
#               root's headers and library alone (the examples ferry-dev ships)
#   (lintian)   no error (E:) on any of the three packages
#   (deps)      debian/control's Build-Depends holds every BUILD_PACKAGES
#               package but the build-essential ones; make deps installs
#               none of TEST_PACKAGES, make test-deps does
#   (install)   make install PREFIX=/usr/local DESTDIR=D puts exactly the
#               files it should under D/usr/local or D/etc/ferry, the unit in
#               /usr/local/lib/systemd/system naming /usr/local/sbin; with
#               PREFIX=/usr the unit goes to /lib/systemd/system; make
#               uninstall then leaves no file, and a changed config is kept
#               (and said so) while everything else goes
#
# (deps) and (install) run first: they need no package.  No namespaces, no
# network: everything happens in the test's directory and in build/.  Takes
# 10-40 s on an idle machine (make deb's first run builds everything once
# more, in build/deb-obj; later runs only what changed).
. "$(dirname "$0")/../lib.sh"
trap ns_cleanup EXIT
require_root test_deb || { echo "deb: 0 passed, 1 failed"; exit 1; }

DEB_DIR=$TOP/build/deb
ROOT=$WORKDIR/root
VERSION=$(head -n 1 "$TOP/debian/changelog" | cut -d ' ' -f 2 | tr -d '()')
ARCH=$(dpkg --print-architecture)
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)
DEB_FERRY=$DEB_DIR/ferry_${VERSION}_$ARCH.deb
DEB_LIB=$DEB_DIR/libferry-app1_${VERSION}_$ARCH.deb
DEB_DEV=$DEB_DIR/ferry-dev_${VERSION}_$ARCH.deb

# (deps)
make_var() { # NAME: the Makefile's value
	printf 'print-var:\n\t@echo $(%s)\n' "$1" | make -s -C "$TOP" -f Makefile -f - print-var
}
build_deps_listed() {
	local p st=0
	for p in $(make_var BUILD_PACKAGES); do
		case $p in make | gcc | libc6-dev) continue ;; esac
		sed -n '/^Build-Depends:/,/^[A-Z]/p' "$TOP/debian/control" | grep -qE "(^|[ ,])$p([ ,(]|\$)" ||
			{ log "  Build-Depends lacks $p"; st=1; }
	done
	return $st
}
check "deps: Build-Depends holds every BUILD_PACKAGES package" build_deps_listed
# What the recipes would install (make -n prints the package lists).
installs() { make -s -n -C "$TOP" "$1" | grep -oE 'for p in [^;]*' | sed 's/^for p in //'; }
deps_only_build() {
	local p st=0 list
	list=" $(installs deps) "
	for p in $(make_var TEST_PACKAGES); do
		case $list in *" $p "*) log "  make deps installs $p"; st=1 ;; esac
	done
	for p in $(make_var BUILD_PACKAGES); do
		case $list in *" $p "*) ;; *) log "  make deps misses $p"; st=1 ;; esac
	done
	return $st
}
check "deps: make deps installs the build's packages and none of the tests'" deps_only_build
test_deps_all() {
	local p st=0 list
	list=" $(installs test-deps) "
	for p in $(make_var TEST_PACKAGES); do
		case $list in *" $p "*) ;; *) log "  make test-deps misses $p"; st=1 ;; esac
	done
	# What the tests need and the build does not.
	for p in libcunit1-dev iperf3 lintian; do
		case $list in *" $p "*) ;; *) log "  make test-deps misses $p"; st=1 ;; esac
	done
	return $st
}
check "deps: make test-deps installs the tests' packages (CUnit, iperf3, lintian...)" test_deps_all

# (install)
stage=$WORKDIR/stage
inst() { make -s -C "$TOP" --no-print-directory "$@" >>"$WORKDIR/install.log" 2>&1; }
check "install: make install PREFIX=/usr/local DESTDIR=..." inst install PREFIX=/usr/local DESTDIR="$stage"
installed_exactly() {
	local p
	{
		printf '%s\n' ./etc/ferry/ferry.yaml ./usr/local/sbin/ferryd ./usr/local/sbin/ferryctl \
			./usr/local/lib/systemd/system/ferryd.service ./usr/local/lib/systemd/system/ferry-announce.service \
			./usr/local/lib/systemd/system/ferry-metrics.service \
			./usr/local/share/bash-completion/completions/ferryctl \
			./usr/local/include/ferry/{ferry_service.h,ferry_app.h,ferry_app_client.h} \
			./usr/local/lib/libferry_app.{so.1,so,a}
		for p in "$TOP"/docs/man/*.[0-9]; do
			echo "./usr/local/share/man/man${p##*.}/${p##*/}"
		done
		for p in "$TOP"/docs/*.md; do
			echo "./usr/local/share/doc/ferry/${p##*/}"
		done
	} | sort >"$WORKDIR/expected.list"
	(cd "$stage" && find . ! -type d | sort) >"$WORKDIR/installed.list"
	diff -u "$WORKDIR/expected.list" "$WORKDIR/installed.list" | sed 's/^/  | /' >&2
	cmp -s "$WORKDIR/expected.list" "$WORKDIR/installed.list"
}
check "install: exactly ferryd, ferryctl, config, unit, pages, headers, library, under DESTDIR/usr/local or /etc/ferry" \
	installed_exactly
check "install: the empty service_dir DESTDIR/usr/local/lib/ferry/services" \
	test -d "$stage/usr/local/lib/ferry/services"
unit=$stage/usr/local/lib/systemd/system/ferryd.service
check "install: the unit in /usr/local/lib/systemd/system, Exec from /usr/local/sbin" \
	sh -c "grep -q '^ExecStart=/usr/local/sbin/ferryd ' '$unit' &&
		! grep -E '^Exec' '$unit' | grep -q '/usr/sbin/'"
check "install: the config's service_dir is the PREFIX's" \
	grep -qx 'service_dir: /usr/local/lib/ferry/services' "$stage/etc/ferry/ferry.yaml"
check "install: the installed ferryd --check accepts the installed config" \
	"$stage/usr/local/sbin/ferryd" --check -c "$stage/etc/ferry/ferry.yaml"
check "install: make uninstall with the same variables" inst uninstall PREFIX=/usr/local DESTDIR="$stage"
check "install: make uninstall leaves no file and no ferry directory" \
	sh -c "cd '$stage' && ! find . ! -type d | grep -q . &&
		! find . -type d -name ferry | grep -q ."
stage2=$WORKDIR/stage2
check "install: make install PREFIX=/usr: the unit in /lib/systemd/system, Exec from /usr/sbin" \
	sh -c "make -s -C '$TOP' --no-print-directory install PREFIX=/usr DESTDIR='$stage2' >/dev/null 2>&1 &&
		grep -q '^ExecStart=/usr/sbin/ferryd ' '$stage2/lib/systemd/system/ferryd.service'"
echo "log_level: debug" >>"$stage2/etc/ferry/ferry.yaml"
make -s -C "$TOP" --no-print-directory uninstall PREFIX=/usr DESTDIR="$stage2" >"$WORKDIR/uninstall.log" 2>&1
check "install: make uninstall keeps a changed config, and says so" \
	sh -c "grep -q 'kept .*ferry.yaml' '$WORKDIR/uninstall.log' &&
		cd '$stage2' && [ \"\$(find . ! -type d)\" = ./etc/ferry/ferry.yaml ]"

# (deb)
if timeout 300 make -C "$TOP" --no-print-directory deb >"$WORKDIR/deb.log" 2>&1; then
	check "deb: make deb succeeds" true
else
	tail -n 30 "$WORKDIR/deb.log" | sed 's/^/  | /' >&2
	check "deb: make deb succeeds" false
fi
for d in "$DEB_FERRY" "$DEB_LIB" "$DEB_DEV"; do
	check "deb: built ${d#"$TOP"/}" test -s "$d"
done
if [ ! -s "$DEB_FERRY" ] || [ ! -s "$DEB_LIB" ] || [ ! -s "$DEB_DEV" ]; then
	summary deb
	exit 1
fi
check "deb: debian/ is left clean (no ferry/, tmp/, files, build stamp)" \
	test ! -e "$TOP/debian/ferry" -a ! -e "$TOP/debian/tmp" -a ! -e "$TOP/debian/files" \
	-a ! -e "$TOP/debian/debhelper-build-stamp"

# (files)
# Paths as installed, directories' too; *.files: only what is not a directory.
contents() { dpkg-deb -c "$1" | awk '{ print $6 }' | sed 's|^\.||; s|/$||'; }
files_of() { dpkg-deb -c "$1" | awk '$1 !~ /^d/ { print $6 }'; }
contents "$DEB_FERRY" >"$WORKDIR/ferry.list"
contents "$DEB_LIB" >"$WORKDIR/lib.list"
contents "$DEB_DEV" >"$WORKDIR/dev.list"
has() { grep -qx -- "$2" "$WORKDIR/$1.list" || { log "  $1 lacks $2"; return 1; }; }
has_all() { # LIST PATH...
	local list=$1 p st=0
	shift
	for p in "$@"; do has "$list" "$p" || st=1; done
	return $st
}
man_pages() { # SECTIONS (a bracket expression): the pages docs/man/ has, as installed
	local p
	for p in "$TOP"/docs/man/*.$1; do
		[ -e "$p" ] && echo "/usr/share/man/man${p##*.}/${p##*/}.gz"
	done
}
check "files: ferry has ferryd, ferryctl, the unit, the config, the service directory" \
	has_all ferry /usr/sbin/ferryd /usr/sbin/ferryctl /lib/systemd/system/ferryd.service \
	/etc/ferry/ferry.yaml /usr/lib/ferry/services
mapfile -t pages < <(man_pages '[4-9]')
check "files: ferry has every manual page of docs/man/ but section 3 (${#pages[@]})" \
	has_all ferry "${pages[@]}"
check "files: libferry-app1 has libferry_app.so.1" \
	has_all lib "/usr/lib/$MULTIARCH/libferry_app.so.1"
mapfile -t pages < <(man_pages 3)
check "files: ferry-dev has the three headers, the link name, the static library, ferry_app(3)" \
	has_all dev /usr/include/ferry/ferry_service.h /usr/include/ferry/ferry_app.h \
	/usr/include/ferry/ferry_app_client.h "/usr/lib/$MULTIARCH/libferry_app.so" \
	"/usr/lib/$MULTIARCH/libferry_app.a" "${pages[@]}"
no_shared_file() {
	local dup
	dup=$({ files_of "$DEB_FERRY"; files_of "$DEB_LIB"; files_of "$DEB_DEV"; } | sort | uniq -d)
	[ -z "$dup" ] || { log "  in two packages: $dup"; return 1; }
}
check "files: no file in two packages" no_shared_file

# (conffile), (scripts)
dpkg-deb -e "$DEB_FERRY" "$WORKDIR/control"
check "conffile: /etc/ferry/ferry.yaml is in ferry's conffiles" \
	grep -qx /etc/ferry/ferry.yaml "$WORKDIR/control/conffiles"
scripts_parse() {
	local s st=0
	for s in "$WORKDIR"/control/{preinst,postinst,prerm,postrm}; do
		[ -e "$s" ] && { sh -n "$s" || st=1; }
	done
	return $st
}
check "scripts: ferry's maintainer scripts parse" scripts_parse

# A scratch root dpkg installs into and runs the maintainer scripts in
# (chrooted): a shell and its libraries, /dev/null as a plain file, a
# /run/systemd/system as on a host booted with systemd, and stand-ins of
# the commands the scripts call, which log their arguments to /calls.log.
# deb-systemd-helper answers as the real one does for a unit it never saw:
# not debian-installed, was-enabled (no state counts as enabled).
make_root() {
	local lib cmd
	mkdir -p "$ROOT"/{bin,dev,usr/bin,tmp,run/systemd/system,var/lib/dpkg/info,var/lib/dpkg/updates}
	touch "$ROOT/var/lib/dpkg/status" "$ROOT/var/lib/dpkg/available"
	: >"$ROOT/dev/null"
	cp /bin/dash "$ROOT/bin/sh" || return 1
	for lib in $(ldd /bin/dash | grep -oE '/[^ ]+'); do
		mkdir -p "$ROOT${lib%/*}" && cp -L "$lib" "$ROOT$lib" || return 1
	done
	for cmd in deb-systemd-helper deb-systemd-invoke systemctl; do
		printf '#!/bin/sh\necho "%s $*" >>/calls.log\n[ "$1" != debian-installed ]\n' \
			"$cmd" >"$ROOT/usr/bin/$cmd"
		chmod +x "$ROOT/usr/bin/$cmd"
	done
}
calls() { sed 's/^/  calls: /' "$ROOT/calls.log" >&2; : >"$ROOT/calls.log"; }
make_root
check "conffile: dpkg --root installs the three packages (the maintainer scripts chrooted)" \
	sh -c "dpkg --root='$ROOT' --force-depends -i '$DEB_LIB' '$DEB_FERRY' '$DEB_DEV' \
		>'$WORKDIR/dpkg.log' 2>&1 || { sed 's/^/  | /' '$WORKDIR/dpkg.log' >&2; exit 1; }"
installed() { dpkg --root="$ROOT" -s "$1" 2>/dev/null | grep -qx 'Status: install ok installed'; }
check "conffile: ferry, libferry-app1 and ferry-dev are installed" \
	sh -c "$(declare -f installed); ROOT='$ROOT'; installed ferry && installed libferry-app1 &&
		installed ferry-dev"
conffile_md5=$(md5sum <"$ROOT/etc/ferry/ferry.yaml" | cut -d ' ' -f 1)
check "conffile: dpkg registers /etc/ferry/ferry.yaml as ferry's conffile, by its md5sum" \
	sh -c "dpkg --root='$ROOT' -s ferry | sed -n '/^Conffiles:/,/^[A-Z]/p' |
		grep -qx ' /etc/ferry/ferry.yaml $conffile_md5'"
# The start request goes through deb-systemd-invoke, which starts no unit
# that is not enabled: so not enabling is not starting.
check "scripts: a first install enables nothing" \
	sh -c "! grep -E '(deb-systemd-helper|systemctl) .*enable' '$ROOT/calls.log'"
calls
echo "log_level: debug" >>"$ROOT/etc/ferry/ferry.yaml"
dpkg --root="$ROOT" --force-depends -r ferry >"$WORKDIR/dpkg-r.log" 2>&1
check "scripts: dpkg -r ferry stops ferryd, keeps the changed conffile" \
	sh -c "grep -q 'deb-systemd-invoke stop .*ferryd.service' '$ROOT/calls.log' &&
		grep -q 'log_level: debug' '$ROOT/etc/ferry/ferry.yaml' &&
		[ ! -e '$ROOT/usr/sbin/ferryd' ]"
calls
dpkg --root="$ROOT" --force-depends -P ferry >"$WORKDIR/dpkg-p.log" 2>&1
check "scripts: dpkg -P ferry removes the conffile and purges the unit's state" \
	sh -c "grep -q 'deb-systemd-helper purge .*ferryd.service' '$ROOT/calls.log' &&
		[ ! -e '$ROOT/etc/ferry/ferry.yaml' ]"
calls
# Installed again, for what follows.
dpkg --root="$ROOT" --force-depends -i "$DEB_FERRY" >"$WORKDIR/dpkg-i2.log" 2>&1
calls

# (run)
check "run: the scratch root's ferryd --version prints $VERSION" \
	sh -c "'$ROOT/usr/sbin/ferryd' --version | tee -a /dev/stderr | grep -q '^ferryd $VERSION\\b'"
check "run: the scratch root's ferryctl --version prints $VERSION" \
	sh -c "'$ROOT/usr/sbin/ferryctl' --version | tee -a /dev/stderr | grep -q '^ferryctl $VERSION\\b'"
check "run: the scratch root's ferryd --check accepts its /etc/ferry/ferry.yaml" \
	"$ROOT/usr/sbin/ferryd" --check -c "$ROOT/etc/ferry/ferry.yaml"
check "run: the unit's Exec paths are /usr/sbin's" \
	sh -c "grep -E '^Exec' '$ROOT/lib/systemd/system/ferryd.service' | grep -q /usr/sbin/ &&
		! grep -E '^Exec' '$ROOT/lib/systemd/system/ferryd.service' | grep -q /usr/local"

# (dev)
ex=$ROOT/usr/share/doc/ferry-dev/examples
check "dev: svc_example_tag.c builds against the packaged header" \
	cc -std=gnu11 -Wall -Werror -fPIC -shared -I"$ROOT/usr/include" \
	-o "$WORKDIR/example_tag.so" "$ex/svc_example_tag.c"
check "dev: app_xor.c builds against the packaged headers and links libferry_app" \
	sh -c "cc -std=gnu11 -D_GNU_SOURCE -Wall -Werror -I'$ROOT/usr/include/ferry' \
		-o '$WORKDIR/app_xor' '$ex/app_xor.c' -L'$ROOT/usr/lib/$MULTIARCH' -lferry_app &&
		readelf -d '$WORKDIR/app_xor' | grep -q 'NEEDED.*libferry_app.so.1'"

# (lintian)
lintian_clean() {
	local st
	# --fail-on error: exit 1 on an error, 2 when lintian itself failed.
	timeout 120 lintian --fail-on error --tag-display-limit 0 "$DEB_FERRY" "$DEB_LIB" "$DEB_DEV" \
		>"$WORKDIR/lintian.log" 2>&1
	st=$?
	grep -v '^running with root privileges' "$WORKDIR/lintian.log" | sed 's/^/  lintian: /' >&2
	[ $st = 0 ] && ! grep -q '^E: ' "$WORKDIR/lintian.log"
}
check "lintian: no errors" lintian_clean

summary deb
