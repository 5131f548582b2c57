"""The full search engine at scale: ``SearchService.text`` (query encoding on the lean text path, ANN,
SQLite, FTS5, calibration) warm, on a real library file with N items.

    nice python bench/engine_at_scale.py --n 20000                       # vectors generated, index built here
    nice python bench/engine_at_scale.py --n 1000000 --vectors DIR/items.npy --index DIR/index --ef 1536

The library is built cheaply but through the library's own code: N media rows (``storage.media.upsert_media``,
FTS triggers included) and their embeddings in 50k-row transactions, then the vector index: with ``--index``
the HNSW files of bench/realistic_search_bench.py ``--keep`` (built from the same vectors, labels 0..N-1 = row
ids) are linked in as the library's saved index with its ef; without it the library rebuilds its index from
SQLite (``Library.vectors``, all cores) and chooses its ef as after indexing. The shipped vocabulary is
embedded by the indexer's own step (the calibration needs it). The library is then closed and opened again
(a fresh ``Library``, as a new process would), and the queries (every real caption of the repository and
vocabulary phrases, each asked once: the engine caches repeated queries) are timed one at a time.
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # numpy on one thread, as one query is answered
    os.environ.setdefault(_var, "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as app/cli.py

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.library import Library  # noqa: E402
from app.library.db import vector_to_blob  # noqa: E402
from app.library.encoder import Encoder  # noqa: E402
from app.library.indexer import Indexer, IndexOptions  # noqa: E402
from app.library.storage.media import upsert_media  # noqa: E402
from app.library.vector_index import ids_checksum  # noqa: E402
from bench.realistic_embeddings import real_captions, vocabulary  # noqa: E402
from bench.search_bench import rss_mb  # noqa: E402

CHUNK = 50_000


def percentiles(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1e3
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "mean_ms": round(float(ms.mean()), 2)}


def generated_vectors(n: int) -> np.ndarray:
    from bench.realistic_embeddings import EmbeddingSource

    return EmbeddingSource.build(augmentations=10).items(n, seed=0)


def insert_rows(library: Library, folder: Path, vectors: np.ndarray, model_id: str) -> int:
    """N media rows (ids 0..N-1) with their embeddings; returns the generation that wrote them."""
    folder_id = library.db.conn.execute("SELECT id FROM folders").fetchone()[0]
    now = time.time()
    generation = 0
    for start in range(0, len(vectors), CHUNK):
        block = np.ascontiguousarray(vectors[start:start + CHUNK], np.float32)
        with library.db.transaction() as conn:
            generation = library.db.bump_generation(conn)
            for offset in range(len(block)):
                i = start + offset
                album = f"album {i // 1000:04d}"
                upsert_media(conn, {
                    "id": i, "path": str(folder / album / f"IMG_{i:07d}.jpg"), "folder_id": folder_id,
                    "name": f"IMG_{i:07d}", "folder_names": album, "kind": "image", "size": 3_000_000 + i,
                    "mtime_ns": int((now - i * 600) * 1e9), "width": 4000, "height": 3000,
                    "captured_at": now - i * 600, "status": "ok", "model_id": model_id, "indexed_at": now})
            conn.executemany("INSERT INTO embeddings(media_id, model_id, vector, gen) VALUES (?, ?, ?, ?)",
                             ((start + j, model_id, vector_to_blob(block[j]), generation) for j in range(len(block))))
    return generation


def install_index(prefix: Path, source: Path, n: int, model_id: str, generation: int, ef: int) -> None:
    """Link bench/realistic_search_bench.py's saved index in as the library's own (same vectors, ids 0..N-1)."""
    ids = np.load(str(source) + ".ids.npy")
    if len(ids) != n or not np.array_equal(np.sort(ids), np.arange(n)):
        raise SystemExit(f"{source}.ids.npy does not hold ids 0..{n - 1}")
    meta = json.loads(Path(str(source) + ".json").read_text())
    target = Path(str(prefix) + ".hnsw")
    try:
        os.link(str(source) + ".hnsw", target)
    except OSError:
        shutil.copyfile(str(source) + ".hnsw", target)
    np.save(str(prefix) + ".ids.npy", ids)
    meta.update(model_id=model_id, kind="media", generation=generation, checksum=ids_checksum(ids), count=n,
                ef_choice={"ef_search": ef, "recall": None, "size": n, "queries": 0, "k": 10})
    Path(str(prefix) + ".json").write_text(json.dumps(meta))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--vectors", help="items.npy of bench/realistic_search_bench.py --keep (else generated)")
    parser.add_argument("--index", help="its saved index prefix (DIR/index); else the library builds its own")
    parser.add_argument("--ef", type=int, help="with --index: the ef chosen for it (realistic_search_bench's result)")
    parser.add_argument("--model", default="cots-lite")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--workdir", help="where the library is written (default: a temporary folder)")
    parser.add_argument("--reuse", action="store_true", help="measure the library already in --workdir")
    args = parser.parse_args()
    if args.index and not (args.vectors and args.ef):
        parser.error("--index needs --vectors and --ef")
    if args.reuse and not (args.workdir and (Path(args.workdir) / "library.db").is_file()):
        parser.error("--reuse needs a --workdir holding library.db")

    out: dict = {"n": args.n, "k": args.k, "cpu_count": os.cpu_count()}
    encoder = Encoder.load(args.model, text_first=True)  # as `cots search` and the GUI load it
    work = Path(args.workdir or tempfile.mkdtemp(prefix="cots-engine-"))
    db = work / "library.db"
    if args.reuse:
        out["index"] = {"reused": str(db)}
    else:
        build(args, encoder, work, out)
    measure(args, encoder, db, out)
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, indent=1))


def build(args, encoder: Encoder, work: Path, out: dict) -> None:
    """The library in ``work``: rows, vocabulary, and its media index (linked in or rebuilt)."""
    model_id = encoder.model_id
    started = time.perf_counter()
    vectors = np.load(args.vectors, mmap_mode="r")[:args.n] if args.vectors else generated_vectors(args.n)
    out["vectors_s"] = round(time.perf_counter() - started, 1)
    work.mkdir(parents=True, exist_ok=True)
    photos = work / "photos"
    photos.mkdir(exist_ok=True)
    db = work / "library.db"
    for stale in work.glob("library.*"):
        stale.unlink()

    library = Library(db)
    library.set_model(model_id, args.model)
    library.add_folder(photos)
    started = time.perf_counter()
    generation = insert_rows(library, photos, vectors, model_id)
    out["insert_rows_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    Indexer(library, encoder, IndexOptions())._embed_vocabulary(started)  # the calibration's vocabulary side
    out["vocabulary_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    if args.index:
        generation, prefix = library.db.generation, library.index_prefix("media", model_id)
        library.close()  # the media index was never loaded here: its saved files come from the benchmark
        install_index(prefix, Path(args.index), args.n, model_id, generation, args.ef)
        out["index"] = {"source": args.index, "ef_search": args.ef}
    else:
        before = rss_mb()
        library.vectors("media", model_id)  # rebuilt from SQLite, as after a lost index file
        out["index"] = {"build_s": round(time.perf_counter() - started, 1),
                        "rss_growth_mb": round(rss_mb() - before, 1)}
        started = time.perf_counter()
        library.close()  # saves it and waits for the ef choice
        out["index"]["save_and_choose_ef_s"] = round(time.perf_counter() - started, 1)
    out["db_mb"] = round(db.stat().st_size / 2**20, 1)


def measure(args, encoder: Encoder, db: Path, out: dict) -> None:
    """Open the library afresh, then time the engine's text search, each query once."""
    model_id = encoder.model_id
    # a fresh Library, as a new process opens it: load (+ spot check against SQLite), then warm queries
    rss_before_open = rss_mb()
    started = time.perf_counter()
    library = Library(db)
    index = library.vectors("media", model_id)
    out["open_index_s"] = round(time.perf_counter() - started, 1)
    out["index"]["ef_search_used"] = index.ef_search
    out["index"]["rebuilt"] = library.rebuilt.get(("media", model_id))
    from app.library.search import Filters, SearchService

    service = SearchService(library, encoder)
    texts = real_captions() + vocabulary()[::7]
    warm, timed = texts[-10:], texts[:args.queries]
    for text in warm:
        service.text(text, args.k)
    totals, encode, ann, lexical, hits = [], [], [], [], []
    for text in timed:
        t = time.perf_counter()
        vector = encoder.encode_texts([text])[0]
        encode.append(time.perf_counter() - t)
        t = time.perf_counter()
        index.search(vector, max(50, 4 * args.k))
        ann.append(time.perf_counter() - t)
        t = time.perf_counter()
        service._lexical(text, args.k, Filters())  # FTS5 on names, folder names, captions
        lexical.append(time.perf_counter() - t)
    for text in timed:  # the engine, each query new to it (its query cache is per text)
        t = time.perf_counter()
        result = service.text(text, args.k)
        totals.append(time.perf_counter() - t)
        hits.append(len(result))
    out["queries"] = len(timed)
    out["engine_text"] = percentiles(totals)
    out["parts"] = {"encode_text": percentiles(encode), "ann": percentiles(ann), "lexical": percentiles(lexical)}
    out["hits_mean"] = round(float(np.mean(hits)), 1)
    out["rss_open_mb"] = round(rss_mb() - rss_before_open, 1)
    out["rss_mb"] = round(rss_mb(), 1)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["load_average"] = [round(v, 1) for v in os.getloadavg()]
    library.close()


if __name__ == "__main__":
    main()
