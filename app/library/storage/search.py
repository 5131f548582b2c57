"""Search's reads: which rows pass the filters (``filter_sql``: built-in ones, the signals' declared ones,
named people), the lexical (FTS5) search over names, captions and signal text, and photos whose facts fit a
query's words (``fact_condition_ids``) or that hold named people."""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from app.library.pathtext import path_prefix_sql
from app.library.signals.base import AT_LEAST_ONE, CONTAINS, EQUALS_EACH_PART, FactCondition, FactFilter
from app.library.storage.media import MEDIA_DATE_SQL


def filtered_ids(conn: sqlite3.Connection, ids: list[int], where: str, params: list) -> set[int]:
    """The ``ids`` whose media row passes ``where`` (a ``filter_sql`` condition on ``m``)."""
    if not ids:
        return set()
    marks = ",".join("?" * len(ids))
    return {r[0] for r in conn.execute(f"SELECT m.id FROM media m WHERE m.id IN ({marks}) AND {where}",
                                       [*ids, *params])}


def readable_kinds(conn: sqlite3.Connection, where: str, params: list) -> dict[int, str]:
    """media id -> kind of every readable row passing ``where``."""
    return {media_id: kind for media_id, kind in conn.execute(
        f"SELECT m.id, m.kind FROM media m WHERE m.status = 'ok' AND {where}", params)}


# bm25 weights of the FTS columns (name, folder_names, caption, signal_text): a person's caption says more
# than text a machine read (places, OCR)
LEXICAL_WEIGHTS = (2.0, 1.0, 2.0, 1.0)


def lexical(conn: sqlite3.Connection, match: str, where: str, params: list, limit: int,
            words: list[str] | None = None) -> list[int]:
    """Readable media ids matching an FTS5 ``match`` on names, folder names, captions and signal text
    (places, text in photos), best first. ``words`` (the query's words): files whose own name holds more of
    them come first, whatever their length; BM25 alone lets a long caption push "china.jpg" below
    "flower.jpg" of the same "Trip to China 2011" folder, its length normalisation outweighing the name."""
    weights = ", ".join(map(str, LEXICAL_WEIGHTS))
    rows = conn.execute(
        f"SELECT m.id, m.name FROM media_fts f JOIN media m ON m.id = f.rowid "
        f"WHERE media_fts MATCH ? AND m.status = 'ok' AND {where} ORDER BY bm25(media_fts, {weights}) LIMIT ?",
        [match, *params, limit]).fetchall()
    if words:
        def in_name(name) -> int:
            tokens = re.findall(r"\w+", str(name or "").lower())
            return sum(any(t.startswith(w) for t in tokens) for w in words)

        rows.sort(key=lambda row: -in_name(row[1]))  # stable: BM25 order within each count
    return [row[0] for row in rows]


def fact_condition_ids(conn: sqlite3.Connection, condition: FactCondition, where: str, params: list,
                       limit: int) -> list[int]:
    """Readable media whose numeric facts lie in ``condition``'s ranges (its first key present, a missing
    other one read as 0), passing ``where``; the largest ``rank_by`` first."""
    joins, join_args, tests, test_args, value_of = [], [], [], [], {}
    for i, (key, low, high) in enumerate(condition.ranges):
        joins.append(f"{'LEFT ' if i else ''}JOIN signal_facts k{i} ON k{i}.media_id = m.id AND k{i}.key = ?")
        join_args.append(key)
        value_of[key] = f"CAST(COALESCE(k{i}.value, 0) AS REAL)"
        for bound, op in ((low, ">="), (high, "<=")):
            if bound is not None:
                tests.append(f"{value_of[key]} {op} ?")
                test_args.append(bound)
    rank = value_of.get(condition.rank_by or "", "0")
    conditions = " AND ".join(["m.status = 'ok'", *tests, where])
    return [r[0] for r in conn.execute(
        f"SELECT m.id FROM media m {' '.join(joins)} WHERE {conditions} ORDER BY {rank} DESC, m.id LIMIT ?",
        [*join_args, *test_args, *params, limit])]


# A fact of a row's signals, as a SQL condition on ``m``.
_FACT = "EXISTS (SELECT 1 FROM signal_facts f WHERE f.media_id = m.id AND f.key IN ({keys}) AND {test})"


def fact_filter_sql(declared: FactFilter, value) -> tuple[list[str], list]:
    """The conditions (and their parameters) of one signal filter's value, by its match kind."""
    keys = ", ".join("?" * len(declared.keys))
    if declared.match == EQUALS_EACH_PART:
        parts = [p.strip() for p in str(value).split(",") if p.strip()]
        return ([_FACT.format(keys=keys, test="f.value = ? COLLATE NOCASE")] * len(parts),
                [arg for part in parts for arg in (*declared.keys, part)])
    if declared.match == CONTAINS:
        return [_FACT.format(keys=keys, test="f.value LIKE ?")], [*declared.keys, f"%{str(value).strip()}%"]
    if declared.match == AT_LEAST_ONE:
        return [_FACT.format(keys=keys, test="f.value >= 1" if value else "f.value = 0")], [*declared.keys]
    raise ValueError(f"unknown match kind {declared.match!r} of the filter {declared.name!r}")


def filter_sql(kind: str | None = None, folder: str | None = None, date_from: float | None = None,
               date_to: float | None = None, facts: list[tuple[FactFilter, object]] = (),
               people: list[str] = ()) -> tuple[str, list]:
    """A WHERE condition on ``m`` (and its parameters) for search's filters: the built-in ones (kind, folder,
    capture dates), the signals' (``facts``: each declared filter with its value; None values skipped) and
    ``people`` (case-folded names: a face of each must be in the photo)."""
    clauses, params = [], []
    if kind:
        clauses.append("m.kind = ?")
        params.append(kind)
    if folder:
        clause, folder_params = path_prefix_sql("m.path", Path(folder).expanduser().resolve())
        clauses.append(clause)
        params += folder_params
    date = MEDIA_DATE_SQL
    for bound, op in ((date_from, ">="), (date_to, "<=")):
        if bound is not None:
            clauses.append(f"{date} {op} ?")
            params.append(bound)
    for declared, value in facts:
        if value is not None and value != "":
            more, more_params = fact_filter_sql(declared, value)
            clauses += more
            params += more_params
    for key in people:
        clauses.append("EXISTS (SELECT 1 FROM faces x JOIN people p ON p.id = x.person_id WHERE x.media_id = m.id "
                       "AND p.name_key = ? AND p.merged_into IS NULL)")
        params.append(key)
    return (" AND ".join(clauses) or "1"), params


def person_media_ids(conn: sqlite3.Connection, person_ids: list[int], where: str, params: list,
                     limit: int) -> list[int]:
    """Readable media holding a face of every one of ``person_ids`` and passing ``where``, largest faces
    first."""
    if not person_ids:
        return []
    clauses = " AND ".join("EXISTS (SELECT 1 FROM faces x WHERE x.media_id = m.id AND x.person_id = ?)"
                           for _ in person_ids)
    return [r[0] for r in conn.execute(
        f"SELECT m.id FROM media m JOIN faces f ON f.media_id = m.id WHERE m.status = 'ok' AND {clauses} "
        f"AND {where} GROUP BY m.id ORDER BY MAX(f.w * f.h) DESC, m.id LIMIT ?", [*person_ids, *params, limit])]
