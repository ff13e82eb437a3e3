import Foundation
import Testing
@testable import LabSpec

/// Where Node, nvm and npm packages come from: defaults, the inventory's own, refusals.
@Suite struct MirrorSettingsTests {
    @Test func defaultsAreTheUpstreamOnes() throws {
        let app = try #require(try parse(inventoryJSON(extra: #", "domain": "w.lab", "app": {}"#)).app)
        #expect(app.nodeMirror == "https://nodejs.org/dist")
        #expect(app.nvmRepository == "https://github.com/nvm-sh/nvm.git")
        #expect(app.npmRegistry == "https://registry.npmjs.org/")
    }

    @Test func theInventorysOwnMirrors() throws {
        let app = try #require(try parse(inventoryJSON(extra: """
            , "domain": "w.lab", "app": { "npm_registry": "http://198.18.88.1:8080/npm/",
              "node": { "install": "nvm", "mirror": "http://198.18.88.1:8080/node/", "nvm_repo": "git://198.18.88.1/nvm.git" } }
            """)).app)
        #expect(app.nodeMirror == "http://198.18.88.1:8080/node")
        #expect(app.nvmRepository == "git://198.18.88.1/nvm.git")
        #expect(app.npmRegistry == "http://198.18.88.1:8080/npm/")
    }

    @Test func aTarballOfAFullVersionIsFoundOnTheMirror() throws {
        let app = try #require(try parse(inventoryJSON(extra: """
            , "domain": "w.lab", "app": { "node": { "install": "tarball", "version": "16.15.1",
              "mirror": "http://m.lab/dist", "sha256": "\(String(repeating: "ab", count: 32))" } }
            """)).app)
        #expect(app.node == .tarball(url: "http://m.lab/dist/v16.15.1/node-v16.15.1-linux-x64.tar.gz",
                                     sha256: String(repeating: "ab", count: 32), version: "16.15.1"))
    }

    @Test(arguments: [
        (#"{ "install": "nvm", "mirror": "http://m/'x'" }"#, "app.node.mirror"),
        (#"{ "install": "nvm", "nvm_repo": "ext::sh -c x" }"#, "app.node.nvm_repo"),
        (#"{ "install": "apt", "mirror": "http://m/" }"#, "app.node.mirror"),
        (#"{ "install": "tarball", "version": "16", "sha256": "\#(String(repeating: "a", count: 64))" }"#, "app.node.url"),
    ])
    func badMirrorsAreRefusedByField(node: String, field: String) throws {
        #expect {
            _ = try parse(inventoryJSON(extra: #", "domain": "w.lab", "app": { "node": \#(node) }"#))
        } throws: { error in
            (error as? InventoryError)?.problems.contains { $0.path == field } == true
        }
    }

    @Test func aBadRegistryIsRefused() throws {
        #expect(throws: InventoryError.self) {
            _ = try parse(inventoryJSON(extra: #", "domain": "w.lab", "app": { "npm_registry": "file:///x" }"#))
        }
    }
}
