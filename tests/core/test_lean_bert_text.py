"""The lean text-query path (cots_core/lean_bert_text.py, chosen by cots_core/loading.py): same embeddings as the full model, the stored model
id and its key, the fallback to the full model, and no timm/transformers import for a text query."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from cots_core import COTS, ModelConfig, load_model
from cots_core.lean_bert_text import supports
from cots_core.loading import load_query_model, load_text_query_model
from cots_core.model_ids import known_model_id
from cots_core.text_query import TextFirstModel

TEXTS = ["a cat", "a red car parked next to a blue house", "China 2011", "", "Ünïcödé 東京 🐱",
         " ".join(["a very long caption that the tokenizer has to truncate"] * 12)]


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COTS_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def tiny_dir(tmp_path):
    torch.manual_seed(0)
    directory = tmp_path / "tiny"
    COTS(ModelConfig.preset("tiny"), pretrained_backbones=False).save_pretrained(directory)
    return directory


def _cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a, b, dim=-1)


def test_lean_embeddings_equal_the_full_model_on_the_tiny_preset(tiny_dir):
    full = load_model(tiny_dir)  # a full load stores the model id
    lean = load_text_query_model(tiny_dir)
    assert lean is not None and lean.model_id == full.model_id
    assert torch.equal(lean.tokenize(TEXTS)["input_ids"], full.tokenize(TEXTS)["input_ids"])
    assert lean.tokenize(TEXTS)["input_ids"].shape[1] == full.config.text.max_length  # truncated alike
    assert _cosines(lean.encode_texts(TEXTS), full.encode_texts(TEXTS)).min() >= 0.9999


def test_cls_pooling_and_the_tanh_gelu_are_reproduced_too(tmp_path):
    config = ModelConfig.preset("tiny").replace(text={"pooling": "cls", "hf_config": dict(
        ModelConfig.preset("tiny").text.hf_config, hidden_act="gelu_new")})
    torch.manual_seed(1)
    COTS(config, pretrained_backbones=False).save_pretrained(tmp_path / "cls")
    full = load_model(tmp_path / "cls")
    lean = load_text_query_model(tmp_path / "cls")
    assert _cosines(lean.encode_texts(TEXTS), full.encode_texts(TEXTS)).min() >= 0.9999


def test_no_lean_path_before_the_model_id_is_known(tiny_dir):
    assert known_model_id(tiny_dir) is None
    assert load_text_query_model(tiny_dir) is None
    assert isinstance(load_query_model(tiny_dir), COTS)  # the full model answers instead
    assert isinstance(load_query_model(tiny_dir), TextFirstModel)  # its load stored the id


def test_the_stored_id_is_dropped_when_the_weights_change(tiny_dir):
    first = load_model(tiny_dir).model_id
    assert known_model_id(tiny_dir) == first
    weights = tiny_dir / "model.safetensors"
    before = weights.stat()
    torch.manual_seed(5)
    COTS(ModelConfig.preset("tiny"), pretrained_backbones=False).save_pretrained(tiny_dir)  # new weights
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))  # same size, old mtime (as cp -p leaves it)
    assert weights.stat().st_size == before.st_size
    assert known_model_id(tiny_dir) is None and load_text_query_model(tiny_dir) is None
    second = load_model(tiny_dir).model_id
    assert second != first and load_text_query_model(tiny_dir).model_id == second


def test_other_text_towers_take_the_full_path(tiny_dir):
    config = ModelConfig.load_json(tiny_dir / "config.json")  # the architecture as saved
    assert supports(config)
    for change in ({"model_type": "roberta"}, {"position_embedding_type": "relative_key"}, {"hidden_act": "relu"}):
        assert not supports(config.replace(text={"hf_config": dict(config.text.hf_config, **change)}))


def test_text_first_model_loads_the_image_tower_only_when_asked(tiny_dir):
    load_model(tiny_dir)
    model = load_query_model(tiny_dir)
    assert isinstance(model, TextFirstModel)
    model.encode_texts(["a cat"])
    assert model._full is None
    pixels = torch.zeros(1, 3, model.config.image_size, model.config.image_size)
    assert model.encode_images(pixels).shape == (1, model.config.embed_dim)  # loaded now
    assert isinstance(model._full, COTS) and model.full_model.model_id == model.model_id


def test_a_text_query_imports_neither_timm_nor_transformers(tiny_dir, tmp_path):
    load_model(tiny_dir)
    script = ("import sys; from cots_core.loading import load_query_model; "
              f"m = load_query_model({str(tiny_dir)!r}); print(m.encode_texts(['a cat']).shape[1]); "
              "print(sorted({'timm', 'transformers', 'torchvision', 'torch._dynamo'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["64", "[]"]
