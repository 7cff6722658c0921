/// What produced an image, in the AUTOMATIC1111 "infotext" format that goes into the PNG
/// `parameters` text chunk, so images made here open with their settings in A1111's PNG Info,
/// Civitai and other tools, and A1111 images can be re-run here.
///
/// Layout (from A1111 `create_infotext`):
///
///     PROMPT
///     Negative prompt: NEGATIVE            ← omitted when empty
///     Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 42, Size: 512x512, Model hash: …, Model: …, Denoising strength: 0.8
///
/// The prompt may span several lines; the last line is the settings line.
public struct GenerationParameters: Codable, Equatable, Sendable {
    public var prompt: String
    public var negativePrompt: String
    public var steps: Int
    /// Atelier sampler identifier ("ddim", "pndm", "euler", "euler-a", "dpm++2m",
    /// "dpm++2m-karras"); written with its A1111 display name (see `A1111SamplerNames`).
    /// Unknown names read from other tools are kept verbatim.
    public var sampler: String
    public var cfgScale: Double
    public var seed: UInt64
    public var width: Int
    public var height: Int
    /// A1111's "Model" and "Model hash" (its short hash is the first 10 hex digits of the
    /// checkpoint's SHA-256). Omitted from the text when nil or empty.
    public var modelName: String?
    public var modelHash: String?
    /// img2img / depth / inpaint strength, written as A1111's "Denoising strength".
    public var strength: Double?
    /// x4 upscaler noise level ("Noise level").
    public var noiseLevel: Int?
    /// Guidance rescale φ, under the key of the A1111 CFG-rescale extension ("CFG Rescale").
    public var guidanceRescale: Double?
    /// Which pipeline ran ("txt2img", "img2img", "inpaint", "depth", "upscale"); "Mode".
    public var mode: String?

    /// The PNG text keyword A1111 uses.
    public static let pngTextKey = "parameters"

    public init(prompt: String, negativePrompt: String = "", steps: Int, sampler: String, cfgScale: Double,
                seed: UInt64, width: Int, height: Int, modelName: String? = nil, modelHash: String? = nil,
                strength: Double? = nil, noiseLevel: Int? = nil, guidanceRescale: Double? = nil,
                mode: String? = nil) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.steps = steps
        self.sampler = sampler
        self.cfgScale = cfgScale
        self.seed = seed
        self.width = width
        self.height = height
        self.modelName = modelName
        self.modelHash = modelHash
        self.strength = strength
        self.noiseLevel = noiseLevel
        self.guidanceRescale = guidanceRescale
        self.mode = mode
    }

    /// The settings as (key, value) pairs, in A1111's order, before quoting.
    var settings: [(key: String, value: String)] {
        var fields: [(String, String)] = [
            ("Steps", String(steps)),
            ("Sampler", A1111SamplerNames.displayName(for: sampler) ?? sampler),
            ("CFG scale", A1111Infotext.pythonFloat(cfgScale)),
            ("Seed", String(seed)),
            ("Size", "\(width)x\(height)"),
        ]
        if let modelHash, !modelHash.isEmpty { fields.append(("Model hash", modelHash)) }
        if let modelName, !modelName.isEmpty { fields.append(("Model", modelName)) }
        if let strength { fields.append(("Denoising strength", A1111Infotext.pythonFloat(strength))) }
        if let guidanceRescale { fields.append(("CFG Rescale", A1111Infotext.pythonFloat(guidanceRescale))) }
        if let noiseLevel { fields.append(("Noise level", String(noiseLevel))) }
        if let mode, !mode.isEmpty { fields.append(("Mode", mode)) }
        return fields
    }

    /// The A1111 infotext, byte for byte what `create_infotext` produces for the same values
    /// (including its final `.strip()`).
    public func a1111Text() -> String {
        let settingsLine = settings.map { key, value in
            key == value ? key : "\(key): \(A1111Infotext.quote(value))"
        }.joined(separator: ", ")
        let negative = negativePrompt.isEmpty ? "" : "\nNegative prompt: \(negativePrompt)"
        return A1111Infotext.pythonStrip("\(prompt)\(negative)\n\(settingsLine)")
    }

    /// Parses an A1111 infotext the way A1111's `parse_generation_parameters` does: the last line
    /// is the settings line when it holds at least three `key: value` pairs; earlier lines are the
    /// prompt until one starts with "Negative prompt:". Each line is trimmed (so leading or
    /// trailing whitespace on prompt lines does not survive a round trip, as in A1111).
    public static func parse(_ text: String) throws -> GenerationParameters {
        var lines = A1111Infotext.splitLines(A1111Infotext.pythonStrip(text))
        let last = lines.removeLast()
        var pairs = A1111Infotext.findParameters(last)
        if pairs.count < 3 {
            lines.append(last)
            pairs = []
        }

        var prompt = "", negative = ""
        var inNegative = false
        let marker = "Negative prompt:"
        for raw in lines {
            var line = A1111Infotext.pythonStrip(raw)
            if line.hasPrefix(marker) {
                inNegative = true
                line = A1111Infotext.pythonStrip(String(line.unicodeScalars.dropFirst(marker.unicodeScalars.count)))
            }
            if inNegative {
                negative += (negative.isEmpty ? "" : "\n") + line
            } else {
                prompt += (prompt.isEmpty ? "" : "\n") + line
            }
        }
        guard !pairs.isEmpty else { throw GenerationParametersError.noSettingsLine }

        var values = [String: String]()
        for (key, rawValue) in pairs {
            // A1111 skips empty values (its `v[0]` raises and the pair is dropped).
            guard !rawValue.isEmpty else { continue }
            values[key] = rawValue.hasPrefix("\"") && rawValue.hasSuffix("\"") ? A1111Infotext.unquote(rawValue) : rawValue
        }

        func required(_ key: String) throws -> String {
            guard let v = values[key] else { throw GenerationParametersError.missingField(key) }
            return A1111Infotext.pythonStrip(v)
        }
        func number<T: LosslessStringConvertible>(_ key: String, _ text: String, as _: T.Type) throws -> T {
            guard let v = T(text) else { throw GenerationParametersError.invalidValue(field: key, value: text) }
            return v
        }
        func optional<T: LosslessStringConvertible>(_ key: String, as type: T.Type) throws -> T? {
            guard let v = values[key] else { return nil }
            return try number(key, A1111Infotext.pythonStrip(v), as: type)
        }

        let steps = try number("Steps", try required("Steps"), as: Int.self)
        let samplerName = try required("Sampler")
        let sampler = A1111SamplerNames.id(for: samplerName, scheduleType: values["Schedule type"]) ?? samplerName
        let cfgScale = try number("CFG scale", try required("CFG scale"), as: Double.self)
        let seed = try number("Seed", try required("Seed"), as: UInt64.self)
        let size = try required("Size")
        let dims = size.split(separator: "x", omittingEmptySubsequences: false)
        guard dims.count == 2, let width = Int(dims[0]), let height = Int(dims[1]), width >= 0, height >= 0,
              dims.allSatisfy({ $0.allSatisfy(\.isASCIIDigit) }) else {
            throw GenerationParametersError.invalidValue(field: "Size", value: size)
        }
        let modelName = values["Model"].map(A1111Infotext.pythonStrip)
        let modelHash = values["Model hash"].map(A1111Infotext.pythonStrip)
        let mode = values["Mode"].map(A1111Infotext.pythonStrip)

        return GenerationParameters(
            prompt: prompt, negativePrompt: negative, steps: steps, sampler: sampler, cfgScale: cfgScale,
            seed: seed, width: width, height: height, modelName: modelName, modelHash: modelHash,
            strength: try optional("Denoising strength", as: Double.self),
            noiseLevel: try optional("Noise level", as: Int.self),
            guidanceRescale: try optional("CFG Rescale", as: Double.self) ?? optional("CFG Rescale φ", as: Double.self),
            mode: mode)
    }
}

/// Why an A1111 infotext could not be read back into `GenerationParameters`.
public enum GenerationParametersError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The last line has fewer than three `key: value` pairs, so there are no settings.
    case noSettingsLine
    case missingField(String)
    case invalidValue(field: String, value: String)

    public var description: String {
        switch self {
        case .noSettingsLine:
            return "the generation parameters have no settings line (expected a last line like \"Steps: 20, Sampler: Euler a, CFG scale: 7.5, …\")"
        case .missingField(let key):
            return "the generation parameters lack \"\(key)\""
        case .invalidValue(let key, let value):
            return "the generation parameters have an invalid \"\(key)\": \"\(value)\""
        }
    }
}

private extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
