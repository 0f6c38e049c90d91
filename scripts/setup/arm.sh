#!/usr/bin/env bash
# What the ARM end-to-end test (tests/arm_qemu.rs) needs, installed only if missing:
# the aarch64 musl Rust target, Debian's aarch64 cross gcc as its linker, and
# qemu-user-static to run the result. Idempotent: a second run installs nothing.
# All four targets are built by scripts/build-arm.sh, not here (CI time).
set -euo pipefail

. "$(dirname "$0")/../lib/apt.sh"

need=()
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
if [ ${#need[@]} -gt 0 ]; then
  echo "arm setup: installing ${need[*]}"
  apt_install "${need[@]}"
fi

if ! rustup target list --installed | grep -qx aarch64-unknown-linux-musl; then
  echo "arm setup: rustup target add aarch64-unknown-linux-musl"
  rustup target add aarch64-unknown-linux-musl
fi
echo "arm setup: ok (aarch64-unknown-linux-musl, $(command -v aarch64-linux-gnu-gcc), $(command -v qemu-aarch64-static))"
