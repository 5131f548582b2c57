"""Training checkpoints: everything needed to continue exactly where a run stopped.

    RUN/step-000200/  config.json, model.safetensors, tokenizer/   (COTS.save_pretrained: weights,
                      momentum encoders, queues; loadable by ``cots eval --model``)
                      training_state.pt   optimizer, scheduler, grad scaler, step, each rank's RNG states
                      train_config.yaml

The run folder's layout and pointers (LATEST, best/) are ``trainer.run_folders``.

``training_state.pt`` holds only tensors and plain containers and is read with
``torch.load(weights_only=True)``, so it never unpickles code.
"""
from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cots_core.errors import ModelLoadError
from cots_core.heads import RESIDUAL_KEYS
from cots_core.model_folders import WEIGHTS_FILE
from cots_core.serialization import load_state_dict_file, load_tensor_file
from trainer.config import TrainConfig
from trainer.run_folders import TRAINING_STATE, checkpoint_dir, older_checkpoints, point_latest


def capture_rng() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos, "has_gauss": has_gauss,
                       "gauss": gauss}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(states: list[dict[str, Any]] | dict[str, Any], rank: int = 0) -> None:
    """Restore ``rank``'s streams from a checkpoint's per-rank list (``save_checkpoint``). A rank the
    checkpoint has none for (a resume on more processes; a checkpoint from before per-rank streams, which
    held rank 0's only) keeps the streams it was seeded with."""
    states = [states] if isinstance(states, dict) else states
    if rank < len(states):
        _restore_rng(states[rank])


def _restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: str | Path, model, optimizer, scheduler, scaler, step: int, cfg: TrainConfig,
                    extra: dict[str, Any] | None = None, rng: list[dict[str, Any]] | None = None) -> Path:
    """Write ``RUN/step-NNNNNN`` and point LATEST at it; older ones beyond ``keep_checkpoints`` go.
    ``rng``: every rank's ``capture_rng()``, in rank order (default: this process's only)."""
    directory = checkpoint_dir(run_dir, step)
    model.save_pretrained(directory)
    state = {"step": step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "scaler": scaler.state_dict() if scaler is not None else None,
             "rng": rng if rng is not None else [capture_rng()], "extra": extra or {}}
    temporary = directory / (TRAINING_STATE + ".tmp")
    torch.save(state, temporary)
    temporary.replace(directory / TRAINING_STATE)
    cfg.save(directory)
    point_latest(run_dir, directory)
    if cfg.keep_checkpoints > 0:
        older = older_checkpoints(run_dir, directory)
        for old in older[: max(0, len(older) - (cfg.keep_checkpoints - 1))]:
            shutil.rmtree(old, ignore_errors=True)
    return directory


def load_checkpoint(directory: Path, model, optimizer, scheduler, scaler) -> dict[str, Any]:
    """Restore everything in place; returns the saved state (``step``, ``extra``). Call RNG restore last."""
    state = load_tensor_file(directory / TRAINING_STATE, "training state")
    if not isinstance(state, dict) or not {"optimizer", "scheduler"} <= state.keys():
        raise ModelLoadError(f"the training state {directory / TRAINING_STATE} is not one cots wrote")
    saved_groups = len(state["optimizer"].get("param_groups", [])) if isinstance(state["optimizer"], dict) else 0
    groups = len(optimizer.param_groups)
    if saved_groups != groups:  # towers frozen then and trained now, or the reverse (optim.tower_lr_scale)
        raise ModelLoadError(f"the checkpoint {directory} trained {saved_groups} parameter groups, this run "
                             f"{groups}: resume with the run's own optim.tower_lr_scale, or start a new run "
                             "from it with --from")
    # a run saved before the ConSE residual and the queue's caption and item keys existed resumes with them
    # at zero / -1
    load_state_dict_file(model, directory / WEIGHTS_FILE, strict=True,
                         may_be_missing=RESIDUAL_KEYS + ("queue.keys", "queue.item_keys"))
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    return state
