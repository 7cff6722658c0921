#!/usr/bin/env python3
"""Writes the committed seed corpora of the fuzz targets (Tests/Fuzz/corpus/<target>/).

Run from the repository root: python3 Tests/Fuzz/make_corpus.py
Needs `protobuf` and `grpcio-tools` (to compile Protocols/atelier/v1/farm.proto to Python).
The seeds are small valid inputs of each format; the fuzzers mutate from there.
"""
import json, os, struct, subprocess, sys, tempfile, zlib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "Tests", "Fuzz", "corpus")


def write(target, name, data):
    folder = os.path.join(OUT, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def png(width, height, color_type=2, bit_depth=8, text=None, palette=None, pixels=None):
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    bpp = max(1, channels * bit_depth // 8)
    rows = b""
    for y in range(height):
        row = bytes(((x * 37 + y * 11 + c * 5) & 0xFF) if pixels is None else pixels for x in range(width) for c in range(bpp))
        rows += b"\x00" + row
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
    if palette is not None:
        out += chunk(b"PLTE", palette)
    if text is not None:
        out += chunk(b"tEXt", b"parameters\x00" + text.encode("latin-1"))
    out += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return out


def safetensors(tensors, metadata=None):
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dtype, shape, payload) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * ((8 - len(blob) % 8) % 8)
    return struct.pack("<Q", len(blob)) + blob + data


def f32(n):
    return struct.pack("<%df" % n, *[(i % 7) * 0.25 for i in range(n)])


def main():
    # PNG
    write("png", "rgb-8x6.png", png(8, 6))
    write("png", "gray-5x3.png", png(5, 3, color_type=0))
    write("png", "gray16-4x4.png", png(4, 4, color_type=0, bit_depth=16))
    write("png", "rgba-3x3-text.png", png(3, 3, color_type=6, text="a cat\nSteps: 20, Seed: 42"))
    write("png", "palette-4x2.png", png(4, 2, color_type=3, palette=bytes(range(12)), pixels=2))
    write("png", "gray-alpha-2x2.png", png(2, 2, color_type=4))
    with open(os.path.join(ROOT, "Tests/Fixtures/demo/pattern-96x64.png"), "rb") as f:
        write("png", "pattern-96x64.png", f.read())

    # safetensors (headers, tensor data, single-file checkpoint key layouts)
    write("safetensors", "one-f32.safetensors", safetensors({"w": ("F32", [2, 2], f32(4))}))
    write("safetensors", "f16-bf16-meta.safetensors", safetensors(
        {"a": ("F16", [3], b"\x00\x3c" * 3), "b": ("BF16", [1, 2], b"\x80\x3f" * 2), "c": ("I64", [1], b"\x01" + b"\x00" * 7)},
        metadata={"format": "pt"}))
    write("safetensors", "empty.safetensors", safetensors({}))
    write("safetensors", "scalar-and-zero.safetensors", safetensors({"s": ("F32", [], f32(1)), "z": ("F32", [0, 4], b"")}))
    u, v, t = "model.diffusion_model.", "first_stage_model.", "cond_stage_model.model."
    single = {
        u + "input_blocks.0.0.weight": ("F32", [8, 4, 1, 1], f32(32)),
        u + "input_blocks.1.0.in_layers.2.weight": ("F32", [8, 8, 1, 1], f32(64)),
        u + "input_blocks.1.1.proj_in.weight": ("F32", [8, 8], f32(64)),
        u + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": ("F32", [8, 4], f32(32)),
        u + "input_blocks.2.0.op.weight": ("F32", [8, 8, 1, 1], f32(64)),
        u + "time_embed.0.weight": ("F32", [32, 8], f32(256)),
        u + "out.2.weight": ("F32", [4, 8, 1, 1], f32(32)),
        v + "encoder.conv_in.weight": ("F32", [4, 3, 1, 1], f32(12)),
        v + "encoder.down.0.block.0.conv1.weight": ("F32", [4, 4, 1, 1], f32(16)),
        v + "decoder.conv_out.weight": ("F32", [3, 4, 1, 1], f32(12)),
        v + "quant_conv.weight": ("F32", [8, 8, 1, 1], f32(64)),
        t + "token_embedding.weight": ("F32", [16, 4], f32(64)),
        t + "positional_embedding": ("F32", [4, 4], f32(16)),
        t + "transformer.resblocks.0.attn.in_proj_weight": ("F32", [12, 4], f32(48)),
    }
    write("safetensors", "singlefile-layout.safetensors", safetensors(single))

    # tokenizer prompts
    prompts = {
        "plain.txt": "a photo of an astronaut riding a horse on mars",
        "weights.txt": "(masterpiece:1.2), [blurry], best quality, 8k uhd, <lora:x:0.5>",
        "unicode.txt": "café déjà vu — naïve résumé, Ελληνικά, русский, 日本語のテキスト, 한국어, عربى",
        "emoji.txt": "a 🐈 and a 🐕‍🦺 under 🌧️, flags 🇫🇷🇯🇵, skin 👍🏽",
        "mojibake.txt": "The Mona Lisa doesnâ€™t have eyebrows. cafÃ©",
        "whitespace.txt": "  tabs\tand\nnewlines\r\n  and\u00a0nbsp\u200bzero-width  ",
        "long.txt": "lighthouse " * 120,
        "special.txt": "<|startoftext|>hello<|endoftext|> <|endoftext|>",
        "punct.txt": "!!!???...,,,;;;::: 'quoted' \"double\" it's we'll 1,234.56 $%^&*()",
    }
    for name, text in prompts.items():
        write("tokenizer", name, text.encode("utf-8"))
    write("tokenizer", "invalid-utf8.bin", b"a \xff\xfe cat \xc3\x28 \xe2\x82 dog \xf0\x9f\x98")

    # protobuf requests
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.check_call([sys.executable, "-m", "grpc_tools.protoc", "--python_out=" + tmp, "-I",
                               os.path.join(ROOT, "Protocols"), os.path.join(ROOT, "Protocols/atelier/v1/farm.proto")])
        sys.path.insert(0, tmp)
        from atelier.v1 import farm_pb2 as pb
        small = png(16, 16)
        def req(name, **body):
            r = pb.Request(protocol_version=1, request_id="seed-" + name, **body)
            write("protobuf", name + ".bin", r.SerializeToString())
        worker = "fuzzworker01"
        req("register", register_worker=pb.RegisterWorkerRequest(worker_name="w", worker_id=worker,
            capabilities=pb.WorkerCapabilities(models=[pb.ModelInfo(name="base", unet_in_channels=4)], threads=2,
                                               version="0.1.0", numerics="fp32", slots=1)))
        req("lease", lease_task=pb.LeaseTaskRequest(worker_id=worker))
        req("heartbeat", heartbeat=pb.HeartbeatRequest(worker_id=worker, task_id="000000000001-0", fencing_token=1,
                                                      step=3, total_steps=20))
        req("complete", complete_task=pb.CompleteTaskRequest(worker_id=worker, task_id="000000000001-0",
                                                            fencing_token=1, result_png=small, render_seconds=0.5))
        req("fail", fail_task=pb.FailTaskRequest(worker_id=worker, task_id="000000000001-0", fencing_token=1, message="oops"))
        req("release", release_task=pb.ReleaseTaskRequest(worker_id=worker, task_id="000000000001-0", fencing_token=1))
        params = pb.GenerationParams(model="base", seed=42, steps=4, width=64, height=64, guidance=7.5,
                                     negative_prompt="blurry", scheduler="euler-a")
        req("submit-batch", submit_job=pb.SubmitJobRequest(batch=pb.BatchJob(prompts=["a cat", "a dog"], count=2,
                                                                            params=params), priority=1, max_attempts=3))
        img2img = pb.GenerationParams(model="base", seed=7, steps=4, strength=0.7, init_image_png=small, width=64, height=64)
        req("submit-img2img", submit_job=pb.SubmitJobRequest(batch=pb.BatchJob(prompts=["x"], count=1, params=img2img)))
        req("submit-upscale", submit_job=pb.SubmitJobRequest(upscale=pb.UpscaleJob(
            image_png=small, params=pb.UpscaleParams(model="x4", prompt="a cat", seed=3, steps=2), tile=8, overlap=2)))
        req("status", job_status=pb.JobStatusRequest(job_id="000000000001", include_tasks=True))
        req("cancel", cancel_job=pb.CancelJobRequest(job_id="000000000001"))
        req("fetch", fetch_result=pb.FetchResultRequest(job_id="000000000001", index=0))
        req("list-workers", list_workers=pb.ListWorkersRequest(limit=10))
        req("list-jobs", list_jobs=pb.ListJobsRequest(limit=5))
        write("protobuf", "version-2.bin", pb.Request(protocol_version=2, request_id="v2",
                                                      list_jobs=pb.ListJobsRequest()).SerializeToString())
        write("protobuf", "empty.bin", b"")


if __name__ == "__main__":
    main()
