"""Indexing and search never touch the network, native libraries included (issue 30): ONNX Runtime looked up
its telemetry host (a DNS query under strace) and kept a device id under $XDG_CACHE_HOME/Microsoft, with
HF_HUB_OFFLINE=1 and a fresh cache. cots_core.no_telemetry switches that off before any library loads."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import noise_image
from hf_tiny import make_tiny_clip

from cots_core.no_telemetry import TELEMETRY_OFF

ROOT = Path(__file__).resolve().parents[2]
# a call that sends to, or connects to, an IPv4/IPv6 address: the only ways a packet leaves the machine
_SENDS = re.compile(r"\b(connect|sendto|sendmsg|sendmmsg)\(.*(AF_INET6?|sin6?_addr)")
# binds anywhere but the loopback (urllib3 binds ::1 at import to probe for IPv6; nothing is sent)
_BIND = re.compile(r"\bbind\(.*(AF_INET6?)")
_LOOPBACK = ("127.0.0.1", '"::1"', "::1")


def _clean_env(tmp_path: Path) -> dict:
    """The environment of a person's shell: offline for the hub, nothing set about telemetry, fresh caches."""
    env = {k: v for k, v in os.environ.items() if k not in TELEMETRY_OFF}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", COTS_DATA_DIR=str(tmp_path / "data"),
               XDG_CACHE_HOME=str(tmp_path / "cache"), HF_HOME=str(tmp_path / "hf"), HOME=str(tmp_path / "home"),
               COTS_IMAGE_RUNTIME="auto")  # the ONNX Runtime image path, as a person's install runs it
    (tmp_path / "home").mkdir(exist_ok=True)
    return env


@pytest.mark.parametrize("module", ["app.library.signals.ocr", "trainer.cli", "cots_core.image_runtime",
                                    "app.gui"])
def test_every_entry_point_switches_telemetry_off_before_onnxruntime_loads(tmp_path, module):
    code = (f"import sys, os; import {module}; "
            "print('onnxruntime' in sys.modules, *(os.environ.get(k) for k in sorted(%r)))" % sorted(TELEMETRY_OFF))
    done = subprocess.run([sys.executable, "-c", code], env=_clean_env(tmp_path), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[1:] == ["1"] * len(TELEMETRY_OFF), done.stdout


@pytest.mark.slow  # index and search in two CLI processes under strace (~30 s)
def test_index_and_search_open_no_network_socket(tmp_path):
    strace = shutil.which("strace")
    assert strace, "strace is needed (.ci/run installs it)"
    model = make_tiny_clip(tmp_path / "tiny")
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        noise_image(i).save(photos / f"n{i}.png")
    env, db = _clean_env(tmp_path), str(tmp_path / "lib.db")
    for name, args in (("index", ["index", str(photos), "--model", str(model)]),
                       ("search", ["search", "a red car", "-k", "2"])):
        trace = tmp_path / f"{name}.strace"
        done = subprocess.run([strace, "-f", "-qq", "-e", "trace=network", "-e", "signal=none", "-o", str(trace),
                               sys.executable, "-m", "app", *args, "--db", db, "--device", "cpu"],
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        lines = trace.read_text(errors="replace").splitlines()
        sent = [line for line in lines if _SENDS.search(line)]
        bound = [line for line in lines if _BIND.search(line) and not any(a in line for a in _LOOPBACK)]
        assert not sent and not bound, f"{name} reached for the network:\n" + "\n".join((sent + bound)[:10])
    assert any((tmp_path / "data" / "models" / "onnx").iterdir())  # the ONNX Runtime image path ran
    assert not (tmp_path / "cache" / "Microsoft").exists()  # no device id kept
