import AtelierFarmProtocol
import AtelierImaging
import AtelierRequests
import Foundation
import SwiftProtobuf

/// complete_task and fail_task.
///
/// Exactly once (`CoordinatorStore.complete`): a result is accepted only with the task's current token while the task is
/// leased, checked inside the write transaction that marks it done. A late completion after the
/// lease was requeued, a second completion after success, or a completion of a cancelled task is
/// refused with STALE_LEASE and its PNG discarded; a *resend* of the accepted request (same
/// request_id) gets the stored success instead.
extension Coordinator {
    func completeTask(_ r: Atelier_V1_CompleteTaskRequest, request: Atelier_V1_Request,
                      peer: String) throws -> Atelier_V1_Response {
        let claim = LeaseClaim(taskID: r.taskID, workerID: r.workerID, token: r.fencingToken)
        // Cheap check on a snapshot first: stale completions cost no decoding and no disk writes.
        // (The authoritative check is repeated in the store's transaction.)
        let target = try store.completionTarget(claim)

        if let rejection = validateResult(r.resultPng, target: target) {
            // A bad result is a failed attempt (the worker is told why, and the task is retried).
            return try store.fail(claim, class: .rejected, message: "result rejected: \(rejection.message)",
                                  now: unixMilliseconds(now()), log: logged(request, peer: peer)) {
                Coordinator.failure(rejection)
            }.response
        }

        let path = ResultStore.relativePath(jobID: target.jobID, kind: target.isUpscale ? .tile : .image,
                                            index: target.taskIndex)
        let staged = try results.stage(r.resultPng, at: path)
        defer { results.discard(staged) }  // nothing left to remove once committed
        // Into place before the transaction when the name is free (see `ResultStore`), so the
        // writer is not held over the rename and its directory fsync.
        let placement = results.placeIfAbsent(staged)
        completionWillCommit?()

        let hooks = ResultFileHooks(
            accepted: { [results] in
                // Either way the file is in place before the transaction that records it commits.
                if placement == .deferred { try results.commit(staged) }
            },
            refused: { [results] in
                // Refused after all (the lease was lost or the job cancelled since the snapshot):
                // take back the file placed above, unless a recorded result replaced it.
                if case .placed(let inode) = placement { results.unplace(staged, inode: inode) }
            })
        let outcome = try store.complete(claim, result: StoredResult(path: path, bytes: staged.bytes), file: hooks,
                                         now: unixMilliseconds(now()), log: logged(request, peer: peer)) { _ in
            Coordinator.success(.completeTask(Atelier_V1_CompleteTaskResponse()))
        }
        if let ran = outcome.outcome, ran.allTilesIn {
            // The worker is answered now; the job turns succeeded when the stitch is written.
            stitchInBackground(ran.jobID)
        }
        return outcome.response
    }

    func failTask(_ r: Atelier_V1_FailTaskRequest, request: Atelier_V1_Request,
                  peer: String) throws -> Atelier_V1_Response {
        try store.fail(LeaseClaim(taskID: r.taskID, workerID: r.workerID, token: r.fencingToken), class: .failed,
                       message: r.message, now: unixMilliseconds(now()), log: logged(request, peer: peer)) {
            Coordinator.success(.failTask(Atelier_V1_FailTaskResponse()))
        }.response
    }

    /// Why a result cannot be accepted, or nil. The size the PNG *declares* (its IHDR header) is
    /// checked first, before a single pixel is decoded: a 782 KB PNG can declare 16384×16384 and
    /// would make the decoder allocate gigabytes. An upscaled tile must be exactly 4× its tile
    /// (the stitcher needs that); a batch image must have the size fixed at submit
    /// (`expectedResultSize`: exact, or at most). Only then must the PNG decode.
    func validateResult(_ png: Data, target: CompletionTarget) -> CoordinatorError? {
        let spec = target.spec
        guard !png.isEmpty else { return .invalid("result_png is empty") }
        guard png.count <= options.maxResultBytes else {
            return .tooLarge("result_png is \(png.count >> 20) MiB, over the limit of \(options.maxResultBytes >> 20) MiB")
        }
        let header: ImageSize
        do {
            header = try PNGHeader.declaredSize(png, source: "result_png")
        } catch {
            return .invalid("result_png: \(error)")
        }
        let declared = "\(header.width)x\(header.height)"
        switch spec.kind {
        case .upscaleTile(let tile)?:
            let w = Int(tile.tile.width) * 4, h = Int(tile.tile.height) * 4
            guard header.width == w, header.height == h else {
                return .invalid("an upscaled tile must be \(w)x\(h) (4x its \(tile.tile.width)x\(tile.tile.height) tile), "
                                + "the PNG declares \(declared)")
            }
        case .image?:
            // Jobs from before the size was fixed at submit: at most the largest size a job may ask for.
            let (w, h) = target.expectedWidth > 0 ? (target.expectedWidth, target.expectedHeight) : (4096, 4096)
            if target.expectedExact {
                guard header.width == w, header.height == h else {
                    return .invalid("the image must be \(w)x\(h), the PNG declares \(declared)")
                }
            } else {
                guard header.width <= w, header.height <= h else {
                    return .invalid("the image may be at most \(w)x\(h), the PNG declares \(declared)")
                }
            }
        case nil:
            return .invalid("the task has no kind; cannot check its result")
        }
        do {
            let decoded = try PNGCodec.decode([UInt8](png), source: "result_png")
            guard decoded.width == header.width, decoded.height == header.height else {
                return .invalid("result_png decodes to \(decoded.width)x\(decoded.height) but declares \(declared)")
            }
        } catch {
            return .invalid("\(error)")
        }
        return nil
    }
}
