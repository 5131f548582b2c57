"""What a caption memory costs as the person's captioned set grows: time per photo embedded (on top of the
image tower) and bytes in the checkpoint, at N remembered photos.

    .venv/bin/python bench/caption_memory_cost.py [--sizes 300 3000 30000 100000]

The cost depends only on the shapes (1,280-d pooled features, 384-d embeddings for cots-lite), so the memory
is filled with random unit rows; the tower's own time per photo comes from the same run (cots-lite, batch 32,
2 threads) for scale.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cots_core import lite, load_model  # noqa: E402
from cots_core.heads import CaptionMemory  # noqa: E402
from trainer.caption_memory import NULL_SIMILARITY, SCALE, TEMPERATURE  # noqa: E402


def per_photo_ms(fn, batch: int, repeats: int = 5) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times) / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 3000, 30000, 100000])
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = load_model(lite.NAME).eval()
    width, dim = model.image_encoder.width, model.config.embed_dim
    pixels = torch.randn(args.batch, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        tower = per_photo_ms(lambda: model.image_encoder(pixels), args.batch, repeats=3)
        features = model.image_encoder(pixels).global_feature
        embedding = F.normalize(model.image_projection(features), dim=-1)
    rows = []
    for size in args.sizes:
        memory = CaptionMemory.build(torch.randn(size, width), torch.randn(size, dim), TEMPERATURE, NULL_SIMILARITY,
                                     SCALE)
        with torch.inference_mode():
            cost = per_photo_ms(lambda m=memory: m(features, embedding), args.batch)
        megabytes = sum(b.numel() * b.element_size() for b in memory.buffers()) / 2**20
        rows.append({"remembered": size, "memory_ms_per_photo": round(cost, 3), "checkpoint_mb": round(megabytes, 1),
                     "share_of_tower": round(cost / tower, 3)})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\ntower alone: {tower:.1f} ms per photo (cots-lite, batch {args.batch}, 2 threads, PyTorch eager)\n")
    print("| photos remembered | memory ms per photo | x tower time | checkpoint MB |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['remembered']:,} | {row['memory_ms_per_photo']} | {row['share_of_tower']} | {row['checkpoint_mb']} |")


if __name__ == "__main__":
    main()
