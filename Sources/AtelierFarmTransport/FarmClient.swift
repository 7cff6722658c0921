import AtelierFarmProtocol
import Foundation
import SwiftProtobuf

/// Typed calls over a `RequestClient`: one `Atelier_V1_Request` out, one `Atelier_V1_Response` back.
public final class FarmClient: @unchecked Sendable {
    /// The protocol version this code speaks (`Request.protocol_version`).
    public static let protocolVersion: UInt32 = 1

    public let transport: RequestClient
    /// Used by `call` when no timeout is given.
    public let defaultTimeout: Duration
    /// Sent as `auth_token` with every request that carries none ('' = none: access is open).
    public let authToken: String

    public init(transport: RequestClient, defaultTimeout: Duration = .seconds(30), authToken: String = "") {
        self.transport = transport
        self.defaultTimeout = defaultTimeout
        self.authToken = authToken
    }

    /// Dials `address` (see `FarmAddress.resolve`) in the background.
    public convenience init(address: String, defaultTimeout: Duration = .seconds(30),
                            options: RequestClientOptions = .init(), authToken: String = "") throws {
        self.init(transport: try RequestClient(dialing: address, options: options), defaultTimeout: defaultTimeout,
                  authToken: authToken)
    }

    /// Sends `request` and returns the coordinator's response, which may carry an `error`
    /// (the caller decides what to do with it; see Protocols/README.md).
    ///
    /// Fills `protocol_version` (if 0) and `request_id` (if empty, a fresh UUID) first. The same
    /// request id travels with nng's resends, so the coordinator can answer a duplicate with the
    /// stored first response. Blocks the calling thread; use the `async` overload from tasks.
    /// - Throws: `TransportError` (timeout, closed, too large, …), or `.unexpectedReply` when
    ///   the reply does not parse or echoes another request id.
    public func call(_ request: Atelier_V1_Request, timeout: Duration? = nil) throws -> Atelier_V1_Response {
        let prepared = withToken(Self.prepare(request))
        let reply = try transport.request(try Self.encode(prepared), timeout: timeout ?? defaultTimeout)
        return try Self.decode(reply, for: prepared)
    }

    /// `call` without blocking a cooperative thread (see `RequestClient.request(_:timeout:) async`).
    public func call(_ request: Atelier_V1_Request, timeout: Duration? = nil) async throws -> Atelier_V1_Response {
        let prepared = withToken(Self.prepare(request))
        let reply = try await transport.request(try Self.encode(prepared), timeout: timeout ?? defaultTimeout)
        return try Self.decode(reply, for: prepared)
    }

    public func close() {
        transport.close()
    }

    private func withToken(_ request: Atelier_V1_Request) -> Atelier_V1_Request {
        guard request.authToken.isEmpty, !authToken.isEmpty else { return request }
        var request = request
        request.authToken = authToken
        return request
    }

    /// `request` with `protocol_version` = 1 if unset and a UUID `request_id` if empty.
    public static func prepare(_ request: Atelier_V1_Request) -> Atelier_V1_Request {
        var request = request
        if request.protocolVersion == 0 { request.protocolVersion = protocolVersion }
        if request.requestID.isEmpty { request.requestID = UUID().uuidString }
        return request
    }

    private static func encode(_ request: Atelier_V1_Request) throws -> Data {
        do {
            return try request.serializedData()
        } catch {
            throw TransportError.unexpectedReply("cannot serialise the request: \(error)")
        }
    }

    private static func decode(_ data: Data, for request: Atelier_V1_Request) throws -> Atelier_V1_Response {
        let response: Atelier_V1_Response
        do {
            response = try Atelier_V1_Response(serializedBytes: data)
        } catch {
            throw TransportError.unexpectedReply("the \(data.count)-byte reply is not an atelier.v1.Response (\(error))")
        }
        // An error response may carry no id when the peer could not read ours.
        if response.requestID != request.requestID && !(response.requestID.isEmpty && response.hasError) {
            throw TransportError.unexpectedReply(
                "the reply answers request '\(response.requestID)', not '\(request.requestID)'")
        }
        return response
    }
}
