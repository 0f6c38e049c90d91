#!/usr/bin/env bash
# One command: builds bfp-agent for the four ARM targets with the size profile
# (release-small) and prints each stripped binary's size. Installs what it needs
# on a fresh Debian 12 machine (no Docker): Debian's cross gcc and qemu-user-static,
# the three rustup targets that have a prebuilt std, and, for armv7 musl (no
# prebuilt std for this toolchain), rust-src + zig + cargo-zigbuild from PyPI to
# build std from source with -Zbuild-std.
#
#   scripts/build-arm.sh                  # all four targets
#   scripts/build-arm.sh armv7-unknown-linux-musleabihf   # only the ones named
#   SKIP_INSTALL=1 scripts/build-arm.sh   # toolchains already there
#
# Results: target/<triple>/release-small/bfp-agent (or below $CARGO_TARGET_DIR),
# listed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS=(aarch64-unknown-linux-gnu aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf armv7-unknown-linux-musleabihf)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")
PROFILE=release-small
TARGET_DIR=${CARGO_TARGET_DIR:-target}
# Versions checked on Debian 12 with Rust 1.95.
ZIGLANG_VERSION=0.17.1
ZIGBUILD_VERSION=0.24.1

. "$(dirname "$0")/lib/apt.sh"

wants() { local t; for t in "${TARGETS[@]}"; do [ "$t" = "$1" ] && return 0; done; return 1; }

install_tools() {
  local pkgs=()
  if wants aarch64-unknown-linux-gnu || wants aarch64-unknown-linux-musl; then
    command -v aarch64-linux-gnu-gcc >/dev/null || pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
  fi
  if wants armv7-unknown-linux-gnueabihf; then
    command -v arm-linux-gnueabihf-gcc >/dev/null || pkgs+=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross)
  fi
  command -v qemu-aarch64-static >/dev/null || pkgs+=(qemu-user-static)
  command -v file >/dev/null || pkgs+=(file)
  if [ ${#pkgs[@]} -gt 0 ]; then
    apt_install "${pkgs[@]}"
  fi

  local installed t
  installed=$(rustup target list --installed)
  for t in aarch64-unknown-linux-gnu aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf; do
    if wants "$t" && ! grep -qx "$t" <<<"$installed"; then rustup target add "$t"; fi
  done

  if wants armv7-unknown-linux-musleabihf; then
    rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src
    if ! zigbuild --help >/dev/null 2>&1; then
      python3 -m pip install --quiet "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$ZIGBUILD_VERSION"
    fi
  fi
}

# cargo-zigbuild from pip may land in a scripts dir that is not on PATH yet (pyenv shims).
zigbuild() {
  if command -v cargo-zigbuild >/dev/null; then cargo-zigbuild "$@"; return; fi
  local bin
  bin="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/cargo-zigbuild"
  [ -x "$bin" ] || return 127
  "$bin" "$@"
}

[ "${SKIP_INSTALL:-0}" = 1 ] || install_tools

for t in "${TARGETS[@]}"; do
  echo "== building bfp-agent for $t ($PROFILE)"
  case "$t" in
    armv7-unknown-linux-musleabihf)
      # No prebuilt std: build it from rust-src (nightly-only flag, so RUSTC_BOOTSTRAP
      # for this build only), link with zig against its bundled musl rather than
      # Rust's self-contained crt objects, which this target does not ship.
      # std's default features include the backtrace symbolizer (gimli, addr2line,
      # ~170 KB); a panic = abort binary with stripped symbols cannot use it, so
      # only panic-unwind is kept (what the prebuilt targets' std would not let us drop).
      RUSTC_BOOTSTRAP=1 RUSTFLAGS="${RUSTFLAGS:-} -C link-self-contained=no" \
        zigbuild zigbuild --locked -p bfp-agent --bin bfp-agent --profile "$PROFILE" --target "$t" \
        -Zbuild-std=std,panic_abort -Zbuild-std-features="${STD_FEATURES:-panic-unwind}"
      ;;
    aarch64-unknown-linux-gnu | aarch64-unknown-linux-musl | armv7-unknown-linux-gnueabihf)
      cargo build --locked -p bfp-agent --bin bfp-agent --profile "$PROFILE" --target "$t"
      ;;
    *)
      echo "unknown target $t (expected one of: ${ALL_TARGETS[*]})" >&2
      exit 2
      ;;
  esac
done

echo
echo "== bfp-agent sizes (profile $PROFILE, stripped)"
printf '%-34s %10s %8s  %s\n' target bytes MiB kind
for t in "${TARGETS[@]}"; do
  bin="$TARGET_DIR/$t/$PROFILE/bfp-agent"
  bytes=$(stat -c %s "$bin")
  kind=$(file -b "$bin" | sed -E 's/, BuildID\[[^]]*\]=[0-9a-f]*//; s/ version 1 \(SYSV\),//')
  printf '%-34s %10s %8s  %s\n' "$t" "$bytes" "$(awk -v b="$bytes" 'BEGIN{printf "%.2f", b/1048576}')" "$kind"
done
