"""A signal declares its own facts: a toy "dominant colour" signal, defined and registered here only (no other
file knows it), gets a `cots search --colour` flag, a choice in `cots places`, a combo in the GUI's search
bar, a row in the detail pane and its counts in `cots status`, all derived from its declaration."""
from __future__ import annotations

import json
from typing import ClassVar

import cv2  # noqa: F401 - the headless OpenCV wheel and PySide6 load side by side
import numpy as np
import pytest
from fakes import fake_encoder, solid
from PIL import Image

from app.library import signals
from app.library.signals.base import (
    CHOICE,
    EQUALS_EACH_PART,
    DetailRow,
    FactFilter,
    SignalDeclaration,
    SignalOutput,
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


@pytest.fixture
def colour_signal(monkeypatch):
    monkeypatch.setattr(signals, "SIGNAL_CLASSES", signals.SIGNAL_CLASSES)  # restored after the test
    signals.register_signal(ColourSignal)  # the one line that adds a signal


@pytest.fixture
def colours(tmp_path):
    """Two red photos, one green, one blue; names that say nothing of their colour."""
    folder = tmp_path / "colours"
    folder.mkdir()
    for i, colour in enumerate(("red", "green", "red", "blue")):
        solid(colour).save(folder / f"IMG_{i:04d}.jpg")
    return folder


def test_the_toy_signal_reads_the_dominant_colour(tmp_path):
    for colour in COLOUR_NAMES:
        solid(colour).save(tmp_path / f"{colour}.png")
        assert ColourSignal().extract(str(tmp_path / f"{colour}.png"), None).facts == {"colour": colour}


def test_a_registered_signal_gets_cli_flags_choices_and_status(colour_signal, colours, tmp_path, capsys,
                                                               monkeypatch):
    from app.cli import main
    from app.library.encoder import Encoder

    encoder = fake_encoder()
    monkeypatch.setattr(Encoder, "load", classmethod(lambda cls, *a, **k: encoder))
    db = str(tmp_path / "cli.db")
    assert main(["index", str(colours), "--db", db, "--quiet"]) == 0

    def run_json(*argv):
        capsys.readouterr()
        assert main([*argv, "--db", db, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    reds = run_json("search", "photo", "--colour", "red", "--all")
    assert sorted(h["path"] for h in reds) == [str(colours / "IMG_0000.jpg"), str(colours / "IMG_0002.jpg")]
    assert {h["facts"]["colour"] for h in reds} == {"red"}
    assert [h["path"] for h in run_json("search", "photo", "--colour", "Blue", "--all")] == \
        [str(colours / "IMG_0003.jpg")]
    assert len(run_json("search", "photo", "--all")) == 4  # no filter: every photo
    assert run_json("places")["colours"] == [{"colour": "red", "photos": 2}, {"colour": "blue", "photos": 1},
                                             {"colour": "green", "photos": 1}]
    status = run_json("status")
    assert status["signals"]["colour"] == {"ok": 4, "error": 0, "pending": 0, "second_pass": False,
                                           "off": False, "unavailable": None}
    capsys.readouterr()
    assert main(["status", "--db", db]) == 0 and "colour  4 read, 0 failed" in capsys.readouterr().out
    assert main(["places", "--db", db]) == 0 and "red (2)" not in (out := capsys.readouterr().out) \
        and "     2  red" in out
    assert main(["search", "photo", "--db", db, "--colour"]) == 2  # the flag takes a value, as declared
    assert "--colour COLOUR" in capsys.readouterr().err


def test_a_registered_signal_gets_a_search_bar_combo_and_a_detail_row(qtbot, colour_signal, colours, tmp_path):
    window = make_window(tmp_path, colours)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.model_ready, timeout=10000)
    qtbot.waitUntil(lambda: not window.indexing.running and "4 photos" in window.counts_label.text(), timeout=30000)
    combo = window.search.controls["colour"]
    qtbot.waitUntil(lambda: combo.count() == 4, timeout=5000)
    assert [combo.itemText(i) for i in range(combo.count())] == ["All colours", "red (2)", "blue (1)", "green (1)"]
    assert combo.toolTip() == "The photo's dominant colour"
    window.search.weak.setChecked(True)  # the fake model is not calibrated: every meaning match is weak
    qtbot.keyClicks(window.search.box, "photo")
    qtbot.waitUntil(lambda: window.model.rowCount() == 4, timeout=10000)
    combo.setCurrentIndex(2)  # blue
    assert window.search.filters().colour == "blue"
    qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=10000)
    hit = window.model.hit(0)
    assert hit.path.endswith("IMG_0003.jpg")
    window.show_detail(hit)
    row = window.detail.fields["Colour"]
    assert row.text() == "blue" and window.detail.form.isRowVisible(row)
