"""Browsing: the library itself, newest first, page by page or counted per period."""
from __future__ import annotations

import sqlite3

from app.library.storage.media import MEDIA_DATE_SQL


def browse_media(conn: sqlite3.Connection, where: str, params: list, limit: int = -1, offset: int = 0,
                 per: str | None = None) -> list[tuple]:
    """The readable media passing ``where`` (a ``Filters.where()`` clause on ``m``) newest first by capture
    time (EXIF, else the file's modification time): a page of ``(id, date)`` rows (``limit``/``offset``), or
    with ``per`` (a strftime pattern: "%Y", "%Y-%m", "%Y-%m-%d") ``(period, items)`` in the same order,
    periods in local time and ``None`` for undated items (last)."""
    date = MEDIA_DATE_SQL
    if per is not None:
        return conn.execute(
            f"SELECT strftime(?, {date}, 'unixepoch', 'localtime') AS period, COUNT(*) FROM media m "
            f"WHERE m.status = 'ok' AND {where} GROUP BY period ORDER BY period IS NULL, period DESC",
            [per, *params]).fetchall()
    return conn.execute(
        f"SELECT m.id, {date} AS date FROM media m WHERE m.status = 'ok' AND {where} "
        "ORDER BY date IS NULL, date DESC, m.id DESC LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()
