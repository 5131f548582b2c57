"""`cots train finetune --from` a CLIP-family checkpoint: COTS's objectives on those towers, the family's
recipe, a COTS checkpoint out that loads and searches like any other."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from hf_tiny import make_tiny_clip, make_tiny_siglip

from app.cli import main
from cots_core import CotsError, load_model
from cots_core.dvae import DiscreteVAE

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


# ----------------------------------------------------------------------- what the build does, said truthfully
MAKERS = {"clip": make_tiny_clip, "siglip": make_tiny_siglip}


def _build(source: Path, **overrides):
    from trainer.build import build_model
    from trainer.config import resolve_config

    cfg = resolve_config(overrides={"mode": "finetune", "init_from": str(source), **overrides})
    lines: list[str] = []
    return build_model(cfg, log=lines.append), lines


def _batch(model, captioned: Path) -> dict:
    from PIL import Image

    names = sorted(CAPTIONS)[:4]
    pixels = torch.stack([model.preprocess(Image.open(captioned / f"{name}.jpg").convert("RGB")) for name in names])
    return {"pixels": pixels, "texts": [CAPTIONS[name] for name in names]}


@pytest.mark.parametrize("family", sorted(MAKERS))
def test_the_recipe_trains_the_projections_alone_and_says_what_replaces_siglips_loss(family, captioned, tmp_path):
    model, lines = _build(MAKERS[family](tmp_path / "source"))
    # what docs/USER_GUIDE.md says: the towers are frozen, the loss's gradient reaches the two projections only
    assert not any(p.requires_grad for p in [*model.image_encoder.parameters(), *model.text_encoder.parameters()])
    batch = _batch(model, captioned)
    model.training_step(batch)  # fills the queue: its negatives
    model.training_step(batch)["loss"].backward()
    trained = {name.split(".")[0] for name, p in model.named_parameters() if p.grad is not None and p.grad.any()}
    assert trained - {"temperature"} == {"image_projection", "text_projection"}  # τ: learned where it is on
    # SigLIP's sigmoid loss and logit_bias are replaced by MCL's InfoNCE, and the log says so
    assert any("sigmoid" in line and "logit_bias" in line for line in lines) == (family == "siglip")


@pytest.mark.parametrize("family", sorted(MAKERS))
def test_a_tokenizer_turns_cmvm_on_for_clip_family_towers(family, captioned, tmp_path):
    source = MAKERS[family](tmp_path / "source")
    plain = load_model(source)
    assert plain.config.loss.use_mvlm is False  # as imported: no token level
    dvae = tmp_path / "dvae"  # what `cots train tokenizer` leaves, for this tower's size, grid and codes
    DiscreteVAE(dataclasses.replace(plain.config.tokenizer, trained=True), plain.config.image_size,
                plain.grid).save_pretrained(dvae)
    model, lines = _build(source, tokenizer=str(dvae))
    loss = model.config.loss
    assert loss.use_mvlm and loss.use_cmvm and not loss.use_cmlm
    assert any(line.startswith("--tokenizer: CMVM") for line in lines)
    assert any("frozen" in line and "tower_lr_scale" in line for line in lines)  # the recipe's towers: told
    batch = _batch(model, captioned)
    model.training_step(batch)
    out = model.training_step(batch)
    assert torch.isfinite(out["loss_cmvm"]) and out["loss_cmvm"] > 0 and out["loss_cmlm"].item() == 0.0
    # the HF tower's masked patches are what CMVM predicts: masking changes its patch tokens
    mask = torch.zeros(len(batch["pixels"]), model.grid[0] * model.grid[1], dtype=torch.bool)
    mask[:, :3] = True
    with torch.no_grad():
        masked = model.image_encoder(batch["pixels"], token_mask=mask).tokens
        whole = model.image_encoder(batch["pixels"]).tokens
    assert masked.shape[1] == mask.shape[1] and not torch.allclose(masked, whole)
    # a dVAE for another grid is refused with the sizes this tower needs
    other = tmp_path / "other"
    DiscreteVAE(dataclasses.replace(plain.config.tokenizer, trained=True), plain.config.image_size * 2,
                plain.grid).save_pretrained(other)
    with pytest.raises(CotsError, match=f"this model needs {plain.config.image_size}px"):
        _build(source, tokenizer=str(other))


def test_a_tower_whose_grid_no_dvae_fits_imports_trains_and_refuses_a_tokenizer(captioned, tmp_path):
    # patch 7 at 28 px (as ViT-L/14 at 224): a 4x4 grid that no power-of-two dVAE maps onto
    source = make_tiny_clip(tmp_path / "source", image_size=28, patch_size=7)
    model = load_model(source)
    assert model.image_tokenizer is None and model.grid == (4, 4)
    assert load_model(source).encode_texts(["a cat"]).shape[0] == 1
    trained, _ = _build(source)
    batch = _batch(trained, captioned)
    trained.training_step(batch)
    assert torch.isfinite(trained.training_step(batch)["loss"])
    dvae = tmp_path / "dvae"
    DiscreteVAE(dataclasses.replace(model.config.tokenizer, trained=True), 32, (4, 4)).save_pretrained(dvae)
    with pytest.raises(CotsError, match="cannot be tokenized by a dVAE"):
        _build(source, tokenizer=str(dvae))
