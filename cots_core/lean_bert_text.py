"""The lean text-query path for BERT text towers: the checkpoint's text tower without timm, torchvision or
transformers.

Building the full ``COTS`` imports timm (which pulls in torchvision and torch._dynamo) and transformers, and
builds the image tower: about 5 s of a cold ``cots search`` on 2 cores, against ~2 s for ``import torch``
(bench/RESULTS.md). Here the tokenizer is the ``tokenizers`` package reading the checkpoint's
``tokenizer/tokenizer.json``, and the tower is a small pure-torch BERT encoder that loads the BERT-family
weights straight from ``model.safetensors`` (data only: nothing from the folder is executed).

It applies only to a COTS checkpoint folder (or the cached cots-lite build) whose text tower is a plain BERT;
``load`` returns None elsewhere, and ``cots_core.loading`` takes another path.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cots_core.config import ModelConfig
from cots_core.config_limits import check_model_config
from cots_core.errors import ModelLoadError
from cots_core.folder_safety import check_model_folder
from cots_core.model_folders import CONFIG_FILE, WEIGHTS_FILE
from cots_core.text_query import EmptyDense, TextQueryModel, empty_embedding, fast_tokenize

log = logging.getLogger(__name__)

_ACTIVATIONS = {"gelu": "none", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh"}
_TEXT_PREFIX, _PROJECTION_PREFIX = "text_encoder.model.", "text_projection."


# -- the encoder: submodule names mirror transformers' BertModel, so its state dict loads unchanged ----
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


def load(directory: Path, model_id: str) -> TextQueryModel | None:
    """The lean text model of a COTS checkpoint folder whose id is ``model_id``, or None where it does not
    apply (see module doc). A folder the full load would refuse is refused here too (ModelLoadError)."""
    from safetensors import safe_open
    from tokenizers import Tokenizer

    tokenizer_file = directory / "tokenizer" / "tokenizer.json"
    if not tokenizer_file.is_file():
        return None
    check_model_folder(directory)  # the same rules as the full load: plain files, no code hooks
    try:
        config = ModelConfig.load_json(directory / CONFIG_FILE)
        if not supports(config):
            return None
        # sizes against the weights' shapes, before the tower is built (a huge num_hidden_layers: no memory bomb)
        check_model_config(config.to_dict(), directory, directory / WEIGHTS_FILE)
        tower = BertTextTower(config.text.hf_config, config.text.pooling, config.embed_dim)
        state = {}
        with safe_open(str(directory / WEIGHTS_FILE), framework="pt") as handle:
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
    return TextQueryModel(config, model_id, tower, fast_tokenize(tokenizer), tokenizer)
