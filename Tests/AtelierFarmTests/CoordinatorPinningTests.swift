@testable import AtelierFarmCoordinator
@testable import AtelierFarmProtocol
@testable import AtelierFarmTransport
@testable import AtelierFarmWorker
@testable import AtelierRenderEngine
import AtelierModels
import Foundation
import XCTest

/// Jobs are pinned at submit to one (weights digest, numerics) group of their model.
final class CoordinatorPinningTests: XCTestCase {
    static let digestA = String(repeating: "a", count: 64)
    static let digestB = String(repeating: "b", count: 64)

    func register(_ h: CoordinatorHarness, _ name: String, digest: String, numerics: String = "fp32/openblas-haswell",
                  side: UInt32 = 0) -> String {
        var r = Atelier_V1_RegisterWorkerRequest()
        r.workerName = name
        r.capabilities.numerics = numerics
        r.capabilities.models = [.with { $0.name = "sd21"; $0.unetInChannels = 4; $0.weightsSha256 = digest; $0.defaultImageSide = side }]
        let response = h.send(.registerWorker(r))
        XCTAssertFalse(response.hasError, response.error.message)
        return response.registerWorker.workerID
    }

    /// Two workers registering `sd21` with different files never contribute to the same job.
    func testWorkersWithDifferentWeightsNeverShareAJob() throws {
        let h = try CoordinatorHarness()
        let a1 = register(h, "a1", digest: Self.digestA)
        let a2 = register(h, "a2", digest: Self.digestA)
        let b1 = register(h, "b1", digest: Self.digestB)
        let job = h.submit(h.batch(count: 4, model: "sd21"))
        let status = h.status(job)
        XCTAssertEqual(status.weightsSha256, Self.digestA, "the group with the most live workers")
        XCTAssertEqual(status.numerics, "fp32/openblas-haswell")
        XCTAssertNil(h.lease(b1), "b1 serves sd21 with other files: none of this job's tasks")
        var renderedBy = Set<String>()
        for worker in [a1, a2, a1, a2] {
            let lease = try XCTUnwrap(h.lease(worker))
            XCTAssertFalse(h.complete(worker, lease).hasError)
            renderedBy.insert(worker)
        }
        XCTAssertEqual(h.status(job).state, .succeeded)
        XCTAssertEqual(renderedBy, [a1, a2])
    }

    /// Different numerics (kernel family) split a group just like different weights; with equal
    /// numbers of live workers the choice is deterministic (smallest digest, then numerics).
    func testPinIsDeterministicAndIncludesNumerics() throws {
        let h = try CoordinatorHarness()
        let skylake = register(h, "skylake", digest: Self.digestA, numerics: "fp32/openblas-skylakex")
        let haswell = register(h, "haswell", digest: Self.digestA, numerics: "fp32/openblas-haswell")
        let other = register(h, "other", digest: Self.digestB, numerics: "fp32/openblas-haswell")
        let job = h.submit(h.batch(count: 2, model: "sd21"))
        let status = h.status(job)
        XCTAssertEqual(status.weightsSha256, Self.digestA)
        XCTAssertEqual(status.numerics, "fp32/openblas-haswell", "ties: smallest digest, then numerics")
        XCTAssertNil(h.lease(skylake))
        XCTAssertNil(h.lease(other))
        XCTAssertNotNil(h.lease(haswell))

        // The group with more live workers wins once the others have gone quiet.
        h.clock.advance(3600)
        _ = register(h, "b-2", digest: Self.digestB)  // the only live worker now
        let later = h.submit(h.batch(count: 1, model: "sd21"))
        XCTAssertEqual(h.status(later).weightsSha256, Self.digestB)

        var bad = Atelier_V1_RegisterWorkerRequest()
        bad.workerName = "bad"
        bad.capabilities.models = [.with { $0.name = "sd21"; $0.weightsSha256 = "not hex" }]
        XCTAssertEqual(h.send(.registerWorker(bad)).error.code, .invalidArgument)
    }

    /// The digest is SHA-256 of whole files, streamed, and cached by path, size and mtime.
    func testWeightsDigestHashesWholeFilesAndCachesThem() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("atelier-digest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("unet"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("unet/model.safetensors")
        try Data("abc".utf8).write(to: file)
        let cache = WeightsDigest.Cache(file: dir.appendingPathComponent("cache/weights-sha256.tsv"))
        XCTAssertEqual(try WeightsDigest.of(file, cache: cache),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "FIPS 180-2 'abc'")
        // Streaming equals the one-shot digest across block boundaries.
        for size in [0, 55, 56, 63, 64, 65, 1000, 70_003] {
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            var hasher = SHA256Hasher()
            bytes.withUnsafeBytes { raw in
                let half = raw.count / 3
                hasher.update(UnsafeRawBufferPointer(rebasing: raw[0..<half]))
                hasher.update(UnsafeRawBufferPointer(rebasing: raw[half...]))
            }
            XCTAssertEqual(hasher.finalizeHex(), SHA256.hex(bytes), "size \(size)")
        }
        // A folder: the digest of the sorted "path<TAB>sha256" lines, so any file change shows.
        let folderDigest = try WeightsDigest.of(dir, cache: cache)
        XCTAssertEqual(folderDigest.count, 64)
        let cached = try String(contentsOf: cache.file, encoding: .utf8)
        XCTAssertTrue(cached.contains("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"))
        // A fresh cache object reads the file: a planted digest for the same path/size/mtime is
        // returned without hashing (restarts are fast).
        let planted = cached.replacingOccurrences(of: "ba7816bf", with: "00000000")
        try Data(planted.utf8).write(to: cache.file)
        let reread = WeightsDigest.Cache(file: cache.file)
        XCTAssertTrue(try WeightsDigest.of(file, cache: reread).hasPrefix("00000000"))
        // A changed file (size and mtime) is hashed again.
        try Data("abcd".utf8).write(to: file)
        XCTAssertEqual(try WeightsDigest.of(file, cache: reread),
                       "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589")
        XCTAssertNotEqual(try WeightsDigest.of(dir, cache: reread), folderDigest)
    }

    /// A worker that comes back with other files while holding a lease of a pinned job loses
    /// that lease (requeued, not charged): its render cannot join the job.
    func testWorkerReRegisteringWithOtherWeightsLosesItsPinnedLease() throws {
        let h = try CoordinatorHarness()
        let changing = register(h, "changing", digest: Self.digestA)
        let job = h.submit(h.batch(count: 1, model: "sd21"))
        let lease = try XCTUnwrap(h.lease(changing))
        var again = Atelier_V1_RegisterWorkerRequest()
        again.workerName = "changing"
        again.workerID = changing
        again.capabilities.numerics = "fp32/openblas-haswell"
        again.capabilities.models = [.with { $0.name = "sd21"; $0.unetInChannels = 4; $0.weightsSha256 = Self.digestB }]
        XCTAssertFalse(h.send(.registerWorker(again)).hasError)
        XCTAssertEqual(h.status(job).tasks.first?.state, .queued)
        XCTAssertEqual(h.status(job).tasks.first?.attempts, 0, "not charged")
        XCTAssertEqual(h.complete(changing, lease).error.code, .staleLease, "its render cannot join the job")
        XCTAssertNil(h.lease(changing))
        let faithful = register(h, "faithful", digest: Self.digestA)
        let retry = try XCTUnwrap(h.lease(faithful))
        XCTAssertFalse(h.complete(faithful, retry).hasError)
        XCTAssertEqual(h.status(job).state, .succeeded)
    }
}
