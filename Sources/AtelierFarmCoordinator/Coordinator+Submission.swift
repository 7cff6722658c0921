import AtelierFarmProtocol
import AtelierImaging
import AtelierRequests
import Foundation
import SwiftProtobuf

/// submit_job: validate and split outside the lock, then hand the plan to the store, which checks
/// the model and the queue cap and inserts the job and its tasks atomically.
extension Coordinator {
    func submitJob(_ r: Atelier_V1_SubmitJobRequest, request: Atelier_V1_Request,
                   peer: String) throws -> Atelier_V1_Response {
        let plan = try JobSplitter.plan(r, options: options)
        return try store.submit(NewJob(request: r, plan: plan, peer: peer, owner: callerName(request)), now: unixMilliseconds(now()),
                                log: logged(request, peer: peer)) { outcome in
            var body = Atelier_V1_SubmitJobResponse()
            body.jobID = outcome.jobID
            body.taskCount = UInt32(clamping: outcome.taskCount)
            return Coordinator.success(.submitJob(body))
        }.response
    }

    /// The size every image of a batch must have, as the pipeline decides it:
    /// - explicit `width`×`height`: exactly that;
    /// - img2img / depth2img without a size: the init image's size rounded down to the VAE's
    ///   factor, so at most the init image's size (read from its PNG header);
    /// - txt2img / inpainting without a size: the pinned group's `default_image_side`, exactly;
    /// - otherwise (workers that do not report their side): at most 4096×4096, the largest size
    ///   a job may ask for.
    /// Upscale tiles are checked against their tile instead (exactly 4×).
    static func expectedResultSize(_ r: Atelier_V1_SubmitJobRequest,
                                   defaultSide: Int) throws -> (width: Int, height: Int, exact: Bool) {
        guard case .batch(let batch)? = r.job else { return (0, 0, false) }
        let p = batch.params
        let limit = 4096
        if p.width != 0, p.height != 0 { return (Int(p.width), Int(p.height), true) }
        if !p.initImagePng.isEmpty, p.maskPng.isEmpty {
            let header = try FarmRequestValidation.declaredSize(p.initImagePng, .initImage)
            return (p.width != 0 ? Int(p.width) : min(header.width, limit),
                    p.height != 0 ? Int(p.height) : min(header.height, limit), false)
        }
        if defaultSide > 0 {
            return (p.width != 0 ? Int(p.width) : defaultSide, p.height != 0 ? Int(p.height) : defaultSide, true)
        }
        return (p.width != 0 ? Int(p.width) : limit, p.height != 0 ? Int(p.height) : limit, false)
    }
}
