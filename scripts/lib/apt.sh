# shellcheck shell=bash
# Sourced by the installers (scripts/setup/*.sh, scripts/build-arm.sh, the
# benches): Debian package installs that survive this image's flaky mirror,
# where the shared data is, and the benches' input built from it.
#
# apt_install [--with-recommends] PKG...: updates the index once, installs
# (without recommended packages unless asked), and retries: the mirror
# sometimes fails once ("cannot access archive") and other jobs may hold the
# dpkg lock (waited for, up to 10 minutes).
apt_install() {
  local sudo="" i recommends="--no-install-recommends"
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ "${1:-}" = "--with-recommends" ]; then
    recommends="--install-recommends"
    shift
  fi
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq || true
  for i in 1 2 3; do
    if DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$recommends" "$@"; then
      return 0
    fi
    echo "apt-get install $* failed (try $i), updating the index and retrying" >&2
    $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq || true
    sleep 3
  done
  return 1
}

# shared_data: the folder of the shared real logs and seed data (env
# BFP_SHARED_DATA, else shared/data beside the repository), or fails.
shared_data() {
  local d
  for d in "${BFP_SHARED_DATA:-}" ../shared/data ../../shared/data; do
    if [ -n "$d" ] && [ -d "$d/real" ]; then
      echo "$d"
      return 0
    fi
  done
  echo "shared data not found: set BFP_SHARED_DATA" >&2
  return 1
}

# real_log_input DATA LINES DIR: DIR/input.log, the real sshd-heavy logs
# (exposed RHEL, elastic, Loghub OpenSSH) repeated to LINES lines, and
# DIR/part.* its ten parts, for the agent benches to append in bursts.
real_log_input() {
  local data=$1 lines=$2 dir=$3
  cat "$data/real/exposed-rhel/secure" "$data/real/elastic/auth.log" "$data/real/loghub/OpenSSH_2k.log" > "$dir/base.log"
  : > "$dir/big.log"
  while [ "$(wc -l < "$dir/big.log")" -lt "$lines" ]; do cat "$dir/base.log" >> "$dir/big.log"; done
  head -n "$lines" "$dir/big.log" > "$dir/input.log"
  rm "$dir/big.log"
  split -n l/10 "$dir/input.log" "$dir/part."
}
