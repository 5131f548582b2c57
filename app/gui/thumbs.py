"""Thumbnails on disk: made off the GUI thread, cached under the user cache directory by content stamp.

Files are decoded by ``cots_core.media`` (the same guards as indexing: size, header, pixel count). What the cache
folder holds is used only when it is a plain file of a sane size; anything else (a FIFO there blocked a
thumbnail worker on its read, and closing the app with it) is deleted and made again (issue 30)."""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import platformdirs
from PIL import Image

from cots_core.folder_safety import read_regular_file, remove_damaged
from cots_core.media import media_kind, read_media, video_frame_at

THUMB_SIZE = 256
MAX_THUMB_BYTES = 16 << 20  # a 1024 px preview JPEG at quality 85 is a few hundred KB


def default_cache_dir() -> Path:
    """``<user cache dir>/cots/thumbnails``; ``COTS_CACHE_DIR`` overrides it (tests, portable installs)."""
    override = os.environ.get("COTS_CACHE_DIR")
    base = Path(override) if override else Path(platformdirs.user_cache_dir("cots", appauthor=False))
    return base / "thumbnails"


class ThumbnailCache:
    """``get(path, timestamp)`` returns a JPEG thumbnail's path, making it first when needed (blocking)."""

    def __init__(self, folder: str | Path | None = None, size: int = THUMB_SIZE):
        self.folder = Path(folder) if folder else default_cache_dir()
        self.size = size

    def key(self, path: str, timestamp: float | None = None) -> str:
        try:
            info = os.stat(path)
            stamp = f"{info.st_size}:{info.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        text = f"{path}|{stamp}|{timestamp if timestamp is not None else ''}|{self.size}"
        return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()

    def cached(self, path: str, timestamp: float | None = None) -> Path:
        key = self.key(path, timestamp)
        return self.folder / key[:2] / f"{key}.jpg"

    @staticmethod
    def _usable(target: Path) -> bool:
        """Whether ``target`` is a thumbnail this cache wrote: a regular file (not a link, FIFO or device),
        not empty, not huge. Anything else there is deleted. Checked without opening it."""
        try:
            info = os.lstat(target)
        except OSError:
            return False
        if stat.S_ISREG(info.st_mode) and 0 < info.st_size <= MAX_THUMB_BYTES:
            return True
        remove_damaged(target)
        return False

    def discard(self, path: str, timestamp: float | None = None) -> None:
        """Delete the cached thumbnail of ``path`` (it did not decode): the next ``get`` makes it again."""
        remove_damaged(self.cached(path, timestamp))

    def read(self, path: str, timestamp: float | None = None) -> bytes:
        """The thumbnail's JPEG bytes (made first when needed). Never blocks on what the cache holds: read
        only as a regular file, without following a link (``read_regular_file``)."""
        return read_regular_file(self.get(path, timestamp), MAX_THUMB_BYTES)

    def get(self, path: str, timestamp: float | None = None) -> Path:
        target = self.cached(path, timestamp)
        if self._usable(target):
            return target
        if timestamp is not None or media_kind(path) == "video":
            image = video_frame_at(path, timestamp or 0.0)
        else:
            image = read_media(path, target_size=self.size).frames[0]  # any kind, by its registered reader
        image.thumbnail((self.size, self.size), Image.Resampling.LANCZOS)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.part")
        remove_damaged(partial)  # written anew: a FIFO there would block the write
        image.convert("RGB").save(partial, "JPEG", quality=85)
        os.replace(partial, target)  # atomic: a crash never leaves half a thumbnail behind
        return target
