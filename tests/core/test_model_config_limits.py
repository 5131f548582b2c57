"""A model folder's config is checked before anything is built or fetched (issue 21, items 5 and 6).

Each case was an unbounded allocation, an internal error or network requests; now each is one
ModelLoadError that names the file and the setting, raised within seconds and without a connection.
"""
from __future__ import annotations

import json
import socket
import time

import pytest

from cots_core import COTS, ModelConfig, ModelLoadError, load_model
from cots_core.config_limits import check_tower_sizes, weight_shapes
from cots_core.loading import load_text_query_model
from cots_core.model_ids import remember_model_id


@pytest.fixture
def no_network(monkeypatch):
    """Any connection attempt is recorded and fails at once."""
    attempts = []

    def refuse(self, address, *args):
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: attempts.append(a) or (_ for _ in ()).throw(
        OSError("network disabled in this test")))
    return attempts


def _edit(folder, **changes) -> None:
    """changes: "text.hf_config.num_hidden_layers" style keys (dots as "__")."""
    config = json.loads((folder / "config.json").read_text())
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = config
        for key in path:
            node = node[key]
        node[last] = value
    (folder / "config.json").write_text(json.dumps(config))


def _refused(folder, *needles: str, seconds: float = 10.0) -> str:
    start = time.perf_counter()
    with pytest.raises(ModelLoadError) as caught:
        load_model(folder)
    assert time.perf_counter() - start < seconds
    message = str(caught.value)
    assert "\n" not in message and all(n in message for n in needles), message
    return message


@pytest.mark.parametrize(("key", "value", "needles"), [
    ("text__hf_config__num_hidden_layers", 1_000_000, ("num_hidden_layers = 1,000,000 is out of range",)),
    ("text__hf_config__num_hidden_layers", 3, ("num_hidden_layers = 3, but the weights hold 2 layers",)),
    ("text__hf_config__hidden_size", 1e9, ("hidden_size = 1000000000.0 is not a sane model setting",)),
    ("text__hf_config__hidden_size", 96, ("hidden_size = 96 fits no weight",)),
    ("text__hf_config__intermediate_size", 2.5, ("intermediate_size must be a whole number",)),
    ("image_size", 1e6, ("image_size must be a whole number",)),
    ("image_size", 1_000_000, ("image_size = 1,000,000 is out of range",)),
    ("vision__model_kwargs__depth", 100, ("depth = 100, but the weights hold 2 layers",)),
    ("vision__model_kwargs__embed_dim", 10**12, ("is not a sane model setting",)),
    ("queue__size", float("inf"), ("is not a sane model setting",)),
    ("embed_dim", -5, ("embed_dim = -5 is out of range",)),
])
def test_sizes_are_checked_before_the_model_is_built(tiny_copy, monkeypatch, key, value, needles):
    built = []
    monkeypatch.setattr(COTS, "__init__", lambda self, *a, **k: built.append(1) or (_ for _ in ()).throw(
        AssertionError("built before the check")))
    _edit(tiny_copy, **{key: value})
    _refused(tiny_copy, str(tiny_copy / "config.json"), *needles)
    assert not built


def test_the_lean_text_path_checks_sizes_before_building_its_tower(tiny_copy):
    _edit(tiny_copy, text__hf_config__num_hidden_layers=1_000_000)
    remember_model_id(tiny_copy, "known")  # the lean path serves folders whose id is known
    with pytest.raises(ModelLoadError, match="num_hidden_layers = 1,000,000 is out of range"):
        load_text_query_model(tiny_copy)


def test_a_300_mb_tokenizer_is_refused_unread_and_a_malformed_one_in_one_line(tiny_copy):
    tokenizer = tiny_copy / "tokenizer" / "tokenizer.json"
    with open(tokenizer, "r+b") as handle:  # sparse: 300 MB on paper, nothing written
        handle.truncate(300 << 20)
    _refused(tiny_copy, "tokenizer.json is 300 MiB, too large for a tokenizer file")
    tokenizer.write_text(json.dumps({"version": "1.0", "model": {"type": "WordPiece"}}))  # valid JSON, no vocab
    _refused(tiny_copy, "cannot load the tokenizer in")


@pytest.mark.parametrize("name", ["hf-hub:someone/model", "hf_hub:someone/model", "timm/vit_tiny_patch16_224.augreg_in21k",
                                  "local-dir:/tmp/somewhere", "https://example.com/model.pth", "someone/model"])
def test_a_timm_name_that_would_fetch_is_refused_without_the_network(tiny_copy, no_network, name):
    """Before: timm fetched the pretrained config of an "hf-hub:" name and retried for 31 s."""
    _edit(tiny_copy, vision__model_name=name)
    _refused(tiny_copy, "would be fetched from elsewhere", seconds=5)
    assert not no_network


def test_a_timm_option_that_would_fetch_is_refused(tiny_copy, no_network):
    _edit(tiny_copy, vision__model_kwargs__pretrained_cfg_overlay={"hf_hub_id": "someone/model"})
    _refused(tiny_copy, "pretrained_cfg_overlay would make timm load from elsewhere")
    assert not no_network


def test_pretrained_timm_in_a_folder_never_fetches(tiny_copy, no_network):
    _edit(tiny_copy, vision__pretrained="timm")
    model = load_model(tiny_copy)  # the folder's own weights, and no connection attempt
    assert model.config.vision.pretrained == "timm" and not no_network


def test_check_tower_sizes_is_generic_over_layer_names(saved_tiny):
    """What the Hugging Face CLIP/SigLIP folders can call too: layers counted from ``layers.N``."""
    shapes = {"text_model.encoder.layers.0.mlp.fc1.weight": (128, 64), "text_model.encoder.layers.1.mlp.fc1.weight":
              (128, 64), "text_model.embeddings.token_embedding.weight": (1000, 64)}
    check_tower_sizes({"num_hidden_layers": 2, "hidden_size": 64, "vocab_size": 1000}, shapes, "text_model.", "x")
    with pytest.raises(ModelLoadError, match="weights hold 2 layers"):
        check_tower_sizes({"num_hidden_layers": 12}, shapes, "text_model.", "x")
    assert weight_shapes(saved_tiny / "model.safetensors")  # header only


class _NotATensor:  # a pickled object: what torch.load(weights_only=True) refuses
    pass


def _pickle_with_an_object(path) -> None:
    import torch

    torch.save({"optimizer": {}, "scheduler": {}, "payload": _NotATensor()}, path)


def test_a_text_model_folder_holding_a_pickle_is_one_line(tmp_path):
    """Before: an internal error quoting PyTorch's advice to set weights_only=False (which runs the pickle)."""
    from transformers import BertConfig

    from cots_core.config import TextConfig
    from cots_core.encoders import HFTextEncoder

    folder = tmp_path / "bert"
    folder.mkdir()
    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
               vocab_size=100).save_pretrained(folder)
    _pickle_with_an_object(folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError) as caught:
        HFTextEncoder(TextConfig(model_name_or_path=str(folder)), pretrained=True)
    message = str(caught.value)
    assert "\n" not in message and "weights_only" not in message and str(folder) in message, message


def test_resume_from_a_training_state_holding_a_pickle_is_one_line(tmp_path):
    from trainer.checkpoint import load_checkpoint
    from trainer.run_folders import TRAINING_STATE

    model = COTS(ModelConfig.preset("tiny"), pretrained_backbones=False)
    model.save_pretrained(tmp_path)
    _pickle_with_an_object(tmp_path / TRAINING_STATE)
    with pytest.raises(ModelLoadError) as caught:
        load_checkpoint(tmp_path, model, None, None, None)
    message = str(caught.value)
    assert "holds Python objects" in message and "weights_only" not in message and "\n" not in message
