import Foundation

/// Reads `inventory.json` into an `Inventory`, reporting every problem at once.
public enum InventoryLoader {
    public static let defaultPath = "inventory.json"

    /// Whether `path` is the inventory labctl reads without `-i` (./inventory.json), so that
    /// a hint can leave `-i` out.
    public static func isDefaultPath(_ path: String) -> Bool {
        URL(fileURLWithPath: path).standardizedFileURL.path == URL(fileURLWithPath: defaultPath).standardizedFileURL.path
    }
    /// Larger files are refused before parsing: an inventory is a few kilobytes.
    public static let maximumSize = 16 * 1_048_576

    /// Loads the file at `path` (relative to the current directory, `~` expanded). Relative
    /// paths inside the file are resolved against the file's folder.
    public static func load(path: String) throws(InventoryError) -> Inventory {
        if path.trimmingCharacters(in: .whitespaces).isEmpty {
            throw InventoryError(file: "--inventory", reason: .fileNotFound, problems: [InventoryProblem(
                path: "", message: "the path is empty; pass -i PATH to an inventory file, or leave -i out to use ./\(defaultPath)")])
        }
        let expanded = InventoryPaths.expandTilde(path)
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
        let url = URL(fileURLWithPath: InventoryPaths.resolve(expanded, against: cwd))
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw InventoryError(file: path, reason: .fileNotFound, problems: [InventoryProblem(
                path: "",
                message: "no such file; run labctl in the folder that holds the inventory or pass --inventory PATH")])
        }
        if isDirectory.boolValue {
            throw InventoryError(file: path, reason: .unreadable, problems: [InventoryProblem(
                path: "", message: "is a folder, not an inventory file; pass --inventory PATH/inventory.json")])
        }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw InventoryError(file: path, reason: .unreadable, problems: [InventoryProblem(
                path: "", message: access(url.path, R_OK) != 0
                    ? "cannot be read by this user (permissions?); check its owner and mode, or run labctl as the user who made it"
                    : "cannot be read; check that it is a regular file")])
        }
        var inventory = try parse(data: data, file: path, baseDirectory: url.deletingLastPathComponent())
        inventory.file = url
        return inventory
    }

    /// Parses inventory JSON. `file` names the source in messages; relative paths in the
    /// inventory are resolved against `baseDirectory`.
    public static func parse(data: Data, file: String, baseDirectory: URL) throws(InventoryError) -> Inventory {
        let root = try decode(data, file: file)
        let checker = InventoryChecker()
        for problem in InventoryDuplicateKeys.problems(in: data) {
            checker.report(problem.path, problem.message)
        }
        let inventory = InventoryBuilder(checker: checker, base: baseDirectory.standardizedFileURL).build(root)
        guard let inventory, checker.problems.isEmpty else {
            throw InventoryError(file: file, reason: .invalid, problems: checker.problems)
        }
        return inventory
    }

    // MARK: - JSON syntax

    private static func decode(_ data: Data, file: String) throws(InventoryError) -> JSONValue {
        if data.allSatisfy({ [0x20, 0x09, 0x0A, 0x0D].contains($0) }) {
            throw InventoryError(file: file, reason: .syntax(line: nil, column: nil), problems: [InventoryProblem(
                path: "", message: "the file is empty; expected a JSON object describing the lab (see docs/inventory.md)")])
        }
        if data.count > maximumSize {
            throw InventoryError(file: file, reason: .unreadable, problems: [InventoryProblem(
                path: "", message: "the file is \(data.count / 1_048_576) MB; an inventory is a few kilobytes (at most \(maximumSize / 1_048_576) MB): is it the right file?")])
        }
        // Before JSONDecoder, which accepts trailing commas, names no position for comments and
        // recurses on nesting (a file 100,000 levels deep would crash it).
        if let problem = JSONSyntaxCheck.check(data) {
            throw InventoryError(file: file, reason: .syntax(line: problem.line, column: problem.column), problems: [InventoryProblem(
                path: "", message: "invalid JSON at line \(problem.line), column \(problem.column): \(problem.message)")])
        }
        do {
            return try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw syntaxError(data, file: file, decoderError: error)
        }
    }

    /// JSONDecoder's syntax errors carry no position on Linux, while JSONSerialization's say
    /// "around character N" (a byte offset): ask it again, only on this failure path, to tell
    /// the user the line and column.
    private static func syntaxError(_ data: Data, file: String, decoderError: any Error) -> InventoryError {
        var detail = "not valid JSON"
        var offset: Int?
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            let text = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? ""
            if let match = text.firstMatch(of: /^(.*?)\s+around (?:character|line \d+, column) (\d+)\.?$/) {
                detail = String(match.1)
                offset = Int(match.2)
            } else if text.localizedCaseInsensitiveContains("end of file") {
                detail = "unexpected end of file (an unclosed string, list or object?)"
                offset = data.starts(with: [0xEF, 0xBB, 0xBF]) ? data.count - 3 : data.count
            } else if !text.isEmpty {
                detail = text.hasSuffix(".") ? String(text.dropLast()) : text
            }
        }
        detail = detail.prefix(1).lowercased() + detail.dropFirst()
        guard let offset else {
            return InventoryError(file: file, reason: .syntax(line: nil, column: nil),
                                  problems: [InventoryProblem(path: "", message: "invalid JSON: \(detail)")])
        }
        // JSONSerialization counts from after a UTF-8 byte order mark (Windows editors write one).
        let text = data.starts(with: [0xEF, 0xBB, 0xBF]) ? data.dropFirst(3) : data
        let (line, column) = lineAndColumn(ofByte: offset, in: Data(text))
        return InventoryError(file: file, reason: .syntax(line: line, column: column), problems: [InventoryProblem(
            path: "", message: "invalid JSON at line \(line), column \(column): \(detail)")])
    }

    /// 1-based line and column (in characters) of a byte offset.
    static func lineAndColumn(ofByte offset: Int, in data: Data) -> (Int, Int) {
        let bytes = [UInt8](data.prefix(max(0, offset)))
        let line = bytes.reduce(1) { $1 == 0x0A ? $0 + 1 : $0 }
        let lineStart = (bytes.lastIndex(of: 0x0A).map { $0 + 1 }) ?? 0
        let column = String(decoding: bytes[lineStart...], as: UTF8.self).count + 1
        return (line, column)
    }
}
