import Foundation
import LabSpec
import Testing
@testable import LabEngine

/// playbooks/templates/app-release.sh, rendered as deploy.yml writes it and run here in a real
/// shell, with a stand-in `npm` that counts its installs: releases are made once per content,
/// packages are installed once per package.json, `previous` is the last healthy release, a
/// rollback touches only what the last deploy switched, and pruning keeps what rollback needs.
@Suite struct AppReleaseScriptTests {
    let scratch = Scratch()
    var top: String { scratch.file("srv/app") }
    var script: String { scratch.file("release") }

    init() async throws {
        scratch.write("source/package.json", "{}\n")
        try """
            { "name": "releases", "domain": "wayshub.test",
              "hosts": [ { "name": "proxy", "address": "10.0.0.10", "roles": ["proxy"] },
                         { "name": "app1", "address": "10.0.0.11", "roles": ["app"] } ],
              "app": { "directory": "\(top)", "user": "\(NSUserName())", "source": { "path": "source" }, "node": { "install": "apt" } } }
            """.write(toFile: scratch.file("inventory.json"), atomically: true, encoding: .utf8)
        let inventory = try InventoryLoader.load(path: scratch.file("inventory.json"))
        let playbooks = ShippedPlaybookTests.root.appendingPathComponent("playbooks").path
        let runner = PlaybookRunner(inventory: inventory, options: RunOptions(playbookDirectory: playbooks))
        let deploy = try PlaybookParser.parse(fileAt: playbooks + "/deploy.yml")
        let app1 = try #require(runner.targets.first { $0.name == "app1" })
        let step = try #require(deploy.steps.first { $0.name == "the release script" })
        let text = try #require((try runner.compiler.operation(for: step.action, context: app1.context) as? FileOperation)?.content)
        scratch.write("release", text)
        // npm as deploy runs it: in the release's folder, leaving a package and a lock file.
        scratch.write("bin/npm", """
            #!/bin/sh
            echo "$PWD" >> \(Shell.quote(scratch.file("npm.log")))
            mkdir -p node_modules/dep && echo 'module.exports = 1' > node_modules/dep/index.js
            [ -e package-lock.json ] || echo '{"lockfileVersion": 3}' > package-lock.json

            """)
        _ = await shell("chmod +x " + Shell.quote(script) + " " + Shell.quote(scratch.file("bin/npm")))
    }

    /// The script with `arguments`: its status and what it said.
    @discardableResult
    func release(_ arguments: String...) async -> (status: Int32, out: String) {
        let run = await shell("PATH=" + Shell.quote(scratch.file("bin")) + ":$PATH " + Shell.quote(script) + " " + arguments.joined(separator: " "))
        return (run.status, (run.stdout + run.stderr).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// What deploy does on one server: stage `files`, make and install the release, switch to
    /// it and, when it came up healthy, record that. Returns the release's id.
    @discardableResult
    func deploy(_ files: [String: String], healthy: Bool = true) async throws -> String {
        _ = await shell("rm -rf " + Shell.quote(top + "/staged"))
        for (name, content) in files { scratch.write("srv/app/staged/" + name, content) }
        for action in ["prepare", "install", "switch"] + (healthy ? ["mark-good"] : []) {
            let run = await release(action)
            try #require(run.status == 0, "\(action): \(run.out)")
            #expect(await release("is-" + (action == "prepare" ? "prepared" : action == "install" ? "installed" : action == "switch" ? "live" : "marked-good")).status == 0, "\(action)")
        }
        return try #require(link("current")?.replacingOccurrences(of: "releases/", with: ""))
    }

    func link(_ name: String) -> String? { try? FileManager.default.destinationOfSymbolicLink(atPath: top + "/" + name) }
    var installs: Int { scratch.read("npm.log")?.split(separator: "\n").count ?? 0 }
    var releases: Set<String> { Set(((try? FileManager.default.contentsOfDirectory(atPath: top + "/releases")) ?? []).filter { !$0.hasPrefix(".") }) }
    func inode(_ path: String) -> UInt64? { (try? FileManager.default.attributesOfItem(atPath: path))?[.systemFileNumber] as? UInt64 }

    static let v1 = ["package.json": "{\"name\": \"app\", \"version\": \"1.0.0\"}\n", "server.js": "// one\n", "odd name\twith tab": "x\n"]
    static func version(_ n: Int) -> [String: String] {
        var files = v1
        files["server.js"] = "// \(n)\n"
        return files
    }

    @Test func theSameFilesAreTheSameReleaseAndPackagesAreInstalledOncePerPackageJSON() async throws {
        let one = try await deploy(Self.v1)
        #expect(installs == 1)
        #expect(link("previous") == nil)
        // The same files again (times and owners aside): nothing to do, the same id.
        _ = await shell("touch " + Shell.quote(top + "/staged/server.js"))
        for check in ["is-prepared", "is-installed", "is-live", "is-marked-good"] { #expect(await release(check).status == 0, "\(check)") }

        // Only server.js changes: a new release whose node_modules are the first one's files.
        let two = try await deploy(Self.version(2))
        #expect(two != one)
        #expect(installs == 1, "npm ran again for an unchanged package.json")
        let linked = inode(top + "/releases/\(two)/node_modules/dep/index.js")
        #expect(linked != nil && linked == inode(top + "/releases/\(one)/node_modules/dep/index.js"))
        #expect(link("previous") == "releases/\(one)")

        // A changed package.json installs again.
        var three = Self.version(3)
        three["package.json"] = "{\"name\": \"app\", \"version\": \"3.0.0\"}\n"
        try await deploy(three)
        #expect(installs == 2)
    }

    @Test func rollbackGoesToTheLastHealthyReleaseOnceAndOnlyWhereTheDeploySwitched() async throws {
        let first = try await deploy(Self.v1)
        let failing = await release("can-roll-back")
        #expect(failing.status != 0 && failing.out.contains("first healthy release here, so there is no earlier one"), "\(failing.out)")

        let good = try await deploy(Self.version(2))
        // A release that never came up healthy is not what a later rollback returns to.
        try await deploy(Self.version(3), healthy: false)
        #expect(link("previous") == "releases/\(good)")
        let fixed = try await deploy(Self.version(4))
        #expect(link("previous") == "releases/\(good)", "previous moved to the broken release")

        #expect(await release("can-roll-back").status == 0)
        #expect(await release("is-rolled-back").status != 0)
        let back = await release("rollback")
        #expect(back.status == 0 && back.out == "release \(good) is current again (it was \(fixed))", "\(back.out)")
        #expect(link("current") == "releases/\(good)")
        // A second rollback changes nothing.
        #expect(await release("is-rolled-back").status == 0)
        #expect(await release("rollback") == (0, ""))
        #expect(link("current") == "releases/\(good)")
        _ = first

        // A deploy that stopped before this server's turn staged a new release but did not
        // switch it: a rollback leaves what runs here alone.
        _ = try await deploy(Self.version(5))
        for (name, content) in Self.version(6) { scratch.write("srv/app/staged/" + name, content) }
        #expect(await release("prepare").status == 0)
        #expect(await release("is-rolled-back").status == 0)
        #expect(await release("can-roll-back").status == 0)
    }

    @Test func pruneKeepsTheLastHealthyReleasesAndWhatRollbackNeeds() async throws {
        let one = try await deploy(Self.v1)
        let two = try await deploy(Self.version(2))
        let three = try await deploy(Self.version(3))
        #expect(await release("rollback").status == 0)
        // A copy cut short stays from an interrupted run.
        _ = await shell("mkdir -p " + Shell.quote(top + "/releases/.new-0123456789ab"))
        #expect(await release("is-pruned", "1").status != 0)
        let prune = await release("prune", "1")
        #expect(prune.status == 0, "\(prune.out)")
        // current (two, rolled back to), previous (two), staged and last healthy (three).
        #expect(releases == [two, three], "\(releases)")
        #expect(!FileManager.default.fileExists(atPath: top + "/releases/.new-0123456789ab"))
        #expect(await release("is-pruned", "1").status == 0)
        #expect(!releases.contains(one))
        #expect(await release("prune", "x").out.contains("usage"))
    }

    @Test func aCurrentThatIsNotItsLinkIsRefusedWithoutTouchingIt() async throws {
        scratch.write("srv/app/current/index.html", "hand made\n")
        for (name, content) in Self.v1 { scratch.write("srv/app/staged/" + name, content) }
        #expect(await release("prepare").status == 0)
        let switched = await release("switch")
        #expect(switched.status != 0 && switched.out.contains("current exists and is not a link labctl made: move it away"), "\(switched.out)")
        #expect(scratch.read("srv/app/current/index.html") == "hand made\n")
        let missing = await shell(Shell.quote(script) + " is-live; " + Shell.quote(script) + " prepare 2>&1; rm -rf " + Shell.quote(top + "/staged") + "; " + Shell.quote(script) + " prepare 2>&1")
        #expect(missing.stdout.contains("staged does not exist: labctl deploy stages the app there first"), "\(missing.stdout)")
    }
}
