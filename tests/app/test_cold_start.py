"""What a CLI command imports: commands that need no model never import torch; a text search imports
neither timm, torchvision nor transformers (the text-only paths: cots_core/loading.py, cots_core/text_query.py). Each command
runs in a fresh interpreter, as a user runs it."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from app.cli import main

HEAVY = ("torch", "timm", "torchvision", "transformers")
# runs `cots ARGS...` in this interpreter, then prints which heavy modules it imported (stdout's last line)
PROBE = f"""import sys
from app.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:  # --help
    code = stop.code
print(sorted(m for m in {HEAVY!r} if m in sys.modules))
sys.exit(code)
"""


def _imports(argv: list[str], data_dir) -> tuple[int, list[str]]:
    env = dict(os.environ, COTS_DATA_DIR=str(data_dir))
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env)
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1].replace("'", '"'))


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["search", "--help"], ["status"],
                                  ["status", "--json"], ["forget", "nowhere"]])
def test_commands_without_a_model_never_import_torch(argv, tmp_path):
    code, heavy = _imports([*argv, *(["--db", str(tmp_path / "lib.db")] if "--help" not in argv else [])],
                           tmp_path / "data")
    assert heavy == [], f"cots {' '.join(argv)} imported {heavy}"
    assert code in (0, 2)  # forget of an unknown path is a user error, not a crash


@pytest.mark.slow  # fresh interpreters (~8 s)
def test_a_text_search_imports_only_torch(tmp_path, monkeypatch, photos):
    from cots_core import COTS, ModelConfig

    model_dir = tmp_path / "tiny"
    COTS(ModelConfig.preset("tiny"), pretrained_backbones=False).save_pretrained(model_dir)
    db = str(tmp_path / "lib.db")
    data_dir = tmp_path / "data"
    monkeypatch.setenv("COTS_DATA_DIR", str(data_dir))
    assert main(["index", str(photos), "--db", db, "--model", str(model_dir), "--device", "cpu", "--quiet"]) == 0
    code, heavy = _imports(["search", "red", "--db", db, "--device", "cpu", "--json"], data_dir)
    assert code == 0 and heavy == ["torch"]
    # an image from outside the library needs the image tower: it is loaded then, and the search works
    code, heavy = _imports(["similar", str(photos / "red.jpg"), "--db", db, "--device", "cpu", "--json"], data_dir)
    assert code == 0


def test_the_gui_engine_answers_text_before_loading_the_image_tower(tmp_path, photos):
    from app.gui.engine_service import EngineService
    from app.library.search import Filters
    from cots_core import COTS, ModelConfig
    from cots_core.text_query import TextFirstModel

    model_dir = tmp_path / "tiny"
    COTS(ModelConfig.preset("tiny"), pretrained_backbones=False).save_pretrained(model_dir)
    db = str(tmp_path / "lib.db")
    assert main(["index", str(photos), "--db", db, "--model", str(model_dir), "--device", "cpu", "--quiet"]) == 0
    service = EngineService(db, device="cpu")
    try:
        service.load_model()
        model = service.encoder.model
        assert isinstance(model, TextFirstModel)
        assert service.search("red", Filters())  # answered by the lean text path
        assert model._full is None
        assert service.similar(str(photos / "Paris 2019" / "IMG_0000.png"), Filters())  # a library item: stored vector
        assert model._full is None
    finally:
        service.close()


@pytest.fixture
def indexed_with_graph(tmp_path, monkeypatch, photos):
    """(db, data dir) of a library indexed with the tiny model, its ONNX text graph written by the indexing."""
    return _indexed_with_graphs(tmp_path, monkeypatch, photos)


def _indexed_with_graphs(tmp_path, monkeypatch, photos):
    from cots_core import COTS, ModelConfig

    model_dir = tmp_path / "tiny"
    COTS(ModelConfig.preset("tiny"), pretrained_backbones=False).save_pretrained(model_dir)
    db, data_dir = str(tmp_path / "lib.db"), tmp_path / "data"
    monkeypatch.setenv("COTS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("COTS_TEXT_RUNTIME", "auto")
    assert main(["index", str(photos), "--db", db, "--model", str(model_dir), "--device", "cpu", "--quiet"]) == 0
    return db, data_dir


def _json_out(argv: list[str], data_dir, runtime: str):
    env = dict(os.environ, COTS_DATA_DIR=str(data_dir), COTS_TEXT_RUNTIME=runtime)
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    return json.loads("\n".join(lines[:-1]) or "null"), json.loads(lines[-1].replace("'", '"'))


@pytest.mark.slow  # fresh interpreters (~15 s)
def test_queries_are_answered_without_torch_once_the_text_graph_is_written(indexed_with_graph, photos):
    db, data_dir = indexed_with_graph
    indexed = str(photos / "Paris 2019" / "IMG_0001.png")
    for argv in (["search", "red", "--all"], ["similar", indexed], ["describe", indexed], ["places"], ["people"],
                 ["status"]):
        _, heavy = _json_out([*argv, "--db", db, "--json"], data_dir, "auto")
        assert heavy == [], f"cots {argv[0]} imported {heavy}"
    # the graph's answers are PyTorch's
    hits, _ = _json_out(["search", "red", "--all", "--db", db, "--json"], data_dir, "auto")
    reference, heavy = _json_out(["search", "red", "--all", "--db", db, "--json"], data_dir, "torch")
    assert heavy == ["torch"]
    assert [h["path"] for h in hits] == [h["path"] for h in reference]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(hits, reference)) < 1e-4
    status, _ = _json_out(["status", "--db", db, "--json"], data_dir, "auto")
    assert status["text_queries"]["runtime"] == "onnxruntime"
    assert status["text_queries"]["verdict"]["accepted"]


def test_without_its_text_graph_a_search_falls_back_to_torch_and_status_says_why(indexed_with_graph, capsys):
    from app.library import Library
    from cots_core.onnx_cache import model_folder
    from cots_core.text_graph import GRAPH_FILE

    db, _ = indexed_with_graph
    with Library(db) as library:
        model_id = library.model_id
    assert main(["status", "--db", db]) == 0
    assert "text through ONNX Runtime, without PyTorch (checked on" in capsys.readouterr().out
    (model_folder(model_id) / GRAPH_FILE).write_bytes(b"not a graph")
    assert main(["search", "red", "--db", db, "--all", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)  # answered, through PyTorch
    assert main(["status", "--db", db]) == 0
    assert "text through PyTorch: its text graph is not the one that was checked" in capsys.readouterr().out


def test_the_gui_engine_answers_from_the_text_graph_without_the_full_model(indexed_with_graph, photos):
    from app.gui.engine_service import EngineService
    from app.library.query_encoder import GraphQueryEncoder
    from app.library.search import Filters

    db, _ = indexed_with_graph
    service = EngineService(db, device="cpu")
    try:
        service.load_model()
        assert isinstance(service.encoder, GraphQueryEncoder)
        assert service.search("red", Filters())
        assert service.similar(str(photos / "Paris 2019" / "IMG_0000.png"), Filters())  # a library item
        assert service.encoder._full is None
        # an image from outside the library loads the full model, the same one
        outside = photos.parent / "outside.png"
        (photos / "red.jpg").rename(outside)
        assert service.similar(str(outside), Filters())
        assert service.encoder._full is not None and service.encoder.full.model_id == service.encoder.model_id
    finally:
        service.close()


# `cots gui` offscreen: prints whether torch was imported when its window first shows, then quits
GUI_FIRST_PAINT = """
import sys
from app.gui import window
show_event = window.MainWindow.showEvent
def shown(self, event):
    show_event(self, event)
    print("torch" in sys.modules, flush=True)
    import os
    os._exit(0)
window.MainWindow.showEvent = shown
from app.cli import main
main(["gui", "--db", sys.argv[1]])
"""


@pytest.mark.slow  # a fresh interpreter with Qt (~5 s)
def test_the_window_shows_before_torch_is_imported(indexed_with_graph):
    db, data_dir = indexed_with_graph
    env = dict(os.environ, COTS_DATA_DIR=str(data_dir), COTS_TEXT_RUNTIME="auto", QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, "-c", GUI_FIRST_PAINT, db], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "False", done.stderr[-2000:]


@pytest.mark.slow  # an image graph export (~10 s) and fresh interpreters
def test_a_query_image_from_outside_the_library_goes_through_the_image_graph_without_torch(tmp_path, monkeypatch,
                                                                                           photos):
    monkeypatch.setenv("COTS_IMAGE_RUNTIME", "auto")  # indexing exports the image graph and checks it
    db, data_dir = _indexed_with_graphs(tmp_path, monkeypatch, photos)
    outside = tmp_path / "outside.jpg"
    from fakes import real_photo

    real_photo("coffee").save(outside)
    for command in ("similar", "describe"):
        answer, heavy = _json_out([command, str(outside), "--db", db, "--json"], data_dir, "auto")
        assert heavy == [], f"cots {command} of a new file imported {heavy}"
        reference, heavy = _json_out([command, str(outside), "--db", db, "--json"], data_dir, "torch")
        assert "torch" in heavy
        key = "path" if command == "similar" else "text"
        assert [a[key] for a in answer] == [r[key] for r in reference]
        assert max(abs(a["score"] - r["score"]) for a, r in zip(answer, reference)) < 1e-3
