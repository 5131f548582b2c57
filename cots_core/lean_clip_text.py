"""The lean text path for CLIP towers: a text query without transformers, timm or the image tower.

``cots_core.lean_bert_text`` answers BERT-family text queries with a small pure-torch encoder; this is the same
for CLIP's text tower (OpenAI CLIP and OpenCLIP checkpoints in Hugging Face's format, and COTS checkpoints
built on them): a pre-norm causal transformer, pooled at the end-of-text token after the final norm, then
the projection. Submodule names mirror transformers' ``CLIPTextModel``, so its weights load unchanged from
``model.safetensors``; the tokenizer is the folder's ``tokenizer.json`` read by ``tokenizers``. Importing
transformers alone costs ~2.5 s of a cold ``cots search`` on 2 cores; this path does not.

Anything it does not reproduce exactly (another tokenizer class, an activation it does not know, SigLIP's
SentencePiece tokenizer) takes ``hf_checkpoints.load_text_query_model`` instead: ``load`` returns None.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cots_core.config import ModelConfig
from cots_core.model_folders import CONFIG_FILE, checkpoint_name, read_small_json, weight_files
from cots_core.text_query import EmptyDense, TextQueryModel, empty_embedding, fast_tokenize

# transformers' CLIPTextConfig defaults, for fields a checkpoint's config.json leaves out
CLIP_TEXT_DEFAULTS = {"vocab_size": 49408, "hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
                      "num_attention_heads": 8, "max_position_embeddings": 77, "hidden_act": "quick_gelu",
                      "layer_norm_eps": 1e-5, "eos_token_id": 49407}
_ACTIVATIONS = {"quick_gelu": lambda x: x * torch.sigmoid(1.702 * x), "gelu": F.gelu,
                "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
                "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh")}
_TOKENIZER_CLASSES = ("CLIPTokenizer", "CLIPTokenizerFast")


class _Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj = EmptyDense(width, width), EmptyDense(width, width), EmptyDense(width, width)
        self.out_proj = EmptyDense(width, width)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, width // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x)),
                                             attn_mask=allowed)
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, width))


class _MLP(nn.Module):
    def __init__(self, width: int, intermediate: int, activation: str):
        super().__init__()
        self.fc1, self.fc2 = EmptyDense(width, intermediate), EmptyDense(intermediate, width)
        self.activation = _ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.fc1(x)))


class _Layer(nn.Module):
    def __init__(self, width: int, heads: int, intermediate: int, activation: str, eps: float):
        super().__init__()
        self.self_attn = _Attention(width, heads)
        self.layer_norm1 = nn.LayerNorm(width, eps=eps)
        self.mlp = _MLP(width, intermediate, activation)
        self.layer_norm2 = nn.LayerNorm(width, eps=eps)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x), allowed)
        return x + self.mlp(self.layer_norm2(x))


class _Embeddings(nn.Module):
    def __init__(self, vocab: int, width: int, positions: int):
        super().__init__()
        self.token_embedding = empty_embedding(vocab, width)
        self.position_embedding = empty_embedding(positions, width)


class _Encoder(nn.Module):
    def __init__(self, layers: list[_Layer]):
        super().__init__()
        self.layers = nn.ModuleList(layers)


class ClipTextTower(nn.Module):
    """CLIP's text transformer + its projection, for inference: L2-normalised embeddings [B, D]."""

    def __init__(self, hf: dict, embed_dim: int):
        super().__init__()
        c = {**CLIP_TEXT_DEFAULTS, **hf}
        width = c["hidden_size"]
        self.eos_token_id = int(c["eos_token_id"])
        self.embeddings = _Embeddings(c["vocab_size"], width, c["max_position_embeddings"])
        self.encoder = _Encoder([_Layer(width, c["num_attention_heads"], c["intermediate_size"], c["hidden_act"],
                                        c["layer_norm_eps"]) for _ in range(c["num_hidden_layers"])])
        self.final_layer_norm = nn.LayerNorm(width, eps=c["layer_norm_eps"])
        self.projection = EmptyDense(width, embed_dim)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        length = input_ids.shape[1]
        emb = self.embeddings
        x = emb.token_embedding(input_ids) + emb.position_embedding.weight[:length][None]
        causal = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
        allowed = (causal[None] & attention_mask.bool()[:, None, :])[:, None]  # [B, 1, L, L]
        for layer in self.encoder.layers:
            x = layer(x, allowed)
        x = self.final_layer_norm(x)
        if self.eos_token_id == 2:  # checkpoints converted before transformers' fix: the highest id is the eot
            positions = input_ids.argmax(dim=-1)
        else:
            positions = (input_ids == self.eos_token_id).int().argmax(dim=-1)
        pooled = x[torch.arange(x.shape[0], device=x.device), positions]
        return F.normalize(self.projection(pooled).float(), dim=-1)


def supports(hf: dict, tokenizer_config: dict) -> bool:
    c = {**CLIP_TEXT_DEFAULTS, **hf}
    return (hf.get("model_type") in (None, "clip_text_model") and c["hidden_act"] in _ACTIVATIONS
            and tokenizer_config.get("tokenizer_class") in _TOKENIZER_CLASSES)


def _json_or_empty(path: Path) -> dict:
    return read_small_json(path) or {}


def load(directory: Path, model_id: str) -> TextQueryModel | None:
    """The lean CLIP text model of a Hugging Face CLIP folder or a COTS checkpoint of CLIP towers; None
    where it does not apply (the caller takes a heavier path)."""
    from safetensors import safe_open
    from tokenizers import Tokenizer

    config_json = _json_or_empty(directory / CONFIG_FILE)
    if config_json.get("model_type") == "clip":  # a Hugging Face folder: read as hf_checkpoints.import_config does
        hf, tokenizer_dir = dict(config_json.get("text_config") or {}), directory
        embed_dim = int(config_json.get("projection_dim", 512))
        keys = {"text_model.": "", "text_projection.": "projection."}
        vision = config_json.get("vision_config") or {}
        # what a text query needs to know (the full model, loaded for an image, reads the rest)
        cots_config = ModelConfig(name=checkpoint_name(directory), image_size=int(vision.get("image_size", 224)),
                                  embed_dim=embed_dim)
    elif (config_json.get("text") or {}).get("pooling") == "pooler":  # a COTS checkpoint of CLIP-family towers
        cots_config = ModelConfig.from_dict(config_json)
        hf, tokenizer_dir, embed_dim = dict(cots_config.text.hf_config), directory / "tokenizer", cots_config.embed_dim
        keys = {"text_encoder.model.": "", "text_projection.": "projection."}
    else:
        return None
    tokenizer_config = _json_or_empty(tokenizer_dir / "tokenizer_config.json")
    if not supports(hf, tokenizer_config) or not (tokenizer_dir / "tokenizer.json").is_file():
        return None
    tower = ClipTextTower(hf, embed_dim)
    state = {}
    for path in weight_files(directory):  # the shards' names checked as the full load checks them
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open has keys(), not iteration
                prefix = next((p for p in keys if key.startswith(p)), None)
                if prefix is not None and not key.endswith("position_ids"):
                    state[keys[prefix] + key[len(prefix):]] = handle.get_tensor(key).float()
    state.setdefault("projection.bias", torch.zeros(embed_dim))  # CLIP's projection has none
    tower.load_state_dict(state, strict=True, assign=True)  # any other layout: not this path
    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    max_length = min(int(tokenizer_config.get("model_max_length", 77)),
                     int({**CLIP_TEXT_DEFAULTS, **hf}["max_position_embeddings"]))
    if config_json.get("model_type") != "clip":
        max_length = cots_config.text.max_length
    pad_id = tokenizer.token_to_id(str(tokenizer_config.get("pad_token") or "<|endoftext|>"))
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding(pad_id=pad_id if pad_id is not None else 0)
    return TextQueryModel(cots_config, model_id, tower, fast_tokenize(tokenizer), tokenizer)
