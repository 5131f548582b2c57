"""Sidecar captions: the one convention of the library and the trainer (``photo.jpg.txt``, ``photo.txt``,
``.caption``), read only from regular files inside the watched folder."""
from __future__ import annotations

import stat
from pathlib import Path

CAPTION_EXTENSIONS = (".txt", ".caption")
MAX_CAPTION_BYTES = 64_000  # a larger "caption" is some other text file


def caption_files(path: str | Path) -> list[Path]:
    """Where a file's caption may be, in order: ``photo.jpg.txt``, ``photo.jpg.caption``, ``photo.txt``,
    ``photo.caption``."""
    path = Path(path)
    return ([path.with_name(path.name + ext) for ext in CAPTION_EXTENSIONS]
            + [path.with_suffix(ext) for ext in CAPTION_EXTENSIONS])


def _caption_text(candidate: Path, inside: Path) -> str | None:
    """The text of one sidecar, or None when it is not a plain file inside ``inside`` (resolved) or is too
    large. A symlink may point anywhere (``photo.jpg.txt -> /proc/self/environ`` put the indexing process's
    environment into the library, searchable: issue 21), so the resolved target is what is checked; procfs
    files report size 0, so the read itself is bounded too."""
    try:
        target = candidate.resolve(strict=True)
        if not target.is_relative_to(inside):
            return None
        info = target.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size >= MAX_CAPTION_BYTES:
            return None
        with open(target, "rb") as handle:
            data = handle.read(MAX_CAPTION_BYTES)
    except (OSError, RuntimeError):  # missing, unreadable, or a symlink loop
        return None
    if len(data) >= MAX_CAPTION_BYTES:
        return None
    return data.decode("utf-8", errors="replace")


def read_captions(path: str | Path, root: str | Path | None = None) -> list[str] | None:
    """The sidecar captions of a media file: each non-blank line of the first sidecar with text is one
    caption, whitespace collapsed. None when there is no sidecar; [] when the sidecars are all blank.

    Only regular files under ``root`` (the watched folder; default: the media file's own folder), after
    symlinks are resolved, and under ``MAX_CAPTION_BYTES``, are read.

    The one convention of the library (which indexes the lines joined) and of the trainer's sidecar folders.
    """
    try:
        inside = Path(root if root is not None else Path(path).parent).resolve()
    except (OSError, RuntimeError):
        return None
    found = False
    for candidate in caption_files(path):
        text = _caption_text(candidate, inside)
        if text is None:
            continue
        found = True
        captions = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
        if captions:
            return captions
    return [] if found else None
