"""The window with the real default model (cots-lite) on the shipped sample library: search quality."""
from __future__ import annotations

import cv2  # noqa: F401 - the headless OpenCV wheel and PySide6 load side by side
import pytest
from cots_resources import resource_path
from PySide6.QtCore import QMimeData, QSettings, Qt, QUrl

from app.gui.engine_service import EngineService
from app.gui.settings import Settings
from app.gui.thumbs import ThumbnailCache
from app.gui.window import MainWindow

try:
    from tests.app.test_gui import simulate_drop
except ImportError:
    from test_gui import simulate_drop  # type: ignore[no-redef]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
SAMPLE = resource_path("sample_library")
REAL_PHOTOS = resource_path("..", "tests", "data", "real_photos")


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gui_lite")
    service = EngineService(tmp / "library.db", "cots-lite", device="cpu")
    service.add_folder(str(SAMPLE))
    settings = Settings(QSettings(str(tmp / "settings.ini"), QSettings.IniFormat))
    win = MainWindow(service, settings, ThumbnailCache(tmp / "thumbnails"), model_label="cots-lite")
    win.show()
    yield win
    win.close()


def _wait_indexed(qtbot, window):
    qtbot.waitUntil(lambda: window.model_ready, timeout=600000)
    qtbot.waitUntil(lambda: not window.indexing.running and "10 photos" in window.counts_label.text(),
                    timeout=600000)


@pytest.mark.parametrize("query, expected", [("a cup of coffee", "coffee.jpg"), ("a rocket launch", "rocket.jpg"),
                                             ("a cat", "chelsea.jpg")])
def test_typing_a_query_shows_the_expected_sample_photo_first(qtbot, window, query, expected):
    _wait_indexed(qtbot, window)
    window.search.clear()
    qtbot.keyClicks(window.search.box, query)
    qtbot.waitUntil(lambda: not window.model.browsing and window.model.rowCount() > 0 and window.results_label.text().find(query) >= 0,
                    timeout=30000)
    hits = [h for h in window.model.hits() if h.kind == "image"]
    assert hits[0].path.endswith(expected), [h.path for h in window.model.hits()]


def test_dropping_a_photo_describes_it_and_finds_similar(qtbot, window):
    _wait_indexed(qtbot, window)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str((REAL_PHOTOS / "coffee.jpg").resolve()))])
    simulate_drop(window, mime)
    qtbot.waitUntil(lambda: bool(window.image_text.texts_shown()), timeout=60000)
    texts = window.image_text.texts_shown()[:5]
    assert any("espresso" in t or "coffee" in t for t in texts), texts
    qtbot.waitUntil(lambda: not window.model.browsing and window.model.rowCount() > 0 and "similar" in window.results_label.text(), timeout=60000)
    assert window.model.hit(0).path.endswith(("coffee.jpg", "scenes.mp4"))
    qtbot.keyClick(window.view, Qt.Key_Escape)
