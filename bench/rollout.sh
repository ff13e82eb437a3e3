#!/usr/bin/env bash
# Benchmark of deploy.yml's rolling update (run as root): on a local lab of its own (proxy and
# three app servers, the stand-in app), a redeploy of a changed app with 2 and then 3 app
# servers behind nginx. Prints, from the run's --json: the whole rollout, each server's turn,
# and within a turn the time out of rotation (nginx-upstream out: reload and wait for the old
# workers), the restart with its health check (the handlers) and the way back in. The rollout
# should cost the sum of the turns and nothing more: no fixed sleeps, no fail_timeout waits.
#
# Usage: sudo bench/rollout.sh [RUNS]   (LABCTL=path/to/labctl to skip building)
set -euo pipefail
runs=${1:-3}
cd "$(dirname "$0")/.."
if [ -z "${LABCTL:-}" ]; then
  swift build -c release --product labctl >/dev/null
  LABCTL="$(swift build -c release --product labctl --show-bin-path)/labctl"
fi
[ "$(id -u)" = 0 ] || { echo "bench/rollout.sh needs root (sudo)" >&2; exit 1; }

work=$(mktemp -d /tmp/labctl-rollout-bench.XXXXXX)
cp -r app/wayshub-standin "$work/app"
inventory() {  # $1: how many app servers
  local roles=()
  for i in 1 2 3; do if [ "$i" -le "$1" ]; then roles+=('["app"]'); else roles+=('["spare"]'); fi; done
  cat >"$work/inventory.json" <<JSON
{
  "name": "rollbench", "domain": "wayshub.test",
  "defaults": { "key": "id_ed25519" }, "ssh": { "known_hosts": "known_hosts" },
  "lab": { "subnet": "198.18.79.0/24", "bridge": "labrb0" },
  "hosts": [
    { "name": "proxy", "address": "198.18.79.10", "roles": ["proxy"] },
    { "name": "app1", "address": "198.18.79.11", "roles": ${roles[0]} },
    { "name": "app2", "address": "198.18.79.12", "roles": ${roles[1]} },
    { "name": "app3", "address": "198.18.79.13", "roles": ${roles[2]} }
  ],
  "app": { "source": { "path": "$work/app" }, "node": { "install": "apt" } }
}
JSON
}
labctl() { "$LABCTL" "$@" -i "$work/inventory.json" --playbooks "$PWD/playbooks"; }
cleanup() { "$LABCTL" lab down -i "$work/inventory.json" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

inventory 3
echo "setting up: a lab of 4 hosts, provisioned, the app on 3 servers (not timed)"
"$LABCTL" lab up -i "$work/inventory.json" >/dev/null
labctl provision >/dev/null
labctl deploy >/dev/null

revision=0
for servers in 2 3; do
  inventory "$servers"
  labctl deploy >/dev/null   # the upstream for this many servers, not timed
  for run in $(seq 1 "$runs"); do
    revision=$((revision + 1))
    echo "// bench revision $revision" >>"$work/app/server.js"
    labctl deploy --json "$work/run.json" >/dev/null
    python3 - "$work/run.json" "$servers" "$run" <<'PY'
import json, sys
report, servers, run = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
turns = []
for host in report["hosts"]:
    for turn in host.get("turns", []):
        steps = host["steps"]
        out = sum(s["seconds"] for s in steps if s["type"] == "command" and "out of rotation" in s["name"])
        back = sum(s["seconds"] for s in steps if s["type"] == "command" and "back in rotation" in s["name"])
        restart = sum(s["seconds"] for s in steps if s["handler"])
        turns.append((turn["startSecond"], turn["endSecond"], host["host"], turn["takenOut"], out, restart, back))
turns.sort()
if not turns:
    print(f"{servers} servers, run {run}: no rolling turns in the report"); sys.exit(0)
total = turns[-1][1] - turns[0][0]
print(f"{servers} servers, run {run}: rollout {total:.2f} s = " + " + ".join(f"{e - s:.2f}" for s, e, *_ in turns)
      + f" (sum of turns {sum(e - s for s, e, *_ in turns):.2f} s), whole deploy {report['seconds']:.2f} s")
for s, e, host, out, o, r, b in turns:
    print(f"    {host}: turn {e - s:5.2f} s  out of rotation {o:4.2f} s  restart and health check {r:4.2f} s  back in {b:4.2f} s"
          + ("" if out else "  (not taken out)"))
PY
  done
done
