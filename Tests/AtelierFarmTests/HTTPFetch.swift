import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
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

    static func send(_ method: String, _ url: String, bearer: String?, authorization: String? = nil,
                     timeout: TimeInterval) throws -> Reply {
        guard let target = URL(string: url) else { throw FarmTestError("not a URL: \(url)") }
        var request = URLRequest(url: target, timeoutInterval: timeout)
        request.httpMethod = method
        if method == "POST" { request.httpBody = Data("x=1".utf8) }
        if let bearer { request.setValue("Bearer \(bearer)", forHTTPHeaderField: "Authorization") }
        if let authorization { request.setValue(authorization, forHTTPHeaderField: "Authorization") }
        let done = DispatchSemaphore(value: 0)
        let box = ReplyBox()
        let session = URLSession(configuration: .ephemeral)
        defer { session.invalidateAndCancel() }
        session.dataTask(with: request) { data, response, error in
            if let error {
                box.result = .failure(error)
            } else if let http = response as? HTTPURLResponse {
                var headers = [String: String]()
                for (key, value) in http.allHeaderFields {
                    headers["\(key)".lowercased()] = "\(value)"
                }
                box.result = .success(Reply(status: http.statusCode, headers: headers, body: data ?? Data()))
            } else {
                box.result = .failure(FarmTestError("GET \(url): no HTTP response"))
            }
            done.signal()
        }.resume()
        guard done.wait(timeout: .now() + timeout + 5) == .success, let result = box.result else {
            throw FarmTestError("GET \(url) did not answer within \(Int(timeout)) s")
        }
        return try result.get()
    }

    private final class ReplyBox: @unchecked Sendable {
        var result: Result<Reply, Error>?
    }
}
