"""`cots train finetune --from` a CLIP-family checkpoint: COTS's objectives on those towers, the family's
recipe, a COTS checkpoint out that loads and searches like any other."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from hf_tiny import make_tiny_clip, make_tiny_siglip

from app.cli import main
from cots_core import load_model

REAL_PHOTOS = Path(__file__).resolve().parents[1] / "data" / "real_photos"
CAPTIONS = {"astronaut": "an astronaut on the moon", "cat": "a cat asleep", "coffee": "a coffee cup",
            "dahlia": "a red flower", "moon": "the moon at night", "motorcycle": "a motorcycle on a street",
            "pagoda": "a temple in china", "rocket": "a rocket at launch", "pier": "a pier on the sea",
            "grass": "green grass", "coins": "old coins on a table", "hubble": "a telescope in space",
            "grace_hopper": "a woman in uniform", "cameraman": "a man with a camera", "brick_wall": "a brick wall",
            "gravel": "gravel on the ground"}


@pytest.fixture(scope="module")
def captioned(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("captioned")
    for name, caption in CAPTIONS.items():
        shutil.copy(REAL_PHOTOS / f"{name}.jpg", folder / f"{name}.jpg")
        (folder / f"{name}.jpg.txt").write_text(caption + "\n")
    return folder


@pytest.mark.parametrize("maker", [make_tiny_clip, make_tiny_siglip], ids=["clip", "siglip"])
def test_finetune_from_a_clip_family_folder_saves_a_cots_checkpoint(maker, captioned, tmp_path, capsys):
    source = maker(tmp_path / "source")
    out = tmp_path / "run"
    assert main(["train", "finetune", "--from", str(source), "--data", str(captioned), "--out", str(out),
                 "--device", "cpu", "--no-progress"]) == 0
    saved = yaml.safe_load((out / "train_config.yaml").read_text())
    assert saved["optim"]["lr"] == 1e-5 and saved["optim"]["tower_lr_scale"] == 0.0  # the family's recipe
    best = out / "best"
    metrics = json.loads((best / "best_metrics.json").read_text())
    assert metrics["step"] >= 0 and metrics["rsum"] > 0
    config = json.loads((best / "config.json").read_text())
    assert config["vision"]["backend"] == "transformers" and config["loss"]["use_cmlm"] is False
    model = load_model(best)  # a COTS checkpoint, rebuilt without the source folder
    shutil.rmtree(source)
    assert load_model(best).model_id == model.model_id
    # the run's validation pass scored the starting model too (step 0), so RUN/best is never worse than it
    evals = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals if e.get("kind") == "eval"][0] == 0
    # and it indexes and searches like any other model
    photos = tmp_path / "photos"
    shutil.copytree(captioned, photos)
    db = ["--db", str(tmp_path / "library.db"), "--device", "cpu"]
    assert main(["index", str(photos), *db, "--model", str(best), "--quiet", "--no-ocr", "--no-faces"]) == 0
    capsys.readouterr()
    assert main(["search", "a cat asleep", "--json", *db]) == 0
    assert json.loads(capsys.readouterr().out)[0]["path"].endswith("cat.jpg")  # its caption, its name


def test_cmlm_is_refused_for_a_tokenizer_without_a_mask_token(captioned, tmp_path, capsys):
    source = make_tiny_clip(tmp_path / "source")
    code = main(["train", "finetune", "--from", str(source), "--data", str(captioned), "--out",
                 str(tmp_path / "run"), "--device", "cpu", "--no-progress", "--steps", "1",
                 "--set", "model.loss.use_mvlm=true", "--set", "model.loss.use_cmlm=true"])
    err = capsys.readouterr().err
    assert code != 0 and "[MASK]" in err and "Traceback" not in err
