"""Seconds as people read them, the same in the CLI and the GUI."""
from __future__ import annotations


def format_time(seconds: float | None) -> str:
    """``m:ss`` under an hour, ``h:mm:ss`` from an hour on; '' for None."""
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
