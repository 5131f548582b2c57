"""Relevance calibration: how unusual a similarity is, for this library and this model.

A hit's ``relevance`` is the mean of two z-scores that do not depend on the library's size:
- query side: its similarity standardised against the query's similarities to a random sample of
  the library (is this item unusually close to the query, for this library?);
- item side: its similarity standardised against the item's similarities to the shipped vocabulary
  (is this query one of the better descriptions of this item, among ~1,300 generic phrases?).
A query that matches nothing well scores low on both, so few or no hits pass the cut-off.
"""
from __future__ import annotations

import numpy as np

from app.library.library import Library
from app.library.storage.vectors import vocabulary_count, vocabulary_vectors

SAMPLE_SIZE = 2048


class RelevanceCalibrator:
    """Z-scores of similarities against a library sample and the vocabulary; both cached, redrawn when
    the library has grown or shrunk by a tenth, or the vocabulary changed."""

    def __init__(self, library: Library, model_id: str):
        self.library = library
        self.model_id = model_id
        self._sample: tuple[int, np.ndarray] | None = None  # (index size when drawn, vectors)
        self._vocab: tuple[int, np.ndarray] | None = None

    def library_sample(self) -> np.ndarray:
        index = self.library.vectors("media", self.model_id)
        n = len(index)
        cached = self._sample
        if cached is None or abs(cached[0] - n) > max(16, 0.1 * cached[0]):
            cached = self._sample = (n, index.sample(SAMPLE_SIZE))
        return cached[1]

    def vocabulary_matrix(self) -> np.ndarray:
        """Vocabulary embeddings of this model (for the item-side z-score)."""
        conn = self.library.db.conn
        count = vocabulary_count(conn, self.model_id)
        if self._vocab is None or self._vocab[0] != count:
            self._vocab = (count, vocabulary_vectors(conn, self.model_id))
        return self._vocab[1]

    def relevance(self, query: np.ndarray, item_vectors: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Calibrated relevance (both z-scores) of items with the given similarities to a text query."""
        sample = self.library_sample()
        parts = []
        if len(sample) >= 8:
            dist = sample @ query
            parts.append((scores - dist.mean()) / max(float(dist.std()), 1e-6))
        vocab = self.vocabulary_matrix()
        if len(vocab) >= 8 and len(item_vectors):
            per_item = item_vectors @ vocab.T  # [n, V]
            parts.append((scores - per_item.mean(axis=1)) / np.maximum(per_item.std(axis=1), 1e-6))
        if not parts:
            return np.full(len(scores), np.inf, np.float32)
        return np.mean(parts, axis=0)

    def image_relevance(self, query: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Query-side z-score only (an image query has no vocabulary side); +inf for a tiny library."""
        sample = self.library_sample()
        if len(sample) >= 8 and len(scores):
            dist = sample @ query
            return (scores - dist.mean()) / max(float(dist.std()), 1e-6)
        return np.full(len(scores), np.inf)


def best_segments(spans: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
                  vector: np.ndarray) -> dict[int, tuple[float, float, float]]:
    """Per video, its best-matching segment: media id -> (similarity, start, end). ``spans`` as
    ``storage.vectors.segment_spans`` returns them; videos without segments are left out."""
    best = {}
    for media_id, (starts, ends, vectors) in spans.items():
        if len(starts):
            sims = vectors @ vector
            i = int(np.argmax(sims))
            best[media_id] = (float(sims[i]), float(starts[i]), float(ends[i]))
    return best
