import Foundation
import LabEngine
import LabSpec

/// `labctl up --json` as data: one document with the part of each stage that ran (a stage
/// that did not run, because one before it failed or it was skipped, is absent).
public struct UpReport: Sendable, Codable, Hashable {
    public var schemaVersion: Int = ReportJSON.schemaVersion
    public var provision: RunReport?
    public var deploy: RunReport?
    public var verify: VerifyReport?

    public init(provision: RunReport? = nil, deploy: RunReport? = nil, verify: VerifyReport? = nil) {
        self.provision = provision
        self.deploy = deploy
        self.verify = verify
    }
}
