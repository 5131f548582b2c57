"""Search benchmark: hnswlib (shipped parameters) vs exact (numpy, torch) vs faiss IndexHNSWFlat.

    python bench/search_bench.py --n 100000 [--n 1000000] [--queries 500] [--data random|clustered]

Reports build time, memory, p50/p99 single-query latency and recall@10 against exact search.
Vectors are L2-normalised, 384-d, inner product, one query at a time on one thread (the app's case).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.library.vector_index import HnswParams, VectorIndex  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def make_data(n: int, dim: int, kind: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "clustered":  # embedding-like: points around 1,000 topic centres
        centres = rng.standard_normal((1000, dim)).astype(np.float32)
        x = centres[rng.integers(0, 1000, n)] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    else:
        x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def latency(fn, queries) -> tuple[list, float, float]:
    times, results = [], []
    for q in queries:
        t = time.perf_counter()
        results.append(fn(q))
        times.append(time.perf_counter() - t)
    return results, float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def recall(found, truth) -> float:
    return float(np.mean([len(set(map(int, f)) & set(map(int, t))) / len(t) for f, t in zip(found, truth)]))


def run(n: int, dim: int, n_queries: int, k: int, kind: str, threads: int, use_faiss: bool) -> dict:
    data = make_data(n, dim, kind)
    queries = make_data(n_queries, dim, kind, seed=1)
    ids = np.arange(n, dtype=np.int64)
    out: dict = {"n": n, "dim": dim, "data": kind, "queries": n_queries, "k": k, "threads_build": threads}

    # exact: numpy matrix product (the app's small-library path) and torch
    truth = []
    _, p50, p99 = latency(lambda q: truth.append(np.argpartition(-(data @ q), k)[:k]), queries)
    out["exact_numpy"] = {"p50_ms": p50, "p99_ms": p99, "memory_mb": data.nbytes / 2**20}
    try:
        import torch

        torch.set_num_threads(1)
        tdata = torch.from_numpy(data)
        _, p50, p99 = latency(lambda q: torch.topk(tdata @ torch.from_numpy(q), k).indices, queries)
        out["exact_torch_1thread"] = {"p50_ms": p50, "p99_ms": p99}
    except ImportError:
        pass

    # hnswlib with the shipped parameters
    params = HnswParams()
    before = rss_mb()
    t = time.perf_counter()
    index = VectorIndex(dim, params, capacity=n)
    for start in range(0, n, 50_000):
        index.add(ids[start:start + 50_000], data[start:start + 50_000], num_threads=threads)
    build = time.perf_counter() - t
    found, p50, p99 = latency(lambda q: index.search(q, k, exact=False)[0], queries)
    out["hnswlib"] = {"params": vars(params) if hasattr(params, "__dict__") else str(params),
                      "build_s": build, "memory_mb": rss_mb() - before, "p50_ms": p50, "p99_ms": p99,
                      "recall_at_10": recall(found, truth)}
    index = None  # free it before faiss builds

    if use_faiss:
        try:
            import faiss

            faiss.omp_set_num_threads(threads)
            before = rss_mb()
            t = time.perf_counter()
            fidx = faiss.IndexHNSWFlat(dim, params.M, faiss.METRIC_INNER_PRODUCT)
            fidx.hnsw.efConstruction = params.ef_construction
            fidx.add(data)
            build = time.perf_counter() - t
            fidx.hnsw.efSearch = params.ef_search
            faiss.omp_set_num_threads(1)
            found, p50, p99 = latency(lambda q: fidx.search(q[None], k)[1][0], queries)
            out["faiss_hnsw_flat"] = {"build_s": build, "memory_mb": rss_mb() - before, "p50_ms": p50,
                                      "p99_ms": p99, "recall_at_10": recall(found, truth)}
        except ImportError:
            out["faiss_hnsw_flat"] = "faiss-cpu not installed"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[100_000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--data", choices=["random", "clustered"], default="random")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for index builds")
    parser.add_argument("--no-faiss", action="store_true")
    parser.add_argument("--out", help="append the JSON results to this file")
    args = parser.parse_args()
    for n in args.n:
        result = run(n, args.dim, args.queries, args.k, args.data, args.threads, not args.no_faiss)
        print(json.dumps(result, indent=1), flush=True)
        if args.out:
            with open(args.out, "a") as handle:
                handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
