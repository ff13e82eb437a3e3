import Foundation
import LabSpec
import Testing

/// The forms values must have before they reach a host, as data.
@Suite struct ValueFormTests {
    static let cases: [(ValueForm, accepted: [String], refused: [String])] = [
        (.absolutePath, ["/etc/nginx/x.conf", "/srv/a b/it's", "/opt/ü"],
         ["etc/x", "", "/a\nb", "/a\u{0}b", "/etc/nginx/../shadow", "/./x", "~/x", "-rf"]),
        (.plainAbsolutePath, ["/opt/wayshub", "/srv/app-1.2_x+y@z,w:v=u"],
         ["/", "opt/x", "/opt/a b", "/opt/a$(touch x)", "/opt/a;b", "/opt/'x'", "/opt/../etc", "/opt/a\nb", "/opt/a*"]),
        (.unitName, ["nginx", "wayshub.service", "getty@tty1.service", "a\\x2db"],
         ["-x", "a b", "a;b", "$(x)", "", "a\nb"]),
        (.packageName, ["nginx", "libssh2-1-dev", "g++", "nodejs:amd64"],
         ["-y", "Nginx", "a b", "nginx;x", "nginx=1.2", "", "$(x)"]),
        (.userOrGroup, ["root", "ubuntu", "www-data", "_apt", "1000", "machine$"],
         ["-c x", "--help", "a b", "a;b", "", "$(x)", String(repeating: "a", count: 33)]),
        (.gitRef, ["main", "v0.39.7", "feature/x", "0123456789abcdef0123456789abcdef01234567"],
         ["-x", "--upload-pack=x", "a b", "a..b", "a~1", "a^", "a:b", "a*", "/x", "x/", "x.", "@{-1}"]),
        (.gitRepository, ["https://github.com/nvm-sh/nvm.git", "ssh://git@host/repo.git", "git://h/r", "file:///srv/r.git",
                          "git@github.com:o/r.git", "/srv/repo.git"],
         ["--upload-pack=touch x", "ext::sh -c touch% x", "fd::1", "ssh://-oProxyCommand=x/r", "-x@h:r", "a@-h:r",
          "https://h/'x'", "https://h/$(x)", "my repo", "ftp://h/r", "https:///r", ""]),
        (.httpURL, ["http://127.0.0.1:3000/", "https://example.org/a?b=c"],
         ["file:///etc/passwd", "ftp://h/", "http://h/'x'", "http://h/ x", "http://-h/", "127.0.0.1:3000", "http:///x", ""]),
        (.downloadURL, ["https://nodejs.org/dist/v16.20.2/node.tar.xz", "file:///srv/node.tar.xz"],
         ["file://rel/x", "https://h/x';touch x;'", "gopher://h/", ""]),
        (.hostOrAddress, ["127.0.0.1", "::1", "app1", "wayshub.lab"],
         ["x;touch", "-h", "a b", "300.1.1.1", "", "[::1]"]),
    ]

    @Test func formsAcceptAndRefuse() {
        for (form, accepted, refused) in Self.cases {
            for value in accepted {
                #expect(form.problem(value) == nil, "\(form) should accept \(ValueForm.shown(value))")
            }
            for value in refused {
                let problem = form.problem(value)
                #expect(problem != nil, "\(form) should refuse \(ValueForm.shown(value))")
                #expect(problem?.contains("expected") == true)
            }
        }
    }

    @Test func messagesSayWhyInPlainWords() {
        #expect(ValueForm.absolutePath.problem("etc/x")?.contains("relative path") == true)
        #expect(ValueForm.userOrGroup.problem("--help")?.contains("starts with '-'") == true)
        // A hostile value cannot garble the message: control characters are shown, length cut.
        let shown = ValueForm.shown("a\nb\u{1B}[2J" + String(repeating: "x", count: 500))
        #expect(!shown.contains("\n") && !shown.contains("\u{1B}") && shown.count < 140)
        #expect(shown.hasPrefix("'a\\nb\\x1B[2J"))
    }
}
