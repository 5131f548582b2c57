"""Shared pieces of the GUI tests (no tests here): a small library on disk, an isolated window factory."""
from __future__ import annotations

import time
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QSettings

try:
    from tests.app.fakes import COLOURS, FakeModel, solid
except ImportError:  # run without the repository root on sys.path
    from fakes import COLOURS, FakeModel, solid  # type: ignore[no-redef]

from app.gui.engine_service import EngineService
from app.gui.settings import Settings
from app.gui.thumbs import ThumbnailCache
from app.gui.window import MainWindow
from app.library.encoder import Encoder
from app.library.indexer import IndexOptions

__all__ = ["COLOURS", "FakeModel", "make_photos", "make_window", "SlowFakeModel", "solid"]


class SlowFakeModel(FakeModel):
    """The fake model with a fixed cost per batch, so pause/cancel can act mid-run."""

    def __init__(self, delay: float = 0.05):
        super().__init__("slowfake")
        self.delay = delay

    def encode_images(self, pixels):
        time.sleep(self.delay)
        return super().encode_images(pixels)


def make_photos(folder: Path, colours=("red", "green", "blue", "yellow"), bad: bool = True,
                noise: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for colour in colours:
        solid(colour).save(folder / f"{colour}.jpg", quality=95)
    (folder / "red.txt").write_text("a red square")
    for i in range(noise):
        Image.effect_noise((48, 36), 60 + i).convert("RGB").save(folder / f"noise_{i:04d}.png")
    if bad:
        (folder / "broken.jpg").write_text("this is not a JPEG")
    return folder


def make_window(tmp_path: Path, folder: Path | None, model=None, options: IndexOptions | None = None,
                auto_index: bool = True) -> MainWindow:
    encoder = Encoder(model or FakeModel(), device="cpu", source="fake")
    service = EngineService(tmp_path / "library.db", encoder=encoder,
                            options=options or IndexOptions(batch_size=4, workers=1))
    if folder is not None:
        service.add_folder(str(folder))
    settings = Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    window = MainWindow(service, settings, ThumbnailCache(tmp_path / "cache" / "thumbnails"),
                        model_label="fake", auto_index=auto_index)
    window.show()
    return window

