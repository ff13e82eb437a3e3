#!/usr/bin/env bash
# Benchmark of the local lab (run as root):
#  1. time from nothing to a 3-host lab reachable over SSH, with the base already cached
#     (`labctl lab up` then one `ssh HOST true` per host, strict host key checking);
#  2. memory per idle host (from each host's memory cgroup, 15 s after boot).
# Targets: <= 5 s and <= 25 MiB. The lab uses its own subnet and bridge, and is taken down
# at the end whatever happens.
#
# Usage: sudo bench/lab-up.sh [RUNS]   (LABCTL=path/to/labctl to skip building)
set -euo pipefail
runs=${1:-5}
cd "$(dirname "$0")/.."
if [ -z "${LABCTL:-}" ]; then
  swift build --product labctl >/dev/null
  LABCTL="$(swift build --product labctl --show-bin-path)/labctl"
fi
[ "$(id -u)" = 0 ] || { echo "bench/lab-up.sh needs root (sudo)" >&2; exit 1; }

work=$(mktemp -d /tmp/labctl-bench.XXXXXX)
cat >"$work/inventory.json" <<'JSON'
{
  "name": "labbench",
  "defaults": { "user": "root", "key": "id_ed25519" },
  "ssh": { "known_hosts": "known_hosts" },
  "lab": { "subnet": "198.18.78.0/24", "bridge": "labb0" },
  "hosts": [
    { "name": "proxy", "address": "198.18.78.10", "roles": ["proxy"] },
    { "name": "app1", "address": "198.18.78.11", "roles": ["app"], "user": "ubuntu", "become": true },
    { "name": "app2", "address": "198.18.78.12", "roles": ["app"] }
  ]
}
JSON
lab() { local verb=$1; shift; "$LABCTL" lab "$verb" --inventory "$work/inventory.json" "$@"; }
cleanup() { lab down >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

echo "warming up: building the base if it is not cached yet (not timed)"
lab up >/dev/null
lab down >/dev/null

now() { date +%s.%N; }
times=()
for run in $(seq 1 "$runs"); do
  start=$(now)
  lab up >/dev/null
  for host in proxy app1 app2; do
    lab ssh "$host" -- true
  done
  end=$(now)
  t=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", b - a}')
  times+=("$t")
  printf 'run %d: %.2f s from nothing to 3 hosts answering over SSH\n' "$run" "$t"
  if [ "$run" -lt "$runs" ]; then lab down >/dev/null; fi
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')

sleep 15
echo
lab status
memory=$(lab status | awk 'NR>1 && $2=="running" {print $6}')
mean=$(echo "$memory" | awk '{s+=$1; n++} END {printf "%.1f", s/n}')
max=$(echo "$memory" | sort -n | tail -1)
echo
printf 'lab up (3 hosts, cached base) to SSH: median %.2f s over %d runs (target <= 5 s)\n' "$median" "$runs"
printf 'memory per idle host: mean %s MiB, max %s MiB (target <= 25 MiB)\n' "$mean" "$max"
