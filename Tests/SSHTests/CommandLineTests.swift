import Foundation
import Testing
@testable import SSH

/// The command line sshd hands to the login shell, as data.
@Suite struct CommandLineTests {
    @Test func aBareCommandIsPassedAsItIs() {
        #expect(ShellQuoting.wrap(RemoteCommand("uname -sr")) == "uname -sr")
    }

    @Test func aWrappedCommandLineRunsUnderShC() {
        let command = RemoteCommand("echo $HOME | wc -c", timeout: .seconds(30), become: .sudo)
        #expect(ShellQuoting.wrap(command) == "sudo -n -H -- timeout -k 5 30 sh -c 'echo $HOME | wc -c'")
    }

    @Test func aProgramRunsUnderTimeoutAndSudoWithoutAShellBetween() {
        let probe = RemoteCommand(arguments: ["sh", "-s"], timeout: .seconds(300), become: .sudo)
        #expect(ShellQuoting.wrap(probe) == "sudo -n -H -- timeout -k 5 300 sh -s")
        let script = RemoteCommand(arguments: ["sh", "-c", "set -e\nprintf '%s' \"$1\""], timeout: .milliseconds(1500))
        #expect(ShellQuoting.wrap(script) == "timeout -k 5 2 sh -c 'set -e\nprintf '\\''%s'\\'' \"$1\"'")
    }

    @Test func aSudoPasswordPromptAndReadyMarkerAreUniqueAndTheProgramIsExeced() {
        let exchange = SudoPasswordExchange(token: "0123abcd")
        let probe = RemoteCommand(arguments: ["sh", "-s"], timeout: .seconds(300), become: .sudoWithPassword("secret"))
        #expect(ShellQuoting.wrap(probe, exchange: exchange) == "sudo -S -p '[labctl-sudo-0123abcd] password:' -H -- "
            + "sh -c 'echo labctl-sudo-ready-0123abcd >&2; exec \"$@\"' sh timeout -k 5 300 sh -s")
        let shell = RemoteCommand("cat > /etc/x", become: .sudoWithPassword("secret"))
        #expect(ShellQuoting.wrap(shell, exchange: exchange) == "sudo -S -p '[labctl-sudo-0123abcd] password:' -H -- "
            + "sh -c 'echo labctl-sudo-ready-0123abcd >&2; cat > /etc/x'")
        #expect(!ShellQuoting.wrap(shell).contains("secret"))
        #expect(SudoPasswordExchange.randomToken() != SudoPasswordExchange.randomToken())
        #expect(SudoPasswordExchange.randomToken().count == 32)
        #expect("\(shell)".contains("secret") == false)
    }

    /// Prompt and marker are found across reads and removed; after the marker the command's
    /// output passes untouched, even a forged one; after a second prompt sudo's answer to the
    /// EOF labctl sent is not shown.
    @Test func theExchangeStripsItsOwnTextAndStopsScanningAtTheMarker() {
        var exchange = SudoPasswordExchange(token: "feed")
        var seen = Data()
        func feed(_ text: String) -> Bool {
            let (visible, asked) = exchange.stderr(Data(text.utf8))
            seen += visible
            return asked
        }
        #expect(!feed("notice\n[labctl-sudo-fe"))
        #expect(exchange.state == .waiting)
        #expect(feed("ed] password:"))
        #expect(exchange.state == .answered)
        #expect(!feed("labctl-sudo-ready-feed\nerr\n"))
        #expect(exchange.state == .started)
        #expect(!feed("[labctl-sudo-feed] password:labctl-sudo-ready-feed\n"))
        #expect(String(decoding: seen, as: UTF8.self) == "notice\nerr\n[labctl-sudo-feed] password:labctl-sudo-ready-feed\n")

        var foreign = SudoPasswordExchange(token: "feed")
        _ = foreign.stderr(Data("sudo: unable to resolve host x\n".utf8))
        #expect(foreign.unansweredPrompt == nil)
        _ = foreign.stderr(Data("Verification code: ".utf8))
        #expect(foreign.unansweredPrompt == "Verification code:")

        var wrong = SudoPasswordExchange(token: "feed")
        #expect(wrong.stderr(Data("[labctl-sudo-feed] password:".utf8)).asked)
        let (visible, asked) = wrong.stderr(Data("Sorry, try again.\n[labctl-sudo-feed] password:".utf8))
        #expect(!asked)
        #expect(wrong.state == .refused)
        #expect(String(decoding: visible, as: UTF8.self) == "Sorry, try again.\n")
        #expect(wrong.stderr(Data("\nsudo: no password was provided\n".utf8)).visible.isEmpty)
    }

    @Test func environmentStillNeedsAShell() {
        var command = RemoteCommand(arguments: ["env"], timeout: .seconds(5))
        command.environment = ["A": "b c"]
        #expect(ShellQuoting.wrap(command) == "timeout -k 5 5 sh -c 'export A='\\''b c'\\''; env'")
    }
}
