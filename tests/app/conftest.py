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
    them index with the cheap first-pass signals (place, EXIF) only, module-scoped fixtures included. The
    registry itself stays whole (their flags, filters and detail rows are declared as in use); only what
    runs leaves the shipped second-pass signals out (a test's own second-pass signals still run). Yields
    the real ``all_signals`` for ``_real_signals_when_marked``."""
    from app.library import signals

    real = signals.all_signals
    slow = {cls for cls in signals.SIGNAL_CLASSES if cls.second_pass}
    patch = pytest.MonkeyPatch()
    patch.setattr(signals, "all_signals", lambda: [s for s in real() if type(s) not in slow])
    yield real
    patch.undo()


@pytest.fixture(autouse=True)
def _real_signals_when_marked(request, monkeypatch, _first_pass_signals_only):
    """Tests marked ``real_signals`` (the end-to-end signal tests) index with every registered signal."""
    if request.node.get_closest_marker("real_signals") is not None:
        from app.library import signals

        monkeypatch.setattr(signals, "all_signals", _first_pass_signals_only)


@pytest.fixture
def encoder():
    return fake_encoder()


@pytest.fixture
def cots(tmp_path, capsys, monkeypatch):
    """`cots ARGS --db DB` through the real CLI on the fake model: (status, stdout, stderr); ``.db`` is DB."""
    from app.cli import main
    from app.library.encoder import Encoder

    encoder = fake_encoder()
    monkeypatch.setattr(Encoder, "load", classmethod(lambda cls, *a, **k: encoder))
    db = str(tmp_path / "people.db")

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        status = main([*argv, "--db", db])
        out, err = capsys.readouterr()
        return status, out, err

    run.db = db
    return run


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
