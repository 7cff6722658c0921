import Crypto
import Foundation

/// SHA-256 for access tokens: the coordinator stores only the hash of each token
/// (`AccessTokens`). swift-crypto's, which the coordinator already links through postgres-nio
/// (SCRAM authentication): the farm keeps no hand-written hash of its own (the engine's
/// `SHA256Hasher` lives in AtelierModels, which a coordinator must not link).
public enum SHA256 {
    /// The 32-byte digest of `data`.
    public static func digest<D: Collection>(_ data: D) -> [UInt8] where D.Element == UInt8 {
        Array(Crypto.SHA256.hash(data: Array(data)))
    }

    /// Lower-case hex of the digest of `text`'s UTF-8 bytes (what `sha256sum` prints).
    public static func hex(_ text: String) -> String {
        digest(Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
