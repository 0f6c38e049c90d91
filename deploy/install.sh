#!/bin/sh
# Installs (or uninstalls) bfp-agent, and optionally bfp-collector, with its config
# and its service: a systemd unit (Raspberry Pi OS, Debian, ...) or a procd init
# script (OpenWrt). POSIX sh: runs under BusyBox ash on a router.
#
#   sh install.sh                       # agent: detect arch, libc and init system
#   sh install.sh --collector           # also bfp-collector and its unit (systemd only)
#   sh install.sh --root /mnt/sdcard    # into an image or a mounted root (also DESTDIR=)
#   sh install.sh --uninstall [--purge] # remove; --purge also removes config and state
#   sh install.sh --uninstall --collector   # the collector too
#   sh install.sh --print-target        # print the Rust target it would install
#
# Idempotent: a second run changes nothing (files are only rewritten when their
# content differs) and an existing config is never overwritten; the shipped example
# is kept beside it in /usr/share/bfp-agent/ for comparison.
#
# With --root other than /, it only writes files below that root and runs no service
# manager, user or package tool: enabling is done with the same symlinks that
# `systemctl enable` / `/etc/init.d/bfp-agent enable` would create.
set -eu

usage() {
	cat <<'USAGE'
usage: install.sh [options]
  --root DIR            install below DIR instead of / (default: $DESTDIR or /)
  --binary FILE         the bfp-agent binary to install (default: found for the target, see below)
  --collector           also install (or uninstall) bfp-collector and its systemd unit
  --collector-binary F  the bfp-collector binary (default: found like the agent's)
  --init systemd|procd|none   service manager (default: detected)
  --arch ARCH           uname -m of the device (default: this machine's)
  --libc gnu|musl       C library of the device (default: detected; musl on OpenWrt)
  --uninstall           remove what install put there (config and state are kept)
  --purge               with --uninstall: also remove config and state
  --print-target        print the Rust target triple for the device and exit
  -h, --help            this help
Binaries are looked up, for target T, in: bin/T/ beside this script (a release
bundle), then target/T/release-small/ and target/T/release/ of the repository; a
glibc device falls back to the static musl build of its architecture.
USAGE
}

SRC=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$SRC/.." && pwd)
ROOT=${DESTDIR:-/}
BINARY=
COLLECTOR=0
COLLECTOR_BINARY=
INIT=
ARCH=
LIBC=
ACTION=install
PURGE=0

die() {
	echo "install.sh: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case "$1" in
	--root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=$2; shift 2 ;;
	--root=*) ROOT=${1#*=}; shift ;;
	--binary) [ $# -ge 2 ] || die "--binary needs a file"; BINARY=$2; shift 2 ;;
	--collector) COLLECTOR=1; shift ;;
	--collector-binary) [ $# -ge 2 ] || die "--collector-binary needs a file"; COLLECTOR_BINARY=$2; COLLECTOR=1; shift 2 ;;
	--init) [ $# -ge 2 ] || die "--init needs systemd, procd or none"; INIT=$2; shift 2 ;;
	--arch) [ $# -ge 2 ] || die "--arch needs a value"; ARCH=$2; shift 2 ;;
	--libc) [ $# -ge 2 ] || die "--libc needs gnu or musl"; LIBC=$2; shift 2 ;;
	--uninstall) ACTION=uninstall; shift ;;
	--purge) PURGE=1; shift ;;
	--print-target) ACTION=print-target; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown option: $1" ;;
	esac
done

[ -d "$ROOT" ] || die "root $ROOT is not a directory"
ROOT=$(cd "$ROOT" && pwd)
# R prefixes every path written; LIVE means "this machine's own /".
if [ "$ROOT" = / ]; then R=; LIVE=1; else R=$ROOT; LIVE=0; fi

# ---- what the device is -------------------------------------------------------

[ -n "$ARCH" ] || ARCH=$(uname -m)
case "$ARCH" in
aarch64 | arm64 | armv8*) CPU=aarch64 ;;
armv7* | armhf | arm) CPU=armv7 ;;
x86_64 | amd64) CPU=x86_64 ;;
*) die "unsupported architecture $ARCH (built for aarch64, armv7 and x86_64)" ;;
esac

if [ -z "$LIBC" ]; then
	LIBC=gnu
	# OpenWrt and Alpine are musl; so is any root with musl's loader.
	if [ -f "$R/etc/openwrt_release" ] || ls "$R"/lib/ld-musl-* >/dev/null 2>&1; then LIBC=musl; fi
fi
case "$LIBC" in gnu | musl) ;; *) die "--libc must be gnu or musl, not $LIBC" ;; esac

triple_for() { # cpu libc
	case "$1-$2" in
	aarch64-gnu) echo aarch64-unknown-linux-gnu ;;
	aarch64-musl) echo aarch64-unknown-linux-musl ;;
	armv7-gnu) echo armv7-unknown-linux-gnueabihf ;;
	armv7-musl) echo armv7-unknown-linux-musleabihf ;;
	x86_64-gnu) echo x86_64-unknown-linux-gnu ;;
	x86_64-musl) echo x86_64-unknown-linux-musl ;;
	esac
}
TARGET=$(triple_for "$CPU" "$LIBC")

if [ "$ACTION" = print-target ]; then
	echo "$TARGET"
	exit 0
fi

if [ -z "$INIT" ]; then
	if [ -f "$R/etc/openwrt_release" ] || [ -x "$R/sbin/procd" ]; then
		INIT=procd
	elif [ -d "$R/run/systemd/system" ] || [ -d "$R/etc/systemd/system" ] || [ -d "$R/lib/systemd/system" ] || [ -d "$R/usr/lib/systemd/system" ]; then
		INIT=systemd
	else
		INIT=none
	fi
fi
case "$INIT" in systemd | procd | none) ;; *) die "--init must be systemd, procd or none, not $INIT" ;; esac
[ "$COLLECTOR" = 0 ] || [ "$INIT" != procd ] || die "the collector is not for OpenWrt (install it on a server with systemd)"

# ---- file helpers ---------------------------------------------------------------

CHANGED=0
say() { echo "  $*"; }

# put SRC DEST MODE: copy only if missing or different, so a rerun changes nothing.
put() {
	mkdir -p "$(dirname "$2")"
	if [ -f "$2" ] && cmp -s "$1" "$2"; then
		if [ "$(stat -c %a "$2" 2>/dev/null || echo "$3")" != "$3" ]; then chmod "$3" "$2"; say "mode $3 $2"; CHANGED=1; fi
		say "unchanged $2"
		return 0
	fi
	# Copy beside the target and rename over it: a running binary is replaced, not
	# truncated under the process, and a power cut leaves the old or the new file.
	cp "$1" "$2.new.$$"
	chmod "$3" "$2.new.$$"
	mv -f "$2.new.$$" "$2"
	say "installed $2"
	CHANGED=1
}

# put_config SRC DEST MODE: the operator's file; written only if absent.
put_config() {
	if [ -e "$2" ]; then
		say "kept $2 (exists: yours; the shipped version is not copied over it)"
		return 0
	fi
	put "$1" "$2" "$3"
}

# link TARGET LINKPATH: a symlink, replaced only if it points elsewhere.
link() {
	mkdir -p "$(dirname "$2")"
	if [ -L "$2" ] && [ "$(readlink "$2")" = "$1" ]; then
		say "unchanged $2"
		return 0
	fi
	rm -f "$2"
	ln -s "$1" "$2"
	say "linked $2 -> $1"
	CHANGED=1
}

remove() {
	for f in "$@"; do
		if [ -e "$f" ] || [ -L "$f" ]; then
			rm -rf "$f"
			say "removed $f"
		fi
	done
}

# Drops the directories install created if they are left empty (never / itself).
prune() {
	for d in "$@"; do
		while [ -n "$d" ] && [ "$d" != "$R" ] && [ "$d" != / ] && rmdir "$d" 2>/dev/null; do
			d=$(dirname "$d")
		done
	done
}

find_binary() { # name explicit
	if [ -n "$2" ]; then
		[ -f "$2" ] || die "$1 binary $2 not found"
		echo "$2"
		return 0
	fi
	musl=$(triple_for "$CPU" musl)
	for t in "$TARGET" "$musl"; do
		for f in "$SRC/bin/$t/$1" "$REPO/target/$t/release-small/$1" "$REPO/target/$t/release/$1"; do
			if [ -f "$f" ]; then echo "$f"; return 0; fi
		done
	done
	# A native build of the machine the script runs on, when that is the device.
	if [ "$CPU" = "$(uname -m | sed 's/arm64/aarch64/')" ]; then
		for f in "$REPO/target/release-small/$1" "$REPO/target/release/$1"; do
			if [ -f "$f" ]; then echo "$f"; return 0; fi
		done
	fi
	die "no $1 binary for $TARGET: build it (scripts/build-arm.sh $TARGET) or pass --binary FILE"
}

# ---- install / uninstall ----------------------------------------------------------

SYSTEMD_UNIT_DIR=$R/etc/systemd/system
WANTS_DIR=$SYSTEMD_UNIT_DIR/multi-user.target.wants

install_agent() {
	bin=$(find_binary bfp-agent "$BINARY")
	echo "bfp-agent for $TARGET ($INIT) into ${ROOT}: $bin"
	put "$bin" "$R/usr/bin/bfp-agent" 755
	put "$SRC/bfp-agent.example.toml" "$R/usr/share/bfp-agent/bfp-agent.example.toml" 644
	case "$INIT" in
	procd)
		put "$SRC/openwrt/bfp-agent.toml" "$R/usr/share/bfp-agent/bfp-agent.openwrt.toml" 644
		put_config "$SRC/openwrt/bfp-agent.toml" "$R/etc/bfp-agent/bfp-agent.toml" 640
		put_config "$SRC/openwrt/bfp-agent.uci" "$R/etc/config/bfp-agent" 644
		put "$SRC/openwrt/bfp-agent.init" "$R/etc/init.d/bfp-agent" 755
		if [ "$LIVE" = 1 ]; then
			# The agent follows the file the system log service writes.
			if [ -z "$(uci -q get system.@system[0].log_file)" ]; then
				uci set system.@system[0].log_file=/var/log/messages
				uci commit system
				/etc/init.d/log restart
				say "system log now also written to /var/log/messages"
			fi
			/etc/init.d/bfp-agent enable
		else
			# What rc.common's enable does: S/K links named by START=95 and STOP=10.
			link ../init.d/bfp-agent "$R/etc/rc.d/S95bfp-agent"
			link ../init.d/bfp-agent "$R/etc/rc.d/K10bfp-agent"
		fi
		;;
	systemd)
		put "$SRC/systemd/bfp-agent.toml" "$R/usr/share/bfp-agent/bfp-agent.systemd.toml" 644
		put_config "$SRC/systemd/bfp-agent.toml" "$R/etc/bfp-agent/bfp-agent.toml" 640
		put "$SRC/systemd/bfp-agent.service" "$SYSTEMD_UNIT_DIR/bfp-agent.service" 644
		put "$SRC/systemd/bfp-agent.sysusers" "$R/usr/lib/sysusers.d/bfp-agent.conf" 644
		put "$SRC/systemd/bfp-agent.tmpfiles" "$R/usr/lib/tmpfiles.d/bfp-agent.conf" 644
		if [ "$LIVE" = 1 ]; then
			# What boot would do: create the user, then give its group read access to the config.
			systemd-sysusers /usr/lib/sysusers.d/bfp-agent.conf
			systemd-tmpfiles --create /usr/lib/tmpfiles.d/bfp-agent.conf
			systemctl daemon-reload
			systemctl enable bfp-agent.service
		else
			link ../bfp-agent.service "$WANTS_DIR/bfp-agent.service"
		fi
		;;
	none)
		put_config "$SRC/bfp-agent.example.toml" "$R/etc/bfp-agent/bfp-agent.toml" 640
		;;
	esac
}

install_collector() {
	bin=$(find_binary bfp-collector "$COLLECTOR_BINARY")
	echo "bfp-collector for $TARGET ($INIT) into ${ROOT}: $bin"
	put "$bin" "$R/usr/bin/bfp-collector" 755
	[ "$INIT" = systemd ] || return 0
	put_config "$SRC/bfp-collector.default" "$R/etc/default/bfp-collector" 644
	put "$SRC/systemd/bfp-collector.service" "$SYSTEMD_UNIT_DIR/bfp-collector.service" 644
	if [ "$LIVE" = 1 ]; then
		systemctl daemon-reload
		systemctl enable bfp-collector.service
	else
		link ../bfp-collector.service "$WANTS_DIR/bfp-collector.service"
	fi
}

uninstall_all() {
	echo "removing bfp from ${ROOT} ($INIT)"
	if [ "$LIVE" = 1 ]; then
		case "$INIT" in
		systemd)
			systemctl disable --now bfp-agent.service 2>/dev/null || true
			systemctl disable --now bfp-collector.service 2>/dev/null || true
			;;
		procd)
			[ -x /etc/init.d/bfp-agent ] && { /etc/init.d/bfp-agent stop || true; /etc/init.d/bfp-agent disable || true; }
			;;
		esac
	fi
	remove "$WANTS_DIR/bfp-agent.service" "$SYSTEMD_UNIT_DIR/bfp-agent.service" \
		"$R/usr/lib/sysusers.d/bfp-agent.conf" "$R/usr/lib/tmpfiles.d/bfp-agent.conf" \
		"$R/etc/rc.d/S95bfp-agent" "$R/etc/rc.d/K10bfp-agent" "$R/etc/init.d/bfp-agent" \
		"$R/usr/bin/bfp-agent" "$R/usr/share/bfp-agent"
	# The collector only when asked: a server may run it without the agent.
	if [ "$COLLECTOR" = 1 ]; then
		remove "$WANTS_DIR/bfp-collector.service" "$SYSTEMD_UNIT_DIR/bfp-collector.service" "$R/usr/bin/bfp-collector"
	elif [ -e "$R/usr/bin/bfp-collector" ]; then
		say "left bfp-collector installed (--uninstall --collector removes it)"
	fi
	keep="$R/etc/bfp-agent $R/etc/config/bfp-agent $R/var/lib/bfp-agent"
	[ "$COLLECTOR" = 0 ] || keep="$keep $R/etc/default/bfp-collector $R/var/lib/bfp-collector"
	for f in $keep; do
		if [ "$PURGE" = 1 ]; then
			remove "$f"
		elif [ -e "$f" ]; then
			say "kept $f (--purge removes it)"
		fi
	done
	if [ "$LIVE" = 1 ]; then
		[ "$INIT" != systemd ] || systemctl daemon-reload
	else
		# In an image or test root, leave no empty directory behind (never on a live /).
		prune "$WANTS_DIR" "$R/usr/lib/sysusers.d" "$R/usr/lib/tmpfiles.d" "$R/etc/rc.d" "$R/etc/init.d" \
			"$R/usr/bin" "$R/usr/share" "$R/etc/config" "$R/etc/default" "$R/var/lib"
	fi
}

case "$ACTION" in
install)
	install_agent
	[ "$COLLECTOR" = 0 ] || install_collector
	if [ "$CHANGED" = 0 ]; then echo "already installed: nothing changed"; fi
	case "$INIT" in
	systemd) echo "next: edit /etc/bfp-agent/bfp-agent.toml, then systemctl start bfp-agent" ;;
	procd) echo "next: edit /etc/bfp-agent/bfp-agent.toml, uci set bfp-agent.main.enabled=1; uci commit bfp-agent; service bfp-agent start" ;;
	none) echo "next: edit /etc/bfp-agent/bfp-agent.toml and run: bfp-agent run --config /etc/bfp-agent/bfp-agent.toml" ;;
	esac
	;;
uninstall) uninstall_all ;;
esac
