"""A training run's folder, as the trainer writes and resumes it (the layout: ``cots_core.run_folders``).

    RUN/step-000200/  config.json, model.safetensors, tokenizer/, training_state.pt, train_config.yaml
    RUN/LATEST        name of the newest checkpoint folder
    RUN/best/         the model with the best validation rsum so far (+ best_metrics.json)
"""
from __future__ import annotations

from pathlib import Path

from cots_core.run_folders import BEST, CHECKPOINT_PREFIX, LATEST, latest_checkpoint, run_model_dir

TRAINING_STATE = "training_state.pt"
BEST_METRICS = "best_metrics.json"

__all__ = ["BEST", "BEST_METRICS", "CHECKPOINT_PREFIX", "LATEST", "TRAINING_STATE", "best_dir", "checkpoint_dir",
           "older_checkpoints", "point_latest", "resolve_checkpoint", "resolve_model_dir"]


def checkpoint_dir(run: str | Path, step: int) -> Path:
    return Path(run) / f"{CHECKPOINT_PREFIX}{step:06d}"


def best_dir(run: str | Path) -> Path:
    return Path(run) / BEST


def point_latest(run: str | Path, checkpoint: Path) -> None:
    """RUN/LATEST := ``checkpoint``'s name."""
    (Path(run) / LATEST).write_text(checkpoint.name + "\n")


def older_checkpoints(run: str | Path, current: Path) -> list[Path]:
    """The run's checkpoint folders other than ``current``, oldest first."""
    return sorted(p for p in Path(run).glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir() and p != current)


def resolve_checkpoint(path: str | Path) -> Path:
    """For ``--resume``: a checkpoint folder, or a run folder (its LATEST checkpoint)."""
    path = Path(path)
    if (path / TRAINING_STATE).is_file():
        return path
    candidate = latest_checkpoint(path)
    if candidate is not None and (candidate / TRAINING_STATE).is_file():
        return candidate
    raise FileNotFoundError(f"no checkpoint to resume at {path} (expected {TRAINING_STATE} or a {LATEST} file)")


def resolve_model_dir(path: str | Path) -> str:
    """For ``--model``/``--from`` where the trainer reads the folder itself (its train_config.yaml, its
    remembered items): a run folder means its best validated model, else its LATEST checkpoint; anything
    else passes through."""
    return str(run_model_dir(path) or path)
