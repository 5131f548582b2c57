"""Signals: facts about a photo beyond its embedding (place, capture date and camera, text in it,
faces), each stored in SQLite, searchable through the lexical half of hybrid search and usable as
filters. A signal is optional: when its package is missing it reports why and is skipped; a failure on
one file is recorded for that file and never stops indexing."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from PIL import Image


@dataclass(frozen=True)
class Box:
    """A region of the image, in fractions of its width and height (0..1, top-left origin, EXIF
    orientation already applied), with the detector's confidence."""
    x: float
    y: float
    w: float
    h: float
    score: float
    label: str = ""   # what the box holds: "face", or the recognised text of an OCR line


@dataclass
class SignalOutput:
    """What one signal found in one file."""
    text: str = ""  # words for the full-text index ("Paris Ile-de-France France", recognised text, ...)
    facts: dict[str, str | int | float] = field(default_factory=dict)  # filterable values, e.g.
    # {"city": "Paris", "country": "France"}, {"camera": "Canon EOS 5D"}, {"faces": 3}
    boxes: list[Box] = field(default_factory=list)  # face boxes, OCR line boxes
    stage_seconds: dict[str, float] = field(default_factory=dict)


class SignalError(Exception):
    """This file could not be read by this signal (recorded for the file, like bad media)."""


class Signal(Protocol):
    name: ClassVar[str]      # "place", "exif", "ocr", "faces": the key stored with its results
    version: ClassVar[int]   # bump when results change: rows of an older version are redone
    second_pass: ClassVar[bool]  # True: runs after all embeddings, at lower priority (OCR, faces)

    def unavailable(self) -> str | None:
        """Why this signal cannot run on this installation (one line naming the missing package and
        how to install it), or None. Must be cheap and must not raise."""

    def extract(self, path: str, image: Image.Image | None) -> SignalOutput:
        """Read one file. ``image`` is the decoded RGB photo (EXIF orientation applied) when the
        indexer has it, else None (the signal may open ``path`` itself). Raises SignalError for a
        file it cannot read; any other exception is treated the same way by the caller."""
