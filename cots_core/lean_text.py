"""A lean path for text queries: the checkpoint's text tower without timm, torchvision or transformers.

A text query needs only the tokenizer, the text tower, pooling and the text projection. Building the
full ``COTS`` imports timm (which pulls in torchvision and torch._dynamo) and transformers, and builds the
image tower: about 5 s of a cold ``cots search`` on 2 cores, against ~2 s for ``import torch``
(bench/RESULTS.md). Here the tokenizer is the ``tokenizers`` package reading the checkpoint's
``tokenizer/tokenizer.json``, and the tower is a small pure-torch BERT encoder that loads the BERT-family
weights straight from ``model.safetensors`` (data only: nothing from the folder is executed).

It applies only to a checkpoint folder (or the cached cots-lite build) whose text tower is a plain BERT
and whose ``model_id`` is already stored (``cots_core.model_ids``); ``load_query_model`` otherwise returns
the full model. ``TextFirstModel`` answers text queries at once and loads the full model on the first
image call (``preprocess``, ``encode_images``, ...).
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cots_core.config import ModelConfig
from cots_core.config_limits import check_model_config
from cots_core.errors import ModelLoadError
from cots_core.folder_safety import check_model_folder
from cots_core.model_folders import uses_clip_family_towers
from cots_core.model_ids import known_model_id

log = logging.getLogger(__name__)

_ACTIVATIONS = {"gelu": "none", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh"}
_TEXT_PREFIX, _PROJECTION_PREFIX = "text_encoder.model.", "text_projection."


# -- the encoder: submodule names mirror transformers' BertModel, so its state dict loads unchanged ----
# Parameters are created empty (the checkpoint fills them): random init costs time, and building on the
# meta device imports torch._dynamo (1.7 s).
class EmptyDense(nn.Linear):
    def __init__(self, width_in: int, width_out: int):
        nn.Module.__init__(self)
        self.in_features, self.out_features = width_in, width_out
        self.weight = nn.Parameter(torch.empty(width_out, width_in))
        self.bias = nn.Parameter(torch.empty(width_out))


def empty_embedding(count: int, width: int) -> nn.Embedding:
    return nn.Embedding(count, width, _weight=torch.empty(count, width))


class _Linear(nn.Module):
    def __init__(self, width_in: int, width_out: int, eps: float | None = None):
        super().__init__()
        self.dense = EmptyDense(width_in, width_out)
        if eps is not None:
            self.LayerNorm = nn.LayerNorm(width_out, eps=eps)


class _SelfAttention(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.query, self.key, self.value = EmptyDense(width, width), EmptyDense(width, width), EmptyDense(width, width)


class _Attention(nn.Module):
    def __init__(self, width: int, eps: float):
        super().__init__()
        self.self = _SelfAttention(width)
        self.output = _Linear(width, width, eps)


class _Layer(nn.Module):
    def __init__(self, width: int, heads: int, intermediate: int, eps: float, approximate: str):
        super().__init__()
        self.heads, self.approximate = heads, approximate
        self.attention = _Attention(width, eps)
        self.intermediate = _Linear(width, intermediate)
        self.output = _Linear(intermediate, width, eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        attention = self.attention.self

        def split(layer: EmptyDense) -> torch.Tensor:  # [B, L, C] -> [B, heads, L, C / heads]
            return layer(x).view(batch, length, self.heads, -1).transpose(1, 2)

        mixed = F.scaled_dot_product_attention(split(attention.query), split(attention.key), split(attention.value),
                                               attn_mask=mask)
        mixed = mixed.transpose(1, 2).reshape(batch, length, width)
        x = self.attention.output.LayerNorm(x + self.attention.output.dense(mixed))
        hidden = F.gelu(self.intermediate.dense(x), approximate=self.approximate)
        return self.output.LayerNorm(x + self.output.dense(hidden))


class _Embeddings(nn.Module):
    def __init__(self, vocab: int, width: int, positions: int, token_types: int, eps: float):
        super().__init__()
        self.word_embeddings = empty_embedding(vocab, width)
        self.position_embeddings = empty_embedding(positions, width)
        self.token_type_embeddings = empty_embedding(token_types, width)
        self.LayerNorm = nn.LayerNorm(width, eps=eps)


class _Encoder(nn.Module):
    def __init__(self, layers: list[_Layer]):
        super().__init__()
        self.layer = nn.ModuleList(layers)


class BertTextTower(nn.Module):
    """BERT encoder (absolute positions, post-norm) + pooling + the text projection, for inference."""

    def __init__(self, hf_config: dict, pooling: str, embed_dim: int):
        super().__init__()
        width, eps = hf_config["hidden_size"], hf_config.get("layer_norm_eps", 1e-12)
        self.pooling = pooling
        self.embeddings = _Embeddings(hf_config["vocab_size"], width, hf_config.get("max_position_embeddings", 512),
                                      hf_config.get("type_vocab_size", 2), eps)
        approximate = _ACTIVATIONS[hf_config.get("hidden_act", "gelu")]
        self.encoder = _Encoder([_Layer(width, hf_config["num_attention_heads"], hf_config["intermediate_size"],
                                        eps, approximate) for _ in range(hf_config["num_hidden_layers"])])
        self.projection = EmptyDense(width, embed_dim)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings [B, D]."""
        emb = self.embeddings
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = emb.word_embeddings(input_ids) + emb.position_embeddings(positions)[None] \
            + emb.token_type_embeddings.weight[0]
        x = emb.LayerNorm(x)
        mask = attention_mask.bool()[:, None, None, :]  # keys that may be attended to
        for layer in self.encoder.layer:
            x = layer(x, mask)
        if self.pooling == "mean":
            weights = attention_mask.unsqueeze(-1).to(x.dtype)
            pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1e-6)
        else:
            pooled = x[:, 0]
        return F.normalize(self.projection(pooled).float(), dim=-1)


def supports(config: ModelConfig) -> bool:
    """Whether the lean tower reproduces this config's text tower (a plain BERT, no extras)."""
    hf = config.text.hf_config or {}
    return (hf.get("model_type") == "bert" and hf.get("position_embedding_type", "absolute") == "absolute"
            and hf.get("hidden_act", "gelu") in _ACTIVATIONS and not hf.get("is_decoder", False)
            and config.text.pooling in ("mean", "cls")
            and all(isinstance(hf.get(k), int) for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                                         "intermediate_size", "vocab_size")))


def tokenizable(text: str) -> str:
    """``text`` as valid Unicode for a tokenizer. A query typed in a terminal whose bytes are not UTF-8 reaches
    Python with lone surrogates (``caf\\udce9``), which the tokenizers raise TypeError on (issue 21): the
    undecodable bytes are read as Latin-1 (``café``), any other lone surrogate becomes U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    return "".join(chr(ord(char) - 0xDC00) if 0xDC80 <= ord(char) <= 0xDCFF
                   else "\ufffd" if 0xD800 <= ord(char) <= 0xDFFF else char for char in text)


# -- the text-query model --------------------------------------------------------------------------
class LeanTextModel:
    """The text half of the cots_core inference interface: ``config``, ``model_id``, ``tokenize``,
    ``encode_texts``. CPU, float32."""

    def __init__(self, config: ModelConfig, model_id: str, tower: BertTextTower, tokenizer):
        self.config, self.model_id, self.tower, self.tokenizer = config, model_id, tower.eval(), tokenizer

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        encodings = self.tokenizer.encode_batch([tokenizable(text) for text in texts])
        return {"input_ids": torch.tensor([e.ids for e in encodings], dtype=torch.long),
                "attention_mask": torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)}

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """L2-normalised text embeddings [B, D], as ``COTS.encode_texts``."""
        if not texts:
            return torch.zeros(0, self.config.embed_dim)
        tokens = self.tokenize(texts)
        with torch.inference_mode():
            return self.tower(tokens["input_ids"], tokens["attention_mask"])


def checkpoint_dir(name_or_path: str | Path) -> Path | None:
    """The folder a model name or path loads from, when it is a stored checkpoint (cots-lite: its cached
    build, if current)."""
    from cots_core import lite  # not cots_core.model: that one imports timm and transformers

    if str(name_or_path) == lite.NAME:
        directory = lite.cache_dir()
        stamp = directory / "BUILD_VERSION"
        current = stamp.is_file() and stamp.read_text().strip() == lite.BUILD_VERSION
        return directory if current else None
    directory = Path(name_or_path).expanduser()
    return directory if directory.is_dir() else None


def load_lean_text_model(name_or_path: str | Path) -> LeanTextModel | None:
    """The lean text model of a checkpoint, or None where only the full model can answer (see module doc)."""
    from safetensors import safe_open
    from tokenizers import Tokenizer

    directory = checkpoint_dir(name_or_path)
    if directory is None:
        return None
    model_id = known_model_id(directory)
    if model_id is not None and uses_clip_family_towers(directory):
        return _clip_family_text_model(directory, model_id)
    tokenizer_file = directory / "tokenizer" / "tokenizer.json"
    if model_id is None or not tokenizer_file.is_file():
        return None
    check_model_folder(directory)  # the same rules as the full load: plain files, no code hooks
    try:
        config = ModelConfig.load_json(directory / "config.json")
        if not supports(config):
            return None
        # sizes against the weights' shapes, before the tower is built (a huge num_hidden_layers: no memory bomb)
        check_model_config(config.to_dict(), directory, directory / "model.safetensors")
        tower = BertTextTower(config.text.hf_config, config.text.pooling, config.embed_dim)
        state = {}
        with safe_open(str(directory / "model.safetensors"), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open has keys(), not iteration
                if key.startswith(_TEXT_PREFIX):
                    state[key[len(_TEXT_PREFIX):]] = handle.get_tensor(key).float()
                elif key.startswith(_PROJECTION_PREFIX):
                    state["projection." + key[len(_PROJECTION_PREFIX):]] = handle.get_tensor(key).float()
        # strict: any weight the lean tower has no place for (or lacks) means another architecture
        tower.load_state_dict(state, strict=True, assign=True)
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
    except ModelLoadError:
        raise  # the folder is refused: the full path would say the same, later
    except Exception as error:  # noqa: BLE001 - any surprise here only means: take the full path
        log.info("lean text path unavailable for %s (%s): loading the full model", directory, error)
        return None
    pad_id = tokenizer.token_to_id("[PAD]")
    tokenizer.enable_truncation(config.text.max_length)
    tokenizer.enable_padding(pad_id=pad_id if pad_id is not None else 0, pad_token="[PAD]")
    return LeanTextModel(config, model_id, tower, tokenizer)


def _clip_family_text_model(directory: Path, model_id: str):
    """The text tower of a CLIP-family checkpoint: pure torch for CLIP (``lean_clip_text``), else through
    transformers (``hf_towers.TextQueryModel``); no image tower and no timm either way."""
    from cots_core import lean_clip_text
    from cots_core.hf_towers import load_text_query_model

    try:
        return lean_clip_text.load(directory, model_id) or load_text_query_model(directory, model_id)
    except Exception as error:  # noqa: BLE001 - any surprise here only means: take the full path
        log.info("text-only path unavailable for %s (%s): loading the full model", directory, error)
        return None


class TextFirstModel:
    """Text queries from the lean text model at once; everything else from the full model, loaded on
    first use (thread-safe). Its ``model_id`` is checked against the lean one."""

    def __init__(self, text_model: LeanTextModel, source: str | Path, device: str | torch.device | None = None):
        self.text_model, self.source, self.device = text_model, source, device
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
                from cots_core.model import load_model

                model = load_model(self.source, device=self.device)
                if model.model_id != self.model_id:
                    raise ModelLoadError(f"model {self.source} changed while loading ({model.model_id}, "
                                         f"expected {self.model_id}): load it again")
                self._full = model
            return self._full

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.full_model, name)


def load_query_model(name_or_path: str | Path, device: str | torch.device | None = None):
    """A model for answering queries: ``TextFirstModel`` where the lean text path applies, else the full
    ``COTS`` (``load_model``)."""
    text_model = load_lean_text_model(name_or_path)
    if text_model is not None:
        return TextFirstModel(text_model, name_or_path, device)
    from cots_core.model import load_model

    return load_model(name_or_path, device=device)
