"""What every reader of media files shares: ``MediaError`` and its reasons, the extensions and size limits,
the checks on a file before a byte of it is decoded, and its content hash (cots_core.media is the entry point)."""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

# Reasons: the categories skipped files are counted by (``MediaError.reason``).
REASON_MISSING = "missing file"
REASON_UNREADABLE = "unreadable image"
REASON_TRUNCATED = "truncated image"
REASON_VIDEO_OPEN = "video does not open"
REASON_VIDEO_EMPTY = "video has no frames"
REASON_UNSUPPORTED = "unsupported file type"


class MediaError(Exception):
    """One file could not be read. ``str(error)`` says why; ``reason`` is its short category."""

    def __init__(self, message: str, reason: str = REASON_UNREADABLE):
        super().__init__(message)
        self.reason = reason


IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
VIDEO_EXTENSIONS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"}
DEFAULT_MAX_PIXELS = 100_000_000  # decompression-bomb guard: 100 MP is larger than any camera photo
# Longest side over shortest side: a panorama is 10:1 at most; a 50000x1 "image" (230 bytes as a PNG) is no
# photo, and the model's resize to a 224 short side would make it 11.2M x 224 pixels (7.5 GB; issue 21).
MAX_ASPECT_RATIO = 100
# Checked before a byte is read: a 100 MP 16-bit RGB TIFF is 600 MB, camera photos are a few tens of MB.
MAX_IMAGE_BYTES = 1 << 30
HASH_CHUNK = 1 << 20
# The first bytes of every format in IMAGE_EXTENSIONS (a file named .jpg may be any of them).
IMAGE_SIGNATURES = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM",
    b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+",  # TIFF, BigTIFF
)

try:  # HEIC/AVIF (iPhone photos) when the optional pillow-heif wheel is installed
    import pillow_heif

    pillow_heif.register_heif_opener()
    IMAGE_EXTENSIONS |= {".heic", ".heif"}
    if hasattr(pillow_heif, "register_avif_opener"):
        pillow_heif.register_avif_opener()
        IMAGE_EXTENSIONS.add(".avif")
except ImportError:
    pass
try:
    from PIL import features

    if features.check("avif"):  # Pillow >= 11.2 reads AVIF itself
        IMAGE_EXTENSIONS.add(".avif")
except Exception:  # noqa: BLE001 - a feature probe must never break import
    pass


@dataclass
class DecodedMedia:
    """What a reader returns: images ready for the model's ``preprocess`` plus metadata."""

    kind: str  # image | video
    frames: list[Image.Image]  # one for an image; the sampled frames of a video
    width: int
    height: int
    times: list[float] = field(default_factory=list)  # video: start second of each frame's segment
    duration: float | None = None
    captured_at: float | None = None


def require_regular_file(path: str | Path) -> int:
    """The size of ``path``; MediaError unless it is a regular file (a FIFO would block the read forever)."""
    try:
        info = os.stat(path)
    except FileNotFoundError as error:
        raise MediaError("file vanished before it could be read", REASON_MISSING) from error
    except OSError as error:
        raise MediaError(f"file cannot be read: {error.strerror or error}", REASON_MISSING) from error
    if not stat.S_ISREG(info.st_mode):
        raise MediaError("not a regular file (a pipe, socket or device)")
    return info.st_size


def looks_like_image(head: bytes) -> bool:
    """Whether the first bytes of a file start one of the image formats the library reads."""
    if head.startswith(IMAGE_SIGNATURES):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    return head[4:8] == b"ftyp"  # HEIC, HEIF, AVIF (ISO media)


def check_image_file(path: str | Path) -> int:
    """Size and header checks before a file is decoded: regular, not empty, under ``MAX_IMAGE_BYTES``, and
    starting like an image. Reads 16 bytes at most; returns the size."""
    size = require_regular_file(path)
    if size == 0:
        raise MediaError("empty file (0 bytes)")
    if size > MAX_IMAGE_BYTES:
        raise MediaError(f"file too large for an image: {size / 2**20:,.0f} MiB is over the limit of "
                         f"{MAX_IMAGE_BYTES / 2**20:,.0f} MiB")
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as error:
        raise MediaError(f"file cannot be read: {error.strerror or error}") from error
    if not looks_like_image(head):
        raise MediaError("not an image file (its first bytes match no image format)")
    return size


def content_hash_bytes(size: int, head: bytes, tail: bytes) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(size.to_bytes(8, "little"))
    digest.update(head)
    digest.update(tail)
    return digest.hexdigest()


def content_hash(path: str | Path, data: bytes | None = None) -> str:
    """A fast content hash: size plus the first and last MiB (the whole file when it is small).

    Like rclip's, it confirms a (size, mtime) change and recognises moved files without reading
    whole videos. ``data`` (the file's bytes, already read) avoids a second read.
    """
    if data is not None:
        size = len(data)
        head = data[:HASH_CHUNK]
        tail = data[max(HASH_CHUNK, size - HASH_CHUNK):]
        return content_hash_bytes(size, head, tail)
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        head = handle.read(HASH_CHUNK)
        tail = b""
        if size > HASH_CHUNK:
            handle.seek(max(HASH_CHUNK, size - HASH_CHUNK))
            tail = handle.read(HASH_CHUNK)  # bounded even if the file grows meanwhile
    return content_hash_bytes(size, head, tail)



def check_dimensions(width: int, height: int, max_pixels: int, what: str = "image") -> None:
    """The limits on an image's (or a video frame's: ``what``) size, read from its header before any pixel
    is decoded."""
    if width * height > max_pixels:
        raise MediaError(
            f"{what} too large: {width}x{height} pixels is over the limit of {max_pixels:,} "
            "(possible decompression bomb)"
        )
    if width <= 0 or height <= 0:
        raise MediaError(f"{what} has no pixels")
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise MediaError(f"{what} too elongated: {width}x{height} pixels, over {MAX_ASPECT_RATIO}:1 "
                         "(not a photo; the model could not scale it)")



def check_nonempty_file(path: str | Path, reason: str = REASON_MISSING) -> int:
    """A regular, non-empty file; returns its size. ``reason``: an empty file's category."""
    size = require_regular_file(path)
    if size == 0:
        raise MediaError("empty file (0 bytes)", reason)
    return size


def check_video_file(path: str | Path) -> int:
    """A regular, non-empty file (an empty video is one with no frames, as ``read_video`` says)."""
    return check_nonempty_file(path, REASON_VIDEO_EMPTY)

