#!/usr/bin/env bash
# `make install` into a temporary prefix, checked: the binary runs, bash accepts the completion
# script, man renders the page. Run by `make test` after `swift test` (a build inside swift
# test would wait for the build folder's lock that swift test holds).
set -euo pipefail
prefix=$(mktemp -d /tmp/labctl-install.XXXXXX)
trap 'rm -rf -- "$prefix"' EXIT
make -s -o deps install PREFIX="$prefix" >"$prefix/make.log" 2>&1 || { cat "$prefix/make.log" >&2; echo "make install failed" >&2; exit 1; }
fail() { echo "make install: $*" >&2; exit 1; }
"$prefix/bin/labctl" --help | grep -q 'USAGE: labctl <subcommand>' || fail "the installed labctl does not run"
"$prefix/bin/labctl" help rollback | grep -q 'playbooks/rollback.yml' || fail "labctl help rollback does not show its help"
bash -n "$prefix/share/bash-completion/completions/labctl" || fail "bash refuses the completion script"
[ -s "$prefix/share/zsh/site-functions/_labctl" ] || fail "no zsh completions"
[ -s "$prefix/share/fish/vendor_completions.d/labctl.fish" ] || fail "no fish completions"
page=$(MANWIDTH=80 man -l -P cat "$prefix/share/man/man1/labctl.1" 2>/dev/null) || fail "man cannot render the page"
grep -q 'keys' <<<"$page" || fail "the man page does not list the keys verb"
echo "make install: labctl, its man page and bash, zsh and fish completions install and work"
