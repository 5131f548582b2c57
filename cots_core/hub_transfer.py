"""The network side of a hub download: every request bounded in time, every file bounded in size.

Issue 30: ``huggingface_hub`` 2.4 calls ``model_info`` with no timeout (a hub that never answers hung
``cots models download`` for good), keeps retrying a body that trickles one byte every 2 s, writes all of
a 5 GB body whose listing said 338 KB before it compares sizes, and fetched a 200 MB ``config.json``
that only loading refused. So cots makes its own requests (to the same hub endpoints, with the same
headers and errors), and here:

- every request has a connect and a read timeout (``COTS_HUB_TIMEOUT`` seconds, default
  ``DEFAULT_TIMEOUT``), never longer than what is left of the deadline;
- the whole download has a deadline: ``DEADLINE_FLOOR`` plus its size at ``SLOWEST_RATE``, or
  ``COTS_DOWNLOAD_DEADLINE`` seconds when set (a slow link, or a test);
- a file is read up to the size the listing gives it (or its kind's limit) and no further: a body that
  goes past it is stopped at once;
- a file is written to ``.cache/NAME.incomplete`` and renamed to NAME only once whole, so a partial
  file never looks complete (and the next run resumes it with a Range request).
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from cots_core.errors import ModelLoadError

TIMEOUT_ENV = "COTS_HUB_TIMEOUT"
DEADLINE_ENV = "COTS_DOWNLOAD_DEADLINE"
DEFAULT_TIMEOUT = 30.0  # seconds to connect, and at most between two reads (huggingface_hub's own: 10)
DEADLINE_FLOOR = 600.0  # seconds any download may take, however small
SLOWEST_RATE = 100_000  # bytes/s the deadline allows on top of the floor: a 1.7 GB model gets about 5 h
MAX_LISTING_BYTES = 16 << 20  # a repo's file list is a few KB (a thousand files: ~200 KB)
MAX_ERROR_BYTES = 64 << 10  # of an error response's body, read to say what went wrong
RETRIES = 3  # a connection cut mid-body is resumed this often in a row (reset whenever bytes arrive)


class DownloadStopped(ModelLoadError):
    """The download ran out of time (it can be resumed: what was fetched is kept)."""


class TooLarge(ModelLoadError):
    """A file is larger than the listing said or than cots accepts (nothing of it is kept)."""


def _seconds(name: str, default: float) -> float:
    text = (os.environ.get(name) or "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ModelLoadError(f"{name}={text!r} is not a number of seconds") from None
    if not 0 < value < 1e9:
        raise ModelLoadError(f"{name}={text!r} must be a number of seconds above 0")
    return value


def download_deadline(total_bytes: int) -> float:
    """Seconds the whole download may take: ``COTS_DOWNLOAD_DEADLINE``, else the floor plus its size at the
    slowest rate worth waiting for."""
    return _seconds(DEADLINE_ENV, DEADLINE_FLOOR + total_bytes / SLOWEST_RATE)


@dataclass
class Listing:
    """A repo at one commit: its files and their sizes (None where the hub did not say)."""
    commit: str
    sizes: dict[str, int | None]


class HubSession:
    """One download's connection to the hub: timeouts on every request, one deadline over all of them."""

    def __init__(self, endpoint: str | None, repo_id: str):
        import httpx2
        from huggingface_hub import constants
        from huggingface_hub.utils import build_hf_headers

        self.endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
        self.repo_id = repo_id
        self.timeout = _seconds(TIMEOUT_ENV, DEFAULT_TIMEOUT)
        self.ends_at = time.monotonic() + _seconds(DEADLINE_ENV, DEADLINE_FLOOR)  # until the sizes are known
        self.client = httpx2.Client(headers=build_hf_headers(library_name="cots"), follow_redirects=True,
                                    timeout=httpx2.Timeout(self.timeout))

    def __enter__(self) -> HubSession:
        return self

    def __exit__(self, *exc) -> None:
        self.client.close()

    def set_deadline(self, total_bytes: int) -> None:
        self.ends_at = time.monotonic() + download_deadline(total_bytes)

    def _request_timeout(self):
        import httpx2

        left = self.ends_at - time.monotonic()
        if left <= 0:
            raise DownloadStopped(f"the download of {self.repo_id} ran out of time (the hub is too slow; "
                                  f"{DEADLINE_ENV}=SECONDS allows more): run the same command again to resume")
        return httpx2.Timeout(min(self.timeout, left))

    def listing(self, revision: str) -> Listing:
        """The repo's commit and file sizes at ``revision`` (the hub's model-info endpoint with blobs)."""
        url = f"{self.endpoint}/api/models/{self.repo_id}/revision/{quote(revision, safe='')}"
        with self.client.stream("GET", url, params={"blobs": "true"}, timeout=self._request_timeout()) as response:
            _raise_for_status(response)
            body = self._read_capped(response, MAX_LISTING_BYTES, "its file list")
        try:
            info = json.loads(body)
            commit = info["sha"]
            siblings = info.get("siblings") or []
            sizes = {s["rfilename"]: s.get("size") for s in siblings if isinstance(s, dict)}
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ModelLoadError(f"the hub's answer about {self.repo_id} is not a model listing") from None
        if not isinstance(commit, str) or not all(isinstance(name, str) for name in sizes):
            raise ModelLoadError(f"the hub's answer about {self.repo_id} is not a model listing")
        return Listing(commit, {name: size if isinstance(size, int) and size >= 0 else None
                                for name, size in sizes.items()})

    def _read_capped(self, response, limit: int, what: str) -> bytes:
        data = bytearray()
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) > limit:
                raise TooLarge(f"{self.repo_id}: {what} is larger than {limit >> 20} MiB: refused")
            self._request_timeout()  # the deadline, between chunks
        return bytes(data)

    def fetch(self, commit: str, name: str, target: Path, partial: Path, expected: int | None, limit: int,
              progress: Callable[[int], None]) -> None:
        """Fetch repo file ``name`` into ``target`` through ``partial`` (resumed when present), reading at most
        ``expected`` bytes (the listed size) or, unlisted, ``limit``."""
        url = f"{self.endpoint}/{self.repo_id}/resolve/{commit}/{quote(name)}"
        cap = expected if expected is not None else limit
        retries = RETRIES
        while True:
            have = partial.stat().st_size if partial.is_file() else 0
            if have > cap:  # a leftover that is already too long: start again
                partial.unlink()
                have = 0
            if expected is not None and have == expected:
                break
            try:
                if self._fetch_once(url, name, partial, have, cap, progress):
                    retries = RETRIES  # bytes arrived: a cut connection may be resumed again
                break
            except _Resumable:
                retries -= 1
                if retries < 0:
                    raise
        got = partial.stat().st_size
        if expected is not None and got != expected:
            raise ModelLoadError(f"the download of {self.repo_id} stopped early ({name}: {got:,} of {expected:,} "
                                 "bytes): run the same command again to resume")
        os.replace(partial, target)

    def _fetch_once(self, url: str, name: str, partial: Path, have: int, cap: int,
                    progress: Callable[[int], None]) -> bool:
        import httpx2

        headers = {"Range": f"bytes={have}-"} if have else {}
        arrived = False
        try:
            with self.client.stream("GET", url, headers=headers, timeout=self._request_timeout()) as response:
                _raise_for_status(response)
                resumed = have and response.status_code == 206
                if have and not resumed:
                    progress(-have)
                    have = 0
                length = response.headers.get("Content-Length")
                if length is not None and length.isdigit() and have + int(length) > cap:
                    raise self._too_large(name, cap)
                with open(partial, "ab" if have else "wb") as out:
                    for chunk in response.iter_bytes():  # as they arrive: a cut keeps them
                        if have + len(chunk) > cap:
                            raise self._too_large(name, cap)
                        out.write(chunk)
                        have += len(chunk)
                        arrived = arrived or bool(chunk)
                        progress(len(chunk))
                        self._request_timeout()  # the deadline, between chunks: a trickle stops too
        except (httpx2.RemoteProtocolError, httpx2.ReadError) as error:  # cut mid-body: resume from here
            raise _Resumable() if arrived else error from error
        return arrived

    def _too_large(self, name: str, cap: int) -> TooLarge:
        return TooLarge(f"{self.repo_id}: the hub sent more of {name} than the {cap:,} bytes it listed (or that "
                        "cots accepts for such a file): the download was stopped and nothing of it is kept")


class _Resumable(Exception):
    """A connection cut after some bytes arrived: ask again from where it stopped."""


def _raise_for_status(response) -> None:
    """huggingface_hub's errors for a hub error status (repo not found, gated, ...), reading at most
    ``MAX_ERROR_BYTES`` of the body."""
    if response.status_code < 400:
        return
    import httpx2
    from huggingface_hub.utils import hf_raise_for_status

    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) >= MAX_ERROR_BYTES:
            break
    read = httpx2.Response(response.status_code, headers=response.headers, content=bytes(body[:MAX_ERROR_BYTES]),
                           request=response.request)
    hf_raise_for_status(read)
