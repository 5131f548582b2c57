"""Hugging Face CLIP and SigLIP models fetched once by their hub id ("openai/clip-vit-base-patch32").

Only :func:`download` (and :func:`resolve_model_source`, when the folder is missing) touches the
network; loading, indexing and search read the folder :func:`downloaded_path` names. A download goes to
a staging folder beside the others (``.partial-ORG--NAME``) and is moved into place only once complete and
validated, so a half-finished one is never taken for a model; the next download resumes it (files already
fetched are kept). The requests themselves, with their timeouts, deadline and size caps, are
:mod:`cots_core.hub_transfer`'s.

What is fetched is decided from the repo's file list and its config.json before any weights: safetensors
only (pickles can run code when loaded), the configs and the tokenizer files, never code, nothing outside
the top level of the repo (a listed ``../x`` or ``/x`` is never a file cots writes), and nothing larger
than loading accepts (``file_limit``: checked against the listed sizes before, and while, fetching).
"""
from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from cots_core.config_limits import MAX_TOKENIZER_BYTES
from cots_core.errors import ModelLoadError
from cots_core.folder_safety import MAX_CONFIG_BYTES, require_regular_file
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
PARTIAL_DIR = ".cache"  # in the staging folder: files being fetched (NAME.incomplete) and the commit
TRANSFER_BAR_DESC = "downloading"
# the largest CLIP-family repos cots can use (laion CLIP-ViT-bigG-14, fp32 safetensors) hold ~10 GB of weights
MAX_DOWNLOAD_BYTES = 32 << 30
_SMALL_JSON = {"tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", SHARD_INDEX}


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


def _is_plain_name(name: str) -> bool:
    """A file at the top of the repo, whose name cannot lead anywhere else on any system: no separator
    (``/``, ``\\``), drive, parent (``..``), hidden or wildcard name."""
    return bool(name) and not name.startswith(".") and not any(c in name for c in "/\\:*?[]\0")


def choose_files(repo_id: str, files: list[str]) -> list[str]:
    """The repo files to fetch (top level only), or ModelLoadError when the repo cannot be used safely."""
    top = [f for f in files if _is_plain_name(f)]
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

    ``tqdm_class`` shows byte progress (one bar, ``desc=TRANSFER_BAR_DESC``, bytes of the listed total). Raises
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
    from cots_core.hub_transfer import TooLarge

    endpoint = (os.environ.get("HF_ENDPOINT") or "").rstrip("/") or None  # read now, not at import
    staging = root / f"{STAGING_PREFIX}{folder_name(repo_id)}"
    staging.mkdir(exist_ok=True)
    try:
        return _fetch_into(staging, repo_id, revision, tqdm_class, root, endpoint)
    except (RepoRefused, TooLarge):  # a hostile or unusable repo: nothing of it is kept
        shutil.rmtree(staging, ignore_errors=True)
        raise


def file_limit(name: str) -> int:
    """The most bytes cots accepts for repo file ``name``: what loading accepts for configs
    (``MAX_CONFIG_BYTES``) and tokenizer files (``MAX_TOKENIZER_BYTES``), else the whole download's."""
    if name in CONFIG_FILES or name in _SMALL_JSON:
        return MAX_CONFIG_BYTES
    if name in TOKENIZER_FILES:
        return MAX_TOKENIZER_BYTES
    return MAX_DOWNLOAD_BYTES


def check_listed_sizes(repo_id: str, wanted: list[str], sizes: dict[str, int | None]) -> int:
    """RepoRefused when the listing gives a file more than :func:`file_limit` or the files more than
    ``MAX_DOWNLOAD_BYTES`` together (before anything is fetched); returns the listed total."""
    for name in wanted:
        size = sizes.get(name)
        if size is not None and size > file_limit(name):
            raise RepoRefused(f"{repo_id}: its {name} is {size / 2**20:,.0f} MiB, more than cots accepts for such a "
                              f"file ({file_limit(name) / 2**20:,.0f} MiB): refused, nothing was fetched")
    total = sum(sizes.get(name) or 0 for name in wanted)
    if total > MAX_DOWNLOAD_BYTES:
        raise RepoRefused(f"{repo_id} is {total / 2**30:,.1f} GiB, more than cots downloads "
                          f"({MAX_DOWNLOAD_BYTES >> 30} GiB): refused, nothing was fetched")
    return total


def _fetch_into(staging: Path, repo_id: str, revision: str | None, tqdm_class, root: Path,
                endpoint: str | None) -> Path:
    from cots_core.hub_transfer import HubSession

    partials = staging / PARTIAL_DIR
    with _hub_errors(repo_id), HubSession(endpoint, repo_id) as session:
        listing = session.listing(revision or "main")
        wanted = choose_files(repo_id, list(listing.sizes))
        total = check_listed_sizes(repo_id, wanted, listing.sizes)
        session.set_deadline(total)
        _start_staging(staging, listing.commit)
        wanted = ["config.json"] + [name for name in wanted if name != "config.json"]
        done = [name for name in wanted if _complete(staging / name, listing.sizes.get(name))]
        bar = _progress(tqdm_class, total, sum(listing.sizes.get(name) or 0 for name in done))
        try:
            for name in wanted:
                if name not in done:
                    session.fetch(listing.commit, name, staging / name, partials / f"{name}.incomplete",
                                  listing.sizes.get(name), file_limit(name), bar.update if bar else _ignore)
                if name == "config.json":
                    check_config(staging / "config.json", repo_id)  # before any weights
        finally:
            if bar is not None:
                bar.close()
    validate_folder(staging, repo_id)
    shutil.rmtree(partials, ignore_errors=True)
    (staging / DOWNLOAD_RECORD).write_text(json.dumps({"repo_id": repo_id, "revision": revision or "main",
                                                       "commit": listing.commit}))
    final = root / folder_name(repo_id)
    if final.exists():  # an older download, replaced by this revision: set it aside, then remove it
        old = root / f".old-{folder_name(repo_id)}"
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        shutil.rmtree(old, ignore_errors=True)
    staging.rename(final)  # one rename: the folder appears complete or not at all
    return final


def _start_staging(staging: Path, commit: str) -> None:
    """Keep what an earlier, interrupted download of the same commit fetched; start afresh for another."""
    partials = staging / PARTIAL_DIR
    partials.mkdir(exist_ok=True)
    record = partials / "commit"
    if record.is_file() and record.read_text().strip() != commit:
        for path in staging.iterdir():
            if path.is_file():
                path.unlink()
        shutil.rmtree(partials)
        partials.mkdir()
    record.write_text(commit)


def _complete(path: Path, size: int | None) -> bool:
    """A file of an interrupted download that was finished (files are renamed into place only when whole)."""
    return path.is_file() and (size is None or path.stat().st_size == size)


def _progress(tqdm_class, total: int, initial: int):
    if tqdm_class is None:
        return None
    return tqdm_class(total=total or None, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                      desc=TRANSFER_BAR_DESC)


def _ignore(_bytes: int) -> None:
    pass


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
    """Whether a progress bar created with these keyword arguments is the download's own: bytes written of
    the listed total (:func:`download` creates one with its ``tqdm_class``; other libraries' bars are not)."""
    return bar_kwargs.get("unit") == "B" and bar_kwargs.get("desc") == TRANSFER_BAR_DESC
