"""`cots models` (listing, --measure, --json), and a library indexed with a hub id: the id is what it keeps,
and later runs load the downloaded folder without the network."""
from __future__ import annotations

import json
import shutil

import pytest
from hf_tiny import make_tiny_clip, make_tiny_siglip

from app.cli import main
from app.library import model_catalog
from cots_core import hub
from cots_core.paths import data_dir


@pytest.fixture(scope="module")
def tiny_cots(tmp_path_factory):
    from cots_core import COTS, ModelConfig

    directory = tmp_path_factory.mktemp("tiny-cots")
    COTS(ModelConfig.preset("tiny"), pretrained_backbones=False).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return make_tiny_clip(tmp_path_factory.mktemp("clip") / "clip", projection_dim=24)


def _as_downloaded(folder, repo_id: str):
    """Put a model folder where a completed download of ``repo_id`` lives (no server needed)."""
    target = hub.hub_models_dir() / hub.folder_name(repo_id)
    shutil.copytree(folder, target)
    (target / hub.DOWNLOAD_RECORD).write_text(json.dumps({"repo_id": repo_id, "commit": "0" * 40}))
    return target


def _models_json(capsys, *extra) -> dict:
    capsys.readouterr()
    assert main(["models", "--json", *extra]) == 0
    return {row["source"]: row for row in json.loads(capsys.readouterr().out)}


def test_built_in_names_match_the_models_cots_core_can_load():
    from cots_core.loading import BUILT_IN_MODELS

    assert set(model_catalog.BUILT_IN) == set(BUILT_IN_MODELS)


def test_cots_models_lists_built_in_downloaded_and_trained_with_width_and_size(tmp_path, capsys, tiny_cots, tiny_clip):
    _as_downloaded(tiny_clip, "org/tiny-clip")
    siglip = _as_downloaded(make_tiny_siglip(tmp_path / "siglip"), "google/tiny-siglip")
    shutil.copytree(tiny_cots, data_dir() / "models" / "finetuned-20260101-120000")
    rows = _models_json(capsys)
    assert rows["cots-lite"]["kind"] == "built in"
    assert rows["org/tiny-clip"]["kind"] == "downloaded" and rows["org/tiny-clip"]["embed_dim"] == 24
    assert rows["google/tiny-siglip"]["embed_dim"] == 32 and rows["google/tiny-siglip"]["size_bytes"] == sum(
        p.stat().st_size for p in siglip.iterdir())
    trained = rows[str(data_dir() / "models" / "finetuned-20260101-120000")]
    assert trained["kind"] == "trained here" and trained["embed_dim"] == 64
    assert trained["label"] == "finetuned-20260101-120000" and trained["images_per_s"] is None
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "org/tiny-clip" in out and "downloaded" in out and "not measured" in out


def test_a_broken_config_is_one_unreadable_row_and_the_listing_goes_on(capsys, tiny_clip, tiny_cots):
    _as_downloaded(tiny_clip, "org/good")
    (_as_downloaded(tiny_clip, "org/broken") / "config.json").write_text("{not json")
    trained = data_dir() / "models" / "finetuned-broken"
    shutil.copytree(tiny_cots, trained)
    (trained / "config.json").write_text("[1, 2]")
    rows = _models_json(capsys)
    assert rows["org/good"]["embed_dim"] == 24 and rows["org/good"]["unreadable"] is None
    assert rows["org/broken"]["unreadable"] and rows[str(trained)]["unreadable"]
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any("org/broken" in line and "unreadable" in line for line in lines)
    assert any("org/good" in line and " 24 " in line for line in lines)


def test_cots_models_measure_records_cpu_speed(capsys, tiny_cots, monkeypatch):
    monkeypatch.setattr(model_catalog, "BUILT_IN", {})  # building cots-lite is not this test's subject
    trained = data_dir() / "models" / "finetuned-tiny"
    shutil.copytree(tiny_cots, trained)
    broken = data_dir() / "models" / "finetuned-broken"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{}")  # readable, but not a model: measuring it fails, the rest goes on
    monkeypatch.setattr(model_catalog, "measure_speed",
                        lambda source, seconds=0.3, batch=2, real=model_catalog.measure_speed: real(source, seconds, batch))
    rows = _models_json(capsys, "--measure")
    assert rows[str(trained)]["images_per_s"] > 0 and rows[str(trained)]["text_ms"] > 0
    assert "measure_error" in rows[str(broken)] or rows[str(broken)]["unreadable"]
    stored = json.loads((data_dir() / model_catalog.SPEED_FILE).read_text())
    assert stored[str(trained)]["images_per_s"] == rows[str(trained)]["images_per_s"]
    assert _models_json(capsys)[str(trained)]["text_ms"] == rows[str(trained)]["text_ms"]  # remembered
    (trained / "model.safetensors").write_bytes((trained / "model.safetensors").read_bytes())  # retrained
    assert _models_json(capsys)[str(trained)]["images_per_s"] is None  # an old measure is not shown


@pytest.mark.parametrize("model", ["tiny_cots", "tiny_clip"])
def test_a_library_indexed_with_a_hub_id_keeps_the_id_and_loads_it_offline(model, request, tmp_path, capsys, photos):
    """A downloaded folder holding a COTS checkpoint, or a Hugging Face CLIP checkpoint."""
    repo_id = f"org/{model.replace('_', '-')}"
    _as_downloaded(request.getfixturevalue(model), repo_id)
    db = str(tmp_path / "lib.db")
    assert main(["index", str(photos), "--db", db, "--device", "cpu", "--model", repo_id, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["status", "--json", "--db", db]) == 0
    assert json.loads(capsys.readouterr().out)["model_source"] == repo_id
    assert main(["status", "--db", db]) == 0 and f"[{repo_id}]" in capsys.readouterr().out
    assert main(["search", "red", "--json", "--db", db, "--device", "cpu"]) == 0  # the stored id, no network
    assert json.loads(capsys.readouterr().out)


def test_a_stored_hub_id_whose_folder_is_gone_says_how_to_get_it(tmp_path):
    from app.library.encoder import Encoder
    from cots_core.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="cots models download org/gone"):
        Encoder.load("org/gone", device="cpu")


def test_a_library_indexed_with_a_training_run_loads_its_best_model(tmp_path, capsys, photos, tiny_cots):
    """`--model RUN` means what it means to the trainer: RUN/best, else the checkpoint RUN/LATEST names."""
    from cots_core import load_model

    run = tmp_path / "run"
    shutil.copytree(tiny_cots, run / "step-000004")
    (run / "LATEST").write_text("step-000004\n")
    db = str(tmp_path / "lib.db")
    assert main(["index", str(photos), "--db", db, "--device", "cpu", "--model", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["status", "--json", "--db", db]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["model_source"] == str(run)
    assert main(["search", "red", "--json", "--db", db, "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)
    assert load_model(run).model_id == load_model(run / "step-000004").model_id
