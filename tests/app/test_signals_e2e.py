"""Places, text in photos and people end to end, through the real Indexer, SearchService and CLI with the
real signals (reverse_geocode, RapidOCR, dlib) on real small photos: GPS written into EXIF by the test,
text drawn onto a photo, an astronaut's face. The fake encoder stands in for the model: the signals are
what is tested. These packages are required dependencies: if one is missing the tests fail."""
from __future__ import annotations

import json
import os

import pytest
from fakes import fake_encoder, real_photo, run_indexer, save_with_exif
from PIL import ImageDraw, ImageFont

from app.library import signals as signal_registry
from app.library.search import Filters, SearchService
from app.library.signal_runner import signal_summary
from app.library.storage.signals import media_facts

pytestmark = [pytest.mark.real_signals, pytest.mark.timeout(300)]
ALL = float("-inf")  # the fake model is not calibrated: no cut-off
WORD = "KVARNBY"  # a word no file name, folder or caption here holds


@pytest.fixture(scope="module")
def album(tmp_path_factory):
    root = tmp_path_factory.mktemp("album") / "album"
    root.mkdir()
    save_with_exif(real_photo("chelsea", 320), root / "IMG_0001.jpg", gps=(48.8566, 2.3522))  # Paris
    save_with_exif(real_photo("rocket", 320), root / "IMG_0002.jpg", gps=(28.5729, -80.649))  # Cape Canaveral
    sign = real_photo("coffee", 480)
    draw = ImageDraw.Draw(sign)
    draw.rectangle((20, 20, 330, 90), fill="white")
    draw.text((30, 25), WORD, fill="black", font=ImageFont.load_default(size=48))
    sign.save(root / "IMG_0003.jpg")
    real_photo("astronaut", 320).save(root / "IMG_0004.jpg")
    real_photo("coffee", 320).save(root / "IMG_0005.jpg")
    return root


def _names(hits) -> list[str]:
    return [os.path.basename(h.path) for h in hits]


def test_every_signal_is_registered_and_available():
    names = [s.name for s in signal_registry.all_signals()]
    assert names == ["place", "exif", "ocr", "faces"]
    assert {s.name: s.unavailable() for s in signal_registry.all_signals()} == dict.fromkeys(names)


def test_places_text_and_people_are_found_through_the_indexer_and_search(library, album):
    encoder = fake_encoder()
    library.add_folder(album)
    phases = []
    report = run_indexer(library, encoder, progress=lambda p: phases.append(p.phase))
    assert report.failed == 0 and report.signals_failed == 0 and "signals" in phases
    summary = signal_summary(library)
    assert all(summary[name]["ok"] == 5 and summary[name]["pending"] == 0 for name in ("ocr", "faces"))
    service = SearchService(library, encoder, min_relevance=ALL)

    by_name = [h for h in service.text("Paris", k=5) if "name" in h.matched]
    assert _names(by_name) == ["IMG_0001.jpg"]
    assert _names(service.text("photo", k=5, filters=Filters(place="Paris"))) == ["IMG_0001.jpg"]
    assert _names(service.text("photo", k=5, filters=Filters(place="United States"))) == ["IMG_0002.jpg"]

    hits = service.text(WORD.lower(), k=5)
    assert _names(hits)[0] == "IMG_0003.jpg" and "name" in hits[0].matched
    assert [h for h in hits if "name" in h.matched] == hits[:1]
    sign = library.media_by_path(album / "IMG_0003.jpg").id
    assert media_facts(library.db.conn, [sign])[sign]["ocr_lines"] >= 1

    people = service.text("a person", k=5)
    assert _names(people)[0] == "IMG_0004.jpg" and "faces" in people[0].matched
    assert people[0].facts["faces"] == 1 and people[0].facts["face_area_max"] > 0.01
    assert _names(service.text("photo", k=5, filters=Filters(with_people=True))) == ["IMG_0004.jpg"]
    assert "IMG_0004.jpg" not in _names(service.text("photo", k=5, filters=Filters(with_people=False)))
    boxes = library.db.conn.execute("SELECT label, w * h FROM signal_boxes WHERE signal = 'faces'").fetchall()
    assert len(boxes) == 1 and boxes[0][0] == "face"


@pytest.mark.slow  # the indexer test above covers the signals; this one adds the CLI (~5 s)
def test_cli_finds_places_text_and_people(tmp_path, album, capsys, monkeypatch):
    from app.cli import main
    from app.library.encoder import Encoder

    encoder = fake_encoder()
    monkeypatch.setattr(Encoder, "load", classmethod(lambda cls, *a, **k: encoder))
    db = str(tmp_path / "cli.db")
    assert main(["index", str(album), "--db", db, "--quiet"]) == 0

    def found(*argv) -> list[str]:
        capsys.readouterr()
        assert main(["search", *argv, "--db", db, "--json", "--all"]) == 0
        return [os.path.basename(h["path"]) for h in json.loads(capsys.readouterr().out)]

    assert found("photo", "--place", "Paris") == ["IMG_0001.jpg"]
    assert found(WORD)[0] == "IMG_0003.jpg"
    assert found("a person")[0] == "IMG_0004.jpg"
    assert found("photo", "--with-people") == ["IMG_0004.jpg"]
    capsys.readouterr()
    assert main(["status", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "ocr     5 read, 0 failed" in out and "faces   5 read, 0 failed" in out
    # turned off, the second pass leaves new photos alone, and says so
    real_photo("chelsea", 300).save(album / "IMG_0006.jpg")
    try:
        assert main(["index", "--db", db, "--quiet", "--no-ocr", "--no-faces"]) == 0
        capsys.readouterr()
        assert main(["status", "--db", db]) == 0
        assert "ocr     off" in capsys.readouterr().out
    finally:
        os.remove(album / "IMG_0006.jpg")


def test_cli_shows_the_second_pass_progress_and_what_still_waits(tmp_path, album, capsys, monkeypatch):
    from app.cli import main
    from app.library.encoder import Encoder

    encoder = fake_encoder()
    monkeypatch.setattr(Encoder, "load", classmethod(lambda cls, *a, **k: encoder))
    db = str(tmp_path / "cli.db")
    assert main(["index", str(album), "--db", db, "--quiet", "--no-signals"]) == 0  # embeddings only
    capsys.readouterr()
    assert main(["status", "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["second_pass_waiting"] == 5
    assert main(["status", "--db", db]) == 0
    assert "5 photos still wait for the second pass" in capsys.readouterr().out

    # not a terminal (capsys): the second pass reports in plain lines, the first photo and the last
    assert main(["index", "--db", db]) == 0
    err = capsys.readouterr().err
    assert "second pass (text and faces): 1/5 photos, about " in err and " left" in err
    assert "second pass (text and faces): 5/5 photos, done" in err
    assert main(["status", "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["second_pass_waiting"] == 0
    assert main(["status", "--db", db]) == 0
    assert "still wait for the second pass" not in capsys.readouterr().out
