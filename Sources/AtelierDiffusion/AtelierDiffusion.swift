/// AtelierDiffusion: everything between a prompt and a picture that is not a neural network —
/// tokenizer, torch-compatible seeds, schedulers, pipelines, image I/O.
public enum AtelierDiffusion {}
