"""Usage: .venv/bin/python Tests/Reference/make_full_pipelines.py OUT_DIR [base] [x4]

Full-size random-weight SD2-base and x4-upscaler pipeline folders (fp32) for RSS runs.
Tokenizer/scheduler folders are copied from the tiny fixtures (token ids < 914 are valid rows
of the full 49408-row embedding)."""
import os, shutil, sys, time, json
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
from diffusers import UNet2DConditionModel, AutoencoderKL
from transformers import CLIPTextConfig, CLIPTextModel
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import reinit_
from make_full_unet import SD21_UNET_CONFIG
torch.set_grad_enabled(False)
FIX = Path(__file__).resolve().parents[1] / "Fixtures" / "pipelines" / "models"
OUT = Path(sys.argv[1])

def build(cls, **cfg):
    with torch.device("meta"):
        m = cls(**cfg) if cls is not CLIPTextModel else cls(cfg["config"])
    m = m.to_empty(device="cpu").eval()
    reinit_(m)
    return m

def te():
    c = CLIPTextConfig(vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
                       num_attention_heads=16, max_position_embeddings=77, hidden_act="gelu", layer_norm_eps=1e-5,
                       projection_dim=512, bos_token_id=0, eos_token_id=2, pad_token_id=1)
    torch.manual_seed(1)
    with torch.device("meta"):
        m = CLIPTextModel(c)
    m = m.to_empty(device="cpu").eval()
    for n, b in m.named_buffers():
        if "position_ids" in n: b.copy_(torch.arange(77)[None])
    reinit_(m)
    return m

def folder(name, tiny, unet_cfg, vae_cfg):
    d = OUT / name
    if (d / "model_index.json").exists():
        print("exists", d); return
    shutil.copytree(FIX / tiny, d, ignore=shutil.ignore_patterns("*.safetensors"), dirs_exist_ok=True)
    t0 = time.time()
    torch.manual_seed(2); u = build(UNet2DConditionModel, **unet_cfg)
    u.save_pretrained(str(d / "unet"), safe_serialization=True, max_shard_size="100GB"); del u
    torch.manual_seed(3); v = build(AutoencoderKL, **vae_cfg)
    v.save_pretrained(str(d / "vae"), safe_serialization=True, max_shard_size="100GB"); del v
    t = te(); t.save_pretrained(str(d / "text_encoder"), safe_serialization=True, max_shard_size="100GB"); del t
    print("wrote", d, f"{time.time()-t0:.0f}s")

base_unet = dict(SD21_UNET_CONFIG); base_unet.update(sample_size=64, upcast_attention=False)
sd2_vae = dict(block_out_channels=[128, 256, 512, 512], down_block_types=["DownEncoderBlock2D"] * 4,
               up_block_types=["UpDecoderBlock2D"] * 4, layers_per_block=2, latent_channels=4, norm_num_groups=32,
               sample_size=768, scaling_factor=0.18215)
x4_unet = dict(act_fn="silu", attention_head_dim=8, block_out_channels=[256, 512, 512, 1024], cross_attention_dim=1024,
               down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
               up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
               in_channels=7, out_channels=4, layers_per_block=2, norm_num_groups=32, num_class_embeds=1000,
               only_cross_attention=[True, True, True, False], sample_size=128, use_linear_projection=True,
               upcast_attention=False, flip_sin_to_cos=True, freq_shift=0, downsample_padding=1)
x4_vae = dict(block_out_channels=[128, 256, 512], down_block_types=["DownEncoderBlock2D"] * 3,
              up_block_types=["UpDecoderBlock2D"] * 3, layers_per_block=2, latent_channels=4, norm_num_groups=32,
              sample_size=256, scaling_factor=0.08333)
which = sys.argv[2:] or ["base", "x4"]
if "base" in which: folder("sd2-base-full", "tiny-base", base_unet, sd2_vae)
if "x4" in which: folder("x4-full", "tiny-x4", x4_unet, x4_vae)
