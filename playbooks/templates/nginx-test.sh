#!/bin/sh
# Written by labctl (playbooks/templates/nginx-test.sh).
# Usage: nginx-test STAGED LIVE
# Runs `nginx -t` on the whole configuration as it would be with the file STAGED in place of
# LIVE, without putting STAGED at LIVE: in a private mount namespace a copy of LIVE's folder,
# holding STAGED under LIVE's name, is mounted over the real folder, and nginx tests there.
# Nothing outside that namespace ever sees the staged file, so an interrupted deploy cannot
# leave a config that was never tested in nginx's folder. Where mount namespaces are not
# allowed (some containers), the staged file is put in place for the test and the old one
# put back right after; nginx is not reloaded in between.
set -u
staged=$1
live=$2
folder=${live%/*}
name=${live##*/}

if unshare -m true 2>/dev/null; then
    copy=$(mktemp -d) || exit 1
    trap 'rm -rf "$copy"' EXIT
    # nginx includes `folder/*`, which skips dot files: labctl's own staging files stay out.
    cp -a "$folder/." "$copy/" && cp "$staged" "$copy/$name" || exit 1
    unshare -m --propagation private sh -c 'mount --bind "$1" "$2" && exec nginx -t -q' nginx-test "$copy" "$folder"
    exit
fi

saved=$(mktemp) || exit 1
if [ -e "$live" ]; then cp -p "$live" "$saved"; had=1; else had=0; fi
cp "$staged" "$live"
nginx -t -q
status=$?
if [ "$had" = 1 ]; then cp -p "$saved" "$live"; else rm -f "$live"; fi
rm -f "$saved"
exit "$status"
