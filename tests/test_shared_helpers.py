"""The one device picker (app and trainer) and the one time formatter (CLI and GUI)."""
from __future__ import annotations

import pytest
import torch

from cots_core.devices import select_device
from cots_core.errors import CotsError


def test_the_device_picker_checks_names_and_picks_a_device():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto").type in {"cpu", "cuda", "mps"}
    assert select_device(None, allow_mps=False).type in {"cpu", "cuda"}
    with pytest.raises(CotsError, match="is not a device"):
        select_device("gpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(CotsError, match="no CUDA GPU"):
            select_device("cuda")


def test_the_app_and_the_trainer_use_it():
    from app.library import encoder
    from trainer import distributed

    assert encoder.select_device is select_device
    assert distributed.setup_distributed("cpu").device == torch.device("cpu")


def test_one_time_format_for_the_cli_and_the_gui():
    import app.cli.library
    import app.cli.progress
    import app.gui.results
    from app.library.timefmt import format_time

    assert [format_time(s) for s in (None, 4.4, 65, 3599.6, 3725)] == ["", "0:04", "1:05", "1:00:00", "1:02:05"]
    assert app.cli.library.format_time is format_time and app.cli.progress.format_time is format_time
    assert app.gui.results.format_time is format_time
