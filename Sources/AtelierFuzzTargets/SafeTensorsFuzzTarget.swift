import AtelierModels
import Foundation

/// Arbitrary bytes as a `.safetensors` file: header parsing and validation (`SafeTensorsFile`),
/// reading every small tensor, then single-file checkpoint inspection (`SingleFileCheckpoint`,
/// which infers the SD2 architecture from tensor names and shapes). Each input is written to one
/// file in /dev/shm, because the loader maps files rather than reading buffers.
final class SafeTensorsFuzzTarget: FuzzTarget {
    private let url: URL

    init() {
        let dir = scratchDirectory("safetensors")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        url = dir.appendingPathComponent("model.safetensors")
    }

    deinit { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }

    func run(_ input: UnsafeRawBufferPointer) {
        guard FileManager.default.createFile(atPath: url.path, contents: Data(input)) else {
            fatalError("cannot write \(url.path)")
        }
        guard let file = try? SafeTensorsFile(url: url) else { return }
        for name in file.names {
            guard let info = file.info(name), info.byteCount <= 1 << 20 else { continue }
            _ = try? file.tensor(name)
        }
        _ = try? SingleFileCheckpoint(url: url)
    }
}
