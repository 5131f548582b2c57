"""The trainer's --from and --model take a Hugging Face hub id: the downloaded folder, fetched once."""
from __future__ import annotations

import pytest
from hf_tiny import make_tiny_clip
from hub_server import HubServer

from cots_core import hub
from trainer.cli import main, resolve_model_arg


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COTS_DATA_DIR", str(tmp_path / "data"))


def test_a_hub_id_is_downloaded_once_then_its_folder_is_used(tmp_path, monkeypatch, capsys):
    repo = make_tiny_clip(tmp_path / "repo")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with HubServer({"org/tiny-clip": repo}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        folder = resolve_model_arg("org/tiny-clip")
        assert "downloading org/tiny-clip" in capsys.readouterr().err
        fetched = len(server.requests)
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        assert resolve_model_arg("org/tiny-clip") == folder  # offline: the folder, no request
        assert len(server.requests) == fetched
    assert folder == str(hub.downloaded_path("org/tiny-clip"))
    assert resolve_model_arg("cots-lite") == "cots-lite" and resolve_model_arg(str(repo)) == str(repo)


def test_eval_with_a_hub_id_on_an_offline_machine_is_one_line(tmp_path, capsys):
    assert main(["eval", "--model", "org/not-here", "--data", str(tmp_path)]) == 2  # HF_HUB_OFFLINE=1 (conftest)
    err = capsys.readouterr().err
    assert err.startswith("cots: error: org/not-here is not a folder here nor a downloaded model") and "offline" in err
    assert len(err.strip().splitlines()) == 1
