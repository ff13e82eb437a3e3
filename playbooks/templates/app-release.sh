#!/bin/bash
# Written by labctl (playbooks/templates/app-release.sh): the app's releases on this server,
# used by deploy.yml and rollback.yml. A shell template (its name ends in .sh): labctl writes
# every value below as one quoted word.
#
# Under the app's directory:
#   staged/ or repo/   what deploy brought: an upload of app.source.path, or a git clone
#   releases/<id>/     one folder per release, never changed once made (but for the app's own
#                      caches); <id> is a digest of its files, so the same files are the same
#                      release and deploying them again reuses it, node_modules and all
#   current            link to the release the app runs (the unit's WorkingDirectory)
#   previous           link to the release that was current, and had passed its health check,
#                      when a deploy switched to the next one: what rollback puts back
#   releases/.history  the releases that went live and passed their health check, oldest first
#
# Every action has a check that succeeds when the action has nothing to do (a step's `unless`):
#   prepare       | is-prepared      the staged files made into a release
#   install       | is-installed     the staged release's node_modules: hard links to those of a
#                                    release with the same package.json and lock file, else npm install
#   switch        | is-live          the staged release made current
#   mark-good     | is-marked-good   the current release recorded as healthy
#   rollback      | is-rolled-back   previous made current again, on a server the last deploy
#                                    switched; a server it never reached keeps what it runs
#   can-roll-back                    fails, saying why, when a server has nothing to roll back to
#   prune N       | is-pruned N      releases other than current, previous, the staged one and
#                                    the N last healthy ones removed
set -euo pipefail
top={{app.directory}}
{{#app.from_git}}stage="$top/repo"{{/app.from_git}}{{#app.from_path}}stage="$top/staged"{{/app.from_path}}
registry={{app.npm_registry}}
# Everything made here belongs to the app's user, links included, as deploy's chown step leaves
# the rest: a second deploy then finds nothing to change.
owner={{app.user}}
releases=$top/releases
history=$releases/.history

fail() { echo "$*" >&2; exit 1; }

own() { chown -hR -- "$owner" "$@"; }

# What a release holds: the staged files without git's folder and node_modules (npm makes those
# on the host, per release). Names, modes, links and contents count; owners and times do not.
staged_files() {
    tar -C "$stage" --exclude=./.git --exclude=./node_modules "$@" -cf - .
}

staged_id() {
    [ -d "$stage" ] || fail "$stage does not exist: labctl deploy stages the app there first"
    staged_files --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner | sha256sum | cut -c1-12
}

# The release a link points at, as "releases/<id>", or nothing.
link_of() { readlink -- "$top/$1" 2>/dev/null || true; }

# Points the link $1 at $2 with one rename, so that it is never missing or half made.
point() {
    if [ -e "$top/$1" ] && [ ! -L "$top/$1" ]; then
        fail "$top/$1 exists and is not a link labctl made: move it away, then deploy again"
    fi
    ln -sfn -- "$2" "$top/.$1.labctl-new"
    own "$top/.$1.labctl-new"
    mv -T -- "$top/.$1.labctl-new" "$top/$1"
}

was_healthy() { [ -f "$history" ] && grep -qxF -- "$1" "$history"; }

installed() {
    [ -f "$1/node_modules/.labctl-installed" ] && (cd -- "$1" && sha256sum -c --status node_modules/.labctl-installed 2>/dev/null)
}

prepare() {
    local id new
    id=$(staged_id)
    [ -d "$releases/$id" ] && return 0
    mkdir -p -- "$releases"
    # Made beside its place and renamed into it: a copy cut short is never taken for a release.
    new=$releases/.new-$id
    rm -rf -- "$new"
    mkdir -- "$new"
    staged_files | tar -C "$new" -xf - --no-same-owner
    own "$new"
    mv -T -- "$new" "$releases/$id"
    echo "release $id made from $stage"
}

install() {
    local id release other
    id=$(staged_id)
    release=$releases/$id
    [ -d "$release" ] || fail "release $id was not made: labctl deploy makes it before installing"
    installed "$release" && return 0
    # The same package.json and lock file give the same packages: link them instead of asking
    # npm again (new files a running app writes into node_modules/.cache are its own).
    for other in "$releases"/*/; do
        other=${other%/}
        [ "$other" != "$release" ] && installed "$other" || continue
        cmp -s -- "$other/package.json" "$release/package.json" || continue
        if [ -e "$release/package-lock.json" ]; then
            cmp -s -- "$other/package-lock.json" "$release/package-lock.json" || continue
        elif [ -e "$other/package-lock.json" ]; then
            cp -p -- "$other/package-lock.json" "$release/package-lock.json"
        fi
        rm -rf -- "$release/node_modules" "$release/.node_modules.labctl-new"
        cp -al -- "$other/node_modules" "$release/.node_modules.labctl-new"
        rm -rf -- "$release/.node_modules.labctl-new/.cache"
        own "$release/.node_modules.labctl-new"
        [ ! -e "$release/package-lock.json" ] || own "$release/package-lock.json"
        mv -T -- "$release/.node_modules.labctl-new" "$release/node_modules"
        echo "release $id: node_modules linked from release ${other##*/} (the same package.json and lock file)"
        return 0
    done
    cd -- "$release"
    PATH=/opt/labctl/node-bin:$PATH npm install --no-audit --no-fund --registry "$registry"
    mkdir -p node_modules
    # Written last: an install cut short is done again.
    { sha256sum package.json package-lock.json 2>/dev/null || true; } > node_modules/.labctl-installed
    own "$release"
    echo "release $id: npm install done"
}

is_live() { [ "$(link_of current)" = "releases/$(staged_id)" ]; }

switch() {
    local id old
    id=$(staged_id)
    [ -d "$releases/$id" ] || fail "release $id was not made: labctl deploy makes it before switching"
    old=$(link_of current)
    [ "$old" = "releases/$id" ] && return 0
    # Only a release that passed its health check is worth going back to: after a broken
    # release, previous keeps pointing at the last good one.
    if [ -n "$old" ] && was_healthy "${old#releases/}"; then point previous "$old"; fi
    point current "releases/$id"
    echo "release $id is current${old:+ (it was ${old#releases/})}"
}

is_marked_good() {
    local current
    current=$(link_of current)
    [ -n "$current" ] && [ -f "$history" ] && [ "$(tail -n 1 -- "$history")" = "${current#releases/}" ]
}

mark_good() {
    local current
    current=$(link_of current)
    [ -n "$current" ] || fail "$top/current does not exist: nothing to mark"
    is_marked_good && return 0
    echo "${current#releases/}" >> "$history"
    own "$history"
}

# A server the last deploy did not switch (it stopped before this server's turn) runs the
# release it ran before that deploy already: there is nothing to roll back on it.
is_rolled_back() {
    local current previous
    current=$(link_of current)
    previous=$(link_of previous)
    [ -z "$current" ] || [ "$current" != "releases/$(staged_id)" ] || [ -z "$previous" ] || [ "$current" = "$previous" ]
}

can_roll_back() {
    local current previous
    current=$(link_of current)
    [ -n "$current" ] || fail "the app has no release here yet: labctl deploy makes the first one"
    [ "$current" = "releases/$(staged_id)" ] || return 0
    previous=$(link_of previous)
    [ -n "$previous" ] || fail "release ${current#releases/} is the first healthy release here, so there is no earlier one to roll back to"
    [ -d "$top/$previous" ] || fail "the previous release, ${previous#releases/}, is no longer on this server"
}

rollback() {
    local current previous
    is_rolled_back && return 0
    current=$(link_of current)
    previous=$(link_of previous)
    [ -d "$top/$previous" ] || fail "the previous release, ${previous#releases/}, is no longer on this server"
    point current "$previous"
    echo "release ${previous#releases/} is current again (it was ${current#releases/})"
}

# The releases to keep, one "releases/<id>" a line.
kept() {
    link_of current
    link_of previous
    [ -d "$stage" ] && echo "releases/$(staged_id)"
    if [ -f "$history" ]; then tac -- "$history" | awk -v n="$1" '!seen[$0]++ && kept++ < n { print "releases/" $0 }'; fi
}

# The folders under releases/ that prune removes, one a line.
unkept() {
    local keep entry
    keep=$(kept "$1")
    for entry in "$releases"/*/ "$releases"/.new-*/; do
        [ -d "$entry" ] || continue
        entry=${entry%/}
        grep -qxF -- "releases/${entry##*/}" <<< "$keep" || echo "$entry"
    done
}

count() {
    case "${1:-}" in ''|*[!0-9]*) fail "usage: ${0##*/} prune|is-pruned COUNT (how many healthy releases to keep)";; esac
}

case "${1:-}" in
    prepare) prepare ;;
    is-prepared) [ -d "$releases/$(staged_id)" ] ;;
    install) install ;;
    is-installed) installed "$releases/$(staged_id)" ;;
    switch) switch ;;
    is-live) is_live ;;
    mark-good) mark_good ;;
    is-marked-good) is_marked_good ;;
    rollback) rollback ;;
    is-rolled-back) is_rolled_back ;;
    can-roll-back) can_roll_back ;;
    prune)
        count "${2:-}"
        unkept "$2" | while IFS= read -r entry; do rm -rf -- "$entry"; echo "removed release ${entry##*/}"; done ;;
    is-pruned) count "${2:-}"; [ -z "$(unkept "$2")" ] ;;
    *) fail "usage: ${0##*/} prepare|install|switch|mark-good|rollback|can-roll-back|prune COUNT, or is-<action> to check" ;;
esac
