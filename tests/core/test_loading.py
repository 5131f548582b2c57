"""cots_core.loading: what a model name means (built-in, downloaded hub id, training run, COTS folder, Hugging
Face folder), and that every kind loads through the one layer."""
from __future__ import annotations

import shutil

import pytest
import torch
from hf_tiny import make_tiny_clip

from cots_core import COTS, ModelConfig, ModelLoadError, hub, load_model, loading
from cots_core.run_folders import run_model_dir
from cots_core.text_query import TextFirstModel


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COTS_DATA_DIR", str(tmp_path / "data"))


def _tiny(directory, seed: int = 0):
    torch.manual_seed(seed)
    COTS(ModelConfig.preset("tiny"), pretrained_backbones=False).save_pretrained(directory)
    return directory


def test_a_built_in_name_is_its_stored_build_once_built(tmp_path):
    source = loading.resolve("cots-lite")
    assert (source.kind, source.directory, source.via) == (loading.BUILT_IN, None, "name")
    assert loading.load_text_query_model("cots-lite") is None  # nothing stored: only a build can answer


def test_folders_are_told_apart_by_their_config(tmp_path):
    cots = loading.resolve(_tiny(tmp_path / "tiny"))
    assert (cots.kind, cots.directory, cots.via) == (loading.COTS_FOLDER, tmp_path / "tiny", "folder")
    hf = loading.resolve(make_tiny_clip(tmp_path / "clip"))
    assert (hf.kind, hf.directory) == (loading.HF_FOLDER, tmp_path / "clip")


def test_a_downloaded_hub_id_is_its_folder_and_one_not_downloaded_says_how(tmp_path):
    folder = hub.hub_models_dir() / hub.folder_name("org/tiny-clip")
    make_tiny_clip(folder)
    source = loading.resolve("org/tiny-clip")
    assert (source.kind, source.directory, source.via) == (loading.HF_FOLDER, folder, "hub")
    assert load_model("org/tiny-clip").model_id == load_model(folder).model_id
    with pytest.raises(ModelLoadError, match="cots models download org/other"):
        loading.resolve("org/other")


def test_a_run_folder_means_its_best_model_else_its_latest_checkpoint(tmp_path):
    run = tmp_path / "run"
    _tiny(run / "step-000002", seed=1)
    (run / "LATEST").write_text("step-000002\n")
    source = loading.resolve(run)
    assert (source.kind, source.directory, source.via) == (loading.COTS_FOLDER, run / "step-000002", "run")
    _tiny(run / "best", seed=2)
    assert loading.resolve(run).directory == run / "best"
    model = load_model(run)
    assert model.model_id == load_model(run / "best").model_id
    query = loading.load_query_model(run)  # the id its load stored: text first, as for the folder itself
    assert isinstance(query, TextFirstModel) and query.model_id == model.model_id


@pytest.mark.parametrize("pointer", ["../elsewhere", "/etc", "", "step-000009"])
def test_a_latest_pointer_is_followed_only_to_a_folder_of_the_run(tmp_path, pointer):
    _tiny(tmp_path / "elsewhere")
    run = tmp_path / "run"
    run.mkdir()
    (run / "LATEST").write_text(pointer + "\n")
    assert run_model_dir(run) is None
    with pytest.raises(ModelLoadError):
        load_model(run)  # a folder with no model in it, not the one the pointer names


def test_a_model_folder_is_never_taken_for_a_run(tmp_path):
    folder = _tiny(tmp_path / "model")
    shutil.copytree(folder, folder / "best")
    assert run_model_dir(folder) is None and loading.resolve(folder).directory == folder


def test_nothing_there_is_one_line_naming_what_would_do(tmp_path):
    with pytest.raises(ModelLoadError, match="no model at .*cots-lite") as error:
        loading.resolve(tmp_path / "nowhere")
    assert "\n" not in str(error.value)


def test_cots_from_pretrained_reads_only_its_own_folders(tmp_path):
    with pytest.raises(ModelLoadError, match="cots_core.load_model"):
        COTS.from_pretrained(make_tiny_clip(tmp_path / "clip"))
