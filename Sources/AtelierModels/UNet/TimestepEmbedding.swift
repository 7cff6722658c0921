import Foundation
import AtelierKernels

/// Sinusoidal timestep features (diffusers `get_timestep_embedding`), computed in float32 exactly
/// as torch does — the frequency table is float32 exp of float32 products — because t·freq for
/// t≈1000 makes sin/cos sensitive to every bit.
public enum TimestepFeatures {
    public static func sinusoid(_ timesteps: [Float], channels: Int, flipSinToCos: Bool, freqShift: Int) -> Tensor {
        let half = channels / 2
        let logMax = Float(-log(10000.0))
        let denom = Float(half - freqShift)
        let freqs: [Float] = (0..<half).map { i in expf((logMax * Float(i)) / denom) }
        let out = Tensor(zeros: [timesteps.count, channels])
        for (b, t) in timesteps.enumerated() {
            let row = out.pointer + b * channels
            for i in 0..<half {
                let arg = t * freqs[i]
                let (s, c) = (sinf(arg), cosf(arg))
                if flipSinToCos { row[i] = c; row[half + i] = s } else { row[i] = s; row[half + i] = c }
            }
        }
        return out
    }
}

/// linear_1 → SiLU → linear_2.
struct TimestepEmbedding {
    let linear1: Linear, linear2: Linear

    init(_ w: Weights, inChannels: Int, embedDim: Int) throws {
        linear1 = try Linear(w["linear_1"], inFeatures: inChannels, outFeatures: embedDim)
        linear2 = try Linear(w["linear_2"], inFeatures: embedDim, outFeatures: embedDim)
    }

    func callAsFunction(_ x: Tensor) -> Tensor { linear2(Activation.silu(linear1(x))) }
}
