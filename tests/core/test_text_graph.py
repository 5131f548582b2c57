"""The ONNX text graph (cots_core/text_graph.py, text_graph_export.py): written once per model, checked against
PyTorch for every family (a COTS BERT tower, CLIP, SigLIP's SentencePiece tokenizer reproduced without
transformers), refused when its files are not the ones checked, and read with no torch import at all."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cots_core import COTS, ModelConfig, load_model
from cots_core.loading import load_text_query_model
from cots_core.onnx_cache import model_folder
from cots_core.text_graph import (
    GRAPH_FILE,
    MANIFEST_FILE,
    NOT_CHECKED,
    TOKENIZER_FILES,
    WEIGHTS_FILE,
    load_text_graph,
    text_graph_state,
)
from cots_core.text_graph_export import (
    HARD_TEXTS,
    ensure_text_graph,
    export_text_graph,
    text_query_model_of,
    verification_texts,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hf_tiny import make_tiny_clip, make_tiny_siglip  # noqa: E402

QUERIES = ["a cat on a sofa", "RED CAR!!", "café ☕", "", "a dog <pad> </s> running", "x " * 200]


@pytest.fixture(autouse=True)
def _graph_wanted(monkeypatch, tmp_path):
    monkeypatch.setenv("COTS_TEXT_RUNTIME", "auto")
    monkeypatch.setenv("COTS_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny") / "tiny"
    COTS(ModelConfig.preset("tiny"), pretrained_backbones=False).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def exported_tiny(tiny_dir, tmp_path_factory):
    """(text model, cache root) of the tiny model's graph, written once for the tests that read or damage it
    (each on its own copy: ``graph_root``)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COTS_DATA_DIR", str(tmp_path_factory.mktemp("data")))  # the model id is stored there
        load_model(tiny_dir)
        text_model = load_text_query_model(tiny_dir)
    root = tmp_path_factory.mktemp("graphs")
    export_text_graph(text_model, root)
    return text_model, root


@pytest.fixture
def graph_root(exported_tiny, tmp_path):
    import shutil

    return shutil.copytree(exported_tiny[1], tmp_path / "graphs")


def _check_against_torch(text_model, root: Path) -> dict:
    manifest = export_text_graph(text_model, root)
    assert manifest["verdict"]["accepted"], manifest["verdict"]
    graph = load_text_graph(text_model.model_id, root)
    assert graph is not None
    texts = QUERIES + HARD_TEXTS
    assert np.array_equal(graph.tokenize(texts)["input_ids"], text_model.tokenize(texts)["input_ids"].numpy())
    with torch.inference_mode():
        expected = torch.nn.functional.normalize(text_model.encode_texts(texts).float(), dim=-1).numpy()
    cosines = (graph.encode_texts(texts) * expected).sum(axis=1)
    assert cosines.min() >= 0.9999
    return manifest


def test_a_cots_bert_tower_is_exported_and_checked(tiny_dir, tmp_path):
    full = load_model(tiny_dir)
    manifest = _check_against_torch(load_text_query_model(tiny_dir), tmp_path)
    verdict = manifest["verdict"]
    assert verdict["texts"] == len(verification_texts()) > 250  # the captions, the scenes and the hard texts
    assert verdict["same_top_k"] and verdict["token_ids_differing"] == 0 and verdict["min_cosine"] >= 0.9999
    assert manifest["model_id"] == full.model_id and manifest["embed_dim"] == full.config.embed_dim
    # the full model's own text path gives the same graph's answers (a model with no lean path uses it)
    other = tmp_path / "full"
    _check_against_torch(text_query_model_of(full), other)


def test_clip_and_siglip_towers_are_exported_and_checked(tmp_path):
    for make in (make_tiny_clip, make_tiny_siglip):
        folder = make(tmp_path / make.__name__)
        load_model(folder)  # stores the id
        text_model = load_text_query_model(folder)
        manifest = _check_against_torch(text_model, tmp_path / "cache")
        kind = manifest["tokenizer"]["kind"]
        assert kind == ("sentencepiece-siglip" if make is make_tiny_siglip else "tokenizers")


@pytest.mark.filterwarnings("ignore:This sequence already has")  # transformers, on a text ending in "</s>"
def test_the_siglip_tokenizer_is_reproduced_id_for_id(tmp_path):
    from transformers import AutoTokenizer

    from cots_core.text_graph import SiglipSentencePiece, tokenizable
    from cots_core.text_graph_export import tokenizer_as_data

    folder = make_tiny_siglip(tmp_path / "siglip")
    load_model(folder)
    text_model = load_text_query_model(folder)
    kind, data, spec = tokenizer_as_data(text_model)
    ours = SiglipSentencePiece(data, spec)
    theirs = AutoTokenizer.from_pretrained(folder)
    texts = verification_texts() + ["Hello, World!", "  spaced   out  ", "under_score", "a\u2581b", "</s>", "<unk>x"]
    for text in texts:
        expected = theirs(tokenizable(text), padding="max_length", truncation=True, max_length=spec["max_length"])["input_ids"]
        assert ours.ids(text) + [spec["pad_id"]] * (spec["max_length"] - len(ours.ids(text))) == expected, text


def test_files_that_are_not_the_checked_ones_are_refused(exported_tiny, graph_root):
    text_model, tmp_path = exported_tiny[0], graph_root
    folder = model_folder(text_model.model_id, tmp_path)
    assert text_graph_state(text_model.model_id, tmp_path).usable
    graph = (folder / GRAPH_FILE).read_bytes()
    (folder / GRAPH_FILE).write_bytes(graph[:-1] + bytes([graph[-1] ^ 1]))
    state = text_graph_state(text_model.model_id, tmp_path)
    assert not state.usable and state.model is None and "not the one that was checked" in state.reason
    # ensure_text_graph writes it again
    assert ensure_text_graph(text_model, tmp_path)["verdict"]["accepted"]
    assert text_graph_state(text_model.model_id, tmp_path).usable
    # weights changed in place (their stamp no longer matches, so they are hashed), or touched only (hashed, kept)
    weights = (folder / WEIGHTS_FILE).read_bytes()
    (folder / WEIGHTS_FILE).write_bytes(weights[:100] + bytes([weights[100] ^ 1]) + weights[101:])
    assert text_graph_state(text_model.model_id, tmp_path).reason == NOT_CHECKED
    (folder / WEIGHTS_FILE).write_bytes(weights)
    assert text_graph_state(text_model.model_id, tmp_path).usable
    # a tokenizer swapped for another
    tokenizer_file = folder / TOKENIZER_FILES["tokenizers"]
    tokenizer_file.write_text(tokenizer_file.read_text().replace('"[CLS]"', '"[XLS]"'))
    assert not text_graph_state(text_model.model_id, tmp_path).usable
    # a graph in a link, or a manifest naming another model
    (folder / GRAPH_FILE).unlink()
    (folder / GRAPH_FILE).symlink_to(tokenizer_file)
    assert not text_graph_state(text_model.model_id, tmp_path).usable
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    (folder / MANIFEST_FILE).write_text(json.dumps({**manifest, "model_id": "another"}))
    assert "no text graph" in text_graph_state(text_model.model_id, tmp_path).reason


def test_a_graph_that_disagrees_with_torch_is_kept_as_a_verdict_only(tiny_dir, tmp_path, monkeypatch):
    from cots_core import text_graph_export

    load_model(tiny_dir)
    text_model = load_text_query_model(tiny_dir)
    real = text_graph_export.tokenizer_as_data

    def lower_cased_ids(model):  # a tokenizer that differs from the model's own: the check must see it
        kind, data, spec = real(model)
        changed = json.loads(data)
        changed["normalizer"] = {"type": "Replace", "pattern": {"String": "a"}, "content": "e"}
        return kind, json.dumps(changed).encode(), spec

    monkeypatch.setattr(text_graph_export, "tokenizer_as_data", lower_cased_ids)
    manifest = export_text_graph(text_model, tmp_path)
    assert not manifest["verdict"]["accepted"] and "token ids differ" in manifest["verdict"]["why"]
    folder = model_folder(text_model.model_id, tmp_path)
    assert not (folder / GRAPH_FILE).exists()
    state = text_graph_state(text_model.model_id, tmp_path)
    assert not state.usable and "did not match PyTorch" in state.reason
    # not tried again with the same torch
    monkeypatch.setattr(text_graph_export, "export_text_graph", lambda *a, **k: pytest.fail("exported again"))
    assert ensure_text_graph(text_model, tmp_path) == manifest


def test_a_text_query_through_the_graph_imports_no_torch(exported_tiny, graph_root):
    text_model, tmp_path = exported_tiny[0], graph_root
    with torch.inference_mode():
        expected = text_model.encode_texts(["a cat"]).numpy()[0]
    code = ("import sys, json; from pathlib import Path; from cots_core.text_graph import load_text_graph; "
            f"m = load_text_graph({text_model.model_id!r}, Path({str(tmp_path)!r})); "
            "v = m.encode_texts(['a cat'])[0]; "
            "print(json.dumps({'v': v.tolist(), 'heavy': [n for n in ('torch', 'timm', 'transformers') "
            "if n in sys.modules]}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "COTS_TEXT_RUNTIME": "auto"})
    result = json.loads(out.stdout)
    assert result["heavy"] == []
    assert float(np.dot(result["v"], expected)) >= 0.9999
