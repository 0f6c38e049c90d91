#!/usr/bin/env bash
# What the response tests (tests/respond_firewall.rs) need, installed only if
# missing: nftables (`nft`, the default firewall the agent drives), iptables
# and ipset (its fallback where nft is missing), iproute2 (`ip netns`, veth)
# and iputils-ping (the packets that must be dropped). The tests run them in
# network namespaces they create; nothing here touches the host's firewall.
set -euo pipefail
. "$(dirname "$0")/../lib/apt.sh"

need=()
command -v nft >/dev/null || need+=(nftables)
command -v iptables >/dev/null || need+=(iptables)
command -v ipset >/dev/null || need+=(ipset)
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
if [ ${#need[@]} -gt 0 ]; then
  echo "respond setup: installing ${need[*]}"
  apt_install "${need[@]}"
fi
echo "respond setup: ok ($(nft --version), $(iptables --version), $(ipset --version | head -n1))"
