import Foundation
import AtelierKernels

/// The text embeddings of the last prompt a pipeline encoded.
///
/// Why: a tiled upscale encodes the same prompt for every tile (each tile is a full pipeline
/// call, as on a farm worker), and the text encoder is both slow and — being memory-mapped —
/// resident while it runs. Keeping one entry makes every tile after the first skip it, so its
/// weights can stay out of the resident set for the rest of the job. The encoder is
/// deterministic, so a hit returns exactly what a fresh encode would.
final class PromptEmbeddingCache: @unchecked Sendable {
    struct Key: Equatable {
        let prompt: String
        let negative: String
        let guidance: Bool
    }

    private let lock = NSLock()
    private var entry: (key: Key, context: Tensor)?

    func lookup(_ key: Key) -> Tensor? {
        lock.lock()
        defer { lock.unlock() }
        guard let entry, entry.key == key else { return nil }
        return entry.context
    }

    func store(_ key: Key, _ context: Tensor) {
        lock.lock()
        defer { lock.unlock() }
        entry = (key, context)
    }
}
