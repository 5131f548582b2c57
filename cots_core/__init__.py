"""cots_core: the COTS two-stream vision-language model (Lu et al., CVPR 2022) and nothing else.

The model classes are imported on first use, so that `import cots_core.errors` (CLI start-up, help
output) does not pay for importing torch, timm and transformers.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import cots_core.no_telemetry  # noqa: F401 - first: before any native library is imported
from cots_core.errors import CotsError, ModelLoadError

if TYPE_CHECKING:
    from cots_core.config import ModelConfig
    from cots_core.loading import load_model
    from cots_core.model import COTS

_LAZY = {"COTS": "cots_core.model", "load_model": "cots_core.loading", "ModelConfig": "cots_core.config"}
__all__ = ["COTS", "CotsError", "ModelConfig", "ModelLoadError", "load_model"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cots_core' has no attribute {name!r}")
