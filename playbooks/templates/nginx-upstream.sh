#!/bin/sh
# Written by labctl (playbooks/templates/nginx-upstream.sh), used by deploy.yml's rolling group.
# Usage: nginx-upstream out|in ADDRESS:PORT
#   out  marks that server `down` in the lab's upstream, reloads nginx, then waits until the
#        workers that were running before the reload are gone: they are the only ones that
#        may still be sending it requests, so once they are, nothing is in flight to it.
#   in   takes the mark away again and reloads nginx.
# The edited config goes in with one rename and is tested with `nginx -t` before any reload;
# a config nginx refuses is put back as it was. Runs that edit at the same time (two servers
# rolling at once) take turns on a lock.
set -eu
conf={{nginx.conf_path}}
folder={{nginx.directory_path}}
action=${1:-}
server=${2:-}
case "$action" in out|in) ;; *) echo "usage: nginx-upstream out|in ADDRESS:PORT" >&2; exit 2;; esac
case "$server" in ""|*[!]0-9A-Za-z.:_[-]*) echo "nginx-upstream: '$server' is not ADDRESS:PORT" >&2; exit 2;; esac
[ -f "$conf" ] || { echo "nginx-upstream: $conf does not exist" >&2; exit 1; }

mkdir -p /var/lib/labctl
exec 9>/var/lib/labctl/nginx-upstream.lock
flock 9

# nginx includes `folder/*`, which skips dot files: the staged copy is never read by nginx.
staged=$(mktemp -- "$folder/.nginx-upstream.XXXXXX")
saved=$(mktemp -- "$folder/.nginx-upstream-saved.XXXXXX")
trap 'rm -f -- "$staged" "$saved"' EXIT
awk -v server="$server" -v action="$action" '
    $1 == "server" && $2 == server { found = 1
        if (action == "out" && $0 !~ / down;[ \t]*$/) sub(/;[ \t]*$/, " down;")
        if (action == "in") sub(/ down;[ \t]*$/, ";")
    }
    { print }
    END { if (!found) exit 3 }' "$conf" > "$staged" || {
    echo "nginx-upstream: $server is not a server of the upstream in $conf" >&2
    exit 1
}
if cmp -s -- "$staged" "$conf"; then
    echo "$server was already $( [ "$action" = out ] && echo out of || echo in ) rotation"
    exit 0
fi
chmod --reference="$conf" -- "$staged"
chown --reference="$conf" -- "$staged"
cp -p -- "$conf" "$saved"

# The workers serving now; after the reload they finish what they have and exit.
workers=
for dir in /proc/[0-9]*; do
    case "$(tr '\0' ' ' < "$dir/cmdline" 2>/dev/null)" in
        "nginx: worker process"*) workers="$workers ${dir#/proc/}";;
    esac
done

mv -f -- "$staged" "$conf"
if ! out=$(nginx -t -q 2>&1); then
    mv -f -- "$saved" "$conf"
    printf 'nginx-upstream: nginx refused the config with %s %s, so it was put back: %s\n' "$server" "$action" "$out" >&2
    exit 1
fi
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then systemctl reload nginx; else nginx -s reload; fi

if [ "$action" = out ]; then
    # Up to a minute for the requests in flight (nginx's own proxy timeouts are 60 s).
    for pid in $workers; do
        i=0
        while [ -e "/proc/$pid" ] && [ "$i" -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    done
fi
if [ "$action" = out ]; then echo "$server is out of rotation"; else echo "$server is back in rotation"; fi
