"""Signals beyond the embedding: see base.py. ``SIGNAL_CLASSES`` is the registry: ``all_signals()`` runs
them, first-pass ones (read while a file is indexed) before second-pass ones (after embeddings), and the
functions below read their declarations (``SignalDeclaration``) for the CLI, ``Filters``, storage and the
GUI, in registry order. ``register_signal(cls)`` adds one."""
from __future__ import annotations

from app.library.signals.base import (
    Box,
    DetailRow,
    FactFilter,
    FactSearch,
    Signal,
    SignalDeclaration,
    SignalError,
    SignalOutput,
    Toggle,
)
from app.library.signals.exif import ExifSignal
from app.library.signals.faces import FaceSignal
from app.library.signals.ocr import OcrSignal
from app.library.signals.place import PlaceSignal

SIGNAL_CLASSES: tuple[type, ...] = (PlaceSignal, ExifSignal, OcrSignal, FaceSignal)
NO_DECLARATION = SignalDeclaration()


def register_signal(cls: type) -> type:
    """Add a signal class to the registry (after the others); returns it, so it also works as a decorator."""
    global SIGNAL_CLASSES
    if cls not in SIGNAL_CLASSES:
        SIGNAL_CLASSES = (*SIGNAL_CLASSES, cls)
    return cls


def all_signals() -> list[Signal]:
    """One fresh instance of every registered signal, first-pass ones first."""
    return sorted((cls() for cls in SIGNAL_CLASSES), key=lambda s: s.second_pass)


def declaration(cls: type) -> SignalDeclaration:
    """What a signal class declares (nothing, for a class without ``declares``)."""
    return getattr(cls, "declares", NO_DECLARATION)


def fact_filters() -> list[FactFilter]:
    """Every registered signal's filters, in registry order."""
    return [f for cls in SIGNAL_CLASSES for f in declaration(cls).filters]


def fact_filter(name: str) -> FactFilter:
    """The registered filter called ``name``; KeyError naming the known ones when there is none."""
    for found in fact_filters():
        if found.name == name:
            return found
    raise KeyError(f"no signal declares the filter {name!r} (known: {', '.join(f.name for f in fact_filters())})")


def detail_rows() -> list[tuple[str, DetailRow]]:
    """(signal name, row) of the detail pane, in registry order."""
    return [(cls.name, row) for cls in SIGNAL_CLASSES for row in declaration(cls).rows]


def fact_searches() -> list[FactSearch]:
    """The query words of the registered signals (the faces signal's people words)."""
    return [d.search for d in map(declaration, SIGNAL_CLASSES) if d.search is not None]


def display_name(cls: type) -> str:
    """A signal's name in a person's words (its declared ``display_name``, else its name)."""
    return declaration(cls).display_name or cls.name


def pass_name(second_pass: bool = True) -> str:
    """The registered signals of one pass as one phrase, as they declare their names: "text and faces"."""
    names = list(dict.fromkeys(display_name(cls) for cls in SIGNAL_CLASSES if cls.second_pass == second_pass))
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names) or "no signals"


def hit_fact_keys() -> list[str]:
    """The facts `cots search` prints after a hit, in registry order."""
    return [key for cls in SIGNAL_CLASSES for key in declaration(cls).hit_facts]


def box_colours() -> dict[str, str]:
    """signal name -> the colour the detail pane draws its boxes in, for the signals whose boxes are drawn."""
    return {cls.name: declaration(cls).box_colour for cls in SIGNAL_CLASSES if declaration(cls).box_colour}


def face_signals() -> set[str]:
    """The signals whose boxes are faces grouped into people (``groups_faces``): the boxes a person names."""
    return {cls.name for cls in SIGNAL_CLASSES if declaration(cls).groups_faces}


def toggles() -> dict[str, Toggle]:
    """signal name -> its on/off setting, for the signals a person may turn off."""
    return {cls.name: declaration(cls).toggle for cls in SIGNAL_CLASSES if declaration(cls).toggle is not None}


__all__ = ["Box", "DetailRow", "FactFilter", "FactSearch", "Signal", "SignalDeclaration", "SignalError",
           "SignalOutput", "Toggle", "SIGNAL_CLASSES", "all_signals", "box_colours", "declaration", "detail_rows",
           "display_name", "face_signals", "fact_filter", "fact_filters", "fact_searches", "hit_fact_keys",
           "pass_name", "register_signal", "toggles"]
