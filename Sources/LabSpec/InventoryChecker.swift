import Foundation

/// The fields of one JSON object being checked, with the path that names it in messages.
struct CheckedObject {
    let path: String
    let values: [String: JSONValue]

    func path(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// A field's value; an explicit `null` counts as not given, so it means "use the default".
    subscript(key: String) -> JSONValue? {
        guard let value = values[key] else { return nil }
        if case .null = value { return nil }
        return value
    }

    func has(_ key: String) -> Bool { self[key] != nil }
}

/// Walks parsed JSON and collects every problem instead of stopping at the first one.
/// Each reader returns nil for a missing or bad value (after reporting the bad one), so the
/// caller can fall back to a default and keep going.
final class InventoryChecker {
    private(set) var problems: [InventoryProblem] = []

    func report(_ path: String, _ message: String) {
        problems.append(InventoryProblem(path: path, message: message))
    }

    /// `value` as an object whose fields must be among `keys` (in the order the format lists
    /// them, used by hints). Unknown fields are reported with a "did you mean" hint.
    func object(_ value: JSONValue, at path: String, keys: [String], what: String = "an object") -> CheckedObject? {
        guard case .object(let values) = value else {
            report(path, "expected \(what), got \(value.shortDescription)")
            return nil
        }
        for key in values.keys.sorted() where !keys.contains(key) {
            let fieldPath = path.isEmpty ? key : "\(path).\(key)"
            if let hint = Suggestion.closest(to: key, in: keys) {
                report(fieldPath, "unknown field; did you mean '\(hint)'?")
            } else {
                report(fieldPath, "unknown field; expected one of: \(keys.joined(separator: ", "))")
            }
        }
        return CheckedObject(path: path, values: values)
    }

    /// A nested object field, or nil when absent or not an object.
    func object(_ parent: CheckedObject, _ key: String, keys: [String]) -> CheckedObject? {
        guard let value = parent[key] else { return nil }
        return object(value, at: parent.path(key), keys: keys)
    }

    func missing(_ parent: CheckedObject, _ key: String, expected: String) {
        report(parent.path(key), "required field is missing; expected \(expected)")
    }

    /// A string field. `isValid` judges its content; `invalid` words the message for a string
    /// that fails it (default: "expected <expected>, got "...""). Empty strings are never valid.
    func string(
        _ parent: CheckedObject, _ key: String, required: Bool = false, expected: String,
        invalid: ((String) -> String)? = nil, isValid: (String) -> Bool = { _ in true }
    ) -> String? {
        guard let value = parent[key] else {
            if required { missing(parent, key, expected: expected) }
            return nil
        }
        guard case .string(let text) = value else {
            report(parent.path(key), "expected \(expected), got \(value.shortDescription)")
            return nil
        }
        guard !text.isEmpty, isValid(text) else {
            // The value goes into the message escaped and cut short: it may hold line breaks,
            // terminal escapes or a megabyte of text.
            report(parent.path(key), text.isEmpty || invalid == nil
                ? "expected \(expected), got \(value.shortDescription)" : invalid!(ValueForm.escaped(text)))
            return nil
        }
        return text
    }

    /// A string that reaches hosts in one of the shared `ValueForm`s.
    func string(_ parent: CheckedObject, _ key: String, required: Bool = false, form: ValueForm) -> String? {
        guard let text = string(parent, key, required: required, expected: form.expected) else { return nil }
        if let problem = form.problem(text) {
            report(parent.path(key), problem)
            return nil
        }
        return text
    }

    /// A string that must be one of `choices`, with a hint for a near miss.
    func choice(_ parent: CheckedObject, _ key: String, among choices: [String]) -> String? {
        guard let value = parent[key] else { return nil }
        if case .string(let text) = value, choices.contains(text) { return text }
        var message = "expected one of \(choices.joined(separator: ", ")), got \(value.shortDescription)"
        if case .string(let text) = value, let hint = Suggestion.closest(to: text, in: choices) {
            message += "; did you mean '\(hint)'?"
        }
        report(parent.path(key), message)
        return nil
    }

    func integer(_ parent: CheckedObject, _ key: String, in range: ClosedRange<Int>, required: Bool = false) -> Int? {
        let expected = range.upperBound == Int.max
            ? "an integer of at least \(range.lowerBound)"
            : "an integer from \(range.lowerBound) to \(range.upperBound)"
        guard let value = parent[key] else {
            if required { missing(parent, key, expected: expected) }
            return nil
        }
        guard case .integer(let number) = value, range.contains(number) else {
            report(parent.path(key), "expected \(expected), got \(value.shortDescription)")
            return nil
        }
        return number
    }

    func bool(_ parent: CheckedObject, _ key: String) -> Bool? {
        guard let value = parent[key] else { return nil }
        guard case .bool(let flag) = value else {
            report(parent.path(key), "expected true or false, got \(value.shortDescription)")
            return nil
        }
        return flag
    }

    /// A list field; nil (after a report) when present but not a list.
    func array(_ parent: CheckedObject, _ key: String, expected: String) -> [JSONValue]? {
        guard let value = parent[key] else { return nil }
        guard case .array(let items) = value else {
            report(parent.path(key), "expected \(expected), got \(value.shortDescription)")
            return nil
        }
        return items
    }
}
