import Foundation

/// One problem in a playbook (or a template it uses), with where it is.
public struct PlaybookIssue: Sendable, Hashable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String

    public init(_ message: String, at location: SourceLocation) {
        self.location = location
        self.message = Self.visible(message)
    }

    /// Messages quote what the playbook says (names, keys, values): its control characters are
    /// shown as escapes, so that a hostile or broken file cannot move the cursor, recolour the
    /// terminal or forge extra lines of output.
    static func visible(_ message: String) -> String { ValueForm.visible(message) }

    /// `file:line:column: message`, the form editors and terminals turn into links.
    public var description: String { "\(location): \(message)" }
}

/// Every problem found, reported together so a user fixes them in one go.
public struct PlaybookError: Error, Sendable, CustomStringConvertible {
    public var issues: [PlaybookIssue]

    public init(issues: [PlaybookIssue]) {
        self.issues = issues
    }

    public var description: String {
        let head = issues.count == 1 ? "1 problem" : "\(issues.count) problems"
        return "\(head) in the playbook:\n" + issues.map { "  \($0)" }.joined(separator: "\n")
    }
}
