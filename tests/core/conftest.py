"""Fixtures shared by the model-folder tests: a saved tiny model, and a copy of it to damage."""
import shutil

import pytest

from cots_core import COTS, ModelConfig


@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny")
    COTS(ModelConfig.preset("tiny"), pretrained_backbones=False).save_pretrained(directory)
    return directory


@pytest.fixture
def tiny_copy(saved_tiny, tmp_path):
    return shutil.copytree(saved_tiny, tmp_path / "model")
