"""Hugging Face CLIP and SigLIP models fetched once by their hub id ("openai/clip-vit-base-patch32").

Only :func:`download` (and :func:`resolve_model_source`, when the folder is missing) touches the
network; loading, indexing and search read the folder :func:`downloaded_path` names. A download goes to
a staging folder beside the others (``.partial-ORG--NAME``) and is moved into place only once complete and
validated, so a half-finished one is never taken for a model; the next download resumes it (files already
fetched are kept).

What is fetched is decided from the repo's file list and its config.json before any weights: safetensors
only (pickles can run code when loaded), the configs and the tokenizer files, never code.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from cots_core.errors import ModelLoadError
from cots_core.folder_safety import require_regular_file
from cots_core.model_folders import (
    CLIP_FAMILY_TYPES,
    SHARD_INDEX,
    TOKENIZER_MODEL_FILES,
    WEIGHTS_FILE,
    has_image_preprocessing,
)
from cots_core.paths import data_dir

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
CONFIG_FILES = ("config.json", "preprocessor_config.json", "processor_config.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                   "merges.txt", "spiece.model", "tokenizer.model", "added_tokens.json")
DOWNLOAD_RECORD = "cots_download.json"  # which repo and commit a folder came from
STAGING_PREFIX = ".partial-"


class RepoRefused(ModelLoadError):
    """The repo cannot be used safely or is not a CLIP/SigLIP model: nothing of it is kept."""


_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_TRUE = {"1", "ON", "YES", "TRUE"}


def looks_like_hub_id(name: str | os.PathLike | None) -> bool:
    """True for "org/name" that is not a path on this machine (a named model such as "cots-lite" has no
    slash; a folder that exists is a folder)."""
    if name is None:
        return False
    text = str(name)
    if not _HUB_ID.fullmatch(text) or ".." in text or text.endswith((".git", ".")):
        return False
    return not Path(text).expanduser().exists()


def hub_models_dir() -> Path:
    """Where downloaded models live: one folder per repo, ``ORG--NAME``."""
    return data_dir() / "models" / "hub"


def folder_name(repo_id: str) -> str:
    return repo_id.replace("/", "--")


def downloaded_path(repo_id: str) -> Path | None:
    """The folder of a completed download of ``repo_id``, or None (never touches the network)."""
    if not looks_like_hub_id(repo_id):
        return None
    folder = hub_models_dir() / folder_name(repo_id)
    return folder if (folder / "config.json").is_file() else None


def is_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) as the environment says now.

    huggingface_hub reads them once, at import, into ``huggingface_hub.constants.HF_HUB_OFFLINE``; the
    environment at the time of the call is what the person (or a test) meant.
    """
    return any((os.environ.get(name) or "").upper() in _TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def offline_message(repo_id: str, reason: str = "HF_HUB_OFFLINE is set") -> str:
    return (f"{repo_id} is not a folder here nor a downloaded model, and this machine is offline ({reason}), so it "
            f"cannot be fetched from the Hugging Face hub: on a connected machine run `hf download {repo_id} "
            "--local-dir DIR` (older versions: `huggingface-cli download`), copy DIR here and give --model DIR")


def local_model_source(name: str) -> str:
    """What to load for ``name`` without the network: the folder of a downloaded hub id, else ``name``."""
    if not looks_like_hub_id(name):
        return name
    folder = downloaded_path(name)
    if folder is None:
        raise ModelLoadError(f"{name} is not downloaded here ({hub_models_dir() / folder_name(name)}): run "
                             f"`cots models download {name}` (or give --model {name} to a command, which downloads it)")
    return str(folder)


def resolve_model_source(name: str, tqdm_class=None,
                         on_download: Callable[[str, Path], None] | None = None) -> str:
    """A loadable source for ``name``: a hub id becomes its downloaded folder, downloaded now if missing
    (``on_download(repo_id, folder)`` is called first, to say so); anything else is returned as given."""
    if not looks_like_hub_id(name):
        return name
    folder = downloaded_path(name)
    if folder is not None:
        return str(folder)
    if is_offline():  # said before any "downloading ..." announcement
        raise ModelLoadError(offline_message(name))
    if on_download is not None:
        on_download(name, hub_models_dir() / folder_name(name))
    return str(download(name, tqdm_class=tqdm_class))


# -- choosing and checking files --------------------------------------------------------------------


def choose_files(repo_id: str, files: list[str]) -> list[str]:
    """The repo files to fetch (top level only), or ModelLoadError when the repo cannot be used safely."""
    top = [f for f in files if "/" not in f and not any(c in f for c in "*?[]")]
    safetensors = [f for f in top if f.endswith(".safetensors")]
    if not safetensors:
        pickles = sorted(f for f in files if f.endswith(PICKLE_SUFFIXES))
        if pickles:
            raise RepoRefused(f"{repo_id} has only pickle weights ({pickles[0]}), which can run code when "
                                 "loaded: cots reads safetensors only; choose a repo with model.safetensors")
        raise RepoRefused(f"{repo_id} has no model.safetensors: it is not a CLIP or SigLIP model cots can use")
    if WEIGHTS_FILE in top:
        weights = [WEIGHTS_FILE]  # not the framework or open_clip duplicates beside it
    elif SHARD_INDEX in top:
        weights = [SHARD_INDEX] + [f for f in safetensors if f.startswith("model-")]
    else:
        weights = safetensors
    if "config.json" not in top:
        raise RepoRefused(f"{repo_id} has no config.json: it is not a Hugging Face transformers model")
    return weights + [f for f in top if f in CONFIG_FILES or f in TOKENIZER_FILES]


def check_config(path: Path, repo_id: str) -> dict:
    """config.json as a dict, or ModelLoadError when it asks for code or is not a CLIP/SigLIP model."""
    try:
        require_regular_file(path, "config.json")  # a FIFO would hang the read
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as error:
        raise RepoRefused(f"{repo_id}: its config.json cannot be read ({error})") from None
    if not isinstance(config, dict):
        raise RepoRefused(f"{repo_id}: its config.json is not a JSON object")
    if "auto_map" in config:
        raise RepoRefused(f"{repo_id} needs its own Python code (auto_map in config.json): cots runs no "
                             "downloaded code; choose a standard CLIP or SigLIP repo")
    model_type = config.get("model_type")
    if model_type not in CLIP_FAMILY_TYPES:
        raise RepoRefused(f"{repo_id} is a {model_type!r} model: cots can use CLIP and SigLIP models "
                             f"(model_type {' or '.join(CLIP_FAMILY_TYPES)})")
    return config


def validate_folder(folder: Path, repo_id: str) -> None:
    """A downloaded folder has what loading needs, before it is moved into place."""
    check_config(folder / "config.json", repo_id)
    if not any(folder.glob("*.safetensors")):
        raise RepoRefused(f"{repo_id}: the download has no safetensors weights")
    if not any((folder / name).is_file() for name in TOKENIZER_MODEL_FILES):
        raise RepoRefused(f"{repo_id} has no tokenizer files ({', '.join(TOKENIZER_MODEL_FILES)})")
    if not has_image_preprocessing(folder):
        raise RepoRefused(f"{repo_id} has neither preprocessor_config.json nor processor_config.json (how its "
                          "images are prepared)")


# -- the download -----------------------------------------------------------------------------------


def download(repo_id: str, revision: str | None = None, tqdm_class=None) -> Path:
    """Fetch ``repo_id`` into ``hub_models_dir()`` (or return the folder already there) and return it.

    ``tqdm_class`` shows byte progress (huggingface_hub's ``snapshot_download`` argument). Raises
    ModelLoadError with one line for an unusable repo, an unknown id, or no network.
    """
    if not looks_like_hub_id(repo_id):
        raise ModelLoadError(f"{repo_id!r} is not a hub id (ORG/NAME)")
    found = downloaded_path(repo_id)
    if found is not None and revision is None:
        return found
    if is_offline():
        raise ModelLoadError(offline_message(repo_id))
    from filelock import FileLock

    root = hub_models_dir()
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f".{folder_name(repo_id)}.lock")):  # one download of a repo at a time
        found = downloaded_path(repo_id)
        if found is not None and revision is None:
            return found  # another process finished it while this one waited
        return _download_locked(repo_id, revision, tqdm_class, root)


def _download_locked(repo_id: str, revision: str | None, tqdm_class, root: Path) -> Path:
    from huggingface_hub import constants

    # checked above from the environment as it is now (see is_offline); put back after, for other callers
    was_offline, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, False
    try:
        return _fetch(repo_id, revision, tqdm_class, root)
    finally:
        constants.HF_HUB_OFFLINE = was_offline


def _fetch(repo_id: str, revision: str | None, tqdm_class, root: Path) -> Path:
    endpoint = (os.environ.get("HF_ENDPOINT") or "").rstrip("/") or None  # read now, not at import
    staging = root / f"{STAGING_PREFIX}{folder_name(repo_id)}"
    staging.mkdir(exist_ok=True)
    try:
        return _fetch_into(staging, repo_id, revision, tqdm_class, root, endpoint)
    except RepoRefused:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _fetch_into(staging: Path, repo_id: str, revision: str | None, tqdm_class, root: Path,
                endpoint: str | None) -> Path:
    import huggingface_hub

    cache = root / ".hf-cache"  # huggingface_hub records refs here even for a local_dir download
    common = dict(local_dir=staging, cache_dir=cache, endpoint=endpoint)
    with _hub_errors(repo_id):
        api = huggingface_hub.HfApi(endpoint=endpoint, library_name="cots")
        info = api.model_info(repo_id, revision=revision or "main")
        files = [s.rfilename for s in info.siblings] if info.siblings is not None else \
            api.list_repo_files(repo_id, revision=info.sha)
        wanted = choose_files(repo_id, files)
        huggingface_hub.hf_hub_download(repo_id, "config.json", revision=info.sha, **common)
        check_config(staging / "config.json", repo_id)
        _drop_stale_partials(staging)
        huggingface_hub.snapshot_download(repo_id, revision=info.sha, allow_patterns=wanted, tqdm_class=tqdm_class,
                                          max_workers=4, **common)
    validate_folder(staging, repo_id)
    shutil.rmtree(staging / ".cache", ignore_errors=True)  # huggingface_hub's resume metadata
    (staging / DOWNLOAD_RECORD).write_text(json.dumps({"repo_id": repo_id, "revision": revision or "main",
                                                       "commit": info.sha}))
    final = root / folder_name(repo_id)
    if final.exists():  # an older download, replaced by this revision: set it aside, then remove it
        old = root / f".old-{folder_name(repo_id)}"
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        shutil.rmtree(old, ignore_errors=True)
    staging.rename(final)  # one rename: the folder appears complete or not at all
    return final


def _drop_stale_partials(staging: Path) -> None:
    """Temporary files a killed download left (huggingface_hub gives each process its own, so they cannot be
    resumed; the files completed before the kill are kept and not fetched again)."""
    for leftover in (staging / ".cache" / "huggingface" / "download").rglob("*.incomplete"):
        leftover.unlink(missing_ok=True)


class _hub_errors:
    """huggingface_hub's and the network's exceptions as one line a person can act on."""

    def __init__(self, repo_id: str):
        self.repo_id = repo_id

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if error is None or isinstance(error, ModelLoadError):
            return False
        message = _hub_error_message(self.repo_id, error)
        if message is None:
            return False
        raise ModelLoadError(message) from error


def _hub_error_message(repo_id: str, error: BaseException) -> str | None:
    import httpx2
    from huggingface_hub import errors

    again = "run the same command again to resume"
    if isinstance(error, errors.OfflineModeIsEnabled):
        return offline_message(repo_id)
    if isinstance(error, (httpx2.ConnectError, httpx2.TimeoutException, errors.LocalEntryNotFoundError)):
        if isinstance(error, httpx2.ReadTimeout):
            return f"the download of {repo_id} stalled (the hub stopped answering): {again}"
        return offline_message(repo_id, "the Hugging Face hub cannot be reached")
    if isinstance(error, errors.GatedRepoError):
        return (f"{repo_id} is gated: accept its terms on huggingface.co, log in with `hf auth login`, then try "
                "again")
    if isinstance(error, errors.RepositoryNotFoundError):
        return (f"no model {repo_id} on the Hugging Face hub (or it is private), and no folder of that name "
                "here: check the spelling")
    if isinstance(error, errors.RevisionNotFoundError):
        return f"{repo_id} has no such revision"
    if isinstance(error, errors.HfHubHTTPError):
        status = getattr(getattr(error, "response", None), "status_code", "?")
        return f"the Hugging Face hub refused {repo_id} (HTTP {status}): try again later"
    if isinstance(error, (httpx2.HTTPError, OSError)):
        return f"the download of {repo_id} stopped ({str(error).splitlines()[0] if str(error) else type(error).__name__}): {again}"
    return None


# -- progress -----------------------------------------------------------------------------------------


def is_transfer_bar(bar_kwargs: dict) -> bool:
    """Whether a progress bar that huggingface_hub creates (from its keyword arguments) is the one worth
    showing: bytes written of the real total. In 2.4 that is the "Reconstructing ..." bar; the others count
    files, or network bytes against a guessed total. A ``tqdm_class`` for :func:`download` hides the rest."""
    return bar_kwargs.get("unit") == "B" and "reconstruct" in str(bar_kwargs.get("desc", "")).lower()
