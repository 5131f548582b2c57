"""Indexing on CPU runs the image path through ONNX Runtime when it is installed, with the embeddings
PyTorch would store; without it, PyTorch."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from fakes import run_indexer
from PIL import Image

from app.library.encoder import Encoder
from cots_core import COTS, ModelConfig
from cots_core.image_runtime import RUNTIME_ENV

pytestmark = pytest.mark.slow  # one ONNX export of the tiny model (~10 s on 2 cores)


@pytest.fixture
def tiny_encoder():
    torch.manual_seed(0)
    return Encoder(COTS(ModelConfig.preset("tiny"), pretrained_backbones=False), "cpu", source="tiny")


def _stored_vs_pytorch(library, encoder: Encoder) -> np.ndarray:
    """Cosine of each stored embedding with PyTorch's embedding of the same file."""
    rows = library.db.conn.execute(
        "SELECT m.path, e.vector FROM media m JOIN embeddings e ON e.media_id = m.id").fetchall()
    assert rows
    cosines = []
    for path, blob in rows:
        with Image.open(path) as image:
            pixels = encoder.preprocess(image)[None]
        with torch.inference_mode():
            expected = encoder.model.encode_images(pixels)[0].numpy()  # the model itself: PyTorch
        cosines.append(float(np.frombuffer(blob, np.float32) @ expected))
    return np.array(cosines)


def test_indexer_uses_onnxruntime_with_pytorch_embeddings(library, photos, tiny_encoder, monkeypatch):
    monkeypatch.setenv(RUNTIME_ENV, "auto")
    library.add_folder(photos)
    phases: list[str] = []
    report = run_indexer(library, tiny_encoder, progress=lambda p: phases.append(p.phase))
    assert report.added == 8 and report.failed == 0
    assert tiny_encoder.prepare_images() == "onnxruntime"  # installed by the run itself
    # the graph's one-time build (a silent pause otherwise) is a phase of its own, before indexing
    assert phases.count("prepare") == 1 and phases.index("prepare") < phases.index("index")
    assert _stored_vs_pytorch(library, tiny_encoder).min() >= 0.999


def test_indexer_falls_back_to_pytorch_without_onnxruntime(library, photos, tiny_encoder, monkeypatch):
    monkeypatch.setenv(RUNTIME_ENV, "auto")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    library.add_folder(photos)
    report = run_indexer(library, tiny_encoder)
    assert report.added == 8 and report.failed == 0
    assert tiny_encoder.prepare_images() == "torch"
    assert _stored_vs_pytorch(library, tiny_encoder).min() >= 0.9999
