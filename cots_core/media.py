"""Media files as the app and the trainer read them: kinds by extension, decoding, sidecar captions.

The one entry point for both packages (they never import each other): images through Pillow
(cots_core.image_files), videos through OpenCV (cots_core.video_files), one extension list and one
``MediaError`` (cots_core.media_checks), one caption convention (cots_core.captions). A kind of file is one
``MediaKind`` entry in ``MEDIA_KINDS`` (its extensions, a cheap check, a reader), so a new kind (audio, RAW)
is a new entry, not a new branch in every caller.

Every reader raises ``MediaError`` with a short message for anything it cannot read (the library
records it on the file's row) and a ``reason`` category (the trainer counts skipped files by it).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from cots_core.captions import read_captions
from cots_core.image_files import exif_capture_time, image_size, read_image, verify_image
from cots_core.media_checks import (
    DEFAULT_MAX_PIXELS,
    HASH_CHUNK,
    IMAGE_EXTENSIONS,
    MAX_ASPECT_RATIO,
    MAX_IMAGE_BYTES,
    REASON_MISSING,
    REASON_TRUNCATED,
    REASON_UNREADABLE,
    REASON_UNSUPPORTED,
    REASON_VIDEO_EMPTY,
    REASON_VIDEO_OPEN,
    VIDEO_EXTENSIONS,
    DecodedMedia,
    MediaError,
    check_image_file,
    check_nonempty_file,
    check_video_file,
    content_hash,
    require_regular_file,
)
from cots_core.video_files import (
    open_video,
    read_video,
    verify_video,
    video_frame_at,
    video_frame_indices,
    video_frames_at,
    video_sample_times,
    video_samples,
)

# What callers import from here; the parts live in media_checks, image_files, video_files and captions.
__all__ = [
    "DEFAULT_MAX_PIXELS", "HASH_CHUNK", "IMAGE_EXTENSIONS", "KIND_BY_EXTENSION", "MAX_ASPECT_RATIO",
    "MAX_IMAGE_BYTES", "MEDIA_KINDS", "REASON_MISSING", "REASON_TRUNCATED", "REASON_UNREADABLE",
    "REASON_UNSUPPORTED", "REASON_VIDEO_EMPTY", "REASON_VIDEO_OPEN", "VIDEO_EXTENSIONS", "DecodedMedia",
    "MediaError", "MediaKind", "ReadOptions", "check_image_file", "check_nonempty_file", "check_video_file",
    "content_hash", "exif_capture_time", "image_size", "media_kind", "open_video", "read_captions", "read_image",
    "read_media", "read_video", "register_kind", "require_regular_file", "verify_image", "verify_media",
    "verify_video", "video_frame_at", "video_frame_indices", "video_frames_at", "video_sample_times", "video_samples",
]


@dataclass(frozen=True)
class ReadOptions:
    """How files are decoded: the model's input size and the limits of each kind."""

    target_size: int | None = 224
    max_pixels: int = DEFAULT_MAX_PIXELS
    every_s: float = 2.0  # video: one frame every so many seconds
    max_frames: int = 32  # video: at most so many frames



@dataclass(frozen=True)
class MediaKind:
    """One kind of media file: the extensions that name it, a cheap check run before the file is hashed
    (reads a few bytes at most, returns the size), and the reader that decodes it."""

    name: str
    plural: str  # for people: "images"
    extensions: frozenset[str]
    check: Callable[[str | Path], int]
    read: Callable[[str | Path, ReadOptions], DecodedMedia]
    # Whether a file would read, cheaper than reading it (training checks a whole dataset before it starts);
    # raises the MediaError ``read`` would. None: ``verify_media`` reads the file.
    verify: Callable[[str | Path, ReadOptions], None] | None = None


MEDIA_KINDS: dict[str, MediaKind] = {
    kind.name: kind for kind in (
        MediaKind("image", "images", frozenset(IMAGE_EXTENSIONS), check_image_file,
                  lambda path, o: read_image(path, o.target_size, o.max_pixels),
                  lambda path, o: verify_image(path, o.max_pixels)),
        MediaKind("video", "videos", frozenset(VIDEO_EXTENSIONS), check_video_file,
                  lambda path, o: read_video(path, o.target_size or 224, o.every_s, o.max_frames,
                                             max_pixels=o.max_pixels),
                  lambda path, o: verify_video(path, o.max_pixels)),
    )
}
KIND_BY_EXTENSION = {ext: kind.name for kind in MEDIA_KINDS.values() for ext in kind.extensions}


def register_kind(kind: MediaKind) -> None:
    """Add (or replace) a kind of media: the scanner, the indexer, search filters, the CLI's ``--kind`` and the
    GUI's kind menu all read it from here."""
    MEDIA_KINDS[kind.name] = kind
    KIND_BY_EXTENSION.update({ext: kind.name for ext in kind.extensions})


def media_kind(path: str | Path) -> str | None:
    """The name of the kind of file ``path`` is (``image``, ``video``), or None for one nobody reads."""
    return KIND_BY_EXTENSION.get(os.path.splitext(str(path))[1].lower())


def read_media(path: str | Path, options: ReadOptions | None = None, **overrides) -> DecodedMedia:
    """Decode any supported file with the reader of its kind; ``overrides`` change single options."""
    kind = media_kind(path)
    if kind is None:
        ext = os.path.splitext(str(path))[1].lower()
        raise MediaError(f"unsupported file type {ext!r}", REASON_UNSUPPORTED)
    options = replace(options or ReadOptions(), **overrides)
    return MEDIA_KINDS[kind].read(path, options)


def verify_media(path: str | Path, kind: str | None = None, options: ReadOptions | None = None) -> None:
    """Raise the MediaError reading ``path`` would, as cheaply as its kind allows: the kind's ``check``, then
    its ``verify`` (an image's header, limits and structure; a video's first frame), else a full read.
    ``kind``: the kind's name when the caller knows it (default: by extension)."""
    name = kind or media_kind(path)
    if name not in MEDIA_KINDS:
        ext = os.path.splitext(str(path))[1].lower()
        raise MediaError(f"unsupported file type {ext!r}", REASON_UNSUPPORTED)
    media = MEDIA_KINDS[name]
    options = options or ReadOptions()
    media.check(path)
    (media.verify or media.read)(path, options)
