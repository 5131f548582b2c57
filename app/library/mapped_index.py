"""A saved vector index read in place, for a process that answers one query and exits (issue 33).

Loading a saved HNSW index costs its whole file before the first query: hnswlib reads it into memory and
builds its label table, after ``check_hnsw_file`` has walked every link (hnswlib would crash on a damaged one),
and the library compares its ids with SQLite's. On 2 cores that is ~0.4 s at 100k items and seconds at 1M, far
more than the query. A one-shot `cots search` needs none of the graph: ``MappedIndex`` memory-maps the file's
level-0 records and ranks by one matrix-vector product over the vectors stored in them (exact, so its top-k is
at least as good as the graph's), reading only pages, never the links. The library uses it only when the saved
index is provably the database's (``Library.vectors`` with ``read_in_place``); anything that would change it
drops it, and the next use loads the index as before.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from app.library.hnsw_file import HEADER, HnswFileDamaged, checked_header
from app.library.vector_index import EfChoice, HnswParams, ids_checksum


class MappedIndex:
    """The live vectors of a saved hnswlib file, memory-mapped, searched exactly; read-only."""

    def __init__(self, path: Path, dim: int, params: HnswParams, elements: int, per_element: int,
                 ef_choice: EfChoice | None):
        self.dim, self.params, self.ef_choice = dim, params, ef_choice
        data = np.memmap(path, dtype=np.uint8, mode="r")
        records = data[HEADER.size:HEADER.size + elements * per_element].reshape(elements, per_element)
        links0 = per_element - 4 * dim - 8
        # strided views into the records: the vector and the label of each (see hnsw_file's layout)
        self._vectors = records[:, links0:links0 + 4 * dim].view("<f4")
        labels = records[:, links0 + 4 * dim:].view("<u8")[:, 0].astype(np.int64)
        live = (records[:, 2] & 1) == 0  # the third byte of the link header is hnswlib's deleted mark
        self._rows = np.flatnonzero(live)
        self._labels = labels[self._rows]
        self._order: np.ndarray | None = None  # positions by label, and the labels so sorted, for ``get``
        self._sorted_labels: np.ndarray | None = None

    @property
    def ef_search(self) -> int:
        return self.ef_choice.ef_search if self.ef_choice else self.params.ef_search

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, row_id: int) -> bool:
        return len(self._find([row_id])[0]) == 1

    @property
    def ids(self) -> np.ndarray:
        return self._labels.copy()

    def _find(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """(positions in ``_rows``, the ids found) of ``ids``, in the order given; unknown ids are left out."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if not len(self._labels):
            return np.zeros(0, np.int64), ids[:0]
        if self._order is None:
            self._order = np.argsort(self._labels, kind="stable")
            self._sorted_labels = self._labels[self._order]
        sorted_labels = self._sorted_labels
        at = np.minimum(np.searchsorted(sorted_labels, ids), len(sorted_labels) - 1)
        found = sorted_labels[at] == ids
        return self._order[at[found]], ids[found]

    def get(self, ids) -> np.ndarray:
        """Stored vectors of the given ids, [n, dim] (an id not in the index is left out; hnswlib would raise)."""
        positions, _ = self._find(ids)
        return np.array(self._vectors[self._rows[positions]], dtype=np.float32)

    def search(self, query: np.ndarray, k: int, exact: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (ids, inner products) for one query vector, best first: always exact."""
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(self.dim)
        n = len(self._rows)
        k = min(k, n)
        if k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        scores = self._vectors @ query  # every record, deleted ones too: one pass over the file's pages
        scores = scores[self._rows] if n < len(scores) else scores
        top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
        top = top[np.argsort(-scores[top], kind="stable")]
        return self._labels[top], scores[top].astype(np.float32)

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """Up to n stored vectors chosen at random, as ``VectorIndex.sample`` chooses them (same ids, same
        seed: the relevance calibration is the same either way)."""
        ids = np.sort(self._labels)
        if len(ids) > n:
            ids = np.random.default_rng(seed).choice(ids, n, replace=False)
        return self.get(ids)

    def add(self, ids, vectors, num_threads: int = 1) -> None:
        raise TypeError("a mapped index is read-only: load the index to change it")

    def remove(self, ids) -> None:
        raise TypeError("a mapped index is read-only: load the index to change it")

    @classmethod
    def load(cls, prefix: Path, dim: int, params: HnswParams | None = None) -> tuple[MappedIndex, dict] | None:
        """The saved index at ``prefix`` and its metadata when the files agree with each other (sizes, the
        header, the live labels' checksum); None otherwise (the caller loads it the usual way, which repairs)."""
        prefix = Path(prefix)
        path = Path(str(prefix) + ".hnsw")
        try:
            meta = json.loads(Path(str(prefix) + ".json").read_text())
            if not isinstance(meta, dict) or meta.get("dim") != dim:
                return None
            size = os.path.getsize(path)
            if size != meta.get("hnsw_bytes"):
                return None
            header = checked_header(path, size, dim, int(meta.get("count", 0)))
            if HEADER.size + header["elements"] * header["per_element"] > size:
                return None
            saved = meta.get("params") if isinstance(meta.get("params"), dict) else {}
            built = HnswParams(**{k: v for k, v in saved.items() if k in HnswParams.__dataclass_fields__})
            index = cls(path, dim, built if saved else (params or HnswParams()), header["elements"],
                        header["per_element"], EfChoice.from_meta(meta.get("ef_choice")))
            if len(index) != meta.get("count") or ids_checksum(index._labels) != meta.get("checksum"):
                return None
            return index, meta
        except (OSError, ValueError, TypeError, HnswFileDamaged):
            return None
