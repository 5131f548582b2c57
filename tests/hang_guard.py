"""Run a call that must not block on a FIFO, with a time limit that cannot hang the test run itself."""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


def finishes_within(seconds: float, call: Callable[[], Any], fifos: list[Path]) -> Any:
    """``call()``'s result; AssertionError when it is still running after ``seconds``. A call blocked on one
    of ``fifos`` (a read waiting for a writer) is then released by opening and closing the FIFO's other end,
    so that the thread ends and the test fails instead of hanging."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        for fifo in fifos:
            for flags in (os.O_WRONLY | os.O_NONBLOCK, os.O_RDONLY | os.O_NONBLOCK):
                try:
                    os.close(os.open(fifo, flags))
                except OSError:
                    pass
        thread.join(30)
        raise AssertionError(f"still blocked after {seconds} s (on a FIFO in {[str(f) for f in fifos]})")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")
