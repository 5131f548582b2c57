"""Fixtures for the library tests: a fake model, small generated folders, a fresh library."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fakes import fake_encoder, noise_image, solid  # noqa: E402

from app.library import Library  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COTS_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture(scope="session", autouse=True)
def _first_pass_signals_only():
    """Real OCR and face detection load models (seconds) and read every photo: tests that are not about
    them index with the cheap first-pass signals (place, EXIF) only, module-scoped fixtures included.
    Yields the whole registry for ``_real_signals_when_marked``."""
    from app.library import signals

    full = signals.SIGNAL_CLASSES
    patch = pytest.MonkeyPatch()
    patch.setattr(signals, "SIGNAL_CLASSES", tuple(cls for cls in full if not cls.second_pass))
    yield full
    patch.undo()


@pytest.fixture(autouse=True)
def _real_signals_when_marked(request, monkeypatch, _first_pass_signals_only):
    """Tests marked ``real_signals`` (the end-to-end signal tests) index with every registered signal."""
    if request.node.get_closest_marker("real_signals") is not None:
        from app.library import signals

        monkeypatch.setattr(signals, "SIGNAL_CLASSES", _first_pass_signals_only)


@pytest.fixture
def encoder():
    return fake_encoder()


@pytest.fixture
def photos(tmp_path) -> Path:
    """A folder with three plain-colour photos and a few noise images in a subfolder."""
    root = tmp_path / "photos"
    (root / "Paris 2019").mkdir(parents=True)
    for colour in ("red", "green", "blue"):
        solid(colour).save(root / f"{colour}.jpg")
    for i in range(5):
        noise_image(i).save(root / "Paris 2019" / f"IMG_{i:04d}.png")
    return root


@pytest.fixture
def library(tmp_path):
    lib = Library(tmp_path / "lib" / "library.db")
    yield lib
    lib.close()
