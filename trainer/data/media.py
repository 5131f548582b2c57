"""Training's view of media files: a stricter integrity check, and a video's frames at the times search
samples it (``cots_core.media.video_sample_times``), so training and evaluation see the frames the index embeds.

Kinds, extensions, decoding and ``MediaError`` are ``cots_core.media``'s, shared with the app. Every
function here raises ``MediaError`` whose ``reason`` is one of the ``REASON_*`` categories (the key when
bad rows are counted) and whose message reads ``reason: which file (why)``.
"""
from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from cots_core.media import (
    IMAGE_EXTENSIONS,
    REASON_MISSING,
    REASON_TRUNCATED,
    REASON_UNREADABLE,
    REASON_UNSUPPORTED,
    REASON_VIDEO_EMPTY,
    REASON_VIDEO_OPEN,
    VIDEO_EXTENSIONS,
    MediaError,
    frame_to_image,
    media_kind,
    open_video,
    read_image,
    video_sample_times,
)

__all__ = ["IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "SEARCH_MAX_FRAMES", "MediaError", "check_image", "check_media",
           "check_video", "evenly_spaced", "load_image", "media_kind", "read_video_frame", "read_video_frames",
           "sampled_frame_indices"]

# The most frames the app's indexer takes from a video (cots_core.media.read_video's default): evaluation takes
# as many, so it scores the embedding search holds; training caps them lower (--frames) for speed.
SEARCH_MAX_FRAMES = 32


def _error(reason: str, detail: str) -> MediaError:
    return MediaError(f"{reason}: {detail}", reason)


def _jpeg_is_truncated(head: bytes, tail: bytes) -> bool:
    # A complete JPEG ends with the EOI marker; some writers pad a few bytes after it.
    return head[:2] == b"\xff\xd8" and b"\xff\xd9" not in tail


def check_image(path: str | os.PathLike) -> None:
    """Cheap validity check (header, structure, and JPEG end marker) without decoding pixels."""
    path = Path(path)
    if not path.is_file():
        raise _error(REASON_MISSING, str(path))
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            f.seek(max(0, path.stat().st_size - 64))
            tail = f.read()
        if _jpeg_is_truncated(head, tail):
            raise _error(REASON_TRUNCATED, str(path))
        with Image.open(path) as image:
            image.verify()  # PNG: checks chunk CRCs, so truncation shows here
    except MediaError:
        raise
    except (UnidentifiedImageError, SyntaxError) as error:
        raise _error(REASON_UNREADABLE, f"{path} ({error})") from error
    except (OSError, ValueError) as error:
        reason = REASON_TRUNCATED if "truncat" in str(error).lower() else REASON_UNREADABLE
        raise _error(reason, f"{path} ({error})") from error


def load_image(source: str | os.PathLike | bytes, name: str = "") -> Image.Image:
    """Decode an image file (or its bytes) to an upright RGB PIL image at full resolution."""
    label = name or (str(source) if not isinstance(source, bytes) else "<bytes>")
    try:
        return read_image(source if isinstance(source, bytes) else Path(source), target_size=None).frames[0]
    except MediaError as error:
        raise _error(error.reason, f"{label} ({error})") from error


def _open_video(path: str | os.PathLike):
    if not Path(path).is_file():
        raise _error(REASON_MISSING, str(path))
    try:
        return open_video(path)
    except MediaError as error:
        raise _error(REASON_VIDEO_OPEN, str(path)) from error


def evenly_spaced(count: int, n: int) -> list[int]:
    """n frame indices spread evenly over [0, count), centred in their segments."""
    if count <= 0:
        return []
    n = max(1, min(n, count))
    return [min(count - 1, int((i + 0.5) * count / n)) for i in range(n)]


def sampled_frame_indices(count: int, fps: float, n: int) -> list[int]:
    """The frames search embeds (one every 2 s from the start, ``video_sample_times``), at most ``n``: past
    that, ``n`` spread evenly over the video, as the index does past its own cap. Evenly spaced when the
    frame rate is unknown."""
    if count <= 0:
        return []
    if fps <= 0:
        return evenly_spaced(count, n)
    return [min(count - 1, int(round(t * fps))) for t in video_sample_times(count / fps, max_frames=max(1, n))]


def read_video_frames(path: str | os.PathLike, n: int = 8) -> list[Image.Image]:
    """At most N frames of a video, at the times search samples it (``sampled_frame_indices``), as RGB PIL."""
    import cv2

    capture = _open_video(path)
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        frames: list[Image.Image] = []
        if count > 0:
            for index in sampled_frame_indices(count, fps, n):
                capture.set(cv2.CAP_PROP_POS_FRAMES, index)
                ok, frame = capture.read()
                if ok:
                    frames.append(frame_to_image(frame))
        if not frames:  # containers without a reliable frame count: decode sequentially
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            every = []
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                every.append(frame)
            frames = [frame_to_image(every[i]) for i in sampled_frame_indices(len(every), fps, n)]
    finally:
        capture.release()
    if not frames:
        raise _error(REASON_VIDEO_EMPTY, str(path))
    return frames


def read_video_frame(path: str | os.PathLike, which: int, n: int = 8) -> Image.Image:
    """One of the frames ``read_video_frames`` gives (``which`` modulo their number), without decoding the others."""
    import cv2

    capture = _open_video(path)
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        indices = sampled_frame_indices(count, float(capture.get(cv2.CAP_PROP_FPS) or 0.0), n)
        if indices:
            capture.set(cv2.CAP_PROP_POS_FRAMES, indices[which % len(indices)])
            ok, frame = capture.read()
            if ok:
                return frame_to_image(frame)
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
        raise _error(REASON_VIDEO_EMPTY, str(path))


def check_media(path: str | os.PathLike, kind: str) -> None:
    """Validate a file of the given kind, raising ``MediaError``."""
    if kind == "video":
        check_video(path)
    elif kind == "image":
        check_image(path)
    else:
        raise _error(REASON_UNSUPPORTED, str(path))
