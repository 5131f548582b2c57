"""Retrieval metrics for image-text (and video-text) collections, Karpathy protocol.

Every item (image or video) may have several captions; ``caption_item[j]`` names the item of caption j.

* image->text: the rank of an item is the best (smallest) rank among its own captions.
* text->image: the rank of a caption is the rank of its one item.
* Given the caption texts, identical captions of different items are correct answers for each other.

Ties are broken pessimistically: a wrong candidate whose score equals the best correct one is ranked
ahead of it, so a constant similarity matrix scores as badly as possible rather than perfectly. Other
correct captions of the same item never push a correct caption down. NaN scores count as -inf.
Ranks are 0-based internally; ``median_rank`` and ``mean_rank`` are reported 1-based, as in the
video retrieval literature (MdR, MnR), for text->item.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RECALL_KS = (1, 5, 10)


def _as_scores(sim) -> np.ndarray:
    scores = np.asarray(sim.detach().cpu().float() if hasattr(sim, "detach") else sim, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"similarity matrix must be 2-D [items, captions], got shape {scores.shape}")
    return np.where(np.isnan(scores), -np.inf, scores)


def relevance_matrix(caption_item: Sequence[int], n_items: int,
                     caption_texts: Sequence[str] | None = None) -> np.ndarray:
    """[n_items, n_captions] bool: caption j is a correct answer for item i. Without texts, only its own
    item; with texts, also every item with an identical caption (case and spacing aside): when two photos
    are both captioned "a cow", either one answers the query "a cow"."""
    owner = np.asarray(caption_item)
    relevant = np.zeros((n_items, len(owner)), dtype=bool)
    relevant[owner, np.arange(len(owner))] = True
    if caption_texts is not None:
        keys = [" ".join(text.lower().split()) for text in caption_texts]
        columns: dict[str, list[int]] = {}
        for j, key in enumerate(keys):
            columns.setdefault(key, []).append(j)
        for same in columns.values():
            if len(same) > 1:
                items = np.unique(owner[same])
                relevant[np.ix_(items, same)] = True
    return relevant


def item_to_text_ranks(sim, caption_item: Sequence[int], relevant: np.ndarray | None = None) -> np.ndarray:
    """0-based rank of each item's best correct caption among all captions; sim is [n_items, n_captions]."""
    scores = _as_scores(sim)
    if relevant is None:
        relevant = relevance_matrix(caption_item, scores.shape[0])
    n_items = scores.shape[0]
    ranks = np.empty(n_items, dtype=np.int64)
    for i in range(n_items):
        mine = relevant[i]
        if not mine.any():
            raise ValueError(f"item {i} has no caption")
        best = scores[i, mine].max()
        ranks[i] = int(np.count_nonzero(scores[i, ~mine] >= best))
    return ranks


def text_to_item_ranks(sim, caption_item: Sequence[int], relevant: np.ndarray | None = None) -> np.ndarray:
    """0-based rank of each caption's best correct item among all items; sim is [n_items, n_captions]."""
    scores = _as_scores(sim)
    if relevant is None:
        relevant = relevance_matrix(caption_item, scores.shape[0])
    best = np.where(relevant, scores, -np.inf).max(axis=0)
    return np.count_nonzero((scores >= best[None, :]) & ~relevant, axis=0).astype(np.int64)


def recall_at(ranks: np.ndarray, k: int) -> float:
    """Percentage of queries whose correct answer is within the top k."""
    # count * 100 / n rather than 100 * mean: 55.0, not 55.00000000000001, in printed reports
    return 100.0 * int(np.count_nonzero(ranks < k)) / len(ranks) if len(ranks) else 0.0


def retrieval_metrics(sim, caption_item: Sequence[int], caption_texts: Sequence[str] | None = None
                      ) -> dict[str, float]:
    """R@1/5/10 both ways, rsum, and 1-based median/mean rank of text->item retrieval.

    ``sim`` is [n_items, n_captions] (a torch tensor or array); ``caption_item`` maps captions to items;
    with ``caption_texts``, identical captions of different items count as correct for each other.
    """
    caption_item = np.asarray(caption_item)
    scores = _as_scores(sim)
    if scores.shape[1] != len(caption_item):
        raise ValueError(f"{scores.shape[1]} caption columns but {len(caption_item)} caption owners")
    relevant = relevance_matrix(caption_item, scores.shape[0], caption_texts)
    i2t = item_to_text_ranks(scores, caption_item, relevant)
    t2i = text_to_item_ranks(scores, caption_item, relevant)
    out: dict[str, float] = {}
    for k in RECALL_KS:
        out[f"i2t_r{k}"] = recall_at(i2t, k)
    for k in RECALL_KS:
        out[f"t2i_r{k}"] = recall_at(t2i, k)
    out["rsum"] = sum(out[f"{d}_r{k}"] for d in ("i2t", "t2i") for k in RECALL_KS)
    out["median_rank"] = float(np.median(t2i + 1))
    out["mean_rank"] = float(np.mean(t2i + 1))
    return out
