"""A hostile or broken hub (issue 30), against the stand-in on 127.0.0.1 (tests/hub_server.py): a hub that never
answers, a body that trickles or never ends, sizes beyond what loading accepts, names that lead elsewhere.
Each download ends within seconds, says one line, and leaves nothing that loads as a model."""
from __future__ import annotations

import shutil
import struct
import threading

import pytest
from hf_tiny import make_tiny_clip
from hub_server import HubServer

from app.cli import main
from cots_core import hub

REPO = "org/tiny-clip"


@pytest.fixture(scope="module")
def clip_repo(tmp_path_factory):
    return make_tiny_clip(tmp_path_factory.mktemp("repo") / "tiny-clip")


@pytest.fixture(autouse=True)
def online(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("COTS_HUB_TIMEOUT", "1")


def _download(server: HubServer, monkeypatch, within: float = 30) -> int:
    """`cots models download` on a worker; fails the test (instead of hanging it) when it outlasts ``within``
    (the server's exit then lets any hung request go)."""
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    result = []
    worker = threading.Thread(target=lambda: result.append(main(["models", "download", REPO])), daemon=True)
    worker.start()
    worker.join(within)
    assert not worker.is_alive(), f"the download still runs after {within} s"
    return result[0]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("cots: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def _nothing_loadable() -> bool:
    """No folder of the repo that loads, and nothing complete-looking left: only ``.incomplete`` partials."""
    if hub.downloaded_path(REPO) is not None or (hub.hub_models_dir() / hub.folder_name(REPO)).exists():
        return False
    staging = hub.hub_models_dir() / f"{hub.STAGING_PREFIX}{hub.folder_name(REPO)}"
    return not staging.exists() or not list(staging.glob("*.safetensors"))


def test_a_hub_that_never_answers_times_out(clip_repo, monkeypatch, capsys):
    """Before: model_info had no timeout, and `cots models download` waited for ever."""
    with HubServer({REPO: clip_repo}, hang_api=True) as server:
        assert _download(server, monkeypatch) == 2
    assert "stalled" in _one_line_error(capsys)
    assert _nothing_loadable()


def test_a_trickling_body_meets_the_deadline_and_the_next_run_resumes(clip_repo, monkeypatch, capsys):
    """Before: one byte every 0.05 s of a 338 KB file reset huggingface_hub's read timeout each time (hours)."""
    monkeypatch.setenv("COTS_DOWNLOAD_DEADLINE", "2")
    with HubServer({REPO: clip_repo}, trickle="model.safetensors", trickle_every=0.05) as server:
        assert _download(server, monkeypatch) == 2
        line = _one_line_error(capsys)
        assert "ran out of time" in line and "COTS_DOWNLOAD_DEADLINE" in line
        assert _nothing_loadable()
        partial = hub.hub_models_dir() / f"{hub.STAGING_PREFIX}{hub.folder_name(REPO)}" / hub.PARTIAL_DIR
        assert (partial / "model.safetensors.incomplete").stat().st_size > 0  # kept, never named as complete
        server.trickle = None
        monkeypatch.delenv("COTS_DOWNLOAD_DEADLINE")
        assert _download(server, monkeypatch) == 0
    ranges = [r for method, path, r in server.requests if method == "GET" and path.endswith("/model.safetensors")]
    assert ranges[-1] and ranges[-1].startswith("bytes=") and ranges[-1] != "bytes=0-"  # resumed
    folder = hub.downloaded_path(REPO)
    assert (folder / "model.safetensors").read_bytes() == (clip_repo / "model.safetensors").read_bytes()


@pytest.mark.parametrize("name", ["model.safetensors", "config.json"])
def test_a_body_longer_than_its_listing_is_cut_at_the_listed_size(clip_repo, monkeypatch, capsys, name):
    """Before: the listing said 338 KB, the server streamed 5 GB, and all of it was written before an error."""
    with HubServer({REPO: clip_repo}, flood=name) as server:
        assert _download(server, monkeypatch) == 2
        flooded = server.flooded
    assert f"more of {name} than the" in _one_line_error(capsys)
    assert flooded < (clip_repo / name).stat().st_size + (64 << 20)  # stopped at once, not at the end
    assert _nothing_loadable() and not (hub.hub_models_dir() / f"{hub.STAGING_PREFIX}{hub.folder_name(REPO)}").exists()


def test_a_body_whose_length_exceeds_its_listing_is_refused_before_it_is_read(clip_repo, monkeypatch, capsys):
    with HubServer({REPO: clip_repo}, listed={"model.safetensors": 1000}) as server:
        assert _download(server, monkeypatch) == 2
    assert "1,000 bytes it listed" in _one_line_error(capsys)
    assert _nothing_loadable()


@pytest.mark.parametrize("name, size, words", [("config.json", 200 << 20, "config.json is 200 MiB"),
                                                ("tokenizer.json", 100 << 20, "tokenizer.json is 100 MiB"),
                                                ("model.safetensors", 40 << 30, "40,960 MiB")])
def test_files_larger_than_loading_accepts_are_refused_from_the_listing(clip_repo, monkeypatch, capsys, name, size,
                                                                        words):
    """Before: a 200 MB config.json was fetched (2.19 GB peak) and reported ready; only loading refused it."""
    with HubServer({REPO: clip_repo}, listed={name: size}) as server:
        assert _download(server, monkeypatch) == 2
    assert words in _one_line_error(capsys)
    assert server.fetched() == []  # refused before anything was fetched
    assert _nothing_loadable()


def test_an_unlisted_size_is_capped_by_what_loading_accepts(monkeypatch):
    assert hub.file_limit("config.json") == hub.MAX_CONFIG_BYTES
    assert hub.file_limit("tokenizer_config.json") == hub.MAX_CONFIG_BYTES
    assert hub.file_limit("tokenizer.json") == hub.MAX_TOKENIZER_BYTES
    assert hub.file_limit("model.safetensors") == hub.MAX_DOWNLOAD_BYTES


def test_listed_names_that_lead_outside_the_folder_are_never_fetched(clip_repo, tmp_path, monkeypatch, capsys):
    odd = {"../../x.safetensors": 10, "/tmp/abs.safetensors": 10, "..\\evil.json": 5, "sub/../config.json": 5,
           "C:model.safetensors": 10, ".hidden.safetensors": 10}
    with HubServer({REPO: clip_repo}, listed=odd) as server:
        assert _download(server, monkeypatch) == 0
    assert all("/resolve/" not in path or path.rsplit("/", 1)[-1] in {p.name for p in clip_repo.iterdir()}
               for _, path, _ in server.requests)
    assert not [p for p in tmp_path.rglob("*") if p.name in {"x.safetensors", "abs.safetensors", "..\\evil.json"}]
    assert sorted(p.name for p in hub.downloaded_path(REPO).iterdir() if p.suffix == ".safetensors") == \
        ["model.safetensors"]


def test_a_repo_whose_only_weights_lead_outside_is_refused(clip_repo, tmp_path, monkeypatch, capsys):
    repo = tmp_path / "repo"
    shutil.copytree(clip_repo, repo)
    (repo / "model.safetensors").unlink()
    with HubServer({REPO: repo}, listed={"../model.safetensors": 10, "/model.safetensors": 10}) as server:
        assert _download(server, monkeypatch) == 2
    assert "has no model.safetensors" in _one_line_error(capsys)
    assert server.fetched() == []


def test_a_safetensors_header_length_of_2_to_the_63_is_one_line(clip_repo, tmp_path, capsys, monkeypatch):
    """The 8-byte header length of a safetensors file is read before anything is allocated: 2**63 is refused."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "model"
    shutil.copytree(clip_repo, folder)
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", 1 << 63) + b"{}")
    photos = tmp_path / "photos"
    photos.mkdir()
    db = tmp_path / "lib.db"
    assert main(["index", str(photos), "--db", str(db), "--model", str(folder), "--quiet"]) == 2
    assert "model.safetensors" in _one_line_error(capsys)
