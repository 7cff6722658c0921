import Foundation
import XCTest
import AtelierKernels
@testable import AtelierModels

/// Locates the committed reference fixtures (written by Tests/Reference/make_fixtures.py from
/// diffusers/transformers) relative to this source file, so no bundle lookup is needed.
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func url(_ parts: String...) -> URL {
        parts.reduce(root) { $0.appendingPathComponent($1) }
    }

    static func cases(_ kind: String) -> [String] {
        let dir = url(kind)
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
            .filter { FileManager.default.fileExists(atPath: dir.appendingPathComponent($0).appendingPathComponent("io.safetensors").path) }
            .sorted()
    }

    static func io(_ kind: String, _ name: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(url: url(kind, name, "io.safetensors"))
    }
}

extension Tensor {
    var ints: [Int] { scalars.map { Int($0.rounded()) } }
}

/// The acceptance bound: max |ours − reference| ≤ 1e-4 · max(1, max|reference|).
func assertParity(_ ours: Tensor, _ reference: Tensor, _ label: String, tolerance: Float = 1e-4,
                  file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(ours.shape, reference.shape, "\(label): shape", file: file, line: line)
    guard ours.shape == reference.shape else { return }
    let err = ours.maxAbsDifference(reference)
    let bound = tolerance * max(1, reference.maxAbs)
    print("parity \(label): max|Δ| = \(err) (bound \(bound), max|ref| = \(reference.maxAbs))")
    XCTAssertLessThanOrEqual(err, bound, "\(label): max|Δ| \(err) exceeds \(bound)", file: file, line: line)
}
