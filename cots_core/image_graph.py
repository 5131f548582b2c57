"""The image path without torch, for a query image that is not in the library (issue 33): the model's
preprocessing in PIL and numpy, and its ONNX image graph (``image_runtime`` exports it) run by ONNX Runtime.

Only where both were checked against PyTorch when the graph was written or last loaded with torch
(``image_runtime._record_light_check`` keeps the verdict in the graph's manifest): the graph's cosine on the probe batch, and this preprocessing's pixels
against the model's own transform on the sample library's photos. Only the "pil" resize backend (cots-lite and
COTS towers) is reproduced; CLIP-family towers resample uint8 tensors as transformers does, which PIL does not,
so their query images go through PyTorch.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from PIL import Image

from cots_core.folder_safety import read_regular_file
from cots_core.images import to_rgb
from cots_core.onnx_cache import MAX_GRAPH_BYTES, model_folder, read_manifest, session

GRAPH_FILE, MANIFEST_FILE = "image.onnx", "manifest.json"  # image_runtime's files
MAX_PIXEL_ERROR = 1e-5  # numpy preprocessing vs torchvision's, per value, on the sample library's photos
_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
             "nearest": Image.Resampling.NEAREST}
# The evaluation transform keeps only the centre square; cropping a very long image to this ratio first
# leaves that square as it was and bounds the resize (a 50000x1 image would become 11.2M x 224 pixels).
MAX_RESIZED_ASPECT = 16


def preprocess_spec(vision, image_size: int) -> dict | None:
    """What ``preprocess`` needs of a model's vision config, or None where it cannot reproduce the transform."""
    if vision.resize_backend != "pil" or vision.resize not in ("shortest_edge", "squash") \
            or vision.interpolation not in _RESAMPLE:
        return None
    return {"image_size": int(image_size), "resize": vision.resize, "interpolation": vision.interpolation,
            "mean": [float(v) for v in vision.mean], "std": [float(v) for v in vision.std]}


def crop_elongated(image: Image.Image, max_aspect: int = MAX_RESIZED_ASPECT) -> Image.Image:
    """The centre of ``image`` with its long side at most ``max_aspect`` times its short side."""
    width, height = image.size
    short = max(1, min(width, height))
    if max(width, height) <= max_aspect * short:
        return image
    keep = max_aspect * short
    if width > height:
        left = (width - keep) // 2
        return image.crop((left, 0, left + keep, height))
    top = (height - keep) // 2
    return image.crop((0, top, width, top + keep))


def preprocess(image: Image.Image, spec: dict) -> np.ndarray:
    """[3, S, S] float32, as the model's evaluation transform gives it (torchvision on a PIL image)."""
    size, resample = int(spec["image_size"]), _RESAMPLE[spec["interpolation"]]
    image = to_rgb(crop_elongated(image))
    width, height = image.size
    if spec["resize"] == "squash":
        image = image.resize((size, size), resample)
    else:  # the short side to ``size``, the long one truncated; then a centre crop rounded as torchvision does
        if width <= height:
            new = (size, int(size * height / width))
        else:
            new = (int(size * width / height), size)
        image = image.resize(new, resample)
        top, left = int(round((new[1] - size) / 2.0)), int(round((new[0] - size) / 2.0))
        image = image.crop((left, top, left + size, top + size))
    pixels = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
    mean = np.asarray(spec["mean"], np.float32)[:, None, None]
    std = np.asarray(spec["std"], np.float32)[:, None, None]
    return (pixels - mean) / std


class OnnxImageModel:
    """A model's image path through ONNX Runtime: ``encode_pil(images)`` as ``Encoder.encode_pil``."""

    def __init__(self, model_id: str, graph_session, spec: dict):
        self.model_id, self.session, self.spec = model_id, graph_session, spec
        self.input_name = graph_session.get_inputs()[0].name

    def encode_pil(self, images: list[Image.Image]) -> np.ndarray:
        pixels = np.stack([preprocess(image, self.spec) for image in images])
        out = np.asarray(self.session.run(None, {self.input_name: pixels})[0], dtype=np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def needs_light_check(model_id: str, root: Path | None = None) -> bool:
    """Whether ``model_id`` has an exported image graph whose torch-free check is not recorded yet."""
    manifest = read_manifest(model_folder(model_id, root), MANIFEST_FILE) or {}
    light = manifest.get("light") if isinstance(manifest.get("light"), dict) else {}
    return bool(manifest.get("sha256")) and light.get("sha256") != manifest.get("sha256")


def load_image_graph(model_id: str, root: Path | None = None) -> OnnxImageModel | None:
    """The checked image graph of ``model_id`` with its checked preprocessing, or None."""
    folder = model_folder(model_id, root)
    manifest = read_manifest(folder, MANIFEST_FILE)
    light = (manifest or {}).get("light") if isinstance((manifest or {}).get("light"), dict) else None
    if not manifest or manifest.get("model_id") != model_id or not light or not light.get("accepted") \
            or light.get("sha256") != manifest.get("sha256") or not isinstance(light.get("preprocess"), dict):
        return None
    try:
        graph = read_regular_file(folder / GRAPH_FILE, MAX_GRAPH_BYTES)
        if hashlib.sha256(graph).hexdigest() != manifest.get("sha256"):
            return None
        return OnnxImageModel(model_id, session(graph, os.cpu_count() or 1), light["preprocess"])
    except Exception:  # noqa: BLE001 - unreadable, damaged or no onnxruntime: PyTorch answers instead
        return None
