"""Model folders are data: nothing in one runs code, prompts, blocks on a pipe, or reaches the network."""
from __future__ import annotations

import json
import os
import shutil
import socket
import threading

import pytest

from cots_core import ModelLoadError, load_model


@pytest.fixture(autouse=True)
def _no_prompt(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("loading a model must never prompt")

    monkeypatch.setattr("builtins.input", refuse)


def _load_with_timeout(path, seconds: float = 60.0):
    outcome: dict = {}

    def work():
        try:
            outcome["model"] = load_model(path)
        except BaseException as error:  # noqa: BLE001 - handed back to the test
            outcome["error"] = error

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "loading the model blocked"
    return outcome


def _write_code_hook(folder, config_name: str) -> str:
    marker = folder.parent / "code_ran"
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    config = folder / config_name
    data = json.loads(config.read_text())
    data["auto_map"] = {"AutoTokenizer": ["evil.Tokenizer", None], "AutoModel": "evil.Model"}
    config.write_text(json.dumps(data))
    return marker


@pytest.mark.parametrize("config_name", ["tokenizer/tokenizer_config.json", "config.json"])
def test_a_config_with_auto_map_is_refused_and_runs_nothing(tiny_copy, config_name):
    marker = _write_code_hook(tiny_copy / os.path.dirname(config_name) if "/" in config_name else tiny_copy,
                              os.path.basename(config_name))
    with pytest.raises(ModelLoadError, match="auto_map"):
        load_model(tiny_copy)
    assert not marker.exists()


def test_auto_map_inside_the_text_architecture_is_refused(tiny_copy):
    config = json.loads((tiny_copy / "config.json").read_text())
    config["text"]["hf_config"]["auto_map"] = {"AutoModel": "evil.Model"}
    (tiny_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="auto_map"):
        load_model(tiny_copy)


def test_transformers_is_always_told_not_to_trust_remote_code(tiny_copy, monkeypatch):
    import transformers

    seen = []
    real = transformers.AutoTokenizer.from_pretrained

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", spy)
    load_model(tiny_copy)
    assert seen and all(k.get("trust_remote_code") is False and k.get("local_files_only") for k in seen)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_in_the_model_folder_fails_at_once(tiny_copy):
    os.remove(tiny_copy / "config.json")
    os.mkfifo(tiny_copy / "config.json")
    outcome = _load_with_timeout(tiny_copy, 30)
    assert isinstance(outcome.get("error"), ModelLoadError) and "not a regular file" in str(outcome["error"])


def test_a_hub_name_without_local_files_fails_without_the_network(tiny_copy, monkeypatch):
    import huggingface_hub.constants

    # As on a machine that is not told to stay offline: only local_files_only keeps the hub away.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    lookups = []

    def no_network(*args, **kwargs):
        lookups.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    shutil.rmtree(tiny_copy / "tokenizer")
    config = json.loads((tiny_copy / "config.json").read_text())
    config["text"]["model_name_or_path"] = "someone/some-hub-model"
    (tiny_copy / "config.json").write_text(json.dumps(config))
    outcome = _load_with_timeout(tiny_copy, 30)
    assert isinstance(outcome.get("error"), ModelLoadError), outcome
    assert "someone/some-hub-model" in str(outcome["error"]) and not lookups
