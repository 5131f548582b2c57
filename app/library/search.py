"""Search over a library: text -> media (hybrid with FTS5), image -> similar media, image -> text.

Relevance is calibrated rather than a fixed similarity threshold (``relevance.RelevanceCalibrator``);
a video is scored by its best-matching segment (``relevance.best_segments``).
"""
from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from app.library.dates import LATEST, LATEST_YEAR, clamp_seconds, local_timestamp
from app.library.errors import LibraryError, MediaError
from app.library.library import Library, MediaRecord
from app.library.pathtext import display_text
from app.library.people import People, name_key, split_names
from app.library.relevance import SAMPLE_SIZE, RelevanceCalibrator, best_segments
from app.library.signals import fact_filter, fact_filters, fact_searches
from app.library.storage.browse import browse_media
from app.library.storage.people import person_moments
from app.library.storage.search import (
    fact_condition_ids,
    filter_sql,
    filtered_ids,
    lexical,
    person_media_ids,
    readable_kinds,
)
from app.library.storage.signals import media_facts
from app.library.storage.vectors import segment_owners, segment_spans, texts_by_id
from cots_core.media import read_media

if TYPE_CHECKING:
    from app.library.encoder import Encoder

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
    segment's when higher); ``timestamp``: start second of the best-matching segment (videos), or, in a search
    naming people, of the moment they appear (``person_moment``)."""

    id: int
    path: str
    kind: str
    score: float
    relevance: float | None
    timestamp: float | None
    segment_end: float | None
    matched: tuple[str, ...]  # "meaning", "name" (file/folder name, caption, place, camera, text in the photo)
    # and/or "faces" (a people query that its faces fit), "person" (a named person is in it)
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


@dataclass(init=False)
class Filters:
    """What a search is limited to: the built-in filters (kind, folder, dates) and the signals' declared
    ones by name (``app.library.signals.fact_filters``), e.g. ``Filters(kind="image", place="Paris")``;
    ``filters.place`` reads one (None when unset)."""

    kind: str | None = None  # image | video
    folder: str | None = None  # path prefix
    date_from: float | None = None  # epoch seconds (EXIF capture time, else modification time)
    date_to: float | None = None
    signals: dict[str, object] = field(default_factory=dict)  # declared filter name -> value (None: unset)
    people: tuple[str, ...] = ()  # names of people who must all be in the photo (`cots people name`)

    def __init__(self, kind: str | None = None, folder: str | None = None, date_from: float | None = None,
                 date_to: float | None = None, signals: dict[str, object] | None = None,
                 people: tuple[str, ...] = (), **by_name) -> None:
        # every date bound, from the command line, the GUI or a caller, in the library's date range
        date_from, date_to = (clamp_seconds(d) if d is not None else None for d in (date_from, date_to))
        self.kind, self.folder, self.date_from, self.date_to = kind, folder, date_from, date_to
        self.people = tuple(people)
        values = {**(signals or {}), **by_name}
        known = {f.name for f in fact_filters()}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TypeError(f"Filters got an unknown filter {', '.join(unknown)} (signal filters: "
                            f"{', '.join(sorted(known)) or 'none'})")
        self.signals = {name: value for name, value in values.items() if value is not None}

    def __getattr__(self, name: str):
        if name.startswith("_") or name in ("signals", "people"):
            raise AttributeError(name)
        if name in {f.name for f in fact_filters()}:
            return self.signals.get(name)
        raise AttributeError(f"Filters has no filter {name!r}")

    def active(self) -> bool:
        return any(v is not None for v in (self.kind, self.folder, self.date_from, self.date_to)) or bool(self.signals) \
            or bool(self.people)

    def where(self) -> tuple[str, list]:
        """The filters as a SQL condition on the media rows (built by ``storage.search.filter_sql``)."""
        return filter_sql(self.kind, self.folder, self.date_from, self.date_to,
                          [(fact_filter(name), value) for name, value in self.signals.items()],
                          [name_key(name) for name in self.people])


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
            return local_timestamp(start)
        if start.year > LATEST_YEAR:  # the library's dates end sooner (and 9999 has no next year)
            return LATEST
        if step == "day":
            nxt = start + timedelta(days=1)
        elif step == "month":
            nxt = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        else:
            nxt = start.replace(year=start.year + 1)
        return local_timestamp(nxt) - 1e-3
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


def reciprocal_rank_fusion(*rankings: list[int]) -> dict[int, float]:
    """Each item's fused score: the sum over the rankings it appears in of 1 / (RRF_K + its rank)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, i in enumerate(ranking):
            fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + rank + 1)
    return fused


def person_moment(faces: list[tuple[int, float, float]], people: list[int], best: float | None) -> float | None:
    """The second a video found by people's names shows: its best-matching segment (``best``) when all of
    them are on that frame, else the frame where all of them are whose faces are largest, else the largest
    face's frame of the first of them found; None without faces. ``faces``: ``storage.people.person_moments``'
    rows for one video, (person id, second, weight), largest first."""
    faces = [face for face in faces if face[0] in people]
    if not faces:
        return None
    weights: dict[int, dict[float, float]] = {}
    for person_id, second, weight in faces:
        weights.setdefault(person_id, {}).setdefault(round(second, 3), weight)
    common = set.intersection(*map(set, weights.values())) if len(weights) == len(set(people)) else set()
    if best is not None and round(best, 3) in common:
        return best
    if common:
        return max(sorted(common), key=lambda t: sum(w[t] for w in weights.values()))
    return faces[0][1]


def browse(library: Library, filters: Filters | None = None, offset: int = 0, limit: int = 200) -> list[Hit]:
    """A page of the library itself, newest first (the order of ``storage.browse.browse_media``), as hits with
    no score; needs no model, so the app shows the library before its model has loaded."""
    rows = browse_media(library.db.conn, *(filters or Filters()).where(), limit=limit, offset=offset)
    ids = [media_id for media_id, _ in rows]
    records, facts = library.media(ids), media_facts(library.db.conn, ids)
    return [Hit(i, records[i].path, records[i].kind, 0.0, None, None, None, (), records[i], False, facts.get(i, {}))
            for i in ids if i in records]


def periods(library: Library, filters: Filters, per: str) -> list[tuple[str | None, int]]:
    """(period, items) of the library under ``filters``, newest first: ``per`` is a strftime pattern
    ("%Y-%m" for months, "%Y" for years); the timeline's bars."""
    return browse_media(library.db.conn, *filters.where(), per=per)


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
        filters = filters or Filters()
        query, filters, named = self._named_people(query, filters)
        if not query and named:  # only names: their photos, largest faces first
            order = person_media_ids(self.library.db.conn, named, *filters.where(), k)
            return self._hits(order, {}, {}, set(), set(), np.zeros(self.encoder.embed_dim, np.float32),
                              {"person": set(order)}, named)
        if not query:
            return []
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
        by_facts = self._fact_words(query, k, filters) if hybrid else {}
        if named:  # every photo of a named person: the rest of the query ranks them
            by_facts["person"] = person_media_ids(self.library.db.conn, named, *filters.where(), max(k, 20))
        fused = reciprocal_rank_fusion([i for i, _, _ in kept], lexical, *by_facts.values())
        # Items found only by name (or by their facts, or a person's name) still get a similarity (for display
        # and ties).
        extra = list(dict.fromkeys(i for i in (*lexical, *(i for f in by_facts.values() for i in f))
                                   if i not in semantic))
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
        return self._hits(order, semantic, relevance_of, kept_ids, set(lexical), vector,
                          {tag: set(found) for tag, found in by_facts.items()}, named)

    def _named_people(self, query: str, filters: Filters) -> tuple[str, Filters, list[int]]:
        """Names of people (``cots people name``) in the query become a filter: "Anna beach" -> "beach" among
        Anna's photos (only when written with the name's capitals and not quoted: ``split_names``). Returns the rest of the query, the filters with the names, and those people's ids.
        LibraryError for a ``Filters.people`` name no one has."""
        book = People(self.library)
        named = book.named()
        ids = []
        for name in filters.people:
            found = book.find(name)
            if not found:
                raise LibraryError(f"no person is named {display_text(name)!r}: `cots people` lists the names")
            ids += found
        if named and query:
            rest, found_in_query = split_names(query, named)
            if found_in_query:
                query = rest
                filters = replace(filters, people=(*filters.people, *(name for _, name in found_in_query)))
                ids += [person_id for person_id, _ in found_in_query]
        return query, filters, list(dict.fromkeys(ids))

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
        allowed = filtered_ids(self.library.db.conn, list(candidates), *filters.where())
        return {i: v for i, v in candidates.items() if i in allowed}

    def _exact_filtered(self, vector: np.ndarray, filters: Filters) -> dict:
        """Few candidates passed the filters: score every allowed item exactly (videos by their best
        segment when it is closer)."""
        where, params = filters.where()
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
            found = lexical(self.library.db.conn, match, *filters.where(), max(k, 20), words=query_words(query))
        except Exception as error:  # noqa: BLE001 - an odd query must not break search
            log.debug("FTS query %r failed: %s", match, error)
            return []
        index = self.library.vectors("media", self.model_id)
        return [i for i in found if i in index]

    def _fact_words(self, query: str, k: int, filters: Filters) -> dict[str, list[int]]:
        """For a query with words a signal declares (``FactSearch``: "a group photo", "selfie" for the faces
        signal): matched tag -> the photos whose facts fit it, best first; {} for any other query."""
        out: dict[str, list[int]] = {}
        for search in fact_searches():
            condition = search.condition(query)
            if condition is None:
                continue
            found = fact_condition_ids(self.library.db.conn, condition, *filters.where(), max(k, 20))
            index = self.library.vectors("media", self.model_id)
            out.setdefault(search.matched, []).extend(i for i in found if i in index)
        return out

    def _item_vectors(self, ids: list[int]) -> np.ndarray:
        if not ids:
            return np.zeros((0, self.encoder.embed_dim), np.float32)
        return self.library.vectors("media", self.model_id).get(ids)

    def _moments(self, video_ids: list[int], people: list[int], segments: dict) -> dict[int, tuple[float, float]]:
        """media id -> (start, end) of the segment a video found by these people's names shows: where they
        appear (``person_moment``), the best-matching segment (``segments``: {} for a query of names only)
        kept when they are on it."""
        out = {}
        for media_id, faces in person_moments(self.library.db.conn, people, video_ids).items():
            best = segments.get(media_id, (None, None, None))[1]
            second = person_moment(faces, people, best)
            starts, ends, _ = self.library.segments(media_id, self.model_id)
            at = max(0, int(np.searchsorted(starts, second + 1e-3, side="right")) - 1) if len(starts) else None
            out[media_id] = (second, float(ends[at]) if at is not None else None)
        return out

    def _hits(self, order, semantic, relevance_of, kept_ids, lexical_ids, vector,
              fact_ids: dict[str, set[int]] | None = None, people: list[int] = ()) -> list[Hit]:
        records = self.library.media(order)
        facts = media_facts(self.library.db.conn, list(order))
        videos = [i for i, r in records.items() if r.kind == "video"]
        segments = self._best_segments(videos, vector)
        segments.update({i: (segments.get(i, (0.0,))[0], *span)
                         for i, span in self._moments(videos, list(people), segments if vector.any() else {}).items()})
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
                                            *((tag, i in ids) for tag, ids in (fact_ids or {}).items())) if ok)
            relevance = relevance_of.get(i)
            # found by name or by its facts: shown whatever its similarity
            weak = matched in ((), ("meaning",)) and (relevance is None or relevance < self.min_relevance)
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
