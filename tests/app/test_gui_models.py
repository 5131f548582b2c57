"""The Model menu through the real window (offscreen): the list of models with the current one checked,
choosing one switches, and "Download a model…" fetches from a stand-in hub with progress in the status bar."""
from __future__ import annotations

import json
import shutil

import cv2  # noqa: F401 - the headless OpenCV wheel and PySide6 load side by side
import pytest
from hf_tiny import make_tiny_clip
from hub_server import HubServer

from cots_core import hub

try:
    from tests.app.test_gui_support import make_window
except ImportError:
    from test_gui_support import make_window  # type: ignore[no-redef]

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def clip_repo(tmp_path_factory):
    return make_tiny_clip(tmp_path_factory.mktemp("repo") / "tiny-clip")


def _model_rows(window) -> dict:
    return {action.data(): action for action in window.model_menu.model_actions}


def test_the_model_menu_lists_the_models_and_choosing_one_switches(qtbot, tmp_path, clip_repo, monkeypatch):
    downloaded = hub.hub_models_dir() / "org--tiny-clip"
    shutil.copytree(clip_repo, downloaded)
    (hub.hub_models_dir() / "org--broken").mkdir()
    (hub.hub_models_dir() / "org--broken" / "config.json").write_text("{oops")
    window = make_window(tmp_path, None, auto_index=False)
    qtbot.addWidget(window)
    window.current_model = "cots-lite"
    window.model_menu.refresh()
    qtbot.waitUntil(lambda: "org/tiny-clip" in _model_rows(window) and _model_rows(window)["cots-lite"].isChecked(),
                    timeout=10000)  # the listing asked for at construction may land first, with "fake" current
    rows = _model_rows(window)
    assert rows["cots-lite"].isChecked() and not rows["org/tiny-clip"].isChecked()
    assert "downloaded, 24-d" in rows["org/tiny-clip"].text()
    assert not rows["org/broken"].isEnabled() and "unreadable" in rows["org/broken"].text()
    switched = []
    monkeypatch.setattr(window.switcher, "switch", lambda source: switched.append(source))
    rows["org/tiny-clip"].trigger()
    assert switched == ["org/tiny-clip"]


def test_download_a_model_shows_progress_and_offers_to_switch(qtbot, tmp_path, clip_repo, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    window = make_window(tmp_path, None, auto_index=False)
    qtbot.addWidget(window)
    messages = []
    window.statusBar().messageChanged.connect(messages.append)
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: ("org/tiny-clip", True))
    with HubServer({"org/tiny-clip": clip_repo}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        window.model_menu.download_action.trigger()
        qtbot.waitUntil(lambda: any("org/tiny-clip is downloaded" in n.text for n in window.notices.notices()),
                        timeout=60000)
    assert hub.downloaded_path("org/tiny-clip") is not None
    assert any(m.startswith("Downloading org/tiny-clip: ") and "%" in m for m in messages)
    assert "model.safetensors" in server.fetched()
    notice = next(n for n in window.notices.notices() if "org/tiny-clip is downloaded" in n.text)
    switched = []
    monkeypatch.setattr(window.switcher, "switch", lambda source: switched.append(source))
    notice.buttons["Switch to it"].click()
    assert switched == ["org/tiny-clip"]
    qtbot.waitUntil(lambda: "org/tiny-clip" in _model_rows(window), timeout=10000)


def test_download_refusals_are_notices(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    window = make_window(tmp_path, None, auto_index=False)
    qtbot.addWidget(window)
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: ("not a hub id", True))
    window.model_menu.download_action.trigger()
    assert any("not a hub id" in n.text for n in window.notices.notices())
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: ("org/anything", True))
    window.model_menu.download_action.trigger()  # HF_HUB_OFFLINE=1 (tests/conftest.py)
    qtbot.waitUntil(lambda: any("offline" in n.text for n in window.notices.notices()), timeout=10000)
    assert json.dumps([n.text for n in window.notices.notices()]).count("Traceback") == 0
