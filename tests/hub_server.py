"""A stand-in Hugging Face hub on 127.0.0.1: serves repos from local folders with the endpoints that
huggingface_hub 2.4 uses for ``model_info``, ``list_repo_tree``, ``hf_hub_download`` and
``snapshot_download`` (no Xet), and logs every request so that tests can say what was fetched.

    with HubServer({"org/name": folder}) as hub:   # then HF_ENDPOINT=hub.url
        ...
        hub.requests  # [(method, path, range header or None), ...]

``cut_once`` names a file whose first GET stops half-way (the connection is closed mid-body);
``stall`` names a file whose GETs send half and then hang until the server stops (a download to kill).
Hostile hubs (issue 30): ``hang_api`` never answers the API; ``trickle`` names a file sent one byte every
``trickle_every`` seconds; ``flood`` names a file whose body never ends (no Content-Length, until the client
hangs up); ``listed`` lists extra names, or other sizes, beside the folder's files.
"""
from __future__ import annotations

import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


class HubServer:
    def __init__(self, repos: dict[str, Path], cut_once: str | None = None, stall: str | None = None,
                 hang_api: bool = False, trickle: str | None = None, trickle_every: float = 0.2,
                 flood: str | None = None, listed: dict[str, int] | None = None):
        self.repos = {repo: Path(folder) for repo, folder in repos.items()}
        self.commits = {repo: hashlib.sha1(repo.encode()).hexdigest() for repo in repos}
        self.cut_once = cut_once
        self.stall = stall
        self.hang_api, self.trickle, self.trickle_every, self.flood = hang_api, trickle, trickle_every, flood
        self.listed = listed or {}
        self.flooded = 0  # bytes of ``flood`` sent before the client hung up
        self.on_cut = None  # called when the connection has just been cut (to look at the client's state then)
        self.requests: list[tuple[str, str, str | None]] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def log(self, method: str, path: str, range_header: str | None) -> None:
        with self._lock:
            self.requests.append((method, path, range_header))

    def fetched(self) -> list[str]:
        """File names of the GET requests for repo files, in order."""
        return [path.rsplit("/", 1)[-1] for method, path, _ in self.requests if method == "GET" and "/resolve/" in path]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # a client that hangs up mid-body (as the download tests make it) is no error of the test's


def _handler(hub: HubServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet: the hub keeps its own log
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._answer(body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(body=False)

        def _answer(self, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.log(self.command, path, self.headers.get("Range"))
            if hub.hang_api and path.startswith("/api/"):
                hub.stopping.wait()  # accepted, never answered
                return
            parts = path.strip("/").split("/")
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                return self._api(f"{parts[2]}/{parts[3]}", parts[4:])
            if len(parts) >= 5 and parts[2] == "resolve":
                return self._file(f"{parts[0]}/{parts[1]}", "/".join(parts[4:]), body)
            self._error(404, "EntryNotFound")

        def _api(self, repo: str, rest: list[str]) -> None:
            folder = hub.repos.get(repo)
            if folder is None:
                return self._error(404, "RepoNotFound")
            files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
            sizes = {**{name: (folder / name).stat().st_size for name in files}, **hub.listed}
            if not rest or rest[0] == "revision":  # with ?blobs=true the hub gives each file's size
                blobs = "blobs=true" in (urlsplit(self.path).query or "")
                payload = {"id": repo, "modelId": repo, "sha": hub.commits[repo], "private": False,
                           "siblings": [{"rfilename": name, **({"size": size} if blobs else {})}
                                        for name, size in sorted(sizes.items())]}
            elif rest[0] == "tree":
                payload = [{"type": "file", "path": name, "size": (folder / name).stat().st_size,
                            "oid": hashlib.sha1((folder / name).read_bytes()).hexdigest()} for name in files]
            else:
                return self._error(404, "EntryNotFound")
            self._send(200, json.dumps(payload).encode(), {"Content-Type": "application/json"}, True)

        def _file(self, repo: str, name: str, body: bool) -> None:
            folder = hub.repos.get(repo)
            if folder is None:
                return self._error(404, "RepoNotFound")
            path = folder / name
            if not path.is_file():
                return self._error(404, "EntryNotFound")
            data = path.read_bytes()
            headers = {"ETag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Repo-Commit": hub.commits[repo],
                       "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
            start = 0
            requested = self.headers.get("Range")
            if requested and requested.startswith("bytes=") and body:
                start = int(requested[len("bytes="):].split("-")[0])
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            status = 206 if start else 200
            if not body:
                return self._send(status, data[start:], headers, False)
            with hub._lock:
                cut = hub.cut_once == name and not start
                if cut:
                    hub.cut_once = None
            if hub.trickle == name or hub.flood == name:
                return self._send_endless(status, data[start:], headers, name)
            if cut or hub.stall == name:
                self._send_partial(status, data[start:], headers, hang=not cut, cut=cut, name=name)
                return
            self._send(status, data[start:], headers, True)

        def _send_partial(self, status: int, data: bytes, headers: dict, hang: bool, cut: bool, name: str) -> None:
            """Promise the whole file, send half, then close the connection (or hang until shutdown)."""
            self.send_response(status)
            for key, value in {**headers, "Content-Length": str(len(data))}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            if cut and hub.on_cut is not None:
                hub.on_cut()
            while hang and hub.stall == name and not hub.stopping.wait(0.05):
                pass  # until the client is killed and the test lets go
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def _send_endless(self, status: int, data: bytes, headers: dict, name: str) -> None:
            """``trickle``: the file, one byte at a time; ``flood``: zeros with no end (no Content-Length)."""
            self.send_response(status)
            trickle = hub.trickle == name
            for key, value in {**headers, **({"Content-Length": str(len(data))} if trickle else {})}.items():
                self.send_header(key, value)
            self.end_headers()
            self.close_connection = True
            block = b"\0" * (1 << 16)
            try:
                for i in range(len(data)) if trickle else iter(int, 1):
                    if hub.stopping.is_set():
                        break
                    if trickle:
                        self.wfile.write(data[i:i + 1])
                        self.wfile.flush()
                        hub.stopping.wait(hub.trickle_every)
                    else:
                        self.wfile.write(block)
                        hub.flooded += len(block)
            except OSError:
                pass  # the client hung up

        def _send(self, status: int, data: bytes, headers: dict, body: bool) -> None:
            self.send_response(status)
            for key, value in {**headers, "Content-Length": str(len(data))}.items():
                self.send_header(key, value)
            self.end_headers()
            if body:
                self.wfile.write(data)

        def _error(self, status: int, code: str) -> None:
            data = json.dumps({"error": code}).encode()
            self._send(status, data, {"X-Error-Code": code, "Content-Type": "application/json"},
                       self.command != "HEAD")

    return Handler
