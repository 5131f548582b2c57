"""The window's signal parts: place and camera filters filled from the library, the detail pane's place,
camera and capture date, face boxes on the preview, and the second-pass checkbox (offscreen)."""
from __future__ import annotations

import cv2  # noqa: F401 - the headless OpenCV wheel and PySide6 load side by side
import pytest
from fakes import real_photo, save_with_exif
from PySide6.QtGui import QColor, QPixmap

from app.gui.panels import draw_boxes
from app.gui.service import SignalDetails
from app.library.indexer import IndexOptions
from app.library.signal_runner import disabled_signals

try:
    from tests.app.test_gui_support import make_window
except ImportError:
    from test_gui_support import make_window  # type: ignore[no-redef]

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def window(qtbot, tmp_path):
    folder = tmp_path / "trip"
    folder.mkdir()
    save_with_exif(real_photo("chelsea"), folder / "IMG_0001.jpg", gps=(48.8566, 2.3522),
                   camera=("Canon", "Canon EOS 5D"), taken="2019:06:30 12:00:00")
    save_with_exif(real_photo("coffee"), folder / "IMG_0002.jpg", gps=(35.6895, 139.6917))
    real_photo("astronaut").save(folder / "IMG_0003.jpg")
    window = make_window(tmp_path, folder, options=IndexOptions(batch_size=4, workers=1,
                                                                signals_off=frozenset({"ocr", "faces"})))
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.model_ready, timeout=10000)
    qtbot.waitUntil(lambda: not window.indexing.running and "3 photos" in window.counts_label.text(), timeout=30000)
    qtbot.waitUntil(lambda: window.search.controls["place"].count() == 3, timeout=5000)
    return window


def test_place_filter_and_detail_pane_show_the_photos_place(qtbot, window):
    bar = window.search
    place, camera, people = (bar.controls[name] for name in ("place", "camera", "with_people"))
    assert [place.itemText(i) for i in range(place.count())] == \
        ["All places", "Paris, France (1)", "Tokyo, Japan (1)"]
    assert camera.itemText(1) == "Canon EOS 5D (1)"
    bar.weak.setChecked(True)  # the fake model is not calibrated: every meaning match is weak
    place.setCurrentIndex(1)
    qtbot.keyClicks(bar.box, "photo")
    qtbot.waitUntil(lambda: not window.model.browsing and window.model.rowCount() == 1, timeout=10000)
    assert window.model.hit(0).path.endswith("IMG_0001.jpg") and bar.filters().place == "Paris, France"
    window.show_detail(window.model.hit(0))
    fields = window.detail.fields
    assert fields["Place"].text() == "Paris, Île-de-France, France"
    assert fields["Camera"].text() == "Canon EOS 5D" and fields["Taken"].text() == "2019-06-30 12:00"
    assert window.detail.form.isRowVisible(fields["Place"]) and not window.detail.form.isRowVisible(fields["Faces"])
    place.setCurrentIndex(0)
    people.setChecked(True)  # no faces were read in this library: nobody is there
    assert bar.filters().with_people is True
    qtbot.waitUntil(lambda: not window.model.browsing and window.model.rowCount() == 0, timeout=10000)


def test_second_pass_checkbox_is_kept_in_the_library(qtbot, window):
    box = window.library.second_pass
    assert box.isChecked()
    box.click()
    qtbot.waitUntil(lambda: disabled_signals(window.service.library) == {"ocr", "faces"}, timeout=5000)
    window.refresh_status()
    qtbot.waitUntil(lambda: not window.library.second_pass.isChecked(), timeout=5000)


def test_face_boxes_are_drawn_on_the_preview(qtbot, window):
    pixmap = QPixmap(100, 80)
    pixmap.fill(QColor("black"))
    drawn = draw_boxes(pixmap, [("faces", 0.2, 0.25, 0.5, 0.5, 0.9, "face"), ("ocr", 0.0, 0.0, 1.0, 1.0, 0.9, "x")])
    image = drawn.toImage()
    assert image.pixelColor(20, 40).name() == "#ffd54f"  # the face box's left edge
    assert image.pixelColor(5, 5).name() == "#000000"  # OCR lines are not drawn
    window.show_detail(window.model.hit(0) if window.model.rowCount() else None)
    window.detail.set_signal_details(SignalDetails({"ocr": "STOP\nsecond line\nthird\nfourth"}, []))
    assert window.detail.fields["Text"].text() == "STOP\nsecond line\nthird …"


def test_a_country_of_several_cities_is_a_place_choice(tmp_path):
    from fakes import fake_encoder, run_indexer

    from app.gui.engine_service import EngineService

    folder = tmp_path / "france"
    folder.mkdir()
    for i, position in enumerate([(48.8566, 2.3522), (45.764, 4.8357), (48.8566, 2.3522)]):  # Paris, Lyon, Paris
        save_with_exif(real_photo("coffee", 64 + i), folder / f"{i}.jpg", gps=position)
    service = EngineService(tmp_path / "lib.db", encoder=fake_encoder())
    service.add_folder(str(folder))
    run_indexer(service.library, service.encoder)
    assert service.signal_choices().filters["place"] == [("Paris, France", 2), ("Lyon, France", 1), ("France", 3)]
    service.close()
