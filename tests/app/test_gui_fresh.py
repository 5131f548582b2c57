"""A window that stays true (issue 32, item 4): with the window open, another process indexes, names a person,
forgets a folder or switches the model, and the window's counts, listing, folders, filters, People view and
model catch up within seconds, with no restart. The other process is a real one: the indexer with the fake
model (tests/app/crash_worker.py, whose fake faces make people) and the `cots` command itself."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import cv2  # noqa: F401 - the headless OpenCV wheel and PySide6 load side by side
import pytest
from PySide6.QtWidgets import QWidget

from app.gui.library_watch import LibraryWatcher
from app.gui.people_view import open_people_view
from app.gui.service import Counts
from app.gui.status_bar import StatusBar
from app.gui.tasks import TaskRunner
from app.library.encoder import Encoder
from app.library.people import People

try:
    from tests.app.fakes import FakeModel, noise_image
    from tests.app.test_gui_support import make_photos, make_window
except ImportError:
    from fakes import FakeModel, noise_image  # type: ignore[no-redef]
    from test_gui_support import make_photos, make_window  # type: ignore[no-redef]

pytestmark = pytest.mark.timeout(240)
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CATCH_UP_MS = 10000  # "within a few seconds" (a poll a second, a refresh at most every 3 s), on a busy machine
# indexes every folder of the library with the fake model named argv[2]: a model switch when it is another one
SWITCH = """import sys
sys.path[:0] = [sys.argv[3], sys.argv[4]]
from fakes import fake_encoder
from app.library import Library, signals
from app.library.indexer import Indexer, IndexOptions
signals.SIGNAL_CLASSES = tuple(c for c in signals.SIGNAL_CLASSES if not c.second_pass)
with Library(sys.argv[1]) as library:
    Indexer(library, fake_encoder(sys.argv[2]), IndexOptions(batch_size=4, workers=1, vocabulary=False)).run()
"""


def _photos(folder: Path, numbers) -> Path:
    folder.mkdir(exist_ok=True)
    for i in numbers:
        noise_image(i, (24, 18)).save(folder / f"{i:04d}.png")  # numbered: crash_worker's fake faces read it
    return folder


def _finish(qtbot, process: subprocess.Popen) -> None:
    """Wait for another process with the window's event loop running (it polls meanwhile)."""
    qtbot.waitUntil(lambda: process.poll() is not None, timeout=180000)
    assert process.returncode == 0, process.stderr.read().decode(errors="replace")


def _cots(qtbot, db: Path, *argv: str) -> None:
    _finish(qtbot, subprocess.Popen([sys.executable, "-m", "app.cli", *argv, "--db", str(db)], cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))


def _ready(qtbot, window, photos: int) -> None:
    qtbot.waitUntil(lambda: window.model_ready and not window.indexing.running and window.model.browsing
                    and window.model.rowCount() == photos
                    and window.counts_label.text() == f"{photos} photos · 0 videos indexed", timeout=60000)


def test_the_counts_say_one_photo_and_one_video(qtbot):
    bar = StatusBar(QWidget())
    qtbot.addWidget(bar)
    bar.show_counts(Counts(images=179, videos=1, failed=1))
    assert bar.counts_label.text() == "179 photos · 1 video indexed · 1 failed"
    bar.show_counts(Counts(images=1, videos=2))
    assert bar.counts_label.text() == "1 photo · 2 videos indexed"


class VersionService:
    def __init__(self) -> None:
        self.version = 0

    def library_version(self) -> int:
        return self.version


def test_the_watcher_coalesces_a_burst_and_waits_for_the_windows_own_work(qtbot):
    service, runner, busy, heard = VersionService(), TaskRunner(), [False], []
    watcher = LibraryWatcher(service, runner, lambda: busy[0], poll_ms=20, min_gap_s=0.4)
    watcher.changed_outside.connect(lambda: heard.append(time.monotonic()))
    qtbot.wait(200)
    assert heard == []  # no change: nothing to show
    started = time.monotonic()
    while time.monotonic() - started < 1.2:  # another process commits a batch every 30 ms
        service.version += 1
        qtbot.wait(30)
    qtbot.waitUntil(lambda: watcher.polling is False and not watcher.pending, timeout=5000)
    assert 2 <= len(heard) <= 5  # at most one refresh per 0.4 s, and one after the burst
    assert all(b - a >= 0.39 for a, b in zip(heard, heard[1:]))
    assert heard[-1] > started + 1.2  # the last commit is shown too
    heard.clear()
    busy[0] = True  # the window's own indexing refreshes the window itself
    service.version += 1
    qtbot.wait(600)
    assert heard == [] and watcher.pending
    busy[0] = False
    qtbot.waitUntil(lambda: len(heard) == 1, timeout=5000)  # what changed meanwhile is shown once it ends
    qtbot.wait(600)
    assert len(heard) == 1
    runner.shutdown()


@pytest.mark.slow  # three processes beside the window: ~20 s on the shared machine
def test_the_window_catches_up_with_indexing_naming_and_forgetting_elsewhere(qtbot, tmp_path):
    own = _photos(tmp_path / "own", range(1000, 1004))
    window = make_window(tmp_path, own)
    qtbot.addWidget(window)
    _ready(qtbot, window, 4)
    people_view = open_people_view(window)
    qtbot.addWidget(people_view)
    db, added = tmp_path / "library.db", _photos(tmp_path / "added", range(20))
    # `cots index` elsewhere, with the same (fake) model and fake faces: 20 photos, four people
    _finish(qtbot, subprocess.Popen([sys.executable, str(HERE / "crash_worker.py"), str(db), str(added), "faces",
                                     str(10**9)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    qtbot.waitUntil(lambda: window.counts_label.text() == "24 photos · 0 videos indexed"
                    and window.results_label.text() == "All 24 photos and videos, newest first"
                    and window.model.rowCount() == 24 and people_view.list.count() == 4, timeout=CATCH_UP_MS)
    assert str(added) in [window.library.folders.item(i).text() for i in range(window.library.folders.count())]
    assert str(added) in [window.search.folder.itemData(i) for i in range(window.search.folder.count())]
    assert not window.indexing.running  # caught up by reading, not by indexing again
    qtbot.waitUntil(lambda: window.model.hit(0) is not None, timeout=CATCH_UP_MS)
    assert Path(window.model.hit(0).path).parent == added  # newest first: what was just added

    person = next(p for p in People(window.service.library).list() if p.photos == 6)
    _cots(qtbot, db, "people", "name", str(person.id), "Ada")
    qtbot.waitUntil(lambda: "Ada (6)" in [window.search.person.itemText(i) for i in range(window.search.person.count())]
                    and "Ada · 6 photos" in [people_view.list.item(i).text() for i in range(people_view.list.count())],
                    timeout=CATCH_UP_MS)

    _cots(qtbot, db, "forget", str(added), "-y")
    qtbot.waitUntil(lambda: window.counts_label.text() == "4 photos · 0 videos indexed"
                    and window.model.rowCount() == 4 and window.library.folders.count() == 1
                    and "Ada (1)" in [window.search.person.itemText(i) for i in range(window.search.person.count())],
                    timeout=CATCH_UP_MS)
    assert window.results_label.text() == "All 4 photos and videos, newest first"


@pytest.mark.slow  # a re-embedding process beside the window: ~10 s on the shared machine
def test_the_window_follows_a_model_switch_made_elsewhere(qtbot, tmp_path, monkeypatch):
    def load(cls, source, device=None, text_first=False):  # the window loads the fake model by its name
        return cls(FakeModel(str(source)), device="cpu", source=str(source))

    monkeypatch.setattr(Encoder, "load", classmethod(load))
    window = make_window(tmp_path, make_photos(tmp_path / "own", bad=False))  # red, green, blue, yellow
    qtbot.addWidget(window)
    _ready(qtbot, window, 4)
    _finish(qtbot, subprocess.Popen([sys.executable, "-c", SWITCH, str(tmp_path / "library.db"), "other", str(HERE),
                                     str(ROOT)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    qtbot.waitUntil(lambda: window.current_model == "other" and window.model_status.text() == "Model: other-0001",
                    timeout=CATCH_UP_MS)
    assert window.settings["model"] == "other"  # the next start does not switch back
    assert any("re-embedded with other elsewhere" in n.text for n in window.notices.notices())
    assert window.service.encoder.model_id == "other-0001"
    qtbot.keyClicks(window.search.box, "red")  # searches answer with the new model
    qtbot.waitUntil(lambda: not window.model.browsing and "“red”" in window.results_label.text(), timeout=CATCH_UP_MS)
    assert Path(window.model.hit(0).path).name == "red.jpg"
