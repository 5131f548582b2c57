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
