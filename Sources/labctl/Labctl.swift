import ArgumentParser

@main
struct Labctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "labctl",
        abstract: "Build a multi-host nginx + Node.js web lab over SSH, and prove it works.",
        discussion: """
            labctl reads inventory.json (which machines, how to reach them, the domain
            and the app) and runs the steps in playbooks/ on every host at once over SSH.

            First steps:
              labctl lab up             # boot the local lab (3 hosts here; needs root)
              labctl ping               # check that every host answers over SSH
              labctl exec all -- uptime  # run a command on every host

            Exit codes (every verb):
              0    success
              2    a command, step or check failed on a host
              3    a host was unreachable (connection, host key or login)
              4    bad input (inventory, playbook, arguments)
              5    this machine failed (the local lab, the hosts file)
              130  interrupted (Ctrl-C)
            """,
        subcommands: [Ping.self, Exec.self, Run.self, Provision.self, Deploy.self, Rollback.self, UpCommand.self, Verify.self, Hosts.self, Keys.self, LabCommand.self]
    )
}
