"""GPU paths of cots_core, run by hand on a CUDA machine: training steps under fp32 / bf16 / fp16
autocast and image-embedding throughput, at the cots-lite and paper (ViT-B/16 + BERT-base) scales.

Random weights (the compute is the same as with trained ones; nothing is downloaded). CMVM is off (the
library default): its targets would come from a random dVAE; each entry says ``"cmvm": false``. Results
recorded before this (bench/results/gpu_check_h200.json) trained CMVM against random-dVAE targets, the same compute
as with a trained one.
    python bench/gpu_check.py --out bench/results/gpu_check.json
    python bench/gpu_check.py --smoke          # a tiny CPU run that checks the script itself
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from cots_core import COTS, ModelConfig

BERT_BASE = dict(model_type="bert", hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, max_position_embeddings=512, vocab_size=30522)
MINILM_L6 = dict(model_type="bert", hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                 intermediate_size=1536, max_position_embeddings=512, vocab_size=30522)
TEXTS = ["two red circles left of a blue square", "a dog playing on the beach at sunset",
         "a cup of coffee on a table", "people walking in a city street at night"]


def configs(smoke: bool) -> dict[str, ModelConfig]:
    if smoke:
        return {"tiny": ModelConfig.preset("tiny")}
    text_random = {"model_name_or_path": None, "vocab_file": "vocab/tiny_vocab.txt"}
    return {
        "cots-lite-arch": ModelConfig.preset("cots-lite", text={**text_random, "hf_config": MINILM_L6}),
        "vit-b16-bert-base": ModelConfig.preset("vit-b16-bert-base", text={**text_random, "hf_config": BERT_BASE},
                                                queue={"size": 65536}),
    }


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_steps(model: COTS, batch_size: int, dtype: torch.dtype | None, steps: int, device) -> dict:
    size = model.config.image_size
    batch = {"pixels": torch.randn(batch_size, 3, size, size, device=device),
             "texts": [TEXTS[i % len(TEXTS)] + f" {i}" for i in range(batch_size)]}
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    model.train()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, last = [], {}
    for step in range(steps + 2):
        sync(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model.training_step(batch)
        scaler.scale(out["loss"]).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        if step >= 2:
            times.append(time.perf_counter() - start)
        last = {k: float(v) for k, v in out.items() if v.ndim == 0}
    step_time = sum(times) / len(times)
    result = {"batch": batch_size, "step_s": round(step_time, 4), "samples_per_s": round(batch_size / step_time, 1),
              "finite": all(v == v for k, v in last.items() if k != "amf_threshold"), "last": last}
    if device.type == "cuda":
        result["peak_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return result


@torch.no_grad()
def embed_throughput(model: COTS, batch_size: int, dtype: torch.dtype | None, device, repeats: int) -> dict:
    size = model.config.image_size
    pixels = torch.randn(batch_size, 3, size, size, device=device)
    model.eval()
    with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        reference = model.encode_images(pixels)
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            model.encode_images(pixels)
        sync(device)
    elapsed = time.perf_counter() - start
    return {"batch": batch_size, "images_per_s": round(batch_size * repeats / elapsed, 1),
            "embedding": reference.float()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    report: dict = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                    "torch": torch.__version__}
    dtypes = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if device.type == "cpu":
        dtypes = {"fp32": None, "bf16": torch.bfloat16}
    for name, config in configs(args.smoke).items():
        torch.manual_seed(0)
        model = COTS(config).to(device)
        train_batch = 4 if args.smoke else (128 if name.startswith("cots-lite") else 64)
        embed_batch = 8 if args.smoke else 256
        entry: dict = {"train": {}, "embed": {}, "cmvm": model.config.loss.use_mvlm and model.config.loss.use_cmvm}
        reference = None
        for dtype_name, dtype in dtypes.items():  # embeddings first, before training changes the weights
            embedded = embed_throughput(model, embed_batch, dtype, device, 2 if args.smoke else 10)
            embedding = embedded.pop("embedding")
            if reference is None:
                reference = embedding
            embedded["cosine_to_fp32_min"] = round(float((embedding * reference).sum(1).min()), 5)
            entry["embed"][dtype_name] = embedded
            print(name, "embed", dtype_name, embedded, flush=True)
        for dtype_name, dtype in dtypes.items():
            entry["train"][dtype_name] = train_steps(model, train_batch, dtype, 2 if args.smoke else 10, device)
            print(name, "train", dtype_name, entry["train"][dtype_name], flush=True)
        report[name] = entry
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
