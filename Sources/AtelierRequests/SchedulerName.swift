/// The scheduler names Atelier knows, with the diffusers class each one maps to.
///
/// This is the one list: the CLI, the coordinator, the worker and the engine
/// (`AtelierDiffusion.makeScheduler`) all read it from here, so a name accepted at one door is
/// accepted at every door.
public enum SchedulerName: String, Sendable, CaseIterable {
    case ddim
    case pndm
    case euler
    case eulerAncestral = "euler-a"
    case dpmPlusPlus2M = "dpm++2m"
    case dpmPlusPlus2MKarras = "dpm++2m-karras"
    case ddpm

    /// The diffusers class name.
    public var className: String {
        switch self {
        case .ddim: return "DDIMScheduler"
        case .pndm: return "PNDMScheduler"
        case .euler: return "EulerDiscreteScheduler"
        case .eulerAncestral: return "EulerAncestralDiscreteScheduler"
        case .dpmPlusPlus2M, .dpmPlusPlus2MKarras: return "DPMSolverMultistepScheduler"
        case .ddpm: return "DDPMScheduler"
        }
    }

    /// Whether a request may name it. DDPM is only the x4 upscaler's noise-augmentation schedule
    /// (and a class a model's `scheduler_config.json` may name): as a sampler it needs ~1000
    /// steps to give a picture, so `render` never offered it and no door accepts it.
    public var isSelectable: Bool { self != .ddpm }

    /// The names a request may use, in the order help texts list them.
    public static var selectable: [SchedulerName] { allCases.filter(\.isSelectable) }

    /// "ddim, pndm, euler, euler-a, dpm++2m, dpm++2m-karras".
    public static var selectableList: String { selectable.map(\.rawValue).joined(separator: ", ") }
}
