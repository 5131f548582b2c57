"""The library CLI end to end: index, search, similar, describe, status, forget, demo."""
from __future__ import annotations

import json
import shutil

import pytest
from fakes import solid

from app.cli import main

SAMPLE_QUERIES = [  # query, extra options -> the sample file that must come first (cots-lite)
    ("a flower", [], "flower.jpg"),
    ("a temple", [], "china.jpg"),
    ("a woman in military uniform", [], "grace_hopper.jpg"),
    ("a tripod", [], "camera.jpg"),
    # the video shows the same coffee photo, so it may tie with it: ask for images
    ("a cup of espresso", ["--kind", "image"], "coffee.jpg"),
]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from cots_core import COTS, ModelConfig

    directory = tmp_path_factory.mktemp("tiny")
    COTS(ModelConfig.preset("tiny"), pretrained_backbones=False).save_pretrained(directory)
    return directory


def _json(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_round_trip_with_the_tiny_model(tmp_path, capsys, tiny_model_dir, photos):
    db = str(tmp_path / "cli.db")
    (photos / "broken.jpg").write_bytes(b"nope")
    common = ["--db", db, "--device", "cpu"]
    assert main(["index", str(photos), *common, "--model", str(tiny_model_dir), "--quiet"]) == 0
    status = _json(capsys, ["status", "--json", "--db", db])
    assert status["indexed"] == 8 and status["model"].startswith("tiny")
    assert [f["path"] for f in status["failed"]] == [str(photos / "broken.jpg")]
    assert status["failed"][0]["error"]
    hits = _json(capsys, ["search", "Paris 2019", "-k", "5", "--json", *common])
    assert len(hits) == 5 and all({"path", "kind", "score"} <= h.keys() for h in hits)
    assert all("/Paris 2019/" in h["path"] for h in hits)
    similar = _json(capsys, ["similar", str(photos / "red.jpg"), "-k", "3", "--json", *common])
    assert len(similar) == 3
    texts = _json(capsys, ["describe", str(photos / "red.jpg"), "-k", "4", "--json", *common])
    assert len(texts) == 4 and {"text", "score"} <= texts[0].keys()
    capsys.readouterr()
    assert main(["search", "red", *common]) == 0 and "loading model" in capsys.readouterr().err
    assert main(["forget", str(photos / "Paris 2019"), "--db", db, "--yes"]) == 0
    assert _json(capsys, ["status", "--json", "--db", db])["indexed"] == 3
    assert main(["status", "--db", db]) == 0 and "failed    1" in capsys.readouterr().out


def test_status_says_how_many_captioned_photos_the_model_remembers(tmp_path, capsys, tiny_model_dir):
    """Read from the model folder's config.json (no torch); a preset, or a folder whose config is not one, says
    nothing and status still answers."""
    from app.library import Library
    from cots_core import ModelConfig

    remembering = tmp_path / "finetuned"
    shutil.copytree(tiny_model_dir, remembering)
    ModelConfig.load_json(remembering / "config.json").replace(vision={"caption_memory": 325}).save_json(
        remembering / "config.json")
    db = tmp_path / "lib.db"
    for source, said in ((remembering, ", remembers 325 captioned photos"), (tiny_model_dir, None), ("cots-lite", None)):
        library = Library(db)
        library.set_model("m1", str(source))
        library.close()
        assert _json(capsys, ["status", "--json", "--db", str(db)])["caption_memory"] == (325 if said else 0)
        assert main(["status", "--db", str(db)]) == 0
        out = capsys.readouterr().out
        assert (said in out) if said else "remembers" not in out
    for hostile in ('{"vision": {"caption_memory": "lots"}}', "[1, 2]", "{" * 100_000):
        (remembering / "config.json").write_text(hostile)
        library = Library(db)
        library.set_model("m1", str(remembering))
        library.close()
        assert main(["status", "--db", str(db)]) == 0 and "remembers" not in capsys.readouterr().out


def test_cli_errors_are_actionable(tmp_path, capsys):
    db = str(tmp_path / "empty.db")
    assert main(["search", "anything", "--db", db]) == 2
    assert "cots index" in capsys.readouterr().err
    assert main(["forget", str(tmp_path), "--db", db]) == 2
    assert main(["index", str(tmp_path / "missing"), "--db", db]) == 2


@pytest.mark.slow
def test_cli_on_the_sample_library_with_cots_lite(tmp_path, capsys):
    from cots_resources import resource_path

    sample = tmp_path / "sample"
    shutil.copytree(resource_path("sample_library"), sample)
    solid("red").save(sample / "zz_plain_red.png")
    db = str(tmp_path / "sample.db")
    assert main(["index", str(sample), "--db", db, "--device", "cpu", "--quiet"]) == 0
    for query, options, expected in SAMPLE_QUERIES:
        hits = _json(capsys, ["search", query, *options, "--json", "--db", db, "--device", "cpu"])
        assert hits and hits[0]["path"].endswith(expected), (query, hits[:3])
    video = _json(capsys, ["search", "a rocket", "--kind", "video", "--json", "--db", db])
    assert video[0]["path"].endswith("scenes.mp4") and 4 <= video[0]["timestamp"] < 8
    cat = _json(capsys, ["search", "a cat", "--kind", "video", "--json", "--db", db])
    assert 0 <= cat[0]["timestamp"] < 4
    assert len(_json(capsys, ["search", "qwzx blorfy vintrap", "--json", "--db", db])) <= 1
    texts = _json(capsys, ["describe", str(sample / "chelsea.jpg"), "--json", "-k", "5", "--db", db])
    assert any("cat" in t["text"] for t in texts)


@pytest.mark.slow
def test_demo_runs_offline(tmp_path, capsys):
    assert main(["demo", "--db", str(tmp_path / "demo.db"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "chelsea.jpg" in out and "coffee.jpg" in out and "scenes.mp4" in out


def test_demo_library_shows_only_this_installations_sample(tmp_path, encoder, monkeypatch, capsys):
    from cots_resources import resource_path

    from app.library import Library
    from app.library.encoder import Encoder
    from app.library.paths import data_dir

    monkeypatch.setattr(Encoder, "load", classmethod(lambda cls, *args, **kwargs: encoder))
    earlier = tmp_path / "earlier_checkout"  # the sample library of an earlier installation
    earlier.mkdir()
    solid("red").save(earlier / "red.jpg")
    demo_db = data_dir() / "demo" / "demo.db"
    with Library(demo_db) as library:
        library.add_folder(earlier)
    assert main(["demo", "--device", "cpu"]) == 0
    assert "earlier_checkout" not in capsys.readouterr().out
    with Library(demo_db) as library:
        assert [p.resolve() for p in library.folders()] == [resource_path("sample_library").resolve()]
