"""No library that cots loads reports home: set once, before any of them is imported.

Issue 30: with HF_HUB_OFFLINE=1 and a fresh cache, ``cots index`` made ONNX Runtime look up its telemetry
host (a DNS query seen under strace) and keep a device id under ``$XDG_CACHE_HOME/Microsoft/``. ONNX
Runtime reads ``ORT_DISABLE_TELEMETRY`` when it loads, so the variable must be set before the first
``import onnxruntime``, wherever that happens (the image path, OCR's rapidocr, a bench script). This module
is imported by ``cots_core/__init__.py``, which every entry point (the CLI, the GUI, the trainer, library
use of ``cots_core``) imports first. A person's own explicit setting is kept (``setdefault``).
"""
from __future__ import annotations

import os

TELEMETRY_OFF = {
    "ORT_DISABLE_TELEMETRY": "1",  # ONNX Runtime: the telemetry DNS lookup and the device id file
    "HF_HUB_DISABLE_TELEMETRY": "1",  # huggingface_hub (and transformers through it): usage pings
    "DO_NOT_TRACK": "1",  # the cross-tool convention (huggingface_hub, gradio, ...) for the same
}


def disable_telemetry() -> None:
    """Set every known telemetry switch to off, unless the environment already says otherwise."""
    for name, value in TELEMETRY_OFF.items():
        os.environ.setdefault(name, value)


disable_telemetry()
