import AtelierKernels

/// diffusers' `Attention` (processor AttnProcessor2_0) for token sequences: projections,
/// multi-head SDPA, output projection. q/k/v carry a bias only where the config says so (UNet
/// transformers: none; VAE mid-block: yes).
public struct Attention {
    let toQ: Linear, toK: Linear, toV: Linear, toOut: Linear
    public let heads: Int

    public init(_ w: Weights, queryDim: Int, contextDim: Int?, heads: Int, headDim: Int, qkvBias: Bool) throws {
        let inner = heads * headDim
        let kvDim = contextDim ?? queryDim
        toQ = try Linear(w["to_q"], inFeatures: queryDim, outFeatures: inner, bias: qkvBias)
        toK = try Linear(w["to_k"], inFeatures: kvDim, outFeatures: inner, bias: qkvBias)
        toV = try Linear(w["to_v"], inFeatures: kvDim, outFeatures: inner, bias: qkvBias)
        toOut = try Linear(w["to_out.0"], inFeatures: inner, outFeatures: queryDim)
        self.heads = heads
    }

    /// x: [B, N, queryDim]; context: [B, M, contextDim] or nil for self-attention.
    public func callAsFunction(_ x: Tensor, context: Tensor? = nil) -> Tensor {
        let kv = context ?? x
        // bf16 projections (a bf16 UNet) mean bf16 attention products too.
        let a = AttentionOp.attention(q: toQ(x), k: toK(kv), v: toV(kv), heads: heads, precision: toQ.weight.precision)
        return toOut(a)
    }
}
