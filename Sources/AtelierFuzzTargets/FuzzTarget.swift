import Foundation

/// One input-handling path of Atelier under fuzzing. `run` must return normally for every input
/// (errors are fine and expected); a trap, a sanitizer report or a hang is a finding. The same
/// targets are driven by libFuzzer (`scripts/fuzz.sh`, the `atelier-fuzz` executable built with
/// `-sanitize=fuzzer`) and by the seeded mutator of the CI replay (`AtelierFuzzTests`).
public protocol FuzzTarget: AnyObject {
    func run(_ input: UnsafeRawBufferPointer)
}

/// The fuzzed paths, by the name scripts and corpora use (`Tests/Fuzz/corpus/<name>/`).
public enum FuzzTargetKind: String, CaseIterable, Sendable {
    /// protobuf `Request` decoding and `Coordinator.handle` on a live coordinator (/dev/shm).
    case protobuf
    /// safetensors header parsing, tensor reads and single-file checkpoint inspection.
    case safetensors
    /// `PNGCodec.decode` with the farm's limits, then conversion to RGB and gray.
    case png
    /// `BPETokenizer.encode` of arbitrary bytes as UTF-8 (invalid sequences become U+FFFD).
    case tokenizer

    public func make() throws -> FuzzTarget {
        switch self {
        case .protobuf: return try CoordinatorRequestFuzzTarget()
        case .safetensors: return SafeTensorsFuzzTarget()
        case .png: return PNGDecodeFuzzTarget()
        case .tokenizer: return try TokenizerFuzzTarget()
        }
    }

    /// Inputs longer than this are cut (libFuzzer's `-max_len` is set to the same in fuzz.sh).
    public var maxLength: Int {
        switch self {
        case .protobuf: return 4096
        case .safetensors: return 16384
        case .png: return 16384
        case .tokenizer: return 2048
        }
    }
}

/// A scratch folder in memory (/dev/shm when present), so fuzzing never wears a disk.
func scratchDirectory(_ name: String) -> URL {
    let shm = URL(fileURLWithPath: "/dev/shm")
    let base = FileManager.default.fileExists(atPath: shm.path) ? shm : URL(fileURLWithPath: NSTemporaryDirectory())
    return base.appendingPathComponent("atelier-fuzz-\(name)-\(getpid())")
}
