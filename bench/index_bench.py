"""Indexing benchmark: the whole pipeline (files on disk -> rows in SQLite) vs the model's forward alone.

    python bench/index_bench.py [--images 256] [--model cots-lite] [--device auto] [--size 1600x1200]

Writes N JPEG photos (random crops of the sample library at camera-like size), then in one run:
1. model only: the same images, already decoded and preprocessed in memory, through
   ``Encoder.encode_images`` in batches of the pipeline's batch size;
2. pipeline: ``Indexer.run`` on the folder into a fresh library (scan, hash, decode in threads,
   encode, write transactions, HNSW inserts, index save).
Reports images/s of each and the ratio (goal: pipeline >= 0.9 x model).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.library import Library  # noqa: E402
from app.library.encoder import Encoder  # noqa: E402
from app.library.indexer import Indexer, IndexOptions  # noqa: E402
from cots_core.media import read_image  # noqa: E402


def make_photos(folder: Path, n: int, size: tuple[int, int], seed: int = 0) -> list[Path]:
    from cots_resources import resource_path

    sources = [Image.open(p).convert("RGB") for p in sorted(resource_path("sample_library").rglob("*.jpg"))]
    rng = random.Random(seed)
    paths = []
    for i in range(n):
        src = sources[i % len(sources)]
        w, h = src.size
        cw, ch = rng.randint(w // 2, w), rng.randint(h // 2, h)
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        image = src.crop((x, y, x + cw, y + ch)).resize(size, Image.Resampling.BILINEAR)
        path = folder / f"album{i % 8}" / f"IMG_{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, quality=90)
        paths.append(path)
    return paths


def bench_encoder(args) -> Encoder:
    """``--tiny``: the random-init tiny preset (no weights); else ``--model`` on ``--device``."""
    if args.tiny:
        from cots_core import COTS, ModelConfig

        return Encoder(COTS(ModelConfig.preset("tiny"), pretrained_backbones=False), args.device, source="tiny")
    return Encoder.load(args.model, device=args.device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--model", default="cots-lite")
    parser.add_argument("--device", default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--size", default="1600x1200")
    parser.add_argument("--tiny", action="store_true", help="use the random-init tiny preset (no weights)")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))

    encoder = bench_encoder(args)
    batch = args.batch_size or encoder.default_batch_size()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        paths = make_photos(folder, args.images, size)

        # 1. model only (pixels prepared outside the timed region); one warm-up batch first
        pixels = torch.stack([encoder.preprocess(read_image(p, encoder.image_size).frames[0]) for p in paths])
        encoder.encode_images(pixels[:batch])
        if encoder.device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for start in range(0, len(pixels), batch):
            encoder.encode_images(pixels[start:start + batch])
        model_s = time.perf_counter() - t

        # 2. the whole pipeline, files on disk to rows in SQLite
        library = Library(Path(tmp) / "bench.db")
        library.add_folder(folder)
        options = IndexOptions(batch_size=batch, workers=args.workers, vocabulary=False)
        t = time.perf_counter()
        report = Indexer(library, encoder, options).run()
        pipeline_s = time.perf_counter() - t
        rows = library.db.conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        library.close()
    assert rows == args.images and report.failed == 0, (rows, report)
    result = {
        "images": args.images, "image_size_on_disk": args.size, "model": encoder.model_id,
        "device": str(encoder.device), "batch_size": batch, "cpu_count": os.cpu_count(),
        "decode_workers": options.workers or min(8, os.cpu_count() or 1),
        "model_only_images_per_s": args.images / model_s,
        "pipeline_images_per_s": args.images / pipeline_s,
        "pipeline_over_model": model_s / pipeline_s,
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
