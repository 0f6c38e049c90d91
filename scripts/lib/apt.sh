# shellcheck shell=bash
# Sourced by the installers (scripts/setup/*.sh, scripts/build-arm.sh, the
# benches): Debian package installs that survive this image's flaky mirror.
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
