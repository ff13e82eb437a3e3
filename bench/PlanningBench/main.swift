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
        hosts.append(["name": "app\(index)", "address": "10.\(index / 65_536 % 256).\(index / 256 % 256).\(index % 256 + 1)", "roles": ["app"]])
    }
    object["hosts"] = hosts
    let text = try JSONSerialization.data(withJSONObject: object)
    return try InventoryLoader.parse(data: text, file: "bench-inventory.json", baseDirectory: repository)
}

func seconds(_ since: ContinuousClock.Instant) -> Double { (ContinuousClock.now - since).seconds }

let books = try ["provision.yml", "deploy.yml"].map { try PlaybookParser.parse(fileAt: playbooks.appendingPathComponent($0).path) }
let steps = books.map(\.steps.count).reduce(0, +)
print("planning the shipped playbooks (\(steps) steps) for every host, no host contacted")
print(String(format: "%7@  %9@  %9@  %9@  %9@  %14@", "hosts", "targets", "check", "compile", "total", "per host-step"))
for size in sizes {
    let inventory = try inventory(hosts: size)
    var start = ContinuousClock.now
    let runner = PlaybookRunner(inventory: inventory, options: RunOptions(playbookDirectory: playbooks.path))
    let targetsTime = seconds(start)
    start = ContinuousClock.now
    var problems = 0
    for book in books { problems += runner.validate(book).count }
    let checkTime = seconds(start)
    start = ContinuousClock.now
    let compiler = StepCompiler(playbookDirectory: playbooks.path)
    var compiled = 0
    for target in runner.targets {
        for book in books {
            for step in book.steps {
                if (try? compiler.operation(for: step.action, context: target.context)) != nil { compiled += 1 }
            }
        }
    }
    let compileTime = seconds(start)
    let total = targetsTime + checkTime + compileTime
    print(String(format: "%7d  %7.3f s  %7.3f s  %7.3f s  %7.3f s  %11.1f µs", size, targetsTime, checkTime, compileTime, total,
                 total / Double(size * steps) * 1e6) + (problems > 0 ? "  (\(problems) problems)" : ""))
    _ = compiled
}
