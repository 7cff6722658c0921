import AtelierKernels

/// diffusers' Transformer2DModel for continuous inputs: GroupNorm (eps 1e-6), proj_in (Linear
/// for SD2's use_linear_projection, else 1×1 conv), transformer blocks, proj_out, residual.
struct Transformer2DModel {
    let norm: GroupNorm
    let projIn: Linear?, projInConv: Conv2d?
    let projOut: Linear?, projOutConv: Conv2d?
    let blocks: [BasicTransformerBlock]

    init(_ w: Weights, channels: Int, heads: Int, layers: Int, crossDim: Int, groups: Int,
         linearProjection: Bool, onlyCrossAttention: Bool) throws {
        guard heads > 0, channels % heads == 0 else {
            throw ModelError.invalidConfig(file: "unet/config.json", reason: "\(channels) channels cannot be split into \(heads) attention heads")
        }
        norm = try GroupNorm(w["norm"], groups: groups, channels: channels, eps: 1e-6)
        if linearProjection {
            projIn = try Linear(w["proj_in"], inFeatures: channels, outFeatures: channels)
            projOut = try Linear(w["proj_out"], inFeatures: channels, outFeatures: channels)
            projInConv = nil; projOutConv = nil
        } else {
            projInConv = try Conv2d(w["proj_in"], inChannels: channels, outChannels: channels, kernel: 1)
            projOutConv = try Conv2d(w["proj_out"], inChannels: channels, outChannels: channels, kernel: 1)
            projIn = nil; projOut = nil
        }
        blocks = try (0..<layers).map {
            try BasicTransformerBlock(w["transformer_blocks"][$0], dim: channels, heads: heads,
                                      crossDim: crossDim, onlyCrossAttention: onlyCrossAttention)
        }
    }

    func callAsFunction(_ x: Tensor, context: Tensor) -> Tensor {
        let (height, width) = (x.shape[2], x.shape[3])
        var h = norm(x)
        if let conv = projInConv { h = conv(h) }
        h = Elementwise.channelsToTokens(h)
        if let lin = projIn { h = lin(h) }
        for block in blocks { h = block(h, context: context) }
        if let lin = projOut { h = lin(h) }
        h = Elementwise.tokensToChannels(h, height: height, width: width)
        if let conv = projOutConv { h = conv(h) }
        Elementwise.addInPlace(h, x)
        return h
    }
}

/// Self-attention (or, for the x4 upscaler's only-cross levels, a second cross-attention),
/// cross-attention to the text, GEGLU feed-forward; pre-LayerNorm (eps 1e-5) with residuals.
struct BasicTransformerBlock {
    let norm1: LayerNorm, attn1: Attention
    let norm2: LayerNorm, attn2: Attention
    let norm3: LayerNorm, ffProj: Linear, ffOut: Linear
    let onlyCross: Bool

    init(_ w: Weights, dim: Int, heads: Int, crossDim: Int, onlyCrossAttention: Bool) throws {
        let headDim = dim / heads
        norm1 = try LayerNorm(w["norm1"], dim: dim, eps: 1e-5)
        attn1 = try Attention(w["attn1"], queryDim: dim, contextDim: onlyCrossAttention ? crossDim : nil,
                              heads: heads, headDim: headDim, qkvBias: false)
        norm2 = try LayerNorm(w["norm2"], dim: dim, eps: 1e-5)
        attn2 = try Attention(w["attn2"], queryDim: dim, contextDim: crossDim, heads: heads, headDim: headDim, qkvBias: false)
        norm3 = try LayerNorm(w["norm3"], dim: dim, eps: 1e-5)
        ffProj = try Linear(w["ff.net.0.proj"], inFeatures: dim, outFeatures: dim * 8)
        ffOut = try Linear(w["ff.net.2"], inFeatures: dim * 4, outFeatures: dim)
        onlyCross = onlyCrossAttention
    }

    func callAsFunction(_ x: Tensor, context: Tensor) -> Tensor {
        let h = Elementwise.add(x, attn1(norm1(x), context: onlyCross ? context : nil))
        Elementwise.addInPlace(h, attn2(norm2(h), context: context))
        Elementwise.addInPlace(h, feedForward(norm3(h)))
        return h
    }

    /// GEGLU feed-forward in blocks of rows: the 8·C-wide intermediate of all 2×4096 tokens of a
    /// 512 px CFG step would be 84 MB (plus 42 MB after the gate) — a third of the headroom over
    /// the weights; per 1024-row block it is 10 MB. Row blocks are a multiple of the GEMM's own
    /// fixed blocks, so the result is the same as unblocked.
    func feedForward(_ x: Tensor) -> Tensor {
        let c = x.shape[x.rank - 1]
        let rows = x.count / c
        let flat = x.reshaped([rows, c])
        let out = Tensor(uninitialized: [rows, c])
        let block = 1024
        var r0 = 0
        while r0 < rows {
            let n = min(block, rows - r0)
            let y = ffOut(Activation.geglu(ffProj(flat.rows(r0, n))))
            (out.pointer + r0 * c).update(from: y.pointer, count: n * c)
            r0 += n
        }
        return out.reshaped(x.shape)
    }
}
