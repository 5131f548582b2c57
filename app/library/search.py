"""Search over a library: text -> media (hybrid with FTS5), image -> similar media, image -> text.

Relevance is calibrated rather than a fixed similarity threshold (``relevance.RelevanceCalibrator``);
a video is scored by its best-matching segment (``relevance.best_segments``).
"""
from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

from app.library.encoder import Encoder
from app.library.errors import LibraryError, MediaError
from app.library.library import Library, MediaRecord
from app.library.pathtext import display_text, path_prefix_sql
from app.library.relevance import SAMPLE_SIZE, RelevanceCalibrator, best_segments, people_intent
from app.library.storage import (
    browse_media,
    filtered_ids,
    lexical,
    media_facts,
    people_candidates,
    readable_kinds,
    segment_owners,
    segment_spans,
    texts_by_id,
)
from cots_core.media import read_media

log = logging.getLogger(__name__)

DEFAULT_MIN_RELEVANCE = 2.0
RRF_K = 60
STOPWORDS = set(
    "a an the of on in at to for with and or by from is are was were be this that these those my our your "
    "photo photos picture pictures image images video videos some".split()
)


@dataclass
class Hit:
    """One search result, best first. ``score``: cosine similarity to the query (for a video, its best
    segment's when higher); ``timestamp``: start second of the best-matching segment (videos)."""

    id: int
    path: str
    kind: str
    score: float
    relevance: float | None
    timestamp: float | None
    segment_end: float | None
    matched: tuple[str, ...]  # "meaning", "name" (file/folder name, caption, place, camera, text in the photo)
    # and/or "faces" (a people query that its faces fit)
    record: MediaRecord
    weak: bool = False  # below the service's relevance cut-off and not found by name (kept when asked for)
    facts: dict = field(default_factory=dict)  # the signals' facts: city, country, camera, taken_at, faces, ...

    def to_dict(self) -> dict:
        out = {"path": self.path, "kind": self.kind, "score": round(float(self.score), 5),
               "relevance": None if self.relevance is None else round(float(self.relevance), 3),
               "matched": list(self.matched)}
        if self.kind == "video":
            out["timestamp"] = None if self.timestamp is None else round(float(self.timestamp), 2)
        out.update({"width": self.record.width, "height": self.record.height, "date": self.record.date})
        if self.facts:
            out["facts"] = dict(self.facts)
        return out


@dataclass
class TextHit:
    text: str
    score: float  # cosine similarity
    relevance: float  # z-score among all candidate texts for this image
    source: str  # caption | vocabulary
    media_id: int | None = None  # for captions: the item it belongs to

    def to_dict(self) -> dict:
        return {"text": self.text, "score": round(float(self.score), 5),
                "relevance": round(float(self.relevance), 3), "source": self.source}


# A fact of a row's signals, as a SQL condition on ``m``.
_FACT = "EXISTS (SELECT 1 FROM signal_facts f WHERE f.media_id = m.id AND {})"
PLACE_KEYS = "('city', 'locality', 'region', 'country', 'country_code')"


@dataclass
class Filters:
    kind: str | None = None  # image | video
    folder: str | None = None  # path prefix
    date_from: float | None = None  # epoch seconds (EXIF capture time, else modification time)
    date_to: float | None = None
    place: str | None = None  # a city, quarter, region, country or country code; "Paris, France": each part must match
    camera: str | None = None  # part of the camera's make and model ("canon", "iPhone 12")
    with_people: bool | None = None  # True: faces found; False: the face detector found none

    def active(self) -> bool:
        return any(v is not None for v in (self.kind, self.folder, self.date_from, self.date_to, self.place,
                                           self.camera, self.with_people))

    def sql(self) -> tuple[str, list]:
        clauses, params = [], []
        if self.kind:
            clauses.append("m.kind = ?")
            params.append(self.kind)
        if self.folder:
            clause, folder_params = path_prefix_sql("m.path", Path(self.folder).expanduser().resolve())
            clauses.append(clause)
            params += folder_params
        date = "COALESCE(m.captured_at, m.mtime_ns / 1e9)"
        if self.date_from is not None:
            clauses.append(f"{date} >= ?")
            params.append(self.date_from)
        if self.date_to is not None:
            clauses.append(f"{date} <= ?")
            params.append(self.date_to)
        for part in (p.strip() for p in (self.place or "").split(",")):
            if part:
                clauses.append(_FACT.format(f"f.key IN {PLACE_KEYS} AND f.value = ? COLLATE NOCASE"))
                params.append(part)
        if self.camera:
            clauses.append(_FACT.format("f.key = 'camera' AND f.value LIKE ?"))
            params.append(f"%{self.camera.strip()}%")
        if self.with_people is not None:
            clauses.append(_FACT.format("f.key = 'faces' AND f.value " + (">= 1" if self.with_people else "= 0")))
        return (" AND ".join(clauses) or "1"), params


def parse_date(text: str | None, end: bool = False) -> float | None:
    """'2019', '2019-06' or '2019-06-30' -> epoch seconds (start, or end of the period with end=True)."""
    if not text:
        return None
    for fmt, step in (("%Y-%m-%d", "day"), ("%Y-%m", "month"), ("%Y", "year")):
        try:
            start = datetime.strptime(text, fmt)
        except ValueError:
            continue
        if not end:
            return start.timestamp()
        if step == "day":
            nxt = start.timestamp() + 86400
        elif step == "month":
            nxt = (start.replace(year=start.year + 1, month=1) if start.month == 12
                   else start.replace(month=start.month + 1)).timestamp()
        else:
            nxt = start.replace(year=start.year + 1).timestamp()
        return nxt - 1e-3
    raise LibraryError(f"cannot read the date {text!r}: use YYYY, YYYY-MM or YYYY-MM-DD")


def query_words(text: str) -> list[str]:
    """The words of a query that full-text search looks for (lower case, stop words dropped)."""
    return [w for w in re.findall(r"\w+", text.lower()) if w not in STOPWORDS]


def fts_query(text: str) -> str | None:
    """Words of the query (stop words dropped) as an FTS5 AND of prefix terms."""
    words = query_words(text)
    if not words:
        return None
    return " AND ".join(f'"{w}"*' for w in words)


def browse(library: Library, filters: Filters | None = None, offset: int = 0, limit: int = 200) -> list[Hit]:
    """A page of the library itself, newest first (the order of ``storage.browse_media``), as hits with
    no score; needs no model, so the app shows the library before its model has loaded."""
    rows = browse_media(library.db.conn, *(filters or Filters()).sql(), limit=limit, offset=offset)
    ids = [media_id for media_id, _ in rows]
    records, facts = library.media(ids), media_facts(library.db.conn, ids)
    return [Hit(i, records[i].path, records[i].kind, 0.0, None, None, None, (), records[i], False, facts.get(i, {}))
            for i in ids if i in records]


class SearchService:
    """Searches one library with the model that indexed it. Safe to use from several threads."""

    def __init__(self, library: Library, encoder: Encoder, min_relevance: float = DEFAULT_MIN_RELEVANCE):
        if library.model_id and library.model_id != encoder.model_id:
            raise LibraryError(
                f"this library was indexed with {library.model_id}, not {encoder.model_id}: load "
                f"{library.model_source or 'that model'} (or re-index with --model)"
            )
        self.library = library
        self.encoder = encoder
        self.min_relevance = min_relevance
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.calibrator = RelevanceCalibrator(library, encoder.model_id)

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    # -- encoders ----------------------------------------------------------------------------
    def encode_text(self, text: str) -> np.ndarray:
        with self._lock:
            if text in self._query_cache:
                self._query_cache.move_to_end(text)
                return self._query_cache[text]
        vector = self.encoder.encode_texts([text])[0]
        with self._lock:
            self._query_cache[text] = vector
            while len(self._query_cache) > 256:
                self._query_cache.popitem(last=False)
        return vector

    def encode_image(self, image: str | Path | Image.Image | int) -> tuple[np.ndarray, int | None]:
        """Embedding of a library item (by id or path) or of any image file or PIL image."""
        if isinstance(image, int | np.integer):
            vector = self.library.embedding(int(image), self.model_id)
            if vector is None:
                raise LibraryError(f"item {image} has no embedding for {self.model_id}")
            return vector, int(image)
        if isinstance(image, str | Path):
            record = self.library.media_by_path(image)
            if record is not None and record.status == "ok":
                vector = self.library.embedding(record.id, self.model_id)
                if vector is not None:
                    return vector, record.id
            if not Path(image).exists():
                raise LibraryError(f"{image}: no such file")
            try:
                decoded = read_media(image, target_size=self.encoder.image_size)
            except MediaError as error:
                raise LibraryError(f"{image}: {error}") from error
            vectors = self.encoder.encode_pil(decoded.frames)
            mean = vectors.mean(axis=0)
            return mean / max(float(np.linalg.norm(mean)), 1e-12), None
        if isinstance(image, Image.Image):
            return self.encoder.encode_pil([image.convert("RGB")])[0], None
        raise TypeError(f"cannot search by {type(image).__name__}")

    # -- calibration and segments ----------------------------------------------------------
    def relevance(self, query: np.ndarray, item_vectors: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Calibrated relevance of items with the given similarities to a text query."""
        return self.calibrator.relevance(query, item_vectors, scores)

    def _best_segments(self, media_ids: list[int], vector: np.ndarray) -> dict[int, tuple[float, float, float]]:
        return best_segments(segment_spans(self.library.db.conn, media_ids, self.model_id), vector)

    # -- text -> media -----------------------------------------------------------------------
    def text(self, query: str, k: int = 20, filters: Filters | None = None, hybrid: bool = True,
             min_relevance: float | None = None) -> list[Hit]:
        """Media matching a text query, best first (see the module docstring for the cut-off)."""
        query = query.strip()
        if not query:
            return []
        filters = filters or Filters()
        threshold = self.min_relevance if min_relevance is None else min_relevance
        vector = self.encode_text(query)
        semantic = self._semantic(vector, k, filters)
        ids = list(semantic)
        vectors = self._item_vectors(ids)
        sims = np.array([semantic[i][0] for i in ids], np.float32)
        rel = self.relevance(vector, vectors, sims) if ids else np.zeros(0)
        kept = [(i, s, r) for i, s, r in zip(ids, sims, rel) if r >= threshold]
        kept.sort(key=lambda t: -t[1])
        lexical = self._lexical(query, k, filters) if hybrid else []
        fused: dict[int, float] = {}
        for rank, (i, _, _) in enumerate(kept):
            fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + rank + 1)
        for rank, i in enumerate(lexical):
            fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + rank + 1)
        people = self._people(query, k, filters) if hybrid else []
        for rank, i in enumerate(people):
            fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + rank + 1)
        # Items found only by name (or faces) still get a similarity (for display and ties).
        extra = list(dict.fromkeys(i for i in (*lexical, *people) if i not in semantic))
        if extra:
            extra_vectors = self._item_vectors(extra)
            extra_sims = extra_vectors @ vector if len(extra_vectors) else np.zeros(len(extra))
            extra_rel = self.relevance(vector, extra_vectors, extra_sims)
            for i, s, r in zip(extra, extra_sims, extra_rel):
                semantic[i] = (float(s), None, None)
                rel = np.append(rel, r)
                ids.append(i)
        relevance_of = dict(zip(ids, (float(r) for r in rel)))
        kept_ids = {i for i, _, _ in kept}
        order = sorted(fused, key=lambda i: (-fused[i], -semantic[i][0]))[:k]
        return self._hits(order, semantic, relevance_of, kept_ids, set(lexical), vector, set(people))

    def _semantic(self, vector: np.ndarray, k: int, filters: Filters) -> dict[int, tuple[float, float | None, float | None]]:
        """media id -> (similarity, segment start, segment end) for the top candidates."""
        lib = self.library
        media_index = lib.vectors("media", self.model_id)
        fetch = max(50, 4 * k) * (10 if filters.active() else 1)
        out: dict[int, tuple[float, float | None, float | None]] = {}
        ids, sims = media_index.search(vector, fetch)
        for i, s in zip(ids.tolist(), sims.tolist()):
            out[i] = (s, None, None)
        if filters.kind != "image":
            seg_index = lib.vectors("segment", self.model_id)
            if len(seg_index):
                seg_ids, seg_sims = seg_index.search(vector, fetch)
                self._merge_segments(out, seg_ids.tolist(), seg_sims.tolist())
        if filters.active():
            out = self._filter(out, filters)
            if len(out) < k:
                out = self._exact_filtered(vector, filters)
        return out

    def _merge_segments(self, out: dict, seg_ids: list[int], seg_sims: list[float]) -> None:
        if not seg_ids:
            return
        where = segment_owners(self.library.db.conn, seg_ids)
        for seg_id, s in zip(seg_ids, seg_sims):
            if seg_id not in where:
                continue
            media_id, start, end = where[seg_id]
            if media_id not in out or out[media_id][0] < s:
                out[media_id] = (s, start, end)

    def _filter(self, candidates: dict, filters: Filters) -> dict:
        if not candidates:
            return candidates
        allowed = filtered_ids(self.library.db.conn, list(candidates), *filters.sql())
        return {i: v for i, v in candidates.items() if i in allowed}

    def _exact_filtered(self, vector: np.ndarray, filters: Filters) -> dict:
        """Few candidates passed the filters: score every allowed item exactly (videos by their best
        segment when it is closer)."""
        where, params = filters.sql()
        index = self.library.vectors("media", self.model_id)
        kinds = readable_kinds(self.library.db.conn, where, params)
        allowed = [i for i in kinds if i in index][:200_000]
        if not allowed:
            return {}
        sims = index.get(allowed) @ vector
        out = {i: (float(s), None, None) for i, s in zip(allowed, sims)}
        videos = [i for i in allowed if kinds[i] == "video"] if filters.kind != "image" else []
        for media_id, (score, start, end) in self._best_segments(videos, vector).items():
            if score > out[media_id][0]:
                out[media_id] = (score, start, end)
        return out

    def _lexical(self, query: str, k: int, filters: Filters) -> list[int]:
        match = fts_query(query)
        if match is None:
            return []
        try:
            found = lexical(self.library.db.conn, match, *filters.sql(), max(k, 20), words=query_words(query))
        except Exception as error:  # noqa: BLE001 - an odd query must not break search
            log.debug("FTS query %r failed: %s", match, error)
            return []
        index = self.library.vectors("media", self.model_id)
        return [i for i in found if i in index]

    def _people(self, query: str, k: int, filters: Filters) -> list[int]:
        """For a query about people ("a group photo", "selfie"): the photos whose faces fit it, largest faces
        first (``relevance.people_intent``); [] for any other query."""
        intent = people_intent(query)
        if intent is None:
            return []
        where, params = filters.sql()
        found = people_candidates(self.library.db.conn, where, params, intent.min_faces, intent.max_faces,
                                  intent.min_face_area, max(k, 20))
        index = self.library.vectors("media", self.model_id)
        return [i for i in found if i in index]

    def _item_vectors(self, ids: list[int]) -> np.ndarray:
        if not ids:
            return np.zeros((0, self.encoder.embed_dim), np.float32)
        return self.library.vectors("media", self.model_id).get(ids)

    def _hits(self, order, semantic, relevance_of, kept_ids, lexical_ids, vector, people_ids=frozenset()) -> list[Hit]:
        records = self.library.media(order)
        facts = media_facts(self.library.db.conn, list(order))
        segments = self._best_segments([i for i, r in records.items() if r.kind == "video"], vector)
        hits = []
        for i in order:
            record = records.get(i)
            if record is None:
                continue
            score, start, end = semantic.get(i, (0.0, None, None))
            if i in segments:
                segment_score, start, end = segments[i]
                score = max(score, segment_score)
            matched = tuple(m for m, ok in (("meaning", i in kept_ids), ("name", i in lexical_ids),
                                            ("faces", i in people_ids)) if ok)
            relevance = relevance_of.get(i)
            weak = not ({"name", "faces"} & set(matched)) and (relevance is None or relevance < self.min_relevance)
            hits.append(Hit(i, record.path, record.kind, float(score), relevance, start, end, matched, record, weak,
                            facts.get(i, {})))
        return hits

    # -- image -> media ----------------------------------------------------------------------
    def similar(self, image: str | Path | Image.Image | int, k: int = 20, filters: Filters | None = None,
                min_relevance: float | None = None) -> list[Hit]:
        """Media that look like an image (a library item, a file or a PIL image), best first."""
        vector, self_id = self.encode_image(image)
        filters = filters or Filters()
        semantic = self._semantic(vector, k + 1, filters)
        semantic.pop(self_id, None)
        ids = list(semantic)
        sims = np.array([semantic[i][0] for i in ids], np.float32)
        rel = self.calibrator.image_relevance(vector, sims)
        threshold = -np.inf if min_relevance is None else min_relevance
        kept = [(i, s, r) for i, s, r in zip(ids, sims, rel) if r >= threshold]
        kept.sort(key=lambda t: -t[1])
        order = [i for i, _, _ in kept[:k]]
        return self._hits(order, semantic, {i: float(r) for i, _, r in kept}, set(order), set(), vector)

    # -- image -> text -----------------------------------------------------------------------
    def describe(self, image: str | Path | Image.Image | int, k: int = 10,
                 sources: tuple[str, ...] = ("caption", "vocabulary"), at: float | None = None) -> list[TextHit]:
        """The best-matching captions and vocabulary phrases for an image, with scores. For an indexed
        video, ``at`` (seconds) describes the segment playing then instead of the whole video."""
        vector, media_id = self.encode_image(image)
        if at is not None:
            record = self.library.media([media_id]).get(media_id) if media_id is not None else None
            if record is None or record.kind != "video":
                raise LibraryError(f"--at describes a moment of an indexed video, and {display_text(str(image))} "
                                   "is not one: leave --at out")
            starts, ends, segment_vectors = self.library.segments(media_id, self.model_id)
            length = record.duration or (float(ends[-1]) if len(ends) else 0.0)
            if not 0 <= at <= length:
                raise LibraryError(f"--at {at:g}: the video {display_text(record.path)} is {length:.1f} seconds "
                                   f"long; give a moment from 0 to {length:.1f}")
            if len(starts):
                vector = segment_vectors[max(0, int(np.searchsorted(starts, at, side="right")) - 1)]
        index = self.library.vectors("text", self.model_id)
        if len(index) == 0:
            raise LibraryError("no texts are embedded yet: run `cots index` first")
        ids, sims = index.search(vector, min(len(index), max(200, 4 * k)))
        sample = index.sample(SAMPLE_SIZE) @ vector
        mean, std = float(sample.mean()), max(float(sample.std()), 1e-6)
        rows = texts_by_id(self.library.db.conn, ids.tolist())
        out = []
        for i, s in zip(ids.tolist(), sims.tolist()):
            if i in rows and rows[i][1] in sources:
                text, source, media_id = rows[i]
                out.append(TextHit(text, s, (s - mean) / std, source, media_id))
            if len(out) >= k:
                break
        return out
