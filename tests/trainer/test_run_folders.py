"""trainer.run_folders: the run folder's pointers as the trainer writes them, read back for --resume, --from and
--model (the reading half is cots_core.run_folders, shared with the application)."""
from __future__ import annotations

import pytest

from trainer.run_folders import (
    TRAINING_STATE,
    best_dir,
    checkpoint_dir,
    older_checkpoints,
    point_latest,
    resolve_checkpoint,
    resolve_model_dir,
)


def _checkpoint(run, step: int):
    folder = checkpoint_dir(run, step)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / TRAINING_STATE).write_bytes(b"")
    return folder


def test_latest_points_at_the_newest_checkpoint_and_resume_follows_it(tmp_path):
    first, second = _checkpoint(tmp_path, 2), _checkpoint(tmp_path, 10)
    point_latest(tmp_path, second)
    assert resolve_checkpoint(tmp_path) == second and resolve_checkpoint(first) == first
    assert older_checkpoints(tmp_path, second) == [first]
    assert resolve_model_dir(tmp_path) == str(second)  # no best/ yet: the latest checkpoint


def test_model_dir_prefers_the_best_validated_model_and_passes_names_through(tmp_path):
    point_latest(tmp_path, _checkpoint(tmp_path, 4))
    best = best_dir(tmp_path)
    best.mkdir()
    (best / "config.json").write_text("{}")
    assert resolve_model_dir(tmp_path) == str(best)
    assert resolve_model_dir("cots-lite") == "cots-lite"
    assert resolve_model_dir(best) == str(best)  # a model folder is itself


def test_resume_without_a_checkpoint_says_what_it_looked_for(tmp_path):
    (tmp_path / "LATEST").write_text("../outside\n")
    with pytest.raises(FileNotFoundError, match="LATEST"):
        resolve_checkpoint(tmp_path)
