import Foundation
import SSH
import LabSpec
import Testing
@testable import LabEngine

/// Planning as data: host facts in, commands out. No host, no shell.
@Suite struct PackagePlanningTests {
    let nginx = PackageOperation(names: ["nginx", "curl"])

    @Test func installedPackagesNeedNothing() throws {
        // What the probe reports when all are installed: it asks apt nothing.
        let facts = Facts(["installed.0": "yes", "installed.1": "yes"])
        #expect(try nginx.plan(facts) == .unchanged)
    }

    @Test func theProbeAsksAptOnlyOnTheMissingPath() {
        let lines = nginx.probe.split(separator: "\n")
        // apt-cache only in the branch for a package dpkg does not report installed, and the
        // index age only after the line that ends the probe when nothing is missing.
        #expect(lines.filter { $0.contains("apt-cache") }.allSatisfy { $0.contains("*) echo installed.") && $0.contains("m=1") })
        let stop = lines.firstIndex(of: #"[ -n "$m" ] || exit 0"#)
        let age = lines.firstIndex { $0.contains("/var/lib/apt/lists/") }
        #expect(stop != nil && age != nil && stop! < age!)
        #expect(!PackageOperation(names: ["nginx"], state: .absent).probe.contains("apt-cache"))
    }

    @Test func aMissingPackageWithACandidateIsInstalledWithoutUpdate() throws {
        let facts = Facts(["installed.0": "no", "installed.1": "yes", "candidate.0": "1.22.1-9", "candidate.1": "7.88", "lists.age": "99999"])
        let plan = try nginx.plan(facts)
        let install = "DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 install --no-install-recommends nginx"
        #expect(plan.commands == ["\(install) || { \(PackageOperation.update) && \(install); }"])
        #expect(plan.summary == ["install nginx"])
    }

    @Test func noCandidateMeansUpdateFirst() throws {
        let facts = Facts(["installed.0": "no", "installed.1": "no", "candidate.0": "(none)", "candidate.1": "7.88", "lists.age": "10"])
        let plan = try nginx.plan(facts)
        #expect(plan.commands == [
            PackageOperation.update,
            "DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 install --no-install-recommends nginx curl",
        ])
        #expect(PackageOperation.update.contains("apt-get -q -y -o DPkg::Lock::Timeout=600 update 2>&1"))
    }

    @Test func anIndexNeverFetchedIsFetched() throws {
        let plan = try PackageOperation(names: ["git"]).plan(Facts(["installed.0": "no", "candidate.0": "", "lists.age": "none"]))
        #expect(plan.commands.first == PackageOperation.update)
    }

    @Test func cacheValidTimeRefreshesAStaleIndex() throws {
        let op = PackageOperation(names: ["git"], cacheValidTime: 3600)
        let stale = try op.plan(Facts(["installed.0": "no", "candidate.0": "1:2.39", "lists.age": "7200"]))
        let fresh = try op.plan(Facts(["installed.0": "no", "candidate.0": "1:2.39", "lists.age": "60"]))
        #expect(stale.commands.count == 2)
        #expect(stale.commands[0] == PackageOperation.update)
        #expect(fresh.commands.count == 1)
        #expect(fresh.commands[0].hasPrefix("DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 install"))
    }

    @Test func absentRemovesOnlyInstalledOnes() throws {
        let op = PackageOperation(names: ["nginx", "apache2"], state: .absent)
        #expect(try op.plan(Facts(["installed.0": "no", "installed.1": "no"])) == .unchanged)
        #expect(try op.plan(Facts(["installed.0": "yes", "installed.1": "no"])).commands == [
            "DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 remove nginx"
        ])
    }

    /// What Ctrl-C during `apt-get install` leaves: dpkg knows the package but it is not
    /// "install ok installed". It is not present, and dpkg finishes the cut work first.
    @Test func aHalfInstalledPackageIsFinishedThenInstalled() async throws {
        let statuses = ["install ok unpacked", "install ok half-configured", "install reinstreq half-installed", "install ok triggers-pending"]
        for status in statuses {
            let probe = PackageOperation(names: ["nginx"]).probe
                .replacingOccurrences(of: "command -v apt-get >/dev/null || { echo apt=missing; exit 0; }", with: "")
                .replacingOccurrences(of: "$(dpkg-query -W -f='${Status}' -- nginx 2>/dev/null)", with: "'\(status)'")
                .replacingOccurrences(of: "apt-cache policy", with: "true")
            let facts = Facts.parse(await shell(probe).stdout[...])
            #expect(facts["installed.0"] == "no", "\(status)")
            #expect(facts["partial.0"] == "1", "\(status)")
        }
        let installed = Facts.parse(await shell(PackageOperation(names: ["nginx"]).probe
            .replacingOccurrences(of: "command -v apt-get >/dev/null || { echo apt=missing; exit 0; }", with: "")
            .replacingOccurrences(of: "$(dpkg-query -W -f='${Status}' -- nginx 2>/dev/null)", with: "'hold ok installed'")).stdout[...])
        #expect(installed["installed.0"] == "yes")
        #expect(installed["partial.0"] == nil)

        let plan = try PackageOperation(names: ["nginx", "curl"]).plan(
            Facts(["installed.0": "no", "partial.0": "1", "installed.1": "yes", "candidate.0": "1.22", "lists.age": "10"]))
        #expect(plan.commands.first == "DEBIAN_FRONTEND=noninteractive dpkg --force-confold --configure -a")
        #expect(plan.commands.count == 2)
        #expect(plan.summary == ["finish the interrupted install of nginx", "install nginx"])
        let removal = try PackageOperation(names: ["nginx"], state: .absent).plan(Facts(["installed.0": "no", "partial.0": "1"]))
        #expect(removal.commands.last == "DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 remove nginx")
    }

    @Test func hostWithoutAptFails() {
        #expect(throws: StepFailure("the host has no apt-get; package steps need a Debian or Ubuntu host")) {
            try nginx.plan(Facts(["apt": "missing"]))
        }
    }

    @Test func oddPackageNamesAreQuoted() throws {
        let plan = try PackageOperation(names: ["nginx;reboot"]).plan(Facts(["installed.0": "no", "candidate.0": "1", "lists.age": "1"]))
        #expect(plan.commands.last?.contains(" install --no-install-recommends 'nginx;reboot' ") == true)
        #expect(plan.commands.last?.contains(" nginx;reboot") == false)
    }
}

@Suite struct FilePlanningTests {
    let content = "server { listen 80; }\n"
    var sha: String { SHA256Digest.hex(content) }

    @Test func sameContentAndAttributesNeedNothing() throws {
        let op = FileOperation(path: "/etc/x.conf", content: content, owner: "root", mode: 0o644)
        let facts = Facts(["kind": "file", "stat": "root:root:644", "sha256": sha, "parent": "dir"])
        #expect(try op.plan(facts) == .unchanged)
    }

    @Test func aNewFileIsWrittenAtomicallyWithContentOnStdin() throws {
        let op = FileOperation(path: "/etc/nginx/x.conf", content: content, mode: 0o640)
        let plan = try op.plan(Facts(["kind": "none", "parent": "dir"]))
        #expect(plan.stdin == Array(content.utf8))
        #expect(plan.commands == [
            "t=$(mktemp -- /etc/nginx/.x.conf.labctl-XXXXXX)",
            #"trap 'rm -f "$t"' EXIT"#,
            #"cat > "$t""#,
            #"chmod 0640 "$t""#,
            #"mv -f -- "$t" /etc/nginx/x.conf"#,
        ])
        #expect(!plan.script.contains("listen 80"), "content must not travel in argv")
        #expect(plan.summary == ["create /etc/nginx/x.conf"])
    }

    @Test func changedContentKeepsOldAttributesAndBacksUp() throws {
        let op = FileOperation(path: "/etc/a b.conf", content: content)
        let plan = try op.plan(Facts(["kind": "file", "stat": "www:www:600", "sha256": "0000", "parent": "dir"]))
        #expect(plan.commands == [
            "t=$(mktemp -- '/etc/.a b.conf.labctl-XXXXXX')",
            #"trap 'rm -f "$t"' EXIT"#,
            #"cat > "$t""#,
            #"chmod --reference='/etc/a b.conf' "$t""#,
            #"chown --reference='/etc/a b.conf' "$t""#,
            "mkdir -p -- /var/backups/labctl/etc",
            "cp -p -- '/etc/a b.conf' '/var/backups/labctl/etc/a b.conf'.$(date +%Y%m%dT%H%M%S)",
            #"mv -f -- "$t" '/etc/a b.conf'"#,
        ])
    }

    @Test func validateRunsOnTheStagedFileBeforeTheRename() throws {
        let op = FileOperation(path: "/etc/n.conf", content: content, validate: "nginx -t -c %s", backup: false)
        let plan = try op.plan(Facts(["kind": "none", "parent": "dir"]))
        let validate = plan.commands.firstIndex { $0.contains(#"sh -c 'nginx -t -c "$1"' labctl-validate "$t""#) }
        let rename = plan.commands.firstIndex { $0.hasPrefix("mv -f") }
        #expect(validate != nil && rename != nil && validate! < rename!)
    }

    @Test func onlyModeDiffers() throws {
        let op = FileOperation(path: "/x", content: content, mode: 0o600)
        let plan = try op.plan(Facts(["kind": "file", "stat": "root:root:644", "sha256": sha, "parent": "dir"]))
        #expect(plan.commands == ["chmod -- 0600 /x"])
        #expect(plan.stdin.isEmpty)
        #expect(plan.summary == ["mode 0644 -> 0600"])
    }

    @Test func onlyOwnerDiffers() throws {
        let op = FileOperation(path: "/x", content: content, owner: "app", group: "app")
        let plan = try op.plan(Facts(["kind": "file", "stat": "root:root:644", "sha256": sha, "parent": "dir"]))
        #expect(plan.commands == ["chown -- app:app /x"])
    }

    @Test func missingParentDirectoryFails() {
        let op = FileOperation(path: "/etc/nginx/dumbways/x.conf", content: content)
        #expect(throws: StepFailure("the directory /etc/nginx/dumbways does not exist; add a directory step before this one")) {
            try op.plan(Facts(["kind": "none", "parent": "none"]))
        }
    }

    @Test func aDirectoryInTheWayFails() {
        #expect(throws: StepFailure("/x exists and is a directory; remove it or choose another path")) {
            try FileOperation(path: "/x", content: "").plan(Facts(["kind": "dir", "parent": "dir"]))
        }
    }

    @Test func absent() throws {
        let op = FileOperation(path: "/x", content: nil, state: .absent)
        #expect(try op.plan(Facts(["kind": "none"])) == .unchanged)
        #expect(try op.plan(Facts(["kind": "file", "stat": "root:root:644"])).commands == ["rm -f -- /x"])
    }

    @Test func diffModeShowsTheChange() throws {
        let op = FileOperation(path: "/x", content: "a\nB\nc\n", options: PlanOptions(diff: true))
        let old = Data("a\nb\nc\n".utf8).base64EncodedString()
        let plan = try op.plan(Facts(["kind": "file", "stat": "root:root:644", "sha256": "1", "content.b64": old, "parent": "dir"]))
        #expect(plan.diff == "--- /x\n+++ /x\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n")
    }

    @Test func theProbeFetchesContentOnlyInDiffMode() {
        #expect(FileOperation(path: "/x", content: "").pathProbe == PathProbe("/x", checksum: true, contentLimit: 1 << 20, parent: true))
        #expect(FileOperation(path: "/x", content: "", options: PlanOptions(diff: true)).pathProbe?.content == true)
        #expect(!ProbeScript(steps: [(0, FileOperation(path: "/x", content: ""))]).script.contains("content.b64"))
        #expect(ProbeScript(steps: [(0, FileOperation(path: "/x", content: "", options: PlanOptions(diff: true)))]).script.contains("head -c 1048577"))
    }
}

@Suite struct DirectoryPlanningTests {
    @Test func existing() throws {
        let op = DirectoryOperation(path: "/srv/app", owner: "app", mode: 0o755)
        #expect(try op.plan(Facts(["kind": "dir", "stat": "app:app:755"])) == .unchanged)
        #expect(try op.plan(Facts(["kind": "dir", "stat": "root:root:700"])).commands == ["chown -- app /srv/app", "chmod -- 0755 /srv/app"])
    }

    @Test func missing() throws {
        let op = DirectoryOperation(path: "/etc/nginx/dumbways", mode: 0o755)
        #expect(try op.plan(Facts(["kind": "none"])).commands == ["mkdir -p -- /etc/nginx/dumbways", "chmod -- 0755 /etc/nginx/dumbways"])
    }

    @Test func fileInTheWay() {
        #expect(throws: StepFailure("/d exists and is not a directory; remove it or choose another path")) {
            try DirectoryOperation(path: "/d").plan(Facts(["kind": "file"]))
        }
    }

    @Test func absent() throws {
        let op = DirectoryOperation(path: "/d", state: .absent)
        #expect(try op.plan(Facts(["kind": "none"])) == .unchanged)
        #expect(try op.plan(Facts(["kind": "dir"])).commands == ["rm -rf -- /d"])
    }
}

func fileFacts(_ content: String) -> Facts {
    Facts(["kind": "file", "stat": "root:root:644", "content.b64": Data(content.utf8).base64EncodedString(), "parent": "dir"])
}

func newContent(_ plan: StepPlan) -> String { String(decoding: plan.stdin, as: UTF8.self) }

@Suite struct BlockPlanningTests {
    let nginxConf = """
        user www-data;
        events {
        }
        http {
            sendfile on;
            include /etc/nginx/sites-enabled/*;
        }

        """

    func op(_ state: PresenceState = .present, block: String = "    include /etc/nginx/dumbways/*;") -> ManagedBlockOperation {
        ManagedBlockOperation(path: "/etc/nginx/nginx.conf", block: block, insertAfter: #"^\s*http\s*\{"#, state: state)
    }

    @Test func insertedAfterTheAnchor() throws {
        let plan = try op().plan(fileFacts(nginxConf))
        #expect(newContent(plan) == """
            user www-data;
            events {
            }
            http {
            # BEGIN LABCTL MANAGED BLOCK
                include /etc/nginx/dumbways/*;
            # END LABCTL MANAGED BLOCK
                sendfile on;
                include /etc/nginx/sites-enabled/*;
            }

            """)
        #expect(plan.commands.last == #"mv -f -- "$t" /etc/nginx/nginx.conf"#)
    }

    @Test func alreadyThereIsUnchanged() throws {
        let once = newContent(try op().plan(fileFacts(nginxConf)))
        #expect(try op().plan(fileFacts(once)) == .unchanged)
    }

    @Test func replacedInPlaceWhenTheBlockChanges() throws {
        let once = newContent(try op().plan(fileFacts(nginxConf)))
        let twice = newContent(try op(block: "    include /etc/nginx/lab/*;").plan(fileFacts(once)))
        #expect(twice == once.replacingOccurrences(of: "dumbways", with: "lab"))
    }

    @Test func indentedMarkersAreFound() throws {
        let text = "http {\n    # BEGIN LABCTL MANAGED BLOCK\n    include /etc/nginx/dumbways/*;\n    # END LABCTL MANAGED BLOCK\n}\n"
        #expect(try op().plan(fileFacts(text)) == .unchanged)
    }

    @Test func absentRemovesIt() throws {
        let once = newContent(try op().plan(fileFacts(nginxConf)))
        #expect(newContent(try op(.absent).plan(fileFacts(once))) == nginxConf)
        #expect(try op(.absent).plan(fileFacts(nginxConf)) == .unchanged)
    }

    @Test func noAnchorFails() {
        #expect(throws: StepFailure(#"no line of /etc/nginx/nginx.conf matches insert_after '^\s*http\s*\{'"#)) {
            try op().plan(fileFacts("events {}\n"))
        }
    }

    @Test func withoutAnchorItGoesAtTheEnd() throws {
        let plan = try ManagedBlockOperation(path: "/f", block: "x=1").plan(fileFacts("a\nb"))
        #expect(newContent(plan) == "a\nb\n# BEGIN LABCTL MANAGED BLOCK\nx=1\n# END LABCTL MANAGED BLOCK\n")
    }

    @Test func insertBefore() throws {
        let plan = try ManagedBlockOperation(path: "/f", block: "x", marker: "## {mark} lab", insertBefore: "^end$").plan(fileFacts("start\nend\n"))
        #expect(newContent(plan) == "start\n## BEGIN lab\nx\n## END lab\nend\n")
    }

    @Test func aBeginWithoutEndFails() {
        #expect(throws: StepFailure("/f has the line '# BEGIN LABCTL MANAGED BLOCK' but no '# END LABCTL MANAGED BLOCK' after it; fix the file by hand")) {
            try ManagedBlockOperation(path: "/f", block: "x").plan(fileFacts("# BEGIN LABCTL MANAGED BLOCK\nx\n"))
        }
    }

    @Test func aMissingFileFails() {
        #expect(throws: StepFailure("/f does not exist on the host")) {
            try ManagedBlockOperation(path: "/f", block: "x").plan(Facts(["kind": "none", "parent": "dir"]))
        }
    }

    @Test func diff() throws {
        let plan = try ManagedBlockOperation(path: "/f", block: "x", options: PlanOptions(diff: true)).plan(fileFacts("a\n"))
        #expect(plan.diff == "--- /f\n+++ /f\n@@ -1 +1,4 @@\n a\n+# BEGIN LABCTL MANAGED BLOCK\n+x\n+# END LABCTL MANAGED BLOCK\n")
    }
}

@Suite struct LinePlanningTests {
    @Test func appendedWhenMissing() throws {
        let plan = try LineOperation(path: "/etc/hosts", line: "198.18.42.10 wayshub.lab").plan(fileFacts("127.0.0.1 localhost\n"))
        #expect(newContent(plan) == "127.0.0.1 localhost\n198.18.42.10 wayshub.lab\n")
    }

    @Test func presentIsUnchanged() throws {
        #expect(try LineOperation(path: "/f", line: "a").plan(fileFacts("x\na\n")) == .unchanged)
    }

    @Test func regexpReplacesTheLastMatch() throws {
        let op = LineOperation(path: "/etc/hosts", line: "198.18.42.10 wayshub.lab", regexp: #"\swayshub\.lab$"#)
        let plan = try op.plan(fileFacts("10.0.0.1 wayshub.lab\n127.0.0.1 localhost\n10.0.0.2 wayshub.lab\n"))
        #expect(newContent(plan) == "10.0.0.1 wayshub.lab\n127.0.0.1 localhost\n198.18.42.10 wayshub.lab\n")
        #expect(try op.plan(fileFacts("198.18.42.10 wayshub.lab\n")) == .unchanged)
    }

    @Test func insertAfter() throws {
        let op = LineOperation(path: "/f", line: "b", insertAfter: "^a$")
        #expect(newContent(try op.plan(fileFacts("a\nc\n"))) == "a\nb\nc\n")
    }

    @Test func absentByRegexpAndByLine() throws {
        #expect(newContent(try LineOperation(path: "/f", line: nil, regexp: "^#", state: .absent).plan(fileFacts("#a\nb\n#c\n"))) == "b\n")
        #expect(newContent(try LineOperation(path: "/f", line: "b", state: .absent).plan(fileFacts("a\nb\n"))) == "a\n")
        #expect(try LineOperation(path: "/f", line: "z", state: .absent).plan(fileFacts("a\n")) == .unchanged)
    }

    @Test func createMakesTheFile() throws {
        let plan = try LineOperation(path: "/f", line: "a", create: true).plan(Facts(["kind": "none", "parent": "dir"]))
        #expect(newContent(plan) == "a\n")
        #expect(plan.commands.contains(#"chmod 0644 "$t""#))
    }

    @Test func aFileWithoutFinalNewlineStaysSoWhenUntouched() throws {
        #expect(try LineOperation(path: "/f", line: "a").plan(fileFacts("a")) == .unchanged)
        #expect(newContent(try LineOperation(path: "/f", line: "b").plan(fileFacts("a"))) == "a\nb\n")
    }
}

@Suite struct ServicePlanningTests {
    let running = Facts(["systemd": "yes", "load": "loaded", "enabled": "enabled", "active": "active", "reload": "no"])
    let stopped = Facts(["systemd": "yes", "load": "loaded", "enabled": "disabled", "active": "inactive", "reload": "no"])

    @Test func startedAndEnabled() throws {
        let op = ServiceOperation(name: "nginx", enabled: true, state: .started)
        #expect(try op.plan(running) == .unchanged)
        #expect(try op.plan(stopped).commands == ["systemctl enable -- nginx", "systemctl start -- nginx", op.staysRunning])
    }

    @Test func stop() throws {
        let op = ServiceOperation(name: "nginx", state: .stopped)
        #expect(try op.plan(running).commands == ["systemctl stop -- nginx"])
        #expect(try op.plan(stopped) == .unchanged)
    }

    @Test func restartedAlwaysActs() throws {
        let op = ServiceOperation(name: "app", state: .restarted)
        #expect(try op.plan(running).commands == ["systemctl restart -- app", op.staysRunning])
    }

    @Test func reloadedStartsAStoppedUnit() throws {
        let op = ServiceOperation(name: "nginx", state: .reloaded)
        #expect(try op.plan(running).commands == ["systemctl reload -- nginx"])
        #expect(try op.plan(stopped).commands == ["systemctl start -- nginx", op.staysRunning])
    }

    @Test func disable() throws {
        #expect(try ServiceOperation(name: "x", enabled: false).plan(running).commands == ["systemctl disable -- x"])
        #expect(try ServiceOperation(name: "x", enabled: false).plan(stopped) == .unchanged)
    }

    @Test func daemonReloadOnlyWhenSystemdAsksForIt() throws {
        var facts = running
        facts.values["reload"] = "yes"
        let op = ServiceOperation(name: "app", state: .started, daemonReload: true)
        #expect(try op.plan(facts).commands == ["systemctl daemon-reload"])
        #expect(try op.plan(running) == .unchanged)
    }

    @Test func aUnitWrittenJustBeforeIsLoadedFirst() throws {
        let facts = Facts(["systemd": "yes", "load": "not-found", "enabled": "", "active": "inactive", "reload": "no"])
        let op = ServiceOperation(name: "wayshub", enabled: true, state: .started, daemonReload: true)
        #expect(try op.plan(facts).commands == ["systemctl daemon-reload", "systemctl enable -- wayshub", "systemctl start -- wayshub", op.staysRunning])
    }

    /// A unit waiting for systemd to restart its dead process is not running: started starts
    /// it and watches it, stopped stops it; a oneshot unit's start is not watched.
    @Test func aCrashLoopingUnitIsNotStarted() throws {
        let looping = Facts(["systemd": "yes", "load": "loaded", "enabled": "enabled", "active": "activating", "sub": "auto-restart", "reload": "no"])
        let started = ServiceOperation(name: "app", state: .started)
        #expect(try started.plan(looping).commands == ["systemctl start -- app", started.staysRunning])
        #expect(try ServiceOperation(name: "app", state: .stopped).plan(looping).commands == ["systemctl stop -- app"])
        var starting = looping
        starting.values["sub"] = "start"
        #expect(try started.plan(starting) == .unchanged)
        var oneshot = stopped
        oneshot.values["type"] = "oneshot"
        #expect(try started.plan(oneshot).commands == ["systemctl start -- app"])
    }

    @Test func noSystemdIsAClearError() {
        #expect(throws: StepFailure("the host does not run systemd (no /run/systemd/system), so the unit nginx cannot be managed; service steps need a systemd host")) {
            try ServiceOperation(name: "nginx", state: .started).plan(Facts(["systemd": "no"]))
        }
    }

    @Test func unknownUnit() {
        #expect(throws: StepFailure("systemd has no unit named nope on this host")) {
            try ServiceOperation(name: "nope", state: .started).plan(Facts(["systemd": "yes", "load": "not-found", "active": "inactive"]))
        }
    }
}

@Suite struct CommandPlanningTests {
    @Test func runsWhenNoGuard() throws {
        let plan = try CommandOperation(run: "npm install", chdir: "/opt/app").plan(Facts())
        #expect(plan.commands == ["sh -c 'cd /opt/app || exit\nnpm install'"])
        #expect(plan.capturesOutput)
    }

    @Test func createsGuard() throws {
        let op = CommandOperation(run: "make", creates: "/opt/app/out")
        #expect(try op.plan(Facts(["creates": "yes"])) == .unchanged)
        #expect(try op.plan(Facts(["creates": "no"])).commands == ["sh -c make"])
    }

    @Test func unlessGuard() throws {
        let op = CommandOperation(run: "useradd app", unless: "id app")
        #expect(try op.plan(Facts(["unless": "ok"])) == .unchanged)
        #expect(try op.plan(Facts(["unless": "failed"])).commands == ["sh -c 'useradd app'"])
        #expect(op.probe.contains("sh -c 'id app'"))
    }

    @Test func asAnotherUserWithEnvironment() throws {
        let op = CommandOperation(run: "npm install", unless: "test -d node_modules", chdir: "/opt/app", user: "app", env: ["NODE_ENV": "production it's", "A": "1"])
        let inner = "export A=1\nexport NODE_ENV='production it'\\''s'\ncd /opt/app || exit\n"
        #expect(try op.plan(Facts(["unless": "failed"])).commands == ["su -s /bin/sh -l -c " + Shell.quote(inner + "npm install") + " -- app"])
        #expect(op.probe.contains("su -s /bin/sh -l -c " + Shell.quote(inner + "test -d node_modules") + " -- app"))
    }

    @Test func timeout() throws {
        #expect(try CommandOperation(run: "sleep 1", timeout: 5).plan(Facts()).commands == ["timeout 5 sh -c 'sleep 1'"])
    }
}

@Suite struct GitPlanningTests {
    let sha1 = String(repeating: "a", count: 40)
    let sha2 = String(repeating: "b", count: 40)
    let op = GitOperation(repo: "https://example.org/app.git", dest: "/opt/app", ref: "main")

    @Test func cloneWhenAbsent() throws {
        let plan = try op.plan(Facts(["target": sha1]))
        #expect(plan.commands == [
            "git clone --quiet --no-checkout -- https://example.org/app.git /opt/app",
            "git -c safe.directory=/opt/app -C /opt/app checkout --quiet --force --detach \(sha1) --",
        ])
    }

    @Test func atTheTargetIsUnchanged() throws {
        #expect(try op.plan(Facts(["head": sha1, "target": sha1])) == .unchanged)
    }

    @Test func movedCommitFetchesAndChecksOut() throws {
        let plan = try op.plan(Facts(["head": sha1, "target": sha2]))
        #expect(plan.commands.count == 2)
        #expect(plan.commands[0].hasPrefix("git -c safe.directory=/opt/app -C /opt/app fetch --quiet -- https://example.org/app.git"))
        #expect(plan.commands[1] == "git -c safe.directory=/opt/app -C /opt/app checkout --quiet --force --detach \(sha2) --")
        #expect(plan.summary == ["move /opt/app from aaaaaaaaaaaa to bbbbbbbbbbbb"])
    }

    @Test func aCommitRefNeedsNoRemoteLookup() {
        let pinned = GitOperation(repo: "r", dest: "/d", ref: sha2)
        #expect(!pinned.probe.contains("ls-remote"))
        #expect(op.probe.contains("ls-remote"))
    }

    @Test func failures() {
        #expect(throws: StepFailure("git is not installed on the host; add a package step for git before this one")) { try op.plan(Facts(["git": "missing"])) }
        #expect(throws: StepFailure("https://example.org/app.git has no branch or tag named main")) { try op.plan(Facts(["target": ""])) }
        #expect(throws: StepFailure("/opt/app exists, is not empty and is not a git clone")) { try op.plan(Facts(["target": sha1, "dest": "occupied"])) }
        let error = Data("fatal: repository not found\n".utf8).base64EncodedString()
        #expect(throws: StepFailure("cannot read https://example.org/app.git from the host: fatal: repository not found")) {
            try op.plan(Facts(["error.b64": error]))
        }
        // git said nothing: killed by the 60 s timeout, or another silent failure, is named.
        #expect(throws: StepFailure("cannot read https://example.org/app.git from the host: git ls-remote had no answer within 60 s (is the server up, and reachable from the host?)")) {
            try op.plan(Facts(["error.b64": "", "status": "124"]))
        }
        #expect(throws: StepFailure("cannot read https://example.org/app.git from the host: git ls-remote failed without a message (exit status 128)")) {
            try op.plan(Facts(["error.b64": "", "status": "128"]))
        }
    }
}

@Suite struct UploadAndWaitPlanningTests {
    let tree = LocalTree(path: "/src", digest: "abc", tar: [1, 2, 3], fileCount: 2)

    @Test func sameDigestIsUnchanged() throws {
        #expect(try UploadOperation(source: tree, dest: "/opt/app").plan(Facts(["digest": "abc"])) == .unchanged)
    }

    @Test func differentDigestShipsTheTarOnStdinAndSwaps() throws {
        let plan = try UploadOperation(source: tree, dest: "/opt/app", owner: "app").plan(Facts(["digest": "none"]))
        #expect(plan.stdin == [1, 2, 3])
        #expect(plan.commands == [
            "rm -rf -- /opt/app.labctl-new /opt/app.labctl-old",
            "trap 'if [ ! -e /opt/app ] && [ -e /opt/app.labctl-old ]; then mv -- /opt/app.labctl-old /opt/app; fi; rm -rf -- /opt/app.labctl-new' EXIT",
            "mkdir -p -- /opt/app.labctl-new",
            "tar -x -f - -C /opt/app.labctl-new --no-same-owner",
            "chown -R -- app /opt/app.labctl-new",
            "if [ -e /opt/app ]; then mv -- /opt/app /opt/app.labctl-old; fi",
            "mv -- /opt/app.labctl-new /opt/app",
            "rm -rf -- /opt/app.labctl-old",
        ])
    }

    @Test func aFileInTheWayFails() {
        #expect(throws: StepFailure("/opt/app exists and is not a directory")) {
            try UploadOperation(source: tree, dest: "/opt/app").plan(Facts(["digest": "notdir"]))
        }
    }

    @Test func waitForUpIsUnchanged() throws {
        #expect(try WaitForOperation(port: 3000).plan(Facts(["up": "yes"])) == .unchanged)
    }

    @Test func waitForDownWaitsButChangesNothing() throws {
        let plan = try WaitForOperation(url: "http://127.0.0.1:3000/health", timeout: 30).plan(Facts(["up": "no"]))
        #expect(plan.changes == false)
        #expect(plan.commands.count == 1)
        #expect(plan.commands[0].contains("+ 30"))
        #expect(plan.commands[0].contains("'http://127.0.0.1:3000/health did not answer within 30 s'"))
    }
}
