"""Signals beyond the embedding: see base.py. ``all_signals()`` is the registry, in the order they run:
the cheap first-pass ones (read while a file is indexed) before the second-pass ones (after embeddings)."""
from __future__ import annotations

from app.library.signals.base import Box, Signal, SignalError, SignalOutput
from app.library.signals.exif import ExifSignal
from app.library.signals.faces import FaceSignal
from app.library.signals.ocr import OcrSignal
from app.library.signals.place import PlaceSignal

SIGNAL_CLASSES: tuple[type, ...] = (PlaceSignal, ExifSignal, OcrSignal, FaceSignal)


def all_signals() -> list[Signal]:
    """One fresh instance of every registered signal, first-pass ones first."""
    return sorted((cls() for cls in SIGNAL_CLASSES), key=lambda s: s.second_pass)


__all__ = ["Box", "Signal", "SignalError", "SignalOutput", "SIGNAL_CLASSES", "all_signals"]
