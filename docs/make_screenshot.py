"""Render the main window to docs/screenshot.png (offscreen, no display needed): the library view (the
app opens on it), or with ``--query`` the results of a search (README's is ``--query "a person"``).

    python docs/make_screenshot.py [--query "a person"] [--model cots-lite] [--out docs/screenshot.png]
        [--size 1500x950] [--people PEOPLE.png]

Under Xvfb, for a real X window: ``QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1920x1080x24" python ...``.

Copies the shipped sample library into a temporary folder and writes GPS positions into the EXIF of a
few of its photos (``PLACES``: the sample photos carry none), indexes it into a temporary database with
the default model and every signal (places, EXIF, text in photos, faces), types the query if one is
given, waits for the grid and its thumbnails, selects the first item (its place, faces and face box in
the detail pane) and grabs the window.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Where the screenshot's copies of sample photos were "taken" (written into their EXIF GPS).
PLACES = {"astronaut.jpg": (29.7604, -95.3698), "people/grace_hopper.jpg": (38.8951, -77.0364),
          "coffee.jpg": (41.9028, 12.4964), "Trip to China 2011/china.jpg": (39.9042, 116.4074),
          "Trip to China 2011/flower.jpg": (39.9042, 116.4074), "rocket.jpg": (28.5729, -80.649)}


def with_places(sample: Path, work: Path) -> Path:
    """A copy of the sample library whose ``PLACES`` photos carry a GPS position in their EXIF."""
    from PIL import Image

    sys.path.insert(0, str(ROOT / "tests" / "app"))
    from fakes import save_with_exif

    copy = work / "sample_library"
    shutil.copytree(sample, copy)
    for name, position in PLACES.items():
        with Image.open(copy / name) as image:
            photo = image.convert("RGB")
        save_with_exif(photo, copy / name, gps=position)
    return copy


def wait(app, condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app.processEvents()
        if condition():
            return True
        time.sleep(0.02)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--query", default="", help="a search to show (default: the library view)")
    parser.add_argument("--model", default="cots-lite")
    parser.add_argument("--library", default=str(ROOT / "resources" / "sample_library"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    parser.add_argument("--size", default="1500x950", help="the window's size, WIDTHxHEIGHT")
    parser.add_argument("--people", metavar="PNG", help="also grab the People view into this file")
    args = parser.parse_args()
    width, height = (int(side) for side in args.size.lower().split("x"))

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.gui.engine_service import EngineService
    from app.gui.settings import Settings
    from app.gui.thumbs import ThumbnailCache
    from app.gui.window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    work = Path(tempfile.mkdtemp(prefix="cots-screenshot-"))
    service = EngineService(work / "library.db", args.model)
    service.add_folder(str(with_places(Path(args.library), work)))
    settings = Settings(QSettings(str(work / "settings.ini"), QSettings.IniFormat))
    window = MainWindow(service, settings, ThumbnailCache(work / "thumbnails"), model_label=args.model)
    window.resize(width, height)
    window.show()
    if not wait(app, lambda: window.model_ready, 600):
        print("the model did not load", file=sys.stderr)
        return 1
    wait(app, lambda: window.indexing.running, 10)
    wait(app, lambda: not window.indexing.running, 900)
    if args.query:
        window.search.box.setText(args.query)
        window.search.emit_query()
        window.search.weak.setChecked(True)  # show the whole small library, strong matches first
    if not wait(app, lambda: window.model.browsing != bool(args.query) and window.model.rowCount() > 0
                and window.model.hit(0) is not None, 60):
        print(f"nothing to show for {args.query!r}", file=sys.stderr)
    window.view.setCurrentIndex(window.model.index(0))
    wait(app, lambda: window.search.controls["place"].count() > 1, 30)
    window.view.setCurrentIndex(window.model.index(0))  # again: the detail pane fetches place and faces
    wait(app, lambda: window.model.thumbnails_ready() >= window.model.rowCount(), 60)
    wait(app, lambda: window.detail.preview.pixmap() is not None and not window.detail.preview.pixmap().isNull()
         and window.detail.texts.rowCount() > 0, 30)
    wait(app, lambda: False, 0.5)
    window.grab().save(args.out)
    print(args.out)
    if args.people:
        from app.gui.people_view import PERSON_ID, open_people_view

        view = open_people_view(window)
        wait(app, lambda: view.list.count() > 0, 30)
        if view.list.count():  # the first person's faces below, as a click shows them (else that half is empty)
            view.list.setCurrentRow(0)
            view.show_photos(view.list.item(0).data(PERSON_ID))
            wait(app, lambda: view.photos.count() > 0, 30)
        wait(app, lambda: False, 3.0)  # the face crops arrive from a worker
        view.grab().save(args.people)
        print(args.people)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
