"""Media files as the app and the trainer read them: kinds by extension, decoding, sidecar captions.

One module for both packages (they never import each other): images through Pillow, videos through
OpenCV, one extension list, one caption convention (``read_captions``) and one ``MediaError``. A kind of
file is one ``MediaKind`` entry in ``MEDIA_KINDS`` (its extensions, a cheap check, a reader), so a new
kind (audio, RAW) is a new entry, not a new branch in every caller.

Every reader raises ``MediaError`` with a short message for anything it cannot read (the library
records it on the file's row) and a ``reason`` category (the trainer counts skipped files by it).
"""
from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import stat
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from PIL import Image, ImageOps

from cots_core.images import to_rgb

log = logging.getLogger(__name__)

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
HEADER_BUDGET = 16 << 20  # bytes Pillow may read from a large file before it has found the image header
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


# -- images -------------------------------------------------------------------------------------

_EXIF_DATETIME_ORIGINAL = 36867
_EXIF_DATETIME = 306
_EXIF_ORIENTATION = 0x0112


def exif_capture_time(exif: Image.Exif) -> float | None:
    """When the photo was taken (EXIF DateTimeOriginal, else DateTime) in epoch seconds, or None."""
    try:
        value = exif.get_ifd(0x8769).get(_EXIF_DATETIME_ORIGINAL) or exif.get(_EXIF_DATETIME)
        if not value:
            return None
        return datetime.strptime(str(value).strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S").timestamp()
    except Exception:  # noqa: BLE001 - broken EXIF is common and never fatal
        return None


class _HeaderBudget:
    """A large file as Pillow sees it while it looks for the image header: at most ``HEADER_BUDGET`` bytes.

    Pillow's JPEG reader skips junk one byte at a time, so 900 MB of zeros after a JPEG signature cost
    minutes of CPU; real headers (EXIF, ICC, XMP) fit in a few MB.
    """

    def __init__(self, handle, budget: int | None = None):
        self._handle = handle
        self.budget = HEADER_BUDGET if budget is None else budget
        self._read = 0

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        if self.budget is not None:
            self._read += len(data)
            if self._read > self.budget:
                raise MediaError(f"no image header in the first {self.budget // 2**20} MiB "
                                 "(damaged, or not an image)")
        return data

    def __getattr__(self, name: str):
        return getattr(self._handle, name)


def _exif_orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(_EXIF_ORIENTATION) or 1)
    except Exception:  # noqa: BLE001 - broken EXIF is common and never fatal
        return 1


# What Pillow raises for a file it cannot decode (``_decode_error`` turns each into a MediaError).
_PILLOW_ERRORS = (FileNotFoundError, Image.DecompressionBombError, Image.DecompressionBombWarning,
                  Image.UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError)


def _decode_error(error: Exception) -> MediaError:
    if isinstance(error, FileNotFoundError):
        return MediaError("file vanished before it could be read", REASON_MISSING)
    if isinstance(error, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return MediaError(f"image too large (possible decompression bomb): {error}")
    if isinstance(error, Image.UnidentifiedImageError):
        return MediaError("not an image file, or a format Pillow cannot read")
    reason = REASON_TRUNCATED if "truncat" in str(error).lower() else REASON_UNREADABLE
    return MediaError(f"corrupt or truncated image: {error}", reason)


def _check_dimensions(width: int, height: int, max_pixels: int, what: str = "image") -> None:
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


def _open_image(stream, max_pixels: int) -> Image.Image:
    """``Image.open`` with the header budget lifted once the header is parsed, and the size limits checked.
    Call inside ``warnings.catch_warnings`` with DecompressionBombWarning as an error."""
    image = Image.open(stream)
    if isinstance(stream, _HeaderBudget):
        stream.budget = None  # the header is parsed: decoding reads what the image needs
    _check_dimensions(*image.size, max_pixels)
    return image


def read_image(
    source: str | Path | bytes, target_size: int | None = 224, max_pixels: int = DEFAULT_MAX_PIXELS,
    *, shrink: bool = True,
) -> DecodedMedia:
    """Decode an image at (roughly) the size the model needs, EXIF orientation applied, in RGB.

    ``target_size`` None keeps the full resolution (training crops from it). With a size, a JPEG is decoded
    at the smallest 1/2, 1/4 or 1/8 scale whose sides are still twice that, and (``shrink``) the result is
    resized to a short side of twice that; ``shrink`` False leaves the resizing to the caller (the face
    detector fits the long side).

    ``width`` and ``height`` are those of the image as shown (after the EXIF rotation). A path is checked
    (``check_image_file``) before it is opened; Pillow then reads only what decoding needs.
    """
    size = len(source) if isinstance(source, bytes) else check_image_file(source)
    handle = None
    try:
        if isinstance(source, bytes):
            stream = io.BytesIO(source)
        else:
            handle = open(source, "rb")  # noqa: SIM115 - closed in the finally below, after decoding
            stream = _HeaderBudget(handle) if size > HEADER_BUDGET else handle
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = _open_image(stream, max_pixels)
            width, height = image.size
            captured_at = exif_capture_time(image.getexif())
            if _exif_orientation(image) in (5, 6, 7, 8):  # rotated a quarter turn: shown as height x width
                width, height = height, width
            if image.format == "JPEG" and target_size:
                # DCT scaling: decode at 1/2, 1/4 or 1/8 size, never below what the model needs.
                image.draft("RGB", (target_size * 2, target_size * 2))
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)  # GIF/WebP animations and multi-page TIFFs: the first frame
            image.load()
            image = ImageOps.exif_transpose(image)
            if image.mode != "RGB":
                image = to_rgb(image)
    except MediaError:
        raise
    except _PILLOW_ERRORS as error:
        raise _decode_error(error) from error
    finally:
        if handle is not None:
            handle.close()
    # Keep memory small while batches queue up: the model resizes to target_size anyway.
    if target_size and shrink:
        image = _shrink(image, target_size)
    return DecodedMedia("image", [image], width, height, captured_at=captured_at)


def image_size(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(width, height) as stored, read from the header alone (no pixel is decoded), under ``read_image``'s
    checks and limits: a regular file that starts like an image, a header within ``HEADER_BUDGET``, the size
    limits. MediaError otherwise."""
    size = check_image_file(path)
    try:
        with open(path, "rb") as handle, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _open_image(_HeaderBudget(handle) if size > HEADER_BUDGET else handle, max_pixels).size
    except MediaError:
        raise
    except _PILLOW_ERRORS as error:
        raise _decode_error(error) from error


def verify_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """``read_image``'s checks without decoding the pixels (training checks a whole dataset before it
    starts): size and header, the size limits, a JPEG's end marker, Pillow's ``verify`` (a PNG's checksums).
    Raises the MediaError ``read_image`` would, or one for a damage only decoding would otherwise find."""
    size = check_image_file(path)
    try:
        with open(path, "rb") as handle, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = _open_image(_HeaderBudget(handle) if size > HEADER_BUDGET else handle, max_pixels)
            is_jpeg = image.format == "JPEG"
            image.verify()
            if is_jpeg:  # a complete JPEG ends with the EOI marker; some writers pad a few bytes after it
                handle.seek(max(0, size - 64))
                if b"\xff\xd9" not in handle.read():
                    raise MediaError("corrupt or truncated image: no JPEG end marker (the file was cut short)",
                                     REASON_TRUNCATED)
    except MediaError:
        raise
    except _PILLOW_ERRORS as error:
        raise _decode_error(error) from error


def _shrink(image: Image.Image, target_size: int) -> Image.Image:
    """Keep memory small while batches queue up: the model resizes to ``target_size`` anyway."""
    if min(image.size) <= target_size * 2:
        return image
    scale = target_size * 2 / min(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                        Image.Resampling.BILINEAR)


# -- videos -------------------------------------------------------------------------------------


_VIDEO_FRAME = "video frame"


def open_video(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS):
    """An opened ``cv2.VideoCapture`` (the caller releases it); MediaError when OpenCV cannot open it, or
    when the frame size the container declares is over ``max_pixels`` (the image limit: a 1.7 MB AVI of
    12000x12000 frames cost 1.1 GB per file while its frames were decoded whole; issue 30). Checked before
    a frame is read; ``_checked_frame`` bounds a container whose header says less than its frames hold."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise MediaError("video could not be opened (corrupt, or a codec OpenCV lacks)", REASON_VIDEO_OPEN)
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    if width > 0 and height > 0:  # 0: the container does not say; each frame is checked as it comes
        try:
            _check_dimensions(width, height, max_pixels, _VIDEO_FRAME)
        except MediaError:
            capture.release()
            raise
    return capture


def _checked_frame(frame, max_pixels: int):
    """A decoded BGR frame within the limits (MediaError otherwise), so at most one oversized frame is ever
    held, even when the container's header understates the frame size."""
    height, width = frame.shape[:2]
    _check_dimensions(width, height, max_pixels, _VIDEO_FRAME)
    return frame


def frame_to_image(frame) -> Image.Image:
    """An OpenCV BGR frame as an RGB PIL image."""
    import cv2

    return Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))


def video_frame_at(path: str | Path, seconds: float, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The video frame at ``seconds`` (the first frame when seeking fails); frames over ``max_pixels`` are
    refused, as ``read_video`` refuses them."""
    import cv2

    if require_regular_file(path) == 0:
        raise MediaError("empty file (0 bytes)", REASON_VIDEO_EMPTY)
    capture = open_video(path, max_pixels)
    try:
        capture.set(cv2.CAP_PROP_POS_MSEC, max(0.0, seconds) * 1000.0)
        ok, frame = capture.read()
        if not ok:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = capture.read()
        if not ok or frame is None:
            raise MediaError("video has no readable frames", REASON_VIDEO_EMPTY)
        return frame_to_image(_checked_frame(frame, max_pixels))
    finally:
        capture.release()


def video_sample_times(duration: float, every_s: float = 2.0, max_frames: int = 32) -> list[float]:
    """One frame every ``every_s`` seconds, spread evenly over the video when that exceeds ``max_frames``."""
    if duration <= 0:
        return [0.0]
    count = max(1, math.ceil(duration / every_s))
    if count <= max_frames:
        return [i * every_s for i in range(count)]
    step = duration / max_frames
    return [i * step for i in range(max_frames)]


def evenly_spaced(count: int, n: int) -> list[int]:
    """n frame indices spread evenly over [0, count), centred in their segments."""
    if count <= 0:
        return []
    n = max(1, min(n, count))
    return [min(count - 1, int((i + 0.5) * count / n)) for i in range(n)]


def video_samples(count: int, fps: float, every_s: float = 2.0, max_frames: int = 32) -> list[tuple[int, float]]:
    """(frame index, second) of each frame ``read_video`` takes from a video of ``count`` frames at ``fps``:
    those at ``video_sample_times`` (the last index clipped to the video), or ``max_frames`` evenly spaced
    (second 0: unknown) when the frame rate is unknown."""
    if count <= 0:
        return []
    if fps <= 0:
        return [(index, 0.0) for index in evenly_spaced(count, max_frames)]
    return [(min(count - 1, int(round(t * fps))), float(t))
            for t in video_sample_times(count / fps, every_s, max(1, max_frames))]


def video_frame_indices(count: int, fps: float, every_s: float = 2.0, max_frames: int = 32) -> list[int]:
    """The frame indices of ``video_samples``."""
    return [index for index, _ in video_samples(count, fps, every_s, max_frames)]


def _count_frames(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> int:
    """How many frames a video has, by decoding it through (for containers that do not say)."""
    capture = open_video(path, max_pixels)
    try:
        count = 0
        while capture.grab():
            count += 1
        return count
    finally:
        capture.release()


def _pick(samples: list, pick: int | None) -> list:
    return [samples[pick % len(samples)]] if pick is not None and samples else samples


def _frames_by_seeking(capture, samples: list[tuple[int, float]],
                       max_pixels: int = DEFAULT_MAX_PIXELS) -> list[tuple[float, object]]:
    """(second, BGR frame) for each sample whose frame decodes, seeking to each."""
    import cv2

    frames = []
    for position, (index, seconds) in enumerate(samples):
        if position or index:  # a fresh capture is at frame 0: no seek needed
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        if ok and frame is not None:
            frames.append((seconds, _checked_frame(frame, max_pixels)))
    return frames


def _frames_in_order(path: str | Path, samples: list[tuple[int, float]],
                     max_pixels: int = DEFAULT_MAX_PIXELS) -> list[tuple[float, object]]:
    """``_frames_by_seeking``'s result read in one pass from the start, for containers where seeking is
    unreliable. Only the wanted frames are kept in memory."""
    wanted = dict(samples)
    frames = []
    capture = open_video(path, max_pixels)
    try:
        for index in range(max(wanted, default=-1) + 1):
            if not capture.grab():
                break
            if index in wanted:
                ok, frame = capture.retrieve()
                if ok and frame is not None:
                    frames.append((wanted[index], _checked_frame(frame, max_pixels)))
    finally:
        capture.release()
    return frames


def read_video(
    path: str | Path,
    target_size: int | None = 224,
    every_s: float = 2.0,
    max_frames: int = 32,
    *,
    pick: int | None = None,
    sample_unknown_length: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> DecodedMedia:
    """Sample frames with OpenCV (``video_samples``); segment i spans [times[i], times[i+1]) (the last
    ends at the end). ``target_size`` None keeps the full resolution.

    ``pick``: only the pick-th of those frames (modulo their number), without decoding the others (one
    training sample). ``sample_unknown_length``: when the container gives no frame count (or seeking fails),
    count the frames by decoding the video through and sample them anyway, as training does; otherwise (the
    indexer, which would not decode a whole video twice) such a video is its first frame. ``max_pixels``:
    the limit on a frame's size, as on an image's (checked from the container before a frame is decoded).
    """
    import cv2

    if require_regular_file(path) == 0:
        raise MediaError("empty file (0 bytes)", REASON_VIDEO_EMPTY)
    capture = open_video(path, max_pixels)
    try:
        fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        duration = count / fps if fps > 0 and count > 0 else 0.0
        if duration or (sample_unknown_length and count > 0):
            samples = video_samples(count, fps, every_s, max_frames)
        else:  # no length: the first frame stands for the video, unless it is counted below
            samples = [] if sample_unknown_length else [(0, 0.0)]
        frames = _frames_by_seeking(capture, _pick(samples, pick), max_pixels)
    finally:
        capture.release()
    if not frames and sample_unknown_length:
        counted = _count_frames(path, max_pixels)
        duration = counted / fps if fps > 0 and counted > 0 else 0.0
        frames = _frames_in_order(path, _pick(video_samples(counted, fps, every_s, max_frames), pick), max_pixels)
    if not frames:
        raise MediaError("video has no readable frames", REASON_VIDEO_EMPTY)
    images = [frame_to_image(frame) for _, frame in frames]
    if target_size:
        images = [_shrink(image, target_size) for image in images]
    return DecodedMedia("video", images, width, height, times=[seconds for seconds, _ in frames],
                        duration=duration or None)


def verify_video(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """The video opens and its first frame decodes (``read_video``'s errors otherwise)."""
    read_video(path, max_frames=1, max_pixels=max_pixels)


# -- registry -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadOptions:
    """How files are decoded: the model's input size and the limits of each kind."""

    target_size: int | None = 224
    max_pixels: int = DEFAULT_MAX_PIXELS
    every_s: float = 2.0  # video: one frame every so many seconds
    max_frames: int = 32  # video: at most so many frames


def check_nonempty_file(path: str | Path, reason: str = REASON_MISSING) -> int:
    """A regular, non-empty file; returns its size. ``reason``: an empty file's category."""
    size = require_regular_file(path)
    if size == 0:
        raise MediaError("empty file (0 bytes)", reason)
    return size


def check_video_file(path: str | Path) -> int:
    """A regular, non-empty file (an empty video is one with no frames, as ``read_video`` says)."""
    return check_nonempty_file(path, REASON_VIDEO_EMPTY)


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


# -- sidecar captions ---------------------------------------------------------------------------

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
