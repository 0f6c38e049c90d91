#!/usr/bin/env bash
# What the flood tests need (tests/abuse.rs, tests/forward_tls.rs): prlimit
# (util-linux) to run the collector under a 256-descriptor limit, and curl as
# an HTTPS client. Installed only if missing.
set -euo pipefail
. "$(dirname "$0")/../lib/apt.sh"

missing=()
command -v prlimit >/dev/null || missing+=(util-linux)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  echo "abuse setup: installing ${missing[*]}"
  apt_install "${missing[@]}"
fi
echo "abuse setup: ok ($(command -v prlimit), $(command -v curl))"
