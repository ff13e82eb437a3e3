// Planning alone, with no host: the shipped provision and deploy playbooks checked and compiled
// for every host of inventories of 10, 100 and 1,000 hosts (HOSTS="10 100 1000" for others).
// Prints the time of each phase and the time per host and step, so that a reader sees whether
// planning grows linearly in hosts x steps. Asserts nothing: timings on these shared machines
// are figures, not pass/fail.
import Foundation
import LabEngine
import LabSpec
import SSH

let sizes = (ProcessInfo.processInfo.environment["HOSTS"] ?? "10 100 1000").split(separator: " ").compactMap { Int($0) }
let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let playbooks = repository.appendingPathComponent("playbooks")

/// The repository's inventory with `count` hosts: one proxy, the rest app servers.
func inventory(hosts count: Int) throws -> Inventory {
    let data = try Data(contentsOf: repository.appendingPathComponent("inventory.json"))
    var object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    object["lab"] = nil
    var hosts: [[String: Any]] = [["name": "proxy", "address": "10.0.0.1", "roles": ["proxy"]]]
    for index in 1..<count {
        hosts.append(["name": "app\(index)", "address": "10.\(index / 62_500 % 250).\(index / 250 % 250).\(index % 250 + 1)", "roles": ["app"]])
    }
    object["hosts"] = hosts
    let text = try JSONSerialization.data(withJSONObject: object)
    return try InventoryLoader.parse(data: text, file: "bench-inventory.json", baseDirectory: repository)
}

func seconds(_ since: ContinuousClock.Instant) -> Double { (ContinuousClock.now - since).seconds }

/// The engine benchmark's 10 steps (no template lists every host), then the shipped playbooks,
/// whose hosts-file and nginx templates list every host: their output, and so their rendering,
/// grows with the fleet on each host.
let workloads: [(String, [Playbook])] = try [
    ("bench/engine/labctl.yml", [PlaybookParser.parse(fileAt: repository.appendingPathComponent("bench/engine/labctl.yml").path)]),
    ("playbooks/provision.yml + deploy.yml", ["provision.yml", "deploy.yml"].map { try PlaybookParser.parse(fileAt: playbooks.appendingPathComponent($0).path) }),
]
func padded(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }

for (title, books) in workloads {
    let steps = books.map(\.steps.count).reduce(0, +)
    let directory = URL(fileURLWithPath: books[0].file).deletingLastPathComponent().path
    print("\(title): \(steps) steps checked and compiled for every host, no host contacted")
    print(["hosts", "targets", "check", "compile", "total", "per host-step"].enumerated().map { padded($1, $0 == 5 ? 14 : 9) }.joined(separator: "  "))
    for size in sizes {
        let inventory = try inventory(hosts: size)
        var start = ContinuousClock.now
        let runner = PlaybookRunner(inventory: inventory, options: RunOptions(playbookDirectory: directory))
        let targetsTime = seconds(start)
        start = ContinuousClock.now
        var problems = 0
        for book in books { problems += runner.validate(book).count }
        let checkTime = seconds(start)
        start = ContinuousClock.now
        let compiler = StepCompiler(playbookDirectory: directory)
        for target in runner.targets {
            for book in books {
                for step in book.steps { _ = try? compiler.operation(for: step.action, context: target.context) }
            }
        }
        let compileTime = seconds(start)
        let total = targetsTime + checkTime + compileTime
        let cells = [String(size)] + [targetsTime, checkTime, compileTime, total].map { String(format: "%.3f s", $0) }
            + [String(format: "%.1f µs", total / Double(size * steps) * 1e6)]
        print(cells.enumerated().map { padded($1, $0 == 5 ? 14 : 9) }.joined(separator: "  ") + (problems > 0 ? "  (\(problems) problems)" : ""))
    }
    print("")
}
