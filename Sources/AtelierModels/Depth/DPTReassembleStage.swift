import AtelierKernels

/// DPT-Hybrid's `DPTReassembleStage`: turns the selected ViT hidden states back into feature maps.
/// Stages 0 and 1 are the BiT maps and pass through (`neck_ignore_stages`). Each later stage:
/// - readout "project": every patch token is concatenated with the cls token (2·D) and mapped
///   back to D by Linear + the ViT activation (GELU);
/// - tokens → a √N×√N map, a 1×1 conv to `neck_hidden_sizes[i]`;
/// - resize by `reassemble_factors[i]`: 1 identity, f > 1 a stride-f transposed conv, f < 1 a
///   3×3 conv with stride 1/f and padding 1 (SD2-depth: 24² → 12² for the last stage).
///
/// Names: `neck.reassemble_stage.readout_projects.i.0`, `neck.reassemble_stage.layers.i.{projection,resize}`.
struct DPTReassembleStage {
    enum Resize {
        case identity
        case up(PatchConvTranspose2d)
        case down(Conv2d)
    }

    struct Layer {
        let readout: Linear
        let projection: Conv2d
        let resize: Resize
    }

    /// One entry per neck stage; nil for the pass-through stages.
    let layers: [Layer?]
    let activation: ActivationKind

    init(_ w: Weights, config c: DPTConfig) throws {
        let d = c.hiddenSize
        activation = c.hiddenAct
        layers = try c.neckHiddenSizes.enumerated().map { i, channels in
            if c.neckIgnoreStages.contains(i) { return nil }
            let readout = try Linear(w["readout_projects"][i]["0"], inFeatures: 2 * d, outFeatures: d)
            let l = w["layers"][i]
            let projection = try Conv2d(l["projection"], inChannels: d, outChannels: channels, kernel: 1)
            let factor = c.reassembleFactors[i]
            let resize: Resize
            if factor > 1 {
                resize = .up(try PatchConvTranspose2d(l["resize"], inChannels: channels, outChannels: channels, factor: Int(factor)))
            } else if factor < 1 {
                resize = .down(try Conv2d(l["resize"], inChannels: channels, outChannels: channels, kernel: 3,
                                          stride: Int(1 / factor), padding: .symmetric(1)))
            } else {
                resize = .identity
            }
            return Layer(readout: readout, projection: projection, resize: resize)
        }
    }

    /// `inputs`: the two BiT maps, then the selected hidden states [B, 1 + N, D].
    func callAsFunction(_ inputs: [Tensor]) -> [Tensor] {
        zip(inputs, layers).map { x, layer in
            guard let layer else { return x }
            let (b, tokens, d) = (x.shape[0], x.shape[1], x.shape[2])
            let n = tokens - 1
            let side = Int(Double(n).squareRoot())
            precondition(side * side == n, "reassemble: \(n) patch tokens do not form a square grid")
            // [patch token | cls token] per position.
            let joined = Tensor(uninitialized: [b, n, 2 * d])
            for bi in 0..<b {
                let src = x.pointer + bi * tokens * d, dst = joined.pointer + bi * n * 2 * d
                for t in 0..<n {
                    (dst + t * 2 * d).update(from: src + (t + 1) * d, count: d)
                    (dst + t * 2 * d + d).update(from: src, count: d)
                }
            }
            let projected = activation.apply(layer.readout(joined))
            let map = layer.projection(Elementwise.tokensToChannels(projected, height: side, width: side))
            switch layer.resize {
            case .identity: return map
            case .up(let t): return t(map)
            case .down(let conv): return conv(map)
            }
        }
    }
}
