/// Every "did you mean" hint labctl gives (inventory keys and values, playbook keys, step
/// types, handler names, template variables, verbs) comes from here, with one rule for what is
/// close enough.
public enum Suggestion {
    /// The candidate `word` most likely meant: the same name in another spelling (`knownHosts`,
    /// `Known-Hosts`), else the nearest within a few edits (one per three letters, one to three);
    /// among equals, the first candidate.
    public static func closest(to word: String, in candidates: some Sequence<String>) -> String? {
        func folded(_ s: String) -> String { s.lowercased().filter { $0 != "_" && $0 != "-" } }
        let candidates = Array(candidates)
        if let same = candidates.first(where: { folded($0) == folded(word) }) { return same }
        let allowed = max(1, min(3, word.count / 3))
        var best: (candidate: String, distance: Int)?
        for candidate in candidates {
            let distance = EditDistance.between(word.lowercased(), candidate.lowercased())
            if distance <= allowed, best == nil || distance < best!.distance { best = (candidate, distance) }
        }
        return best?.candidate
    }

    /// "; did you mean 'x'?" or "".
    public static func hint(for word: String, in candidates: some Sequence<String>) -> String {
        closest(to: word, in: candidates).map { "; did you mean '\($0)'?" } ?? ""
    }
}

/// The distance behind `Suggestion`. Hand-written because it is a dozen lines and none of the
/// packages we depend on offers one.
enum EditDistance {
    /// Levenshtein distance with a swap of two neighbours counted as one edit (optimal string
    /// alignment): "prot" is one edit from "port".
    static func between(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var table = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { table[i][0] = i }
        for j in 0...b.count { table[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
                }
            }
        }
        return table[a.count][b.count]
    }
}
