"""CLIP-family checkpoints as COTS towers: transformers' own embeddings, reproduced exactly, offline."""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hf_tiny import make_tiny_clip, make_tiny_siglip
from PIL import Image

from cots_core import ModelLoadError, load_model

REAL_PHOTOS = Path(__file__).resolve().parents[1] / "data" / "real_photos"
TEXTS = ["a photo of a cat", "red car on the beach at night", "snow", "an astronaut on the moon with a flag",
         "people " * 40]  # the last is longer than either family's max length: truncated as the reference does
MAKERS = {"clip": make_tiny_clip, "siglip": make_tiny_siglip}


@pytest.fixture(scope="module", params=sorted(MAKERS))
def hf_folder(request, tmp_path_factory) -> Path:
    return MAKERS[request.param](tmp_path_factory.mktemp(request.param) / "model")


def _photos() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    odd_sizes = [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for h, w in ((40, 61), (97, 33))]
    real = [Image.open(REAL_PHOTOS / name) for name in ("cat.jpg", "astronaut.jpg", "pagoda.jpg")]
    return odd_sizes + [Image.open(REAL_PHOTOS / "coffee.jpg").convert("L")] + real


def _reference(folder: Path, texts: list[str], images: list[Image.Image]) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' own model and processor, as their model cards use them."""
    from transformers import AutoModel, AutoProcessor

    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
    padding = "max_length" if model.config.model_type == "siglip" else True
    with torch.no_grad():
        text = model.get_text_features(**processor(text=texts, padding=padding, truncation=True,
                                                   return_tensors="pt"))
        image = model.get_image_features(**processor(images=[im.convert("RGB") for im in images],
                                                     return_tensors="pt"))
    return F.normalize(text.pooler_output, dim=-1), F.normalize(image.pooler_output, dim=-1)


def test_embeddings_equal_the_reference_implementation(hf_folder):
    model = load_model(hf_folder)
    images = _photos()
    ref_text, ref_image = _reference(hf_folder, TEXTS, images)
    assert F.cosine_similarity(model.encode_texts(TEXTS), ref_text).min() >= 0.9999
    assert F.cosine_similarity(model.encode_pil(images), ref_image).min() >= 0.9999
    # and in one batch of one (padding to the batch's longest must not change a CLIP text's embedding)
    assert F.cosine_similarity(model.encode_texts(TEXTS[:1]), ref_text[:1]).min() >= 0.9999


def test_saved_and_reloaded_as_a_cots_checkpoint_offline(hf_folder, tmp_path):
    model = load_model(_copy(hf_folder, tmp_path))
    model.save_pretrained(tmp_path / "cots")
    shutil.rmtree(tmp_path / "copy")
    reloaded = load_model(tmp_path / "cots")  # rebuilt from its own config: the HF folder is not needed
    assert reloaded.model_id == model.model_id
    assert json.loads((tmp_path / "cots" / "config.json").read_text())["loss"]["use_cmlm"] is False
    ref_text, ref_image = _reference(hf_folder, TEXTS, _photos())
    assert F.cosine_similarity(reloaded.encode_texts(TEXTS), ref_text).min() >= 0.9999
    assert F.cosine_similarity(reloaded.encode_pil(_photos()), ref_image).min() >= 0.9999


def test_a_video_is_the_mean_of_its_frames(hf_folder):
    model = load_model(hf_folder)
    frames = torch.stack([model.preprocess(image) for image in _photos()[:3]])
    expected = F.normalize(model.encode_images(frames).mean(0), dim=-1)
    assert torch.allclose(model.encode_video(frames), expected, atol=1e-6)


def test_training_step_runs_the_cots_objectives_that_apply(hf_folder):
    model = load_model(hf_folder)
    model.train()
    size = model.config.image_size
    batch = {"pixels": torch.randn(4, 3, size, size), "texts": TEXTS[:4]}
    model.training_step(batch)  # the negatives are the queues: the first step fills them
    out = model.training_step(batch)
    assert torch.isfinite(out["loss"]) and out["loss_mcl"] > 0 and out["loss_kl"] > 0
    assert out["loss_cmlm"].item() == 0.0 and out["loss_cmvm"].item() == 0.0  # no [MASK] token, no trained dVAE
    out["loss"].backward()
    grads = [p.grad for p in model.image_encoder.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    # the token-level heads still work on these towers when asked for (CMVM with a dVAE's targets)
    model.config.loss.use_mvlm = model.config.loss.use_cmvm = True
    assert torch.isfinite(model.training_step(batch)["loss_cmvm"])


# ------------------------------------------------------------------------------------------- bad input
def _copy(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(folder, target)
    return target


def _edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("damage, message", [
    (lambda f: _edit_config(f, model_type="llava"), "'llava' model"),
    (lambda f: _edit_config(f, auto_map={"AutoModel": "evil.Model"}), "auto_map"),
    (lambda f: (f / "model.safetensors").rename(f / "pytorch_model.bin"), "pickle"),
    (lambda f: [p.unlink() for p in f.iterdir() if p.name.startswith(("tokenizer", "vocab", "merges", "spiece",
                                                                     "special"))], "no tokenizer files"),
    (lambda f: (f / "preprocessor_config.json").unlink(), "preprocessor_config.json"),
    (lambda f: _edit_config(f, vision_config={**json.loads((f / "config.json").read_text())["vision_config"],
                                              "intermediate_size": 80}), "intermediate_size = 80"),
    (lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:5000]), "cannot read"),
    (lambda f: ((f / "model.safetensors").rename(f / "model-00001-of-00002.safetensors"),
                (f / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
                    "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))),
     "half-finished download"),
])
def test_a_bad_folder_is_refused_with_one_clear_line(hf_folder, tmp_path, damage, message):
    folder = _copy(hf_folder, tmp_path)
    damage(folder)
    with pytest.raises(ModelLoadError) as error:
        load_model(folder)
    text = str(error.value)
    assert message in text and "\n" not in text


@pytest.mark.slow  # fresh interpreters (~9 s for both)
def test_text_queries_need_neither_the_image_tower_nor_timm(hf_folder, tmp_path):
    from cots_core.hf_checkpoints import HFTextTower
    from cots_core.lean_clip_text import ClipTextTower
    from cots_core.loading import load_query_model
    from cots_core.text_query import TextFirstModel

    full = load_model(hf_folder)  # the first full load stores the model id: the text-only path needs it
    full.save_pretrained(tmp_path / "cots")
    load_model(tmp_path / "cots")
    clip = json.loads((hf_folder / "config.json").read_text())["model_type"] == "clip"
    # CLIP: pure torch (no transformers); SigLIP: its SentencePiece tokenizer needs transformers
    expected = ClipTextTower if clip else HFTextTower
    for folder in (hf_folder, tmp_path / "cots"):  # the Hugging Face folder, and the COTS checkpoint of it
        model = load_query_model(folder)
        assert isinstance(model, TextFirstModel) and isinstance(model.text_model.tower, expected)
        assert torch.allclose(model.encode_texts(TEXTS), full.encode_texts(TEXTS), atol=1e-5)
        assert torch.allclose(model.encode_texts(TEXTS[:1]), full.encode_texts(TEXTS[:1]), atol=1e-5)
        assert model._full is None and model.model_id == full.model_id
        assert model.config.embed_dim == full.config.embed_dim and model.config.image_size == full.config.image_size
    script = ("import sys; from cots_core.loading import load_query_model; "
              f"m = load_query_model({str(hf_folder)!r}); m.encode_texts(['a cat']); "
              "print(sorted({'timm', 'transformers', 'cots_core.model'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == ("[]" if clip else "['transformers']")


def _with_weights(folder: Path, target: Path, **tensors: torch.Tensor) -> Path:
    from safetensors.torch import load_file, save_file

    shutil.copytree(folder, target)
    state = load_file(str(target / "model.safetensors"))
    state.update(tensors)
    save_file(state, str(target / "model.safetensors"))
    return target


@pytest.mark.parametrize("inverse, temperature", [(50.0, 0.02), (5000.0, 0.001), (1.0, 0.5)],
                         ids=["trained", "clamped-low", "clamped-high"])
def test_the_contrastive_temperature_starts_at_the_checkpoints_own(hf_folder, tmp_path, inverse, temperature):
    # exp(-logit_scale), within ALBEF's range for a learned τ (0.001-0.5)
    folder = _with_weights(hf_folder, tmp_path / "copy", logit_scale=torch.tensor(math.log(inverse)))
    assert load_model(folder).config.queue.temperature == pytest.approx(temperature)


def test_logit_bias_plays_no_part_in_search(hf_folder, tmp_path):
    """SigLIP's logit_bias belongs to its sigmoid loss, which MCL's InfoNCE replaces; search ranks by a dot
    product, which one shared bias would not change: the weights loaded and the embeddings ignore it."""
    one = load_model(_with_weights(hf_folder, tmp_path / "a" / "model", logit_bias=torch.tensor([-10.0])))
    two = load_model(_with_weights(hf_folder, tmp_path / "b" / "model", logit_bias=torch.tensor([7.0])))
    assert one.model_id == two.model_id
    assert not any("logit_bias" in name for name in one.state_dict())
    pixels = torch.randn(2, 3, one.config.image_size, one.config.image_size)
    assert torch.equal(one.encode_texts(TEXTS), two.encode_texts(TEXTS))
    assert torch.equal(one.encode_images(pixels), two.encode_images(pixels))
