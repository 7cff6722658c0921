import AtelierImaging
import Foundation
import GRDB

/// Finishing an upscale: once every tile is done, the tiles are read back from their stored
/// PNGs, blended by the job's `TilePlan`, and written as `upscaled.png`; then the job succeeds with
/// its seam ratio.
///
/// The stitch reads the tiles from disk rather than keeping them in memory as they arrive, so it
/// is the same after a restart (the tile PNGs are the durable state) and memory is only held for
/// the one job being stitched. It runs outside the write lock and off the request path (the last
/// tile's complete_task is answered at once; `Coordinator.stitchInBackground`): other requests go
/// on meanwhile, and clients see the job succeed when the stitched image is written.
/// A tile whose stored file is missing or unreadable is queued again and rendered anew.
extension Coordinator {
    /// Upscale jobs that are running with every tile done (a crash between the last tile and the
    /// stitch leaves them so).
    static func upscalesAwaitingStitch(_ db: Database) throws -> [String] {
        try String.fetchAll(db, sql: """
            SELECT id FROM jobs WHERE kind = 'upscale' AND state = 'running'
              AND NOT EXISTS (SELECT 1 FROM tasks WHERE tasks.job_id = jobs.id AND tasks.state != 'done')
            ORDER BY seq
            """)
    }

    /// Stitches `jobID` if it is a running upscale with all tiles done; otherwise does nothing.
    /// Never throws: a stitch that cannot be made fails the job with the reason, except when the
    /// stitched image cannot be *written* (a full disk): that is retried by maintenance.
    func finishUpscale(_ jobID: String) {
        guard beginStitching(jobID) else { return }
        defer { endStitching(jobID) }
        do {
            let loaded = try store.read { db -> (JobRow, [Int: String])? in
                guard let job = try JobRow.fetch(db, id: jobID), job.kind == .upscale, job.state == .running,
                      try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM tasks WHERE job_id = ? AND state != 'done'",
                                       arguments: [jobID]) == 0 else { return nil }
                var paths = [Int: String]()
                for row in try Row.fetchAll(db, sql: "SELECT idx, path FROM results WHERE job_id = ? AND kind = 'tile'",
                                            arguments: [jobID]) {
                    if let idx: Int = row["idx"], let path: String = row["path"] { paths[idx] = path }
                }
                return (job, paths)
            }
            guard let (job, paths) = loaded else { return }

            // The plan the job was split with (`JobSplitter` stored its grid's inputs).
            let plan = try TilePlan(width: job.imageWidth, height: job.imageHeight, tile: job.tile, overlap: job.overlap)
            var stitcher = try plan.stitcher()
            var lost = [(index: Int, reason: String)]()
            var parametersText: String?
            for rect in plan.tiles {
                guard let path = paths[rect.index] else {
                    lost.append((rect.index, "no result was recorded"))
                    continue
                }
                do {
                    guard let bytes = try results.read(path) else {
                        lost.append((rect.index, "its file \(path) is missing"))
                        continue
                    }
                    let png = try PNGCodec.decode([UInt8](bytes), source: path)
                    try stitcher.add(tileIndex: rect.index, pixels: png.rgb().pixels)
                    if parametersText == nil { parametersText = png.parametersText }
                } catch {
                    lost.append((rect.index, "\(error)"))
                }
            }
            if !lost.isEmpty {
                try requeueLostTiles(jobID: jobID, lost: lost)
                return
            }

            let pixels = try stitcher.image()
            let seamRatio = try stitcher.seamRatio(of: pixels)
            let comment = plan.summary(seamRatio: seamRatio)
            // The tiles carry the generation parameters (every tile the same but for its size): the
            // stitched image gets them with the full size, so it reproduces itself like any result.
            var text = [PNGTextChunk(key: "Comment", value: comment)]
            if let parametersText, var parameters = try? GenerationParameters.parse(parametersText) {
                parameters.width = stitcher.outputWidth
                parameters.height = stitcher.outputHeight
                text.insert(.parameters(parameters), at: 0)
            }
            let png = try PNGCodec.encode(
                RGBImage(width: stitcher.outputWidth, height: stitcher.outputHeight, pixels: pixels), text: text)
            let path = ResultStore.relativePath(jobID: jobID, kind: .upscaled, index: 0)
            let nowMs = unixMilliseconds(now())
            do {
                try results.writeAtomically(Data(png), to: path)
            } catch {
                // A passing cause (a full disk, a permission fixed later): the tiles are safe on
                // disk and the job stays running with every tile done, so maintenance (and the
                // next start) stitches it again. Noted once per distinct error.
                try? store.write { db in
                    let message = "stitching the upscaled tiles could not write the result (\(error)); retrying"
                    if try JobRow.fetch(db, id: jobID)?.errorList.last != message {
                        try Coordinator.appendJobError(db, jobID: jobID, message)
                    }
                }
                return
            }
            try store.write { db in
                // Cancelled meanwhile: leave it cancelled (the file is harmless).
                guard try JobRow.fetch(db, id: jobID)?.state == .running else { return }
                try db.execute(sql: """
                    INSERT OR REPLACE INTO results (job_id, kind, idx, path, bytes, created) VALUES (?, 'upscaled', 0, ?, ?, ?)
                    """, arguments: [jobID, path, png.count, nowMs])
                try db.execute(sql: "UPDATE jobs SET state = 'succeeded', finished = ?, seam_ratio = ? WHERE id = ?",
                               arguments: [nowMs, seamRatio.isFinite ? seamRatio : nil, jobID])
            }
        } catch {
            let nowMs = unixMilliseconds(now())
            try? store.write { db in
                try failJob(db, jobID: jobID, reason: "stitching the upscaled tiles failed: \(error)", now: nowMs)
            }
        }
    }

    private func requeueLostTiles(jobID: String, lost: [(index: Int, reason: String)]) throws {
        try store.write { db in
            for tile in lost {
                let message = "the stored result of tile \(tile.index) is unusable (\(tile.reason)); rendering it again"
                try db.execute(sql: """
                    UPDATE tasks SET state = 'queued', last_error = ?, worker_id = NULL, lease_deadline = NULL
                    WHERE job_id = ? AND idx = ? AND state = 'done'
                    """, arguments: [message, jobID, tile.index])
                try db.execute(sql: "DELETE FROM results WHERE job_id = ? AND kind = 'tile' AND idx = ?",
                               arguments: [jobID, tile.index])
                try Coordinator.appendJobError(db, jobID: jobID, message)
            }
        }
    }
}
