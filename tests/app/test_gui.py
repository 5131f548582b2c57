"""The window end to end on a small library with the fast fake model (offscreen, pytest-qt)."""
from __future__ import annotations

import argparse
import sys

import cv2  # noqa: F401 - the headless OpenCV wheel and PySide6 load side by side
import pytest
from cots_resources import resource_path
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from app.cli.desktop import APP_ID
from app.cli.gui import register
from app.gui import actions
from app.gui.app_identity import APP_NAME, set_app_identity
from app.gui.finetune import FineTuneJob, finetune_command, finished_message

try:
    from tests.app.test_gui_support import make_photos, make_window, solid
except ImportError:
    from test_gui_support import make_photos, make_window, solid  # type: ignore[no-redef]

pytestmark = pytest.mark.timeout(120)


def simulate_drop(widget, mime: QMimeData) -> None:
    """DragEnter (which makes the widget Qt's drop target), then Drop, as a real drag delivers them."""
    enter = QDragEnterEvent(QPoint(50, 50), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(50, 50), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(widget, drop)
    assert drop.isAccepted()


@pytest.fixture
def indexed(qtbot, tmp_path):
    folder = make_photos(tmp_path / "photos")
    window = make_window(tmp_path, folder)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.model_ready, timeout=10000)
    qtbot.waitUntil(lambda: not window.indexing.running and "photos" in window.counts_label.text(), timeout=30000)
    qtbot.waitUntil(lambda: bool(window.library.failure_rows()), timeout=5000)
    return window


def test_typing_a_query_shows_the_expected_photo_first(qtbot, indexed):
    window = indexed
    qtbot.keyClicks(window.search.box, "blue")  # debounced: no Enter needed
    qtbot.waitUntil(lambda: not window.model.browsing and window.model.rowCount() > 0, timeout=10000)
    assert window.model.hit(0).path.endswith("blue.jpg")
    assert "4 photos" in window.counts_label.text()
    assert "fake" in window.model_status.text()
    # thumbnails arrive from the worker pool and are cached on disk
    window.view.viewport().update()
    qtbot.waitUntil(lambda: window.model.thumbnails_ready() >= 1, timeout=10000)
    assert window.thumbs.cached(window.model.hit(0).path).exists()


def test_a_bad_file_is_listed_with_its_reason_and_the_rest_is_indexed(indexed):
    rows = indexed.library.failure_rows()
    assert [path.rsplit("/", 1)[-1] for path, _ in rows] == ["broken.jpg"]
    assert rows[0][1]  # a reason a person can read
    assert indexed.counts_label.text().startswith("4 photos")


def test_dropping_an_image_fills_image_to_text_and_the_grid(qtbot, indexed, tmp_path):
    window = indexed
    dropped = tmp_path / "outside" / "query.png"
    dropped.parent.mkdir()
    solid("red").save(dropped)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(dropped))])
    simulate_drop(window, mime)
    qtbot.waitUntil(lambda: bool(window.image_text.texts_shown()), timeout=10000)
    assert "a red square" in window.image_text.texts_shown()[:3]
    assert window.tabs.currentWidget() is window.image_text
    qtbot.waitUntil(lambda: not window.model.browsing and window.model.rowCount() > 0, timeout=10000)
    assert window.model.hit(0).path.endswith("red.jpg")


def test_dropping_a_folder_offers_to_add_it(qtbot, indexed, tmp_path):
    window = indexed
    other = make_photos(tmp_path / "more", colours=("cyan",), bad=False)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(other))])
    simulate_drop(window, mime)
    offer = [n for n in window.notices.notices() if "Add to library" in n.buttons]
    assert offer
    offer[0].buttons["Add to library"].click()
    qtbot.waitUntil(lambda: "5 photos" in window.counts_label.text(), timeout=30000)


def test_keyboard(qtbot, indexed, monkeypatch):
    window = indexed
    opened = []
    monkeypatch.setattr(actions, "open_file", lambda path, timestamp=None: opened.append(path) or True)
    window.view.setFocus()
    qtbot.keyClick(window, Qt.Key_F, Qt.ControlModifier)
    assert window.search.box.hasFocus()
    qtbot.keyClicks(window.search.box, "green")
    qtbot.keyClick(window.search.box, Qt.Key_Return)
    qtbot.waitUntil(lambda: not window.model.browsing and window.model.rowCount() > 0, timeout=10000)
    qtbot.keyClick(window.search.box, Qt.Key_Down)
    assert window.view.hasFocus() and window.view.currentIndex().row() == 0
    assert window.detail.hit is window.model.hit(0)
    qtbot.keyClick(window.view, Qt.Key_Return)
    assert opened and opened[0].endswith("green.jpg")
    qtbot.keyClick(window.view, Qt.Key_Escape)  # back to the whole library
    assert window.search.box.text() == ""
    qtbot.waitUntil(lambda: window.model.browsing and window.model.rowCount() == 4, timeout=10000)


def test_weak_matches_are_hidden_until_asked_for(qtbot, indexed):
    window = indexed
    qtbot.keyClicks(window.search.box, "magenta")
    qtbot.keyClick(window.search.box, Qt.Key_Return)
    qtbot.waitUntil(lambda: not window.model.browsing and window.model.rowCount() + window.model.hidden_count() > 0,
                    timeout=10000)
    total = window.model.rowCount() + window.model.hidden_count()
    assert all(not h.weak for h in window.model.hits())
    window.search.weak.setChecked(True)
    assert window.model.rowCount() == total and window.model.hidden_count() == 0
    assert window.settings["show_weaker"] is True


def test_first_run_offers_folders(qtbot, tmp_path):
    window = make_window(tmp_path, None)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: any("Welcome" in n.text for n in window.notices.notices()), timeout=10000)


def test_the_window_shows_the_app_icon_and_quit_ends_the_library_menu(qtbot, tmp_path):
    window = make_window(tmp_path, None)
    qtbot.addWidget(window)
    assert not window.windowIcon().isNull()
    assert window.windowIcon().availableSizes()  # the shipped PNGs, not an empty icon
    library = window.menuBar().actions()[0].menu()
    titles = [action.text() for action in library.actions() if not action.isSeparator()]
    assert titles[-2:] == ["People…", "Quit"]


def test_the_application_is_named_after_its_launcher_entry(qapp):
    before = (qapp.applicationName(), qapp.organizationName(), qapp.desktopFileName(), qapp.windowIcon())
    try:
        set_app_identity(qapp)
        shipped = resource_path("desktop", "cots.desktop").read_text().splitlines()
        assert f"StartupWMClass={APP_NAME}" in shipped and APP_NAME == APP_ID
        assert (qapp.applicationName(), qapp.desktopFileName()) == (APP_NAME, APP_ID)  # X11 class, Wayland app id
        assert not qapp.windowIcon().isNull()
    finally:
        qapp.setApplicationName(before[0])
        qapp.setOrganizationName(before[1])
        qapp.setDesktopFileName(before[2])
        qapp.setWindowIcon(before[3])


def test_gui_command_registers():
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["gui", "--db", "x.db", "--model", "cots-lite"])
    assert (args.db, args.model) == ("x.db", "cots-lite") and callable(args.handler)


def test_finetune_job_reports_progress_and_checkpoint(qtbot, tmp_path):
    assert finetune_command("cots-lite", "d", "o") == ["-m", "trainer", "finetune", "--from", "cots-lite",
                                                       "--data", "d", "--out", "o"]
    assert finetune_command("cots-lite", "d", "o", memory_only=True)[-2:] == ["--steps", "0"]
    script = ("import sys, json\n"
              "for i in range(1, 4): sys.stderr.write(f'\\r{i}/3 [00:01]'); sys.stderr.flush()\n"
              "print(json.dumps({'checkpoint': 'ckpt/final', 'caption_memory': {'entries': 325}}))\n")
    job = FineTuneJob("m", "d", str(tmp_path), program=sys.executable, arguments=["-c", script])
    steps = []
    job.progress.connect(lambda step, total: steps.append((step, total)))
    with qtbot.waitSignal(job.finished, timeout=20000) as done:
        job.start()
    assert done.args == ["ckpt/final", ""]
    assert steps and steps[-1] == (3, 3)
    assert "It remembers 325 captioned photos" in finished_message("ckpt/final", job.result)
    left_out = {"caption_memory": {"entries": 0, "held_out_rsum_without": 300.0, "held_out_rsum_with": 250.0}}
    assert "caption memory was left out" in finished_message("r", left_out)
    for plain in ({}, {"caption_memory": "junk"}, {"caption_memory": {"entries": 0}}):
        assert finished_message("r", plain) == "The fine-tuned model is ready in r."


def test_asking_for_another_model_than_the_librarys_schedules_a_switch(tmp_path):
    from fakes import FakeModel, solid

    from app.gui.engine_service import EngineService
    from app.library.encoder import Encoder
    from app.library.indexer import IndexControl, IndexOptions

    def service(model=None):
        return EngineService(tmp_path / "lib.db", model=model, encoder=Encoder(FakeModel(), device="cpu", source="fake"),
                             options=IndexOptions(workers=1, vocabulary=False))

    photos = tmp_path / "photos"
    photos.mkdir()
    solid("red").save(photos / "red.jpg")
    first = service()
    first.add_folder(str(photos))
    first.load_model()
    first.index(lambda progress: None, IndexControl())
    assert first.pending_switch() is None
    first.close()
    for requested, expected in (("runs/mine", "runs/mine"), ("fake", None)):
        again = service(requested)
        again.load_model()  # the library's own model answers; another requested one is scheduled
        assert again.pending_switch() == expected
        again.close()
    # the window's remembered model (settings) is no request: a library indexed with another keeps its own
    remembered = EngineService(tmp_path / "lib.db", encoder=Encoder(FakeModel(), device="cpu", source="fake"),
                               new_library_model="cots-lite")
    remembered.load_model()
    assert remembered.pending_switch() is None
    remembered.close()


def test_a_new_library_starts_with_the_remembered_model_and_an_indexed_one_with_its_own(tmp_path, monkeypatch):
    from fakes import FakeModel

    from app.gui.engine_service import EngineService
    from app.library.encoder import Encoder

    loaded = []
    monkeypatch.setattr(Encoder, "load", classmethod(
        lambda cls, source, device=None, **kwargs: loaded.append(source) or Encoder(FakeModel(), "cpu", source=source)))
    fresh = EngineService(tmp_path / "new.db", new_library_model="runs/chosen")
    fresh.load_model()
    fresh.close()
    indexed = EngineService(tmp_path / "old.db", new_library_model="runs/chosen")
    indexed.library.set_model(Encoder(FakeModel(), "cpu").model_id, "runs/fine-tuned")
    indexed.load_model()
    assert loaded == ["runs/chosen", "runs/fine-tuned"] and indexed.pending_switch() is None
    indexed.close()


def test_remember_captions_action_runs_the_trainer_without_training(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    window = make_window(tmp_path, None, auto_index=False)
    qtbot.addWidget(window)
    captioned = tmp_path / "captioned"
    captioned.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(captioned))
    started = []
    monkeypatch.setattr(FineTuneJob, "start", lambda job: started.append(job))  # no trainer process here
    window.finetuning.remember_action.trigger()
    window.finetuning.finetune_action.trigger()  # the other action: a full fine-tune
    arguments = [job.process.arguments() for job in started]
    assert arguments[0][:3] == ["-m", "trainer", "finetune"] and arguments[0][-2:] == ["--steps", "0"]
    assert str(captioned) in arguments[0] and "--steps" not in arguments[1]


def test_a_finished_fine_tune_says_what_its_model_remembers(qtbot, tmp_path):
    window = make_window(tmp_path, None, auto_index=False)
    qtbot.addWidget(window)
    script = "import json; print(json.dumps({'checkpoint': 'runs/best', 'caption_memory': {'entries': 12}}))"
    job = window.finetuning.start(str(tmp_path), program=sys.executable, arguments=["-c", script])
    with qtbot.waitSignal(job.finished, timeout=20000):
        pass
    qtbot.waitUntil(lambda: any("ready in runs/best. It remembers 12 captioned photos" in n.text
                                for n in window.notices.notices()), timeout=5000)
