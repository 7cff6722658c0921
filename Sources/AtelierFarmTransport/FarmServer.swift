import AtelierFarmProtocol
import Foundation
import SwiftProtobuf

/// Handles one parsed request of the current protocol version. Runs on a server context thread
/// and may block. Handlers see duplicates of a request (same `request_id`) when nng resends.
public typealias FarmRequestHandler = @Sendable (Atelier_V1_Request, PeerInfo) -> Atelier_V1_Response

/// Told about every message answered with an error before it reached the handler (malformed,
/// wrong version, reply too large), so the server's owner can log it (rate-limited).
public typealias FarmRefusalHandler = @Sendable (Atelier_V1_ErrorCode, String, PeerInfo) -> Void

extension RequestServer {
    /// Starts serving typed requests: see `FarmWire.respond`. Bad input is answered with an
    /// error response and never reaches `handler`, so the coordinator keeps serving; `refused`
    /// hears about it.
    public func serve(refused: FarmRefusalHandler? = nil, handler: @escaping FarmRequestHandler) throws {
        let limit = min(options.maxMessageSize, FarmWire.maxMessageSize)
        try start { body, peer in
            FarmWire.respond(to: body, from: peer, maxReplySize: limit, refused: refused, handler: handler)
        }
    }
}

/// The envelope rules of Protocols/README.md, apart from the sockets (so they are testable alone).
public enum FarmWire {
    /// The protocol's size limit for one message in either direction (Protocols/README.md §5).
    /// Clients set it as their `recv-size-max`, so no response may be larger, whatever the
    /// coordinator's own receive limit.
    public static let maxMessageSize = 64 << 20

    /// The reply body for one request body:
    /// - not a `Request` → `ERROR_CODE_MALFORMED`, empty `request_id`;
    /// - `protocol_version` ≠ 1 → `ERROR_CODE_UNSUPPORTED_VERSION`, request id echoed;
    /// - otherwise the handler's response, with `protocol_version` and `request_id` filled in if
    ///   the handler left them empty;
    /// - a response over `maxReplySize` is replaced by `ERROR_CODE_TOO_LARGE`: sent as is, it
    ///   would exceed the client's `NNG_OPT_RECVMAXSZ` (64 MiB), which closes the connection
    ///   and leaves the client resending until its timeout (NNG-NOTES §3). Worse, closing a
    ///   connection in the middle of a multi-MiB message can wedge nng 1.5.2's reaper
    ///   (`NNGSocketClose`), so such a reply must never be sent.
    public static func respond(to body: Data, from peer: PeerInfo, maxReplySize: Int,
                               refused: FarmRefusalHandler? = nil, handler: FarmRequestHandler) -> Data {
        func refuse(_ code: Atelier_V1_ErrorCode, _ message: String, requestID: String) -> Data {
            refused?(code, message, peer)
            return encode(errorResponse(code, message, requestID: requestID))
        }
        let request: Atelier_V1_Request
        do {
            request = try Atelier_V1_Request(serializedBytes: body)
        } catch {
            return refuse(.malformed, "the \(body.count)-byte message is not an atelier.v1.Request", requestID: "")
        }
        guard request.protocolVersion == FarmClient.protocolVersion else {
            return refuse(
                .unsupportedVersion,
                "protocol_version \(request.protocolVersion) is not supported; this coordinator speaks \(FarmClient.protocolVersion)",
                requestID: request.requestID)
        }
        var response = handler(request, peer)
        if response.protocolVersion == 0 { response.protocolVersion = FarmClient.protocolVersion }
        if response.requestID.isEmpty { response.requestID = request.requestID }
        let data = encode(response)
        if data.count > maxReplySize {
            return refuse(.tooLarge, "the response is \(data.count) bytes, over the limit of \(maxReplySize) bytes",
                          requestID: request.requestID)
        }
        return data
    }

    /// A `Response` carrying only an error.
    public static func errorResponse(_ code: Atelier_V1_ErrorCode, _ message: String,
                                     requestID: String) -> Atelier_V1_Response {
        var response = Atelier_V1_Response()
        response.protocolVersion = FarmClient.protocolVersion
        response.requestID = requestID
        response.error.code = code
        response.error.message = message
        return response
    }

    private static func encode(_ response: Atelier_V1_Response) -> Data {
        if let data = try? response.serializedData() { return data }
        let fallback = errorResponse(.internal, "the response could not be serialised", requestID: response.requestID)
        return (try? fallback.serializedData()) ?? Data()
    }
}
