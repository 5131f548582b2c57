"""CPU indexing throughput: PyTorch eager vs ONNX Runtime for the image path, same run, same files.

    nice python bench/cpu_throughput.py [--images 96] [--repeats 5] [--model cots-lite]

1. Export: the ONNX graph built into a fresh cache folder (what a first indexing run pays once per model).
2. Model alone: the same preprocessed real photos (tests/data/real_photos + the sample library) through
   ``Encoder.encode_images`` at the indexer's batch size, PyTorch and ONNX Runtime interleaved, ``--repeats``
   rounds; embeddings compared row by row (cosine).
3. End to end: ``--images`` JPEG files on disk (1600x1200, bench/index_bench.make_photos) -> ``Indexer.run``
   into a fresh library (scan, hash, decode threads, encode, SQLite rows, HNSW), both runtimes interleaved;
   the stored embeddings of the two libraries compared per file.
The machine may be shared: rounds alternate A/B and the medians are reported with every round's value.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as app/cli.py
import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from index_bench import make_photos  # noqa: E402

from app.library import Library  # noqa: E402
from app.library.encoder import Encoder  # noqa: E402
from app.library.indexer import Indexer, IndexOptions  # noqa: E402
from cots_core import image_runtime, load_model  # noqa: E402
from cots_core.media import read_image  # noqa: E402


def real_photos() -> list[Path]:
    from cots_resources import resource_path

    return sorted((ROOT / "tests" / "data" / "real_photos").glob("*.jpg")) + \
        sorted(resource_path("sample_library").rglob("*.jpg"))


def index_folder(encoder: Encoder, folder: Path, db: Path, batch: int) -> tuple[float, dict[str, np.ndarray]]:
    library = Library(db)
    library.add_folder(folder)
    started = time.perf_counter()
    report = Indexer(library, encoder, IndexOptions(batch_size=batch, vocabulary=False)).run()
    seconds = time.perf_counter() - started
    rows = library.db.conn.execute(
        "SELECT m.path, e.vector FROM media m JOIN embeddings e ON e.media_id = m.id").fetchall()
    library.close()
    assert report.failed == 0, report
    return seconds, {str(path): np.frombuffer(vector, np.float32) for path, vector in rows}


def summary(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 2), "runs": [round(v, 2) for v in values]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="cots-lite")
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", default="1600x1200")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))

    model = load_model(args.model, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ[image_runtime.RUNTIME_ENV] = "auto"
        started = time.perf_counter()
        onnx = image_runtime.load_onnx_image_encoder(model, torch.get_num_threads(), cache_root=tmp / "onnx")
        export_s = time.perf_counter() - started
        assert onnx is not None, "ONNX Runtime path unavailable (see the log)"
        started = time.perf_counter()
        image_runtime.load_onnx_image_encoder(model, torch.get_num_threads(), cache_root=tmp / "onnx")
        cached_load_s = time.perf_counter() - started
        # the indexer's prepare_images() must not swap the runtime of the PyTorch side
        os.environ[image_runtime.RUNTIME_ENV] = "torch"
        torch_encoder = Encoder(model, "cpu", source=args.model)
        onnx_encoder = Encoder(model, "cpu", source=args.model)
        onnx_encoder._image_runtime = onnx  # what prepare_images() installs, here from the fresh cache
        batch = torch_encoder.default_batch_size()

        # 2. model alone, on real photos
        photos = real_photos()
        pixels = torch.stack([model.preprocess(read_image(p, model.config.image_size).frames[0]) for p in photos])
        pixels = pixels[:batch * max(1, len(pixels) // batch)]
        model_rate: dict[str, list[float]] = {"torch": [], "onnxruntime": []}
        encoders = {"torch": torch_encoder, "onnxruntime": onnx_encoder}
        outputs = {name: enc.encode_images(pixels[:batch]) for name, enc in encoders.items()}  # warm-up
        for _ in range(args.repeats):
            for name, enc in encoders.items():
                started = time.perf_counter()
                for start in range(0, len(pixels), batch):
                    enc.encode_images(pixels[start:start + batch])
                model_rate[name].append(len(pixels) / (time.perf_counter() - started))
        model_cos = (outputs["torch"] * outputs["onnxruntime"]).sum(-1)

        # 3. end to end, JPEG files -> SQLite rows
        folder = tmp / "photos"
        make_photos(folder, args.images, size)
        pipeline_rate: dict[str, list[float]] = {"torch": [], "onnxruntime": []}
        stored: dict[str, dict[str, np.ndarray]] = {}
        for round_ in range(args.repeats):
            for name, enc in encoders.items():
                seconds, stored[name] = index_folder(enc, folder, tmp / f"{name}-{round_}.db", batch)
                pipeline_rate[name].append(args.images / seconds)
        pipeline_cos = np.array([float(stored["torch"][p] @ stored["onnxruntime"][p]) for p in stored["torch"]])

    result = {
        "model": model.model_id, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "batch": batch,
        "export_s": round(export_s, 1), "cached_load_s": round(cached_load_s, 2),
        "model_alone": {"photos": len(pixels), **{k: summary(v) for k, v in model_rate.items()},
                        "speedup": round(statistics.median(model_rate["onnxruntime"])
                                         / statistics.median(model_rate["torch"]), 2),
                        "cosine_min": float(model_cos.min())},
        "end_to_end": {"images": args.images, "size": args.size, **{k: summary(v) for k, v in pipeline_rate.items()},
                       "speedup": round(statistics.median(pipeline_rate["onnxruntime"])
                                        / statistics.median(pipeline_rate["torch"]), 2),
                       "cosine_min": float(pipeline_cos.min())},
        "load_average": os.getloadavg(),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
