import AtelierDiffusion
import Foundation

/// Arbitrary bytes as a prompt: decoded as UTF-8 (invalid sequences become U+FFFD, as a
/// protobuf string or a command-line argument never would, but a file could) and encoded with
/// the bundled CLIP tokenizer. Checked beyond "no trap": the ids are exactly `maxLength` long,
/// start with BOS, and every id is in the vocabulary.
final class TokenizerFuzzTarget: FuzzTarget {
    private let tokenizer: BPETokenizer

    init() throws {
        tokenizer = try BPETokenizer.bundled()
    }

    func run(_ input: UnsafeRawBufferPointer) {
        let prompt = String(decoding: input, as: UTF8.self)
        let ids = tokenizer.encode(prompt)
        precondition(ids.count == tokenizer.maxLength, "encode gave \(ids.count) ids, not \(tokenizer.maxLength)")
        precondition(ids.first == tokenizer.bosTokenID, "the ids do not start with BOS")
        precondition(ids.allSatisfy { $0 >= 0 && $0 < tokenizer.vocabularySize }, "an id outside the vocabulary")
    }
}
