"""Vector index over L2-normalised embeddings: hnswlib (inner product), labels = SQLite row ids.

Exact search (one matrix product) is used while the index is small, where it is both faster and
exact. The index on disk is a cache: ``VectorIndex.load`` returns None unless the files agree with
each other, and the library then repairs it from SQLite (see ``Library.vectors``).
"""
from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import hnswlib
import numpy as np

from app.library.hnsw_file import HnswFileDamaged, check_hnsw_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HnswParams:
    """Shipped parameters: recall@10 >= 0.95 on 20k random 384-d vectors (tests/app/test_vector_index.py).

    M and ef_construction shape the graph when an index is built and are read back from its file on load, so
    an index keeps the parameters it was built with. ef_construction 400 (was 200): at 1M realistic cots-lite
    embeddings it is what lets recall@10 0.98 and p50 <= 2 ms hold together (bench/RESULTS.md, issue 12).
    """

    M: int = 32
    ef_construction: int = 400
    ef_search: int = 512  # random 384-d data is the worst case: 0.97 recall@10 at 512, 0.86 at 256
    exact_below: int = 5000  # libraries smaller than this are searched exactly


def ids_checksum(ids: np.ndarray) -> str:
    """Order-independent fingerprint of a set of row ids."""
    ids = np.asarray(ids, dtype=np.uint64)
    mixed = (ids * np.uint64(0x9E3779B97F4A7C15)) ^ (ids >> np.uint64(7))
    return f"{len(ids)}:{int(np.bitwise_xor.reduce(mixed)) if len(ids) else 0:x}:{int(mixed.sum()):x}"


def _write_json(path: Path, data: dict) -> None:
    """Replace ``path`` with ``data`` atomically and durably (a crash leaves the old file or the new)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class VectorIndex:
    """A thread-safe id -> vector index with top-k inner-product search."""

    def __init__(self, dim: int, params: HnswParams | None = None, capacity: int = 1024):
        self.dim = dim
        self.params = params or HnswParams()
        self._lock = threading.RLock()
        self._hnsw = hnswlib.Index(space="ip", dim=dim)
        self._hnsw.init_index(max_elements=max(capacity, 16), ef_construction=self.params.ef_construction,
                              M=self.params.M)
        self._hnsw.set_num_threads(1)
        self._live: set[int] = set()
        self._deleted = 0
        self._exact: tuple[np.ndarray, np.ndarray] | None = None  # (ids, vectors) cache for exact search
        self.ef_choice: EfChoice | None = None  # ef_search chosen from this library's data (choose_ef_search)

    @property
    def ef_search(self) -> int:
        """The ef used by HNSW searches: the one chosen for this library's data, else the shipped default."""
        return self.ef_choice.ef_search if self.ef_choice else self.params.ef_search

    # -- contents ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, row_id: int) -> bool:
        return row_id in self._live

    @property
    def ids(self) -> np.ndarray:
        with self._lock:
            return np.fromiter(self._live, dtype=np.int64, count=len(self._live))

    def add(self, ids, vectors: np.ndarray, num_threads: int = 1) -> None:
        """Insert or replace vectors (rows must already be L2-normalised)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        with self._lock:
            labels = set(self._hnsw.get_ids_list()) if self._deleted else None
            for row_id in ids.tolist():
                if labels is not None and row_id in labels and row_id not in self._live:
                    self._hnsw.unmark_deleted(row_id)  # re-added after a delete: the slot is reused
                    self._deleted -= 1
            needed = self._hnsw.get_current_count() + len(ids)
            if needed > self._hnsw.get_max_elements():
                self._hnsw.resize_index(max(needed, 2 * self._hnsw.get_max_elements()))
            self._hnsw.add_items(vectors, ids, num_threads=num_threads)
            self._live.update(ids.tolist())
            self._exact = None

    def remove(self, ids) -> None:
        with self._lock:
            for row_id in np.asarray(ids, dtype=np.int64).reshape(-1).tolist():
                if row_id in self._live:
                    self._hnsw.mark_deleted(row_id)
                    self._live.discard(row_id)
                    self._deleted += 1
            self._exact = None
            if self._deleted > 1000 and self._deleted > len(self._live):
                self._compact()

    def _compact(self) -> None:
        """Rebuild without the deleted slots (they still cost memory and search time)."""
        ids = self.ids
        vectors = self._hnsw.get_items(ids, return_type="numpy") if len(ids) else np.zeros((0, self.dim))
        fresh = VectorIndex(self.dim, self.params, capacity=max(len(ids), 16))
        fresh.add(ids, vectors, num_threads=-1)
        self._hnsw, self._live, self._deleted = fresh._hnsw, fresh._live, 0

    def get(self, ids) -> np.ndarray:
        """Stored vectors of the given ids, [n, dim]."""
        ids = [i for i in np.asarray(ids, dtype=np.int64).reshape(-1).tolist()]
        if not ids:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            return np.asarray(self._hnsw.get_items(ids, return_type="numpy"), dtype=np.float32)

    # -- search ------------------------------------------------------------------------------
    def _exact_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        if self._exact is None:
            ids = self.ids
            self._exact = (ids, self.get(ids))
        return self._exact

    def search(self, query: np.ndarray, k: int, exact: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (ids, inner products) for one query vector, best first."""
        with self._lock:
            n = len(self._live)
            k = min(k, n)
            if k <= 0:  # before the shape check: an index with nothing stored may not know its dimension
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dim)
            if exact is None:
                exact = n < self.params.exact_below
            if exact:
                ids, vectors = self._exact_matrix()
                scores = vectors @ query[0]
                top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
                top = top[np.argsort(-scores[top], kind="stable")]
                return ids[top], scores[top]
            self._hnsw.set_ef(max(self.ef_search, k))
            labels, distances = self._hnsw.knn_query(query, k=k)
        return labels[0].astype(np.int64), (1.0 - distances[0]).astype(np.float32)

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """Up to n stored vectors chosen at random (for score calibration)."""
        with self._lock:
            ids = np.sort(self.ids)  # in id order, not the set's: the same sample as MappedIndex.sample
            if len(ids) > n:
                ids = np.random.default_rng(seed).choice(ids, n, replace=False)
            return self.get(ids)

    # -- persistence -------------------------------------------------------------------------
    def save(self, prefix: Path, meta: dict) -> None:
        """Write ``prefix.hnsw``, ``prefix.ids.npy`` and ``prefix.json`` (the json last, atomically).

        A crash part-way leaves a json that disagrees with the other files, so ``load`` refuses them.
        """
        prefix = Path(prefix)
        with self._lock:
            ids = self.ids
            self._hnsw.save_index(str(prefix) + ".hnsw.tmp")
            np.save(str(prefix) + ".ids.tmp.npy", ids)
            meta = dict(meta, dim=self.dim, count=len(ids), checksum=ids_checksum(ids),
                        hnsw_bytes=os.path.getsize(str(prefix) + ".hnsw.tmp"), params=asdict(self.params),
                        ef_choice=asdict(self.ef_choice) if self.ef_choice else None)
        os.replace(str(prefix) + ".hnsw.tmp", str(prefix) + ".hnsw")
        os.replace(str(prefix) + ".ids.tmp.npy", str(prefix) + ".ids.npy")
        _write_json(Path(str(prefix) + ".json"), meta)

    def save_ef_choice(self, prefix: Path) -> None:
        """Write ``ef_choice`` into the saved index's json (the index itself unchanged since its save)."""
        prefix = Path(prefix)
        with self._lock:
            meta = json.loads(Path(str(prefix) + ".json").read_text())
            if meta.get("count") != len(self._live):
                raise OSError(f"{prefix}.json does not describe this index any more")
            meta["ef_choice"] = asdict(self.ef_choice) if self.ef_choice else None
            _write_json(Path(str(prefix) + ".json"), meta)

    @classmethod
    def load(cls, prefix: Path, dim: int, params: HnswParams | None = None) -> tuple[VectorIndex, dict] | None:
        """The saved index and its metadata, or None when missing or inconsistent; HnswFileDamaged when the
        files agree with each other but the index file's structure is damaged (it would crash hnswlib)."""
        prefix = Path(prefix)
        try:
            meta = json.loads(Path(str(prefix) + ".json").read_text())
            if not isinstance(meta, dict):
                return None
            if meta.get("dim") != dim or os.path.getsize(str(prefix) + ".hnsw") != meta.get("hnsw_bytes"):
                return None
            ids = np.load(str(prefix) + ".ids.npy")
            if ids_checksum(ids) != meta.get("checksum"):
                return None
            # hnswlib trusts its file (a flipped bit is a segfault): check it whole first
            elements = check_hnsw_file(Path(str(prefix) + ".hnsw"), dim, len(ids))
            index = cls(dim, params, capacity=16)
            # a fresh, uninitialised hnswlib object: loading into an initialised one prints a warning
            index._hnsw = hnswlib.Index(space="ip", dim=dim)
            index._hnsw.load_index(str(prefix) + ".hnsw", max_elements=max(elements, 16))
            index._hnsw.set_num_threads(1)
            built = {"M": index._hnsw.M, "ef_construction": index._hnsw.ef_construction}
            saved = meta.get("params")
            if isinstance(saved, dict) and any(key in saved and saved[key] != value for key, value in built.items()):
                return None  # the json describes another graph than the file holds
            # an old index keeps its own graph parameters (growth and compaction build with them too)
            index.params = replace(index.params, **built)
            index._live = set(ids.tolist())
            labels = index._hnsw.get_ids_list()
            index._deleted = len(labels) - len(index._live)
            if index._deleted < 0 or not index._live.issubset(labels):
                return None
            index.ef_choice = EfChoice.from_meta(meta.get("ef_choice"))
            return index, meta
        except HnswFileDamaged as error:
            raise HnswFileDamaged(f"{prefix}.hnsw: {error}") from None
        except (OSError, ValueError, RuntimeError, TypeError, AttributeError, KeyError, MemoryError) as error:
            log.info("vector index %s not usable (%s); it will be rebuilt", prefix, error)
            return None

    @staticmethod
    def remove_files(prefix: Path) -> None:
        for suffix in (".hnsw", ".ids.npy", ".json"):
            try:
                os.remove(str(prefix) + suffix)
            except FileNotFoundError:
                pass


# -- ef_search chosen per library --------------------------------------------------------------------
# The recall an ef gives depends on the data: on cots-lite-like embeddings at 100k, ef 128 reached only
# 0.86 recall@10 and 512 0.97, while clustered libraries need far less. So each library measures its own.
TARGET_RECALL = 0.98
# 1152 and 1280: on a 1M-item graph built with ef_construction 200 the first ef reaching 0.98 lies between 1024
# and 1536 (p50 2.1 ms at 1280 against 2.4 ms at 1536)
EF_CANDIDATES = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1152, 1280, 1536)
RECHOOSE_GROWTH = 2.0  # choose again once the index has grown by this factor
RECALL_SLICE = 32  # queries measured per hold of the index's lock


class ChoiceStopped(Exception):
    """An ef choice was stopped before it finished (the library is closing); nothing is stored."""


def _check(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise ChoiceStopped


@dataclass(frozen=True)
class EfChoice:
    """The smallest ef_search whose recall@k against exact search reached the target on the library's
    own sample of queries (or the largest candidate, if none did)."""

    ef_search: int
    recall: float  # recall@k measured at that ef
    size: int  # index size when chosen
    queries: int
    k: int = 10

    @classmethod
    def from_meta(cls, data) -> EfChoice | None:
        try:
            choice = cls(**data) if isinstance(data, dict) else None
        except TypeError:  # written by another version
            return None
        numbers = (choice.ef_search, choice.size, choice.queries, choice.k) if choice else ()
        if choice is None or not all(isinstance(n, int) and not isinstance(n, bool) and 0 < n < 1 << 31
                                     for n in numbers):
            return None  # a damaged or hand-edited json: choose again
        return choice


def needs_ef_choice(index: VectorIndex) -> bool:
    """True when HNSW answers this index's searches and its ef was never chosen, or chosen at a size
    ``RECHOOSE_GROWTH`` times smaller."""
    n = len(index)
    if n < index.params.exact_below:
        return False
    return index.ef_choice is None or n >= RECHOOSE_GROWTH * index.ef_choice.size


def exact_top_k(index: VectorIndex, queries: np.ndarray, k: int, chunk: int = 25_000,
                stop: threading.Event | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, scores) [Q, k] of the exact top-k inner products, reading the stored vectors in chunks (each read
    holds the index lock briefly: a background ef choice must not stall searches). ``stop``: checked between
    chunks, raises ChoiceStopped."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    ids = index.ids
    best_scores = np.full((len(queries), 0), -np.inf, np.float32)
    best_ids = np.zeros((len(queries), 0), np.int64)
    for start in range(0, len(ids), chunk):
        _check(stop)
        part = ids[start:start + chunk]
        scores = queries @ index.get(part).T
        scores = np.concatenate([best_scores, scores], axis=1)
        labels = np.concatenate([best_ids, np.broadcast_to(part, (len(queries), len(part)))], axis=1)
        keep = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        best_scores = np.take_along_axis(scores, keep, 1)
        best_ids = np.take_along_axis(labels, keep, 1)
    order = np.argsort(-best_scores, axis=1, kind="stable")
    return np.take_along_axis(best_ids, order, 1), np.take_along_axis(best_scores, order, 1)


def _drop_self(ids: np.ndarray, scores: np.ndarray, own: np.ndarray, k: int) -> np.ndarray:
    """Per row, the first k scores after removing the query's own id (an item query finds itself)."""
    out = np.full((len(scores), k), -np.inf, np.float32)
    for row in range(len(scores)):
        kept = scores[row][ids[row] != own[row]][:k]
        out[row, :len(kept)] = kept
    return out


def recall_at_k(index: VectorIndex, queries: np.ndarray, own_ids: np.ndarray, ef: int, truth: np.ndarray,
                stop: threading.Event | None = None) -> float:
    """Recall@k (k = truth's width) of HNSW at ``ef`` against the exact scores ``truth`` [Q, k]. A result
    counts when its score reaches the k-th exact score, so ties between equal vectors are not misses.
    ``own_ids``: each query's own row id (-1 for a text), left out of the results."""
    k = truth.shape[1]
    queries = np.ascontiguousarray(queries, np.float32)
    parts = []
    # the index's lock for one slice at a time: searches and additions interleave with a long measurement
    for start in range(0, len(queries), RECALL_SLICE):
        _check(stop)
        with index._lock:
            index._hnsw.set_ef(max(ef, k + 1))
            labels, distances = index._hnsw.knn_query(queries[start:start + RECALL_SLICE], k=k + 1, num_threads=-1)
        parts.append(_drop_self(labels.astype(np.int64), (1.0 - distances).astype(np.float32),
                                own_ids[start:start + RECALL_SLICE], k))
    found = np.concatenate(parts)
    return float((found >= truth[:, k - 1:k] - 1e-5).sum() / truth.size)


def item_midpoints(vectors: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Normalised midpoints of random pairs of items: queries that lie in the data but not in the graph
    (an item's own vector finds its neighbours through its own links, which flatters the recall)."""
    rng = np.random.default_rng(seed)
    pairs = rng.integers(0, len(vectors), (2, count))
    mid = vectors[pairs[0]] + vectors[pairs[1]]
    return mid / np.maximum(np.linalg.norm(mid, axis=1, keepdims=True), 1e-12)


def choose_ef_search(index: VectorIndex, query_sets: list[tuple[np.ndarray, np.ndarray | None]], k: int = 10,
                     target: float = TARGET_RECALL, candidates: tuple[int, ...] = EF_CANDIDATES,
                     stop: threading.Event | None = None) -> EfChoice:
    """The smallest ``candidates`` ef whose recall@k reaches ``target`` on every set of queries. A set is
    (queries, own_ids): own_ids are the row ids of queries that are the library's own items (left out of
    their results), or None (texts, midpoints). ``stop`` set: ChoiceStopped at the next slice."""
    k = min(k, len(index) - 1)
    prepared = []
    for queries, own_ids in query_sets:
        if len(queries) == 0:
            continue
        own = np.full(len(queries), -1, np.int64) if own_ids is None else np.asarray(own_ids, np.int64)
        truth_ids, truth_scores = exact_top_k(index, queries, k + 1, stop=stop)
        prepared.append((queries, own, _drop_self(truth_ids, truth_scores, own, k)))
    measured: dict[int, float] = {}

    def recall_of(position: int) -> float:
        ef = candidates[position]
        if ef not in measured:
            measured[ef] = min(recall_at_k(index, queries, own, ef, truth, stop) for queries, own, truth in prepared)
        return measured[ef]

    # recall grows with ef: bisect for the first candidate reaching the target (4 measurements, not 14)
    low, high = 0, len(candidates) - 1
    while low < high:
        middle = (low + high) // 2
        if recall_of(middle) >= target:
            high = middle
        else:
            low = middle + 1
    return EfChoice(ef_search=int(candidates[low]), recall=round(recall_of(low), 4), size=len(index),
                    queries=sum(len(q) for q, _, _ in prepared), k=k)
