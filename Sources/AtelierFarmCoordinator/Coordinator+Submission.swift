import AtelierFarmProtocol
import AtelierImaging
import AtelierRequests
import Foundation
import Logging
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
            body.warnings = outcome.warnings
            return Coordinator.success(.submitJob(body))
        }.response
    }

    /// The warning a job for a model no worker serves yet is accepted with (scale from zero).
    static func waitingForWorkerWarning(model: String) -> String {
        "no worker serves model \"\(model)\" yet: the job is queued and starts when a worker with --model \(model)=PATH "
        + "registers (submit with --require-worker to be refused instead)"
    }

    /// The pin a job accepted with no worker serving its model gets from its first lease: the
    /// leasing worker's (weights digest, numerics, default side), and the expected result size
    /// that side implies (`expectedResultSize`). Later tasks go only to workers of that group.
    static func firstLeasePin(jobSpec: Data, defaultSide: Int) throws -> (width: Int, height: Int, exact: Bool) {
        try expectedResultSize(try Atelier_V1_SubmitJobRequest(serializedBytes: jobSpec), defaultSide: defaultSide)
    }

    /// The model-specific check a submission gets when a worker serving its model has registered,
    /// made later for jobs accepted before one had: once workers serving the model have
    /// registered and none has a UNet that fits the job's mode, the job fails with the line its
    /// submission would have been refused with. (A fitting worker leases and pins it instead.)
    /// Run after registrations and on the maintenance timer.
    func failUnservablePendingJobs() throws {
        for job in try store.pendingPinJobs() where !job.registeredChannels.isEmpty {
            guard !job.registeredChannels.contains(where: { ChannelRequirement.fits(job.acceptedChannels, unetInChannels: $0) })
            else { continue }
            let reason = ChannelRequirement.mismatch(model: job.model, channels: job.registeredChannels, accepted: job.acceptedChannels)
            try store.failJob(jobID: job.jobID, reason: reason, now: unixMilliseconds(now()))
            logger.warning("failed job \(job.jobID): \(reason)", metadata: ["job_id": .string(job.jobID)])
            changes.signal()
        }
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
