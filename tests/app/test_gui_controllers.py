"""The main window's small controllers: folder watcher, model switch (drops are tested through the window)."""
from __future__ import annotations

import threading
from types import SimpleNamespace

from PySide6.QtCore import QSettings

from app.gui.controllers import FolderWatcher, ModelSwitcher
from app.gui.indexing import IndexingController
from app.gui.settings import Settings
from app.gui.tasks import TaskRunner


def test_the_folder_watcher_fires_once_after_changes_settle(qtbot, tmp_path):
    (tmp_path / "sub").mkdir()
    watcher = FolderWatcher(delay_ms=100)
    watcher.watch([str(tmp_path), str(tmp_path / "missing")])  # listed on a worker
    qtbot.waitUntil(lambda: set(watcher.watcher.directories()) == {str(tmp_path), str(tmp_path / "sub")})
    fired = []
    watcher.changed.connect(lambda: fired.append(1))
    with qtbot.waitSignal(watcher.changed, timeout=5000):
        (tmp_path / "a.jpg").write_bytes(b"x")
        (tmp_path / "sub" / "b.jpg").write_bytes(b"x")
    qtbot.wait(300)
    assert fired == [1]


class SwitchingService:
    def __init__(self):
        self.release = threading.Event()

    def switch_model(self, source, on_progress, control):
        self.release.wait(10)
        return f"id-of-{source}"


def test_the_model_switcher_reports_the_new_model_and_refuses_while_busy(qtbot, tmp_path):
    runner = TaskRunner()
    indexing = IndexingController(runner)
    settings = Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    service = SwitchingService()
    switcher = ModelSwitcher(service, indexing, settings)
    refused = []
    switcher.refused.connect(refused.append)
    finished = []
    indexing.finished.connect(finished.append)
    with qtbot.waitSignal(switcher.switched, timeout=10000) as switched:
        switcher.switch("runs/mine")
        assert settings["model"] == "runs/mine" and indexing.running
        switcher.switch("other")  # busy: refused, the setting kept
        assert refused and settings["model"] == "runs/mine"
        service.release.set()
    assert switched.args == ["id-of-runs/mine"] and not finished  # a switch is not an indexing summary
    runner.shutdown()


class QueryService:
    """Answers a query with one hit named after it; "slow" waits until released."""

    def __init__(self):
        self.release = threading.Event()
        self.asked = []

    def search(self, query, filters):
        self.asked.append(query)
        if query == "slow":
            self.release.wait(10)
        return [SimpleNamespace(path=f"{query}.jpg", weak=False, kind="image", timestamp=None)]


def test_the_search_controller_answers_a_waiting_query_and_drops_superseded_answers(qtbot, tmp_path):
    from app.gui.grid import ResultsGrid
    from app.gui.results import ResultsModel
    from app.gui.search_bar import SearchBar
    from app.gui.search_controller import SearchController
    from app.gui.thumbs import ThumbnailCache

    runner, service, bar = TaskRunner(), QueryService(), SearchBar()
    model = ResultsModel(runner, ThumbnailCache(tmp_path / "thumbs"))
    settings = Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    searching = SearchController(service, runner, bar, model, ResultsGrid(model), settings)
    searching.run_query("early")  # typed while the model loads
    assert searching.label.text() == "Waiting for the model to load…" and not service.asked
    searching.set_model_ready()
    qtbot.waitUntil(lambda: model.rowCount() == 1, timeout=5000)
    assert model.hit(0).path == "early.jpg" and "“early”" in searching.label.text()
    shown = []
    model.modelReset.connect(lambda: shown.append(model.hit(0).path if model.rowCount() else None))
    searching.run_query("slow")
    qtbot.waitUntil(lambda: service.asked[-1:] == ["slow"], timeout=5000)
    searching.run_query("fast")  # asked while "slow" is still being answered
    service.release.set()
    qtbot.waitUntil(lambda: model.hit(0).path == "fast.jpg", timeout=5000)
    qtbot.wait(100)
    assert shown == ["fast.jpg"] and "“fast”" in searching.label.text()  # the answer to "slow" was dropped
    runner.shutdown()


def test_the_folder_watcher_lists_subfolders_only_when_something_changed(qtbot, tmp_path, monkeypatch):
    """Listing a folder of 100,000 files at every status refresh stalled the window (bench/gui_100k.py): the
    same folders are not listed again until one of them changes, links to folders are not followed, and a new
    subfolder is watched after its parent changed."""
    import os

    from app.gui import controllers

    (tmp_path / "sub").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "sub")
    listed = []
    real_scandir = os.scandir
    monkeypatch.setattr(controllers.os, "scandir", lambda path: listed.append(path) or real_scandir(path))
    watcher = FolderWatcher(delay_ms=50)
    watcher.watch([str(tmp_path)])
    qtbot.waitUntil(lambda: set(watcher.watcher.directories()) == {str(tmp_path), str(tmp_path / "sub")})
    watcher.watch([str(tmp_path)])
    qtbot.wait(100)
    assert listed == [str(tmp_path)]
    with qtbot.waitSignal(watcher.changed, timeout=5000):
        (tmp_path / "new").mkdir()
    watcher.watch([str(tmp_path)])
    qtbot.waitUntil(lambda: str(tmp_path / "new") in watcher.watcher.directories())
    assert len(listed) == 2
