"""A training run's folder as a model source, read only (the trainer writes it: ``trainer.run_folders``).

    RUN/step-000200/   a checkpoint (a COTS folder: config.json, model.safetensors, tokenizer/)
    RUN/LATEST         the name of the newest checkpoint folder
    RUN/best/          the model with the best validation score so far

``--model RUN`` and ``--from RUN`` mean the run's best validated model, else its latest checkpoint, in the
application and the trainer alike (``cots_core.loading`` asks ``run_model_dir``).
"""
from __future__ import annotations

from pathlib import Path

from cots_core.model_folders import CONFIG_FILE

LATEST = "LATEST"
BEST = "best"
CHECKPOINT_PREFIX = "step-"
# a pointer names one folder of the run: never a path (a LATEST that leads elsewhere is not followed)
_MAX_POINTER_BYTES = 256


def latest_checkpoint(run: str | Path) -> Path | None:
    """The folder RUN/LATEST names, when it is one of the run's own folders; else None."""
    pointer = Path(run) / LATEST
    try:
        if not pointer.is_file() or pointer.stat().st_size > _MAX_POINTER_BYTES:
            return None
        name = pointer.read_text(encoding="utf-8").strip()
    except (OSError, ValueError):
        return None
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        return None
    folder = Path(run) / name
    return folder if folder.is_dir() else None


def best_model(run: str | Path) -> Path | None:
    """RUN/best when it holds a model, else None."""
    folder = Path(run) / BEST
    return folder if (folder / CONFIG_FILE).is_file() else None


def run_model_dir(path: str | Path) -> Path | None:
    """The model a run folder stands for: its best validated model, else its latest checkpoint. None when
    ``path`` is not a run folder (a model folder, which has its own config.json; anything else)."""
    run = Path(path).expanduser()
    if not run.is_dir() or (run / CONFIG_FILE).is_file():
        return None
    return best_model(run) or latest_checkpoint(run)
