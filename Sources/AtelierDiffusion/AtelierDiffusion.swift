// Images (PNG, resampling, tiling) live in AtelierImaging so the farm can use them without the
// engine; the pipelines take and return its types, so every user of the engine gets them too.
@_exported import AtelierImaging

/// AtelierDiffusion: everything between a prompt and a picture that is not a neural network —
/// tokenizer, torch-compatible seeds, schedulers, pipelines.
public enum AtelierDiffusion {}
