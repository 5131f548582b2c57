"""Search at scale on realistic cots-lite embeddings (bench/realistic_embeddings.py): HNSW with the
shipped parameters vs exact search, and the ef each library would choose for itself.

    nice python bench/realistic_search_bench.py --n 100000 [--write]
    nice python bench/realistic_search_bench.py --n 1000000 --keep DIR   # ~17 min build on 2 idle cores, ~8 GB RAM
    python bench/realistic_search_bench.py --reuse DIR --ef 1024 1280    # the kept index measured again
    (--M / --ef-construction: another graph than the shipped HnswParams)

One query thread (BLAS pinned to 1 thread for the exact search); the index is built on all cores, as
the app's repair/rebuild does. The ef is chosen as `Library.save_vectors` does (`choose_ef_search` on
200 of the items, 200 midpoints of item pairs and 200 vocabulary phrases), then measured on queries it
never saw: every real caption of the repository, the other vocabulary phrases (200) and 100 fresh
augmented real photos. `--write` appends the table to bench/RESULTS.md.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one query thread
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.library.vector_index import (  # noqa: E402
    HnswParams,
    VectorIndex,
    choose_ef_search,
    exact_top_k,
    item_midpoints,
)
from bench.realistic_embeddings import EmbeddingSource, describe  # noqa: E402
from bench.search_bench import latency as timed  # noqa: E402
from bench.search_bench import rss_mb  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def recall(found_scores: list[np.ndarray], truth_scores: np.ndarray, k: int) -> float:
    """Share of results scoring at least the k-th exact score (ties are not misses)."""
    return float(np.mean([(f[:k] >= t[k - 1] - 1e-5).sum() / k for f, t in zip(found_scores, truth_scores)]))


def build(items: np.ndarray, ids: np.ndarray, params: HnswParams, threads: int, keep: Path | None) -> dict:
    """Build the index as the app's rebuild does (all cores, 50k rows per call), save it, and say what it cost."""
    out: dict = {}
    before = rss_mb()
    started = time.perf_counter()
    index = VectorIndex(items.shape[1], params, capacity=len(items))
    for start in range(0, len(items), 50_000):
        index.add(ids[start:start + 50_000], items[start:start + 50_000], num_threads=threads)
    out["build_s"] = round(time.perf_counter() - started, 1)
    out["rss_growth_mb"] = round(rss_mb() - before, 1)  # malloc may reuse freed memory: see index_file_mb
    out["load_average_after_build"] = round(os.getloadavg()[0], 1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        index.save(folder / "index", {})
        out["index_file_mb"] = round((folder / "index.hnsw").stat().st_size / 2**20, 1)
        if keep:  # for --reuse, and for a later run of the full engine on the same vectors
            np.save(folder / "items.npy", items)
    out["index"] = index
    return out


def run(n: int, k: int, threads: int, augmentations: int, keep: Path | None = None,
        params: HnswParams | None = None, extra_efs: tuple[int, ...] = (), reuse: Path | None = None) -> dict:
    params = params or HnswParams()
    started = time.perf_counter()
    source = EmbeddingSource.build(augmentations=augmentations)
    vocab = source.vocabulary()
    order = np.random.default_rng(0).permutation(len(vocab))
    vocab_choose = [vocab[i] for i in order[:200]]
    vocab_held = [vocab[i] for i in order[200:400]]
    query_sets = {"captions": source.texts(source.captions()), "vocabulary (held out)": source.texts(vocab_held),
                  "fresh real photos": source.photo_queries(100, seed=1)}
    out: dict = {"n": n, "k": k, "threads_build": threads, "M": params.M, "ef_construction": params.ef_construction,
                 "generate_s": round(time.perf_counter() - started, 1), "real_photos": describe(source.real_items())}
    if reuse:  # the index and items of an earlier --keep run: only the measurements run again
        items = np.load(reuse / "items.npy")
        loaded = VectorIndex.load(reuse / "index", items.shape[1], params)
        if loaded is None:
            raise SystemExit(f"no usable index in {reuse} (run with --keep {reuse} first)")
        index, params = loaded[0], loaded[0].params
        out.update(n=len(items), reused=str(reuse), M=params.M, ef_construction=params.ef_construction,
                   items=describe(items))
        ids = np.arange(len(items), dtype=np.int64)
    else:
        ids = np.arange(n, dtype=np.int64)
        items = source.items(n, seed=0)
        out["items"] = describe(items)
        built = build(items, ids, params, threads, keep)
        index = built.pop("index")
        out.update(built)
    del source.features
    started = time.perf_counter()
    rng = np.random.default_rng(1)
    own = rng.choice(ids, 200, replace=False)
    choice = choose_ef_search(index, [(items[own], own), (item_midpoints(items, 200, seed=2), None),
                                      (source.texts(vocab_choose), None)], k=k)
    out["choice"] = {"ef_search": choice.ef_search, "recall_on_choice_queries": choice.recall,
                     "seconds": round(time.perf_counter() - started, 1)}

    queries = np.concatenate(list(query_sets.values()))
    _, truth = exact_top_k(index, queries, k)
    _, exact_p50, exact_p99 = timed(lambda q: np.argpartition(-(items @ q), k)[:k], queries)
    out["exact"] = {"p50_ms": round(exact_p50, 2), "p99_ms": round(exact_p99, 2), "memory_mb": items.nbytes / 2**20}
    rows = []
    for ef in sorted({64, 128, choice.ef_search, HnswParams().ef_search, *extra_efs}):
        index.ef_choice = None
        index.params = replace(params, ef_search=ef)
        found, p50, p99 = timed(lambda q: index.search(q, k, exact=False)[1], queries)
        per_set, offset = {}, 0
        for name, qs in query_sets.items():
            per_set[name] = round(recall(found[offset:offset + len(qs)], truth[offset:offset + len(qs)], k), 4)
            offset += len(qs)
        rows.append({"ef": ef, "chosen": ef == choice.ef_search, "recall_at_10": round(recall(found, truth, k), 4),
                     "per_set": per_set, "p50_ms": round(p50, 3), "p99_ms": round(p99, 3),
                     "x_faster_than_exact_p50": round(exact_p50 / p50, 1)})
    out["hnsw"] = rows
    out["load_average_after_queries"] = round(os.getloadavg()[0], 1)
    out["queries"] = {name: len(q) for name, q in query_sets.items()}
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def table(result: dict, command: str) -> str:
    r = result
    lines = [f"### {r['n']:,} items, realistic cots-lite embeddings (bench/realistic_search_bench.py)", "",
             f"Command: `{command}`. {os.cpu_count()} cores shared with other work (load average "
             f"{os.getloadavg()[0]:.1f} at the end); index built on {r['threads_build']} threads, queries on one. "
             f"Items: mean pairwise cosine {r['items']['mean_cos']} (the augmented real photos: "
             f"{r['real_photos']['mean_cos']}). Held-out queries: {r['queries']}. HnswParams M={r.get('M', 32)}, "
             f"ef_construction={r.get('ef_construction', 200)}.", "",
             (f"Build {r['build_s']} s, index size {r['index_file_mb']} MB (the .hnsw file; RSS grew by "
              f"{r['rss_growth_mb']} MB)" if "build_s" in r else f"Index kept by an earlier run ({r['reused']})")
             + ", peak RSS of the process "
             f"{r['peak_rss_mb']} MB (includes the model that generated the data). Exact search (numpy, 1 thread): "
             f"p50 {r['exact']['p50_ms']} ms, p99 {r['exact']['p99_ms']} ms. ef chosen by the library's own "
             f"measurement: **{r['choice']['ef_search']}** (recall {r['choice']['recall_on_choice_queries']} on its "
             f"choice queries, {r['choice']['seconds']} s).", "",
             "| ef_search | recall@10 (held out) | per query set | p50 ms | p99 ms | x faster than exact (p50) |",
             "|---|---|---|---|---|---|"]
    for row in r["hnsw"]:
        name = f"{row['ef']}" + (" (chosen)" if row["chosen"] else "") + (" (old fixed)" if row["ef"] == 512 else "")
        sets = ", ".join(f"{k} {v}" for k, v in row["per_set"].items())
        lines.append(f"| {name} | {row['recall_at_10']} | {sets} | {row['p50_ms']} | {row['p99_ms']} | "
                     f"{row['x_faster_than_exact_p50']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for the index build")
    parser.add_argument("--augmentations", type=int, default=10, help="augmented crops per real photo")
    parser.add_argument("--write", action="store_true", help="append the table to bench/RESULTS.md")
    parser.add_argument("--out", help="append the JSON result to this file")
    parser.add_argument("--keep", type=Path, help="keep the built index and the item vectors in this folder")
    parser.add_argument("--M", type=int, default=HnswParams().M, help="graph degree (default: the shipped one)")
    parser.add_argument("--ef-construction", type=int, default=HnswParams().ef_construction,
                        help="build effort (default: the shipped one)")
    parser.add_argument("--reuse", type=Path, help="measure again the index and items kept by an earlier --keep")
    parser.add_argument("--ef", type=int, nargs="*", default=(), help="more ef_search values to measure")
    args = parser.parse_args()
    if args.reuse and not (args.reuse / "items.npy").is_file():
        parser.error(f"--reuse {args.reuse}: no items.npy there (an earlier run with --keep {args.reuse} writes it)")
    params = HnswParams(M=args.M, ef_construction=args.ef_construction)
    result = run(args.n, args.k, args.threads, args.augmentations, args.keep, params, tuple(args.ef), args.reuse)
    print(json.dumps(result, indent=1), flush=True)
    command = (f"nice python bench/realistic_search_bench.py --n {args.n} --M {args.M} "
               f"--ef-construction {args.ef_construction}" + (" --write" if args.write else ""))
    text = table(result, command)
    print(text)
    if args.out:
        with open(args.out, "a") as handle:
            handle.write(json.dumps(result) + "\n")
    if args.write:
        RESULTS.write_text(RESULTS.read_text().rstrip("\n") + "\n\n" + text)


if __name__ == "__main__":
    main()
