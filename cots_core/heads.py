"""Projections into the joint space and the token-prediction heads."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cots_core.config import TextConfig, VisionConfig


class ConSEProjection(nn.Module):
    """Zero-shot bridge (Norouzi et al., ICLR 2014): image -> class posterior -> convex combination of the
    classes' text embeddings, plus a residual path from the pooled image feature. All three maps are
    ordinary trainable layers, so fine-tuning improves the bridge.

    out = class_embeddings( softmax(classifier(x) / temperature) ) + residual_scale * residual(x)

    The residual starts at zero (step 0 of a fine-tune equals zero-shot) and lets fine-tuning express what
    the 1,000 ImageNet classes cannot (a giraffe, a person's dog). A checkpoint saved before it existed
    loads with it at zero (``RESIDUAL_KEYS`` may be missing).
    """

    def __init__(self, width: int, num_classes: int, embed_dim: int, temperature: float = 1.0,
                 residual_scale: float = 1.0):
        super().__init__()
        self.classifier = nn.Linear(width, num_classes)
        self.class_embeddings = nn.Linear(num_classes, embed_dim, bias=False)
        self.log_temperature = nn.Parameter(torch.tensor(float(temperature)).log())
        # a constant factor on the residual's output: under Adam it sets how fast the residual can grow
        # relative to the bridge (the pooled feature is large next to the bridge's output)
        self.residual_scale = residual_scale
        self.residual = nn.Linear(width, embed_dim)
        nn.init.zeros_(self.residual.weight)
        nn.init.zeros_(self.residual.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        posterior = (self.classifier(x) / self.log_temperature.exp()).softmax(dim=-1)
        return self.class_embeddings(posterior) + self.residual_scale * self.residual(x)


# State of ConSEProjection that older checkpoints lack: left at its zero initialisation when missing.
RESIDUAL_KEYS = ("image_projection.residual.", "image_projection_m.residual.")


class CaptionMemory(nn.Module):
    """A fine-tune's captioned photos, kept to caption photos that look like them (kNN caption transfer,
    as Tip-Adapter's cache; bench/RESULTS.md, "caption memory").

    A photo's embedding moves towards the captions of the remembered photos whose pooled image features
    are close to its own: ``out = normalize(e + scale * sum_j w_j v_j)``, with ``w`` the softmax over the
    cosines to the remembered photos (features centred on their mean) and one "none of them" slot at
    ``null_similarity``, at ``temperature``. A photo unlike all of them keeps its embedding; a photo of a
    subject the person named ("Wilbur", "our house") inherits the name. Only the image side changes, so
    retrieval stays one dot product and the library's index works as before. Buffers, not parameters:
    the trainer builds one after training (``build``); empty, it is the identity and adds no state.
    """

    def __init__(self, width: int, embed_dim: int, size: int = 0):
        super().__init__()
        self.size = size
        if size:
            self.register_buffer("keys", torch.zeros(size, width))
            self.register_buffer("values", torch.zeros(size, embed_dim))
            self.register_buffer("center", torch.zeros(width))
            self.register_buffer("settings", torch.zeros(3))  # temperature, null similarity, scale

    @classmethod
    def build(cls, features: torch.Tensor, captions: torch.Tensor, temperature: float, null_similarity: float,
              scale: float) -> CaptionMemory:
        """A memory of ``features`` [N, width] (pooled image features) and their ``captions`` [N, D]
        (caption embeddings, one row per photo)."""
        memory = cls(features.shape[1], captions.shape[1], features.shape[0])
        features = features.detach().float().cpu()
        memory.center.copy_(features.mean(0))
        memory.keys.copy_(F.normalize(features - memory.center, dim=-1))
        memory.values.copy_(F.normalize(captions.detach().float().cpu(), dim=-1))
        memory.settings.copy_(torch.tensor([temperature, null_similarity, scale]))
        return memory

    def forward(self, feature: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        if not self.size:
            return embedding
        temperature, null_similarity, scale = self.settings
        similarity = F.normalize(feature.float() - self.center, dim=-1) @ self.keys.t()
        null = torch.full_like(similarity[:, :1], 1.0) * null_similarity
        weights = (torch.cat([similarity, null], dim=1) / temperature).softmax(dim=1)[:, :-1]
        return F.normalize(embedding + scale * weights @ self.values, dim=-1)


def image_embedding(projection: nn.Module, memory: CaptionMemory, feature: torch.Tensor) -> torch.Tensor:
    """The joint-space embedding of pooled image features: projection, normalisation, caption memory."""
    return memory(feature, F.normalize(projection(feature).float(), dim=-1))


def build_image_projection(config: VisionConfig, width: int, embed_dim: int) -> nn.Module:
    if config.projection == "conse":
        return ConSEProjection(width, config.num_classes, embed_dim, config.conse_temperature,
                               config.conse_residual_scale)
    return linear_projection(config.projection, width, embed_dim, "image")


def build_text_projection(config: TextConfig, width: int, embed_dim: int) -> nn.Module:
    return linear_projection(config.projection, width, embed_dim, "text")


def linear_projection(kind: str, width: int, embed_dim: int, tower: str) -> nn.Linear:
    """"linear": a fresh Linear; "identity_init": a square Linear starting as the identity (a tower that
    already embeds into the joint space: MiniLM in cots-lite, SigLIP's towers)."""
    projection = nn.Linear(width, embed_dim)
    if kind == "identity_init":
        if width != embed_dim:
            raise ValueError(f"identity_init projection needs {tower} width {width} == embed_dim {embed_dim}")
        with torch.no_grad():
            projection.weight.copy_(torch.eye(embed_dim))
            projection.bias.zero_()
    elif kind != "linear":
        raise ValueError(f"unknown {tower} projection {kind!r} (linear, identity_init"
                         f"{', conse' if tower == 'image' else ''})")
    return projection


class CrossGlobalMap(nn.Module):
    """Maps one stream's global feature to the other's token width (identity where they match)."""

    def __init__(self, in_width: int, out_width: int):
        super().__init__()
        self.map = nn.Identity() if in_width == out_width else nn.Linear(in_width, out_width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.map(x)


class TokenPredictionHead(nn.Module):
    """BERT's prediction head: dense -> GELU -> LayerNorm -> vocabulary logits.

    With `tied_embeddings` the output matrix is the word-embedding matrix (as in BERT's MLM head); it is
    held as a reference, not a submodule, so the matrix is stored once, with the text encoder.
    """

    def __init__(self, width: int, vocab_size: int, tied_embeddings: nn.Embedding | None = None):
        super().__init__()
        self.transform = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.LayerNorm(width))
        object.__setattr__(self, "tied_embeddings", tied_embeddings)
        if tied_embeddings is None:
            self.decoder = nn.Linear(width, vocab_size)
        else:
            self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.transform(x)
        if self.tied_embeddings is None:
            return self.decoder(x)
        return x @ self.tied_embeddings.weight.t() + self.bias
