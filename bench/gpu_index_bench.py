"""End-to-end indexing benchmark for a GPU machine, one command (a few minutes on one GPU):

    python bench/gpu_index_bench.py                 # cuda if present; cots-lite; 2048 camera-size JPEGs
    python bench/gpu_index_bench.py --tiny --images 32 --device cpu     # the quick check on any machine

Writes N JPEG photos (random crops of the sample library at 1600x1200, in parallel), then measures, in
one process and on the same files:
1. model alone: decoded, preprocessed pixels already in host memory -> ``Encoder.encode_images`` in the
   pipeline's batch size (host->device copy included), after one warm-up batch;
2. decoding alone: the decode workers (read, hash, JPEG draft decode, preprocess) over all files;
3. pipeline: ``Indexer.run`` into a fresh library: files on disk -> rows in SQLite (scan, hash, decode in
   ``--workers`` threads, encode, transactions, HNSW inserts, index save).
Decode workers default to every core of the machine (as the app's do beside a GPU). Prints JSON and
a markdown row: images/s of each, and pipeline / model (target >= 0.8 on a GPU).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.library import Library  # noqa: E402
from app.library.indexer import Indexer, IndexOptions  # noqa: E402
from bench.index_bench import bench_encoder, make_photos  # noqa: E402
from cots_core.media import read_image  # noqa: E402


def write_photos(folder: Path, n: int, size: tuple[int, int], workers: int) -> list[Path]:
    """``index_bench.make_photos`` in ``workers`` parallel slices (PIL releases the GIL while encoding)."""
    slices = [(start, min(n, start + 256)) for start in range(0, n, 256)]

    def one(bounds: tuple[int, int]) -> list[Path]:
        start, stop = bounds
        return make_photos(folder / f"part{start:06d}", stop - start, size, seed=start)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [p for part in pool.map(one, slices) for p in part]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(args) -> dict:
    workers = args.workers or os.cpu_count() or 1
    size = tuple(int(v) for v in args.size.split("x"))
    encoder = bench_encoder(args)
    batch = args.batch_size or encoder.default_batch_size()
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        folder = Path(tmp) / "photos"
        started = time.perf_counter()
        paths = write_photos(folder, args.images, size, workers)
        write_s = time.perf_counter() - started

        # 2. decoding alone (also gives the pixels for 1.)
        def decode(path: Path) -> torch.Tensor:
            data = path.read_bytes()
            return encoder.preprocess(read_image(data, encoder.image_size).frames[0])

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pixels = torch.stack(list(pool.map(decode, paths)))
        decode_s = time.perf_counter() - started

        # 1. model alone, one warm-up batch first
        encoder.encode_images(pixels[:batch])
        synchronize(encoder.device)
        started = time.perf_counter()
        for start in range(0, len(pixels), batch):
            encoder.encode_images(pixels[start:start + batch])  # returns numpy: waits for the device
        model_s = time.perf_counter() - started
        del pixels

        # 3. the whole pipeline
        library = Library(Path(tmp) / "bench.db")
        library.add_folder(folder)
        options = IndexOptions(batch_size=batch, workers=workers, vocabulary=False)
        started = time.perf_counter()
        report = Indexer(library, encoder, options).run()
        pipeline_s = time.perf_counter() - started
        rows = library.db.conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        library.close()
    if rows != args.images or report.failed:
        raise SystemExit(f"pipeline wrote {rows} rows for {args.images} images ({report.failed} failed)")
    device_name = torch.cuda.get_device_name(encoder.device) if encoder.device.type == "cuda" else "cpu"
    return {
        "images": args.images, "size_on_disk": args.size, "model": encoder.model_id, "device": device_name,
        "batch_size": batch, "cpu_count": os.cpu_count(), "decode_workers": workers,
        "write_jpegs_s": round(write_s, 1),
        "model_only_images_per_s": round(args.images / model_s, 1),
        "decode_only_images_per_s": round(args.images / decode_s, 1),
        "pipeline_images_per_s": round(args.images / pipeline_s, 1),
        "pipeline_over_model": round(model_s / pipeline_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=None, help="default: 2048 on a GPU, 64 on a CPU")
    parser.add_argument("--model", default="cots-lite")
    parser.add_argument("--tiny", action="store_true", help="the random-init tiny preset (no weights needed)")
    parser.add_argument("--device", default=None, help="default: cuda when present")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the app's choice for the device")
    parser.add_argument("--workers", type=int, default=None, help="decode threads (default: every core)")
    parser.add_argument("--size", default="1600x1200")
    parser.add_argument("--tmp", default=None, help="folder for the photos and the library (default: the system's)")
    args = parser.parse_args()
    if args.images is None:
        args.images = 2048 if torch.cuda.is_available() and args.device in (None, "cuda") else 64
    result = run(args)
    print(json.dumps(result, indent=1))
    print(f"| {result['images']} JPEG {result['size_on_disk']} | {result['model']} | {result['device']} | "
          f"{result['batch_size']} | {result['decode_workers']} | {result['model_only_images_per_s']} | "
          f"{result['decode_only_images_per_s']} | {result['pipeline_images_per_s']} | "
          f"**{result['pipeline_over_model']}** |")


if __name__ == "__main__":
    main()
