"""A readable working copy of a damaged library file, for ``cots repair`` to salvage rows from.

Its few statements read SQLite's own schema table of the damaged copy, not a library, so they stay here
(like repair.py's salvage SQL) rather than in the storage package.

The damaged file itself is never written: SQLite reads a copy. Two kinds of damage stop SQLite from
reading any row at all, although most of the rows are still there (issue 21):

- a truncated file (a copy cut short, a full disk): the pages past the end are missing, and with them,
  often, the pages of the schema (``sqlite_schema`` grows while a library is created, so its leaves sit
  after the first tables' roots). The copy is padded with zero pages to the size its header declares, so
  every page number is in range again, and the lost pages read as damaged ones (stepped over);
- an unreadable schema: when the damaged file's schema cannot be read and the file was written with this
  program's schema version and page size, the schema pages of a fresh library (same version, created the
  same way, so with the same table root pages) are copied into the working copy. This is only kept when
  every table's root page in the copy is a b-tree page of the right kind, or lost (zeros).
"""
from __future__ import annotations

import logging
import shutil
import sqlite3
import struct
from pathlib import Path

log = logging.getLogger(__name__)

_TABLE_PAGES = (0x05, 0x0D)  # interior and leaf pages of a rowid table
_INDEX_PAGES = (0x02, 0x0A)  # interior and leaf pages of an index or a WITHOUT ROWID table


def make_working_copy(path: Path, copy: Path, fresh: Path) -> list[str]:
    """Copy ``path`` (with its WAL) to ``copy`` and make it as readable as possible; ``fresh`` is an empty
    library of the current schema. Returns what was done, in words, for the report."""
    notes: list[str] = []
    shutil.copyfile(path, copy)
    if Path(f"{path}-wal").exists():
        shutil.copyfile(f"{path}-wal", f"{copy}-wal")
    header = _header(copy)
    if header is None:
        return notes
    page_size, declared, user_version = header
    size = copy.stat().st_size
    if declared and size < declared * page_size:
        missing = declared - -(-size // page_size)
        with open(copy, "r+b") as handle:
            handle.truncate(declared * page_size)
        notes.append(f"the file is cut short: {missing} of its {declared} pages are missing")
    if not _schema_readable(copy):
        fresh_header = _header(fresh)
        if fresh_header and fresh_header[0] == page_size and fresh_header[2] == user_version \
                and _graft_schema(copy, fresh, page_size):
            notes.append("its schema was unreadable: the schema of this version was put back to read the rows")
        else:
            notes.append("its schema is unreadable")
    return notes


def _header(path: Path) -> tuple[int, int, int] | None:
    """(page size, declared page count, user_version) from a SQLite file's 100-byte header."""
    with open(path, "rb") as handle:
        head = handle.read(100)
    if len(head) < 100 or not head.startswith(b"SQLite format 3\0"):
        return None
    page_size = struct.unpack(">H", head[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    declared, = struct.unpack(">I", head[28:32])
    user_version, = struct.unpack(">I", head[60:64])
    return page_size, declared, user_version


def _schema_readable(path: Path) -> bool:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            conn.execute("SELECT name, rootpage FROM sqlite_master").fetchall()
            conn.execute("SELECT 1 FROM media LIMIT 0").fetchall()
        finally:
            conn.close()
        return True
    except sqlite3.DatabaseError:
        return False


def _page(handle, number: int, page_size: int) -> bytes:
    handle.seek((number - 1) * page_size)
    return handle.read(page_size).ljust(page_size, b"\0")


def _tree_pages(handle, root: int, page_size: int, limit: int = 10_000) -> list[int]:
    """Page numbers of the table b-tree rooted at ``root`` (its interior pages' child pointers)."""
    pages, todo = [], [root]
    while todo and len(pages) < limit:
        number = todo.pop()
        pages.append(number)
        page = _page(handle, number, page_size)
        offset = 100 if number == 1 else 0
        if page[offset] != 0x05:
            continue
        cells, = struct.unpack(">H", page[offset + 3:offset + 5])
        todo.append(struct.unpack(">I", page[offset + 8:offset + 12])[0])
        for i in range(cells):
            pointer, = struct.unpack(">H", page[offset + 12 + 2 * i:offset + 14 + 2 * i])
            todo.append(struct.unpack(">I", page[pointer:pointer + 4])[0])
    return pages


def _graft_schema(copy: Path, fresh: Path, page_size: int) -> bool:
    """Copy ``fresh``'s schema pages into ``copy``; True when the copy's root pages then fit the schema."""
    conn = sqlite3.connect(fresh)
    try:
        roots = conn.execute("SELECT name, type, rootpage, sql FROM sqlite_master WHERE rootpage > 0").fetchall()
    finally:
        conn.close()
    with open(fresh, "rb") as source, open(copy, "r+b") as target:
        schema_pages = _tree_pages(source, 1, page_size)
        original = {number: _page(target, number, page_size) for number in schema_pages}
        for number in schema_pages:  # page 1 keeps the copy's own 100-byte file header (its size, freelist)
            skip = 100 if number == 1 else 0
            target.seek((number - 1) * page_size + skip)
            target.write(_page(source, number, page_size)[skip:])
        for name, kind, root, sql in roots:
            page = _page(target, root, page_size)
            kinds = _TABLE_PAGES if kind == "table" and "WITHOUT ROWID" not in (sql or "") else _INDEX_PAGES
            if page[0] not in kinds and any(page):
                log.info("repair: %s's root page %d is not a b-tree page of its kind: no schema graft", name, root)
                for number, content in original.items():  # put the copy back as it was
                    target.seek((number - 1) * page_size)
                    target.write(content)
                return False
    return _schema_readable(copy)
