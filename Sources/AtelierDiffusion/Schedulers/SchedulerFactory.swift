// The scheduler names live in AtelierRequests (one list for every door); re-exported so the
// engine's users keep writing `SchedulerName`.
@_exported import AtelierRequests

/// Builds a scheduler from a model's `scheduler_config.json`, as
/// `SchedulerClass.from_config(config)` does in diffusers.
///
/// - `name`: one of `SchedulerName` ("ddim", "pndm", "euler", "euler-a", "dpm++2m",
///   "dpm++2m-karras", "ddpm"), or nil to use the config's own `_class_name`.
/// - Switching class keeps every key the new class understands and gives the others that class's
///   defaults — so the SD2 configs (which lack `timestep_spacing`) run Euler/DPM with "linspace"
///   and DDIM/PNDM with "leading", exactly like the model-card recipes (SD2-SPEC §5.1).
/// - The DPM names pin the algorithm: "dpm++2m" is `algorithm_type` "dpmsolver++",
///   `solver_order` 2, `use_karras_sigmas` false; "dpm++2m-karras" the same with Karras σ.
///   (diffusers would keep those keys from a DPM config; a name is taken as a request for
///   that sampler.)
///
/// Pipelines still apply their own config fix-ups before this (diffusers' txt2img/img2img/inpaint
/// force `steps_offset` = 1 and txt2img/img2img `clip_sample` = false; SD2-SPEC §4).
public func makeScheduler(name: String?, config: SchedulerConfig) throws -> any Scheduler {
    let chosen: SchedulerName
    if let name {
        guard let parsed = SchedulerName(rawValue: name.lowercased()) else {
            throw SchedulerError.unknownSchedulerName(name, valid: SchedulerName.allCases.map(\.rawValue))
        }
        chosen = parsed
    } else {
        let byClass: [String: SchedulerName] = [
            "DDIMScheduler": .ddim, "PNDMScheduler": .pndm, "EulerDiscreteScheduler": .euler,
            "EulerAncestralDiscreteScheduler": .eulerAncestral, "DPMSolverMultistepScheduler": .dpmPlusPlus2M,
            "DDPMScheduler": .ddpm,
        ]
        guard let className = config.className, let mapped = byClass[className] else {
            throw SchedulerError.unsupportedClassName(config.className, valid: byClass.keys.sorted())
        }
        if mapped == .dpmPlusPlus2M { return try DPMSolverMultistepScheduler(config: config) }
        chosen = mapped
    }

    var effective = config
    effective.className = chosen.className
    switch chosen {
    case .ddim: return try DDIMScheduler(config: effective)
    case .pndm: return try PNDMScheduler(config: effective)
    case .euler: return try EulerDiscreteScheduler(config: effective)
    case .eulerAncestral: return try EulerAncestralDiscreteScheduler(config: effective)
    case .dpmPlusPlus2M, .dpmPlusPlus2MKarras:
        effective.algorithmType = "dpmsolver++"
        effective.solverOrder = 2
        effective.useKarrasSigmas = chosen == .dpmPlusPlus2MKarras
        return try DPMSolverMultistepScheduler(config: effective)
    case .ddpm: return try DDPMScheduler(config: effective)
    }
}
