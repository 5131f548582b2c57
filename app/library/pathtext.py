"""File names as the library stores, searches and shows them.

On POSIX a path is bytes; Python hands undecodable bytes over as lone surrogates ('\\udce9' for the
byte 0xE9, PEP 383), which SQLite (UTF-8 text) cannot store. So a path that is valid UTF-8 is stored
as TEXT, exactly as before, and any other path as a BLOB of its bytes (``os.fsencode``); reading
turns either back into the same ``str`` (``os.fsdecode``), so nothing is lost and the file can be
opened again. For people, ``display_text`` escapes what a terminal would mangle or obey.
"""
from __future__ import annotations

import os
import unicodedata

# Line and paragraph separators break lines like a newline does; bidi controls reorder what is shown.
_ALSO_ESCAPED = {"\u2028", "\u2029", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
                 "\u2066", "\u2067", "\u2068", "\u2069"}


def to_db(path: str | os.PathLike) -> str | bytes:
    """The value to store for a path: its text when it is valid UTF-8, else its bytes."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text)
    return text


def from_db(value: str | bytes | None) -> str | None:
    """A stored path back as the ``str`` that opens the file (inverse of ``to_db``)."""
    if isinstance(value, bytes | memoryview):
        return os.fsdecode(bytes(value))
    return value


def path_prefix_sql(column: str, folder: str | os.PathLike) -> tuple[str, list]:
    """SQL matching ``folder`` itself and every path under it, whether stored as TEXT or BLOB."""
    text = os.fspath(folder).rstrip("/\\") or os.fspath(folder)
    prefix = text if text.endswith(("/", "\\")) else text + os.sep
    raw = os.fsencode(prefix)
    clauses = [f"{column} = ?", f"substr({column}, 1, ?) = ?"]
    params: list = [to_db(text), len(raw), raw]
    stored = to_db(prefix)
    if isinstance(stored, str):  # TEXT rows: substr counts characters
        clauses.append(f"substr({column}, 1, ?) = ?")
        params += [len(stored), stored]
    return "(" + " OR ".join(clauses) + ")", params


def searchable_text(text: str) -> str:
    """Valid text for full-text search: undecodable bytes read as Latin-1 (old archives, Samba shares)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        raw = os.fsencode(text)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def safe_text(text: str) -> str:
    """Any message made storable as UTF-8 (undecodable bytes become U+FFFD)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def display_text(text: str | os.PathLike) -> str:
    """One printable line: undecodable bytes as ``\\xe9``, control characters as ``\\n``, ``\\x1b``, ..."""
    text = os.fspath(text)
    out = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        elif char in _ALSO_ESCAPED or unicodedata.category(char) == "Cc":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char) or
                       (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"))
        else:
            out.append(char)
    return "".join(out)
