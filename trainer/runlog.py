"""Where training reports go: a JSONL log (always), TensorBoard events (if installed), a tqdm bar."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

METRICS_FILE = "metrics.jsonl"
BAR_KEYS = {"loss": "loss", "loss_mcl": "mcl", "loss_kl": "kl", "loss_cmlm": "mlm", "loss_cmvm": "mvm",
            "amf_kept": "kept", "samples_per_s": "sps"}


class RunLog:
    """Rank 0 writes; other ranks get a disabled instance so call sites need no checks."""

    def __init__(self, out: str | Path, total: int, initial: int = 0, enabled: bool = True, progress: bool = True):
        self.enabled = enabled
        self.path = Path(out) / METRICS_FILE
        self.bar = tqdm(total=total, initial=initial, disable=not (enabled and progress), dynamic_ncols=True,
                        unit="step")
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(Path(out) / "tensorboard"))
            except ImportError:  # tensorboard not installed: JSONL only
                self.writer = None

    def write(self, step: int, record: dict[str, Any], prefix: str = "train") -> None:
        if not self.enabled:
            return
        line = {"step": step, "time": round(time.time(), 3), "kind": prefix, **record}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, int | float):
                    self.writer.add_scalar(f"{prefix}/{key}", value, step)

    def progress(self, values: dict[str, float]) -> None:
        self.bar.update(1)
        if self.enabled:
            self.bar.set_postfix({short: f"{values[k]:.3g}" for k, short in BAR_KEYS.items() if k in values},
                                 refresh=False)

    def message(self, text: str) -> None:
        if self.enabled:
            self.bar.write(text)

    def close(self) -> None:
        self.bar.close()
        if self.writer is not None:
            self.writer.close()
