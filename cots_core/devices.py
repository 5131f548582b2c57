"""Choosing the torch device: the one picker for the app and the trainer."""
from __future__ import annotations

import torch

from cots_core.errors import CotsError


def mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def select_device(preference: str | None = "auto", local_rank: int | None = None,
                  allow_mps: bool = True) -> torch.device:
    """``auto`` (or None): CUDA when there is a GPU (``cuda:local_rank`` when given), then Apple's MPS when
    ``allow_mps``, else the CPU. A name (``cpu``, ``cuda``, ``cuda:1``, ``mps``) is checked: CotsError when
    it is not a device or not available here. A bare ``cuda`` with ``local_rank`` means that rank's GPU."""
    if preference and preference != "auto":
        try:
            device = torch.device(preference)
        except (RuntimeError, ValueError) as error:
            raise CotsError(f"--device {preference!r} is not a device: use auto, cpu, cuda, cuda:1 or mps") \
                from error
        if device.type == "cuda" and not torch.cuda.is_available():
            raise CotsError(f"--device {preference}: no CUDA GPU is available (try --device cpu)")
        if device.type == "mps" and not mps_available():
            raise CotsError(f"--device {preference}: MPS is not available (try --device cpu)")
        if device.type == "cuda" and device.index is None and local_rank is not None:
            return torch.device("cuda", local_rank)
        return device
    if torch.cuda.is_available():
        return torch.device("cuda") if local_rank is None else torch.device("cuda", local_rank)
    if allow_mps and mps_available():
        return torch.device("mps")
    return torch.device("cpu")
