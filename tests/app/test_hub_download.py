"""Downloading CLIP/SigLIP models by hub id, against a stand-in hub on 127.0.0.1 (tests/hub_server.py):
what is fetched, what is refused, interruptions, and offline machines."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hf_tiny import make_tiny_clip
from hub_server import HubServer

from app.cli import main
from cots_core import hub

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {"config.json", "model.safetensors", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json"}


@pytest.fixture(scope="module")
def clip_repo(tmp_path_factory) -> Path:
    """A tiny CLIP repo as the hub serves it, with the files a download must leave behind: a pickle,
    framework duplicates, an open_clip copy of the weights, code and a model card."""
    folder = make_tiny_clip(tmp_path_factory.mktemp("repo") / "tiny-clip")
    (folder / "special_tokens_map.json").unlink(missing_ok=True)
    (folder / "vocab.json").unlink(missing_ok=True)
    (folder / "merges.txt").unlink(missing_ok=True)
    for name, data in {"pytorch_model.bin": b"pickle", "tf_model.h5": b"h5", "flax_model.msgpack": b"msgpack",
                       "modeling_tiny.py": b"import os", "README.md": b"# tiny"}.items():
        (folder / name).write_bytes(data)
    shutil.copy(folder / "model.safetensors", folder / "open_clip_model.safetensors")
    return folder


@pytest.fixture
def online(monkeypatch, tmp_path):
    """This test may reach 127.0.0.1 (tests/conftest.py sets HF_HUB_OFFLINE for all others)."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # huggingface_hub writes nothing in ~ either
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")


def _cli(args: list[str], env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real `cots` command in a fresh interpreter (huggingface_hub reads its environment at import)."""
    full = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    for name, value in env.items():
        if value is None:
            full.pop(name, None)
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=full, capture_output=True, text=True,
                          timeout=timeout)


def _env(tmp_path: Path, endpoint: str, offline: bool = False) -> dict:
    return {"COTS_DATA_DIR": str(tmp_path / "data"), "HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf-home"),
            "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1" if offline else None,
            "TRANSFORMERS_OFFLINE": None}


def _served(repo: Path, names) -> dict:
    return {name: (repo / name).read_bytes() for name in names}


def test_cots_models_download_fetches_only_weights_configs_and_tokenizer(tmp_path, clip_repo):
    with HubServer({"org/tiny-clip": clip_repo}) as server:
        done = _cli(["models", "download", "org/tiny-clip"], _env(tmp_path, server.url))
    assert done.returncode == 0, done.stderr
    assert "org/tiny-clip is ready" in done.stdout and "downloading org/tiny-clip" in done.stderr
    folder = tmp_path / "data" / "models" / "hub" / "org--tiny-clip"
    assert {p.name for p in folder.iterdir()} == ALLOWED | {hub.DOWNLOAD_RECORD}
    assert {name: (folder / name).read_bytes() for name in ALLOWED} == _served(clip_repo, ALLOWED)
    assert sorted(set(server.fetched())) == sorted(ALLOWED)  # no .bin, .h5, .msgpack, .py, no open_clip copy
    assert server.requests[0][1] == "/api/models/org/tiny-clip/revision/main"  # the file list comes first
    assert not any(p.name.startswith(hub.STAGING_PREFIX) for p in folder.parent.iterdir())
    assert json.loads((folder / hub.DOWNLOAD_RECORD).read_text())["commit"] == server.commits["org/tiny-clip"]


def test_a_cut_connection_is_resumed_with_a_range_request(tmp_path, clip_repo, online, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 16 * 1024)  # so that part of the file is kept
    seen_while_cut = []
    with HubServer({"org/tiny-clip": clip_repo}, cut_once="model.safetensors") as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        server.on_cut = lambda: seen_while_cut.append(sorted(p.name for p in hub.hub_models_dir().iterdir()))
        folder = hub.download("org/tiny-clip")
    assert (folder / "model.safetensors").read_bytes() == (clip_repo / "model.safetensors").read_bytes()
    ranges = [r for method, path, r in server.requests if method == "GET" and path.endswith("/model.safetensors")]
    assert ranges[0] is None and ranges[1] and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"
    assert seen_while_cut and "org--tiny-clip" not in seen_while_cut[0]  # incomplete: not registered
    assert hub.downloaded_path("org/tiny-clip") == folder


def test_a_killed_download_leaves_nothing_registered_and_the_next_one_completes(tmp_path, clip_repo):
    hub_dir = tmp_path / "data" / "models" / "hub"
    with HubServer({"org/tiny-clip": clip_repo}, stall="model.safetensors") as server:
        env = {**os.environ, **{k: v for k, v in _env(tmp_path, server.url).items() if v is not None},
               "PYTHONPATH": str(ROOT)}
        env.pop("HF_HUB_OFFLINE", None)
        env.pop("TRANSFORMERS_OFFLINE", None)
        process = subprocess.Popen([sys.executable, "-m", "app.cli", "models", "download", "org/tiny-clip"],
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while "model.safetensors" not in server.fetched() and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.5)
            assert "model.safetensors" in server.fetched()
        finally:
            process.kill()
            process.wait()
        assert not (hub_dir / "org--tiny-clip").exists()
        assert (hub_dir / f"{hub.STAGING_PREFIX}org--tiny-clip" / "config.json").is_file()  # kept for the next run
        server.stall = None
        first_run = len(server.requests)
        done = _cli(["models", "download", "org/tiny-clip"], _env(tmp_path, server.url))
    assert done.returncode == 0, done.stderr
    assert (hub_dir / "org--tiny-clip" / "model.safetensors").read_bytes() == (clip_repo / "model.safetensors").read_bytes()
    again = [p.rsplit("/", 1)[-1] for m, p, _ in server.requests[first_run:] if m == "GET" and "/resolve/" in p]
    assert "config.json" not in again and "model.safetensors" in again  # finished files are not fetched twice
    assert not (hub_dir / f"{hub.STAGING_PREFIX}org--tiny-clip").exists()


def _one_line_error(capsys) -> str:
    """The error, said in one line (a "downloading ..." line may come before it), never a traceback."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("cots: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def _nothing_kept(repo_id: str) -> bool:
    names = [p.name for p in hub.hub_models_dir().iterdir()] if hub.hub_models_dir().is_dir() else []
    return hub.downloaded_path(repo_id) is None and not any(hub.folder_name(repo_id) in name for name in names
                                                            if not name.endswith(".lock"))


def test_a_pickle_only_repo_is_refused_before_anything_is_fetched(tmp_path, online, monkeypatch, capsys):
    repo = tmp_path / "pickles"
    repo.mkdir()
    (repo / "config.json").write_text(json.dumps({"model_type": "clip"}))
    for name in ("pytorch_model.bin", "tokenizer.json", "preprocessor_config.json"):
        (repo / name).write_bytes(b"x")
    with HubServer({"org/pickles": repo}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        assert main(["models", "download", "org/pickles"]) == 2
    assert "pickle" in _one_line_error(capsys)
    assert server.fetched() == []
    assert _nothing_kept("org/pickles")


@pytest.mark.parametrize("change, words", [({"auto_map": {"AutoModel": "modeling_tiny.Tiny"}}, "auto_map"),
                                           ({"model_type": "bert"}, "'bert'")])
def test_a_repo_that_needs_code_or_is_not_clip_is_refused_after_its_config(tmp_path, clip_repo, online,
                                                                            monkeypatch, capsys, change, words):
    repo = tmp_path / "repo"
    shutil.copytree(clip_repo, repo)
    config = json.loads((repo / "config.json").read_text())
    (repo / "config.json").write_text(json.dumps({**config, **change}))
    with HubServer({"org/odd": repo}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        assert main(["models", "download", "org/odd"]) == 2
    assert words in _one_line_error(capsys)
    assert server.fetched() == ["config.json"]  # no weights, no tokenizer
    assert _nothing_kept("org/odd")


@pytest.mark.slow  # two CLI subprocesses (~5 s)
def test_offline_is_one_clear_line_and_no_request(tmp_path, clip_repo):
    with HubServer({"org/tiny-clip": clip_repo}) as server:
        done = _cli(["models", "download", "org/tiny-clip"], _env(tmp_path, server.url, offline=True))
        indexing = _cli(["index", str(tmp_path), "--model", "org/tiny-clip", "--db", str(tmp_path / "l.db")],
                        _env(tmp_path, server.url, offline=True))
    for run in (done, indexing):
        assert run.returncode != 0
        assert run.stderr.startswith("cots: error:") and len(run.stderr.strip().splitlines()) == 1, run.stderr
        assert "offline" in run.stderr and "hf download org/tiny-clip --local-dir" in run.stderr
    assert server.requests == []
    assert not (tmp_path / "l.db").exists()  # nothing was started


def test_an_unreachable_hub_counts_as_offline(tmp_path, online, monkeypatch, capsys):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    assert main(["models", "download", "org/tiny-clip"]) == 2
    assert "cannot be reached" in _one_line_error(capsys)
    assert not (hub.hub_models_dir() / "org--tiny-clip").exists()


def test_an_unknown_repo_says_so(tmp_path, clip_repo, online, monkeypatch, capsys):
    with HubServer({"org/tiny-clip": clip_repo}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        assert main(["models", "download", "org/no-such-model"]) == 2
    assert "no model org/no-such-model" in _one_line_error(capsys)


def test_choose_files_keeps_safetensors_shards_and_skips_duplicates():
    files = ["config.json", "model.safetensors", "open_clip_model.safetensors", "pytorch_model.bin", "tf_model.h5",
             "onnx/model.onnx", "tokenizer.json", "vocab.json", "merges.txt", "modeling.py", "preprocessor_config.json"]
    assert sorted(hub.choose_files("o/n", files)) == sorted(["config.json", "model.safetensors", "tokenizer.json",
                                                             "vocab.json", "merges.txt", "preprocessor_config.json"])
    sharded = ["config.json", hub.SHARD_INDEX, "model-00001-of-00002.safetensors",
               "model-00002-of-00002.safetensors", "spiece.model", "pytorch_model-00001-of-00002.bin"]
    assert sorted(hub.choose_files("o/n", sharded)) == sorted(set(sharded) - {"pytorch_model-00001-of-00002.bin"})


def test_what_counts_as_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "best").mkdir(parents=True)
    assert hub.looks_like_hub_id("openai/clip-vit-base-patch32")
    assert hub.looks_like_hub_id("google/siglip2-base-patch16-224")
    for name in ("cots-lite", "runs/best", str(tmp_path), "../a/b", "a/b/c", "/a/b", "a/", "", None):
        assert not hub.looks_like_hub_id(name), name
