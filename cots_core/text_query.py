"""Text queries without the full model: the one text-query class every text-only path returns, and the model
that answers text at once and loads the image tower on first use.

A text query needs only the tokenizer, the text tower, its pooling and the text projection. The paths that
build just that (``lean_bert_text``, ``lean_clip_text``: pure torch; ``hf_checkpoints.load_text_query_model``:
transformers) each give a tower that maps token ids to embeddings; ``TextQueryModel`` wraps any of them.
Which path applies to a model is decided by ``cots_core.loading``.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from cots_core.config import ModelConfig
from cots_core.errors import ModelLoadError
from cots_core.text_graph import tokenizable

Tokenize = Callable[[list[str]], dict[str, torch.Tensor]]


class TextQueryModel:
    """The text half of the cots_core inference interface: ``config``, ``model_id``, ``tokenize``,
    ``encode_texts``. ``tower(input_ids, attention_mask)`` gives L2-normalised embeddings. CPU, float32.
    ``tokenizer``: what ``tokenize`` reads (a ``tokenizers.Tokenizer`` set up for truncation and padding, or a
    transformers tokenizer), for the ONNX export (``cots_core.text_graph_export``)."""

    def __init__(self, config: ModelConfig, model_id: str, tower: nn.Module, tokenize: Tokenize, tokenizer=None):
        self.config, self.model_id, self.tower, self._tokenize = config, model_id, tower.eval(), tokenize
        self.tokenizer = tokenizer

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self._tokenize(texts)

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """L2-normalised text embeddings [B, D], as ``COTS.encode_texts``."""
        if not texts:
            return torch.zeros(0, self.config.embed_dim)
        tokens = self.tokenize(texts)
        with torch.inference_mode():
            return self.tower(tokens["input_ids"], tokens["attention_mask"])


def fast_tokenize(tokenizer) -> Tokenize:
    """``tokenize`` over a ``tokenizers.Tokenizer`` (truncation and padding set on it): no transformers."""

    def tokenize(texts: list[str]) -> dict[str, torch.Tensor]:
        encodings = tokenizer.encode_batch([tokenizable(text) for text in texts])
        return {"input_ids": torch.tensor([e.ids for e in encodings], dtype=torch.long),
                "attention_mask": torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)}

    return tokenize


# -- parameters created empty (the checkpoint fills them): random init costs time, and building on the
# meta device imports torch._dynamo (1.7 s). Shared by the lean towers.
class EmptyDense(nn.Linear):
    def __init__(self, width_in: int, width_out: int):
        nn.Module.__init__(self)
        self.in_features, self.out_features = width_in, width_out
        self.weight = nn.Parameter(torch.empty(width_out, width_in))
        self.bias = nn.Parameter(torch.empty(width_out))


def empty_embedding(count: int, width: int) -> nn.Embedding:
    return nn.Embedding(count, width, _weight=torch.empty(count, width))


class TextFirstModel:
    """Text queries from a ``TextQueryModel`` at once; everything else from the full model, loaded on first use
    by ``load_full`` (thread-safe). Its ``model_id`` is checked against the text model's."""

    def __init__(self, text_model: TextQueryModel, source: str | Path, load_full: Callable[[], nn.Module]):
        self.text_model, self.source, self._load_full = text_model, source, load_full
        self.config, self.model_id = text_model.config, text_model.model_id
        self._full = None
        self._lock = threading.Lock()

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self.text_model.tokenize(texts)

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        return self.text_model.encode_texts(texts)

    @property
    def full_model(self):
        """The full COTS model (loaded on first use)."""
        with self._lock:
            if self._full is None:
                model = self._load_full()
                if model.model_id != self.model_id:
                    raise ModelLoadError(f"model {self.source} changed while loading ({model.model_id}, "
                                         f"expected {self.model_id}): load it again")
                self._full = model
            return self._full

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.full_model, name)
