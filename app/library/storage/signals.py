"""The signals' results: one row per (media, signal) with its status and text, the facts and boxes it
found, and ``media.signal_text`` (the row's signal texts in the full-text index); what each signal still has
to read. What a result feeds beyond these tables (a date, people) its declaration says, and the caller does
(``signal_runner.store_result``)."""
from __future__ import annotations

import sqlite3

from app.library.dates import capture_time
from app.library.db import id_chunks
from app.library.pathtext import from_db


def rebuild_signal_text(conn: sqlite3.Connection, media_ids: list[int]) -> None:
    """Set these rows' ``signal_text`` (the full-text index's fourth column) to their signals' texts joined."""
    for chunk, marks in id_chunks(media_ids):
        conn.execute(f"UPDATE media SET signal_text = (SELECT group_concat(text, ' ') FROM signal_results r "
                     f"WHERE r.media_id = media.id AND r.text != '') WHERE id IN ({marks})", chunk)


def delete_signal_results(conn: sqlite3.Connection, media_ids: list[int]) -> None:
    """Forget what the signals found in these rows, and their words in the text index (the faces table is
    ``people.delete_faces``'s)."""
    for chunk, marks in id_chunks(media_ids):
        for table in ("signal_boxes", "signal_facts", "signal_results"):
            conn.execute(f"DELETE FROM {table} WHERE media_id IN ({marks})", chunk)
    rebuild_signal_text(conn, media_ids)


def store_signal_result(conn: sqlite3.Connection, media_id: int, signal: str, version: int, output,
                        error: str | None = None, now: float | None = None, date_fact: str | None = None) -> None:
    """Replace one (media, signal) result: ``output`` (a ``SignalOutput``) when it read the file, else the
    ``error``. The media row's ``signal_text`` (in the full-text index) is rebuilt from all its signals.
    ``date_fact``: the fact (epoch seconds) that is when the photo was taken (the signal's declaration
    says which); it fills the row's ``captured_at`` when the decoder found none."""
    conn.execute("DELETE FROM signal_boxes WHERE media_id = ? AND signal = ?", (media_id, signal))
    conn.execute("DELETE FROM signal_facts WHERE media_id = ? AND signal = ?", (media_id, signal))
    text = (output.text or "").strip() if output is not None else ""
    conn.execute("INSERT OR REPLACE INTO signal_results(media_id, signal, version, status, error, text, done_at) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)", (media_id, signal, version, "ok" if error is None else "error",
                                                  error, text, now))
    if output is not None and error is None:
        conn.executemany("INSERT INTO signal_facts(media_id, signal, key, value) VALUES (?, ?, ?, ?)",
                         [(media_id, signal, key, value) for key, value in output.facts.items()])
        conn.executemany("INSERT INTO signal_boxes(media_id, signal, x, y, w, h, score, label) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         [(media_id, signal, b.x, b.y, b.w, b.h, b.score, b.label) for b in output.boxes])
        taken_at = capture_time(output.facts.get(date_fact)) if date_fact else None
        if taken_at is not None:  # the date filters read captured_at: EXIF's time when there is one
            conn.execute("UPDATE media SET captured_at = ? WHERE id = ? AND captured_at IS NULL", (taken_at, media_id))
    rebuild_signal_text(conn, [media_id])


def signal_work(conn: sqlite3.Connection, signal: str, version: int, limit: int = 1000,
                kinds: tuple[str, ...] = ("image",)) -> list[tuple[int, str, str]]:
    """(media id, path, kind) of readable rows of ``kinds`` that ``signal`` at ``version`` has not read yet,
    by id."""
    marks = ",".join("?" * len(kinds))
    return [(media_id, from_db(path), kind) for media_id, path, kind in conn.execute(
        "SELECT m.id, m.path, m.kind FROM media m LEFT JOIN signal_results r ON r.media_id = m.id AND r.signal = ? "
        f"AND r.version = ? WHERE m.status = 'ok' AND m.kind IN ({marks}) AND r.media_id IS NULL "
        "ORDER BY m.id LIMIT ?", (signal, version, *kinds, limit))]


def signal_work_count(conn: sqlite3.Connection, signal: str, version: int, kinds: tuple[str, ...] = ("image",)) -> int:
    marks = ",".join("?" * len(kinds))
    return conn.execute(
        "SELECT COUNT(*) FROM media m LEFT JOIN signal_results r ON r.media_id = m.id AND r.signal = ? "
        f"AND r.version = ? WHERE m.status = 'ok' AND m.kind IN ({marks}) AND r.media_id IS NULL",
        (signal, version, *kinds)).fetchone()[0]


def signal_counts(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """signal -> {status: rows} (ok, error)."""
    out: dict[str, dict[str, int]] = {}
    for signal, status, count in conn.execute(
            "SELECT signal, status, COUNT(*) FROM signal_results GROUP BY signal, status"):
        out.setdefault(signal, {})[status] = count
    return out


def signal_failures(conn: sqlite3.Connection, limit: int = 50) -> list[tuple[str, str, str]]:
    """(signal, path, error) of files a signal could not read."""
    return [(signal, from_db(path), error) for signal, path, error in conn.execute(
        "SELECT r.signal, m.path, r.error FROM signal_results r JOIN media m ON m.id = r.media_id "
        "WHERE r.status = 'error' ORDER BY r.signal, m.path LIMIT ?", (limit,))]


def media_facts(conn: sqlite3.Connection, media_ids: list[int]) -> dict[int, dict[str, str | int | float]]:
    """media id -> {fact key: value} of every signal (keys are distinct across signals)."""
    out: dict[int, dict] = {}
    for chunk, marks in id_chunks(media_ids):
        for media_id, key, value in conn.execute(
                f"SELECT media_id, key, value FROM signal_facts WHERE media_id IN ({marks}) ORDER BY signal, key",
                chunk):
            out.setdefault(media_id, {})[key] = value
    return out


def media_signal_details(conn: sqlite3.Connection, media_id: int) -> tuple[dict, list[tuple], dict[str, str]]:
    """One row's facts, boxes (signal, x, y, w, h, score, label) and signal texts, for a detail view."""
    facts = media_facts(conn, [media_id]).get(media_id, {})
    boxes = conn.execute("SELECT signal, x, y, w, h, score, label FROM signal_boxes WHERE media_id = ? "
                         "ORDER BY signal, id", (media_id,)).fetchall()
    texts = dict(conn.execute("SELECT signal, text FROM signal_results WHERE media_id = ? AND text != ''",
                              (media_id,)).fetchall())
    return facts, boxes, texts


def fact_groups(conn: sqlite3.Connection, keys: tuple[str, ...]) -> list[tuple[tuple[str, ...], int]]:
    """(values of ``keys``, photos) over the readable photos that have the first key ("" for a missing
    other one), most photos first, then by the values: a filter's choices (``FactFilter.choice_keys``)."""
    joins = " ".join(f"{'JOIN' if i == 0 else 'LEFT JOIN'} signal_facts k{i} ON k{i}.media_id = m.id AND k{i}.key = ?"
                     for i in range(len(keys)))
    values = ", ".join(f"COALESCE(k{i}.value, '')" for i in range(len(keys)))
    order = ", ".join(str(i + 1) for i in range(len(keys)))
    rows = conn.execute(f"SELECT {values}, COUNT(*) AS photos FROM media m {joins} WHERE m.status = 'ok' "
                        f"GROUP BY {order} ORDER BY photos DESC, {order}", keys).fetchall()
    return [(tuple(str(v) for v in row[:-1]), row[-1]) for row in rows]
