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

    /// The same with weights in either precision: bf16 weights run the bf16 GEMM, the activations
    /// rounded to bf16 as they are packed.
    public static func linear(_ x: Tensor, weight: LayerWeight, bias: Tensor?) -> Tensor {
        guard case .bf16(let w) = weight else { return linear(x, weight: weight.fp32Values, bias: bias) }
        let inF = w.shape[1], outF = w.shape[0]
        precondition(x.shape.last == inF, "linear: input \(x.shape) does not end in \(inF)")
        let rows = x.count / inF
        var shape = x.shape
        shape[shape.count - 1] = outF
        let y = Tensor(uninitialized: shape)
        BLAS.flops &+= 2 * rows * outF * inF
        OwnGEMM.multiply(m: rows, n: outF, k: inF, a: .matrix(x.pointer, ld: inF, transposed: false),
                         b: .bf16Transposed(w.pointer, ld: inF), c: y.pointer, ldc: outF,
                         biasColumn: bias?.pointer, precision: .bf16)
        return y
    }
}
