"""A query image without torch (cots_core/image_graph.py): the model's preprocessing in PIL and numpy equals
torchvision's, the image graph's check is recorded when torch loads it, and only a checked graph is used."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cots_core import COTS, ModelConfig, load_model
from cots_core.image_graph import (
    GRAPH_FILE,
    MANIFEST_FILE,
    load_image_graph,
    needs_light_check,
    preprocess,
    preprocess_spec,
)
from cots_core.image_runtime import RUNTIME_ENV, load_onnx_image_encoder

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hf_tiny import make_tiny_clip  # noqa: E402


def _images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    pictures = [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for h, w in
                ((97, 131), (131, 97), (64, 64), (63, 65), (300, 17), (5, 2000), (240, 320))]
    return pictures + [pictures[0].convert("L"), pictures[1].convert("RGBA"), pictures[2].convert("P")]


@pytest.mark.parametrize("resize", ["shortest_edge", "squash"])
@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_the_numpy_preprocessing_is_torchvisions(resize, interpolation):
    config = ModelConfig.preset("tiny")
    config = config.replace(vision={"resize": resize, "interpolation": interpolation})
    from cots_core.transforms import build_transform

    transform = build_transform(config.image_size, config.vision)
    spec = preprocess_spec(config.vision, config.image_size)
    for image in _images():
        assert np.abs(preprocess(image, spec) - transform(image).numpy()).max() <= 1e-5, image.size


@pytest.mark.slow  # one ONNX export per model (~10 s on 2 cores)
def test_a_checked_image_graph_answers_a_query_image_without_torch(tmp_path, monkeypatch):
    monkeypatch.setenv(RUNTIME_ENV, "auto")
    torch.manual_seed(0)
    tiny = COTS(ModelConfig.preset("tiny"), pretrained_backbones=False).eval()
    assert not needs_light_check(tiny.model_id, tmp_path)  # nothing exported yet
    assert load_onnx_image_encoder(tiny, threads=2, cache_root=tmp_path) is not None
    assert not needs_light_check(tiny.model_id, tmp_path)
    folder = tmp_path / tiny.model_id
    light = json.loads((folder / MANIFEST_FILE).read_text())["light"]
    assert light["accepted"] and light["max_pixel_error"] <= 1e-5 and light["min_cosine"] >= 0.999
    graph = load_image_graph(tiny.model_id, tmp_path)
    images = _images()[:4]
    with torch.inference_mode():
        expected = tiny.encode_images(torch.stack([tiny.preprocess(image) for image in images])).numpy()
    got = graph.encode_pil(images)
    assert (got * expected).sum(axis=1).min() >= 0.999
    # a graph that is not the one checked is not used
    data = (folder / GRAPH_FILE).read_bytes()
    (folder / GRAPH_FILE).write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert load_image_graph(tiny.model_id, tmp_path) is None


@pytest.mark.slow  # one ONNX export
def test_a_tower_resampled_as_transformers_does_keeps_its_query_images_on_torch(tmp_path, monkeypatch):
    monkeypatch.setenv(RUNTIME_ENV, "fp32")
    monkeypatch.setenv("COTS_DATA_DIR", str(tmp_path / "data"))
    clip = load_model(make_tiny_clip(tmp_path / "clip"))
    assert preprocess_spec(clip.config.vision, clip.config.image_size) is None
    load_onnx_image_encoder(clip, threads=2, cache_root=tmp_path / "cache")
    light = json.loads((tmp_path / "cache" / clip.model_id / MANIFEST_FILE).read_text())["light"]
    assert not light["accepted"] and "torch" in light["why"]
    assert load_image_graph(clip.model_id, tmp_path / "cache") is None
