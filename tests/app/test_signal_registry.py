"""A signal declares its own facts: two toy signals, defined and registered here only (no other file knows
them), flow through storage, search, the CLI and the GUI as the built-in ones do, all derived from their
declarations. "colour" (the dominant colour) is a first-pass, facts-only signal: a `cots search --colour`
flag, a choice in `cots places`, a combo in the search bar, a row in the detail pane, its counts in
`cots status`. "marks" (white squares drawn on a photo) is a second-pass one with everything else a
declaration can say: boxes the detail pane draws, a checkbox filter, query words ("marked"), an on/off
setting (`--no-marks`, the GUI's second-pass checkbox), a date fact, facts `cots search` prints, and a
display name that names the second pass."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import ClassVar

import cv2  # noqa: F401 - the headless OpenCV wheel and PySide6 load side by side
import numpy as np
import pytest
from fakes import fake_encoder, solid
from PIL import Image, ImageDraw

from app.library import signals
from app.library.signals.base import (
    AT_LEAST_ONE,
    CHECK,
    CHOICE,
    EQUALS_EACH_PART,
    Box,
    DetailRow,
    FactCondition,
    FactFilter,
    FactSearch,
    SignalDeclaration,
    SignalOutput,
    Toggle,
)

try:
    from tests.app.test_gui_support import make_window
except ImportError:
    from test_gui_support import make_window  # type: ignore[no-redef]

pytestmark = pytest.mark.timeout(180)
COLOUR_NAMES = ("red", "green", "blue")


class ColourSignal:
    """The photo's dominant colour ("red", "green" or "blue"): the strongest channel of its 4x4 thumbnail."""

    name: ClassVar[str] = "colour"
    version: ClassVar[int] = 1
    second_pass: ClassVar[bool] = False
    declares: ClassVar[SignalDeclaration] = SignalDeclaration(
        fact_keys=("colour",),
        rows=(DetailRow("Colour", lambda facts: str(facts.get("colour") or "")),),
        filters=(FactFilter("colour", EQUALS_EACH_PART, ("colour",), control=CHOICE, label="All colours",
                            help="only photos of this dominant colour", tooltip="The photo's dominant colour",
                            choice_keys=("colour",)),),
    )

    def unavailable(self) -> str | None:
        return None

    def extract(self, path: str, image: Image.Image | None) -> SignalOutput:
        photo = image if image is not None else Image.open(path)
        mean = np.asarray(photo.convert("RGB").resize((4, 4)), dtype=np.float32).reshape(-1, 3).mean(axis=0)
        return SignalOutput(facts={"colour": COLOUR_NAMES[int(np.argmax(mean))]})


STAMPED_AT = 981158400.0  # 2001-02-03 UTC: when the toy's marks were stamped, its date fact
MARK_COLOUR = "#00ff00"


def marked_query(query: str) -> FactCondition | None:
    """The photos with a mark, the largest first, for a query with the word "marked"."""
    if "marked" not in query.lower().split():
        return None
    return FactCondition((("marks", 1, None), ("mark_area", 0.0, None)), rank_by="mark_area")


class MarkSignal:
    """A white square drawn on the photo: its box, a count and its share of the photo, read in the second
    pass."""

    name: ClassVar[str] = "marks"
    version: ClassVar[int] = 1
    second_pass: ClassVar[bool] = True
    declares: ClassVar[SignalDeclaration] = SignalDeclaration(
        display_name="white marks",
        fact_keys=("marks", "mark_area", "mark", "stamped_at"),
        rows=(DetailRow("Marks", lambda facts: "" if facts.get("marks") is None else str(facts["marks"])),),
        hit_facts=("mark",),
        filters=(FactFilter("with_marks", AT_LEAST_ONE, ("marks",), control=CHECK, label="With marks",
                            help="only photos with a white mark", tooltip="Only photos with a white mark",
                            negated="without_marks", negated_help="only photos read for marks without one"),),
        search=FactSearch("marks", marked_query),
        toggle=Toggle("white marks", "white marks"),
        box_colour=MARK_COLOUR,
        date_fact="stamped_at",
    )

    def unavailable(self) -> str | None:
        return None

    def extract(self, path: str, image: Image.Image | None) -> SignalOutput:
        photo = np.asarray((image if image is not None else Image.open(path)).convert("RGB"))
        rows, cols = np.nonzero((photo > 200).all(axis=2))
        if not len(rows):
            return SignalOutput(facts={"marks": 0})
        height, width = photo.shape[:2]
        box = Box(cols.min() / width, rows.min() / height, (cols.max() + 1 - cols.min()) / width,
                  (rows.max() + 1 - rows.min()) / height, 1.0, "mark")
        return SignalOutput(text="whitemark", boxes=[box], facts={
            "marks": 1, "mark_area": round(box.w * box.h, 4), "mark": "white square", "stamped_at": STAMPED_AT})


@dataclass(frozen=True)
class Toy:
    """One toy signal and what the shared tests expect of it on the ``colours`` folder."""

    cls: type
    filter_argv: tuple[str, ...]  # a `cots search` filter ...
    filtered: tuple[int, ...]  # ... and the photos (IMG_000N) it keeps
    control: str  # the search bar's control for its filter
    detail_label: str  # its detail-pane row, and that row's text for IMG_0003
    detail_text: str


TOYS = {"colour": Toy(ColourSignal, ("--colour", "red"), (0, 2), "colour", "Colour", "blue"),
        "marks": Toy(MarkSignal, ("--with-marks",), (0, 3), "with_marks", "Marks", "1")}


@pytest.fixture
def registry(monkeypatch):
    """Adds signals to the registry for one test (restored after it)."""
    monkeypatch.setattr(signals, "SIGNAL_CLASSES", signals.SIGNAL_CLASSES)
    return signals.register_signal  # the one line that adds a signal


@pytest.fixture
def colour_signal(registry):
    registry(ColourSignal)


@pytest.fixture
def mark_signal(registry):
    registry(MarkSignal)


@pytest.fixture(params=sorted(TOYS))
def toy(request, registry) -> Toy:
    registry(TOYS[request.param].cls)
    return TOYS[request.param]


def mark(photo: Image.Image) -> Image.Image:
    """``photo`` with a white 16-pixel square near its top-left corner."""
    ImageDraw.Draw(photo).rectangle((8, 8, 23, 23), fill="white")
    return photo


@pytest.fixture
def colours(tmp_path):
    """Two red photos, one green, one blue, the first and the last marked; names that say nothing of either."""
    folder = tmp_path / "colours"
    folder.mkdir()
    for i, colour in enumerate(("red", "green", "red", "blue")):
        (mark(solid(colour)) if i in (0, 3) else solid(colour)).save(folder / f"IMG_{i:04d}.jpg")
    return folder


def test_the_toy_signal_reads_the_dominant_colour(tmp_path):
    for colour in COLOUR_NAMES:
        solid(colour).save(tmp_path / f"{colour}.png")
        assert ColourSignal().extract(str(tmp_path / f"{colour}.png"), None).facts == {"colour": colour}


def test_the_toy_signal_finds_a_white_mark(tmp_path):
    mark(solid("blue")).save(tmp_path / "marked.png")
    found = MarkSignal().extract(str(tmp_path / "marked.png"), None)
    assert found.facts["marks"] == 1 and found.text == "whitemark"
    assert [(b.x, b.y, b.w, b.h) for b in found.boxes] == [(8 / 64, 8 / 48, 16 / 64, 16 / 48)]
    assert MarkSignal().extract("unused", solid("red")) == SignalOutput(facts={"marks": 0})


def index_with_the_cli(folder, db: str, monkeypatch, *flags: str) -> None:
    from app.cli import main
    from app.library.encoder import Encoder

    encoder = fake_encoder()
    monkeypatch.setattr(Encoder, "load", classmethod(lambda cls, *a, **k: encoder))
    assert main(["index", str(folder), "--db", db, "--quiet", *flags]) == 0


def run_json(capsys, db: str, *argv: str):
    from app.cli import main

    capsys.readouterr()
    assert main([*argv, "--db", db, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def paths(folder, *numbers: int) -> list[str]:
    return [str(folder / f"IMG_{i:04d}.jpg") for i in numbers]


def test_a_registered_signal_filters_search_and_counts_in_status(toy, colours, tmp_path, capsys, monkeypatch):
    from app.cli import main

    db = str(tmp_path / "cli.db")
    index_with_the_cli(colours, db, monkeypatch)
    kept = run_json(capsys, db, "search", "photo", *toy.filter_argv, "--all")
    assert sorted(h["path"] for h in kept) == paths(colours, *toy.filtered)
    assert len(run_json(capsys, db, "search", "photo", "--all")) == 4  # no filter: every photo
    assert run_json(capsys, db, "status")["signals"][toy.cls.name] == {
        "ok": 4, "error": 0, "pending": 0, "second_pass": toy.cls.second_pass, "off": False, "unavailable": None}
    capsys.readouterr()
    assert main(["status", "--db", db]) == 0
    assert re.search(rf"\n  {toy.cls.name} +4 read, 0 failed\n", capsys.readouterr().out)


def test_a_choice_filter_lists_its_choices_and_its_flag_takes_a_value(colour_signal, colours, tmp_path, capsys,
                                                                      monkeypatch):
    from app.cli import main

    db = str(tmp_path / "cli.db")
    index_with_the_cli(colours, db, monkeypatch)
    assert {h["facts"]["colour"] for h in run_json(capsys, db, "search", "photo", "--colour", "red", "--all")} \
        == {"red"}
    assert [h["path"] for h in run_json(capsys, db, "search", "photo", "--colour", "Blue", "--all")] == \
        paths(colours, 3)
    assert run_json(capsys, db, "places")["colours"] == [
        {"colour": "red", "photos": 2}, {"colour": "blue", "photos": 1}, {"colour": "green", "photos": 1}]
    capsys.readouterr()
    assert main(["places", "--db", db]) == 0 and "red (2)" not in (out := capsys.readouterr().out) \
        and "     2  red" in out
    assert main(["search", "photo", "--db", db, "--colour"]) == 2  # the flag takes a value, as declared
    assert "--colour COLOUR" in capsys.readouterr().err


def test_a_second_pass_signal_is_stored_searched_toggled_and_printed(mark_signal, colours, tmp_path, capsys,
                                                                     monkeypatch):
    from app.cli import main
    from app.cli.progress import SecondPassLines
    from app.library import Library
    from app.library.indexer import IndexProgress

    assert signals.pass_name() == "text, faces and white marks"  # the second pass, named by its signals
    SecondPassLines()(IndexProgress("signals", 1, 4, 0.0, None, "", 0, 0.0))
    assert "second pass (text, faces and white marks): 1/4 photos" in capsys.readouterr().err
    db = str(tmp_path / "cli.db")
    index_with_the_cli(colours, db, monkeypatch, "--no-marks")  # its toggle: a flag pair, kept in the library
    assert run_json(capsys, db, "status")["signals"]["marks"] | {"pending": 0} == {
        "ok": 0, "error": 0, "pending": 0, "second_pass": True, "off": True, "unavailable": None}
    index_with_the_cli(colours, db, monkeypatch, "--marks")
    assert run_json(capsys, db, "status")["signals"]["marks"]["ok"] == 4
    marked = paths(colours, 0, 3)
    # its query words: "marked" adds the photos whose facts fit, tagged with the declared match
    hits = run_json(capsys, db, "search", "marked", "--all")
    assert sorted(h["path"] for h in hits if "marks" in h["matched"]) == marked
    assert sorted(h["path"] for h in run_json(capsys, db, "search", "photo", "--without-marks", "--all")) == \
        paths(colours, 1, 2)
    # its text is in the full-text index; its date fact became the photos' capture date (they had none)
    found = run_json(capsys, db, "search", "whitemark", "--all")
    assert sorted(h["path"] for h in found if "name" in h["matched"]) == marked
    dated = run_json(capsys, db, "search", "photo", "--from", "2001-02-01", "--to", "2001-02-28", "--all")
    assert sorted(h["path"] for h in dated) == marked
    capsys.readouterr()
    assert main(["search", "photo", "--with-marks", "--all", "--db", db]) == 0
    assert capsys.readouterr().out.count("[white square]") == 2  # the facts it declares for `cots search`
    library = Library(db)
    try:
        _, boxes, texts = library.signal_details(library.media_by_path(marked[1]).id)
    finally:
        library.close()
    assert [b[0] for b in boxes] == ["marks"] and texts["marks"] == "whitemark"


def test_a_registered_signal_gets_a_search_bar_control_and_a_detail_row(qtbot, toy, colours, tmp_path):
    window = make_window(tmp_path, colours)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.model_ready, timeout=10000)
    qtbot.waitUntil(lambda: not window.indexing.running and "4 photos" in window.counts_label.text(), timeout=30000)
    control = window.search.controls[toy.control]
    if toy.cls is ColourSignal:
        qtbot.waitUntil(lambda: control.count() == 4, timeout=5000)
        assert [control.itemText(i) for i in range(control.count())] == ["All colours", "red (2)", "blue (1)",
                                                                         "green (1)"]
        assert control.toolTip() == "The photo's dominant colour"
    else:
        assert control.text() == "With marks" and "white marks" in window.library.second_pass.text()
    window.search.weak.setChecked(True)  # the fake model is not calibrated: every meaning match is weak
    qtbot.keyClicks(window.search.box, "photo")
    qtbot.waitUntil(lambda: window.model.rowCount() == 4, timeout=10000)
    if toy.cls is ColourSignal:
        control.setCurrentIndex(2)  # blue: IMG_0003 alone
        assert window.search.filters().colour == "blue"
    else:
        control.setChecked(True)  # IMG_0000 and IMG_0003
        assert window.search.filters().with_marks is True
    qtbot.waitUntil(lambda: window.model.rowCount() == (1 if toy.cls is ColourSignal else 2), timeout=10000)
    hit = next(window.model.hit(i) for i in range(window.model.rowCount())
               if window.model.hit(i).path.endswith("IMG_0003.jpg"))
    window.show_detail(hit)
    row = window.detail.fields[toy.detail_label]
    assert row.text() == toy.detail_text and window.detail.form.isRowVisible(row)
    if toy.cls is MarkSignal:  # its boxes are drawn on the preview, in its colour
        qtbot.waitUntil(lambda: [b[0] for b in window.detail._boxes] == ["marks"], timeout=10000)
        qtbot.waitUntil(lambda: window.detail.preview.pixmap() is not None
                        and not window.detail.preview.pixmap().isNull(), timeout=10000)
        preview = window.detail.preview.pixmap().toImage()
        edge = round(8 / 64 * preview.width()), round(16 / 48 * preview.height())  # the box's left edge
        assert preview.pixelColor(*edge).name() == MARK_COLOUR
