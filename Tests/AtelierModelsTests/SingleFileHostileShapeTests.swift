import AtelierKernels
@testable import AtelierModels
import Foundation
import XCTest

/// A single-file checkpoint is untrusted input: a header that is valid safetensors but describes
/// tensors that cannot be what their names say must end in a typed `ModelError` or
/// `SafeTensorsError` naming the tensor — in config inference, in the key maps and in layer
/// binding — and never trap (it used to kill `render`, `worker` and `inspect`).
final class SingleFileHostileShapeTests: XCTestCase {
    /// The tiny SD2 single file, split into its header (as JSON objects) and its data section.
    struct Fixture {
        let header: [String: Any]
        let data: Data

        init() throws {
            let bytes = try Data(contentsOf: Fixtures.url("singlefile", "tiny-sd2.safetensors"))
            let length = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            let object = try JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<(8 + length)))
            header = try XCTUnwrap(object as? [String: Any])
            data = bytes.subdata(in: (8 + length)..<bytes.count)
        }

        /// A whole file: length prefix, the header as JSON, the data section.
        static func file(header: [String: Any], data: Data) throws -> Data {
            file(headerJSON: Data(json(header).utf8), data: data)
        }

        /// The header as safetensors JSON, written directly (JSONSerialization is ~50 ms per
        /// header in a debug build, which would dominate the fuzz loop).
        static func json(_ header: [String: Any]) -> String {
            func quoted(_ s: String) -> String {
                "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
            }
            func ints(_ v: Any?) -> String { "[" + ((v as? [Int]) ?? []).map(String.init).joined(separator: ",") + "]" }
            var parts: [String] = []
            for key in header.keys.sorted() {
                if let meta = header[key] as? [String: String] {
                    parts.append(quoted(key) + ":{" + meta.keys.sorted().map { quoted($0) + ":" + quoted(meta[$0] ?? "") }.joined(separator: ",") + "}")
                } else if let e = header[key] as? [String: Any] {
                    parts.append(quoted(key) + ":{\"dtype\":" + quoted((e["dtype"] as? String) ?? "F32") + ",\"shape\":" + ints(e["shape"])
                                 + ",\"data_offsets\":" + ints(e["data_offsets"]) + "}")
                }
            }
            return "{" + parts.joined(separator: ",") + "}"
        }

        static func file(headerJSON json: Data, data: Data) -> Data {
            var out = Data((0..<8).map { UInt8(truncatingIfNeeded: json.count >> (8 * $0)) })
            out.append(json)
            out.append(data)
            return out
        }
    }

    /// Parses, infers the config and binds every network, as `render`/`worker`/`inspect` do.
    /// Returns the error, nil on success; fails the test for an error that is not typed.
    @discardableResult
    private func load(_ bytes: Data, _ label: @autoclosure () -> String) -> Error? {
        do {
            let ckpt = try SingleFileCheckpoint.inspect(data: bytes, name: "fuzz.safetensors")
            _ = try StableDiffusionModel.load(singleFile: ckpt)
            return nil
        } catch let error as ModelError {
            XCTAssertFalse("\(error)".isEmpty)
            return error
        } catch let error as SafeTensorsError {
            return error
        } catch {
            XCTFail("\(label()): untyped error \(type(of: error)): \(error)")
            return error
        }
    }

    private func entry(_ header: [String: Any], _ key: String) throws -> [String: Any] {
        try XCTUnwrap(header[key] as? [String: Any], key)
    }

    // MARK: - The reported cases

    func testAttentionWeightWithTheSameBytesButAnotherShapeIsATypedError() throws {
        let fixture = try Fixture()
        XCTAssertNil(load(try Fixture.file(header: fixture.header, data: fixture.data), "unmodified"))
        let cases: [(key: String, shape: [Int])] = [
            ("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", [-1]),
            ("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_k.weight", [-1]),
            ("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", [-2]),
            ("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight", [-2]),
            ("cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight", [-2]),
            ("cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight", [-1]),
            ("first_stage_model.encoder.mid.attn_1.q.weight", [-1]),
            ("first_stage_model.encoder.mid.attn_1.q.weight", [-2]),
        ]
        for (key, edit) in cases {
            var header = fixture.header
            var e = try entry(header, key)
            let shape = try XCTUnwrap(e["shape"] as? [Int])
            let count = shape.reduce(1, *)
            // -1: flattened to one axis; -2: the axes reversed. Same bytes either way.
            let newShape = edit == [-1] ? [count] : Array(shape.reversed())
            // Moving only unit axes is the same layout ([C, C, 1, 1] ≡ [1, 1, C, C]): accepted.
            if newShape.filter({ $0 != 1 }) == shape.filter({ $0 != 1 }) { continue }
            e["shape"] = newShape
            header[key] = e
            let error = load(try Fixture.file(header: header, data: fixture.data), key)
            XCTAssertNotNil(error, "\(key) \(newShape) was accepted")
            if let error {
                XCTAssertTrue("\(error)".contains(key), "\(error)")
                // A fused q/k/v tensor is reported as the rows read from it.
                if !key.contains("in_proj") { XCTAssertTrue("\(error)".contains("\(newShape)"), "\(error)") }
            }
        }
    }

    func testPositionalEmbeddingWithZeroRowsIsATypedErrorNamingIt() throws {
        let fixture = try Fixture()
        var header = fixture.header
        let key = "cond_stage_model.model.positional_embedding"
        var e = try entry(header, key)
        let offsets = try XCTUnwrap(e["data_offsets"] as? [Int])
        e["shape"] = [0, 64]
        e["data_offsets"] = [offsets[0], offsets[0]]
        header[key] = e
        let error = load(try Fixture.file(header: header, data: fixture.data), key)
        guard case ModelError.unexpectedShape(let name, _, let found, _)? = error as? ModelError else {
            return XCTFail("expected unexpectedShape, got \(String(describing: error))")
        }
        XCTAssertEqual(name, key)
        XCTAssertEqual(found, [0, 64])
        let message = "\(String(describing: error))"
        XCTAssertTrue(message.contains("every dimension ≥ 1"), message)
    }

    func testHugeBlockIndicesAndScalarFusedProjectionsAreTypedErrors() throws {
        let fixture = try Fixture()
        // A key with an index near Int.max used to overflow the level arithmetic.
        var header = fixture.header
        header["model.diffusion_model.input_blocks.9223372036854775807.0.weight"] = try entry(header, "model.diffusion_model.out.2.bias")
        load(try Fixture.file(header: header, data: fixture.data), "huge index")  // typed error or ignored key, no trap
        // A 0-d fused in_proj: RenamedWeights used to read shape[0] of a scalar.
        header = fixture.header
        let key = "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_bias"
        var e = try entry(header, key)
        let offsets = try XCTUnwrap(e["data_offsets"] as? [Int])
        e["shape"] = [Int]()
        e["data_offsets"] = [offsets[0], offsets[0] + 4]
        header[key] = e
        XCTAssertNotNil(load(try Fixture.file(header: header, data: fixture.data), key))
    }

    // MARK: - Seeded mutation fuzzing

    /// SplitMix64: a fixed seed gives the same mutations on every run and machine.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// One structural edit of the header: shapes (same or different byte count), dtypes,
    /// offsets, names.
    private func mutate(_ header: inout [String: Any], keys: [String], random: inout SeededGenerator) {
        guard let key = keys.randomElement(using: &random), var e = header[key] as? [String: Any],
              let shape = e["shape"] as? [Int], let offsets = e["data_offsets"] as? [Int], offsets.count == 2 else { return }
        let count = shape.reduce(1, *)
        switch Int.random(in: 0..<12, using: &random) {
        case 0: e["shape"] = Array(shape.reversed())
        case 1: e["shape"] = [count]
        case 2: e["shape"] = [1] + shape
        case 3: e["shape"] = shape + [1]
        case 4:  // split the first axis into two factors
            if let first = shape.first, first > 1, let f = (2...first).first(where: { first % $0 == 0 }) {
                e["shape"] = [first / f, f] + shape.dropFirst()
            }
        case 5:  // merge the first two axes
            if shape.count >= 2 { e["shape"] = [shape[0] * shape[1]] + shape.dropFirst(2) }
        case 6:  // a zero dimension, with an empty byte range
            var s = shape.isEmpty ? [1] : shape
            s[Int.random(in: 0..<s.count, using: &random)] = 0
            e["shape"] = s
            e["data_offsets"] = [offsets[0], offsets[0]]
        case 7:  // a scalar
            e["shape"] = [Int]()
            e["data_offsets"] = [offsets[0], offsets[0] + 4]
        case 8:  // F16 over the first half of the bytes: valid, another precision
            e["dtype"] = "F16"
            e["data_offsets"] = [offsets[0], offsets[0] + count * 2]
        case 9:  // a dimension changed without fixing the bytes
            var s = shape.isEmpty ? [1] : shape
            let i = Int.random(in: 0..<s.count, using: &random)
            s[i] = [0, 1, 2, s[i] + 1, s[i] * 3, Int(Int32.max), Int.max / 2].randomElement(using: &random) ?? 1
            e["shape"] = s
        case 10:  // the tensor vanishes
            header[key] = nil
            return
        default:  // renamed: another block index, a huge index, or a truncated name
            header[key] = nil
            let parts = key.split(separator: ".").map(String.init)
            let renamed: String
            switch Int.random(in: 0..<3, using: &random) {
            case 0: renamed = parts.map { Int($0) != nil ? String(Int.random(in: 0..<16, using: &random)) : $0 }.joined(separator: ".")
            case 1: renamed = parts.map { Int($0) != nil ? "99999999999" : $0 }.joined(separator: ".")
            default: renamed = parts.dropLast().joined(separator: ".") + "."
            }
            header[renamed] = e
            return
        }
        header[key] = e
    }

    /// Mutates `header` `runs` times (one to three structural edits, or raw byte edits of the
    /// JSON every fourth run) and loads each result; returns how each run ended.
    private func fuzz(_ header: [String: Any], data: Data, runs: Int, seed: UInt64) throws -> [String: Int] {
        let keys = header.keys.filter { $0 != "__metadata__" }.sorted()
        let pristine = Array(Fixture.json(header).utf8)
        var random = SeededGenerator(state: seed)
        var outcomes: [String: Int] = [:]
        for run in 0..<runs {
            let bytes: Data
            if run % 4 == 3 {
                var json = pristine
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    let i = Int.random(in: 0..<json.count, using: &random)
                    switch Int.random(in: 0..<3, using: &random) {
                    case 0: json[i] ^= UInt8(1 << Int.random(in: 0..<8, using: &random))
                    case 1: json.insert(UInt8.random(in: 0...255, using: &random), at: i)
                    default: json.remove(at: i)
                    }
                }
                bytes = Fixture.file(headerJSON: Data(json), data: data)
            } else {
                var mutated = header
                for _ in 0..<Int.random(in: 1...3, using: &random) { mutate(&mutated, keys: keys, random: &random) }
                bytes = try Fixture.file(header: mutated, data: data)
            }
            let outcome = load(bytes, "seed \(seed) run \(run)").map { String(describing: type(of: $0)) } ?? "loaded"
            outcomes[outcome, default: 0] += 1
        }
        return outcomes
    }

    /// The tensors config inference reads (plus the ones beside them), keeping their byte ranges
    /// in the full data section: a small header, so thousands of runs stay fast in a debug build.
    static func inferenceKeys(_ key: String) -> Bool {
        let markers = ["input_blocks.0.0.", "out.2.", ".0.in_layers.2.", ".0.op.", "attn1.to_k.", "attn2.to_k.", "proj_in.",
                       "label_emb.", "middle_block.0.in_layers.2.", "block.0.conv1.", "encoder.conv_in.", "decoder.conv_in.",
                       "decoder.conv_out.", "mid.attn_1.q.", "quant_conv.", "token_embedding.", "positional_embedding",
                       "mlp.c_fc.weight", "attn.in_proj_"]
        return markers.contains { key.contains($0) }
    }

    func testSeededMutationsOfTheInferenceTensorsNeverTrap() throws {
        let fixture = try Fixture()
        // Only those tensors, their bytes packed into a small data section.
        var header: [String: Any] = [:]
        var data = Data()
        for key in fixture.header.keys.sorted() where Self.inferenceKeys(key) {
            var e = try entry(fixture.header, key)
            let offsets = try XCTUnwrap(e["data_offsets"] as? [Int])
            e["data_offsets"] = [data.count, data.count + offsets[1] - offsets[0]]
            data.append(fixture.data.subdata(in: offsets[0]..<offsets[1]))
            header[key] = e
        }
        XCTAssertLessThan(header.count, fixture.header.count / 3)
        XCTAssertNotNil(try SingleFileCheckpoint.inspect(data: try Fixture.file(header: header, data: data)))
        let runs = 1000  // ≈ 8 ms each in a debug build
        let outcomes = try fuzz(header, data: data, runs: runs, seed: 0x5EED_A7E1)
        print("single-file mutation fuzz (inference tensors): \(runs) runs, \(outcomes.sorted { $0.key < $1.key })")
        XCTAssertEqual(outcomes.values.reduce(0, +), runs)
        XCTAssertGreaterThan(outcomes["ModelError", default: 0], runs / 4, "few mutations reached config inference")
    }

    func testSeededMutationsOfTheWholeFileThroughLayerBindingNeverTrap() throws {
        let fixture = try Fixture()
        let runs = 40  // ≈ 65 ms each in a debug build (all three networks bound)
        let outcomes = try fuzz(fixture.header, data: fixture.data, runs: runs, seed: 0xB1_4D_1C6)
        print("single-file mutation fuzz (whole file, bound): \(runs) runs, \(outcomes.sorted { $0.key < $1.key })")
        XCTAssertEqual(outcomes.values.reduce(0, +), runs)
        XCTAssertGreaterThan(outcomes["ModelError", default: 0], runs / 10, "few mutations reached layer binding")
    }
}
