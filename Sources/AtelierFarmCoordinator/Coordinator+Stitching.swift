import AtelierImaging
import Foundation

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
    /// Stitches `jobID` if it is a running upscale with all tiles done; otherwise does nothing.
    /// Never throws: a stitch that cannot be made fails the job with the reason, except when the
    /// stitched image cannot be *written* (a full disk): that is retried by maintenance.
    func finishUpscale(_ jobID: String) {
        guard beginStitching(jobID) else { return }
        defer { endStitching(jobID) }
        do {
            guard let job = try store.stitchInputs(jobID: jobID) else { return }
            let paths = job.tilePaths

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
                try store.requeueLostTiles(jobID: jobID, lost: lost)
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
                try? store.noteJobError(
                    jobID: jobID, message: "stitching the upscaled tiles could not write the result (\(error)); retrying")
                return
            }
            try store.recordStitched(jobID: jobID, path: path, bytes: png.count,
                                     seamRatio: seamRatio.isFinite ? seamRatio : nil, now: nowMs)
        } catch {
            let nowMs = unixMilliseconds(now())
            try? store.failJob(jobID: jobID, reason: "stitching the upscaled tiles failed: \(error)", now: nowMs)
        }
    }
}
