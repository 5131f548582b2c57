"""Training throughput and peak memory of a full COTS step vs an MCL-only step: same model, same batch,
one process, measured back to back and reported as ratios.

    python bench/train_throughput.py --preset tiny --batch-size 32 --steps 10
    python bench/train_throughput.py --preset vit-b16-bert-base --batch-size 64 --steps 10   # on a GPU

A step is forward (all enabled objectives) + backward + AdamW step, with bf16 autocast on CUDA. The
paper-scale preset names bert-base-uncased; offline, ``--offline-text`` builds BERT-base from its config
with the shipped vocabulary instead (same compute, no download).

CMVM needs a trained dVAE: the full step includes it only with ``--tokenizer DIR`` (``cots train tokenizer``
for the same preset), otherwise it is CMLM + KL + AMF and the report says ``"cmvm": false``.

    python bench/train_throughput.py --preset tiny --tokenizer runs/dvae    # the full step, CMVM included
"""
from __future__ import annotations

import argparse
import contextlib
import json
import random
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cots_core import COTS, ModelConfig  # noqa: E402
from trainer.build import load_image_tokenizer  # noqa: E402
from trainer.synth import sample_scene  # noqa: E402

BERT_BASE = {"model_type": "bert", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
             "intermediate_size": 3072, "max_position_embeddings": 512, "vocab_size": 30522}
MCL_ONLY = dict(use_mcl=True, use_mvlm=False, use_kl=False, use_amf=False)
FULL = dict(use_mcl=True, use_mvlm=True, use_kl=True, use_amf=True)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process high-water mark (monotonic)


def measure(model: COTS, optimizer, batch: dict, steps: int, warmup: int, device: torch.device) -> dict:
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else contextlib.nullcontext
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    for i in range(warmup + steps):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        with autocast():
            out = model.training_step(batch)
        out["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    n = batch["pixels"].shape[0]
    return {"samples_per_s": n * steps / seconds, "step_ms": 1000 * seconds / steps,
            "peak_memory_mb": peak_memory_mb(device)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="tiny")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--offline-text", action="store_true", help="BERT-base from config + shipped vocab")
    p.add_argument("--tokenizer", help="trained dVAE folder for this preset: the full step then trains CMVM")
    p.add_argument("--json", help="also write the result here")
    args = p.parse_args(argv)

    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    torch.manual_seed(0)
    config = ModelConfig.preset(args.preset)
    if args.offline_text:
        config = config.replace(text={"model_name_or_path": None, "hf_config": BERT_BASE,
                                      "vocab_file": "vocab/tiny_vocab.txt"})
    model = COTS(config)
    if args.tokenizer:
        load_image_tokenizer(model, args.tokenizer)  # records tokenizer.trained: CMVM has real targets
    model = model.to(device).train()
    full = {**FULL, "use_cmvm": model.config.tokenizer.trained}
    optimizer = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-5)
    rng = random.Random(0)
    s = config.image_size
    batch = {"pixels": torch.randn(args.batch_size, 3, s, s, device=device),
             "texts": [sample_scene(rng).caption() for _ in range(args.batch_size)]}
    results = {}
    # MCL-only first: on CPU the memory figure is a process high-water mark that never goes down
    for name, flags in (("mcl_only", MCL_ONLY), ("cots", full)):
        model.config = model.config.replace(loss=flags)
        results[name] = measure(model, optimizer, batch, args.steps, args.warmup, device)
    report = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        "preset": args.preset, "batch_size": args.batch_size, "steps": args.steps, "cmvm": full["use_cmvm"],
        **results,
        "throughput_ratio_cots_over_mcl": results["cots"]["samples_per_s"] / results["mcl_only"]["samples_per_s"],
        "memory_ratio_cots_over_mcl": results["cots"]["peak_memory_mb"] / results["mcl_only"]["peak_memory_mb"],
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
