import AtelierKernels

/// The BiT ResNet of DPT-Hybrid (`BitBackbone` → `BitModel`): stem, then stages of bottlenecks
/// with strides 1, 2, 2 (…), returning the feature maps named by `out_features` — for SD2-depth
/// stage1 256@96², stage2 512@48², stage3 1024@24² from a 384² input.
///
/// Checkpoint names under `dpt.embeddings.backbone.bit`: `embedder.{convolution,norm}`,
/// `encoder.stages.S.layers.L.{conv1,conv2,conv3,norm1,norm2,norm3,downsample.{conv,norm}}`.
struct BitBackbone {
    let config: BitConfig
    let embedder: BitEmbeddings
    let stages: [[BitBottleneckLayer]]
    /// Indices into [stem, stage1, stage2, …] of the maps to return.
    let featureIndices: [Int]
    let policy: BitPaddingPolicy
    /// Output channels per stage: `make_div(hidden_size · width_factor)`.
    let stageChannels: [Int]

    init(_ w: Weights, config: BitConfig, file: String) throws {
        try config.validate(file: file)
        self.config = config
        policy = try BitPaddingPolicy(globalPadding: config.globalPadding, file: file)
        embedder = try BitEmbeddings(w["embedder"], config: config, policy: policy)
        featureIndices = try config.featureIndices(file: file)
        var built: [[BitBottleneckLayer]] = []
        var channels: [Int] = []
        var inCh = config.embeddingSize
        for s in 0..<config.stageCount {
            let outCh = BitConfig.makeDivisible(Double(config.hiddenSizes[s] * config.widthFactor))
            let stride = s == 0 ? 1 : 2
            let stage = w["encoder.stages"][s]["layers"]
            var layers: [BitBottleneckLayer] = []
            for l in 0..<config.depths[s] {
                let first = l == 0
                layers.append(try BitBottleneckLayer(stage[l], config: config, policy: policy,
                                                     inChannels: first ? inCh : outCh, outChannels: outCh,
                                                     stride: first ? stride : 1, isFirstLayer: first))
            }
            built.append(layers)
            channels.append(outCh)
            inCh = outCh
        }
        stages = built
        stageChannels = channels
    }

    /// The feature maps selected by `out_features`, in that order.
    func callAsFunction(_ pixels: Tensor) -> [Tensor] {
        var maps = [embedder(pixels)]
        let last = featureIndices.max() ?? 0
        for (s, layers) in stages.enumerated() where s < last {  // later stages feed nothing
            var h = maps[maps.count - 1]
            for layer in layers { h = layer(h) }
            maps.append(h)
        }
        return featureIndices.map { maps[$0] }
    }

    /// Channels of each returned map.
    var featureChannels: [Int] { featureIndices.map { $0 == 0 ? config.embeddingSize : stageChannels[$0 - 1] } }

    /// Sides of each returned map for a square input, checking on the way that every residual
    /// branch and its shortcut agree (odd sides with VALID padding, for instance, do not) —
    /// so that a bad input size is an error at load, not a crash mid-forward.
    func featureSides(inputSide: Int) throws -> [Int] {
        func out(_ x: Int, _ k: Int, _ s: Int, _ rule: BitPadding) -> Int {
            let p = rule.padding(height: x, width: x)
            let span = x + p.top + p.bottom - k
            return span < 0 ? 0 : span / s + 1
        }
        var x = out(inputSide, 7, 2, policy.rule(kernel: 7, stride: 2))
        if embedder.padAfterConv { x += 2 }
        x = out(x, 3, 2, embedder.poolPadding)
        guard x > 0 else { throw ModelError.unsupported("a \(inputSide) px input is too small for the BiT stem") }
        var sides = [x]
        for s in 0..<stages.count {
            let stride = s == 0 ? 1 : 2
            let main = out(x, 3, stride, policy.rule(kernel: 3, stride: stride))
            let short = out(x, 1, stride, policy.rule(kernel: 1, stride: stride))
            guard main == short, main > 0 else {
                throw ModelError.unsupported("a \(inputSide) px input gives BiT stage \(s + 1) maps of \(main) and \(short) px on its two branches")
            }
            x = main
            sides.append(x)
        }
        return featureIndices.map { sides[$0] }
    }
}
