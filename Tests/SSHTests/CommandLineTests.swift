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

    @Test func environmentStillNeedsAShell() {
        var command = RemoteCommand(arguments: ["env"], timeout: .seconds(5))
        command.environment = ["A": "b c"]
        #expect(ShellQuoting.wrap(command) == "timeout -k 5 5 sh -c 'export A='\\''b c'\\''; env'")
    }
}
