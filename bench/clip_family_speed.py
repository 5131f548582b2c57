"""CLIP-family towers at real size on the CPU, beside cots-lite, in one run (issue 20).

    nice python bench/clip_family_speed.py [--threads 2] [--rounds 3] [--models vit-b32 vit-b16 siglip-b16]

Random initialisation at the published architectures' sizes (no CLIP-class weights exist offline): the
speed is real, the embeddings are not. Per model:
- image throughput (images/s) on ``--threads`` threads, at the indexer's CPU batch size (32), PyTorch eager
  and ONNX Runtime (the graph ``cots_core.image_runtime`` exports and checks), and ONNX Runtime with int8
  dynamic quantisation (``onnxruntime.quantization.quantize_dynamic``), rounds interleaved;
- int8 agreement with fp32 on tests/data/real_photos (24 photos the runtime's own int8 check never sees:
  it decides on the sample library): cosine per photo, and the overlap of each photo's 10 nearest photos
  (the ``similar`` ranking) under both; and the runtime's verdict (``image_runtime``'s int8 check);
- text query latency (one short query, p50/p99 of 30, warm);
- cold ``cots search`` (process start to results) on a library of the real photos indexed with the model,
  median of ``--rounds``, beside ``python -c "import torch"``;
- the one-time ONNX export's duration and the checkpoint's size on disk.
Writes one JSON line per model to bench/results/clip_family_speed.jsonl and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as app/cli.py
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from hf_tiny import make_tiny_clip, make_tiny_siglip  # noqa: E402

from app.library.encoder import Encoder  # noqa: E402
from cots_core import image_runtime  # noqa: E402
from cots_core.media import read_image  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "clip_family_speed.jsonl"
PHOTOS = sorted((ROOT / "tests" / "data" / "real_photos").glob("*.jpg"))
BATCH = 32
# The published architectures (transformers' defaults are ViT-B/32 for CLIPConfig, SigLIP-B/16-224 for
# SiglipConfig); the tokenizers are small stand-ins (a query tokenises to a similar length).
CLIP_TEXT = dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8,
                 vocab_size=49408)
CLIP_VISION = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12)
SIGLIP = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12)
SPECS = {
    "vit-b32": lambda folder: make_tiny_clip(folder, image_size=224, patch_size=32, projection_dim=512,
                                             text=CLIP_TEXT, vision=CLIP_VISION),
    "vit-b16": lambda folder: make_tiny_clip(folder, image_size=224, patch_size=16, projection_dim=512,
                                             text=CLIP_TEXT, vision=CLIP_VISION),
    "siglip-b16": lambda folder: make_tiny_siglip(folder, image_size=224, patch_size=16, width=768,
                                                  text={**SIGLIP, "vocab_size": 32000, "max_position_embeddings": 64},
                                                  vision=SIGLIP),
}


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def images_per_s(encode, pixels: torch.Tensor) -> float:
    started = time.perf_counter()
    encode(pixels)
    return pixels.shape[0] / (time.perf_counter() - started)


def quantized_session(graph: Path, threads: int):
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = graph.with_name("image.int8.onnx")
    quantize_dynamic(str(graph), str(target), weight_type=QuantType.QInt8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(target), options, providers=["CPUExecutionProvider"]), target


def cold_search(source: str, workdir: Path, rounds: int) -> tuple[float, float]:
    """Median seconds of `cots search` in a fresh process, and of `import torch`, interleaved."""
    env = {**os.environ, "COTS_DATA_DIR": str(workdir / "data")}
    db = str(workdir / "library.db")
    photos = workdir / "photos"
    photos.mkdir(exist_ok=True)
    for path in PHOTOS:
        shutil.copy(path, photos / path.name)
    subprocess.run([sys.executable, "-m", "app.cli", "index", str(photos), "--db", db, "--model", source,
                    "--quiet", "--no-ocr", "--no-faces"], env={**env, "COTS_IMAGE_RUNTIME": "torch"}, check=True,
                   capture_output=True)  # the library only has to exist: no second ONNX export
    search, torch_only = [], []
    for _ in range(rounds):
        for command, into in (([sys.executable, "-m", "app.cli", "search", "a dog on the beach", "--db", db],
                               search), ([sys.executable, "-c", "import torch"], torch_only)):
            started = time.perf_counter()
            subprocess.run(command, env=env, check=True, capture_output=True)
            into.append(time.perf_counter() - started)
    return statistics.median(search), statistics.median(torch_only)


def measure(name: str, source: str, workdir: Path, threads: int, rounds: int) -> dict:
    torch.set_num_threads(threads)
    encoder = Encoder.load(source, device="cpu")
    model = encoder.model
    pixels = torch.stack([encoder.preprocess(read_image(p, encoder.image_size).frames[0])
                          for p in (PHOTOS * 2)[:BATCH]])
    row: dict = {"model": name, "image_size": encoder.image_size, "embed_dim": encoder.embed_dim,
                 "threads": threads, "load_avg": os.getloadavg()[0]}
    started = time.perf_counter()
    os.environ[image_runtime.RUNTIME_ENV] = "auto"
    chosen = image_runtime.load_onnx_image_encoder(model, threads, cache_root=workdir / "onnx")  # what indexing uses
    row["onnx_export_and_choice_s"] = round(time.perf_counter() - started, 1)
    row["runtime_chosen"] = chosen.precision if chosen is not None else "torch"
    onnx = image_runtime.exported_graph_encoder(model, threads, cache_root=workdir / "onnx")
    if onnx is not None:
        manifest = json.loads((onnx.folder / image_runtime.MANIFEST_FILE).read_text())
        row["runtime_verdict"] = {key: manifest[key] for key in ("int8", "seconds") if key in manifest}
    int8 = None
    if onnx is not None:
        session, int8_path = quantized_session(onnx.folder / image_runtime.GRAPH_FILE, threads)
        int8 = image_runtime.OnnxImageEncoder(session, model.model_id, onnx.folder)
        row["onnx_mb"] = round((onnx.folder / image_runtime.GRAPH_FILE).stat().st_size / 2**20)
        row["int8_mb"] = round(int8_path.stat().st_size / 2**20)
    torch_runs, onnx_runs, int8_runs = [], [], []
    with torch.inference_mode():
        model.encode_images(pixels[:4])  # warm-up
        for _ in range(rounds):
            torch_runs.append(images_per_s(model.encode_images, pixels))
            if onnx is not None:
                onnx_runs.append(images_per_s(onnx.encode_images, pixels))
                int8_runs.append(images_per_s(int8.encode_images, pixels))
    row["torch_img_s"] = round(statistics.median(torch_runs), 1)
    if onnx is not None:
        row["onnx_img_s"] = round(statistics.median(onnx_runs), 1)
        row["int8_img_s"] = round(statistics.median(int8_runs), 1)
        all_pixels = torch.stack([encoder.preprocess(read_image(p, encoder.image_size).frames[0]) for p in PHOTOS])
        fp32 = onnx.encode_images(all_pixels).numpy()
        q8 = int8.encode_images(all_pixels).numpy()
        fp32 /= np.linalg.norm(fp32, axis=1, keepdims=True)
        q8 /= np.linalg.norm(q8, axis=1, keepdims=True)
        row["int8_min_cosine"] = round(float((fp32 * q8).sum(1).min()), 4)
        row["int8_top10_overlap"] = round(image_runtime.top_k_overlap(fp32, q8), 3)
    latencies = []
    for _ in range(30):
        started = time.perf_counter()
        encoder.encode_texts(["a dog on the beach"])
        latencies.append(1000 * (time.perf_counter() - started))
    row["text_ms_p50"] = round(float(np.percentile(latencies, 50)), 1)
    row["text_ms_p99"] = round(float(np.percentile(latencies, 99)), 1)
    row["cold_search_s"], row["import_torch_s"] = (round(x, 2) for x in cold_search(source, workdir, rounds))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["cots-lite", *SPECS])
    parser.add_argument("--keep", type=Path, help="build the model folders here (reused when present)")
    args = parser.parse_args()
    workroot = Path(tempfile.mkdtemp(prefix="clip-speed-"))
    models_dir = args.keep or workroot / "models"
    rows = []
    try:
        for name in args.models:
            source = name
            if name in SPECS:
                folder = models_dir / name
                if not (folder / "config.json").is_file():
                    SPECS[name](folder)
                source = str(folder)
            row = measure(name, source, workroot / name, args.threads, args.rounds)
            if name in SPECS:
                row["disk_mb"] = round(folder_size(Path(source)) / 2**20)
            print(json.dumps(row), flush=True)
            rows.append(row)
            with RESULTS.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
    print("\n| model | PyTorch img/s | ONNX img/s | int8 img/s | int8 vs fp32 on 24 test photos: min cos / top-10 "
          "overlap | runtime picks (sample library: overlap, speed-up) | text p50 / p99 ms "
          "| cold search s (import torch) | export + choice s | disk MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        verdict = (r.get("runtime_verdict") or {}).get("int8")
        picks = f"{r['runtime_chosen']} ({verdict['overlap']}, {verdict['speedup']}x)" if verdict else r["runtime_chosen"]
        print(f"| {r['model']} | {r['torch_img_s']} | {r.get('onnx_img_s', '-')} | {r.get('int8_img_s', '-')} | "
              f"{r.get('int8_min_cosine', '-')} / {r.get('int8_top10_overlap', '-')} | {picks} | {r['text_ms_p50']} / "
              f"{r['text_ms_p99']} | {r['cold_search_s']} ({r['import_torch_s']}) | "
              f"{r.get('onnx_export_and_choice_s', '-')} | {r.get('disk_mb', '-')} |")


if __name__ == "__main__":
    main()
