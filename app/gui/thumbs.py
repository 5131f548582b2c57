"""Thumbnails on disk: made off the GUI thread, cached under the user cache directory by content stamp."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import platformdirs
from PIL import Image, ImageOps

THUMB_SIZE = 256


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

    def get(self, path: str, timestamp: float | None = None) -> Path:
        target = self.cached(path, timestamp)
        if target.exists():
            return target
        image = frame_at(path, timestamp or 0.0) if timestamp is not None or is_video(path) else _open(path)
        image.thumbnail((self.size, self.size), Image.Resampling.LANCZOS)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.part")
        image.convert("RGB").save(partial, "JPEG", quality=85)
        os.replace(partial, target)  # atomic: a crash never leaves half a thumbnail behind
        return target


def is_video(path: str) -> bool:
    from app.library.media import VIDEO_EXTENSIONS

    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def _open(path: str) -> Image.Image:
    with Image.open(path) as image:
        image.draft("RGB", (THUMB_SIZE * 2, THUMB_SIZE * 2))  # JPEG: decode at reduced size
        image.seek(0)
        return ImageOps.exif_transpose(image).convert("RGB")


def frame_at(path: str, seconds: float) -> Image.Image:
    """The video frame at ``seconds`` (the start when seeking fails)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise OSError(f"cannot open video {path}")
        capture.set(cv2.CAP_PROP_POS_MSEC, max(0.0, seconds) * 1000.0)
        ok, frame = capture.read()
        if not ok:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = capture.read()
        if not ok or frame is None:
            raise OSError(f"no readable frame in {path}")
        return Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()


def format_time(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
