import Foundation

/// `torch.nn.functional.interpolate` on NCHW float32 tensors, reproducing torch's CPU kernels
/// (`aten/src/ATen/native/UpSample.h`, `cpu/UpSampleKernel.cpp`) operation for operation in
/// float32, so results agree to the last bit or within an ulp where torch's build fuses a
/// multiply-add.
///
/// Used by depth2img (`bicubic`: the depth map to latent size) and the DPT depth estimator
/// (`bilinearAlignCorners`: fusion and head upsampling). Neither antialiases: unlike PIL, torch's
/// default interpolation samples the source at 4 (or 2) taps whatever the scale.
public enum Interpolation {
    /// `F.interpolate(x, size=(height, width), mode="bicubic", align_corners=False)`.
    ///
    /// Keys cubic convolution with A = −0.75; source coordinate `(dst + 0.5) · in/out − 0.5` with
    /// `in/out` computed in float32; the four taps are clamped to the border (replicate).
    public static func bicubic(_ x: Tensor, height: Int, width: Int) -> Tensor {
        precondition(x.rank == 4 && height > 0 && width > 0, "bicubic expects NCHW and a positive size, got \(x.shape) → \(height)x\(width)")
        let rows = cubicTaps(inSize: x.shape[2], outSize: height)
        let cols = cubicTaps(inSize: x.shape[3], outSize: width)
        return separable(x, height: height, width: width, rows: rows, cols: cols)
    }

    /// `F.interpolate(x, size=(height, width), mode="bilinear", align_corners=True)`.
    ///
    /// Source coordinate `dst · (in − 1)/(out − 1)` (0 when out = 1), two taps, the second clamped
    /// to the last pixel; an axis whose size is unchanged is copied.
    public static func bilinearAlignCorners(_ x: Tensor, height: Int, width: Int) -> Tensor {
        precondition(x.rank == 4 && height > 0 && width > 0, "bilinear expects NCHW and a positive size, got \(x.shape) → \(height)x\(width)")
        let rows = linearTaps(inSize: x.shape[2], outSize: height)
        let cols = linearTaps(inSize: x.shape[3], outSize: width)
        return separable(x, height: height, width: width, rows: rows, cols: cols)
    }

    /// Source indices and weights for each output position along one axis.
    struct Taps {
        let count: Int          // taps per output position
        let indices: [Int]      // outSize * count, already clamped
        let weights: [Float]    // outSize * count
    }

    /// torch `HelperInterpCubic::compute_indices_weights`.
    static func cubicTaps(inSize: Int, outSize: Int) -> Taps {
        // area_pixel_compute_scale<float>: static_cast<float>(in) / out, the int64 divisor promoted to float.
        let scale = Float(inSize) / Float(outSize)
        var indices = [Int](repeating: 0, count: outSize * 4)
        var weights = [Float](repeating: 0, count: outSize * 4)
        for i in 0..<outSize {
            // area_pixel_compute_source_index(scale, i, align_corners=false, cubic=true): no clamp at 0.
            let real = scale * (Float(i) + 0.5) - 0.5
            let (index, t) = guardIndexAndLambda(real, inSize: inSize)
            let c = cubicCoefficients(t)
            for j in 0..<4 {
                indices[4 * i + j] = min(max(index - 1 + j, 0), inSize - 1)
                weights[4 * i + j] = c[j]
            }
        }
        return Taps(count: 4, indices: indices, weights: weights)
    }

    /// torch `HelperInterpLinear::compute_indices_weights` with `align_corners=True`.
    static func linearTaps(inSize: Int, outSize: Int) -> Taps {
        let scale: Float = outSize > 1 ? Float(inSize - 1) / Float(outSize - 1) : 0
        var indices = [Int](repeating: 0, count: outSize * 2)
        var weights = [Float](repeating: 0, count: outSize * 2)
        for i in 0..<outSize {
            if outSize == inSize {
                indices[2 * i] = i; indices[2 * i + 1] = i
                weights[2 * i] = 1; weights[2 * i + 1] = 0
                continue
            }
            let real = scale * Float(i)
            let (index, lambda1) = guardIndexAndLambda(real, inSize: inSize)
            indices[2 * i] = index
            indices[2 * i + 1] = index + (index < inSize - 1 ? 1 : 0)
            weights[2 * i] = 1 - lambda1
            weights[2 * i + 1] = lambda1
        }
        return Taps(count: 2, indices: indices, weights: weights)
    }

    /// torch `guard_index_and_lambda`: floor, capped at the last index; the fraction clamped to [0, 1].
    @inline(__always)
    static func guardIndexAndLambda(_ real: Float, inSize: Int) -> (Int, Float) {
        let index = min(Int(real.rounded(.down)), inSize - 1)
        let lambda = min(max(real - Float(index), 0), 1)
        return (index, lambda)
    }

    /// torch `get_cubic_upsample_coefficients` in float32. `x + 1.0` and `1.0 - t` are double
    /// expressions in the C++ source, rounded to float when passed on; mirrored here.
    static func cubicCoefficients(_ t: Float) -> [Float] {
        let a: Float = -0.75
        let x1 = t
        let x2 = Float(1.0 - Double(t))
        return [
            cubicConvolution2(Float(Double(x1) + 1.0), a),
            cubicConvolution1(x1, a),
            cubicConvolution1(x2, a),
            cubicConvolution2(Float(Double(x2) + 1.0), a),
        ]
    }

    @inline(__always)
    static func cubicConvolution1(_ x: Float, _ a: Float) -> Float {
        ((a + 2) * x - (a + 3)) * x * x + 1
    }

    @inline(__always)
    static func cubicConvolution2(_ x: Float, _ a: Float) -> Float {
        ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    }

    /// torch's `Interpolate<2, …>` evaluation: for each output pixel, each row tap is the weighted
    /// sum over the column taps (left to right), and the rows are summed top to bottom, all in
    /// float32 — the first term assigned, later ones accumulated.
    private static func separable(_ x: Tensor, height: Int, width: Int, rows: Taps, cols: Taps) -> Tensor {
        let (n, c, inH, inW) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let out = Tensor(uninitialized: [n, c, height, width])
        let planes = n * c
        let src = x.pointer, dst = out.pointer
        rows.indices.withUnsafeBufferPointer { ri in
        rows.weights.withUnsafeBufferPointer { rw in
        cols.indices.withUnsafeBufferPointer { ci in
        cols.weights.withUnsafeBufferPointer { cw in
            let rt = rows.count, ct = cols.count
            Parallel.forEachChunk(planes * height, grain: max(1, 4096 / max(width, 1))) { range in
                for job in range {
                    let plane = job / height, oy = job % height
                    let inPlane = src + plane * inH * inW
                    let outRow = dst + (plane * height + oy) * width
                    for ox in 0..<width {
                        var acc: Float = 0
                        for r in 0..<rt {
                            let line = inPlane + ri[oy * rt + r] * inW
                            var inner = line[ci[ox * ct]] * cw[ox * ct]
                            for k in 1..<ct {
                                inner += line[ci[ox * ct + k]] * cw[ox * ct + k]
                            }
                            let term = inner * rw[oy * rt + r]
                            acc = r == 0 ? term : acc + term
                        }
                        outRow[ox] = acc
                    }
                }
            }
        }
        }
        }
        }
        return out
    }
}
