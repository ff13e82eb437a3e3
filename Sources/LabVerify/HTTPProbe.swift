import AsyncHTTPClient
import LabSpec
import Foundation

/// One GET and what came back (or why nothing did).
struct HTTPProbe: Sendable {
    var url: String
    /// The Host header sent, when it differs from the URL's host (the domain through the proxy).
    var hostHeader: String?
    var status: Int?
    var servedBy: String?
    /// The release the app says it runs (X-App-Version: the stand-in sends package.json's version).
    var appVersion: String?
    var upstream: String?
    var body: String
    /// Why there was no response: refused, timed out, reset.
    var error: String?
    var milliseconds: Double

    var succeeded: Bool { status == 200 }

    var target: String { hostHeader.map { "GET \(url) (Host: \($0))" } ?? "GET \(url)" }

    /// The page's title, or the start of the body with whitespace collapsed.
    var excerpt: String? { PageText.excerpt(body) }

    /// "status 502", "connection refused"...
    var outcome: String {
        if let error { return error }
        return "status \(status.map(String.init) ?? "?")"
    }
}

enum PageText {
    static func excerpt(_ body: String, limit: Int = 160) -> String? {
        if let title = title(of: body), !title.isEmpty { return "<title>\(title)</title>" }
        let collapsed = body.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        guard !collapsed.isEmpty else { return nil }
        return collapsed.count > limit ? String(collapsed.prefix(limit)) + "…" : collapsed
    }

    static func title(of body: String) -> String? {
        guard let open = body.range(of: "<title", options: .caseInsensitive),
              let close = body.range(of: ">", range: open.upperBound..<body.endIndex),
              let end = body.range(of: "</title>", options: .caseInsensitive, range: close.upperBound..<body.endIndex)
        else { return nil }
        return body[close.upperBound..<end.lowerBound].split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }
}

/// GET requests with a deadline each, no redirects, no proxy from the environment.
struct HTTPProber: Sendable {
    let client: HTTPClient
    let timeout: Duration

    /// The most body kept: an app page is a few kB; more is not needed as evidence.
    static let bodyLimit = 1 << 20

    static func makeClient(timeout: Duration) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        let millis = Int64(timeout.milliseconds)
        configuration.timeout = .init(connect: .milliseconds(min(millis, 3000)), read: .milliseconds(millis))
        // Every request asks for a fresh connection (Connection: close); pooling would only keep
        // sockets around.
        configuration.connectionPool = .init(idleTimeout: .seconds(1), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        // A refused connection is the finding (a stopped server, nginx down): report it at once
        // instead of retrying until the connect timeout, as the client does by default.
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// `http://<address>:<port><path>`, with `hostHeader` as Host when given. A fresh connection
    /// per request (Connection: close), so that nginx sees a new client each time and keep-alive
    /// does not pin one worker or one upstream.
    func get(address: String, port: Int, path: String = "/", hostHeader: String? = nil) async -> HTTPProbe {
        let url = "http://\(Self.urlHost(address)):\(port)\(path)"
        var probe = HTTPProbe(url: url, hostHeader: hostHeader, body: "", milliseconds: 0)
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        if let hostHeader { request.headers.replaceOrAdd(name: "Host", value: hostHeader) }
        request.headers.replaceOrAdd(name: "Connection", value: "close")
        request.headers.replaceOrAdd(name: "User-Agent", value: "labctl-verify")
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(timeout.milliseconds)))
            probe.status = Int(response.status.code)
            probe.servedBy = response.headers.first(name: "X-Served-By")
            probe.appVersion = response.headers.first(name: "X-App-Version")
            probe.upstream = response.headers.first(name: "X-Upstream")
            let buffer = try await response.body.collect(upTo: Self.bodyLimit)
            probe.body = String(decoding: buffer.readableBytesView, as: UTF8.self)
        } catch {
            probe.error = Self.describe(error, timeout: timeout)
        }
        probe.milliseconds = (clock.now - start).milliseconds
        return probe
    }

    static func urlHost(_ address: String) -> String { ValueForm.hostInURL(address) }

    /// One phrase for a failed request, as a user would say it.
    static func describe(_ error: any Error, timeout: Duration) -> String {
        if error is CancellationError { return "cancelled" }
        if let client = error as? HTTPClientError {
            switch client {
            case .deadlineExceeded, .readTimeout, .connectTimeout:
                return "no response within \(Int(timeout.milliseconds)) ms"
            case .remoteConnectionClosed:
                return "the server closed the connection without a response"
            case .cancelled:
                return "cancelled"
            case .bodyLengthMismatch:
                return "the response body was cut short"
            default:
                break
            }
        }
        // The connect errors are swift-nio's types (IOError, NIOConnectionError), which this
        // module does not import: a direct dependency on swift-nio only to name them is not
        // worth it, and their descriptions carry the errno's words.
        let text = String(describing: error)
        if text.contains("connectionRefused") || text.contains("Connection refused") || text.contains("ECONNREFUSED")
            || text.lowercased().contains("refused")
        {
            return "connection refused"
        }
        if text.lowercased().contains("reset") { return "connection reset" }
        if text.lowercased().contains("unreachable") { return "host unreachable" }
        if text.contains("responseBodyTooBig") || text.contains("tooManyBytes") {
            return "the response body is larger than \(bodyLimit) bytes"
        }
        return text
    }
}


