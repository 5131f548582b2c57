"""The window as a photo browser, checked as a person sees it (offscreen, pytest-qt, the fast fake model):
it opens on the library newest first under month headers, the timeline sets the date filter, the toolbar
keeps the search box wide, Esc comes back to the library where it was, and the counts read right."""
from __future__ import annotations

import cv2  # noqa: F401 - the headless OpenCV wheel and PySide6 load side by side
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from app.gui.search_controller import match_text, section_title
from app.gui.toolbar import MIN_SEARCH_WIDTH

try:
    from tests.app.fakes import save_with_exif
    from tests.app.test_gui_support import make_window
except ImportError:
    from fakes import save_with_exif  # type: ignore[no-redef]
    from test_gui_support import make_window  # type: ignore[no-redef]

pytestmark = pytest.mark.timeout(120)
MONTHS = ("2021-01", "2021-02", "2021-03", "2021-04", "2021-05")  # six photos taken in each
PER_MONTH = 6


@pytest.fixture
def window(qtbot, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for m, month in enumerate(MONTHS):
        for day in range(1, PER_MONTH + 1):
            colour = (40 * m, 30 * day, 200 - 30 * m)
            name = "lighthouse" if (month, day) == ("2021-03", 4) else f"IMG_{month}-{day:02d}"  # found by name
            save_with_exif(Image.new("RGB", (64, 48), colour), folder / f"{name}.jpg",
                           taken=f"{month.replace('-', ':')}:{day:02d} 12:00:00")
    window = make_window(tmp_path, folder)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.model_ready, timeout=10000)
    total = len(MONTHS) * PER_MONTH
    qtbot.waitUntil(lambda: not window.indexing.running and window.model.browsing
                    and window.model.rowCount() == total, timeout=30000)
    return window


def loaded(window) -> bool:
    return all(window.model.hit(row) is not None for row in range(window.model.rowCount()))


def test_it_opens_on_the_library_newest_first_under_month_headers(qtbot, window):
    model, grid = window.model, window.view
    assert [s.title for s in model.sections()] == ["May 2021", "April 2021", "March 2021", "February 2021",
                                                   "January 2021"]
    assert [s.count for s in model.sections()] == [PER_MONTH] * len(MONTHS)
    qtbot.waitUntil(lambda: loaded(window), timeout=10000)
    names = [model.hit(row).path.rsplit("/", 1)[-1] for row in range(model.rowCount())]
    assert names[:2] == ["IMG_2021-05-06.jpg", "IMG_2021-05-05.jpg"] and names[-1] == "IMG_2021-01-01.jpg"
    assert window.results_label.text() == "All 30 photos and videos, newest first"
    # the header takes the top of the grid: the first thumbnail sits below it, nothing is under the title
    first = grid.visualRect(model.index(0))
    assert first.top() > 20 and not grid.indexAt(QPoint(first.left() + 5, 10)).isValid()
    assert grid.indexAt(first.center()).row() == 0
    # keyboard: Down moves one line down within the month, then into the next month's first line
    grid.setFocus()
    grid.setCurrentIndex(model.index(0))
    columns = grid.columns()
    qtbot.keyClick(grid, Qt.Key_Down)
    assert grid.currentIndex().row() == (columns if columns < PER_MONTH else PER_MONTH)
    assert window.detail.hit is model.hit(grid.currentIndex().row())
    # zoomed in to big thumbnails, the library is grouped by day
    window.zoom.setValue(256)
    qtbot.waitUntil(lambda: len(model.sections()) == len(MONTHS) * PER_MONTH, timeout=10000)
    assert model.sections()[0].title == section_title("2021-05-06")


def test_the_timeline_sets_the_date_filter_and_shows_where_results_fall(qtbot, window):
    timeline = window.timeline
    qtbot.waitUntil(lambda: timeline.buckets == list(MONTHS), timeout=10000)
    assert timeline.shown == {month: PER_MONTH for month in MONTHS}
    march = timeline.buckets.index("2021-03")
    x = int((march + 0.5) * timeline.width() / len(timeline.buckets))
    qtbot.mouseClick(timeline, Qt.LeftButton, pos=QPoint(x, timeline.height() // 2))
    qtbot.waitUntil(lambda: window.model.browsing and window.model.rowCount() == PER_MONTH, timeout=10000)
    assert [s.title for s in window.model.sections()] == ["March 2021"]
    assert window.results_label.text() == "6 of 30 photos and videos, newest first"
    assert window.toolbar.filters_button.text() == "Filters (1)"
    assert timeline.shown == {"2021-03": PER_MONTH}
    # dragging across two months picks both; a right click clears the range
    start = int((march + 0.5) * timeline.width() / len(timeline.buckets))
    end = int((march + 1.5) * timeline.width() / len(timeline.buckets))
    qtbot.mousePress(timeline, Qt.LeftButton, pos=QPoint(start, 10))
    qtbot.mouseMove(timeline, QPoint(end, 10))
    qtbot.mouseRelease(timeline, Qt.LeftButton, pos=QPoint(end, 10))
    qtbot.waitUntil(lambda: window.model.rowCount() == 2 * PER_MONTH, timeout=10000)
    qtbot.mouseClick(timeline, Qt.RightButton, pos=QPoint(start, 10))
    qtbot.waitUntil(lambda: window.model.rowCount() == len(MONTHS) * PER_MONTH, timeout=10000)
    assert window.toolbar.filters_button.text() == "Filters"


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_the_toolbar_keeps_the_search_box_wide_and_clips_nothing(qtbot, window, size):
    window.resize(*size)
    window.toolbar.filters_button.setChecked(True)  # the filter row shown
    qtbot.waitUntil(lambda: window.width() == size[0], timeout=5000)
    QApplication.processEvents()
    box = window.search.box
    assert box.width() >= MIN_SEARCH_WIDTH
    assert box.width() >= window.width() // 3  # it grows with the window
    window_rect = window.rect()
    for widget in [box, window.toolbar.filters_button, *window.toolbar.filter_widgets()]:
        if widget.isHidden():
            continue
        rect = widget.rect().translated(widget.mapTo(window, QPoint(0, 0)))
        assert window_rect.contains(rect), (widget, rect)
        assert widget.width() >= widget.minimumSizeHint().width(), widget  # not squeezed
    qtbot.keyClicks(box, "a dog on the beach, browsing")
    assert box.fontMetrics().horizontalAdvance(box.text()) < box.width()  # the typed query is visible


def test_escape_comes_back_to_the_library_where_it_was(qtbot, window):
    window.resize(900, 600)
    QApplication.processEvents()
    grid = window.view
    bar = grid.verticalScrollBar()
    assert bar.maximum() > 100
    bar.setValue(bar.maximum() // 2)
    place = bar.value()
    qtbot.keyClicks(window.search.box, "lighthouse")
    qtbot.keyClick(window.search.box, Qt.Key_Return)
    qtbot.waitUntil(lambda: not window.model.browsing and window.model.rowCount() > 0, timeout=10000)
    assert window.model.hit(0).path.endswith("lighthouse.jpg")
    qtbot.keyClick(window.search.box, Qt.Key_Escape)
    assert window.model.browsing and window.search.box.text() == ""
    assert bar.value() == place


def test_match_counts_read_as_a_person_writes_them(qtbot, window):
    assert match_text(1, 0, 0, "“x”") == ("1 match “x”", False)
    assert match_text(12, 3, 0, "“x”") == ("12 matches “x” + 3 weaker", False)
    assert match_text(0, 0, 9, "“x”") == ("No good matches “x” — <a href='weak'>show 9 weaker</a>", True)
    assert match_text(0, 0, 0, "“x”") == ("No matches “x”", False)
    qtbot.keyClicks(window.search.box, "lighthouse")  # found by its name: a strong match
    qtbot.keyClick(window.search.box, Qt.Key_Return)
    qtbot.waitUntil(lambda: not window.model.browsing and window.model.rowCount() > 0, timeout=10000)
    assert window.results_label.text().startswith("1 match “lighthouse”")
    window.search.clear()
    qtbot.keyClicks(window.search.box, "zebra")  # only weak meaning matches (the fake model is uncalibrated)
    qtbot.keyClick(window.search.box, Qt.Key_Return)
    qtbot.waitUntil(lambda: not window.model.browsing and "zebra" in window.results_label.text(), timeout=10000)
    hidden = window.model.hidden_count()
    assert hidden > 0 and f"show {hidden} weaker" in window.results_label.text()
    window.results_label.linkActivated.emit("weak")  # the link in the line
    assert window.search.weak.isChecked() and window.model.rowCount() == hidden


def test_section_titles_name_the_month_or_the_day_without_a_leading_zero():
    assert section_title("2024-05") == "May 2024"
    assert section_title("2024-05-07") == "Tuesday 7 May 2024"
    assert section_title(None) == "Undated"


def test_an_empty_library_says_so_instead_of_counting_zero(qtbot, tmp_path):
    window = make_window(tmp_path, None, auto_index=False)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.results_label.text() == "No photos or videos yet", timeout=10000)


def test_a_thumbnail_decodes_without_qt_image_plugins(tmp_path):
    """The grid's workers decode thumbnails with Pillow (QImage.fromData deadlocked against the GUI thread)."""
    import io

    from app.gui.results import decoded_thumbnail

    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), (200, 30, 30)).save(buffer, "JPEG", quality=95)
    image = decoded_thumbnail(buffer.getvalue())
    assert (image.width(), image.height()) == (40, 20)
    pixel = image.pixelColor(20, 10)
    assert abs(pixel.red() - 200) < 12 and pixel.green() < 50 and pixel.blue() < 50
    assert decoded_thumbnail(b"not an image").isNull() and decoded_thumbnail(b"").isNull()


def test_escape_after_an_outside_change_comes_back_at_once_then_lists_afresh(qtbot, window):
    """The library watcher's relist while query results are shown: Esc still comes back where the library
    was, then the listing is made again (it may have changed) at that place."""
    window.resize(900, 600)
    QApplication.processEvents()
    bar = window.view.verticalScrollBar()
    bar.setValue(bar.maximum() // 2)
    place, before = bar.value(), window.searching.listing
    qtbot.keyClicks(window.search.box, "lighthouse")
    qtbot.keyClick(window.search.box, Qt.Key_Return)
    qtbot.waitUntil(lambda: not window.model.browsing and window.model.rowCount() > 0, timeout=10000)
    window.searching.relist()  # as the watcher does when another process changed the library
    assert not window.model.browsing  # the query's results stay
    qtbot.keyClick(window.search.box, Qt.Key_Escape)
    assert window.model.browsing and bar.value() == place
    qtbot.waitUntil(lambda: window.searching.listing is not before, timeout=10000)
    assert window.model.browsing and abs(bar.value() - place) < window.view.height()
