"""Training's view of media files: ``cots_core.media``'s decoder and errors, with the file named in each error.

There is one decoder for the app and the trainer: kinds (``MEDIA_KINDS``), the integrity check
(``verify_media``), images (``read_image``) and video frames (``read_video``, at the times search samples a
video, so training and evaluation see the frames the index embeds) are all ``cots_core.media``'s, with its
size limits and its ``MediaError`` reasons. Every function here raises ``MediaError`` whose ``reason`` is one
of those ``REASON_*`` categories (the key when bad rows are counted) and whose message reads
``reason: which file (why)``.
"""
from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from cots_core.media import (
    IMAGE_EXTENSIONS,
    REASON_MISSING,
    VIDEO_EXTENSIONS,
    MediaError,
    media_kind,
    read_image,
    read_video,
    verify_media,
)

__all__ = ["IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "SEARCH_MAX_FRAMES", "MediaError", "check_media", "load_image",
           "media_kind", "read_video_frame", "read_video_frames"]

# The most frames the app's indexer takes from a video (cots_core.media.read_video's default): evaluation takes
# as many, so it scores the embedding search holds; training caps them lower (--frames) for speed.
SEARCH_MAX_FRAMES = 32


def _named(error: MediaError, label: str) -> MediaError:
    """The same error, its message naming the file: ``reason: file (why)``."""
    return MediaError(f"{error.reason}: {label} ({error})", error.reason)


def _missing(path: str | os.PathLike) -> MediaError | None:
    # A manifest row naming no file: "missing file: path", not the reader's "vanished before it could be read"
    return None if os.path.lexists(path) else MediaError(f"{REASON_MISSING}: {path}", REASON_MISSING)


def check_media(path: str | os.PathLike, kind: str) -> None:
    """Validate a file of the given kind (``cots_core.media.verify_media``: header, limits and structure of
    an image, the first frame of a video) without decoding it whole, raising ``MediaError``."""
    if error := _missing(path):
        raise error
    try:
        verify_media(path, kind)
    except MediaError as error:
        raise _named(error, str(path)) from error


def load_image(source: str | os.PathLike | bytes, name: str = "") -> Image.Image:
    """Decode an image file (or its bytes) to an upright RGB PIL image at full resolution."""
    label = name or (str(source) if not isinstance(source, bytes) else "<bytes>")
    try:
        return read_image(source if isinstance(source, bytes) else Path(source), target_size=None).frames[0]
    except MediaError as error:
        raise _named(error, label) from error


def read_video_frames(path: str | os.PathLike, n: int = 8, pick: int | None = None) -> list[Image.Image]:
    """At most N frames of a video at full resolution, at the times search samples it (one every 2 s from the
    start, spread evenly past N: ``cots_core.media.video_samples``), as RGB PIL. A container that gives no
    frame count is decoded through and sampled all the same. ``pick``: only that one of them (modulo)."""
    if error := _missing(path):
        raise error
    try:
        return read_video(path, target_size=None, max_frames=n, pick=pick, sample_unknown_length=True).frames
    except MediaError as error:
        raise _named(error, str(path)) from error


def read_video_frame(path: str | os.PathLike, which: int, n: int = 8) -> Image.Image:
    """One of the frames ``read_video_frames`` gives (``which`` modulo their number), without decoding the others."""
    return read_video_frames(path, n, pick=which)[0]
