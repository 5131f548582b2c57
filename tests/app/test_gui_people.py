"""The People view (offscreen): people listed with face thumbnails, a name typed in place is stored, a
drop of one person onto another merges them, a click shows a person's photos, and an error (a person
merged meanwhile) shows as a line."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from test_people import box, identity

from app.gui.people_view import PERSON_ID, PeopleView
from app.gui.tasks import TaskRunner
from app.library.people import People, store_faces

PHOTOS = Path(__file__).resolve().parents[1] / "data" / "people"


def add_photo(library, path: Path) -> int:
    folder = library.db.add_folder(path.parent)
    with library.db.transaction() as conn:
        return conn.execute("INSERT INTO media(path, folder_id, name, kind, status) VALUES (?, ?, ?, 'image', 'ok') "
                            "RETURNING id", (str(path), folder, path.name)).fetchone()[0]


def test_people_view_names_merges_and_shows_photos(qtbot, library, tmp_path):
    for i, (name, seed) in enumerate((("obama.jpg", 1), ("obama2.jpg", 1), ("biden.jpg", 2))):
        path = tmp_path / f"{i}_{name}"
        shutil.copy(PHOTOS / name, path)
        media_id = add_photo(library, path)
        with library.db.transaction() as conn:
            store_faces(conn, media_id, [box()], [identity(seed, 0.1, i).astype(np.float32)], 0.5, 1.0)
    people = People(library)
    runner = TaskRunner()
    view = PeopleView(people, runner)
    qtbot.addWidget(view)
    view.refresh()
    qtbot.waitUntil(lambda: view.list.count() == 2 and all(
        not view.list.item(i).icon().isNull() for i in range(2)), timeout=10000)
    two = next(view.list.item(i) for i in range(2) if view.list.item(i).toolTip() == "2 photos")
    target = two.data(PERSON_ID)
    two.setText("Barack")  # what typing the name in place does
    qtbot.waitUntil(lambda: people.find("barack") == [target], timeout=10000)
    qtbot.waitUntil(lambda: view._item(target) is not None and view._item(target).text() == "Barack", timeout=10000)

    view.show_photos(target)
    qtbot.waitUntil(lambda: view.photos.count() == 2, timeout=10000)

    other = next(view.list.item(i).data(PERSON_ID) for i in range(view.list.count())
                 if view.list.item(i).data(PERSON_ID) != target)
    view.list.merge_requested.emit(other, target)
    qtbot.waitUntil(lambda: view.list.count() == 1, timeout=10000)
    assert people.get(target).photos == 3
    view.merge(other, target)  # the merged person is gone: the view says where it went
    qtbot.waitUntil(lambda: f"merged into person {target}" in view.message.text(), timeout=10000)
    runner.shutdown()


def test_a_named_person_is_a_filter_of_the_main_window(qtbot, tmp_path):
    from test_gui_support import make_window

    from app.library.indexer import IndexOptions

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("obama.jpg", "obama2.jpg", "biden.jpg"):
        shutil.copy(PHOTOS / name, folder / name)
    window = make_window(tmp_path, folder, options=IndexOptions(batch_size=4, workers=1,
                                                                signals_off=frozenset({"ocr", "faces"})))
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: not window.indexing.running and "3 photos" in window.counts_label.text(), timeout=30000)
    library = window.service.library
    ids = {Path(record.path).name: media_id for media_id, record in library.media(list(range(1, 10))).items()}
    for name, seed in (("obama.jpg", 1), ("obama2.jpg", 1), ("biden.jpg", 2)):
        with library.db.transaction() as conn:
            store_faces(conn, ids[name], [box()], [identity(seed, 0.1, ids[name]).astype(np.float32)], 0.5, 1.0)
    people = People(library)
    barack = next(p for p in people.list(min_photos=1) if p.photos == 2)
    people.name(barack.id, "Barack")
    window.refresh_status()
    person = window.search.person
    qtbot.waitUntil(lambda: person.count() == 2, timeout=10000)
    assert person.itemText(1) == "Barack (2)"
    person.setCurrentIndex(1)  # the library view keeps his photos only
    qtbot.waitUntil(lambda: window.model.browsing and window.model.rowCount() == 2
                    and all(window.model.hit(r) is not None for r in range(2)), timeout=10000)
    assert sorted(Path(window.model.hit(r).path).name for r in range(2)) == ["obama.jpg", "obama2.jpg"]
    assert window.search.filters().people == ("Barack",)
    assert window.toolbar.filters_button.text() == "Filters (1)"
