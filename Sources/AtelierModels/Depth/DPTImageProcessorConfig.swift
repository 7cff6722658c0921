import Foundation
import AtelierKernels

/// `feature_extractor/preprocessor_config.json` of SD2-depth: transformers' `DPTImageProcessor`
/// (its PIL backend, `DPTImageProcessorPil`, which is what loads without torchvision), as
/// diffusers' `prepare_depth_map` calls it on the *original* image:
/// resize with PIL (`resample` 2 = bilinear, antialiased) to `size`, ×`rescale_factor` (in
/// double, then float32), then (x − mean)/std in float32 → [1, 3, H, W].
///
/// The resize itself is PIL's and lives with the image code (AtelierDiffusion's `ImageResampler`);
/// this type says which size and filter, and does the arithmetic after. Absent keys take the
/// processor class defaults (note: BICUBIC, not the bilinear SD2 configures).
public struct DPTImageProcessorConfig: Codable, Sendable, Equatable {
    public var doResize: Bool = true
    public var height: Int = 384
    public var width: Int = 384
    /// PIL's `Image.Resampling` code.
    public var resample: Int = 3
    public var keepAspectRatio: Bool = false
    public var ensureMultipleOf: Int = 1
    public var doRescale: Bool = true
    public var rescaleFactor: Double = 1.0 / 255
    public var doNormalize: Bool = true
    public var imageMean: [Double] = [0.5, 0.5, 0.5]
    public var imageStd: [Double] = [0.5, 0.5, 0.5]
    public var doPad: Bool = false
    public var doCenterCrop: Bool = false

    enum CodingKeys: String, CodingKey {
        case doResize = "do_resize", size, resample, keepAspectRatio = "keep_aspect_ratio"
        case ensureMultipleOf = "ensure_multiple_of", doRescale = "do_rescale", rescaleFactor = "rescale_factor"
        case doNormalize = "do_normalize", imageMean = "image_mean", imageStd = "image_std", doPad = "do_pad"
        case doCenterCrop = "do_center_crop"
    }

    enum SizeKeys: String, CodingKey { case height, width, shortestEdge = "shortest_edge" }

    public init() {}

    /// The processor SD2-depth ships (stable-diffusion-2-depth/feature_extractor), at `side`:
    /// used for an estimator folder that comes without a preprocessor_config.json.
    public static func sd2Depth(side: Int) -> DPTImageProcessorConfig {
        var c = DPTImageProcessorConfig()
        c.height = side; c.width = side; c.resample = 2
        return c
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func v<T: Decodable>(_ k: CodingKeys, _ d: T) throws -> T { try c.decodeIfPresent(T.self, forKey: k) ?? d }
        let d = DPTImageProcessorConfig()
        doResize = try v(.doResize, d.doResize)
        if let side = try? c.decode(Int.self, forKey: .size) {
            height = side; width = side  // legacy int size; DPT's default_to_square
        } else if c.contains(.size), try !c.decodeNil(forKey: .size) {
            let s = try c.nestedContainer(keyedBy: SizeKeys.self, forKey: .size)
            guard let h = try s.decodeIfPresent(Int.self, forKey: .height), let w = try s.decodeIfPresent(Int.self, forKey: .width) else {
                throw DecodingError.dataCorruptedError(forKey: .size, in: c, debugDescription: "size needs height and width (shortest_edge is not supported for DPT)")
            }
            height = h; width = w
        }
        resample = try v(.resample, d.resample)
        keepAspectRatio = try v(.keepAspectRatio, d.keepAspectRatio)
        ensureMultipleOf = try v(.ensureMultipleOf, d.ensureMultipleOf)
        doRescale = try v(.doRescale, d.doRescale); rescaleFactor = try v(.rescaleFactor, d.rescaleFactor)
        doNormalize = try v(.doNormalize, d.doNormalize)
        imageMean = try Self.perChannel(c, .imageMean) ?? d.imageMean
        imageStd = try Self.perChannel(c, .imageStd) ?? d.imageStd
        doPad = try v(.doPad, d.doPad); doCenterCrop = try v(.doCenterCrop, d.doCenterCrop)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(doResize, forKey: .doResize)
        var s = c.nestedContainer(keyedBy: SizeKeys.self, forKey: .size)
        try s.encode(height, forKey: .height); try s.encode(width, forKey: .width)
        try c.encode(resample, forKey: .resample); try c.encode(keepAspectRatio, forKey: .keepAspectRatio)
        try c.encode(ensureMultipleOf, forKey: .ensureMultipleOf); try c.encode(doRescale, forKey: .doRescale)
        try c.encode(rescaleFactor, forKey: .rescaleFactor); try c.encode(doNormalize, forKey: .doNormalize)
        try c.encode(imageMean, forKey: .imageMean); try c.encode(imageStd, forKey: .imageStd)
        try c.encode(doPad, forKey: .doPad); try c.encode(doCenterCrop, forKey: .doCenterCrop)
    }

    static func perChannel(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> [Double]? {
        if let one = try? c.decode(Double.self, forKey: key) { return [one, one, one] }
        return try c.decodeIfPresent([Double].self, forKey: key)
    }

    /// Loads a `preprocessor_config.json`, rejecting the options this port does not implement.
    public static func load(_ url: URL) throws -> DPTImageProcessorConfig {
        let c = try ConfigFile.load(DPTImageProcessorConfig.self, from: url)
        try c.validate(file: url.path)
        return c
    }

    public func validate(file: String) throws {
        if doPad { throw ModelError.unsupported("\(file): do_pad (padding to size_divisor) in the DPT image processor") }
        if doCenterCrop { throw ModelError.unsupported("\(file): do_center_crop in the DPT image processor") }
        guard imageMean.count == 3, imageStd.count == 3, imageStd.allSatisfy({ $0 != 0 }) else {
            throw ModelError.invalidConfig(file: file, reason: "image_mean/image_std need 3 entries and a non-zero std")
        }
        guard height > 0, width > 0, ensureMultipleOf > 0 else {
            throw ModelError.invalidConfig(file: file, reason: "size and ensure_multiple_of must be positive")
        }
        guard resampleFilterName != nil else {
            throw ModelError.unsupported("\(file): resample \(resample) (NEAREST or unknown); DPT resizes with bilinear (2)")
        }
    }

    /// The PIL filter (`ResampleFilter(pilName:)` in AtelierDiffusion) for `resample`.
    public var resampleFilterName: String? {
        switch resample {
        case 1: return "lanczos"
        case 2: return "bilinear"
        case 3: return "bicubic"
        case 4: return "box"
        case 5: return "hamming"
        default: return nil
        }
    }

    /// transformers' `get_resize_output_image_size` for DPT: scale each side to `size`, or with
    /// `keep_aspect_ratio` both by the factor closer to 1; then to a multiple of
    /// `ensure_multiple_of` with Python's round-half-to-even.
    public func resizedSize(width inW: Int, height inH: Int) -> (width: Int, height: Int) {
        guard doResize else { return (inW, inH) }
        var sh = Double(height) / Double(inH), sw = Double(width) / Double(inW)
        if keepAspectRatio {
            if abs(1 - sw) < abs(1 - sh) { sh = sw } else { sw = sh }
        }
        func constrain(_ v: Double) -> Int {
            let m = Double(ensureMultipleOf)
            var x = (v / m).rounded(.toNearestOrEven) * m
            if x < 0 { x = (v / m).rounded(.up) * m }
            return Int(x)
        }
        return (constrain(sw * Double(inW)), constrain(sh * Double(inH)))
    }

    /// An (already resized) 8-bit RGB image, interleaved row-major as `np.array(pil_image)` →
    /// pixel values [1, 3, height, width]: float32(u8 · rescale in double), then (x − mean)/std in float32.
    public func pixelValues(rgb: [UInt8], width: Int, height: Int) -> Tensor {
        precondition(rgb.count == width * height * 3, "pixelValues: \(rgb.count) bytes for \(width)×\(height) RGB")
        let plane = width * height
        let out = Tensor(uninitialized: [1, 3, height, width])
        let mean = imageMean.map(Float.init), std = imageStd.map(Float.init)
        let table: [[Float]] = (0..<3).map { ch in
            (0..<256).map { u in
                let x = doRescale ? Float(Double(u) * rescaleFactor) : Float(u)
                return doNormalize ? (x - mean[ch]) / std[ch] : x
            }
        }
        rgb.withUnsafeBufferPointer { src in
            for ch in 0..<3 {
                let dst = out.pointer + ch * plane, lut = table[ch]
                for i in 0..<plane { dst[i] = lut[Int(src[3 * i + ch])] }
            }
        }
        return out
    }
}
