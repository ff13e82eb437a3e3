#!/usr/bin/env bash
# The engine benchmark (issue 4): a no-op run (everything already in place) of the same
# 10-step workload on 3 and on 10 hosts, by labctl, ansible-playbook and pyinfra, median of
# RUNS runs each, printed with the ratios to labctl (targets: Ansible >= 20x, pyinfra >= 5x
# slower than labctl). Figures on a shared 2-core machine are noisy: nothing is asserted.
#
# Fair by construction:
#  - the same hosts: a local lab of 10 nspawn hosts that labctl itself boots from
#    bench/engine/inventory.json (subnet 198.18.99.0/24, bridge labbench0), its key and
#    known_hosts in a temporary folder; the 3-host figure is the first 3 of them;
#  - the same steps: bench/engine/labctl.yml, ansible.yml and pyinfra_deploy.py (each tool
#    under its own /opt/bench/<tool>, so none undoes another's state);
#  - host keys checked by all three against the known_hosts that `labctl lab up` writes
#    (labctl strict, OpenSSH StrictHostKeyChecking=yes, pyinfra ssh_strict_host_key_checking=yes);
#  - each tool's normal way: labctl as it is; ansible-playbook with forks=10 (covers 10 hosts),
#    pipelining on, OpenSSH's ControlMaster/ControlPersist=60s as in Ansible's defaults (later
#    runs reuse the connections), gather_facts off (no step needs facts) and the interpreter
#    given (no discovery); pyinfra with its default SSH connector (paramiko), key auth;
#  - every timed run is checked to have changed nothing on any host (the script stops loudly
#    otherwise), and the tools take turns within each round.
# Wall-clock time of the whole command, process start-up included, as a user sees it.
#
# Needs root (the lab), python3 (jq and python3-venv are installed if missing), and PyPI once: ansible-core 2.19 and
# pyinfra 3.10 go into a private virtualenv outside the checkout (BENCH_VENV, default
# /var/cache/labctl-bench/venv). The lab hosts get python3 (Ansible needs it) from Debian's
# archive through `labctl lab up --nat`. The lab is taken down at the end, also on failure.
#
# Usage: sudo bench/engine-bench.sh            (or: make bench-engine)
#   RUNS=N          timed runs per tool and host count (default 5)
#   LABCTL=path     a labctl binary to use instead of building .build/release/labctl
#   BENCH_VENV=dir  the virtualenv for ansible-core and pyinfra
set -euo pipefail
runs=${RUNS:-5}
cd "$(dirname "$0")/.."
repo=$(pwd)
bench="$repo/bench/engine"
venv=${BENCH_VENV:-/var/cache/labctl-bench/venv}
[ "$(id -u)" = 0 ] || { echo "bench/engine-bench.sh needs root (the local lab)" >&2; exit 1; }

say() { printf '%s\n' "$*" >&2; }
fail() { say "engine-bench: $*"; exit 1; }

# jq reads the inventory and labctl's --json report; python3-venv holds the other two tools.
missing=()
command -v jq >/dev/null || missing+=(jq)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ -z "${LABCTL:-}" ]; then
  say "building labctl (release)"
  swift build -c release --product labctl >/dev/null
  LABCTL="$repo/.build/release/labctl"
fi

if [ ! -x "$venv/bin/ansible-playbook" ] || [ ! -x "$venv/bin/pyinfra" ]; then
  say "installing ansible-core 2.19 and pyinfra 3.10 into $venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'ansible-core==2.19.*' 'pyinfra==3.10.*'
fi
ansible_version=$("$venv/bin/ansible-playbook" --version)
ansible_version=${ansible_version%%$'\n'*}
pyinfra_version=$("$venv/bin/pyinfra" --version 2>&1)
pyinfra_version=${pyinfra_version%%$'\n'*}

work=$(mktemp -d /tmp/labctl-engine-bench.XXXXXX)
mkdir -p "$work/state" "$work/out" "$work/cp"
inventory="$work/inventory.json"
cp "$bench/inventory.json" "$inventory"
key="$work/state/id_ed25519"
known_hosts="$work/state/known_hosts"

cleanup() {
  local status=$?
  say "taking the bench lab down"
  "$LABCTL" lab down -i "$inventory" >/dev/null 2>&1 || say "labctl lab down failed: run it again with -i $inventory"
  # Ansible's ControlPersist masters would otherwise linger for 60 s on a dead lab.
  for socket in "$work"/cp/*; do
    [ -S "$socket" ] && ssh -o ControlPath="$socket" -O exit dummy >/dev/null 2>&1 || true
  done
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A bench lab left running by a killed earlier run would keep that run's login key: remove it.
"$LABCTL" lab down -i "$inventory" >/dev/null 2>&1 || true
say "booting the bench lab (10 hosts, NAT on so they can install python3 for Ansible)"
"$LABCTL" lab up -i "$inventory" --nat >"$work/out/lab-up.log" 2>&1 || { cat "$work/out/lab-up.log" >&2; fail "labctl lab up failed"; }
"$LABCTL" exec all -i "$inventory" -- \
  'command -v python3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 >/dev/null' \
  >"$work/out/python3.log" 2>&1 || { cat "$work/out/python3.log" >&2; fail "installing python3 on the hosts failed"; }

# Ansible: an INI inventory from the same hosts, and its settings (the playbook turns facts off).
jq -r '.hosts[] | "\(.name) ansible_host=\(.address)"' "$inventory" >"$work/ansible-hosts.ini"
cat >"$work/ansible.cfg" <<EOF
[defaults]
forks = 10
remote_user = root
private_key_file = $key
host_key_checking = True
interpreter_python = /usr/bin/python3
retry_files_enabled = False
nocows = 1

[ssh_connection]
pipelining = True
ssh_args = -C -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=$known_hosts -o StrictHostKeyChecking=yes
control_path_dir = $work/cp
EOF

all_hosts=$(jq -r '[.hosts[].name] | join(",")' "$inventory")
first3=$(jq -r '[.hosts[:3][].name] | join(",")' "$inventory")

# run TOOL HOSTS OUT: one run of TOOL on the first HOSTS hosts, output (and labctl's JSON) in OUT.*
run() {
  local tool=$1 count=$2 out=$3 limit
  if [ "$count" = 10 ]; then limit=$all_hosts; else limit=$first3; fi
  case $tool in
    labctl)
      "$LABCTL" run -i "$inventory" --limit "$limit" --json "$out.json" "$bench/labctl.yml" ;;
    ansible)
      ANSIBLE_CONFIG="$work/ansible.cfg" ANSIBLE_NOCOLOR=1 \
        "$venv/bin/ansible-playbook" -i "$work/ansible-hosts.ini" --limit "$limit" "$bench/ansible.yml" ;;
    pyinfra)
      BENCH_INVENTORY="$inventory" BENCH_HOSTS=$count \
        "$venv/bin/pyinfra" -y "$bench/pyinfra_inventory.py" "$bench/pyinfra_deploy.py" ;;
  esac >"$out.log" 2>&1
}

# unchanged TOOL HOSTS OUT: fails loudly unless that run reached every host and changed nothing.
unchanged() {
  local tool=$1 count=$2 out=$3
  case $tool in
    labctl)
      jq -e --argjson n "$count" '
        (.hosts | length) == $n
        and all(.hosts[]; .status == "ok" and all(.steps[]; .status == "ok") and (.steps | length) == 10)
      ' "$out.json" >/dev/null ;;
    ansible)
      # PLAY RECAP: one line per host, ok=10 and nothing else.
      [ "$(grep -cE '^node[0-9]+ +: ok=10 +changed=0 +unreachable=0 +failed=0 +skipped=0 ' "$out.log")" = "$count" ] ;;
    pyinfra)
      # pyinfra's results table: 9 operations on every host, all "No Change" (the 10th, the
      # guarded command, is left out while the deploy is prepared once its stamp exists).
      grep -qE "^ *Grand total +$((9 * count)) +- +- +$((9 * count)) *\$" "$out.log" ;;
  esac || { cat "$out.log" >&2; fail "$tool on $count hosts: expected a run with no change on every host (output above)"; }
}

tools=(labctl ansible pyinfra)
say "converging: one run of each tool on the 10 hosts"
for tool in "${tools[@]}"; do
  run "$tool" 10 "$work/out/converge-$tool" || { cat "$work/out/converge-$tool.log" >&2; fail "$tool: the converging run failed"; }
done

declare -A times
for count in 3 10; do
  say "no-op runs on $count hosts: one untimed check, then $runs timed rounds"
  for tool in "${tools[@]}"; do
    out="$work/out/check-$tool-$count"
    run "$tool" "$count" "$out" || { cat "$out.log" >&2; fail "$tool on $count hosts failed"; }
    unchanged "$tool" "$count" "$out"
  done
  for round in $(seq 1 "$runs"); do
    for tool in "${tools[@]}"; do
      out="$work/out/$tool-$count-$round"
      start=$EPOCHREALTIME
      run "$tool" "$count" "$out" || { cat "$out.log" >&2; fail "$tool on $count hosts failed"; }
      end=$EPOCHREALTIME
      unchanged "$tool" "$count" "$out"
      times[$tool,$count]+="$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", b - a}') "
    done
  done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {printf "%.3f", NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
spread() { tr ' ' '\n' | grep . | sort -n | awk 'NR==1 {lo=$1} {hi=$1} END {printf "%.2f-%.2f", lo, hi}'; }
declare -A label=([labctl]="labctl" [ansible]="ansible-playbook" [pyinfra]="pyinfra")
declare -A target=([labctl]="" [ansible]=">= 20x" [pyinfra]=">= 5x")

echo
echo "Engine benchmark: no-op run of a 10-step playbook, median of $runs runs (wall clock, seconds)"
echo "$(uname -r), $(nproc) cores (shared: figures are noisy); labctl $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo "(no git)"), $ansible_version, $pyinfra_version"
echo "ansible: forks=10, pipelining=True, ControlPersist=60s, gather_facts=False; pyinfra: SSH connector (paramiko), key auth; host keys checked by all three"
echo
printf '%-17s %5s %9s %13s %10s %8s\n' tool hosts median min-max "vs labctl" target
for count in 3 10; do
  base=$(echo "${times[labctl,$count]}" | median)
  for tool in "${tools[@]}"; do
    m=$(echo "${times[$tool,$count]}" | median)
    ratio=$(awk -v a="$m" -v b="$base" 'BEGIN {printf "%.1fx", a / b}')
    printf '%-17s %5s %9s %13s %10s %8s\n' "${label[$tool]}" "$count" "$m" "$(echo "${times[$tool,$count]}" | spread)" "$ratio" "${target[$tool]}"
  done
done
echo
echo "labctl per host (last timed 10-host run): commands sent after connecting, connect time, host time"
jq -r '.hosts[] | "  \(.host): round trips \(.roundTrips), connect \(.connectSeconds * 1000 | floor) ms, \(.seconds * 1000 | floor) ms in all"' \
  "$work/out/labctl-10-$runs.json"
