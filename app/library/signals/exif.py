"""EXIF: capture time and camera (a cheap, first-pass signal), and the header reader the place signal
shares. Only the file's header is read (Pillow parses EXIF without decoding pixels)."""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from typing import ClassVar

from PIL import Image

from app.library.dates import capture_time, format_local
from app.library.signals.base import (
    CHOICE,
    CONTAINS,
    DetailRow,
    FactFilter,
    SignalDeclaration,
    SignalError,
    SignalOutput,
)
from cots_core.media import exif_capture_time

_GPS_IFD = 0x8825
_MAKE, _MODEL = 0x010F, 0x0110


@dataclass(frozen=True)
class ExifFacts:
    """What a photo's EXIF says that the signals use (all optional)."""

    camera: str | None = None
    taken_at: float | None = None  # epoch seconds (local time as written by the camera)
    lat: float | None = None
    lon: float | None = None


def tidy_camera(make: str | None, model: str | None) -> str | None:
    """'Canon' + 'Canon EOS 5D' -> 'Canon EOS 5D'; 'NIKON CORPORATION' + 'NIKON D90' -> 'Nikon D90'."""
    make = re.sub(r"\s+", " ", (make or "").strip("\x00 ")).strip()
    model = re.sub(r"\s+", " ", (model or "").strip("\x00 ")).strip()
    make = re.sub(r"\b(corporation|corp\.?|co\.,? ?ltd\.?|company|imaging|optical)\b", "", make,
                  flags=re.IGNORECASE).strip(" ,.")
    if make.isupper() and len(make) > 3:
        make = make.title()
    if model.lower().startswith(make.lower()):
        model = model[len(make):].strip()
    camera = f"{make} {model}".strip()
    return camera or None


def _gps_degrees(values, ref) -> float | None:
    try:
        degrees = float(values[0]) + float(values[1]) / 60 + float(values[2]) / 3600
    except (TypeError, ValueError, IndexError, ZeroDivisionError):
        return None
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    return -degrees if str(ref).strip("\x00 ").upper() in ("S", "W") else degrees


@functools.lru_cache(maxsize=64)
def _read_exif_cached(path: str, size: int, mtime_ns: int) -> ExifFacts:
    try:
        with Image.open(path) as image:
            exif = image.getexif()
            gps = exif.get_ifd(_GPS_IFD)
            taken_at = capture_time(exif_capture_time(exif))  # 9999-12-31 is a placeholder, not a date
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise SignalError(f"cannot read the EXIF header of {path}: {error}") from error
    lat = lon = None
    if gps and 2 in gps and 4 in gps:
        lat, lon = _gps_degrees(gps[2], gps.get(1, "N")), _gps_degrees(gps[4], gps.get(3, "E"))
        if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
            lat = lon = None  # (0, 0) is what broken GPS units write
    return ExifFacts(tidy_camera(exif.get(_MAKE), exif.get(_MODEL)), taken_at, lat, lon)


def read_exif(path: str) -> ExifFacts:
    """The EXIF facts of one file; the place and EXIF signals share one read per file (a small cache keyed
    by path, size and modification time). SignalError when the header cannot be parsed."""
    try:
        info = os.stat(path)
    except OSError as error:
        raise SignalError(f"cannot read {path}: {error.strerror or error}") from error
    return _read_exif_cached(str(path), info.st_size, info.st_mtime_ns)


def taken_row(facts: dict) -> str:
    """The detail pane's capture time, local as the camera wrote it: "2019-06-30 12:00"."""
    return format_local(capture_time(facts.get("taken_at")))


class ExifSignal:
    """Capture time (``taken_at``, epoch seconds) and camera (``camera``: make + model, tidied)."""

    name: ClassVar[str] = "exif"
    version: ClassVar[int] = 1
    second_pass: ClassVar[bool] = False
    declares: ClassVar[SignalDeclaration] = SignalDeclaration(
        display_name="camera and date",
        fact_keys=("camera", "taken_at"),
        date_fact="taken_at",
        rows=(DetailRow("Camera", lambda facts: str(facts.get("camera") or "")), DetailRow("Taken", taken_row)),
        filters=(FactFilter("camera", CONTAINS, ("camera",), control=CHOICE, label="All cameras",
                            help="only photos from a camera whose make and model contain this",
                            choice_keys=("camera",)),),
    )

    def unavailable(self) -> str | None:
        return None  # Pillow is a base dependency

    def extract(self, path: str, image: Image.Image | None) -> SignalOutput:
        facts = read_exif(path)
        out = SignalOutput()
        if facts.camera:
            out.facts["camera"] = facts.camera
            out.text = facts.camera
        if facts.taken_at is not None:
            out.facts["taken_at"] = facts.taken_at
        return out
