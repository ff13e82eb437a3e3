# pyinfra's inventory for the engine benchmark, made from the same inventory.json that labctl
# uses. BENCH_INVENTORY: that file (its key and known_hosts paths are relative to it);
# BENCH_HOSTS: how many of its hosts, from the first.
import json
import os

_path = os.environ["BENCH_INVENTORY"]
_base = os.path.dirname(os.path.abspath(_path))
with open(_path) as f:
    _inventory = json.load(f)
_count = int(os.environ.get("BENCH_HOSTS", len(_inventory["hosts"])))

bench = [
    (
        h["name"],
        {
            "ssh_hostname": h["address"],
            "ssh_user": "root",
            "ssh_key": os.path.join(_base, _inventory["defaults"]["key"]),
            "ssh_known_hosts_file": os.path.join(_base, _inventory["ssh"]["known_hosts"]),
            # Host keys checked like labctl's strict mode and OpenSSH's StrictHostKeyChecking=yes.
            "ssh_strict_host_key_checking": "yes",
        },
    )
    for h in _inventory["hosts"][:_count]
]
