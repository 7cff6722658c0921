import Foundation

/// The few NumPy float64 routines diffusers' `set_timesteps` uses, reproduced operation by
/// operation so timesteps and sigmas come out bit-identical (SD2-SPEC §5.2–5.3).
///
/// Each function cites the NumPy source it mirrors. NumPy evaluates every ufunc separately, so
/// every `*`/`+` here is a separately rounded double operation (no fused multiply-add).
enum NumPyEmulation {
    /// `np.linspace(start, stop, num)` (endpoint=True) from `numpy/_core/function_base.py`:
    /// `y = arange(num) * step + start` with `step = (stop − start)/(num − 1)`, then `y[-1] = stop`.
    static func linspace(_ start: Double, _ stop: Double, count: Int) -> [Double] {
        guard count > 0 else { return [] }
        guard count > 1 else { return [start] }
        let delta = stop - start
        let step = delta / Double(count - 1)
        var values = [Double](repeating: 0, count: count)
        if step == 0 {
            for i in 0..<count { values[i] = (Double(i) / Double(count - 1)) * delta + start }
        } else {
            for i in 0..<count { values[i] = Double(i) * step + start }
        }
        values[count - 1] = stop
        return values
    }

    /// `np.arange(start, stop, step)` for float64 (`PyArray_ArangeObj` + `DOUBLE_fill` in
    /// `numpy/_core/src/multiarray`): length `ceil((stop − start)/step)`; element 0 is `start`,
    /// element 1 is `start + step`, and element i ≥ 2 is `start + i·(element1 − start)`.
    static func arange(_ start: Double, _ stop: Double, step: Double) -> [Double] {
        let length = max(0, Int((((stop - start) / step)).rounded(.up)))
        guard length > 0 else { return [] }
        var values = [start]
        guard length > 1 else { return values }
        let second = start + step
        values.append(second)
        let delta = second - start
        for i in 2..<length { values.append(start + Double(i) * delta) }
        return values
    }

    /// `ndarray.round()` / `np.round`: round half to even (`rint`).
    static func round(_ x: Double) -> Double { x.rounded(.toNearestOrEven) }

    /// `np.interp(x, arange(len(fp)), fp)` for one point (`arr_interp` in
    /// `numpy/_core/src/multiarray/compiled_base.c`): exact table values at the knots and at the
    /// right end, else `slope·(x − xⱼ) + fpⱼ` with `slope = (fpⱼ₊₁ − fpⱼ)/1`, not fused.
    static func interpolateOnIntegerGrid(_ x: Double, _ table: [Double]) -> Double {
        let last = table.count - 1
        if x.isNaN { return x }
        if x < 0 { return table[0] }
        if x >= Double(last) { return table[last] }
        let j = Int(x.rounded(.down))
        if Double(j) == x { return table[j] }
        let slope = (table[j + 1] - table[j]) / 1.0
        return slope * (x - Double(j)) + table[j]
    }

    // `NPY_COEFF_P*_LOGf`, `NPY_COEFF_Q*_LOGf` (numpy `npy_simd_data.h`), `NPY_LOGE2f`, `NPY_SQRT1_2f`.
    private static let logP: [Float] = [
        0, 9.999999999999998702752e-01, 2.112677543073053063722e+00, 1.480000633576506585156e+00,
        3.808837741388407920751e-01, 2.589979117907922693523e-02,
    ]
    private static let logQ: [Float] = [
        Float(bitPattern: 0x3F80_0000), Float(bitPattern: 0x4027_361C), Float(bitPattern: 0x401C_FE0D),
        Float(bitPattern: 0x3F7C_8AE4), Float(bitPattern: 0x3E1E_5BF3), Float(bitPattern: 0x3BC0_83DF),
    ]
    private static let logE2 = Float(bitPattern: 0x3F31_7218)
    private static let sqrtHalf = Float(bitPattern: 0x3F35_04F3)

    /// `np.log` of a float32 array on x86-64 with AVX2/AVX-512 (`simd_log_FLOAT` in
    /// `numpy/_core/src/umath/loops_exponent_log.dispatch.c.src`): mantissa m ∈ [√½, √2) and
    /// exponent e, then e·ln2 + P(m−1)/Q(m−1) with fused multiply-adds. It differs from the
    /// correctly rounded log in ~17 % of inputs (max 3.83 ulp), which is why diffusers' Karras
    /// timesteps depend on it. Inputs here are positive normal σ; zero, negative, infinite and
    /// NaN inputs return NumPy's special values, denormals are not special-cased.
    static func logFloat32(_ value: Float) -> Float {
        if value.isNaN { return .nan }
        if value < 0 { return -.nan }
        if value == 0 { return -.infinity }
        if value == .infinity { return .infinity }
        var exponent = Float(Int32(bitPattern: value.bitPattern >> 23) - 0x7E)
        var x = Float(bitPattern: (value.bitPattern & 0x007F_FFFF) | (126 << 23))
        if x <= sqrtHalf {
            x = x + x
            exponent = exponent - 1
        }
        x = x - 1
        var numerator = logP[4].addingProduct(logP[5], x)
        for k in stride(from: 3, through: 0, by: -1) { numerator = logP[k].addingProduct(numerator, x) }
        var denominator = logQ[4].addingProduct(logQ[5], x)
        for k in stride(from: 3, through: 0, by: -1) { denominator = logQ[k].addingProduct(denominator, x) }
        let quotient = numerator / denominator
        return quotient.addingProduct(exponent, logE2)
    }
}
