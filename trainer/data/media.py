"""Reading images and videos the way people actually have them: any mode, EXIF-rotated, some broken.

Every reader here raises ``MediaError`` with a short reason (one of the ``REASON_*`` strings, used as
the key when bad rows are counted) instead of whatever PIL or OpenCV happened to raise.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from cots_core.images import to_rgb

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
VIDEO_EXTS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"})

REASON_MISSING = "missing file"
REASON_UNREADABLE = "unreadable image"
REASON_TRUNCATED = "truncated image"
REASON_VIDEO_OPEN = "video does not open"
REASON_VIDEO_EMPTY = "video has no frames"
REASON_UNSUPPORTED = "unsupported file type"


class MediaError(Exception):
    """A file that cannot be used; ``reason`` is a short category, ``str(error)`` says which file and why."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def media_kind(path: str | os.PathLike) -> str | None:
    """'image', 'video' or None, by file extension."""
    ext = Path(path).suffix.lower()
    if ext in IMAGE_EXTS:
        return "image"
    if ext in VIDEO_EXTS:
        return "video"
    return None


def _jpeg_is_truncated(head: bytes, tail: bytes) -> bool:
    # A complete JPEG ends with the EOI marker; some writers pad a few bytes after it.
    return head[:2] == b"\xff\xd8" and b"\xff\xd9" not in tail


def check_image(path: str | os.PathLike) -> None:
    """Cheap validity check (header, structure, and JPEG end marker) without decoding pixels."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(REASON_MISSING, str(path))
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            f.seek(max(0, path.stat().st_size - 64))
            tail = f.read()
        if _jpeg_is_truncated(head, tail):
            raise MediaError(REASON_TRUNCATED, str(path))
        with Image.open(path) as image:
            image.verify()  # PNG: checks chunk CRCs, so truncation shows here
    except MediaError:
        raise
    except (UnidentifiedImageError, SyntaxError) as error:
        raise MediaError(REASON_UNREADABLE, f"{path} ({error})") from error
    except (OSError, ValueError) as error:
        reason = REASON_TRUNCATED if "truncat" in str(error).lower() else REASON_UNREADABLE
        raise MediaError(reason, f"{path} ({error})") from error


def load_image(source: str | os.PathLike | bytes, name: str = "") -> Image.Image:
    """Decode an image file (or its bytes) to an upright RGB PIL image."""
    label = name or (str(source) if not isinstance(source, bytes) else "<bytes>")
    if not isinstance(source, bytes) and not Path(source).is_file():
        raise MediaError(REASON_MISSING, label)
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            image.load()
            return to_rgb(ImageOps.exif_transpose(image))
    except (UnidentifiedImageError, SyntaxError) as error:
        raise MediaError(REASON_UNREADABLE, f"{label} ({error})") from error
    except (OSError, ValueError) as error:
        reason = REASON_TRUNCATED if "truncat" in str(error).lower() else REASON_UNREADABLE
        raise MediaError(reason, f"{label} ({error})") from error


def _open_video(path: str | os.PathLike):
    import cv2

    if not Path(path).is_file():
        raise MediaError(REASON_MISSING, str(path))
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise MediaError(REASON_VIDEO_OPEN, str(path))
    return capture


def _frame_to_pil(frame) -> Image.Image:
    import cv2

    return Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))


def evenly_spaced(count: int, n: int) -> list[int]:
    """n frame indices spread evenly over [0, count), centred in their segments."""
    if count <= 0:
        return []
    n = max(1, min(n, count))
    return [min(count - 1, int((i + 0.5) * count / n)) for i in range(n)]


def read_video_frames(path: str | os.PathLike, n: int = 8) -> list[Image.Image]:
    """N evenly spaced frames of a video as RGB PIL images (fewer if the video is shorter)."""
    import cv2

    capture = _open_video(path)
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        frames: list[Image.Image] = []
        if count > 0:
            for index in evenly_spaced(count, n):
                capture.set(cv2.CAP_PROP_POS_FRAMES, index)
                ok, frame = capture.read()
                if ok:
                    frames.append(_frame_to_pil(frame))
        if not frames:  # containers without a reliable frame count: decode sequentially
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            every = []
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                every.append(frame)
            frames = [_frame_to_pil(every[i]) for i in evenly_spaced(len(every), n)]
    finally:
        capture.release()
    if not frames:
        raise MediaError(REASON_VIDEO_EMPTY, str(path))
    return frames


def read_video_frame(path: str | os.PathLike, which: int, n: int = 8) -> Image.Image:
    """One of the N evenly spaced frames (``which`` in [0, N)), without decoding the others."""
    import cv2

    capture = _open_video(path)
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        indices = evenly_spaced(count, n)
        if indices:
            capture.set(cv2.CAP_PROP_POS_FRAMES, indices[which % len(indices)])
            ok, frame = capture.read()
            if ok:
                return _frame_to_pil(frame)
    finally:
        capture.release()
    frames = read_video_frames(path, n)
    return frames[which % len(frames)]


def check_video(path: str | os.PathLike) -> None:
    """The video opens and yields at least one frame."""
    capture = _open_video(path)
    try:
        ok, _ = capture.read()
    finally:
        capture.release()
    if not ok:
        raise MediaError(REASON_VIDEO_EMPTY, str(path))


def check_media(path: str | os.PathLike, kind: str) -> None:
    """Validate a file of the given kind, raising ``MediaError``."""
    if kind == "video":
        check_video(path)
    elif kind == "image":
        check_image(path)
    else:
        raise MediaError(REASON_UNSUPPORTED, str(path))
