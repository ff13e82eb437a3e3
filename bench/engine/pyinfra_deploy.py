# The engine benchmark's workload for pyinfra: the same 10 steps as labctl.yml.
from io import StringIO

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.operations import apt, files, server, systemd

ROOT = "/opt/bench/pyinfra"

apt.packages(name="curl installed", packages=["curl"])

files.directory(name="bench directory", path=ROOT, mode="755")

for name in ("one", "two", "three"):
    files.put(
        name=f"{name} file",
        src=StringIO(f"# written by the engine benchmark\nname = {name}\n"),
        dest=f"{ROOT}/{name}.conf",
        mode="644",
    )

files.line(
    name="a line in /etc/environment",
    path="/etc/environment",
    line="^BENCH_PYINFRA=.*$",
    replace="BENCH_PYINFRA=1",
)

files.block(
    name="a block in /etc/motd",
    path="/etc/motd",
    marker="# {mark} BENCH pyinfra",
    content="This host is managed by the engine benchmark (pyinfra).",
)

systemd.service(name="sshd enabled and running", service="ssh", running=True, enabled=True)

# pyinfra has no `creates` argument: its way is a fact read while the deploy is prepared.
if not host.get_fact(File, path=f"{ROOT}/stamp"):
    server.shell(name="a command guarded by creates", commands=[f"date > {ROOT}/stamp"])

files.directory(name="data directory", path=f"{ROOT}/data", mode="750")
