import Foundation
import AtelierKernels

/// A DPT depth estimator with its image processor settings, found the way SD2-depth and the
/// stand-alone MiDaS repositories lay them out:
/// - an SD2-depth folder: `depth_estimator/` (config.json + model.safetensors) and
///   `feature_extractor/preprocessor_config.json`;
/// - an estimator folder (Intel/dpt-hybrid-midas style, or SD2-depth's `depth_estimator/` itself):
///   config.json + model.safetensors [+ preprocessor_config.json], the processor otherwise taken
///   from a sibling `feature_extractor/`.
/// Without any processor config, SD2-depth's (bilinear to `image_size`, mean/std 0.5) applies.
public struct DPTDepthEstimator {
    public let model: DPTForDepthEstimation
    public let processor: DPTImageProcessorConfig
    /// The folder the weights came from.
    public let folder: URL

    public init(model: DPTForDepthEstimation, processor: DPTImageProcessorConfig, folder: URL) {
        self.model = model; self.processor = processor; self.folder = folder
    }

    /// The estimator folder inside `url` (`url/depth_estimator`, or `url` itself when it holds a
    /// DPT config), nil when there is none.
    public static func estimatorFolder(in url: URL) -> URL? {
        let fm = FileManager.default
        let nested = url.appendingPathComponent("depth_estimator")
        if fm.fileExists(atPath: nested.appendingPathComponent("config.json").path) { return nested }
        let config = url.appendingPathComponent("config.json")
        guard let data = fm.contents(atPath: config.path),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              json["model_type"] as? String == "dpt" else { return nil }
        return url
    }

    public static func load(_ url: URL) throws -> DPTDepthEstimator {
        guard let folder = estimatorFolder(in: url) else {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else { throw ModelError.missingFile(url.path) }
            throw ModelError.invalidConfig(file: url.path, reason: "no DPT depth estimator here (expected an SD2-depth folder with depth_estimator/, or a folder whose config.json has model_type \"dpt\")")
        }
        let model = try DPTForDepthEstimation.load(folder)
        let candidates = [
            url.appendingPathComponent("feature_extractor/preprocessor_config.json"),
            folder.appendingPathComponent("preprocessor_config.json"),
            folder.deletingLastPathComponent().appendingPathComponent("feature_extractor/preprocessor_config.json"),
        ]
        let processor = try candidates.first { FileManager.default.fileExists(atPath: $0.path) }
            .map { try DPTImageProcessorConfig.load($0) } ?? .sd2Depth(side: model.inputSide)
        return DPTDepthEstimator(model: model, processor: processor, folder: folder)
    }

    /// The processed size for an image of `width`×`height`, checked against the model, which only
    /// accepts `image_size`² (as transformers: the hybrid embeddings raise on anything else).
    public func inputSize(width: Int, height: Int) throws -> (width: Int, height: Int) {
        let size = processor.resizedSize(width: width, height: height)
        guard size.width == model.inputSide, size.height == model.inputSide else {
            throw ModelError.unsupported("the image processor makes \(size.width)×\(size.height) from a \(width)×\(height) image, but the depth estimator takes \(model.inputSide)×\(model.inputSide) (its image_size)")
        }
        return size
    }

    /// `predicted_depth` [1, H', W'] for an RGB image already resized to `inputSize`.
    public func predict(resizedRGB rgb: [UInt8], width: Int, height: Int) throws -> Tensor {
        try model.predict(processor.pixelValues(rgb: rgb, width: width, height: height))
    }
}
