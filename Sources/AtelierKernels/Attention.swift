import Foundation
import AtelierKernelsC

/// Multi-head scaled-dot-product attention, softmax(Q·Kᵀ·scale)·V, computed one block of query
/// rows at a time. With the own kernels each head runs `ak_attention_rows` (K and V packed once,
/// 48 query rows at a time, their scores in cache: the same bits as the three-call form the
/// OpenBLAS path keeps below). At 768 px the VAE's single-head attention over 9216 tokens would need a
/// 340 MB score matrix per image (1.6 GiB for the UNet's 20 heads); the block is capped at
/// `scoreBudget` floats instead.
public enum AttentionOp {
    /// Cap on the live score block (floats); 4 Mi floats = 16 MB.
    nonisolated(unsafe) public static var scoreBudget = 4 << 20

    /// - Parameters:
    ///   - q: [B, N, heads·d]; k, v: [B, M, heads·d] (v may have another width, heads·dv).
    ///   - causal: mask key j > query i (the CLIP text encoder).
    ///   - precision: `.bf16` runs Q·Kᵀ and P·V as bf16 GEMMs (the layer's weights are bf16, so
    ///     `vdpbf16ps` or AMX tiles do its attention too, as PyTorch's bf16 does); the softmax
    ///     stays fp32. Always the own kernels, whatever the fp32 backend.
    /// - Returns: [B, N, heads·dv]
    public static func attention(q: Tensor, k: Tensor, v: Tensor, heads: Int, causal: Bool = false,
                                 scale: Float? = nil, precision: OwnGEMM.Precision = .fp32) -> Tensor {
        let b = q.shape[0], n = q.shape[1], cq = q.shape[2]
        let m = k.shape[1], cv = v.shape[2]
        precondition(k.shape[2] == cq, "attention: q width \(cq) vs k width \(k.shape[2])")
        let d = cq / heads, dv = cv / heads
        let s = scale ?? 1 / Float(d).squareRoot()
        let out = Tensor(uninitialized: [b, n, cv])
        BLAS.flops &+= 2 * b * heads * n * m * (d + dv)
        if BLAS.backend == .atelier || precision == .bf16 {
            // One (batch, head) per task, its rows in `split` ranges when there are fewer heads
            // than threads (the VAE's single head). Each row's result is the same whatever the
            // split (the kernel's chains do not depend on which rows run together).
            let pairs = b * heads
            let split = max(1, min((n + Int(AK_ATTENTION_ROWS) - 1) / Int(AK_ATTENTION_ROWS),
                                   (Parallel.threads + pairs - 1) / pairs))
            let span = (n + split - 1) / split
            Parallel.forEachTask(pairs * split) { task in
                let (bi, h) = ((task / split) / heads, (task / split) % heads)
                let r0 = (task % split) * span, r1 = min(n, r0 + span)
                guard r0 < r1 else { return }
                let status = ak_attention_rows(Int32(m), Int32(d), Int32(dv), s,
                                               q.pointer + bi * n * cq + h * d, cq,
                                               k.pointer + bi * m * cq + h * d, cq,
                                               v.pointer + bi * m * cv + h * dv, cv,
                                               out.pointer + bi * n * cv + h * dv, cv,
                                               causal ? 1 : 0, Int32(r0), Int32(r1), precision == .bf16 ? 1 : 0)
                if status != 0 { fatalError("attention: out of memory for packed keys and values") }
            }
            return out
        }
        let block = max(1, min(n, scoreBudget / max(1, m)))
        // One (batch, head, row block) per task: heads write disjoint columns of `out`, blocks
        // disjoint rows, and block sizes are fixed, so results do not depend on the thread count.
        let blocks = (n + block - 1) / block
        Parallel.forEachChunk(b * heads * blocks) { range in
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: block * m)
            defer { scores.deallocate() }
            for task in range {
                let pair = task / blocks, r0 = (task % blocks) * block
                let (bi, h) = (pair / heads, pair % heads)
                let qb = q.pointer + bi * n * cq, kb = k.pointer + bi * m * cq, vb = v.pointer + bi * m * cv
                let ob = out.pointer + bi * n * cv
                let rows = min(block, n - r0)
                BLAS.gemmSerial(transB: true, m: rows, n: m, k: d, alpha: s,
                                a: qb + r0 * cq + h * d, lda: cq, b: kb + h * d, ldb: cq,
                                c: scores, ldc: m)
                for r in 0..<rows { ak_softmax_row(scores + r * m, Int32(m), Int32(causal ? min(m, r0 + r + 1) : m)) }
                BLAS.gemmSerial(m: rows, n: dv, k: m, a: scores, lda: m, b: vb + h * dv, ldb: cv,
                                c: ob + r0 * cv + h * dv, ldc: cv)
            }
        }
        return out
    }
}
