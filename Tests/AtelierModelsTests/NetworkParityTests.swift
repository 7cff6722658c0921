import Foundation
import XCTest
import AtelierKernels
@testable import AtelierModels

/// Every network and variant against diffusers/transformers outputs on random-weight models.
final class NetworkParityTests: XCTestCase {
    func testTextEncoderMatchesTransformers() throws {
        let cases = Fixtures.cases("clip")
        XCTAssertGreaterThanOrEqual(cases.count, 2, "expected ≥ 2 text encoder fixtures")
        for name in cases {
            let model = try StableDiffusionModel.loadTextEncoder(Fixtures.url("clip", name, "text_encoder"))
            let io = try Fixtures.io("clip", name)
            let ids = try io.tensor("input_ids")
            let rows = (0..<ids.shape[0]).map { ids.slice($0).ints }
            assertParity(try model(rows), try io.tensor("last_hidden_state"), "clip/\(name)")
        }
    }

    func testUNetVariantsMatchDiffusers() throws {
        let cases = Fixtures.cases("unet")
        XCTAssertGreaterThanOrEqual(cases.count, 5, "expected base, v768, inpaint, depth and x4 UNet fixtures")
        for name in cases {
            let unet = try StableDiffusionModel.loadUNet(Fixtures.url("unet", name, "unet"))
            let io = try Fixtures.io("unet", name)
            let labels = io.contains("class_labels") ? try io.tensor("class_labels").ints : nil
            let out = try unet(try io.tensor("sample"), timesteps: try io.tensor("timestep").scalars,
                               context: try io.tensor("encoder_hidden_states"), classLabels: labels)
            assertParity(out, try io.tensor("output"), "unet/\(name)")
        }
    }

    func testVAEEncodeAndDecodeMatchDiffusers() throws {
        let cases = Fixtures.cases("vae")
        XCTAssertGreaterThanOrEqual(cases.count, 2, "expected SD2 and x4 VAE fixtures")
        for name in cases {
            let vae = try StableDiffusionModel.loadVAE(Fixtures.url("vae", name, "vae"))
            let io = try Fixtures.io("vae", name)
            assertParity(vae.encode(try io.tensor("image")), try io.tensor("moments"), "vae/\(name) encode")
            assertParity(vae.decode(try io.tensor("latents")), try io.tensor("decoded"), "vae/\(name) decode")
        }
    }

    func testSingleFileCheckpointMatchesItsDiffusersTwin() throws {
        let single = try StableDiffusionModel.load(Fixtures.url("singlefile", "tiny-sd2.safetensors"))
        let folder = try StableDiffusionModel.load(Fixtures.url("singlefile", "tiny-sd2"))
        XCTAssertEqual(single.format, .safetensors)
        XCTAssertEqual(folder.format, .diffusersFolder)
        let io = try Fixtures.io("singlefile", "")

        let ids = try io.tensor("input_ids")
        let rows = (0..<ids.shape[0]).map { ids.slice($0).ints }
        let textA = try single.textEncoder(rows), textB = try folder.textEncoder(rows)
        XCTAssertEqual(textA.maxAbsDifference(textB), 0, "text encoders differ")
        assertParity(textA, try io.tensor("last_hidden_state"), "singlefile text")

        let sample = try io.tensor("unet_sample"), t = try io.tensor("unet_timestep").scalars
        let ctx = try io.tensor("last_hidden_state")
        let unetA = try single.unet(sample, timesteps: t, context: ctx)
        let unetB = try folder.unet(sample, timesteps: t, context: ctx)
        XCTAssertEqual(unetA.maxAbsDifference(unetB), 0, "UNets differ")
        assertParity(unetA, try io.tensor("unet_output"), "singlefile unet")

        let decA = single.vae.decode(try io.tensor("vae_latents")), decB = folder.vae.decode(try io.tensor("vae_latents"))
        XCTAssertEqual(decA.maxAbsDifference(decB), 0, "VAE decoders differ")
        assertParity(decA, try io.tensor("vae_decoded"), "singlefile vae decode")
        let encA = single.vae.encode(try io.tensor("vae_image"))
        XCTAssertEqual(encA.maxAbsDifference(folder.vae.encode(try io.tensor("vae_image"))), 0, "VAE encoders differ")
        assertParity(encA, try io.tensor("vae_moments"), "singlefile vae encode")
    }

    func testInferredSingleFileConfigMatchesTheFolderConfig() throws {
        let ckpt = try SingleFileCheckpoint(url: Fixtures.url("singlefile", "tiny-sd2.safetensors"))
        let unet = try ConfigFile.load(UNet2DConditionConfig.self, from: Fixtures.url("singlefile", "tiny-sd2", "unet", "config.json"))
        XCTAssertEqual(ckpt.unetConfig.blockOutChannels, unet.blockOutChannels)
        XCTAssertEqual(ckpt.unetConfig.downBlockTypes, unet.downBlockTypes)
        XCTAssertEqual(ckpt.unetConfig.upBlockTypes, unet.upBlockTypes)
        XCTAssertEqual(try ckpt.unetConfig.resolved().layers, try unet.resolved().layers)
        XCTAssertEqual(try ckpt.unetConfig.resolved().heads, try unet.resolved().heads)
        let text = try ConfigFile.load(CLIPTextConfig.self, from: Fixtures.url("singlefile", "tiny-sd2", "text_encoder", "config.json"))
        XCTAssertEqual(ckpt.textConfig.numHiddenLayers, text.numHiddenLayers)
        XCTAssertEqual(ckpt.textConfig.hiddenSize, text.hiddenSize)
    }
}
