"""Fixtures for the trainer tests: small media files made on the spot, and a synthetic collection."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_image(path: Path, colour=(200, 30, 30), size=(24, 16), mode="RGB", fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour if mode == "RGB" else None).save(path, format=fmt)
    return path


def write_video(path: Path, frames: int = 10, size: int = 32, fourcc: str | None = None) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    codec = fourcc or ("MJPG" if path.suffix == ".avi" else "mp4v")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), 5, (size, size))
    for i in range(frames):
        writer.write(np.full((size, size, 3), (i * 20) % 256, np.uint8))
    writer.release()
    return path


def write_truncated_jpeg(path: Path) -> Path:
    write_image(path, size=(64, 64), fmt="JPEG")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.fixture(scope="session")
def synth_clean(tmp_path_factory) -> Path:
    from trainer.synth import generate_synthetic

    out = tmp_path_factory.mktemp("synth_clean")
    generate_synthetic(240, out, noise=0.0, seed=1, size=64)
    return out


@pytest.fixture(scope="session")
def tiny_config_dict():
    """Overrides that make the tiny preset deterministic (no dropout) for equality tests."""
    return {"text": {"hf_config": {"model_type": "bert", "hidden_size": 64, "num_hidden_layers": 2,
                                   "num_attention_heads": 2, "intermediate_size": 128,
                                   "max_position_embeddings": 64, "hidden_dropout_prob": 0.0,
                                   "attention_probs_dropout_prob": 0.0}}}
