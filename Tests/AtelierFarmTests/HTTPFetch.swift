import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP GET, waited for: what the tests of the coordinator's HTTP side ask as Prometheus or a
/// browser would.
enum HTTPFetch {
    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    static func get(_ url: String, bearer: String? = nil, authorization: String? = nil, timeout: TimeInterval = 20) throws -> Reply {
        try send("GET", url, bearer: bearer, authorization: authorization, timeout: timeout)
    }

    static func post(_ url: String, bearer: String? = nil, timeout: TimeInterval = 20) throws -> Reply {
        try send("POST", url, bearer: bearer, timeout: timeout)
    }

    /// HTTP/1.1 over a plain socket, one request per connection. Not URLSession: on Linux its
    /// FoundationNetworking never completes a task answered 401 with a Basic challenge (no
    /// credential to try, no callback), which is exactly what the status page answers a browser.
    static func send(_ method: String, _ url: String, bearer: String?, authorization: String? = nil,
                     timeout: TimeInterval) throws -> Reply {
        guard let target = URL(string: url), target.scheme == "http", let host = target.host else {
            throw FarmTestError("not an http:// URL: \(url)")
        }
        let port = target.port ?? 80
        var path = target.path.isEmpty ? "/" : target.path
        if let query = target.query { path += "?" + query }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
        if let bearer { head += "Authorization: Bearer \(bearer)\r\n" }
        if let authorization { head += "Authorization: \(authorization)\r\n" }
        let body = method == "POST" ? Data("x=1".utf8) : Data()
        if method == "POST" { head += "Content-Type: application/x-www-form-urlencoded\r\n" }
        head += "Content-Length: \(body.count)\r\n\r\n"

        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FarmTestError("\(method) \(url): socket() failed") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &address.sin_addr) == 1 else {
            throw FarmTestError("\(url): only numeric IPv4 hosts are supported here")
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw FarmTestError("\(method) \(url): connect failed (errno \(errno))") }
        let request = Data(head.utf8) + body
        let sent = request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard sent == request.count else { throw FarmTestError("\(method) \(url): short write") }

        var raw = Data()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n == 0 { break }
            guard n > 0 else { throw FarmTestError("GET \(url) did not answer within \(Int(timeout)) s (errno \(errno))") }
            raw.append(contentsOf: chunk[0..<n])
        }
        guard let split = raw.range(of: Data("\r\n\r\n".utf8)) else {
            throw FarmTestError("\(method) \(url): no HTTP response (\(raw.count) bytes)")
        }
        let lines = String(decoding: raw[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw FarmTestError("\(method) \(url): bad status line \(lines.first ?? "")")
        }
        var headers = [String: String]()
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var content = Data(raw[split.upperBound...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" { content = try dechunk(content, url) }
        return Reply(status: status, headers: headers, body: content)
    }

    /// The body of a chunked transfer: hex size line, bytes, CRLF, until a zero size.
    private static func dechunk(_ data: Data, _ url: String) throws -> Data {
        var out = Data()
        var rest = data[...]
        while let lineEnd = rest.range(of: Data("\r\n".utf8)) {
            let sizeText = String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                throw FarmTestError("\(url): bad chunk size \(sizeText)")
            }
            if size == 0 { return out }
            let start = lineEnd.upperBound
            guard rest.distance(from: start, to: rest.endIndex) >= size + 2 else { throw FarmTestError("\(url): truncated chunk") }
            let end = rest.index(start, offsetBy: size)
            out.append(rest[start..<end])
            rest = rest[rest.index(end, offsetBy: 2)...]
        }
        throw FarmTestError("\(url): chunked body without its last chunk")
    }

}
