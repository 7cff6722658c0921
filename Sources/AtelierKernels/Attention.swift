import Foundation

/// Multi-head scaled-dot-product attention, softmax(Q·Kᵀ·scale)·V, computed one block of query
/// rows at a time. At 768 px the VAE's single-head attention over 9216 tokens would need a
/// 340 MB score matrix per image (1.6 GiB for the UNet's 20 heads); the block is capped at
/// `scoreBudget` floats instead.
public enum AttentionOp {
    /// Cap on the live score block (floats); 4 Mi floats = 16 MB.
    nonisolated(unsafe) public static var scoreBudget = 4 << 20

    /// - Parameters:
    ///   - q: [B, N, heads·d]; k, v: [B, M, heads·d] (v may have another width, heads·dv).
    ///   - causal: mask key j > query i (the CLIP text encoder).
    /// - Returns: [B, N, heads·dv]
    public static func attention(q: Tensor, k: Tensor, v: Tensor, heads: Int, causal: Bool = false,
                                 scale: Float? = nil) -> Tensor {
        let b = q.shape[0], n = q.shape[1], cq = q.shape[2]
        let m = k.shape[1], cv = v.shape[2]
        precondition(k.shape[2] == cq, "attention: q width \(cq) vs k width \(k.shape[2])")
        let d = cq / heads, dv = cv / heads
        let s = scale ?? 1 / Float(d).squareRoot()
        let out = Tensor(uninitialized: [b, n, cv])
        let block = max(1, min(n, scoreBudget / max(1, m)))
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: block * m)
        defer { scores.deallocate() }

        for bi in 0..<b {
            let qb = q.pointer + bi * n * cq, kb = k.pointer + bi * m * cq, vb = v.pointer + bi * m * cv
            let ob = out.pointer + bi * n * cv
            for h in 0..<heads {
                var r0 = 0
                while r0 < n {
                    let rows = min(block, n - r0)
                    BLAS.gemm(transB: true, m: rows, n: m, k: d, alpha: s,
                              a: qb + r0 * cq + h * d, lda: cq, b: kb + h * d, ldb: cq,
                              c: scores, ldc: m)
                    softmaxRows(scores, rows: rows, cols: m, causalRowOffset: causal ? r0 : nil)
                    BLAS.gemm(m: rows, n: dv, k: m, a: scores, lda: m, b: vb + h * dv, ldb: cv,
                              c: ob + r0 * cv + h * dv, ldc: cv)
                    r0 += rows
                }
            }
        }
        return out
    }

    /// Row-wise numerically stable softmax; with a causal offset, row r only sees columns ≤ r+offset.
    static func softmaxRows(_ p: UnsafeMutablePointer<Float>, rows: Int, cols: Int, causalRowOffset: Int?) {
        Parallel.forEachChunk(rows, grain: 8) { range in
            for r in range {
                let row = p + r * cols
                let valid = causalRowOffset.map { min(cols, r + $0 + 1) } ?? cols
                var mx = -Float.infinity
                for j in 0..<valid { mx = max(mx, row[j]) }
                var sum: Float = 0
                for j in 0..<valid { let e = expf(row[j] - mx); row[j] = e; sum += e }
                let inv = 1 / sum
                for j in 0..<valid { row[j] *= inv }
                if valid < cols { (row + valid).update(repeating: 0, count: cols - valid) }
            }
        }
    }
}
