"""The model as a search sees it, without torch when it can be (issue 33).

A text query needs the text tower alone. Where the library's model has a checked ONNX text graph
(``cots_core.text_graph``: written by ``cots index``, checked against PyTorch), ``GraphQueryEncoder`` answers
text from it with ONNX Runtime and numpy, and loads the full ``Encoder`` (torch, the image tower) only when
something needs it: a query image outside the library, or indexing. Elsewhere ``load_query_encoder`` gives
today's PyTorch path, and ``text_query_path`` says why for ``cots status``.
"""
from __future__ import annotations

import threading

import numpy as np

from app.library.errors import LibraryError
from cots_core.image_graph import load_image_graph
from cots_core.text_graph import RUNTIME_ENV, load_text_graph, runtime_wanted, text_graph_state


class GraphQueryEncoder:
    """Text through the model's ONNX text graph; anything else through the full ``Encoder`` of ``source``,
    loaded on first use (thread-safe) and checked to be the same model."""

    def __init__(self, text_model, source: str, device: str | None = None):
        self.text_model, self.source, self._device = text_model, source, device
        self._full = None
        self._image_model = None  # the image graph, looked for on first use (False: none)
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self.text_model.model_id

    @property
    def embed_dim(self) -> int:
        return self.text_model.embed_dim

    @property
    def image_size(self) -> int:
        return self.text_model.image_size

    def encode_pil(self, images) -> np.ndarray:
        """A query image from outside the library: through the model's checked image graph when it has one
        (``cots_core.image_graph``: no torch), else the full model."""
        with self._lock:
            if self._image_model is None:
                self._image_model = load_image_graph(self.model_id) or False
        if self._image_model:
            return self._image_model.encode_pil(list(images))
        return self.full.encode_pil(images)

    def encode_texts(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.embed_dim), np.float32)
        return np.concatenate([self.text_model.encode_texts(list(texts[start:start + batch_size]))
                               for start in range(0, len(texts), batch_size)])

    @property
    def full(self):
        """The full ``Encoder`` (torch), loaded on first use."""
        with self._lock:
            if self._full is None:
                from app.library.encoder import Encoder

                encoder = Encoder.load(self.source, device=self._device, text_first=True)
                if encoder.model_id != self.model_id:
                    raise LibraryError(f"the model {self.source} is now {encoder.model_id}, not the "
                                       f"{self.model_id} this library was indexed with: index it again")
                self._full = encoder
            return self._full

    def __getattr__(self, name: str):  # preprocess, encode_images, encode_pil, device, prepare_images, ...
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.full, name)


def load_query_encoder(source: str, model_id: str | None = None, device: str | None = None):
    """An encoder for searching with ``source``: ``GraphQueryEncoder`` when ``model_id`` (the model the library
    was indexed with, which ``source`` names) has a checked text graph, else ``Encoder.load(text_first=True)``."""
    if model_id is not None and runtime_wanted():
        text_model = load_text_graph(model_id)
        if text_model is not None:
            return GraphQueryEncoder(text_model, source, device)
    from app.library.encoder import Encoder

    return Encoder.load(source, device=device, text_first=True)


def text_query_path(model_id: str | None) -> dict:
    """How text queries of ``model_id`` are answered: ``{"runtime": "onnxruntime"|"torch", "why": ...}``, and
    the check's verdict where there is a graph."""
    if model_id is None:
        return {"runtime": None, "why": "no model yet"}
    if not runtime_wanted():
        return {"runtime": "torch", "why": f"{RUNTIME_ENV}=torch"}
    state = text_graph_state(model_id, load=False)  # the files and the verdict; no session for a status line
    if not state.usable:
        return {"runtime": "torch", "why": state.reason}
    return {"runtime": "onnxruntime", "verdict": state.manifest.get("verdict")}
