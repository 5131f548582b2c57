"""The People view (offscreen): people listed with face thumbnails and photo counts (named first, then by
photos), a name typed in place is stored, a drop of one person onto another merges them, a click shows a
person's faces, the right-click menus hide, forget and take a face out ("Not this person"), and an error
(a person merged meanwhile) shows as a line. And the detail pane's face boxes: a tooltip says whose face it
is, a click names the face, moves it to a name chosen from the completion, or out ("Not this person")."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QApplication, QLineEdit, QToolTip
from test_people import box, identity

from app.gui.people_view import FACE_ID, HINT, PERSON_ID, PeopleView
from app.gui.tasks import TaskRunner
from app.library.face_grouping import store_faces
from app.library.people import People

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
    assert view.hint.text() == HINT and "drag one person onto another" in HINT and "right-click" in HINT
    assert view.list.item(0).text().endswith(" · 2 photos") and view.list.item(1).text().endswith(" · 1 photo")
    two = view.list.item(0)
    target = two.data(PERSON_ID)
    two.setText("Barack")  # what typing the name in place does
    qtbot.waitUntil(lambda: people.find("barack") == [target], timeout=10000)
    qtbot.waitUntil(lambda: view._item(target) is not None and view._item(target).text() == "Barack · 2 photos",
                    timeout=10000)

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


def _menu_action(menu, text: str):
    return next(action for action in menu.actions() if action.text().startswith(text))


def test_people_view_orders_by_photos_and_its_menus_hide_forget_and_take_a_face_out(qtbot, library, tmp_path):
    # three people: A in 3 photos, B in 2, C in 1; C is named, so C comes first however few photos
    sizes = {1: 3, 2: 2, 3: 1}
    for seed, count in sizes.items():
        for i in range(count):
            path = tmp_path / f"{seed}_{i}.jpg"
            shutil.copy(PHOTOS / "obama.jpg", path)
            media_id = add_photo(library, path)
            with library.db.transaction() as conn:
                store_faces(conn, media_id, [box()], [identity(seed, 0.1, 10 * seed + i)], 0.5, 1.0)
    people = People(library)
    by_photos = {p.photos: p.id for p in people.list(min_photos=1)}
    people.name(by_photos[1], "Cleo")
    runner = TaskRunner()
    view = PeopleView(people, runner)
    qtbot.addWidget(view)
    view.refresh()
    qtbot.waitUntil(lambda: view.list.count() == 3, timeout=10000)
    texts = [view.list.item(i).text() for i in range(3)]
    assert texts == ["Cleo · 1 photo", f"person {by_photos[3]} · 3 photos", f"person {by_photos[2]} · 2 photos"]

    view.confirm = lambda text: False  # Forget asks first: "No" forgets nothing
    _menu_action(view.person_menu(view._item(by_photos[2])), "Forget").trigger()
    view.confirm = lambda text: True
    _menu_action(view.person_menu(view._item(by_photos[3])), "Hide").trigger()
    qtbot.waitUntil(lambda: view.list.count() == 2 and view._item(by_photos[3]) is None, timeout=10000)
    assert people.list(include_hidden=True, min_photos=1)[1].hidden
    view.show_hidden.setChecked(True)  # hidden people shown again, marked, with "Show again"
    qtbot.waitUntil(lambda: view._item(by_photos[3]) is not None, timeout=10000)
    assert view._item(by_photos[3]).text().endswith("(hidden)")
    _menu_action(view.person_menu(view._item(by_photos[3])), "Show again").trigger()
    qtbot.waitUntil(lambda: not view._item(by_photos[3]).text().endswith("(hidden)"), timeout=10000)
    _menu_action(view.person_menu(view._item(by_photos[2])), "Forget").trigger()
    qtbot.waitUntil(lambda: view.list.count() == 2 and view._item(by_photos[2]) is None, timeout=10000)
    assert len(people.list(include_hidden=True, min_photos=1)) == 2

    view.show_photos(by_photos[3])  # the person's faces; one of them is someone else
    qtbot.waitUntil(lambda: view.photos.count() == 3, timeout=10000)
    face = view.photos.item(2).data(FACE_ID)
    menu = view.face_menu([face])
    assert [a.text() for a in menu.actions()] == ["Not this person"]
    menu.actions()[0].trigger()
    qtbot.waitUntil(lambda: view.photos.count() == 2 and view.list.count() == 3, timeout=10000)
    assert people.get(by_photos[3]).photos == 2
    alone = next(p for p in people.list(min_photos=1) if p.id not in by_photos.values())
    assert [f.id for f in people.faces(alone.id)] == [face] and people.faces(alone.id)[0].source == "user"
    runner.shutdown()


def test_typing_in_place_edits_the_name_alone(qtbot, library, tmp_path):
    path = tmp_path / "a.jpg"
    shutil.copy(PHOTOS / "obama.jpg", path)
    media_id = add_photo(library, path)
    with library.db.transaction() as conn:
        store_faces(conn, media_id, [box()], [identity(1)], 0.5, 1.0)
    people = People(library)
    person = people.list(min_photos=1)[0]
    people.name(person.id, "Grace")
    runner = TaskRunner()
    view = PeopleView(people, runner)
    qtbot.addWidget(view)
    view.show()
    view.refresh()
    qtbot.waitUntil(lambda: view.list.count() == 1, timeout=10000)
    item = view.list.item(0)
    assert item.text() == "Grace · 1 photo"
    view.list.editItem(item)
    editor = view.list.findChild(QLineEdit)
    assert editor is not None and editor.text() == "Grace"  # the name, not the count
    editor.setText("Grace Hopper")
    qtbot.keyClick(editor, Qt.Key_Return)
    qtbot.waitUntil(lambda: people.get(person.id).name == "Grace Hopper", timeout=10000)
    qtbot.waitUntil(lambda: view.list.item(0).text() == "Grace Hopper · 1 photo", timeout=10000)
    view.list.item(0).setText("")  # an emptied name takes the name away
    qtbot.waitUntil(lambda: people.get(person.id).name is None, timeout=10000)
    runner.shutdown()


def test_the_suggestions_strip_asks_and_answers_with_one_click(qtbot, library, tmp_path):
    def add(name: str, vector) -> None:
        path = tmp_path / name
        shutil.copy(PHOTOS / "obama.jpg", path)
        media_id = add_photo(library, path)
        with library.db.transaction() as conn:
            store_faces(conn, media_id, [box()], [vector], 0.5, 1.0)

    for i in range(3):
        add(f"grace{i}.jpg", identity(1, 0.1, i))
    add("grace_far.jpg", identity(1, 0.55, 20))  # too far to have joined her: "Is this Grace?"
    add("piece_a.jpg", identity(2))
    add("piece_b.jpg", identity(2, 0.55, 30))  # two pieces of one person: "Same person?"
    people = People(library)
    grace = next(p.id for p in people.list() if p.photos == 3)
    people.name(grace, "Grace")
    runner = TaskRunner()
    view = PeopleView(people, runner)
    qtbot.addWidget(view)
    view.show()
    view.refresh()
    strip = view.suggestions
    qtbot.waitUntil(lambda: len(strip.cards) == 2, timeout=10000)
    assert strip.isVisible() and {s.question() for s, _, _ in strip.cards} == {"Is this Grace?", "Same person?"}
    assert len(people.list(min_photos=1)) == 4  # shown, not applied

    same = next(card for card in strip.cards if card[0].kind == "same")
    qtbot.mouseClick(same[2], Qt.LeftButton)  # No: remembered, the card goes
    qtbot.waitUntil(lambda: [s.kind for s, _, _ in strip.cards] == ["face"], timeout=10000)
    assert [s.kind for s in people.suggestions()] == ["face"] and len(people.list(min_photos=1)) == 4
    qtbot.mouseClick(strip.cards[0][1], Qt.LeftButton)  # Yes: the face goes to Grace
    qtbot.waitUntil(lambda: strip.cards == [] and not strip.isVisible(), timeout=10000)
    assert people.get(grace).photos == 4
    qtbot.waitUntil(lambda: view._item(grace) is not None and view._item(grace).text() == "Grace · 4 photos",
                    timeout=10000)
    runner.shutdown()


def _face_point(pane, face):
    """The preview label's point at the centre of ``face``'s box, as the pane shows the photo."""
    from PySide6.QtWidgets import QStyle

    label = pane.preview
    shown = QStyle.alignedRect(label.layoutDirection(), label.alignment(),
                               label.pixmap().deviceIndependentSize().toSize(), label.contentsRect())
    x, y, w, h = face.box
    return QPoint(round(shown.x() + (x + w / 2) * shown.width()), round(shown.y() + (y + h / 2) * shown.height()))


def test_a_face_box_in_the_detail_pane_names_and_moves_its_face(qtbot, tmp_path):
    from test_gui_support import make_window

    from app.library.indexer import IndexOptions
    from app.library.signal_runner import store_result
    from app.library.signals.faces import FaceOutput, FaceSignal

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("obama.jpg", "biden.jpg"):
        shutil.copy(PHOTOS / name, folder / name)
    window = make_window(tmp_path, folder, options=IndexOptions(batch_size=4, workers=1,
                                                                signals_off=frozenset({"ocr", "faces"})))
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: not window.indexing.running and "2 photos" in window.counts_label.text(), timeout=30000)
    library = window.service.library
    ids = {Path(record.path).name: media_id for media_id, record in library.media([1, 2, 3]).items()}
    # two faces in obama.jpg (people A and B), and B again in biden.jpg: stored as the faces signal stores them
    for name, faces in (("obama.jpg", [(box(0.1), identity(1)), (box(0.6), identity(2))]),
                        ("biden.jpg", [(box(), identity(2, 0.1, 1))])):
        output = FaceOutput(boxes=[b for b, _ in faces], vectors=[v for _, v in faces])
        with library.db.transaction() as conn:
            store_result(conn, ids[name], FaceSignal(), output, None, 1.0)
    people = People(library)
    first, second = people.photo_faces(ids["obama.jpg"])
    b = second.person_id
    window.refresh_status()
    qtbot.waitUntil(lambda: window.model.browsing and window.model.rowCount() == 2
                    and all(window.model.hit(r) is not None for r in range(2)), timeout=10000)
    hit = next(window.model.hit(r) for r in range(2) if window.model.hit(r).id == ids["obama.jpg"])
    pane, boxes = window.detail, window.detail.face_boxes
    window.show_detail(hit)
    qtbot.waitUntil(lambda: len(boxes.faces) == 2 and pane.preview.pixmap() is not None
                    and not pane.preview.pixmap().isNull(), timeout=10000)
    popup = boxes.popup

    def face_now(face_id):  # the face as the pane shows it now
        return next((f for f in boxes.faces if f.id == face_id), None)

    assert boxes.tooltip_at(_face_point(pane, first)) == f"unnamed person {first.person_id} · click to name"
    qtbot.mouseClick(pane.preview, Qt.LeftButton, pos=QPoint(2, 2))  # outside every box: nothing
    assert not popup.isVisible() and boxes.tooltip_at(QPoint(2, 2)) == ""

    # a new name on an unnamed person's face names that person
    qtbot.mouseClick(pane.preview, Qt.LeftButton, pos=_face_point(pane, first))
    qtbot.waitUntil(popup.isVisible, timeout=5000)
    assert popup.title.text() == f"unnamed person {first.person_id}"
    qtbot.keyClicks(popup.name, "Grace")
    qtbot.keyClick(popup.name, Qt.Key_Return)
    qtbot.waitUntil(lambda: people.get(first.person_id).name == "Grace", timeout=10000)
    grace = first.person_id
    qtbot.waitUntil(lambda: face_now(first.id) is not None and face_now(first.id).name == "Grace", timeout=10000)
    point = _face_point(pane, first)  # hovering: Qt asks the label for its tooltip there
    QApplication.sendEvent(pane.preview, QHelpEvent(QEvent.ToolTip, point, pane.preview.mapToGlobal(point)))
    assert QToolTip.text() == "Grace · click to name"
    qtbot.waitUntil(lambda: window.search.person.count() == 2, timeout=10000)  # the person filter knows her
    assert window.search.person.itemText(1) == "Grace (1)"

    # the other face: Grace chosen from the completion moves it to her (B keeps biden.jpg's face)
    qtbot.mouseClick(pane.preview, Qt.LeftButton, pos=_face_point(pane, second))
    qtbot.waitUntil(lambda: popup.isVisible() and popup.names.stringList() == ["Grace"], timeout=5000)
    assert popup.title.text() == f"unnamed person {b}"
    qtbot.keyClicks(popup.name, "gr")
    completions = popup.completer.popup()
    qtbot.waitUntil(completions.isVisible, timeout=5000)
    completions.setCurrentIndex(popup.completer.completionModel().index(0, 0))
    qtbot.keyClick(completions, Qt.Key_Return)
    qtbot.waitUntil(lambda: people.get(grace).faces == 2, timeout=10000)
    assert people.get(b).faces == 1 and people.get(b).name is None
    qtbot.waitUntil(lambda: face_now(second.id).person_id == grace, timeout=10000)
    assert boxes.tooltip_at(_face_point(pane, second)) == "Grace · click to name"

    # "Not this person": the face leaves Grace for a person of its own
    qtbot.mouseClick(pane.preview, Qt.LeftButton, pos=_face_point(pane, second))
    qtbot.waitUntil(popup.isVisible, timeout=5000)
    qtbot.mouseClick(popup.not_this, Qt.LeftButton)
    qtbot.waitUntil(lambda: people.get(grace).faces == 1, timeout=10000)
    alone = people.photo_faces(ids["obama.jpg"])[1]
    assert alone.person_id not in (grace, b) and alone.name is None
    qtbot.waitUntil(lambda: face_now(second.id).person_id == alone.person_id, timeout=10000)

    # "Show all photos of this person": the People view at Grace's faces
    qtbot.mouseClick(pane.preview, Qt.LeftButton, pos=_face_point(pane, first))
    qtbot.waitUntil(popup.isVisible, timeout=5000)
    qtbot.mouseClick(popup.show_all, Qt.LeftButton)
    qtbot.waitUntil(lambda: getattr(window, "people_view", None) is not None
                    and window.people_view.shown_person == grace and window.people_view.photos.count() == 1,
                    timeout=10000)
