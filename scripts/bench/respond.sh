#!/usr/bin/env bash
# Cost of one block as the agent sets it (docs/benchmarks.md, "Firewall response"): in a
# network namespace of its own (never the host's firewall), creates the agent's nftables
# table and ipset sets, then times N blocks of distinct addresses through each tool with
# exactly the commands the agent runs (one `nft -f -` transaction add/delete/add; one
# `ipset add ... -exist`) one by one and all in one transaction (as the agent batches
# what one poll proves), and reads back how many elements the sets hold.
# Usage: scripts/bench/respond.sh [N]   (default 500; needs root and scripts/setup/respond.sh)
set -euo pipefail
n="${1:-500}"
if [ -z "${BFP_BENCH_IN_NS:-}" ]; then
  # Once into the namespace; the timed commands then run as the agent runs them
  # (without `ip netns exec` around each).
  ns="bfp-bench-$$"
  ip netns add "$ns"
  trap 'ip netns del "$ns"' EXIT
  BFP_BENCH_IN_NS=1 ip netns exec "$ns" bash "$0" "$n"
  exit
fi
in_ns() { "$@"; }

in_ns nft -f - <<'NFT'
add table inet bfp
add set inet bfp blocked4 { type ipv4_addr; flags timeout; }
add set inet bfp blocked6 { type ipv6_addr; flags timeout; }
add chain inet bfp input { type filter hook input priority -10; policy accept; }
add rule inet bfp input ip saddr @blocked4 drop
add rule inet bfp input ip6 saddr @blocked6 drop
NFT
in_ns ipset create bfp-blocked4 hash:ip family inet timeout 0 maxelem 65536 -exist

addr() { echo "10.$(( $1 / 65536 % 256 )).$(( $1 / 256 % 256 )).$(( $1 % 256 ))"; }

start=$(date +%s.%N)
for i in $(seq 1 "$n"); do
  a=$(addr "$i")
  printf 'add element inet bfp blocked4 { %s timeout 3600s }\ndelete element inet bfp blocked4 { %s }\nadd element inet bfp blocked4 { %s timeout 3600s }\n' "$a" "$a" "$a" \
    | in_ns nft -f -
done
end=$(date +%s.%N)
held=$(in_ns nft -j list set inet bfp blocked4 | grep -o '"val"' | wc -l)
echo "nftables: $n blocks in $(echo "$end - $start" | bc) s, $(echo "($end - $start) * 1000 / $n" | bc -l | cut -c1-5) ms each; set holds $held"

start=$(date +%s.%N)
for i in $(seq 1 "$n"); do
  in_ns ipset add bfp-blocked4 "$(addr "$i")" timeout 3600 -exist
done
end=$(date +%s.%N)
held=$(in_ns ipset save bfp-blocked4 | grep -c '^add')
echo "ipset:    $n blocks in $(echo "$end - $start" | bc) s, $(echo "($end - $start) * 1000 / $n" | bc -l | cut -c1-5) ms each; set holds $held"

# The agent puts every address one poll proves hostile in one transaction: N at once.
script=""
for i in $(seq 1 "$n"); do
  a=$(addr $(( i + 100000 )))
  script+="add element inet bfp blocked4 { $a timeout 3600s }"$'\n'"delete element inet bfp blocked4 { $a }"$'\n'"add element inet bfp blocked4 { $a timeout 3600s }"$'\n'
done
start=$(date +%s.%N)
printf '%s' "$script" | in_ns nft -f -
end=$(date +%s.%N)
echo "nftables: $n blocks in one transaction: $(echo "($end - $start) * 1000" | bc -l | cut -c1-5) ms"
script=""
for i in $(seq 1 "$n"); do script+="add bfp-blocked4 $(addr $(( i + 100000 ))) timeout 3600"$'\n'; done
start=$(date +%s.%N)
printf '%s' "$script" | in_ns ipset restore -exist
end=$(date +%s.%N)
echo "ipset:    $n blocks in one restore: $(echo "($end - $start) * 1000" | bc -l | cut -c1-5) ms"
