"""The dates the library keeps: the one range every stored or compared time lies in.

A time reaches the library from a file's modification time (the scanner), a photo's EXIF (the decoder and
the EXIF signal) and a date filter (``--from``/``--to``, the GUI's date fields). Each passes through here, so
every date the program stores is one it can show: SQLite's ``strftime`` gives NULL past 9999-12-31 (a
capture time of 9999-12-31 23:59:59 west of UTC is year 10000 in UTC), Python's ``datetime`` stops at year
9999 too, and a modification time is kept in nanoseconds, which SQLite's 64-bit INTEGER holds only from
1677-09-21 to 2262-04-11. The range, 1800-01-01 to 2261-12-31 (UTC), sits inside all three with more than
a day to spare on each side, so any time zone's offset (at most 14 hours) keeps it showable.

Modification times and date filters are clamped into the range (a file touched to 2300 is dated at its
end, and ``--to 9999`` means "until the end"); a capture time outside it is a camera's placeholder and is
refused (the file's modification time dates it instead).
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta

EARLIEST_YEAR, LATEST_YEAR = 1800, 2261
EARLIEST = -5364662400.0  # 1800-01-01 00:00:00 UTC, epoch seconds
LATEST = 9214646399.0  # 2261-12-31 23:59:59 UTC
EARLIEST_NS, LATEST_NS = int(EARLIEST) * 10**9, int(LATEST) * 10**9
_EPOCH = datetime(1970, 1, 1)


def clamp_seconds(seconds: float) -> float:
    """Epoch seconds brought into the range (NaN counts as the earliest)."""
    if math.isnan(seconds):
        return EARLIEST
    return min(max(float(seconds), EARLIEST), LATEST)


def clamp_mtime_ns(mtime_ns: int) -> int:
    """A file's modification time in nanoseconds, brought into the range (then it fits SQLite's INTEGER)."""
    return min(max(int(mtime_ns), EARLIEST_NS), LATEST_NS)


def capture_time(seconds: object) -> float | None:
    """A capture time (EXIF) if it is a finite number inside the range, else None (not a date to keep)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    if not math.isfinite(seconds) or not EARLIEST <= seconds <= LATEST:
        return None
    return float(seconds)


def local_timestamp(when: datetime) -> float:
    """Epoch seconds of a local wall-clock time (a date filter's bound), clamped into the range; a year
    outside the range (``datetime`` allows 1 to 9999) is its nearest end."""
    if when.year < EARLIEST_YEAR:
        return EARLIEST
    if when.year > LATEST_YEAR:
        return LATEST
    try:
        return clamp_seconds(when.timestamp())
    except (OverflowError, OSError, ValueError):  # a platform whose mktime stops at 1970 (Windows): as UTC
        return clamp_seconds((when - _EPOCH).total_seconds())


def local_datetime(seconds: float) -> datetime:
    """The local wall-clock time of epoch seconds, clamped into the range first (a library written before
    the range existed may hold anything); never raises."""
    seconds = clamp_seconds(seconds)
    try:
        return datetime.fromtimestamp(seconds)
    except (OverflowError, OSError, ValueError):  # a platform without local times before 1970: as UTC
        return _EPOCH + timedelta(seconds=seconds)


def format_local(seconds: float | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """A date as the detail pane and the CLI show it, '' for None."""
    return local_datetime(seconds).strftime(pattern) if seconds is not None else ""
