"""Image files through Pillow: EXIF capture time and orientation, decoding within the limits of
cots_core.media_checks, a header-only size read, and a structural check without decoding."""
from __future__ import annotations

import io
import warnings
from datetime import datetime
from pathlib import Path

from PIL import Image, ImageOps

from cots_core.images import to_rgb
from cots_core.media_checks import (
    DEFAULT_MAX_PIXELS,
    REASON_MISSING,
    REASON_TRUNCATED,
    REASON_UNREADABLE,
    DecodedMedia,
    MediaError,
    check_dimensions,
    check_image_file,
)

HEADER_BUDGET = 16 << 20  # bytes Pillow may read from a large file before it has found the image header

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



def _open_image(stream, max_pixels: int) -> Image.Image:
    """``Image.open`` with the header budget lifted once the header is parsed, and the size limits checked.
    Call inside ``warnings.catch_warnings`` with DecompressionBombWarning as an error."""
    image = Image.open(stream)
    if isinstance(stream, _HeaderBudget):
        stream.budget = None  # the header is parsed: decoding reads what the image needs
    check_dimensions(*image.size, max_pixels)
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
        image = downscale(image, target_size)
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


def downscale(image: Image.Image, target_size: int) -> Image.Image:
    """Keep memory small while batches queue up: the model resizes to ``target_size`` anyway."""
    if min(image.size) <= target_size * 2:
        return image
    scale = target_size * 2 / min(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                        Image.Resampling.BILINEAR)
