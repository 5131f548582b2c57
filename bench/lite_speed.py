"""cots-lite speed on this CPU with 2 threads.

    .venv/bin/python bench/lite_speed.py

- images embedded per second at batch 32, from decoded tensors and from JPEG files on disk
  (decode + resize + crop + encode, decoding on 2 threads ahead of the model as the indexer does);
- text query latency (one query -> embedding), p50 and p99;
- cold start: a fresh Python process, from its start to the first query answered (load the cached
  checkpoint, embed the query, rank a stored set of image embeddings).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spin-waiting on a shared CPU: see app/cli.py
import torch  # noqa: E402
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cots_core import load_model  # noqa: E402

PHOTOS = ROOT / "tests" / "data" / "real_photos"
THREADS = 2
BATCH = 32

COLD_START = """
import time, sys
import torch
torch.set_num_threads({threads})
from cots_core import load_model
model = load_model("cots-lite")
index = torch.load({index!r}, weights_only=True)
scores = index @ model.encode_texts(["a cat sleeping on a sofa"])[0]
print("answer", int(scores.argmax()), flush=True)
print("after_import_and_load", time.perf_counter(), flush=True)
"""


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def images_from_tensors(model, pixels: torch.Tensor, repeats: int = 5) -> float:
    model.encode_images(pixels)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        model.encode_images(pixels)
    return repeats * len(pixels) / (time.perf_counter() - start)


def images_from_files(model, files: list[Path]) -> float:
    def decode(path: Path) -> torch.Tensor:
        with Image.open(path) as image:
            return model.preprocess(image)

    start = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        decoded = pool.map(decode, files)  # decodes run ahead of the model
        batch: list[torch.Tensor] = []
        for tensor in decoded:
            batch.append(tensor)
            if len(batch) == BATCH:
                model.encode_images(torch.stack(batch))
                batch = []
        if batch:
            model.encode_images(torch.stack(batch))
    return len(files) / (time.perf_counter() - start)


def query_latency(model, queries: list[str], repeats: int = 4) -> list[float]:
    model.encode_texts(queries[:1])  # warm-up
    times = []
    for _ in range(repeats):
        for query in queries:
            start = time.perf_counter()
            model.encode_texts([query])
            times.append(1000 * (time.perf_counter() - start))
    return times


def cold_start(index_path: Path, runs: int = 3) -> list[float]:
    """Seconds from spawning `python` to the first answer line (the checkpoint is already cached)."""
    code = COLD_START.format(threads=THREADS, index=str(index_path))
    results = []
    for _ in range(runs):
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for line in process.stdout:
            if line.startswith("answer"):
                results.append(time.perf_counter() - start)
                break
        process.wait()
        if process.returncode:
            raise RuntimeError("cold-start process failed")
    return results


def main() -> None:
    torch.set_num_threads(THREADS)
    model = load_model("cots-lite")  # builds and caches on the first run
    spec = json.loads((PHOTOS / "queries.json").read_text())
    files = [PHOTOS / entry["file"] for entry in spec["photos"]]
    queries = [q for entry in spec["photos"] for q in entry["queries"]]
    files_96 = (files * 5)[:96]  # 3 batches of 32
    pixels = torch.stack([model.preprocess(Image.open(p)) for p in (files * 2)[:BATCH]])

    tensor_rate = images_from_tensors(model, pixels)
    images_from_files(model, files_96[:BATCH])  # warm the file cache
    file_rate = images_from_files(model, files_96)
    latency = query_latency(model, queries)
    index_path = Path("/tmp/cots_lite_speed_index.pt")
    torch.save(model.encode_images(pixels), index_path)
    cold = cold_start(index_path)

    print(f"torch {torch.__version__}, {THREADS} threads, batch {BATCH}, image size {model.config.image_size}")
    print(f"images/s from decoded tensors: {tensor_rate:.1f}")
    print(f"images/s from JPEG files (decode on {THREADS} threads + encode): {file_rate:.1f}")
    print(f"text query latency over {len(latency)} queries: p50 {statistics.median(latency):.1f} ms, "
          f"p99 {_percentile(latency, 99):.1f} ms")
    print(f"cold start to first answer (cached checkpoint), {len(cold)} runs: "
          + ", ".join(f"{s:.2f}s" for s in cold) + f" (median {statistics.median(cold):.2f}s)")


if __name__ == "__main__":
    main()
