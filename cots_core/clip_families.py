"""The CLIP-family checkpoints cots loads, and how each family maps onto COTS, as data (one row per family).

A Hugging Face ``CLIPModel`` or ``SiglipModel`` folder is two separate towers and their projections into one
space: exactly COTS's streams (``cots_core.hf_checkpoints`` imports them). What differs between families:

| family | image path | text path | tokenisation |
|---|---|---|---|
| CLIP (OpenAI, OpenCLIP/LAION/DataComp in HF format) | ViT, [CLS] after post-norm, bias-free projection | causal, end-of-text token after final norm, bias-free projection | BPE, 77 tokens, batch padding |
| SigLIP, SigLIP 2 (fixed resolution) | ViT, attention-pooling head, no projection | bidirectional, last position through its head, no projection | SentencePiece/Gemma, padded to 64 |

No torch here: the folder checks (``model_folders``), the towers (``encoders``) and the import all read it.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ClipFamily:
    """One family: transformers' names for it, and the settings that differ between families."""

    name: str  # "clip", "siglip": the checkpoint's model_type
    architecture: str  # the whole model's class in transformers
    vision_type: str  # model_type of the vision tower, and its class
    vision_class: str
    text_type: str
    text_class: str
    # the joint space: a bias-free Linear per tower of width config.json's projection_dim (this default when the
    # config leaves it out); None: no projection, the towers' own (shared) width
    projection_dim_default: int | None
    text_width_default: int  # the text tower's hidden_size when its config leaves it out (transformers' default)
    # the checkpoint's projection weights -> COTS's (empty: none to load, COTS's projection starts as the identity)
    projection_keys: dict[str, str] = field(default_factory=dict)
    projection: str = "linear"  # COTS's projection kind (config.VisionConfig/TextConfig.projection)
    resize: str = "shortest_edge"  # the preprocessor's resize (transforms): keep the aspect, or squash
    center_crop: bool = True  # when the preprocessor config does not say do_center_crop
    padding: str = "longest"  # text padding: to the batch's longest, or always to max_length


FAMILIES: dict[str, ClipFamily] = {
    "clip": ClipFamily(
        name="clip", architecture="CLIPModel",
        vision_type="clip_vision_model", vision_class="CLIPVisionModel",
        text_type="clip_text_model", text_class="CLIPTextModel",
        projection_dim_default=512, text_width_default=512,
        projection_keys={"visual_projection.": "image_projection.", "text_projection.": "text_projection."},
    ),
    "siglip": ClipFamily(  # SigLIP 2 fixed-resolution checkpoints say "siglip" too
        name="siglip", architecture="SiglipModel",
        vision_type="siglip_vision_model", vision_class="SiglipVisionModel",
        text_type="siglip_text_model", text_class="SiglipTextModel",
        projection_dim_default=None, text_width_default=768, projection="identity_init", resize="squash", center_crop=False,
        padding="max_length",
    ),
}
# the towers' model_type -> transformers class (AutoModel does not map these tower types)
TOWER_CLASSES = {**{f.vision_type: f.vision_class for f in FAMILIES.values()},
                 **{f.text_type: f.text_class for f in FAMILIES.values()}}
VISION_TYPES = frozenset(f.vision_type for f in FAMILIES.values())


def embedding_width(config: dict) -> int | None:
    """The joint space's width from a CLIP-family checkpoint's config.json alone (transformers' defaults for the
    fields it leaves out); None for another model_type. Not checked: the full load checks it against the weights."""
    family = FAMILIES.get(config.get("model_type"))
    if family is None:
        return None
    if family.projection_dim_default is not None:
        return config.get("projection_dim", family.projection_dim_default)
    text = config.get("text_config") or {}
    return text.get("projection_size") or text.get("hidden_size", family.text_width_default)


def family_of_vision_type(vision_type: str) -> ClipFamily | None:
    """The family whose vision tower has this model_type, else None."""
    return next((f for f in FAMILIES.values() if f.vision_type == vision_type), None)
