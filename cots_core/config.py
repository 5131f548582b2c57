"""Model configuration: nested dataclasses, named presets, JSON round trip.

Defaults follow MoCo/ALBEF/BEiT practice where the paper is silent:
- temperature 0.07 (MoCo v1, ALBEF's initial value), EMA momentum 0.995 (ALBEF),
  queue 65,536 at paper scale (ALBEF);
- BERT masking: 15% of word pieces, 80% [MASK] / 10% random / 10% kept (Devlin et al.);
- BEiT block-wise image masking of ~40% of the token grid, blocks of at least 16 tokens
  (scaled down for small grids), aspect ratio in [0.3, 1/0.3];
- dVAE: vocabulary 8,192 as in BEiT/DALL-E, Gumbel-softmax temperature annealed from 1.0 to 1/16;
- AMF: threshold mu - k*sigma with k = 2, active once the similarity queue holds `amf_min_queue`
  entries (before that every pair is kept: too few similarities to estimate a distribution).

Departures from the paper: queued pairs with the same caption as a batch pair, or of the same item, are its
positives, not negatives, in pre-training and fine-tuning (`loss.caption_positives`, on; off: plain InfoNCE); CMVM is
off unless the dVAE was trained (`loss.use_cmvm` defaults to False, `tokenizer.trained` records it).
"""
from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cots_core.errors import ModelLoadError
from cots_core.folder_safety import require_regular_file


@dataclass
class VisionConfig:
    """Image tower: any timm model by name, or a transformers vision tower of the CLIP family."""

    # "timm": `model_name` names a timm model; "transformers": `hf_config` holds a CLIP/SigLIP vision
    # tower's architecture inline (cots_core.hf_checkpoints), as a checkpoint rebuilds it offline
    backend: str = "timm"
    model_name: str = "vit_base_patch16_384"
    hf_config: dict[str, Any] = field(default_factory=dict)
    # None: random init; "timm": timm's own pretrained weights (hub or cache); a path: a local weights file.
    pretrained: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    interpolation: str = "bicubic"
    # "shortest_edge": resize the short side, then centre-crop (CLIP, timm); "squash": resize to a square
    # without cropping (SigLIP)
    resize: str = "shortest_edge"
    # "pil": PIL resamples (timm models were trained so); "tensor": torchvision on uint8 tensors, as
    # transformers' image processors do (what CLIP-family checkpoints are checked against)
    resize_backend: str = "pil"
    # "linear": Linear(width, embed_dim); "conse": classifier -> softmax -> class-text embeddings (cots-lite).
    projection: str = "linear"
    num_classes: int = 1000  # only for the "conse" projection
    conse_temperature: float = 1.0
    # heads.ConSEProjection: output factor of the zero-initialised residual path; 0 keeps it off (measured
    # on the tuxpaint benchmark it did not pay: bench/RESULTS.md)
    conse_residual_scale: float = 0.0
    # entries of heads.CaptionMemory (a fine-tune's captioned photos); 0: none. Set by the trainer.
    caption_memory: int = 0
    channels_last: bool = False
    # Keep BatchNorm statistics fixed while training: small fine-tuning batches would overwrite the
    # pretrained running mean/var (measured on cots-lite: bench/RESULTS.md). Affine weights still train.
    freeze_batchnorm: bool = False


@dataclass
class TextConfig:
    """Text tower: a transformers BERT-family encoder."""

    # A local folder or hub name with pretrained weights and tokenizer, or None to build from `hf_config`.
    model_name_or_path: str | None = None
    hf_config: dict[str, Any] = field(default_factory=dict)
    # A vocab file (absolute, or relative to the shipped resources/) for a BERT WordPiece tokenizer.
    vocab_file: str | None = None
    # "cls", "mean", or "pooler": the tower's own pooled output (CLIP: the end-of-text token after the
    # final norm; SigLIP: the last position through its head)
    pooling: str = "cls"
    max_length: int = 40
    # "longest": pad a batch to its longest text; "max_length": always to max_length (SigLIP was trained so
    # and pools its last position, so the padding is part of the embedding)
    padding: str = "longest"
    projection: str = "linear"  # "linear", or "identity_init" (a square Linear starting as identity)


# Where the contrastive temperature may go, learned or imported (ALBEF clamps its learned temp so): below it
# the softmaxes saturate, above it nothing is contrasted.
TEMPERATURE_RANGE = (0.001, 0.5)


@dataclass
class QueueConfig:
    size: int = 65536
    momentum: float = 0.995
    temperature: float = 0.07
    # learn tau (MCL and KL) from this starting value, clamped to 0.001-0.5 (ALBEF's learnable temp)
    learn_temperature: bool = False


@dataclass
class LossConfig:
    use_mcl: bool = True
    use_mvlm: bool = True  # token level: CMLM and CMVM
    # CMLM needs a [MASK] token and a bidirectional text tower: off for CLIP-family towers (cots_core.hf_checkpoints)
    use_cmlm: bool = True
    # CMVM predicts the dVAE's token ids: meaningless without a trained tokenizer, so a run without one
    # saves False here (the checkpoint's config says which losses were trained)
    use_cmvm: bool = False  # on only with a trained dVAE (tokenizer.trained): the trainer's --tokenizer
    use_kl: bool = True
    use_amf: bool = True
    w_token: float = 1.0
    w_kl: float = 1.0  # the paper's; a fine-tune uses 0.1 (trainer.config.FINETUNE_DEFAULTS: 1.0 cost recall there)
    amf_k: float = 2.0
    amf_min_queue: int = 1024
    mlm_probability: float = 0.15
    mvm_ratio: float = 0.4
    mvm_min_block: int = 16
    # A departure from the paper's plain InfoNCE, in pre-training and fine-tuning alike: a queued pair whose
    # caption equals a batch pair's (up to case and spacing), or of its item (item_keys), is a positive, not a negative
    # (losses.mcl_loss ``queue_positive``). False: plain InfoNCE against the whole queue.
    caption_positives: bool = True


@dataclass
class TokenizerConfig:
    """The dVAE image tokenizer; its token grid equals the image tower's (set at build time)."""

    vocab_size: int = 8192
    hidden_dim: int = 128
    codebook_dim: int = 256
    kl_weight: float = 0.0
    tau_start: float = 1.0
    tau_end: float = 1.0 / 16
    # The dVAE was trained (`cots train tokenizer`, loaded with the trainer's --tokenizer); False for a random
    # one and for checkpoints saved before this field existed. CMVM is only trained when True.
    trained: bool = False


@dataclass
class ModelConfig:
    name: str = "custom"
    image_size: int = 384
    embed_dim: int = 256
    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ModelConfig:
        """A named configuration; `overrides` replace top-level fields (nested ones as dicts)."""
        if name not in PRESETS:
            raise ModelLoadError(f"unknown model preset {name!r}; known presets: {', '.join(sorted(PRESETS))}")
        config = copy.deepcopy(PRESETS[name])
        return config.replace(**overrides) if overrides else config

    def replace(self, **overrides: Any) -> ModelConfig:
        data = self.to_dict()
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key].update(value)
            else:
                data[key] = value
        return ModelConfig.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        nested = {"vision": VisionConfig, "text": TextConfig, "queue": QueueConfig,
                  "loss": LossConfig, "tokenizer": TokenizerConfig}
        kwargs: dict[str, Any] = {}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ModelLoadError(f"unknown model config fields: {', '.join(sorted(unknown))}")
        for key, value in data.items():
            if key in nested:
                sub = nested[key]
                sub_known = {f.name for f in dataclasses.fields(sub)}
                bad = set(value) - sub_known
                if bad:
                    raise ModelLoadError(f"unknown {key} config fields: {', '.join(sorted(bad))}")
                value = dict(value)
                for tuple_field in ("mean", "std"):
                    if tuple_field in value:
                        value[tuple_field] = tuple(value[tuple_field])
                kwargs[key] = sub(**value)
            else:
                kwargs[key] = value
        return cls(**kwargs)

    def save_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load_json(cls, path: str | Path) -> ModelConfig:
        path = Path(path)
        require_regular_file(path, "model config")
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as error:
            raise ModelLoadError(f"model config not found: {path}") from error
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ModelLoadError(f"model config {path} is not valid JSON ({error})") from error
        if not isinstance(data, dict):
            raise ModelLoadError(f"model config {path} is not a JSON object")
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError, AttributeError) as error:
            raise ModelLoadError(f"model config {path} does not describe a cots model ({error})") from error


def _tiny() -> ModelConfig:
    """For tests: a 2-layer ViT (64 px, patch 8 -> 8x8 grid, width 64) and a 2-layer BERT of width 64."""
    return ModelConfig(
        name="tiny",
        image_size=64,
        embed_dim=64,
        vision=VisionConfig(
            model_name="vit_tiny_patch16_224",
            model_kwargs=dict(img_size=64, patch_size=8, embed_dim=64, depth=2, num_heads=2, mlp_ratio=2.0),
        ),
        text=TextConfig(
            vocab_file="vocab/tiny_vocab.txt",
            hf_config=dict(model_type="bert", hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=128, max_position_embeddings=64),
            max_length=32,
            # a random BERT's [CLS] output is nearly constant across texts; the token mean is not
            pooling="mean",
        ),
        queue=QueueConfig(size=256, momentum=0.995, temperature=0.07),
        loss=LossConfig(amf_min_queue=64, mvm_min_block=4),
        tokenizer=TokenizerConfig(vocab_size=256, hidden_dim=32, codebook_dim=32),
    )


def _vit_b16_bert_base() -> ModelConfig:
    """The paper's scale: ViT-B/16 at 384 px (24x24 token grid) and BERT-base, 768-d joint space."""
    return ModelConfig(
        name="vit-b16-bert-base",
        image_size=384,
        embed_dim=768,
        vision=VisionConfig(model_name="vit_base_patch16_384", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
        text=TextConfig(model_name_or_path="bert-base-uncased", pooling="cls", max_length=40),
        queue=QueueConfig(size=65536, momentum=0.995, temperature=0.07),
        loss=LossConfig(amf_min_queue=4096, mvm_min_block=16),
        tokenizer=TokenizerConfig(vocab_size=8192, hidden_dim=128, codebook_dim=256),
    )


def _cots_lite() -> ModelConfig:
    """The embedded default: EfficientNet-Lite0 (ImageNet) + MiniLM-L6, bridged by ConSE (cots_core.lite)."""
    return ModelConfig(
        name="cots-lite",
        image_size=224,
        embed_dim=384,
        vision=VisionConfig(model_name="tf_efficientnet_lite0", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                            projection="conse", num_classes=1000, channels_last=True,
                            freeze_batchnorm=True),
        text=TextConfig(pooling="mean", max_length=64, projection="identity_init"),
        queue=QueueConfig(size=4096, momentum=0.995, temperature=0.05),
        loss=LossConfig(amf_min_queue=512, mvm_min_block=4),
        tokenizer=TokenizerConfig(vocab_size=1024, hidden_dim=64, codebook_dim=64),
    )


PRESETS: dict[str, ModelConfig] = {
    "tiny": _tiny(),
    "vit-b16-bert-base": _vit_b16_bert_base(),
    "cots-lite": _cots_lite(),
}
