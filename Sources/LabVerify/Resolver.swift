import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Name resolution as the user's programs do it (getaddrinfo: the hosts file, then DNS).
enum SystemResolver {
    enum Outcome: Sendable, Hashable {
        case addresses([String])
        case failed(String)
        case timedOut
    }

    /// getaddrinfo blocks, and a DNS server that does not answer can hold it for many seconds:
    /// it runs on its own thread and the caller stops waiting after `timeout`.
    static func resolve(_ name: String, timeout: Duration) async -> Outcome {
        let box = ResolutionBox()
        return await withCheckedContinuation { continuation in
            box.install(continuation)
            Thread.detachNewThread {
                box.finish(lookup(name))
            }
            Task {
                try? await Task.sleep(for: timeout)
                box.finish(.timedOut)
            }
        }
    }

    private static func lookup(_ name: String) -> Outcome {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let code = getaddrinfo(name, nil, &hints, &list)
        guard code == 0 else { return .failed(String(cString: gai_strerror(code))) }
        defer { freeaddrinfo(list) }
        var addresses: [String] = []
        var entry = list
        while let current = entry {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(current.pointee.ai_addr, current.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 {
                let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !addresses.contains(text) { addresses.append(text) }
            }
            entry = current.pointee.ai_next
        }
        return .addresses(addresses)
    }
}

/// The first of the lookup and the timer to finish resumes the continuation; the other is ignored.
private final class ResolutionBox: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<SystemResolver.Outcome, Never>?

    func install(_ continuation: CheckedContinuation<SystemResolver.Outcome, Never>) {
        lock.withLock { self.continuation = continuation }
    }

    func finish(_ outcome: SystemResolver.Outcome) {
        let waiting = lock.withLock { () -> CheckedContinuation<SystemResolver.Outcome, Never>? in
            defer { continuation = nil }
            return continuation
        }
        waiting?.resume(returning: outcome)
    }
}
