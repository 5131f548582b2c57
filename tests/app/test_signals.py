"""Signals (app/library/signals, signal_runner.py): places and EXIF read while indexing, the second pass
(resumable, failures recorded, missing packages recorded once, a setting to turn it off), storage kept
consistent by forget/move/change, the schema-3 upgrade, filters and people queries."""
from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import threading
import time
from typing import ClassVar

import numpy as np
import pytest
from fakes import fake_encoder, real_photo, run_indexer, save_with_exif

from app.library import Library
from app.library import signals as signal_registry
from app.library.db import MIGRATIONS, SCHEMA_VERSION
from app.library.search import Filters, SearchService, parse_date
from app.library.signal_runner import set_signal_enabled, signal_summary
from app.library.signals import ExifSignal, PlaceSignal, SignalError, SignalOutput
from app.library.signals.faces import FaceSignal
from app.library.storage.signals import media_facts
from app.library.storage.vectors import unembedded_count

ALL = float("-inf")  # the fake model is not calibrated: no cut-off
PARIS, TOKYO = (48.8566, 2.3522), (35.6895, 139.6917)


@pytest.fixture
def trip(tmp_path):
    """Three real small photos: one taken in Paris (Canon, 2019), one in Tokyo (Nikon, 2021), one without EXIF."""
    root = tmp_path / "trip"
    root.mkdir()
    save_with_exif(real_photo("chelsea"), root / "IMG_0001.jpg", gps=PARIS, camera=("Canon", "Canon EOS 5D"),
                   taken="2019:06:30 12:00:00")
    save_with_exif(real_photo("coffee"), root / "IMG_0002.jpg", gps=TOKYO, camera=("NIKON CORPORATION", "NIKON D90"),
                   taken="2021:03:01 09:30:00")
    real_photo("astronaut").save(root / "IMG_0003.jpg")
    return root


def _id(library, path):
    return library.media_by_path(path).id


def _orphans(library) -> int:
    conn = library.db.conn
    return sum(conn.execute(f"SELECT COUNT(*) FROM {t} WHERE media_id NOT IN (SELECT id FROM media WHERE status = "
                            "'ok')").fetchone()[0] for t in ("signal_results", "signal_facts", "signal_boxes"))


def test_places_and_exif_are_read_while_indexing_and_searchable(library, trip):
    encoder = fake_encoder()
    library.add_folder(trip)
    report = run_indexer(library, encoder, signals_off=frozenset({"ocr", "faces"}))
    assert report.failed == 0 and report.signals_failed == 0
    ids = {name: _id(library, trip / name) for name in ("IMG_0001.jpg", "IMG_0002.jpg", "IMG_0003.jpg")}
    facts = media_facts(library.db.conn, list(ids.values()))
    paris, tokyo = facts[ids["IMG_0001.jpg"]], facts[ids["IMG_0002.jpg"]]
    assert (paris["city"], paris["country"], paris["country_code"]) == ("Paris", "France", "FR")
    assert paris["region"] == "Île-de-France" and abs(paris["lat"] - PARIS[0]) < 1e-3
    assert paris["camera"] == "Canon EOS 5D" and tokyo["camera"] == "Nikon D90"
    assert tokyo["country"] == "Japan" and paris["taken_at"] == parse_date("2019-06-30") + 12 * 3600
    assert ids["IMG_0003.jpg"] not in facts  # no EXIF: untouched
    assert library.media([ids["IMG_0001.jpg"]])[ids["IMG_0001.jpg"]].captured_at == paris["taken_at"]
    assert library.choice_groups("place") == [(("France", "Paris"), 1), (("Japan", "Tokyo"), 1)]

    service = SearchService(library, encoder, min_relevance=ALL)
    hits = service.text("Paris", k=3)
    assert hits[0].path == str(trip / "IMG_0001.jpg") and "name" in hits[0].matched
    assert [h.path for h in hits if "name" in h.matched] == [str(trip / "IMG_0001.jpg")]
    assert hits[0].facts["city"] == "Paris" and hits[0].to_dict()["facts"]["country"] == "France"
    assert [h.path for h in service.text("photo", k=5, filters=Filters(place="paris"))] == [str(trip / "IMG_0001.jpg")]
    assert [h.path for h in service.text("photo", k=5, filters=Filters(place="Tokyo, Japan"))] == \
        [str(trip / "IMG_0002.jpg")]
    assert service.text("photo", k=5, filters=Filters(place="Paris, Japan")) == []
    assert [h.path for h in service.text("photo", k=5, filters=Filters(camera="nikon"))] == [str(trip / "IMG_0002.jpg")]
    # the date filters read the EXIF capture time (the files' mtimes are all today)
    until_2020 = Filters(date_to=parse_date("2020", end=True))
    assert [h.path for h in service.text("photo", k=5, filters=until_2020)] == [str(trip / "IMG_0001.jpg")]


def test_moved_changed_forgotten_and_deleted_photos_keep_the_signal_tables_consistent(library, trip):
    encoder = fake_encoder()
    library.add_folder(trip)
    run_indexer(library, encoder, signals_off=frozenset({"ocr", "faces"}))
    paris = _id(library, trip / "IMG_0001.jpg")
    (trip / "moved").mkdir()
    shutil.move(trip / "IMG_0001.jpg", trip / "moved" / "first.jpg")
    report = run_indexer(library, encoder, signals_off=frozenset({"ocr", "faces"}))
    assert report.moved == 1 and _id(library, trip / "moved" / "first.jpg") == paris
    assert media_facts(library.db.conn, [paris])[paris]["city"] == "Paris"  # a move keeps what was read
    # new content at the same path: the old place goes, the new one comes
    time.sleep(0.01)
    save_with_exif(real_photo("chelsea", 150), trip / "moved" / "first.jpg", gps=TOKYO)
    run_indexer(library, encoder, signals_off=frozenset({"ocr", "faces"}))
    assert media_facts(library.db.conn, [paris])[paris]["city"] == "Tokyo"
    service = SearchService(library, encoder, min_relevance=ALL)
    assert all("name" not in h.matched for h in service.text("Paris", k=3))
    library.forget(trip / "moved" / "first.jpg")
    assert paris not in media_facts(library.db.conn, [paris])
    assert library.db.conn.execute("SELECT signal_text FROM media WHERE id = ?", (paris,)).fetchone()[0] is None
    os.remove(trip / "IMG_0002.jpg")
    run_indexer(library, encoder, signals_off=frozenset({"ocr", "faces"}))
    assert _orphans(library) == 0
    assert library.choice_groups("place") == []


def _schema_3_library(db_path, folder, encoder) -> None:
    """A library as cots wrote it before signals existed (schema 3: migrations 1-3 and their rows)."""
    import sqlite_utils

    from cots_core.media import content_hash, read_image

    conn = sqlite3.connect(db_path, isolation_level=None)
    db = sqlite_utils.Database(conn)
    for step, migration in enumerate(MIGRATIONS[:3]):
        migration(db)
        conn.execute(f"PRAGMA user_version = {step + 1}")
    folder_id = conn.execute("INSERT INTO folders(path, added_at) VALUES (?, 0) RETURNING id", (str(folder),)).fetchone()[0]
    conn.execute("INSERT INTO settings(key, value) VALUES ('model_id', ?), ('model_source', 'fake')", (encoder.model_id,))
    for path in sorted(folder.iterdir()):
        info = path.stat()
        media_id = conn.execute(
            "INSERT INTO media(path, folder_id, name, folder_names, kind, size, mtime_ns, hash, status, model_id) "
            "VALUES (?, ?, ?, ?, 'image', ?, ?, ?, 'ok', ?) RETURNING id",
            (str(path), folder_id, path.stem.replace("_", " "), "trip", info.st_size, info.st_mtime_ns,
             content_hash(path), encoder.model_id)).fetchone()[0]
        vector = encoder.encode_pil(read_image(path, encoder.image_size).frames)[0]
        conn.execute("INSERT INTO embeddings(media_id, model_id, vector, gen) VALUES (?, ?, ?, 1)",
                     (media_id, encoder.model_id, np.asarray(vector, np.float32).tobytes()))
    conn.close()


def test_a_schema_3_library_upgrades_keeps_everything_and_catches_up_places(tmp_path, trip):
    encoder = fake_encoder()
    db_path = tmp_path / "old.db"
    _schema_3_library(db_path, trip, encoder)
    with Library(db_path) as library:
        assert library.db.schema_version == SCHEMA_VERSION
        assert library.model_id == encoder.model_id
        service = SearchService(library, encoder, min_relevance=ALL)
        assert [h.path for h in service.text("IMG 0002", k=3) if "name" in h.matched] == [str(trip / "IMG_0002.jpg")]
        encoded = encoder.model.images_encoded
        report = run_indexer(library, encoder, signals_off=frozenset({"ocr", "faces"}))
        assert report.unchanged == 3 and encoder.model.images_encoded == encoded  # nothing re-embedded
        assert report.signals_done == 3  # the second pass read the places of the old rows
        hits = SearchService(library, encoder, min_relevance=ALL).text("Paris", k=3)
        assert hits[0].path == str(trip / "IMG_0001.jpg") and "name" in hits[0].matched
        assert signal_summary(library)["place"] == {"ok": 3, "error": 0, "pending": 0, "second_pass": False,
                                                   "off": False, "unavailable": None}


# -- the second pass, with fake signals ----------------------------------------------------------


class FakeText:
    """A second-pass signal: "word" + the file's stem; fails on files named bad*/odd*; counts calls."""

    name: ClassVar[str] = "faketext"
    version: ClassVar[int] = 1
    second_pass: ClassVar[bool] = True
    calls: ClassVar[list[str]] = []
    niceness: ClassVar[list[int]] = []
    on_call = None

    def unavailable(self):
        return None

    def extract(self, path, image):
        stem = os.path.basename(path).split(".")[0]
        FakeText.calls.append(stem)
        if sys.platform == "linux":
            FakeText.niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        if FakeText.on_call:
            FakeText.on_call(path)
        assert image is not None and image.mode == "RGB"  # the second pass hands the decoded photo
        if stem.startswith("bad"):
            raise SignalError("no text could be read")
        if stem.startswith("odd"):
            raise RuntimeError("the detector broke")
        return SignalOutput(text=f"word{stem}", facts={"ocr_lines": 1})


class MissingPackage(FakeText):
    name: ClassVar[str] = "missing"

    def unavailable(self):
        return "needs the foo package: pip install foo"


@pytest.fixture
def fake_signals(monkeypatch):
    FakeText.calls, FakeText.niceness = [], []
    FakeText.on_call = None
    monkeypatch.setattr(signal_registry, "SIGNAL_CLASSES", (PlaceSignal, ExifSignal, FakeText, MissingPackage))


@pytest.fixture
def many(tmp_path):
    root = tmp_path / "many"
    root.mkdir()
    for i, name in enumerate(["a1", "a2", "bad3", "a4", "odd5", "a6"]):
        real_photo(["coffee", "chelsea", "astronaut"][i % 3], 64 + i).save(root / f"{name}.jpg")
    return root


def test_second_pass_runs_after_embeddings_records_failures_and_missing_packages(library, many, fake_signals):
    encoder = fake_encoder()
    library.add_folder(many)
    unembedded = []
    FakeText.on_call = lambda path: unembedded.append(unembedded_count(library.db.conn, encoder.model_id))
    phases = []
    report = run_indexer(library, encoder, progress=lambda p: phases.append(p.phase))
    assert report.failed == 0 and report.added == 6  # a signal's failure is not a bad file
    assert set(unembedded) == {0}  # every embedding was stored before the second pass began
    if sys.platform == "linux":  # ... and it ran at a lower priority than the indexer's thread
        assert set(FakeText.niceness) == {min(19, os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) + 10)}
    assert phases.index("signals") > max(i for i, p in enumerate(phases) if p == "index")
    assert report.signals_done == 6 and report.signals_failed == 2
    assert sorted((s, os.path.basename(p)) for s, p, _ in report.signal_errors) == \
        [("faketext", "bad3.jpg"), ("faketext", "odd5.jpg")]
    summary = signal_summary(library)
    assert (summary["faketext"]["ok"], summary["faketext"]["error"], summary["faketext"]["pending"]) == (4, 2, 0)
    assert summary["missing"]["unavailable"] == "needs the foo package: pip install foo"
    assert library.db.conn.execute("SELECT COUNT(*) FROM signal_results WHERE signal = 'missing'").fetchone()[0] == 0
    errors = dict(library.db.conn.execute("SELECT m.name, r.error FROM signal_results r JOIN media m ON m.id = "
                                          "r.media_id WHERE r.status = 'error'"))
    assert errors == {"bad3": "no text could be read", "odd5": "RuntimeError: the detector broke"}
    hits = SearchService(library, encoder, min_relevance=ALL).text("worda4", k=3)
    assert hits[0].path == str(many / "a4.jpg") and "name" in hits[0].matched
    # a second run has nothing to do: neither the failures nor the successes are read again
    calls = len(FakeText.calls)
    assert run_indexer(library, encoder).signals_done == 0 and len(FakeText.calls) == calls


def test_second_pass_cancelled_midway_resumes_where_it_stopped(library, many, fake_signals):
    encoder = fake_encoder()
    library.add_folder(many)
    cancel = threading.Event()
    FakeText.on_call = lambda path: len(FakeText.calls) >= 3 and cancel.set()
    from app.library.indexer import Indexer, IndexOptions

    report = Indexer(library, encoder, IndexOptions(vocabulary=False), cancel_event=cancel).run()
    assert report.cancelled and report.added == 6
    done = library.db.conn.execute("SELECT COUNT(*) FROM signal_results WHERE signal = 'faketext'").fetchone()[0]
    assert done == 3  # each file's results commit with it; nothing after the cancel
    first = list(FakeText.calls)
    report = run_indexer(library, encoder)
    assert not report.cancelled and report.signals_done == 3
    assert sorted(FakeText.calls[len(first):]) == sorted({"a1", "a2", "bad3", "a4", "odd5", "a6"} - set(first))
    assert signal_summary(library)["faketext"]["pending"] == 0


def test_a_signal_turned_off_does_not_run_and_can_come_back(library, many, fake_signals):
    encoder = fake_encoder()
    library.add_folder(many)
    set_signal_enabled(library, "faketext", False)
    run_indexer(library, encoder)
    assert FakeText.calls == [] and signal_summary(library)["faketext"]["off"]
    assert signal_summary(library)["faketext"]["pending"] == 6
    set_signal_enabled(library, "faketext", True)
    assert run_indexer(library, encoder).signals_done == 6 and len(FakeText.calls) == 6


def test_repair_salvages_the_signal_tables(tmp_path, trip, monkeypatch):
    from app.library.repair import repair_library

    monkeypatch.setattr(shutil, "which", lambda name: None)  # the row-by-row salvage reads each table
    encoder = fake_encoder()
    db = tmp_path / "lib.db"
    with Library(db) as library:
        library.add_folder(trip)
        run_indexer(library, encoder, signals_off=frozenset({"ocr", "faces"}))
    conn = sqlite3.connect(db)  # damage the embeddings: the signals' tables must come through
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'embeddings'").fetchone()[0]
    conn.close()
    with open(db, "r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write(b"\0" * page_size)
    report = repair_library(db)
    assert report.damaged and report.rows["signal_results"] == 6 and report.rows["signal_facts"] >= 12
    with Library(db) as library:
        assert library.choice_groups("place") == [(("France", "Paris"), 1), (("Japan", "Tokyo"), 1)]
        run_indexer(library, encoder, signals_off=frozenset({"ocr", "faces"}))  # re-embeds what was lost
        hits = SearchService(library, encoder, min_relevance=ALL).text("Paris", k=3)
        assert hits[0].path == str(trip / "IMG_0001.jpg") and "name" in hits[0].matched


class FakeFaces:
    """Faces facts by file name, as the faces signal stores them."""

    name: ClassVar[str] = "faces"
    version: ClassVar[int] = 1
    second_pass: ClassVar[bool] = True
    declares: ClassVar = FaceSignal.declares  # the same filter and people words as the real one
    FOUND: ClassVar[dict[str, tuple[int, float]]] = {
        "group": (5, 0.01), "portrait": (1, 0.2), "couple": (2, 0.03), "street": (0, 0.0), "wall": (0, 0.0)}

    def unavailable(self):
        return None

    def extract(self, path, image):
        faces, area = self.FOUND.get(os.path.basename(path).split(".")[0], (0, 0.0))
        return SignalOutput(facts={"faces": faces, "face_area_max": area})


def test_people_queries_and_filters_use_the_faces_facts(library, tmp_path, monkeypatch):
    from fakes import solid

    from app.library.signals.people_words import people_intent

    monkeypatch.setattr(signal_registry, "SIGNAL_CLASSES", (PlaceSignal, ExifSignal, FakeFaces))
    root = tmp_path / "people"
    root.mkdir()
    for name, colour in zip(FakeFaces.FOUND, ("red", "green", "blue", "yellow", "cyan")):
        solid(colour).save(root / f"{name}.jpg")
    encoder = fake_encoder()
    library.add_folder(root)
    run_indexer(library, encoder)
    service = SearchService(library, encoder, min_relevance=ALL)

    def first(query, **filters):
        return [os.path.basename(h.path).split(".")[0] for h in service.text(query, k=5, filters=Filters(**filters))]

    assert first("a group photo")[0] == "group"
    assert first("a portrait")[0] == "portrait" and first("selfie")[0] == "portrait"
    assert set(first("people")[:3]) == {"group", "portrait", "couple"}
    assert "faces" in service.text("a person", k=1)[0].matched
    assert sorted(first("photo", with_people=True)) == ["couple", "group", "portrait"]
    assert sorted(first("photo", with_people=False)) == ["street", "wall"]
    # other queries are untouched: the colour word still decides, no faces list joins the fusion
    assert people_intent("a red wall") is None
    hits = service.text("red", k=5)
    assert os.path.basename(hits[0].path) == "group.jpg" and all("faces" not in h.matched for h in hits)
    assert os.path.basename(service.text("cyan", k=1)[0].path) == "wall.jpg"
    assert people_intent("a group portrait").min_faces == 3


def test_cli_place_camera_filters_places_and_status(tmp_path, trip, capsys, monkeypatch):
    import json

    from app.cli import main
    from app.library.encoder import Encoder
    from app.library.signal_runner import disabled_signals

    encoder = fake_encoder()
    monkeypatch.setattr(Encoder, "load", classmethod(lambda cls, *a, **k: encoder))
    db = str(tmp_path / "cli.db")
    assert main(["index", str(trip), "--db", db, "--quiet", "--no-ocr", "--no-faces"]) == 0

    def run_json(*argv):
        capsys.readouterr()
        assert main([*argv, "--db", db, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    hits = run_json("search", "photo", "--place", "Paris", "--all")
    assert [h["path"] for h in hits] == [str(trip / "IMG_0001.jpg")]
    assert hits[0]["facts"]["city"] == "Paris" and hits[0]["facts"]["camera"] == "Canon EOS 5D"
    assert run_json("search", "Paris", "--all")[0]["path"] == str(trip / "IMG_0001.jpg")
    assert [h["path"] for h in run_json("search", "photo", "--camera", "Nikon", "--all")] == [str(trip / "IMG_0002.jpg")]
    assert [h["path"] for h in run_json("search", "photo", "--all", "--to", "2020")] == [str(trip / "IMG_0001.jpg")]
    assert run_json("places")["places"] == [{"city": "Paris", "country": "France", "photos": 1},
                                            {"city": "Tokyo", "country": "Japan", "photos": 1}]
    status = run_json("status")
    assert status["signals"]["place"]["ok"] == 3 and status["signal_failures"] == []
    capsys.readouterr()
    assert main(["places", "--db", db]) == 0 and "Paris, France" in capsys.readouterr().out
    assert main(["status", "--db", db]) == 0 and "place   3 read, 0 failed" in capsys.readouterr().out
    with Library(db) as library:
        assert disabled_signals(library) == {"ocr", "faces"}  # kept for the next runs
    assert main(["search", "photo", "--db", db, "--with-people", "--without-people"]) == 2  # one or the other


@pytest.mark.slow
def test_kill_9_in_the_second_pass_loses_at_most_the_file_in_flight(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    worker = Path(__file__).with_name("crash_worker.py")
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(12):
        real_photo(["coffee", "chelsea"][i % 2], 40 + i).save(folder / f"{i:04d}.jpg")
    db = tmp_path / "lib.db"

    def worker_run(n: int) -> int:
        return subprocess.run([sys.executable, str(worker), str(db), str(folder), "signal", str(n)],
                              capture_output=True, timeout=300).returncode

    assert worker_run(5) == -9  # killed inside the 5th file's signal transaction, before COMMIT

    def words() -> dict[str, str]:
        with Library(db) as library:
            return {os.path.basename(p): text for p, text in library.db.conn.execute(
                "SELECT m.path, r.text FROM signal_results r JOIN media m ON m.id = r.media_id WHERE r.signal = 'word'")}

    assert len(words()) == 4 and all(text == "word" + name[:4] for name, text in words().items())
    assert worker_run(10**9) == 0  # the next run resumes: every photo, each once, nothing half-written
    assert words() == {f"{i:04d}.jpg": f"word{i:04d}" for i in range(12)}


def test_second_pass_pauses_and_resumes_like_indexing(library, many, fake_signals):
    from app.library.indexer import IndexControl, Indexer, IndexOptions

    encoder = fake_encoder()
    library.add_folder(many)
    control = IndexControl()
    stamps = []

    def on_call(path):
        stamps.append(time.perf_counter())
        if len(stamps) == 2:
            control.pause()
            threading.Timer(0.5, control.resume).start()

    FakeText.on_call = on_call
    report = Indexer(library, encoder, IndexOptions(vocabulary=False), cancel_event=control.cancel_event,
                     pause_event=control.pause_event).run()
    assert not report.cancelled and report.signals_done == 6
    assert stamps[2] - stamps[1] >= 0.4  # held between files while paused, then went on


def test_a_photo_in_a_city_quarter_is_named_after_its_city():
    from app.library.signals.place import place_of

    opera = place_of(48.87, 2.33)  # nearest GeoNames place: the quarter Porte Saint-Denis
    assert (opera["city"], opera["locality"], opera["country"]) == ("Paris", "Porte Saint-Denis", "France")
    assert place_of(40.75, -73.98)["city"] == "New York City"  # Times Square
    assert place_of(52.52, 13.40)["city"] == "Berlin"  # Mitte
    assert place_of(45.764, 4.8357)["city"] == "Lyon"  # not its arrondissement "Lyon 01"
    assert place_of(48.80, 2.13)["city"] == "Versailles"  # a town of its own near Paris keeps its name
    assert place_of(34.02, -118.49)["city"] == "Santa Monica"
    assert place_of(0.0, -30.0) is None  # mid-Atlantic: no place


@pytest.mark.parametrize("signal_class", signal_registry.SIGNAL_CLASSES, ids=lambda cls: cls.name)
@pytest.mark.parametrize("content", [b"this is not a photo at all" * 10, b"\xff\xd8 not really a jpeg", None],
                         ids=["garbage", "truncated jpeg", "missing"])
def test_every_signal_names_the_file_it_cannot_read(signal_class, content, tmp_path):
    """One file's failure is recorded under that file and indexing goes on: each signal raises SignalError (not
    an error of the library it uses) and says which file."""
    path = tmp_path / "bröken photo.jpg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SignalError, match="bröken photo.jpg"):
        signal_class().extract(str(path), None)


def test_the_next_photo_is_decoded_while_this_photos_signals_run(library, many, fake_signals, monkeypatch):
    """The runner decodes photo n+1 on a thread of its own (as nice as the pass) while the signals read photo n,
    so the decode no longer waits for the slower signal; every photo still gets its own pixels."""
    from app.library import signal_runner

    encoder = fake_encoder()
    library.add_folder(many)
    decoded, overlapped, decode_niceness = [], [], []
    real_decode = signal_runner.decode_for_second_pass

    def decode(path, long_side=signal_runner.SECOND_PASS_IMAGE_SIZE):
        decoded.append(os.path.basename(path).split(".")[0])
        if sys.platform == "linux":
            decode_niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return real_decode(path, long_side)

    def on_call(path):  # photo n's signal waits (briefly) for photo n+1's decode to start beside it
        stem = os.path.basename(path).split(".")[0]
        deadline = time.monotonic() + 5
        while len(decoded) <= decoded.index(stem) + 1 < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        overlapped.append(len(decoded) > decoded.index(stem) + 1)

    monkeypatch.setattr(signal_runner, "decode_for_second_pass", decode)
    FakeText.on_call = on_call
    report = run_indexer(library, encoder)
    assert report.signals_done == 6 and sorted(decoded) == sorted(FakeText.calls)  # each photo decoded once
    assert decoded == FakeText.calls  # in the order the signals read them
    assert overlapped == [True] * 5 + [False]  # all but the last photo had the next one decoding beside it
    if sys.platform == "linux":
        assert set(decode_niceness) == set(FakeText.niceness)


class QuickSignal:
    """A second-pass signal that reads a photo at once, noting which."""

    name: ClassVar[str] = "quick"
    version: ClassVar[int] = 1
    second_pass: ClassVar[bool] = True
    seen: ClassVar[list[str]] = []

    def unavailable(self):
        return None

    def extract(self, path, image):
        QuickSignal.seen.append(os.path.basename(path).split(".")[0])
        return SignalOutput(text="", facts={})


def test_each_signal_reads_the_photos_at_its_own_pace_a_few_photos_ahead_at_most(library, many, fake_signals,
                                                                                  monkeypatch):
    """Signals do not wait for each other photo by photo: while a slow one is still on the first photo, a
    quick one goes on with the next, up to FILES_IN_FLIGHT photos decoded at once (memory stays a few photos);
    every photo's results are still stored, in order."""
    from app.library import signal_runner

    monkeypatch.setattr(signal_runner.os, "cpu_count", lambda: 2)  # a lane per signal
    monkeypatch.setattr(signal_registry, "SIGNAL_CLASSES", (FakeText, QuickSignal))
    QuickSignal.seen = []
    decoded, held = [], []
    real_decode = signal_runner.decode_for_second_pass

    def decode(path, long_side=signal_runner.SECOND_PASS_IMAGE_SIZE):
        decoded.append(os.path.basename(path).split(".")[0])
        return real_decode(path, long_side)

    def on_call(path):  # the slow signal holds the first photo until the quick one is as far ahead as it may go
        if held:
            return
        deadline = time.monotonic() + 10
        while len(QuickSignal.seen) < signal_runner.FILES_IN_FLIGHT and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # time enough to run further, were it allowed
        held.append((len(QuickSignal.seen), len(decoded)))

    monkeypatch.setattr(signal_runner, "decode_for_second_pass", decode)
    FakeText.on_call = on_call
    encoder = fake_encoder()
    library.add_folder(many)
    report = run_indexer(library, encoder)
    assert held == [(signal_runner.FILES_IN_FLIGHT, signal_runner.FILES_IN_FLIGHT)]
    assert report.signals_done == 6 and QuickSignal.seen == FakeText.calls == decoded
    stored = library.db.conn.execute("SELECT signal, COUNT(*) FROM signal_results GROUP BY signal").fetchall()
    assert dict(stored) == {"faketext": 6, "quick": 6}


def test_second_pass_models_load_beside_the_embedding_pass_and_only_when_photos_are_new(library, many, fake_signals,
                                                                                        monkeypatch):
    """The indexer calls each second-pass signal's ``prepare()`` once, on a thread as nice as the second pass,
    started before the embedding pass ends and finished before the first photo is read; a run with no new
    photo loads nothing."""
    encoder = fake_encoder()
    library.add_folder(many)
    prepared, first_extract = [], []

    def prepare(self):
        niceness = os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) if sys.platform == "linux" else 0
        prepared.append((threading.current_thread().name, niceness))
        time.sleep(0.2)  # slow enough that the second pass would start first if it did not wait
        prepared.append("done")

    monkeypatch.setattr(FakeText, "prepare", prepare, raising=False)
    FakeText.on_call = lambda path: first_extract or first_extract.append(list(prepared))
    report = run_indexer(library, encoder)
    assert report.signals_done == 6
    # FakeText and MissingPackage (unavailable: not run, not prepared) share the method: one call
    assert len(prepared) == 2 and prepared[0][0] == "cots-signals-prepare" and first_extract == [prepared]
    if sys.platform == "linux":
        assert prepared[0][1] == FakeText.niceness[0]
    assert run_indexer(library, encoder).signals_done == 0 and len(prepared) == 2  # nothing new: nothing loaded
