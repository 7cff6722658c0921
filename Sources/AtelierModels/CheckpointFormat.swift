import Foundation

/// The on-disk layouts Atelier loads a model from.
///
/// Only formats that can be read without executing code are accepted. PyTorch pickle
/// checkpoints (`.ckpt`, `.bin`, `.pt`, `.pth`) are refused outright — unpickling can run
/// arbitrary code, and a model file from the internet is untrusted — with an error that says
/// how to convert them once, in Python, into safetensors.
public enum CheckpointFormat: Equatable, Sendable {
    /// A single `.safetensors` file (e.g. an original-layout SD 2 checkpoint).
    case safetensors
    /// A diffusers folder: `model_index.json` plus component subfolders, or a single component
    /// folder with `config.json` (e.g. just a `unet/`).
    case diffusersFolder

    /// Pickle checkpoint extensions, refused whatever their content.
    static let pickleExtensions: Set<String> = ["ckpt", "bin", "pt", "pth"]

    /// Works out what `url` holds, sniffing content rather than trusting names where they
    /// disagree: a renamed pickle is refused even if it is called `.safetensors`.
    ///
    /// - Throws: `CheckpointFormatError` when the path is missing, is a pickle checkpoint (or a
    ///   diffusers folder whose weights are only pickles), or is something else entirely.
    public static func detect(url: URL) throws -> CheckpointFormat {
        let path = url.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CheckpointFormatError.notFound(path: path)
        }
        return isDirectory.boolValue ? try detectFolder(url) : try detectFile(url)
    }

    private static func detectFile(_ url: URL) throws -> CheckpointFormat {
        let path = url.path
        let prefix = try readPrefix(of: url, count: 9)
        let ext = url.pathExtension.lowercased()

        // Content first: a real safetensors file is accepted whatever it is called.
        if looksLikeSafeTensors(prefix, fileSize: try fileSize(of: url)) { return .safetensors }
        if prefix.starts(with: [0x50, 0x4B, 0x03, 0x04]) {
            throw CheckpointFormatError.pickleCheckpoint(path: path, evidence: "it is a zip archive (the torch.save format), not a safetensors file")
        }
        if prefix.count >= 2, prefix[0] == 0x80, (2...5).contains(prefix[1]) {
            throw CheckpointFormatError.pickleCheckpoint(path: path, evidence: "it starts with a Python pickle header (a legacy torch.save file)")
        }
        if pickleExtensions.contains(ext) {
            throw CheckpointFormatError.pickleCheckpoint(path: path, evidence: "the .\(ext) extension is used for PyTorch pickle checkpoints")
        }
        // A damaged .safetensors file: let SafeTensorsFile report exactly what is wrong with it.
        if ext == "safetensors" { return .safetensors }
        throw CheckpointFormatError.unrecognized(path: path, reason: "it is neither a .safetensors file nor a diffusers folder")
    }

    private static func detectFolder(_ url: URL) throws -> CheckpointFormat {
        let fileManager = FileManager.default
        let hasModelIndex = fileManager.fileExists(atPath: url.appendingPathComponent("model_index.json").path)
        let hasConfig = fileManager.fileExists(atPath: url.appendingPathComponent("config.json").path)
        guard hasModelIndex || hasConfig else {
            throw CheckpointFormatError.unrecognized(
                path: url.path,
                reason: "the folder has neither model_index.json (a diffusers pipeline) nor config.json (a single diffusers component)")
        }
        // A pipeline's weights live in component subfolders; a component's in the folder itself.
        var componentFolders = [url]
        if hasModelIndex {
            let children = (try? fileManager.contentsOfDirectory(at: url, includingPropertiesForKeys: [.isDirectoryKey])) ?? []
            componentFolders += children.filter { (try? $0.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true }
        }
        let pickleOnly = componentFolders.flatMap(pickleOnlyWeights(in:))
        if !pickleOnly.isEmpty {
            throw CheckpointFormatError.pickleWeightsInFolder(path: url.path, files: pickleOnly.sorted())
        }
        return .diffusersFolder
    }

    /// Pickle weight files in `folder` that have no safetensors file beside them (a folder
    /// that has both, as many Hub downloads do, is fine: the safetensors copy is used).
    private static func pickleOnlyWeights(in folder: URL) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        if names.contains(where: { $0.lowercased().hasSuffix(".safetensors") }) { return [] }
        return names
            .filter { pickleExtensions.contains(($0 as NSString).pathExtension.lowercased()) }
            .map { folder.appendingPathComponent($0).path }
    }

    /// 8-byte little-endian header length that fits in the file, followed by `{`.
    private static func looksLikeSafeTensors(_ prefix: [UInt8], fileSize: UInt64) -> Bool {
        guard prefix.count == 9, prefix[8] == UInt8(ascii: "{") else { return false }
        let length = prefix[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return fileSize >= 8 && length <= fileSize - 8
    }

    private static func readPrefix(of url: URL, count: Int) throws -> [UInt8] {
        do {
            let handle = try FileHandle(forReadingFrom: url)
            defer { try? handle.close() }
            return [UInt8](try handle.read(upToCount: count) ?? Data())
        } catch {
            throw CheckpointFormatError.unreadable(path: url.path, reason: error.localizedDescription)
        }
    }

    private static func fileSize(of url: URL) throws -> UInt64 {
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
            return (attributes[.size] as? NSNumber)?.uint64Value ?? 0
        } catch {
            throw CheckpointFormatError.unreadable(path: url.path, reason: error.localizedDescription)
        }
    }
}

/// Why a path cannot be loaded as a checkpoint. Messages name the path and say what to do.
public enum CheckpointFormatError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Nothing exists at the path.
    case notFound(path: String)
    /// The file is a PyTorch pickle checkpoint (`evidence` says how that was recognised).
    case pickleCheckpoint(path: String, evidence: String)
    /// A diffusers folder whose listed weight files are pickles with no safetensors beside them.
    case pickleWeightsInFolder(path: String, files: [String])
    /// The path exists but is not a format Atelier reads.
    case unrecognized(path: String, reason: String)
    /// The file exists but could not be read.
    case unreadable(path: String, reason: String)

    public var path: String {
        switch self {
        case .notFound(let path), .pickleCheckpoint(let path, _), .pickleWeightsInFolder(let path, _),
             .unrecognized(let path, _), .unreadable(let path, _):
            return path
        }
    }

    public var description: String {
        switch self {
        case .notFound(let path):
            return "\(path): no such file or folder (expected a .safetensors file or a diffusers folder with model_index.json)"
        case .pickleCheckpoint(let path, let evidence):
            let output = Self.safetensorsPath(for: path)
            let folder = URL(fileURLWithPath: path).deletingPathExtension().path + "-diffusers"
            return """
                \(path): refusing to load a PyTorch pickle checkpoint: \(evidence). Pickle files can run \
                arbitrary code when loaded, so Atelier only reads safetensors. Convert it once with PyTorch installed:
                  python -c "\(Self.conversionOneLiner(input: path, output: output))"
                then load \(output) instead. Or, with diffusers installed, write a diffusers folder of safetensors:
                  python -c "from diffusers import StableDiffusionPipeline; \
                StableDiffusionPipeline.from_single_file('\(Self.pythonEscaped(path))')\
                .save_pretrained('\(Self.pythonEscaped(folder))', safe_serialization=True)"
                """
        case .pickleWeightsInFolder(let path, let files):
            let listed = files.map { "  \($0)" }.joined(separator: "\n")
            return """
                \(path): this diffusers folder only has PyTorch pickle weights, which Atelier refuses to load \
                (unpickling can run arbitrary code):
                \(listed)
                Re-save it as safetensors with diffusers installed:
                  python -c "from diffusers import DiffusionPipeline; DiffusionPipeline.from_pretrained('\(Self.pythonEscaped(path))').save_pretrained('\(Self.pythonEscaped(path))-safetensors', safe_serialization=True)"
                (for a single component folder use its model class, e.g. UNet2DConditionModel, in place of DiffusionPipeline), \
                or download the .safetensors variant of the model instead.
                """
        case .unrecognized(let path, let reason):
            return "\(path): not a checkpoint Atelier can load: \(reason). Pass a .safetensors file or a diffusers folder."
        case .unreadable(let path, let reason):
            return "\(path): cannot read: \(reason)"
        }
    }

    /// `m.ckpt` → `m.safetensors`, next to the original.
    static func safetensorsPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingPathExtension().appendingPathExtension("safetensors").path
    }

    /// The conversion command for the Python side: `weights_only=True` so even the conversion
    /// does not execute code from the checkpoint; `state_dict` unwrapped as SD checkpoints nest it;
    /// non-tensors (e.g. step counters) skipped; `.contiguous()` because safetensors requires it.
    static func conversionOneLiner(input: String, output: String) -> String {
        let source = pythonEscaped(input)
        let destination = pythonEscaped(output)
        return "import torch, safetensors.torch as st; "
            + "sd=torch.load('\(source)', map_location='cpu', weights_only=True); sd=sd.get('state_dict', sd); "
            + "st.save_file({k: v.contiguous() for k, v in sd.items() if hasattr(v, 'contiguous')}, '\(destination)')"
    }

    /// Escapes a path for a single-quoted Python literal inside a double-quoted shell argument.
    static func pythonEscaped(_ path: String) -> String {
        var out = ""
        for character in path {
            switch character {
            case "\\": out += "\\\\\\\\"  // Python needs \\, and the shell halves it
            case "'": out += "\\'"
            case "\"": out += "\\\""
            case "$": out += "\\$"
            case "`": out += "\\`"
            default: out.append(character)
            }
        }
        return out
    }
}
