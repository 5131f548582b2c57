"""What a model name means, and loading it: the one place that decides (as open_clip's ``create_model``).

A ``--model`` or ``--from`` value is, in this order:

- a built-in model's name ("cots-lite", ``BUILT_IN_MODELS``): built on first use and stored;
- a Hugging Face hub id ("openai/clip-vit-base-patch32") already downloaded (``cots_core.hub``; never the
  network here);
- a training run's folder: its best validated model, else its latest checkpoint (``cots_core.run_folders``);
- a model folder: one written by ``COTS.save_pretrained``, or a Hugging Face CLIP/SigLIP folder
  (``cots_core.hf_checkpoints``).

``resolve`` says which (it reads folder names and a config.json, never weights); ``load_model`` loads the full
model; ``load_text_query_model`` the text half alone, where a query-only path applies; ``load_query_model``
what a search wants. The towers, the model, lite, the Hugging Face import and the text-query paths sit below
this module and never import it.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cots_core import hf_checkpoints, hub, lean_bert_text, lean_clip_text, lite
from cots_core.errors import ModelLoadError
from cots_core.model_folders import hf_model_type, uses_clip_family_towers
from cots_core.model_ids import known_model_id, remember_model_id
from cots_core.run_folders import run_model_dir
from cots_core.text_query import TextFirstModel, TextQueryModel

if TYPE_CHECKING:
    import torch

    from cots_core.model import COTS

log = logging.getLogger(__name__)

# what a source is, as ModelSource.kind
BUILT_IN, COTS_FOLDER, HF_FOLDER = "built-in", "cots", "hugging-face"


@dataclass(frozen=True)
class ModelSource:
    """What a model name means. ``kind``: BUILT_IN, COTS_FOLDER or HF_FOLDER. ``directory``: the folder read (a
    built-in model's stored build; None while it is not built). ``via``: how the name led there ("name", "hub",
    "run", "folder")."""

    name: str
    kind: str
    directory: Path | None
    via: str


@dataclass(frozen=True)
class BuiltInModel:
    """A model that is built rather than downloaded: ``stored_build()`` is its stored folder when of the current
    recipe (reads files only), ``store_build()`` builds and stores it and returns the folder."""

    stored_build: Callable[[], Path | None]
    store_build: Callable[[], Path]


BUILT_IN_MODELS: dict[str, BuiltInModel] = {lite.NAME: BuiltInModel(lite.stored_build, lite.store_build)}


def resolve(name: str | Path) -> ModelSource:
    """What ``name`` means (see the module doc); ModelLoadError when nothing here answers to it."""
    text = str(name)
    if text in BUILT_IN_MODELS:
        return ModelSource(text, BUILT_IN, BUILT_IN_MODELS[text].stored_build(), "name")
    if hub.looks_like_hub_id(text):  # its downloaded folder, or ModelLoadError saying how to download it
        return _folder_source(text, Path(hub.local_model_source(text)), "hub")
    path = Path(text).expanduser()
    if not path.is_dir():
        raise ModelLoadError(f"no model at {path}: give a directory written by save_pretrained (config.json, "
                             "model.safetensors), a Hugging Face CLIP or SigLIP folder, a downloaded hub id ORG/NAME, "
                             f"a training run's folder, or one of: {', '.join(sorted(BUILT_IN_MODELS))}")
    run_model = run_model_dir(path)
    if run_model is not None:
        return _folder_source(text, run_model, "run")
    return _folder_source(text, path, "folder")


def _folder_source(name: str, directory: Path, via: str) -> ModelSource:
    # a Hugging Face checkpoint's config.json names its model_type; a COTS one has none
    return ModelSource(name, HF_FOLDER if hf_model_type(directory) is not None else COTS_FOLDER, directory, via)


# -- the full model ----------------------------------------------------------------------------------
def _load_cots_folder(directory: Path) -> COTS:
    from cots_core.model import COTS

    return COTS.from_pretrained(directory)


FOLDER_LOADERS: dict[str, Callable[[Path], COTS]] = {
    COTS_FOLDER: _load_cots_folder,
    HF_FOLDER: hf_checkpoints.load_hf_checkpoint,
}


def load_model(name: str | Path | ModelSource, device: str | torch.device | None = None) -> COTS:
    """The full COTS model ``name`` means (``resolve``), in eval mode, on ``device`` when given."""
    source = name if isinstance(name, ModelSource) else resolve(name)
    model = _load_built_in(source) if source.kind == BUILT_IN else _load_folder(source.kind, source.directory)
    model.eval()
    return model.to(device) if device is not None else model


def _load_folder(kind: str, directory: Path) -> COTS:
    model = FOLDER_LOADERS[kind](directory)
    # the weights were just read from these files: hash them once, later loads reuse the stored id
    stored = known_model_id(directory)
    if stored is not None:
        model.use_stored_model_id(stored)
    else:
        remember_model_id(directory, model.model_id)
    return model


def _load_built_in(source: ModelSource) -> COTS:
    if source.directory is not None:
        try:
            return _load_folder(COTS_FOLDER, source.directory)
        except ModelLoadError as error:  # a damaged build is only derived data: build it again
            log.info("the stored build of %s cannot be loaded (%s): building it again", source.name, error)
    return _load_folder(COTS_FOLDER, BUILT_IN_MODELS[source.name].store_build())


# -- text queries ------------------------------------------------------------------------------------
def load_text_query_model(name: str | Path | ModelSource) -> TextQueryModel | None:
    """The text half of a model alone (no image tower; no timm, no transformers where a pure-torch tower
    reproduces it), or None where only the full model can answer: a model not stored yet (a built-in one not
    built), or one whose id is not stored yet (its first full load stores it)."""
    source = name if isinstance(name, ModelSource) else resolve(name)
    if source.directory is None:
        return None
    model_id = known_model_id(source.directory)
    if model_id is None:
        return None
    if uses_clip_family_towers(source.directory):
        return _clip_family_text_model(source.directory, model_id)
    return lean_bert_text.load(source.directory, model_id)


def _clip_family_text_model(directory: Path, model_id: str) -> TextQueryModel | None:
    """Pure torch for CLIP (``lean_clip_text``), else through transformers; no image tower and no timm."""
    try:
        return lean_clip_text.load(directory, model_id) or hf_checkpoints.load_text_query_model(directory, model_id)
    except Exception as error:  # noqa: BLE001 - any surprise here only means: take the full path
        log.info("text-only path unavailable for %s (%s): loading the full model", directory, error)
        return None


def load_query_model(name: str | Path, device: str | torch.device | None = None) -> TextFirstModel | COTS:
    """A model for answering queries: ``TextFirstModel`` (text at once, the full model on first image use)
    where a text-only path applies, else the full model."""
    source = resolve(name)
    text_model = load_text_query_model(source)
    if text_model is None:
        return load_model(source, device=device)
    return TextFirstModel(text_model, name, load_full=lambda: load_model(source, device=device))
