/// Fully connected layer math on the last axis: y = x·Wᵀ + b, W stored [out, in] as in PyTorch.
public enum LinearOp {
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        let inF = weight.shape[1], outF = weight.shape[0]
        precondition(x.shape.last == inF, "linear: input \(x.shape) does not end in \(inF)")
        let rows = x.count / inF
        var shape = x.shape
        shape[shape.count - 1] = outF
        let y = Tensor(uninitialized: shape)
        BLAS.gemm(transB: true, m: rows, n: outF, k: inF, a: x.pointer, lda: inF,
                  b: weight.pointer, ldb: inF, c: y.pointer, ldc: outF, biasColumn: bias?.pointer)
        return y
    }
}
