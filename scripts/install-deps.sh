#!/usr/bin/env bash
# Installs the Debian packages labctl needs to build, test and run its local lab.
# Idempotent: packages already present are left alone and apt is not even asked.
set -euo pipefail

packages=(
  libssh2-1-dev pkg-config        # the SSH executor (libssh2 1.10) and its build flags
  openssh-client openssh-server   # ssh-keygen for keys; sshd for the SSH tests
  git curl diffutils python3      # the engine's tests: git steps, wait_for URLs, diffs
  sudo                            # become tests
  debootstrap systemd-container   # labctl lab: the base image and systemd-nspawn
  iproute2 nftables util-linux    # labctl lab: namespaces, veths, bridge, NAT (nft), setsid
  nginx-light nodejs              # verify tests: a real nginx and the stand-in app on loopback
  python3-venv                    # bench: ansible and pyinfra in a private virtualenv
  man-db                          # make install: the man page, checked with man -l
  chromium                        # verify's HTML report: rendered headless, screenshot and DOM checked
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "labctl needs these Debian packages: ${missing[*]}" >&2
  echo "run: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d: installing nginx or sshd must not start them on this machine.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
