"""Cold `cots search` at 1k, 100k and 1M items, beside `python -c "import torch"` in the same run (issue 33).

    nice .venv/bin/python bench/cold_search.py build --n 1000000 --work /tmp/cs [--ef-construction 16]
    .venv/bin/python bench/cold_search.py measure --work /tmp/cs --runs 5 [--json OUT]

``build``: a library of N items through the library's own code (bench/engine_at_scale.py's rows: realistic
cots-lite embeddings, bench/realistic_embeddings.py; the shipped vocabulary embedded by the indexer's step) and
its saved media index. ``--ef-construction`` builds that index with a cheaper graph (same M, so the same file
size and the same load cost; only its recall differs, which a cold search answered by the exact scan of
``app/library/mapped_index.py`` does not use): 1M items at the default 400 take ~17 min on 2 idle cores.
``measure``: every round runs `import torch`, then for each library a cold `cots search` (a new process,
a query it has not seen), in turn, so that a load change on the shared machine hits all rows alike. Each search
runs under a probe that times its phases: imports, opening the library, loading the text path, the index and
the ranking (``PROBE``). The model must already have its text graph (`cots index` writes it).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ["a dog running on the beach", "birthday cake with candles", "snow on the mountains", "a red car",
           "people at a wedding", "a cat asleep on a sofa", "sunset over the sea", "a bowl of soup",
           "children playing football", "an old church", "a bridge at night", "flowers in a garden"]

# `cots search` with its phases timed: each wrapped call adds its wall time to a phase (stderr, last line)
PROBE = r"""
import json, sys, time
started = time.perf_counter()
phases = {}
def timed(owner, name, phase):
    real = getattr(owner, name)
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            phases[phase] = phases.get(phase, 0.0) + time.perf_counter() - t
    setattr(owner, name, wrapper)
import os
from app.cli import main
from app.library import library, query_encoder, search
phases["imports"] = time.perf_counter() - started
if os.environ.get("BENCH_INDEX") == "loaded":  # the saved index loaded into hnswlib, as before issue 33
    library.Library._mapped_index = lambda *args: None
timed(library.Library, "__init__", "open library")
timed(query_encoder, "load_query_encoder", "text path")
timed(library.Library, "vectors", "indexes")
timed(search.SearchService, "encode_text", "encode query")
timed(search.SearchService, "text", "search (all)")
code = main(sys.argv[1:])
phases["total"] = time.perf_counter() - started
phases["heavy"] = sorted(m for m in ("torch", "timm", "transformers") if m in sys.modules)
print(json.dumps(phases), file=sys.stderr)
sys.exit(code)
"""


def build(args) -> None:
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from app.library import Library
    from app.library.encoder import Encoder
    from app.library.indexer import Indexer, IndexOptions
    from app.library.vector_index import HnswParams, VectorIndex
    from bench.engine_at_scale import generated_vectors, insert_rows

    work = Path(args.work) / f"lib{args.n}"
    work.mkdir(parents=True, exist_ok=True)
    for stale in work.glob("library.*"):
        stale.unlink()
    encoder = Encoder.load("cots-lite", device="cpu")
    started = time.perf_counter()
    vectors = generated_vectors(args.n)
    photos = work / "photos"
    photos.mkdir(exist_ok=True)
    library = Library(work / "library.db")
    library.set_model(encoder.model_id, "cots-lite")
    library.add_folder(photos)
    insert_rows(library, photos, vectors, encoder.model_id)
    Indexer(library, encoder, IndexOptions())._embed_vocabulary(started)
    print(f"rows and vocabulary in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    started = time.perf_counter()
    if args.ef_construction:
        params = HnswParams(ef_construction=max(args.ef_construction, HnswParams().M))  # hnswlib's own floor
        index = VectorIndex(vectors.shape[1], params, capacity=args.n)
        index.add(np.arange(args.n), vectors, num_threads=-1)
        library._vectors[("media", encoder.model_id)] = index  # saved at close as the library saves its own
        library._synced[("media", encoder.model_id)] = library.db.generation
        library._dirty.add(("media", encoder.model_id))
        library.close(finish_ef_choice=False)
    else:
        library.vectors("media", encoder.model_id)  # rebuilt from SQLite, as after a lost index file
        library.close()
    encoder.prepare_text_graph()
    print(f"index in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def _run(argv: list[str], env: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} failed: {done.stderr[-500:]}")
    phases = json.loads(done.stderr.strip().splitlines()[-1]) if "{" in done.stderr else {}
    return seconds, phases


def measure(args) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    libraries = sorted(Path(args.work).glob("lib*/library.db"), key=lambda p: int(p.parent.name[3:]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as on a person's machine: compiled modules are cached
    rows: dict[str, list] = {"import torch": []}
    phases: dict[str, list[dict]] = {}
    variants = {"": {}, " (text: PyTorch)": {"COTS_TEXT_RUNTIME": "torch"},
                " (index loaded)": {"BENCH_INDEX": "loaded"},
                " (text: PyTorch, index loaded)": {"COTS_TEXT_RUNTIME": "torch", "BENCH_INDEX": "loaded"}}
    chosen = {name: extra for name, extra in variants.items() if not name or args.variants}
    for round_ in range(args.runs):
        rows["import torch"].append(_run([sys.executable, "-c", "import torch"], env)[0])
        for db in libraries:
            for variant, extra in chosen.items():
                query = QUERIES[(round_ * 7 + libraries.index(db) * 3 + len(variant)) % len(QUERIES)]
                seconds, timed = _run([sys.executable, "-c", PROBE, "search", query, "--db", str(db), "-k", "20"],
                                      {**env, **extra})
                rows.setdefault(db.parent.name + variant, []).append(seconds)
                phases.setdefault(db.parent.name + variant, []).append(timed)
    report(rows, phases, args)


def families(args) -> None:
    """Cold `cots search` per model family on a small library of real photos (tests/data/real_photos), beside
    `import torch`: cots-lite, and CLIP ViT-B/32 and SigLIP-B/16 at their published sizes with random weights
    (bench/clip_family_speed.py's builders: no CLIP-class weights exist offline; the speed is real)."""
    import shutil

    sys.path.insert(0, str(ROOT / "bench"))
    from clip_family_speed import PHOTOS, SPECS

    work = Path(args.work)
    env = dict(os.environ, HF_HUB_OFFLINE="1", COTS_DATA_DIR=str(work / "data"), COTS_IMAGE_RUNTIME="torch")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    libraries = {}
    for name in args.models:
        source = name if name == "cots-lite" else str(work / name)
        if name != "cots-lite" and not (work / name / "config.json").is_file():
            SPECS[name](work / name)
        db, photos = work / f"{name}.db", work / "photos"
        photos.mkdir(parents=True, exist_ok=True)
        for path in PHOTOS:
            shutil.copy(path, photos / path.name)
        if not db.is_file():  # indexing writes the text graph
            subprocess.run([sys.executable, "-m", "app.cli", "index", str(photos), "--db", str(db), "--model", source,
                            "--quiet", "--no-ocr", "--no-faces"], env=env, check=True, capture_output=True)
        libraries[name] = db
    rows: dict[str, list] = {"import torch": []}
    phases: dict[str, list[dict]] = {}
    for round_ in range(args.runs):
        rows["import torch"].append(_run([sys.executable, "-c", "import torch"], env)[0])
        for name, db in libraries.items():
            for variant, extra in (("", {}), (" (text: PyTorch)", {"COTS_TEXT_RUNTIME": "torch"})):
                query = QUERIES[(round_ * 5 + len(variant)) % len(QUERIES)]
                seconds, timed = _run([sys.executable, "-c", PROBE, "search", query, "--db", str(db)], {**env, **extra})
                rows.setdefault(name + variant, []).append(seconds)
                phases.setdefault(name + variant, []).append(timed)
    report(rows, phases, args)


def report(rows: dict[str, list], phases: dict[str, list[dict]], args) -> None:
    torch_median = statistics.median(rows["import torch"])
    result = {"runs": args.runs, "load_average": [round(v, 1) for v in os.getloadavg()], "rows": {}}
    for name, seconds in rows.items():
        entry = {"median_s": round(statistics.median(seconds), 3), "min_s": round(min(seconds), 3),
                 "max_s": round(max(seconds), 3), "x_import_torch": round(statistics.median(seconds) / torch_median, 2)}
        if name in phases:
            keys = [k for k in phases[name][0] if k != "heavy"]
            entry["phases_median_s"] = {k: round(statistics.median(p.get(k, 0.0) for p in phases[name]), 3)
                                        for k in keys}
            entry["heavy_imports"] = sorted({m for p in phases[name] for m in p.get("heavy", [])})
        result["rows"][name] = entry
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "a") as handle:
            handle.write(json.dumps(result) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", required=True)
    b = actions.add_parser("build")
    b.add_argument("--n", type=int, required=True)
    b.add_argument("--work", required=True)
    b.add_argument("--ef-construction", type=int)
    m = actions.add_parser("measure")
    m.add_argument("--work", required=True)
    m.add_argument("--runs", type=int, default=5)
    m.add_argument("--json")
    m.add_argument("--variants", action="store_true",
                   help="also each library with the text on PyTorch, with its index loaded, and with both (before)")
    f = actions.add_parser("families")
    f.add_argument("--work", required=True)
    f.add_argument("--runs", type=int, default=5)
    f.add_argument("--json")
    f.add_argument("--models", nargs="+", default=["cots-lite", "vit-b32", "siglip-b16"])
    args = parser.parse_args()
    {"build": build, "measure": measure, "families": families}[args.action](args)


if __name__ == "__main__":
    main()
