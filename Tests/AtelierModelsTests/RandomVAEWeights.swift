import Foundation
import AtelierKernels
@testable import AtelierModels

/// Deterministic random weights for an AutoencoderKL of any config, under diffusers' names —
/// so tests can run a VAE with SD2's real channel counts (128/256/512/512, 32 groups) without a
/// 330 MB fixture. Scales follow make_fixtures.py's `reinit_` (conv/linear weights with variance
/// 1/fan_in, biases ≈ 0.1, norm weights ≈ 1), so activations stay O(1) through every layer.
final class RandomVAEWeights: WeightSource {
    let sourceDescription = "<random VAE weights>"
    private(set) var shapes: [String: [Int]] = [:]
    private var tensors: [String: Tensor] = [:]

    init(config c: AutoencoderKLConfig, seed: UInt64) {
        let ch = c.blockOutChannels, z = c.latentChannels
        func conv(_ p: String, _ o: Int, _ i: Int, _ k: Int) { shapes[p + ".weight"] = [o, i, k, k]; shapes[p + ".bias"] = [o] }
        func norm(_ p: String, _ n: Int) { shapes[p + ".weight"] = [n]; shapes[p + ".bias"] = [n] }
        func resnet(_ p: String, _ i: Int, _ o: Int) {
            norm(p + ".norm1", i); conv(p + ".conv1", o, i, 3); norm(p + ".norm2", o); conv(p + ".conv2", o, o, 3)
            if i != o { conv(p + ".conv_shortcut", o, i, 1) }
        }
        func mid(_ p: String, _ n: Int) {
            resnet(p + ".resnets.0", n, n); resnet(p + ".resnets.1", n, n)
            if c.midBlockAddAttention {
                norm(p + ".attentions.0.group_norm", n)
                for l in ["to_q", "to_k", "to_v", "to_out.0"] { shapes["\(p).attentions.0.\(l).weight"] = [n, n]; shapes["\(p).attentions.0.\(l).bias"] = [n] }
            }
        }
        conv("encoder.conv_in", ch[0], c.inChannels, 3)
        var out = ch[0]
        for i in ch.indices {
            let inCh = out; out = ch[i]
            for j in 0..<c.layersPerBlock { resnet("encoder.down_blocks.\(i).resnets.\(j)", j == 0 ? inCh : out, out) }
            if i < ch.count - 1 { conv("encoder.down_blocks.\(i).downsamplers.0.conv", out, out, 3) }
        }
        mid("encoder.mid_block", ch[ch.count - 1])
        norm("encoder.conv_norm_out", ch[ch.count - 1]); conv("encoder.conv_out", 2 * z, ch[ch.count - 1], 3)
        let rev = Array(ch.reversed())
        conv("decoder.conv_in", rev[0], z, 3)
        mid("decoder.mid_block", rev[0])
        out = rev[0]
        for i in rev.indices {
            let prev = out; out = rev[i]
            for j in 0...c.layersPerBlock { resnet("decoder.up_blocks.\(i).resnets.\(j)", j == 0 ? prev : out, out) }
            if i < rev.count - 1 { conv("decoder.up_blocks.\(i).upsamplers.0.conv", out, out, 3) }
        }
        norm("decoder.conv_norm_out", ch[0]); conv("decoder.conv_out", c.outChannels, ch[0], 3)
        if c.useQuantConv { conv("quant_conv", 2 * z, 2 * z, 1) }
        if c.usePostQuantConv { conv("post_quant_conv", z, z, 1) }

        var state = seed
        for key in shapes.keys.sorted() {
            let shape = shapes[key]!
            let t = Tensor(uninitialized: shape)
            // Uniform with the variance of make_fixtures' normal draws: a = √3·σ.
            let isNorm = key.contains("norm")
            let sigma: Float = shape.count > 1 ? (1 / Float(shape.dropFirst().reduce(1, *))).squareRoot() : 0.1
            let a = 3.0.squareRoot() * Double(sigma)
            let centre: Float = isNorm && key.hasSuffix(".weight") ? 1 : 0
            for i in 0..<t.count {
                state &+= 0x9E37_79B9_7F4A_7C15
                var x = state
                x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
                x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
                x ^= x >> 31
                let u = Double(x >> 11) / Double(1 << 53)  // [0, 1)
                t.pointer[i] = centre + Float((2 * u - 1) * a)
            }
            tensors[key] = t
        }
    }

    var keys: [String] { shapes.keys.sorted() }
    func contains(_ key: String) -> Bool { shapes[key] != nil }
    func shape(of key: String) -> [Int]? { shapes[key] }
    func tensor(_ key: String) throws -> Tensor {
        guard let t = tensors[key] else { throw ModelError.missingWeight(key: key, source: sourceDescription) }
        return t
    }
}
