import Foundation

/// The shared root filesystem every host's overlay sits on: Debian bookworm with systemd and
/// sshd, and the packages the playbooks install waiting in its apt cache.
struct BaseImage: Sendable {
    /// Bump when the recipe below changes, so existing caches are rebuilt.
    static let recipeVersion = "bookworm-2"

    var cacheDirectory: String
    /// One folder per recipe: hosts of a lab still running on an older recipe keep their lower
    /// layer while a newer labctl builds its own beside it.
    var directory: String { cacheDirectory + "/base-" + Self.recipeVersion }
    private var stampPath: String { directory + "/.labctl-base" }

    var isReady: Bool {
        guard let stamp = try? String(contentsOfFile: stampPath, encoding: .utf8) else { return false }
        return stamp.trimmingCharacters(in: .whitespacesAndNewlines) == Self.recipeVersion
    }

    /// Builds the base unless a complete one of this recipe is cached (or `rebuild` is set).
    func ensure(rebuild: Bool, progress: @escaping @Sendable (LabProgress) -> Void) async throws(LabError) {
        if isReady && !rebuild { return }
        // Also when the cached base is of an older recipe: it is replaced the same way.
        if FileManager.default.fileExists(atPath: directory), let user = overlayUsingBase() {
            throw .baseInUse(base: directory, mount: user)
        }
        let mirrors = DebianMirrors.fromMachine()
        progress(
            LabProgress(
                .phase,
                "building the base root filesystem in \(directory) (first time only: 1 to 4 minutes)"))
        let started = ContinuousClock.now
        let result = try await Command.stream(
            "sh", ["-c", "exec 2>&1\n" + Self.script],
            extraEnvironment: [
                "LABCTL_BASE": directory, "LABCTL_MIRROR": mirrors.main,
                "LABCTL_SECURITY_MIRROR": mirrors.security ?? "", "LABCTL_RECIPE": Self.recipeVersion,
                "LABCTL_REBUILD": rebuild ? "1" : "0",
            ]
        ) { line in
            let text = line.hasPrefix("==> ") ? String(line.dropFirst(4)) : line.trimmingCharacters(in: .whitespaces)
            guard !text.isEmpty else { return }
            progress(LabProgress(line.hasPrefix("==> ") ? .phase : .detail, "base: " + text))
        }
        guard result.status == 0, isReady else {
            throw .baseBuildFailed(output: result.tail.joined(separator: "\n"))
        }
        let seconds = (ContinuousClock.now - started).components.seconds
        progress(LabProgress(.detail, "base: built in \(seconds) s"))
        removeOlderBases(progress: progress)
    }

    /// Bases of other recipes that no running host sits on: about 650 MB each, never used again.
    /// One a host still uses stays (its overlay would lose its files); the next build takes it.
    private func removeOlderBases(progress: @escaping @Sendable (LabProgress) -> Void) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: cacheDirectory)) ?? []
        let mounts = Machine.readKernelFile("/proc/self/mountinfo") ?? ""
        for name in names where name.hasPrefix("base-") && !name.contains(".partial.") && !name.contains(".old.")
            && cacheDirectory + "/" + name != directory
        {
            let path = cacheDirectory + "/" + name
            // Only a finished base (its stamp written last): never a build under way.
            guard FileManager.default.fileExists(atPath: path + "/.labctl-base"), !mounts.contains("lowerdir=\(path)") else { continue }
            if (try? FileManager.default.removeItem(atPath: path)) != nil {
                progress(LabProgress(.detail, "base: removed the base of an older labctl (\(name))"))
            }
        }
    }

    /// An overlay mount that has the base as its lower layer (a running host of any lab):
    /// replacing the base under it would corrupt that host's view of its files.
    func overlayUsingBase() -> String? {
        guard let text = Machine.readKernelFile("/proc/self/mountinfo") else { return nil }
        for line in text.split(separator: "\n") where line.contains("lowerdir=\(directory),") || line.hasSuffix("lowerdir=\(directory)") {
            return line.split(separator: " ").dropFirst(4).first.map(String.init) ?? "an overlay"
        }
        return nil
    }

    /// The build, as one shell script: it is a straight sequence of debootstrap, chroot and
    /// file edits, which reads best as the commands themselves. Its lines are the progress.
    static let script = #"""
# Builds the lab's base root filesystem. Inputs (environment): LABCTL_BASE (final directory),
# LABCTL_MIRROR, LABCTL_SECURITY_MIRROR (may be empty), LABCTL_RECIPE (version stamp).
# Builds in a temporary directory beside the final one and renames it only when complete,
# so an interrupted build never leaves a half base behind.
set -eu
final="$LABCTL_BASE"
tmp="$final.partial.$$"
cleanup() { umount "$tmp/proc" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
step() { echo "==> $*"; }
mkdir -p "$(dirname "$final")"
# One build at a time: a second labctl waits, then finds the base ready.
exec 9>"$final.lock"
flock 9
if [ "${LABCTL_REBUILD:-0}" != 1 ] && [ "$(cat "$final/.labctl-base" 2>/dev/null)" = "$LABCTL_RECIPE" ]; then
  echo "==> base ready (built by another labctl meanwhile)"
  trap - EXIT
  exit 0
fi
rm -rf "$final".partial.* "$final".old.*

step "debootstrap bookworm (minbase) from $LABCTL_MIRROR"
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,openssh-server,iproute2,netbase,curl,ca-certificates,procps,sudo,git,less,nftables \
  bookworm "$tmp" "$LABCTL_MIRROR" 2>&1 \
  | grep --line-buffered -E '^(E:|W:|I: (Retrieving Release|Resolving dependencies of required|Checking component|Installing core|Unpacking the base|Configuring the base|Base system installed))' || true
test -x "$tmp/usr/bin/apt-get" || { echo "debootstrap failed (see above)" >&2; exit 1; }

step "configuring apt and dpkg"
{
  echo "deb $LABCTL_MIRROR bookworm main"
  echo "deb $LABCTL_MIRROR bookworm-updates main"
  if [ -n "${LABCTL_SECURITY_MIRROR:-}" ]; then echo "deb $LABCTL_SECURITY_MIRROR bookworm-security main"; fi
} > "$tmp/etc/apt/sources.list"
echo force-unsafe-io > "$tmp/etc/dpkg/dpkg.cfg.d/labctl-unsafe-io"
# Hosts install from the pre-downloaded packages: keep them after installing.
echo 'APT::Keep-Downloaded-Packages "true";' > "$tmp/etc/apt/apt.conf.d/90labctl-keep-debs"
rm -f "$tmp/etc/apt/apt.conf.d/docker-clean"
cp /etc/resolv.conf "$tmp/etc/resolv.conf"
mount -t proc proc "$tmp/proc"

step "apt-get update inside the base"
chroot "$tmp" apt-get -q update 2>&1 | grep -E '^(Get|Err|W:|E:)' || true
step "upgrading with security fixes"
DEBIAN_FRONTEND=noninteractive chroot "$tmp" apt-get -qy -o Dpkg::Use-Pty=0 dist-upgrade 2>&1 | grep -E '^(Setting up|E:)' || true
chroot "$tmp" apt-get clean
step "downloading nginx, nodejs, npm and git into the hosts' apt cache"
# With recommends (what a plain `apt-get install nginx nodejs npm git` wants: npm recommends a
# compiler toolchain, 620 packages); --no-install-recommends needs a subset of these.
chroot "$tmp" apt-get -qy --download-only install nginx nodejs npm git 2>&1 | grep -E '^(Need to get|E:)' || true
test -n "$(ls "$tmp"/var/cache/apt/archives/nginx_*.deb 2>/dev/null)" || { echo "E: downloading the packages failed" >&2; exit 1; }
count=$(ls "$tmp/var/cache/apt/archives/" | grep -c '\.deb$' || true)
echo "    $count packages cached"

step "removing per-host identity (hostname, machine-id, SSH host keys)"
rm -f "$tmp/etc/hostname" "$tmp/var/lib/dbus/machine-id" "$tmp"/etc/ssh/ssh_host_*
: > "$tmp/etc/machine-id"
rm -f "$tmp/etc/resolv.conf"

step "disabling networkd, apt timers and consoles the lab does not use"
for unit in systemd-networkd.service systemd-networkd.socket systemd-networkd-wait-online.service \
  apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service \
  e2scrub_all.timer e2scrub_reap.service fstrim.timer dpkg-db-backup.timer \
  systemd-resolved.service systemd-timesyncd.service getty@tty1.service; do
  ln -sf /dev/null "$tmp/etc/systemd/system/$unit"
done
mkdir -p "$tmp/etc/ssh/sshd_config.d"
cat > "$tmp/etc/ssh/sshd_config.d/labctl.conf" <<'CONF'
# Written by labctl: the host key is an ed25519 key made by labctl on the machine.
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UseDNS no
CONF
umount "$tmp/proc"
echo "$LABCTL_RECIPE" > "$tmp/.labctl-base"

step "publishing the base"
if [ -e "$final" ]; then mv "$final" "$final.old.$$"; fi
mv "$tmp" "$final"
rm -rf "$final.old.$$"
trap - EXIT
size=$(du -sm "$final" | cut -f1)
echo "==> base ready: $final ($size MB)"
"""#
}

/// Where to fetch Debian packages: the machine's own apt sources when they name a Debian
/// mirror (on networks that reach only a local mirror, that is the one that works).
struct DebianMirrors: Sendable, Hashable {
    var main: String
    var security: String?

    static let fallback = DebianMirrors(
        main: "http://deb.debian.org/debian", security: "http://deb.debian.org/debian-security")

    static func fromMachine() -> DebianMirrors {
        var texts: [String] = []
        if let text = try? String(contentsOfFile: "/etc/apt/sources.list", encoding: .utf8) { texts.append(text) }
        let dir = "/etc/apt/sources.list.d"
        for file in ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
        where file.hasSuffix(".list") || file.hasSuffix(".sources") {
            if let text = try? String(contentsOfFile: dir + "/" + file, encoding: .utf8) { texts.append(text) }
        }
        return parse(texts)
    }

    /// Reads both one-line (`deb URL suite ...`) and deb822 (`URIs:` / `Suites:`) sources and
    /// picks the first entry for bookworm and for bookworm-security.
    static func parse(_ texts: [String]) -> DebianMirrors {
        var entries: [(uri: String, suites: [String])] = []
        for text in texts {
            var uris: [String] = []
            var suites: [String] = []
            func flush() {
                for uri in uris { entries.append((uri, suites)) }
                uris = []
                suites = []
            }
            for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.isEmpty { flush(); continue }
                if line.hasPrefix("#") { continue }
                let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                if words.first == "deb" {
                    let rest = words.dropFirst().filter { !$0.hasPrefix("[") && !$0.hasSuffix("]") && !$0.contains("=") }
                    if rest.count >= 2 { entries.append((rest[rest.startIndex], [rest[rest.startIndex + 1]])) }
                } else if words.first?.lowercased() == "uris:" {
                    uris = Array(words.dropFirst())
                } else if words.first?.lowercased() == "suites:" {
                    suites = Array(words.dropFirst())
                }
            }
            flush()
        }
        func trimmed(_ uri: String) -> String { uri.hasSuffix("/") ? String(uri.dropLast()) : uri }
        let main = entries.first { $0.suites.contains("bookworm") }.map { trimmed($0.uri) }
        let security = entries.first { $0.suites.contains("bookworm-security") }.map { trimmed($0.uri) }
        guard let main else { return fallback }
        return DebianMirrors(main: main, security: security ?? fallback.security)
    }
}
