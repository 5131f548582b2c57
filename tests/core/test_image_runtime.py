"""The image path through ONNX Runtime: same embeddings as PyTorch, cached by model id, validated, and
PyTorch whenever the runtime cannot be used."""
from __future__ import annotations

import hashlib
import json
import os
import sys

import pytest
import torch
import torch.nn.functional as F

from cots_core import COTS, ModelConfig, image_runtime, onnx_cache
from cots_core.image_runtime import GRAPH_FILE, MANIFEST_FILE, RUNTIME_ENV, load_onnx_image_encoder

pytestmark = pytest.mark.slow  # one ONNX export (~10 s on 2 cores) per model


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return COTS(ModelConfig.preset("tiny"), pretrained_backbones=False).eval()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(autouse=True)
def runtime_on(monkeypatch):
    monkeypatch.setenv(RUNTIME_ENV, "auto")


def test_embeddings_match_pytorch_at_any_batch_size(tiny, cache):
    encoder = load_onnx_image_encoder(tiny, threads=2, cache_root=cache)
    assert encoder is not None
    for batch in (1, 5):
        pixels = torch.rand(batch, 3, 64, 64, generator=torch.Generator().manual_seed(batch)) * 2 - 1
        got = encoder.encode_images(pixels)
        assert got.shape == (batch, tiny.config.embed_dim)
        assert F.cosine_similarity(got, tiny.encode_images(pixels), dim=-1).min() >= 0.999
    manifest = json.loads((encoder.folder / MANIFEST_FILE).read_text())
    assert manifest["model_id"] == tiny.model_id
    assert encoder.folder.parent == cache and encoder.folder.name == tiny.model_id


def test_cached_graph_is_reused_without_export(tiny, cache, monkeypatch):
    assert load_onnx_image_encoder(tiny, threads=2, cache_root=cache) is not None  # exported at most once here

    def no_export(*_):
        raise AssertionError("exported again although the cache is valid")

    monkeypatch.setattr(image_runtime, "export_image_graph", no_export)
    assert load_onnx_image_encoder(tiny, threads=2, cache_root=cache) is not None


def test_altered_graph_is_never_used_but_rebuilt(tiny, cache, monkeypatch):
    assert load_onnx_image_encoder(tiny, threads=2, cache_root=cache) is not None
    graph = cache / tiny.model_id / GRAPH_FILE
    graph.write_bytes(graph.read_bytes()[:-64] + bytes(64))  # same size, other bytes: the SHA-256 differs
    exports = []
    real_export = image_runtime.export_image_graph
    monkeypatch.setattr(image_runtime, "export_image_graph", lambda *a: (exports.append(a), real_export(*a)))
    encoder = load_onnx_image_encoder(tiny, threads=2, cache_root=cache)
    assert exports and encoder is not None
    pixels = torch.rand(3, 3, 64, 64) * 2 - 1
    assert F.cosine_similarity(encoder.encode_images(pixels), tiny.encode_images(pixels), dim=-1).min() >= 0.999


def test_graph_of_another_model_is_not_used(tiny, cache, monkeypatch):
    """A manifest naming another model id (a folder copied or renamed by hand) is not trusted."""
    assert load_onnx_image_encoder(tiny, threads=2, cache_root=cache) is not None
    other = COTS(ModelConfig.preset("tiny"), pretrained_backbones=False).eval()
    folder = cache / other.model_id
    folder.mkdir(exist_ok=True)
    for name in (GRAPH_FILE, MANIFEST_FILE):
        (folder / name).write_bytes((cache / tiny.model_id / name).read_bytes())
    assert image_runtime._load_cached(other, folder, 2) is None


def test_pytorch_when_onnxruntime_is_missing_or_switched_off(tiny, cache, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # find_spec -> None, import fails
    assert load_onnx_image_encoder(tiny, threads=2, cache_root=cache) is None
    monkeypatch.setenv(RUNTIME_ENV, "torch")
    assert load_onnx_image_encoder(tiny, threads=2, cache_root=cache) is None


def test_export_failure_falls_back_to_pytorch(tmp_path, tiny, monkeypatch):
    def broken_export(*_):
        raise RuntimeError("exporter broke")

    monkeypatch.setattr(image_runtime, "export_image_graph", broken_export)
    assert load_onnx_image_encoder(tiny, threads=2, cache_root=tmp_path) is None


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from hf_tiny import make_tiny_clip

    from cots_core import load_model

    # 64 px, so that int8's matrix products are the bulk of the work, as in a real ViT
    return load_model(make_tiny_clip(tmp_path_factory.mktemp("clip") / "model", image_size=64, patch_size=8,
                                     vision={"hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 4}))


def _chosen(manifest: dict, int8_allowed: bool = True) -> str:
    allowed = ["torch", "fp32"] + (["int8"] if manifest["int8"]["accepted"] and int8_allowed else [])
    return min(allowed, key=lambda name: manifest["seconds"][name])


def test_a_transformer_tower_runs_on_the_fastest_runtime_that_agrees(tiny_clip, tmp_path, monkeypatch):
    encoder = load_onnx_image_encoder(tiny_clip, threads=2, cache_root=tmp_path)
    folder = onnx_cache.model_folder(tiny_clip.model_id, tmp_path)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    verdict = manifest["int8"]
    assert verdict["views"] == 40 and 0 <= verdict["overlap"] <= 1 and verdict["min_cosine"] <= 1
    assert verdict["accepted"] == (verdict["overlap"] >= 0.95 and verdict["min_cosine"] >= 0.99
                                   and verdict["speedup"] >= 1.2)
    assert (folder / image_runtime.INT8_GRAPH_FILE).is_file() == verdict["accepted"]
    chosen = _chosen(manifest)  # the fastest of the measured runtimes, int8 only where it agrees
    assert (encoder.precision if encoder is not None else "torch") == chosen
    if encoder is not None:
        pixels = image_runtime.agreement_views(tiny_clip)[:6]
        assert F.cosine_similarity(encoder.encode_images(pixels), tiny_clip.encode_images(pixels)).min() >= 0.99
    # decided once: a second load reads the verdict instead of quantising and timing again
    monkeypatch.setattr("onnxruntime.quantization.quantize_dynamic", lambda *a, **k: pytest.fail("quantised twice"))
    again = load_onnx_image_encoder(tiny_clip, threads=2, cache_root=tmp_path)
    assert (again.precision if again is not None else "torch") == chosen


def test_int8_is_refused_when_search_would_disagree(tiny_clip, tmp_path, monkeypatch):
    monkeypatch.setattr(image_runtime, "INT8_MIN_OVERLAP", 1.01)  # no graph can meet it
    encoder = load_onnx_image_encoder(tiny_clip, threads=2, cache_root=tmp_path)
    folder = onnx_cache.model_folder(tiny_clip.model_id, tmp_path)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert not manifest["int8"]["accepted"] and not (folder / image_runtime.INT8_GRAPH_FILE).exists()
    assert (encoder.precision if encoder is not None else "torch") == _chosen(manifest) != "int8"


def test_fp32_setting_never_takes_int8(tiny_clip, tmp_path, monkeypatch):
    load_onnx_image_encoder(tiny_clip, threads=2, cache_root=tmp_path)
    folder = onnx_cache.model_folder(tiny_clip.model_id, tmp_path)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["int8"]["accepted"], manifest["seconds"]["int8"] = True, 0.0  # as if int8 agreed and won
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    monkeypatch.setenv(RUNTIME_ENV, "fp32")
    encoder = load_onnx_image_encoder(tiny_clip, threads=2, cache_root=tmp_path)
    assert (encoder.precision if encoder is not None else "torch") == _chosen(manifest, int8_allowed=False)


# -- the cache's files trusted for nothing (issue 30) -----------------------------------------------
def _counting_exports(monkeypatch) -> list:
    exports = []
    real_export = image_runtime.export_image_graph
    monkeypatch.setattr(image_runtime, "export_image_graph", lambda *a: (exports.append(a), real_export(*a)))
    return exports


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_as_the_manifest_is_replaced_without_blocking(tiny, tmp_path, monkeypatch):
    """Was: ``cots index`` hung reading the FIFO."""
    from hang_guard import finishes_within

    assert load_onnx_image_encoder(tiny, threads=2, cache_root=tmp_path) is not None
    manifest = onnx_cache.model_folder(tiny.model_id, tmp_path) / MANIFEST_FILE
    manifest.unlink()
    os.mkfifo(manifest)
    exports = _counting_exports(monkeypatch)
    encoder = finishes_within(300, lambda: load_onnx_image_encoder(tiny, threads=2, cache_root=tmp_path), [manifest])
    assert encoder is not None and exports and manifest.is_file()


def test_a_graph_linked_out_of_the_cache_is_not_read(tiny, tmp_path, monkeypatch):
    """Was: ``image.onnx -> /dev/zero`` read until memory ran out. A link is never followed (here to a copy
    of the right graph, so that following it would pass every other check): the graph is exported again."""
    assert load_onnx_image_encoder(tiny, threads=2, cache_root=tmp_path / "cache") is not None
    graph = onnx_cache.model_folder(tiny.model_id, tmp_path / "cache") / GRAPH_FILE
    elsewhere = tmp_path / "elsewhere.onnx"
    graph.rename(elsewhere)
    graph.symlink_to(elsewhere)
    exports = _counting_exports(monkeypatch)
    assert load_onnx_image_encoder(tiny, threads=2, cache_root=tmp_path / "cache") is not None
    assert exports and graph.is_file() and not graph.is_symlink()


def test_a_graph_cut_short_with_its_hash_rewritten_is_exported_again(tiny, tmp_path, monkeypatch):
    """Was: ONNX Runtime failed on the graph, the library stayed on PyTorch and never exported it again."""
    assert load_onnx_image_encoder(tiny, threads=2, cache_root=tmp_path) is not None
    folder = onnx_cache.model_folder(tiny.model_id, tmp_path)
    cut = (folder / GRAPH_FILE).read_bytes()[:4096]
    (folder / GRAPH_FILE).write_bytes(cut)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["sha256"] = hashlib.sha256(cut).hexdigest()
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    exports = _counting_exports(monkeypatch)
    encoder = load_onnx_image_encoder(tiny, threads=2, cache_root=tmp_path)
    assert exports and encoder is not None
    pixels = torch.rand(2, 3, 64, 64) * 2 - 1
    assert F.cosine_similarity(encoder.encode_images(pixels), tiny.encode_images(pixels), dim=-1).min() >= 0.999
    exports.clear()
    assert load_onnx_image_encoder(tiny, threads=2, cache_root=tmp_path) is not None and not exports


def _forged_graph(inputs: int, embed_dim: int) -> bytes:
    """A graph with the image path's input and output that is not the model: the first pixels as the
    'embedding'."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Flatten", ["pixels"], ["flat"], axis=1),
             helper.make_node("Slice", ["flat", "starts", "ends", "axes"], ["embeddings"])]
    constants = [helper.make_tensor(name, TensorProto.INT64, [1], [value])
                 for name, value in (("starts", 0), ("ends", embed_dim), ("axes", 1))]
    graph = helper.make_graph(nodes, "forged", [helper.make_tensor_value_info("pixels", TensorProto.FLOAT,
                                                                                ["batch", 3, inputs, inputs])],
                              [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", embed_dim])],
                              initializer=constants)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_an_int8_verdict_pointed_at_a_forged_graph_is_not_used(tiny_clip, tmp_path):
    """Was: the int8 graph was used on the hash in its manifest alone, so a forged graph with its hash written
    into the verdict gave the library its embeddings. Now the graph is checked against fp32 at each load."""
    load_onnx_image_encoder(tiny_clip, threads=2, cache_root=tmp_path)
    folder = onnx_cache.model_folder(tiny_clip.model_id, tmp_path)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    forged = _forged_graph(int(manifest["image_size"]), int(manifest["embed_dim"]))
    (folder / image_runtime.INT8_GRAPH_FILE).write_bytes(forged)
    manifest["int8"].update(accepted=True, sha256=hashlib.sha256(forged).hexdigest())
    manifest["seconds"].update(torch=9.0, fp32=9.0, int8=0.0)  # as if it agreed and won
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    encoder = load_onnx_image_encoder(tiny_clip, threads=2, cache_root=tmp_path)
    pixels = image_runtime.agreement_views(tiny_clip)[:6]
    if encoder is not None:
        assert F.cosine_similarity(encoder.encode_images(pixels), tiny_clip.encode_images(pixels)).min() >= 0.99
    graph = folder / image_runtime.INT8_GRAPH_FILE
    assert not graph.exists() or graph.read_bytes() != forged  # deleted, and the choice measured again
    verdict = json.loads((folder / MANIFEST_FILE).read_text())["int8"]
    assert verdict["sha256"] != hashlib.sha256(forged).hexdigest()
