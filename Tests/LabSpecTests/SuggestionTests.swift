import LabSpec
import Testing

/// One rule for every "did you mean": inventory, playbook and verbs alike.
struct SuggestionTests {
    @Test("another spelling of the same name is suggested whatever its length")
    func spellings() {
        #expect(Suggestion.closest(to: "knownHosts", in: ["known_hosts", "user"]) == "known_hosts")
        #expect(Suggestion.closest(to: "Known-Hosts", in: ["user", "known_hosts"]) == "known_hosts")
        #expect(Suggestion.closest(to: "ROLES", in: ["roles"]) == "roles")
    }

    @Test("a typo within one edit per three letters is suggested; further ones are not")
    func edits() {
        #expect(Suggestion.closest(to: "prot", in: ["port", "host"]) == "port")
        #expect(Suggestion.closest(to: "pakage", in: ["package", "file"]) == "package")
        #expect(Suggestion.closest(to: "zzz", in: ["package", "file"]) == nil)
        #expect(Suggestion.closest(to: "ab", in: ["xy"]) == nil)
        #expect(Suggestion.closest(to: "anything", in: [String]()) == nil)
    }

    @Test("the nearest wins; among equals, the first")
    func nearest() {
        #expect(Suggestion.closest(to: "servce", in: ["services", "service"]) == "service")
        #expect(Suggestion.closest(to: "cat", in: ["bat", "car"]) == "bat")
        #expect(Suggestion.hint(for: "comand", in: ["command"]) == "; did you mean 'command'?")
        #expect(Suggestion.hint(for: "zzzzzz", in: ["command"]) == "")
    }
}
