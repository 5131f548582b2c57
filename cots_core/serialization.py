"""Safetensors checkpoints with errors that name the file: loading never unpickles."""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from cots_core.errors import ModelLoadError


def save_state_dict_file(state: dict[str, torch.Tensor], path: Path) -> None:
    """Write atomically (temp file + rename), so a killed process never leaves a truncated checkpoint."""
    # safetensors refuses shared storage (tied weights): store independent contiguous copies
    tensors = {k: v.detach().contiguous().clone() for k, v in state.items()}
    temporary = path.with_name(path.name + ".tmp")
    save_file(tensors, str(temporary))
    temporary.replace(path)


def load_state_dict_file(model: nn.Module, path: Path, strict: bool = True,
                         may_be_missing: tuple[str, ...] = ()) -> None:
    """Load a safetensors state dict; with ``strict``, keys starting with ``may_be_missing`` (state added in
    a later version, whose initial value is right for an older checkpoint) may still be absent."""
    if not path.is_file():
        raise ModelLoadError(f"checkpoint file not found: {path}")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelLoadError(f"checkpoint file {path} is corrupt or truncated ({error})") from error
    own = model.state_dict()
    missing = sorted(k for k in set(own) - set(state) if not k.startswith(may_be_missing))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if (strict and (missing or unexpected)) or mismatched:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if mismatched:
            k = mismatched[0]
            problems.append(f"{len(mismatched)} of another shape (e.g. {k}: file {tuple(state[k].shape)}, "
                            f"model {tuple(own[k].shape)})")
        raise ModelLoadError(f"checkpoint file {path} does not match its config: " + "; ".join(problems))
    model.load_state_dict(state, strict=strict and not may_be_missing)


def load_tensor_file(path: Path, what: str = "file") -> object:
    """``torch.load`` of a file that must hold tensors only (``weights_only``): anything else, a pickle of
    Python objects included, is one ModelLoadError that names the file, not PyTorch's advice to unpickle
    it (``weights_only=False`` would run code from the file)."""
    import pickle

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as error:
        raise ModelLoadError(f"{what} not found: {path}") from error
    except pickle.UnpicklingError as error:
        raise ModelLoadError(f"the {what} {path} holds Python objects, not only tensors: cots never unpickles "
                             "code (use a file saved by cots, or safetensors)") from error
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError, ImportError, IndexError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ModelLoadError(f"the {what} {path} cannot be read ({first})") from error
