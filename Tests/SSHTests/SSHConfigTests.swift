import Foundation
import Testing
import TestSupport

@testable import SSH

/// ssh_config read the way OpenSSH 9.2 reads it: small configs in a temporary home, then the
/// same configs beside `ssh -G` (and `ssh -v` for the expanded IdentityFile paths).
@Suite struct SSHConfigTests {
    /// A temporary folder standing for the home directory, with its .ssh.
    struct Home {
        let folder: TemporaryDirectory
        var path: String { folder.path }

        init() throws {
            folder = try TemporaryDirectory(prefix: "labctl-sshconfig")
            try FileManager.default.createDirectory(atPath: folder.file(".ssh"), withIntermediateDirectories: true)
        }

        /// Writes `text` at `name` (relative to the home), making folders; returns the path.
        @discardableResult
        func write(_ name: String, _ text: String, mode: Int = 0o644) throws -> String {
            let path = folder.file(name)
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: path, atomically: false, encoding: .utf8)
            chmod(path, mode_t(mode))
            return path
        }

        func resolve(
            _ host: String, _ file: String = ".ssh/config", localUser: String = "alice",
            environment: [String: String] = [:]
        ) throws(SSHConfigError) -> SSHConfigResolution {
            try SSHConfig.resolve(
                host: host, path: folder.file(file), home: path, localUser: localUser,
                environment: ["HOME": path].merging(environment) { $1 })
        }

        func error(_ host: String, _ file: String = ".ssh/config") -> SSHConfigError? {
            do {
                _ = try resolve(host, file)
                return nil
            } catch {
                return error
            }
        }

        func remove() { folder.remove() }
    }

    // MARK: - Syntax

    @Test func keywordsValuesAndCommentsReadAsSSHReadsThem() throws {
        let home = try Home()
        defer { home.remove() }
        try home.write(
            ".ssh/config",
            """
            # a comment
              \t# an indented comment

            HOST=alpha
            \tHostName = alpha.internal   # a comment after the value
            \tUSER="deploy user"
            \tport=2200
            \tIdentityFile "~/keys/with space/id" # quoted
            \tIdentityFile ~/keys/esc\\ aped
            \tIdentityFile 'single quoted'
            \tIdentityFile "a \\"quote\\" inside"
            \tIdentityFile back\\slash
            \t"IdentitiesOnly" yes
            """)
        let alpha = try home.resolve("alpha")
        #expect(alpha.hostName == "alpha.internal")
        #expect(alpha.user == "deploy user")
        #expect(alpha.port == 2200)
        #expect(alpha.identitiesOnly == true)
        #expect(
            alpha.identityFiles == [
                home.path + "/keys/with space/id", home.path + "/keys/esc aped", "single quoted", "a \"quote\" inside",
                "back\\slash",
            ])
        #expect(try home.resolve("beta") == SSHConfigResolution())
    }

    @Test func aSecondEqualsSignOrAnOpenQuoteIsWhatSSHMakesOfIt() throws {
        let home = try Home()
        defer { home.remove() }
        // strdelim skips one `=`; the second is part of the value, which is then not a port.
        try home.write(".ssh/config", "Port==22\n")
        #expect(home.error("h")?.message == "Bad port '=22'.")
        try home.write(".ssh/config", "User \"unclosed\n")
        #expect(home.error("h") == SSHConfigError(file: home.folder.file(".ssh/config"), line: 1, message: "invalid quotes"))
        // A keyword whose quote is not closed makes the line nothing, as in ssh.
        try home.write(".ssh/config", "\"User x\nUser y\n")
        #expect(try home.resolve("h").user == "y")
        try home.write(".ssh/config", "User\n")
        #expect(home.error("h")?.message == "no argument after keyword \"user\"")
        try home.write(".ssh/config", "User a b\n")
        #expect(home.error("h")?.message == "keyword user extra arguments at end of line")
        try home.write(".ssh/config", "User # only a comment\n")
        #expect(home.error("h")?.message == "Missing argument.")
        try home.write(".ssh/config", "User a#b\nPort 22\u{0C}\r\n")
        #expect(try home.resolve("h") == SSHConfigResolution(user: "a#b", port: 22))
    }

    @Test func theFirstValueWinsAndIdentityFilesAccumulate() throws {
        let home = try Home()
        defer { home.remove() }
        try home.write(
            ".ssh/config",
            """
            Host web
              User first
              IdentityFile ~/.ssh/web
              ConnectTimeout 5
            Host *
              User second
              Port 2299
              IdentityFile ~/.ssh/all
              IdentityFile ~/.ssh/web
              ConnectTimeout 9
              UserKnownHostsFile ~/.ssh/kh_all
            Host web
              User third
              IdentityFile ~/.ssh/late
              UserKnownHostsFile ~/.ssh/kh_late
            """)
        let web = try home.resolve("web")
        #expect(web.user == "first")
        #expect(web.port == 2299)
        #expect(web.connectTimeout == 5)
        #expect(web.identityFiles == ["web", "all", "late"].map { home.path + "/.ssh/" + $0 })
        #expect(web.userKnownHostsFiles == [home.path + "/.ssh/kh_all"])
        let other = try home.resolve("other")
        #expect(other.user == "second")
        #expect(other.identityFiles == ["all", "web"].map { home.path + "/.ssh/" + $0 })
    }

    @Test func hostPatternsMatchTheTypedNameOneByOne() throws {
        let home = try Home()
        defer { home.remove() }
        try home.write(
            ".ssh/config",
            """
            Host *.example !bad.example
              User good
            Host bad.example
              User bad
            Host h?st a,b
              Port 2001
            Host UPPER
              Port 2002
            Host !*.example *
              IdentitiesOnly yes
            Host *
              User last
            """)
        #expect(try home.resolve("a.example").user == "good")
        #expect(try home.resolve("a.example").identitiesOnly == nil)
        #expect(try home.resolve("bad.example").user == "bad")
        #expect(try home.resolve("other").user == "last")
        #expect(try home.resolve("other").identitiesOnly == true)
        #expect(try home.resolve("host").port == 2001)
        #expect(try home.resolve("hoost").port == nil)
        // Host patterns are single patterns: a comma is a character, not a list separator.
        #expect(try home.resolve("a").port == nil)
        #expect(try home.resolve("a,b").port == 2001)
        // And they compare case-sensitively with what was typed, while the name is lowercased.
        #expect(try home.resolve("UPPER").port == 2002)
        #expect(try home.resolve("upper").port == nil)
    }

    // MARK: - Match

    @Test func matchCriteriaAreAndedAndSeeTheHostNameSoFar() throws {
        let home = try Home()
        defer { home.remove() }
        try home.write(
            ".ssh/config",
            """
            Host alias1
              HostName Real1.Example
            Match host real1.example
              User by-host
            Match originalhost alias1
              Port 2001
            Match originalhost real1.example
              Port 2002
            Match user by-host
              IdentityFile ~/.ssh/by-user
            Match localuser alice,bob
              ConnectTimeout 7
            Match localuser Alice
              ConnectTimeout 8
            Match !host *.example
              StrictHostKeyChecking no
            Match host *.example user nomatch
              IdentitiesOnly yes
            Match host=*.EXAMPLE !originalhost other # criteria cut like keywords
              IdentityAgent none
            Match all
              User fallback
            """)
        let alias = try home.resolve("alias1")
        #expect(alias.hostName == "real1.example")
        #expect(alias.user == "by-host")
        #expect(alias.port == 2001)
        #expect(alias.identityFiles == [home.path + "/.ssh/by-user"])
        #expect(alias.connectTimeout == 7)
        #expect(alias.strictHostKeyChecking == nil)
        #expect(alias.identitiesOnly == nil)
        #expect(alias.identityAgent == "none")
        let other = try home.resolve("other")
        #expect(other.user == "fallback")
        #expect(other.port == nil)
        #expect(other.strictHostKeyChecking == "no")
        #expect(other.identityAgent == nil)
        #expect(try home.resolve("x", localUser: "Alice").connectTimeout == 8)
    }

    @Test func matchAllAndBadConditions() throws {
        let home = try Home()
        defer { home.remove() }
        let config = home.folder.file(".ssh/config")
        func bad(_ text: String) throws -> String? {
            try home.write(".ssh/config", text)
            return home.error("h")?.message
        }
        try home.write(".ssh/config", "Match !all\n  User no\nMatch all # comment\n  User yes\n")
        #expect(try home.resolve("h").user == "yes")
        // 9.2 lets `all` follow one criterion, which then decides.
        try home.write(".ssh/config", "Match host other all\n  User no\nMatch host h all\n  User yes\n")
        #expect(try home.resolve("h").user == "yes")
        #expect(try bad("Match all host h\n") == "Bad Match condition: 'all' cannot be combined with other Match attributes")
        #expect(
            try bad("Match host a user b all\n") == "Bad Match condition: 'all' cannot be combined with other Match attributes")
        #expect(try bad("Match host\n") == "Bad Match condition: Missing Match criteria for host")
        #expect(try bad("Match host # x\n") == "Bad Match condition: Missing Match criteria for host")
        #expect(try bad("Match # x\n") == "Bad Match condition: One or more attributes required for Match")
        #expect(try bad("Match hots h\n") == "Bad Match condition: Unsupported Match attribute hots")
        #expect(home.error("h")?.file == config)
        #expect(home.error("h")?.line == 1)
    }

    @Test func matchFinalRereadsWithTheResolvedName() throws {
        let home = try Home()
        defer { home.remove() }
        try home.write(
            ".ssh/config",
            """
            Host alias-f
              HostName Final.Example
            Match final host final.example
              User final-user
            Match canonical
              Port 2345
            Match !canonical
              IdentityFile ~/.ssh/not-canonical
            Host final.example
              ConnectTimeout 3
            Host *
              IdentityFile ~/.ssh/all
            """)
        let final = try home.resolve("alias-f")
        #expect(final.user == "final-user")
        #expect(final.port == 2345)
        // The final pass matches Host lines against the resolved name, as ssh does.
        #expect(final.connectTimeout == 3)
        #expect(final.identityFiles == [home.path + "/.ssh/not-canonical", home.path + "/.ssh/all"])
        // Without `final` anywhere there is one pass, and `canonical` never matches.
        try home.write(".ssh/config", "Match canonical\n  Port 2345\nMatch !canonical\n  Port 2346\n")
        #expect(try home.resolve("x").port == 2346)
    }

    @Test func matchExecIsNeverRunAndRefusedOnlyWhenItWouldDecide() throws {
        let home = try Home()
        defer { home.remove() }
        let marker = home.folder.file("ran")
        try home.write(
            ".ssh/config",
            """
            Match host other exec "touch \(marker)"
              User never
            Match exec "touch \(marker)" host other
              User never
            Host *
              User u
            """)
        #expect(try home.resolve("h").user == "u")
        #expect(home.error("other")?.line == 1)
        #expect(home.error("other")?.message.contains("Match exec touch") == true)
        #expect(!FileManager.default.fileExists(atPath: marker))
        // In a file included where the block does not apply, the result cannot matter.
        try home.write(".ssh/config", "Host nothing\n  Include inc\nHost *\n  User u\n")
        try home.write(".ssh/inc", "Match exec \"touch \(marker)\"\n  User never\n")
        #expect(try home.resolve("h").user == "u")
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    // MARK: - Include

    @Test func includeGlobsAreSortedAndRelativeToDotSSH() throws {
        let home = try Home()
        defer { home.remove() }
        let absolute = try home.write("elsewhere/absolute.conf", "IdentityFile ~/.ssh/from-absolute\n")
        try home.write(
            ".ssh/config",
            """
            Include conf.d/*.conf ~/tilde.conf
            Include \(absolute) missing.conf nomatch-*.conf
            """)
        try home.write(".ssh/conf.d/20-b.conf", "IdentityFile ~/.ssh/20\nUser from-20\n")
        try home.write(".ssh/conf.d/10-a.conf", "IdentityFile ~/.ssh/10\n")
        try home.write(".ssh/conf.d/B-upper.conf", "IdentityFile ~/.ssh/B\n")
        try home.write(".ssh/conf.d/a-lower.conf", "IdentityFile ~/.ssh/a\n")
        try home.write(".ssh/conf.d/ignored.txt", "User not-a-conf\n")
        try home.write("tilde.conf", "IdentityFile ~/.ssh/tilde\nUser from-tilde\n")
        let resolved = try home.resolve("h")
        #expect(resolved.user == "from-20")
        #expect(
            resolved.identityFiles
                == ["10", "20", "B", "a", "tilde", "from-absolute"].map { home.path + "/.ssh/" + $0 })
    }

    @Test func includeInsideABlockAppliesOnlyWhenTheBlockDoes() throws {
        let home = try Home()
        defer { home.remove() }
        try home.write(
            ".ssh/config",
            """
            Host inc
              Include host-only.conf
              IdentityFile ~/.ssh/after-include
            Host other
              Include host-only.conf
            Host *
              User fallback
            """)
        // The included file's Host line changes what applies only inside that file.
        try home.write(".ssh/host-only.conf", "User from-include\nPort 2121\nHost never\n  Port 1\n")
        let inc = try home.resolve("inc")
        #expect(inc.user == "from-include")
        #expect(inc.port == 2121)
        #expect(inc.identityFiles == [home.path + "/.ssh/after-include"])
        let plain = try home.resolve("plain")
        #expect(plain.user == "fallback")
        #expect(plain.port == nil)
        // Read for its errors even where it does not apply.
        try home.write(".ssh/host-only.conf", "Bogus 1\n")
        #expect(home.error("plain")?.file == home.folder.file(".ssh/host-only.conf"))
    }

    @Test func aMissingFileResolvesToNothingSet() throws {
        let home = try Home()
        defer { home.remove() }
        #expect(try home.resolve("h", ".ssh/absent") == SSHConfigResolution())
    }

    @Test func includedFilesOthersCanWriteAreRefused() throws {
        let home = try Home()
        defer { home.remove() }
        try home.write(".ssh/config", "\nInclude inc\n")
        try home.write(".ssh/inc", "User x\n", mode: 0o666)
        let error = home.error("h")
        #expect(error?.line == 2)
        #expect(error?.message == "Bad owner or permissions on \(home.folder.file(".ssh/inc"))")
    }

    // MARK: - Values

    @Test func tokensExpandAsEachOptionAllows() throws {
        let home = try Home()
        defer { home.remove() }
        try home.write(
            ".ssh/config",
            """
            Host k1
              HostName %h.Lab
              User remote
              Port 2022
              IdentityFile ~/.ssh/id_%h_%r_%p_%u_%n_%%
              IdentityFile %d/.ssh/id_${LABCTL_KEY}
              IdentityFile ~root/x
              IdentityFile none
              UserKnownHostsFile ~/.ssh/kh_%k %d/kh_%h
              HostKeyAlias Alias.K1
              IdentityAgent ~/agent-%C.sock
            Host k2
              IdentityFile ~/.ssh/id_%h_%r_%p
              IdentityAgent ${LABCTL_AGENT}
            Host k3
              IdentityAgent $SSH_AUTH_SOCK
            """)
        let environment = ["LABCTL_KEY": "env", "LABCTL_AGENT": "/run/agent"]
        let k1 = try home.resolve("K1", environment: environment)
        #expect(k1.hostName == nil)
        let k1Lower = try home.resolve("k1", environment: environment)
        #expect(k1Lower.hostName == "k1.lab")
        #expect(
            k1Lower.identityFiles == [
                home.path + "/.ssh/id_k1.lab_remote_2022_alice_k1_%", home.path + "/.ssh/id_env",
                (SSHConfigSyntax.passwdHome(of: "root") ?? "?") + "/x", "none",
            ])
        #expect(k1Lower.userKnownHostsFiles == [home.path + "/.ssh/kh_alias.k1", home.path + "/kh_k1.lab"])
        let hostName = SSHConfigReader.localHostName()
        let hash = SSHConfigReader.sha1Hex(hostName + "k1.lab" + "2022" + "remote")
        #expect(k1Lower.identityAgent == home.path + "/agent-\(hash).sock")
        // The remote host is the typed name lowercased, the user the local one, the port 22.
        let k2 = try home.resolve("k2", environment: environment)
        #expect(k2.identityFiles == [home.path + "/.ssh/id_k2_alice_22"])
        #expect(k2.identityAgent == "/run/agent")
        #expect(try home.resolve("k3", environment: environment).identityAgent == "$SSH_AUTH_SOCK")
        // An unset variable stops ssh when it reads an IdentityAgent line, applied or not.
        #expect(home.error("k2")?.message.hasPrefix("Invalid environment expansion ${LABCTL_AGENT}") == true)
    }

    @Test func tokensAnOptionDoesNotKnowAreErrorsAtTheirLine() throws {
        let home = try Home()
        defer { home.remove() }
        try home.write(".ssh/config", "Host a\n  HostName %h.%r\nHost b\n  IdentityFile ~/%q\nHost c\n  HostName x%\n")
        #expect(home.error("a") == SSHConfigError(file: home.folder.file(".ssh/config"), line: 2, message: "HostName \"%h.%r\": unknown token %r"))
        #expect(home.error("b")?.line == 4)
        #expect(home.error("b")?.message == "IdentityFile \"~/%q\": unknown token %q")
        #expect(home.error("c")?.message.hasPrefix("HostName \"x%\": a % at the end") == true)
        // Nothing is expanded in a block that does not apply.
        #expect(try home.resolve("d") == SSHConfigResolution())
    }

    @Test func hostNamesAreLowercasedAndAddressesCanonical() throws {
        let home = try Home()
        defer { home.remove() }
        try home.write(
            ".ssh/config",
            "Host a1\n HostName 127.1\nHost a2\n HostName FE80::1\nHost a3\n HostName UPPER.Example\nHost a4\n HostName 0::1\n")
        #expect(try home.resolve("a1").hostName == "127.0.0.1")
        #expect(try home.resolve("a2").hostName == "FE80::1")
        #expect(try home.resolve("a3").hostName == "upper.example")
        #expect(try home.resolve("a4").hostName == "::1")
    }

    @Test func portsAndTimeouts() throws {
        let home = try Home()
        defer { home.remove() }
        func value(_ text: String) throws -> SSHConfigResolution {
            try home.write(".ssh/config", text)
            return try home.resolve("h")
        }
        #expect(try value("Port 65535\n").port == 65535)
        #expect(try value("Port +22\n").port == 22)
        #expect(try value("Port ssh\n").port == 22)
        for bad in ["0", "65536", "abc", "-1", "22x", "\"\""] {
            try home.write(".ssh/config", "\n\nPort \(bad)\n")
            let error = home.error("h")
            #expect(error?.line == 3)
            #expect(error?.message == (bad == "\"\"" ? "Missing argument." : "Bad port '\(bad)'."))
        }
        // A bad value is an error even in a block that does not apply.
        try home.write(".ssh/config", "Host other\n  Port 99999\n")
        #expect(home.error("h")?.line == 2)
        #expect(try value("ConnectTimeout 1h30m\n").connectTimeout == 5400)
        #expect(try value("ConnectTimeout 10S\n").connectTimeout == 10)
        #expect(try value("ConnectTimeout 0\n").connectTimeout == 0)
        // "none" leaves the option unset, so a later line still sets it.
        #expect(try value("ConnectTimeout none\nConnectTimeout 4\n").connectTimeout == 4)
        for bad in ["1x", "-5", "NONE", "9999999999"] {
            try home.write(".ssh/config", "ConnectTimeout \(bad)\n")
            #expect(home.error("h")?.message == "invalid time value.")
        }
    }

    @Test func strictHostKeyCheckingIsNormalised() throws {
        let home = try Home()
        defer { home.remove() }
        let cases = [
            "yes": "yes", "TRUE": "yes", "no": "no", "false": "no", "off": "no", "ask": "ask", "Accept-New": "accept-new",
        ]
        for (written, read) in cases {
            try home.write(".ssh/config", "StrictHostKeyChecking \(written)\nStrictHostKeyChecking ask\n")
            #expect(try home.resolve("h").strictHostKeyChecking == read)
        }
        try home.write(".ssh/config", "StrictHostKeyChecking maybe\n")
        #expect(home.error("h")?.message == "unsupported option \"maybe\".")
        try home.write(".ssh/config", "IdentitiesOnly on\n")
        #expect(home.error("h")?.message == "unsupported option \"on\".")
    }

    @Test func userKnownHostsFileTakesSeveralFilesOrNone() throws {
        let home = try Home()
        defer { home.remove() }
        try home.write(
            ".ssh/config",
            "Host a\n  UserKnownHostsFile ~/kh1 \"~/kh 2\" /abs/kh3\nHost b\n  UserKnownHostsFile NONE\nHost *\n  UserKnownHostsFile ~/late\n")
        #expect(try home.resolve("a").userKnownHostsFiles == [home.path + "/kh1", home.path + "/kh 2", "/abs/kh3"])
        #expect(try home.resolve("b").userKnownHostsFiles == ["NONE"])
        try home.write(".ssh/config", "UserKnownHostsFile ~/kh none\n")
        #expect(home.error("h")?.message == "keyword userknownhostsfile \"none\" argument must appear alone.")
    }

    @Test func proxyJumpAndProxyCommandExcludeEachOther() throws {
        let home = try Home()
        defer { home.remove() }
        try home.write(
            ".ssh/config",
            """
            Host j1
              ProxyJump user@jump:2222,other # a comment
            Host j2
              ProxyJump NONE
              ProxyCommand nc %h %p
            Host j3
              ProxyCommand none
              ProxyJump ignored
            Host j4
              ProxyCommand ssh -W %h:%p bastion # kept: the rest of the line is the command
            Host j5
              ProxyJump ssh://admin@bastion.example:2200,[fe80::1]:22
            Host *
              ProxyJump fallback
            """)
        let j1 = try home.resolve("j1")
        #expect(j1.proxyJump == "user@jump:2222,other")
        #expect(j1.proxyCommand == nil)
        #expect(j1.unsupported == [])
        let j2 = try home.resolve("j2")
        #expect(j2.proxyJump == "none")
        #expect(j2.proxyCommand == nil)
        #expect(j2.unsupported == ["proxycommand"])
        let j3 = try home.resolve("j3")
        #expect(j3.proxyJump == nil)
        #expect(j3.proxyCommand == "none")
        let j4 = try home.resolve("j4")
        #expect(j4.proxyCommand == "ssh -W %h:%p bastion # kept: the rest of the line is the command")
        #expect(j4.proxyJump == nil)
        #expect(try home.resolve("j5").proxyJump == "ssh://admin@bastion.example:2200,[fe80::1]:22")
        #expect(try home.resolve("j6").proxyJump == "fallback")
        for bad in ["a,,b", "@host", "host:0", "host:99999", "ssh://host/path", "ssh://-bad", "a,", "host/x", "ssh://u%zz@h"] {
            try home.write(".ssh/config", "ProxyJump \(bad)\n")
            #expect(home.error("h")?.message == "Invalid ProxyJump \"\(bad)\"", "\(bad)")
        }
    }

    @Test func identityAgentNamesAreChecked() throws {
        let home = try Home()
        defer { home.remove() }
        for bad in ["$", "$BAD-NAME", "${}", "${UNCLOSED"] {
            try home.write(".ssh/config", "IdentityAgent \(bad)\n")
            #expect(home.error("h")?.message.hasPrefix("Invalid environment") == true, "\(bad)")
        }
        try home.write(".ssh/config", "IdentityAgent SSH_AUTH_SOCK\nIdentityAgent none\n")
        #expect(try home.resolve("h").identityAgent == "SSH_AUTH_SOCK")
    }

    // MARK: - Keywords

    @Test func unknownKeywordsAreErrorsUnlessIgnored() throws {
        let home = try Home()
        defer { home.remove() }
        try home.write(".ssh/config", "User a\n\nHost other\n  Usre b\n")
        #expect(
            home.error("h")
                == SSHConfigError(file: home.folder.file(".ssh/config"), line: 4, message: "Bad configuration option: usre"))
        #expect(home.error("h")?.description == "\(home.folder.file(".ssh/config")) line 4: Bad configuration option: usre")
        // IgnoreUnknown covers only what follows it, and only where it applies.
        try home.write(".ssh/config", "UseKeychain yes\nIgnoreUnknown UseKeychain\n")
        #expect(home.error("h")?.line == 1)
        try home.write(".ssh/config", "Host other\n  IgnoreUnknown UseKeychain\nHost *\n  UseKeychain yes\n")
        #expect(home.error("h")?.line == 4)
        try home.write(".ssh/config", "IgnoreUnknown usekey*,Foo\nUseKeychain yes\nFOO bar baz\n")
        #expect(try home.resolve("h").unsupported == ["usekeychain", "foo"])
    }

    @Test func unsupportedKeywordsAreListedOnceWhereTheyApply() throws {
        let home = try Home()
        defer { home.remove() }
        try home.write(
            ".ssh/config",
            """
            Host web
              ForwardAgent yes
              ServerAliveInterval 30
              ProxyCommand nc %h %p
            Host other
              ControlMaster auto
            Host *
              forwardagent no
              Protocol 2
              RSAAuthentication yes
              LogLevel DEBUG
              User u
              HostName h.example
            """)
        let web = try home.resolve("web")
        #expect(web.unsupported == ["forwardagent", "serveraliveinterval", "proxycommand", "protocol", "rsaauthentication", "loglevel"])
        #expect(web.proxyCommand == "nc %h %p")
        #expect(try home.resolve("x").unsupported == ["forwardagent", "protocol", "rsaauthentication", "loglevel"])
    }

    // MARK: - Errors

    @Test func errorsNameTheFileAndLine() throws {
        let home = try Home()
        defer { home.remove() }
        let config = home.folder.file(".ssh/config")
        try home.write(".ssh/config", "Host *\n  User u\n  Portt 22\n")
        #expect(home.error("h") == SSHConfigError(file: config, line: 3, message: "Bad configuration option: portt"))
        try home.write(".ssh/config", "Host *\n  Port 70000\n")
        #expect(home.error("h") == SSHConfigError(file: config, line: 2, message: "Bad port '70000'."))
        #expect(home.error("h")?.description == "\(config) line 2: Bad port '70000'.")
        // A file that includes itself goes 16 deep, then stops at the Include line.
        try home.write(".ssh/config", "User u\nInclude config\n")
        let loop = home.error("h")
        #expect(loop?.file == config)
        #expect(loop?.line == 2)
        #expect(loop?.message.hasPrefix("Too many recursive configuration includes") == true)
        // Sixteen files deep below the config is the most.
        for level in 0..<15 { try home.write(".ssh/level\(level)", "Include level\(level + 1)\n") }
        try home.write(".ssh/level15", "User deep\n")
        try home.write(".ssh/config", "Include level0\n")
        #expect(try home.resolve("h").user == "deep")
        try home.write(".ssh/level15", "Include level16\n")
        try home.write(".ssh/level16", "User too-deep\n")
        #expect(home.error("h")?.file == home.folder.file(".ssh/level15"))
    }

    // MARK: - Beside ssh -G

    static let ssh = "/usr/bin/ssh"

    struct SSHGFailed: Error, CustomStringConvertible {
        var host: String
        var stderr: String
        var description: String { "ssh -G \(host) failed: \(stderr)" }
    }

    /// The passwd entry ssh takes ~, %d and %u from (it ignores $HOME for those).
    static func passwdEntry() -> (name: String, home: String)? {
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        return buffer.withUnsafeMutableBufferPointer { storage -> (String, String)? in
            guard let base = storage.baseAddress, getpwuid_r(getuid(), &entry, base, storage.count, &found) == 0,
                found != nil, let name = entry.pw_name, let dir = entry.pw_dir
            else { return nil }
            return (String(cString: name), String(cString: dir))
        }
    }

    struct Case {
        var config = ".ssh/config"
        var files: [String: String]
        var hosts: [String]
    }

    /// Each case is a config (`.ssh/config` unless said) and the hosts to resolve from it. The
    /// local user name is put in for LOCALUSER.
    static func cases(localUser: String) -> [Case] {
        [
            Case(
                files: [
                    ".ssh/config": """
                    # aliases, HostName with %h, Host * defaults after specific hosts
                    Host web1 web2
                        HostName %h.Lab.example
                        User deploy
                    Host db
                        HostName 10.0.0.5
                        Port 2222
                    Host *.lab.example
                        User other
                    Host svc
                        Port ssh
                    Host *
                        User fallback
                        Port 2200
                    """
                ], hosts: ["web1", "web2", "db", "x.lab.example", "unknown", "WEB1", "svc"]),
            Case(
                files: [
                    ".ssh/config": """
                    HOST=alpha
                    \tHostName = alpha.internal   # a comment after the value
                    \tUSER="deploy user"
                    \tport=2200
                    \tIdentityFile "~/keys/with space/id" # quoted
                    \tIdentityFile ~/keys/esc\\ aped
                    \tIdentityFile 'single quoted'
                      \t# an indented comment

                    "Host" beta
                      IdentitiesOnly=yes
                    Host *
                      ConnectTimeout = 12
                    """
                ], hosts: ["alpha", "beta", "gamma"]),
            Case(
                files: [
                    ".ssh/config": """
                    Host k1
                      HostName Key.Host.example
                      User root2
                      Port 2022
                      IdentityFile ~/.ssh/id_%h_%r_%p
                      IdentityFile %d/.ssh/id_%u
                      IdentityFile ~/.ssh/id_%n_%l_%L
                      IdentityFile ~/.ssh/id_%C_%i_%k
                      IdentityFile ~/.ssh/id_%h_%r_%p
                      IdentityFile ~/.ssh/id_${LABCTL_SSHCONFIG_KEY}
                      IdentitiesOnly yes
                    Host k2
                      HostKeyAlias Alias-K2
                      IdentityFile ~/.ssh/k2_%k_%%
                      IdentityFile none
                    Host *
                      IdentityFile ~/.ssh/common
                      IdentitiesOnly no
                    """
                ], hosts: ["k1", "k2", "other"]),
            Case(
                files: [
                    ".ssh/config": """
                    Host none-agent
                      IdentityAgent none
                    Host env-agent
                      IdentityAgent SSH_AUTH_SOCK
                    Host path-agent
                      IdentityAgent ~/.ssh/agent-%h-%u-%r.sock
                    Host var-agent
                      IdentityAgent ${LABCTL_SSHCONFIG_AGENT}/agent.sock
                    Host legacy-agent
                      IdentityAgent $LABCTL_SSHCONFIG_AGENT
                    """
                ], hosts: ["none-agent", "env-agent", "path-agent", "var-agent", "legacy-agent", "no-agent"]),
            Case(
                files: [
                    ".ssh/config": """
                    Host j1
                      ProxyJump user@jump:2222,other
                    Host j2
                      ProxyJump none
                      ProxyJump second
                    Host j3
                      ProxyCommand none
                      ProxyJump ignored.example
                    Host j4
                      ProxyJump first.example # comment
                      ProxyCommand nc %h %p
                    Host *
                      ProxyJump fallback-jump:2200
                    """
                ], hosts: ["j1", "j2", "j3", "j4", "other"]),
            Case(
                files: [
                    ".ssh/config": """
                    Host k-a
                      UserKnownHostsFile ~/.ssh/kh_a %d/.ssh/kh_%h /tmp/kh_%r_%p
                      StrictHostKeyChecking accept-new
                    Host k-b
                      UserKnownHostsFile none
                      StrictHostKeyChecking no
                    Host k-c
                      StrictHostKeyChecking off
                    Host k-d
                      StrictHostKeyChecking true
                    Host k-e
                      StrictHostKeyChecking FALSE
                    Host k-f
                      StrictHostKeyChecking ask
                    Host k-g
                      UserKnownHostsFile ~/.ssh/kh_g
                    Host k-*
                      UserKnownHostsFile ~/.ssh/kh_default
                      StrictHostKeyChecking yes
                    """
                ], hosts: ["k-a", "k-b", "k-c", "k-d", "k-e", "k-f", "k-g", "k-z", "other"]),
            Case(
                files: [
                    ".ssh/config": """
                    Host t1
                      ConnectTimeout 10
                    Host t2
                      ConnectTimeout 1m30s
                    Host t3
                      ConnectTimeout none
                    Host t4
                      ConnectTimeout 0
                    Host t*
                      ConnectTimeout 5
                    """
                ], hosts: ["t1", "t2", "t3", "t4", "t5", "x"]),
            Case(
                files: [
                    ".ssh/config": """
                    Host *.example !bad.example
                      User good
                    Host !*.example *
                      User nonexample
                    Host bad.example
                      User bad
                      Port 2003
                    Host h?st
                      Port 2001
                    Host *
                      User last
                    """
                ], hosts: ["a.example", "bad.example", "x.com", "host", "hoost", "Bad.example"]),
            Case(
                files: [
                    ".ssh/config": """
                    Host alias1
                      HostName Real1.Example
                    Match host real1.example
                      User by-host
                    Match originalhost alias1
                      Port 2001
                    Match originalhost real1.example
                      Port 2002
                    Match user by-host
                      IdentityFile ~/.ssh/by-user
                    Match localuser \(localUser)
                      ConnectTimeout 7
                    Match !host *.example
                      StrictHostKeyChecking no
                    Match host *.example user nomatch
                      IdentitiesOnly yes
                    Match host=*.EXAMPLE !originalhost other
                      IdentityAgent none
                    Match all
                      User fallback
                    """
                ], hosts: ["alias1", "real1.example", "other", "z.example"]),
            Case(
                config: "cfg-include",
                files: [
                    "cfg-include": """
                    Include conf.d/*.conf
                    Host inc
                      Include ~/extra/host-only.conf
                      IdentityFile ~/.ssh/after-include
                    Host *
                      Include missing-file.conf nomatch-*.conf "~/extra/quoted name.conf"
                    """,
                    ".ssh/conf.d/10-a.conf": "Host a-host\n  User from-10\n",
                    ".ssh/conf.d/20-b.conf": "Host a-host b-host\n  User from-20\n  Port 2020\n",
                    ".ssh/conf.d/05-first.conf": "Host b-host\n  HostName b.real\n",
                    ".ssh/conf.d/B-upper.conf": "Host b-host\n  IdentityFile ~/.ssh/upper\n",
                    ".ssh/conf.d/a-lower.conf": "Host b-host\n  IdentityFile ~/.ssh/lower\n",
                    "extra/host-only.conf": "User from-host-only\nPort 2121\nHost never\n  User never\n",
                    "extra/quoted name.conf": "ConnectTimeout 33\n",
                ], hosts: ["a-host", "b-host", "inc", "other"]),
            Case(
                config: "cfg-nested",
                files: [
                    "cfg-nested": """
                    Host outer
                      Include nested/level1.conf
                      User outer-user
                    Host *
                      Port 2999
                    """,
                    ".ssh/nested/level1.conf": "Include nested/level2.conf\nMatch host nothing\n  Port 1111\n",
                    ".ssh/nested/level2.conf": "IdentityFile ~/.ssh/from-level2\n",
                ], hosts: ["outer", "else"]),
            Case(
                files: [
                    ".ssh/config": """
                    Host alias-f
                      HostName Final.Example
                    Match final host final.example
                      User final-user
                    Match canonical
                      Port 2345
                    Match !canonical
                      IdentityFile ~/.ssh/not-canonical
                    Host final.example
                      ConnectTimeout 3
                    Host *
                      IdentityFile ~/.ssh/all
                    """
                ], hosts: ["alias-f", "other"]),
            Case(
                files: [
                    ".ssh/config": """
                    IgnoreUnknown UseKeychain,Foo*
                    Host *
                      UseKeychain yes
                      FooBar 1
                      ForwardAgent yes
                      ServerAliveInterval 30
                      Protocol 2
                      User u14
                    """
                ], hosts: ["any"]),
            Case(
                files: [
                    ".ssh/config": """
                    Host a1
                      HostName 127.1
                    Host a2
                      HostName FE80::1
                    Host a3
                      HostName 0x7f000001
                    Host a4
                      HostName UPPER.Example
                    Host a5
                      HostName 0::1
                    """
                ], hosts: ["a1", "a2", "a3", "a4", "a5", "MixedCase.Example"]),
            Case(
                files: [
                    ".ssh/config": """
                    Host pj
                      # parse_jump's trim cuts at the first space
                      ProxyJump jump-a jump-b
                    Match host other all
                      User no
                    Match host="pj" user=\(localUser)
                      Port 2424
                    Match all ""
                      ConnectTimeout 44
                     "" User ignored
                    =IdentitiesOnly yes
                    """
                ], hosts: ["pj", "other"]),
        ]
    }

    static func sshOutput(_ arguments: [String], home: String, environment: [String: String]) throws -> LocalResult {
        try runLocal([ssh] + arguments, environment: ["HOME": home].merging(environment) { $1 }, check: false)
    }

    /// `ssh -G` as keyword → values (a keyword printed once per value has several).
    static func sshG(config: String, host: String, home: String, environment: [String: String]) throws -> [String: [String]] {
        let result = try sshOutput(["-G", "-F", config, host], home: home, environment: environment)
        guard result.succeeded else { throw SSHGFailed(host: host, stderr: result.stderr) }
        var values: [String: [String]] = [:]
        for line in result.stdout.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard let key = parts.first else { continue }
            values[String(key), default: []].append(parts.count > 1 ? String(parts[1]) : "")
        }
        return values
    }

    /// The IdentityFile paths ssh loads, expanded (ssh -G prints them as written): `ssh -v`
    /// through a ProxyCommand that exits at once, so nothing is connected to.
    static func sshLoadedIdentityFiles(config: String, host: String, home: String, environment: [String: String]) throws
        -> [String]
    {
        let result = try sshOutput(
            [
                "-v", "-F", config, "-o", "ProxyCommand=false", "-o", "BatchMode=yes", "-o", "CertificateFile=/dev/null",
                host,
            ], home: home, environment: environment)
        let prefix = "debug1: identity file "
        // ssh's log lines end in \r\n, one Character in Swift.
        return result.stderr.split(whereSeparator: \.isNewline).compactMap { line -> String? in
            guard line.hasPrefix(prefix), let type = line.range(of: " type ", options: .backwards) else { return nil }
            return String(line[line.index(line.startIndex, offsetBy: prefix.count)..<type.lowerBound])
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: ssh), "needs OpenSSH's ssh at /usr/bin/ssh"))
    func resolutionsAgreeWithSSHG() throws {
        let home = try Home()
        defer { home.remove() }
        let user = try #require(Self.passwdEntry())
        let environment = ["LABCTL_SSHCONFIG_KEY": "from-env", "LABCTL_SSHCONFIG_AGENT": home.path + "/agent-dir"]
        var mismatches: [String] = []
        var compared = 0
        for testCase in Self.cases(localUser: user.name) {
            for (name, text) in testCase.files { try home.write(name, text) }
            let config = home.folder.file(testCase.config)
            for host in testCase.hosts {
                let ours = try SSHConfig.resolve(
                    host: host, path: config, home: user.home, localUser: user.name,
                    environment: ["HOME": home.path].merging(environment) { $1 })
                let theirs = try Self.sshG(config: config, host: host, home: home.path, environment: environment)
                func check(_ key: String, _ expected: [String]) {
                    compared += 1
                    let got = theirs[key] ?? []
                    if got != expected {
                        mismatches.append("\((config as NSString).lastPathComponent) \(host) \(key): ours \(expected), ssh -G \(got)")
                    }
                }
                check("hostname", [ours.hostName ?? host.lowercased()])
                check("user", [ours.user ?? user.name])
                check("port", [String(ours.port ?? 22)])
                check("identitiesonly", [ours.identitiesOnly == true ? "yes" : "no"])
                check("identityagent", ours.identityAgent.map { [$0] } ?? [])
                check("proxyjump", ours.proxyJump.flatMap { $0 == "none" ? nil : [$0] } ?? [])
                check("proxycommand", ours.proxyCommand.flatMap { $0.lowercased() == "none" ? nil : [$0] } ?? [])
                check(
                    "userknownhostsfile",
                    [
                        ours.userKnownHostsFiles.isEmpty
                            ? "\(user.home)/.ssh/known_hosts \(user.home)/.ssh/known_hosts2"
                            : ours.userKnownHostsFiles.joined(separator: " ")
                    ])
                let strict = ["yes": "true", "no": "false"]
                check("stricthostkeychecking", [ours.strictHostKeyChecking.map { strict[$0] ?? $0 } ?? "ask"])
                check("connecttimeout", [ours.connectTimeout.map(String.init) ?? "none"])
                if ours.identityFiles.isEmpty {
                    check(
                        "identityfile",
                        ["id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_xmss", "id_dsa"].map {
                            "~/.ssh/" + $0
                        })
                } else {
                    compared += 1
                    #expect(theirs["identityfile"]?.count == ours.identityFiles.count, "\(host)")
                    let loaded = try Self.sshLoadedIdentityFiles(config: config, host: host, home: home.path, environment: environment)
                    let expected = ours.identityFiles.filter { $0.lowercased() != "none" }
                    if loaded != expected {
                        mismatches.append("\(host) identity files: ours \(expected), ssh -v \(loaded)")
                    }
                }
            }
            for name in testCase.files.keys { try? FileManager.default.removeItem(atPath: home.folder.file(name)) }
        }
        #expect(mismatches == [])
        #expect(compared > 400)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: ssh), "needs OpenSSH's ssh at /usr/bin/ssh"))
    func configsSSHRefusesAreRefusedAtTheSameLine() throws {
        let home = try Home()
        defer { home.remove() }
        let configs = [
            "Host *\n  User u\n  Portt 22\n",
            "Host other\n  Port 70000\n",
            "\nUser a b\n",
            "Match all host h\n",
            "Host x\n  ProxyJump a,,b\n",
            "ConnectTimeout 5x\n",
            "IdentityAgent ${LABCTL_SSHCONFIG_UNSET}\n",
            "User \"open\n",
            "UserKnownHostsFile a none\n",
            "UseKeychain yes\nIgnoreUnknown UseKeychain\n",
            "Match host \"\"\n",
            "Match all \"\" x\n",
        ]
        for text in configs {
            let config = try home.write(".ssh/config", text)
            let ours = home.error("h")
            #expect(ours != nil, "\(text)")
            let theirs = try Self.sshOutput(["-G", "-F", config, "h"], home: home.path, environment: [:])
            #expect(!theirs.succeeded, "\(text)")
            if let ours {
                // ssh says "FILE line N:" (or "FILE: line N:" for a bad keyword).
                #expect(
                    theirs.stderr.contains("\(config) line \(ours.line):") || theirs.stderr.contains("\(config): line \(ours.line):"),
                    "\(text): \(theirs.stderr)")
            }
        }
        // The include loop: ssh names no line, only the depth.
        let looping = try home.write(".ssh/config", "Include config\n")
        #expect(home.error("h")?.line == 1)
        let theirs = try Self.sshOutput(["-G", "-F", looping, "h"], home: home.path, environment: [:])
        #expect(theirs.stderr.contains("Too many recursive configuration includes"))
    }
}
