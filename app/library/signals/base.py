"""Signals: facts about a photo beyond its embedding (place, capture date and camera, text in it,
faces), each stored in SQLite, searchable through the lexical half of hybrid search and usable as
filters. A signal is optional: when its package is missing it reports why and is skipped; a failure on
one file is recorded for that file and never stops indexing.

Each signal class also declares, as plain data (``SignalDeclaration``: no Qt, no SQL), what the rest of the
program shows and offers for it: its name in a person's words, its fact keys, its rows in the GUI's detail
pane, the facts `cots search` prints, its filters (a ``Filters`` value, a ``cots search`` flag and a
search-bar control each), words of a query that ask for its facts, its on/off setting, whether the detail
pane draws its boxes, which fact is the capture date, and whether its boxes are faces grouped into people.
The CLI, ``Filters``, storage's SQL, the signal runner and the GUI are derived from these declarations
(``app.library.signals`` lists them in registry order), so a new signal edits no other file."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

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
    at_s: float | None = None  # a video's box: the second of the frame it is on (None: a photo's)


@dataclass
class SignalOutput:
    """What one signal found in one file."""
    text: str = ""  # words for the full-text index ("Paris Ile-de-France France", recognised text, ...)
    facts: dict[str, str | int | float] = field(default_factory=dict)  # filterable values, e.g.
    # {"city": "Paris", "country": "France"}, {"camera": "Canon EOS 5D"}, {"faces": 3}
    boxes: list[Box] = field(default_factory=list)  # face boxes, OCR line boxes
    stage_seconds: dict[str, float] = field(default_factory=dict)


# How a filter's value matches a photo's facts; storage turns each into SQL (a signal never writes SQL).
EQUALS_EACH_PART = "equals each part"  # every comma-separated part of the value equals (ignoring case) the
# value of one of the filter's keys: "Paris, France" -> city or country is "Paris", and one is "France"
CONTAINS = "contains"  # one of the keys' values contains the text, ignoring case ("canon" -> "Canon EOS 5D")
AT_LEAST_ONE = "at least one"  # True: one of the keys counts 1 or more; False: it was read and counts 0
MATCH_KINDS = (EQUALS_EACH_PART, CONTAINS, AT_LEAST_ONE)
# The search bar's control for a filter.
CHOICE = "choice"  # a combo box: "All places", then the choices with their photo counts
CHECK = "check"  # a checkbox: ticked = True, unticked = no filter


def joined_choices(rows: list[tuple[tuple[str, ...], int]]) -> list[tuple[str, int]]:
    """The default choice list: each group of values (as ``choice_keys`` orders them) joined by ", "."""
    return [(", ".join(v for v in values if v), count) for values, count in rows]


@dataclass(frozen=True)
class FactFilter:
    """One filter on a signal's facts. ``name`` is the ``Filters`` key and the ``cots search`` flag
    (``with_people`` -> ``--with-people``)."""

    name: str
    match: str  # one of MATCH_KINDS
    keys: tuple[str, ...]  # the fact keys the value is compared with
    help: str  # the CLI flag's help
    control: str  # CHOICE or CHECK (the search bar)
    label: str  # the combo's "everything" entry ("All places") or the checkbox's text ("With people")
    tooltip: str = ""
    choice_keys: tuple[str, ...] = ()  # facts whose values, with photo counts, are the choices (most first;
    # the first key must be present, a missing other one reads "")
    choice_list: Callable[[list[tuple[tuple[str, ...], int]]], list[tuple[str, int]]] = joined_choices
    # (the values of choice_keys, photos) rows -> (choice, photos): a choice is a value the filter accepts
    negated: str | None = None  # AT_LEAST_ONE: the flag asking for False ("without_people")
    negated_help: str = ""

    def __post_init__(self) -> None:
        if self.match not in MATCH_KINDS or self.control not in (CHOICE, CHECK) or not self.keys:
            raise ValueError(f"filter {self.name!r}: match must be one of {MATCH_KINDS}, control {CHOICE!r} or "
                             f"{CHECK!r}, and keys not empty")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class DetailRow:
    """A row of the GUI's detail pane: ``show`` turns the photo's facts (all signals', by key) into its text,
    or, with ``from_text``, the signal's stored text (its recognised words); "" hides the row."""

    label: str
    show: Callable[[Any], str]
    from_text: bool = False


@dataclass(frozen=True)
class FactCondition:
    """Photos whose numeric facts lie in ranges: (key, lowest or None, highest or None) each; the first key
    must be present, a missing other one reads as 0. ``rank_by``: the largest value of this key first."""

    ranges: tuple[tuple[str, float | None, float | None], ...]
    rank_by: str | None = None


@dataclass(frozen=True)
class FactSearch:
    """Words of a query that ask for a signal's facts ("a group photo" -> 3 faces or more): ``condition``
    reads the query (None: not such a query); the photos found join the rank fusion as one more list and
    their hits are tagged ``matched`` (e.g. "faces")."""

    matched: str
    condition: Callable[[str], FactCondition | None]


@dataclass(frozen=True)
class Toggle:
    """A signal a person may turn off (kept in the library): ``cots index --NAME/--no-NAME`` and the GUI's
    setting. ``what``: the CLI's words ("text in photos (OCR)"); ``label``: the GUI's ("text in photos")."""

    what: str
    label: str


@dataclass(frozen=True)
class SignalDeclaration:
    """What a signal's results mean to the rest of the program (see the module docstring)."""

    display_name: str = ""  # what it reads, in a person's words ("text", "faces"): its pass is named after
    # these ("second pass (text and faces)"); "" reads as the signal's name
    fact_keys: tuple[str, ...] = ()  # the facts it writes (keys are distinct across signals)
    rows: tuple[DetailRow, ...] = ()
    hit_facts: tuple[str, ...] = ()  # facts `cots search` prints after a hit, joined by ", " ("Paris, France")
    filters: tuple[FactFilter, ...] = ()
    search: FactSearch | None = None
    toggle: Toggle | None = None
    box_colour: str | None = None  # the detail pane draws its boxes on the preview in this colour (None: not)
    date_fact: str | None = None  # a fact that is when the photo was taken (epoch seconds): it fills the row's
    # capture time when the decoder found none, so the date filters and browsing use it
    groups_faces: bool = False  # its boxes are faces, with identity vectors (``output.vectors``), that the
    # people layer groups into people (app.library.face_grouping.store_faces)
    reads_video: bool = False  # a second-pass signal that also reads videos, on the frames the index sampled
    # (their stored segment starts): the runner hands it those frames (``extract_frames``), and its boxes
    # carry their frame's second (``Box.at_s``)


class SignalError(Exception):
    """This file could not be read by this signal (recorded for the file, like bad media)."""


class Signal(Protocol):
    name: ClassVar[str]      # "place", "exif", "ocr", "faces": the key stored with its results
    version: ClassVar[int]   # bump when results change: rows of an older version are redone
    second_pass: ClassVar[bool]  # True: runs after all embeddings, at lower priority (OCR, faces)
    declares: ClassVar[SignalDeclaration]  # optional: a class without one declares nothing

    def unavailable(self) -> str | None:
        """Why this signal cannot run on this installation (one line naming the missing package and
        how to install it), or None. Must be cheap and must not raise."""

    def extract(self, path: str, image: Image.Image | None) -> SignalOutput:
        """Read one file. ``image`` is the decoded RGB photo (EXIF orientation applied) when the
        indexer has it, else None (the signal may open ``path`` itself). Raises SignalError for a
        file it cannot read; any other exception is treated the same way by the caller."""

    # A second-pass signal may have ``prepare() -> None``: load its models now. The indexer calls it on a
    # low-priority thread while the embedding pass runs (``signal_runner.prepare_in_background``), so the
    # second pass starts reading at once; it must be safe beside ``extract`` and may raise (then ``extract``
    # meets the same problem and records it).
    # A signal that declares ``reads_video`` also has ``extract_frames(path, frames) -> SignalOutput``:
    # ``frames`` is [(second, RGB frame)] of one video, every box it returns has its frame's ``at_s``.
