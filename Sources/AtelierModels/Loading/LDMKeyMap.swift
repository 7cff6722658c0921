/// Rename tables from the original Stable Diffusion (ldm / OpenCLIP) single-file layout to
/// diffusers names (SD2-SPEC §6; diffusers `single_file_utils.py`). Each function takes the
/// component's keys with the component prefix already removed.
enum LDMKeyMap {
    typealias Table = [String: RenamedWeights.Entry]

    // MARK: UNet

    static let resnetRenames: [(String, String)] = [
        ("in_layers.0.", "norm1."), ("in_layers.2.", "conv1."), ("emb_layers.1.", "time_emb_proj."),
        ("out_layers.0.", "norm2."), ("out_layers.3.", "conv2."), ("skip_connection.", "conv_shortcut."),
    ]

    static func renameResnet(_ rest: String) -> String {
        for (old, new) in resnetRenames where rest.hasPrefix(old) { return new + rest.dropFirst(old.count) }
        return rest
    }

    /// `layers`: resnets per down level (inferred by the caller).
    static func unet(keys: [String], layers: Int, prefix: String) -> Table {
        var t: Table = [:]
        let fixed = ["time_embed.0.": "time_embedding.linear_1.", "time_embed.2.": "time_embedding.linear_2.",
                     "input_blocks.0.0.": "conv_in.", "out.0.": "conv_norm_out.", "out.2.": "conv_out.",
                     "label_emb.": "class_embedding."]
        let per = layers + 1
        for key in keys {
            let full = prefix + key
            if let (old, new) = fixed.first(where: { key.hasPrefix($0.key) }) {
                t[new + key.dropFirst(old.count)] = .init(full)
                continue
            }
            if key.hasPrefix("middle_block.") {
                let p = key.split(separator: ".", maxSplits: 2).map(String.init)
                guard p.count == 3, let sub = Int(p[1]) else { continue }
                switch sub {
                case 0: t["mid_block.resnets.0." + renameResnet(p[2])] = .init(full)
                case 1: t["mid_block.attentions.0." + p[2]] = .init(full)
                case 2: t["mid_block.resnets.1." + renameResnet(p[2])] = .init(full)
                default: break
                }
                continue
            }
            let parts = key.split(separator: ".", maxSplits: 3).map(String.init)
            guard parts.count == 4, let i = Int(parts[1]), let sub = Int(parts[2]) else { continue }
            let rest = parts[3]
            switch parts[0] {
            case "input_blocks" where i >= 1:
                let (b, l) = ((i - 1) / per, (i - 1) % per)
                if l == layers {
                    if rest.hasPrefix("op.") { t["down_blocks.\(b).downsamplers.0.conv." + rest.dropFirst(3)] = .init(full) }
                } else if sub == 0 {
                    t["down_blocks.\(b).resnets.\(l)." + renameResnet(rest)] = .init(full)
                } else if sub == 1 {
                    t["down_blocks.\(b).attentions.\(l)." + rest] = .init(full)
                }
            case "output_blocks":
                let (b, l) = (i / per, i % per)
                if sub == 0 {
                    t["up_blocks.\(b).resnets.\(l)." + renameResnet(rest)] = .init(full)
                } else if rest.hasPrefix("conv.") {  // upsampler: `.1.conv` without attention, `.2.conv` with
                    t["up_blocks.\(b).upsamplers.0." + rest] = .init(full)
                } else if sub == 1 {
                    t["up_blocks.\(b).attentions.\(l)." + rest] = .init(full)
                }
            default: break
            }
        }
        return t
    }

    // MARK: VAE

    static func vae(keys: [String], levels: Int, prefix: String) -> Table {
        var t: Table = [:]
        func resnet(_ s: String) -> String { s.replacingOccurrences(of: "nin_shortcut.", with: "conv_shortcut.") }
        let attn = ["norm.": "group_norm.", "q.": "to_q.", "k.": "to_k.", "v.": "to_v.", "proj_out.": "to_out.0."]
        for key in keys {
            let full = prefix + key
            let p = key.split(separator: ".").map(String.init)
            guard p.count >= 2 else { continue }
            let side = p[0]  // encoder | decoder | quant_conv | post_quant_conv
            if side == "quant_conv" || side == "post_quant_conv" { t[key] = .init(full); continue }
            let body = p.dropFirst().joined(separator: ".")
            if body.hasPrefix("norm_out.") { t["\(side).conv_norm_out." + body.dropFirst(9)] = .init(full); continue }
            if body.hasPrefix("conv_in.") || body.hasPrefix("conv_out.") { t[key] = .init(full); continue }
            if p[1] == "mid", p.count >= 4 {
                let rest = p.dropFirst(3).joined(separator: ".")
                switch p[2] {
                case "block_1": t["\(side).mid_block.resnets.0." + resnet(rest)] = .init(full)
                case "block_2": t["\(side).mid_block.resnets.1." + resnet(rest)] = .init(full)
                case "attn_1":
                    if let (old, new) = attn.first(where: { rest.hasPrefix($0.key) }) {
                        t["\(side).mid_block.attentions.0." + new + rest.dropFirst(old.count)] = .init(full)
                    }
                default: break
                }
                continue
            }
            guard (p[1] == "down" || p[1] == "up"), p.count >= 5, let i = Int(p[2]) else { continue }
            // The decoder's `up` list is stored coarsest-first in ldm, finest-first in diffusers.
            let (blocks, idx) = p[1] == "down" ? ("down_blocks", i) : ("up_blocks", levels - 1 - i)
            if p[3] == "block", let j = Int(p[4]) {
                t["\(side).\(blocks).\(idx).resnets.\(j)." + resnet(p.dropFirst(5).joined(separator: "."))] = .init(full)
            } else if p[3] == "downsample" || p[3] == "upsample" {
                let kind = p[3] == "downsample" ? "downsamplers" : "upsamplers"
                t["\(side).\(blocks).\(idx).\(kind).0." + p.dropFirst(4).joined(separator: ".")] = .init(full)
            }
        }
        return t
    }

    // MARK: OpenCLIP text tower

    /// `keepLayers`: blocks to keep (SD2 drops the last: it encodes with the penultimate layer).
    static func openCLIP(keys: [String], width: Int, keepLayers: Int, prefix: String) -> Table {
        var t: Table = [:]
        let layerRenames = ["ln_1.": "layer_norm1.", "ln_2.": "layer_norm2.", "attn.out_proj.": "self_attn.out_proj.",
                            "mlp.c_fc.": "mlp.fc1.", "mlp.c_proj.": "mlp.fc2."]
        for key in keys {
            let full = prefix + key
            if key == "token_embedding.weight" { t["embeddings.token_embedding.weight"] = .init(full) }
            else if key == "positional_embedding" { t["embeddings.position_embedding.weight"] = .init(full) }
            else if key.hasPrefix("ln_final.") { t["final_layer_norm." + key.dropFirst(9)] = .init(full) }
            else if key.hasPrefix("transformer.resblocks.") {
                let p = key.split(separator: ".", maxSplits: 3).map(String.init)
                guard p.count == 4, let i = Int(p[2]), i < keepLayers else { continue }
                let rest = p[3], base = "encoder.layers.\(i)."
                if rest == "attn.in_proj_weight" || rest == "attn.in_proj_bias" {
                    let part = rest.hasSuffix("weight") ? "weight" : "bias"
                    for (n, name) in ["q_proj", "k_proj", "v_proj"].enumerated() {
                        t[base + "self_attn.\(name).\(part)"] = .init(full, rows: (n * width)..<((n + 1) * width))
                    }
                } else if let (old, new) = layerRenames.first(where: { rest.hasPrefix($0.key) }) {
                    t[base + new + rest.dropFirst(old.count)] = .init(full)
                }
            }
        }
        return t
    }
}
