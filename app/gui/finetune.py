"""Fine-tuning from the app: ``python -m trainer finetune`` in a separate process, with progress."""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QProgressBar, QWidget

from app.gui.settings import Settings

STEP = re.compile(r"(\d+)/(\d+)")


def finetune_command(model: str, data: str, out: str, memory_only: bool = False) -> list[str]:
    """The arguments after the Python executable. ``memory_only``: no training, only the caption memory
    (seconds instead of minutes: docs/USER_GUIDE.md, the caption memory)."""
    command = ["-m", "trainer", "finetune", "--from", model, "--data", data, "--out", out]
    return command + ["--steps", "0"] if memory_only else command


class FineTuneJob(QObject):
    """One training run. ``progress(step, total)``; ``finished(checkpoint or "", error or "")``."""

    progress = Signal(int, int)
    finished = Signal(str, str)

    def __init__(self, model: str, data: str, out: str, program: str | None = None,
                 arguments: list[str] | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.out = out
        self.process = QProcess(self)
        self.process.setProgram(program or sys.executable)
        self.process.setArguments(arguments if arguments is not None else finetune_command(model, data, out))
        self.process.readyReadStandardError.connect(self._read_stderr)
        self.process.finished.connect(self._finished)
        self.process.errorOccurred.connect(self._error)
        self._stdout = b""
        self._stderr_tail = ""
        self.result: dict = {}  # the trainer's last JSON line (metrics, checkpoint, caption_memory)
        self._reported = False

    def start(self) -> None:
        self.process.start()

    def cancel(self) -> None:
        if self.process.state() != QProcess.NotRunning:
            self.process.terminate()  # the trainer writes a checkpoint on SIGTERM/interrupt
            if not self.process.waitForFinished(5000):
                self.process.kill()

    @property
    def running(self) -> bool:
        return self.process.state() != QProcess.NotRunning

    def _read_stderr(self) -> None:
        text = bytes(self.process.readAllStandardError()).decode("utf-8", "replace")
        self._stderr_tail = (self._stderr_tail + text)[-2000:]
        for chunk in re.split(r"[\r\n]", text)[::-1]:  # tqdm redraws with \r: the last count wins
            match = STEP.search(chunk)
            if match:
                self.progress.emit(int(match.group(1)), int(match.group(2)))
                break

    def _finished(self, code: int, _status) -> None:
        self._stdout += bytes(self.process.readAllStandardOutput())
        if code != 0:
            reason = self._stderr_tail.strip().splitlines()[-1:] or [f"exit status {code}"]
            return self._report("", f"fine-tuning failed: {reason[0]}")
        for line in self._stdout.decode("utf-8", "replace").splitlines()[::-1]:
            try:
                result = json.loads(line)
            except ValueError:
                continue
            if isinstance(result, dict):
                self.result = result
                break
        self._report(str(self.result.get("checkpoint") or "") or str(Path(self.out)), "")

    def _error(self, error) -> None:
        if error == QProcess.FailedToStart:
            self._report("", f"could not start the trainer: {self.process.errorString()}")

    def _report(self, checkpoint: str, error: str) -> None:
        if not self._reported:
            self._reported = True
            self.finished.emit(checkpoint, error)


def finished_message(checkpoint: str, result: dict) -> str:
    """The notice for a finished fine-tune: where the model is, and what its caption memory holds."""
    text = f"The fine-tuned model is ready in {checkpoint}."
    memory = result.get("caption_memory")
    if not isinstance(memory, dict):
        return text
    entries = memory.get("entries")
    if isinstance(entries, int) and entries > 0:
        return text + (f" It remembers {entries} captioned photo{'s' if entries != 1 else ''}: the names and "
                       "subjects in those captions also find the photos that look like them.")
    if "held_out_rsum_with" in memory:
        return text + " Its caption memory was left out: it made the held-out photos harder to find."
    return text


class FineTuneFlow(QObject):
    """The window's fine-tuning: the two menu actions, the folder dialog, one job at a time and its
    progress bar (for the status bar). ``notice(text, level, choices)`` asks the window to tell the
    person; ``switch_requested(checkpoint)`` when they choose to use the new model."""

    notice = Signal(str, str, object)
    switch_requested = Signal(str)

    def __init__(self, settings: Settings, parent: QWidget):
        super().__init__(parent)
        self.settings, self.window = settings, parent
        self.job: FineTuneJob | None = None
        self.bar = QProgressBar(maximumWidth=160, visible=False)
        self.finetune_action = QAction("Fine-tune on a captioned folder…", self)
        self.finetune_action.triggered.connect(lambda: self.choose_data())
        self.remember_action = QAction("Remember the captions of a folder (no training)…", self)
        self.remember_action.triggered.connect(lambda: self.choose_data(memory_only=True))

    def choose_data(self, memory_only: bool = False) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Choose a folder of captioned photos and videos")
        if folder:
            self.start(folder, memory_only=memory_only)

    def start(self, data: str, out: str | None = None, program: str | None = None,
              arguments: list[str] | None = None, memory_only: bool = False) -> FineTuneJob | None:
        if self.running:
            self.notice.emit("A fine-tuning run is already going", "info", None)
            return None
        from app.library.paths import data_dir

        out = out or str(data_dir() / "models" / time.strftime("finetuned-%Y%m%d-%H%M%S"))
        model = self.settings["model"]
        if arguments is None and program is None:
            arguments = finetune_command(model, data, out, memory_only)
        self.job = FineTuneJob(model, data, out, program, arguments, self)
        self.job.progress.connect(self._progress)
        self.job.finished.connect(self._finished)
        self.bar.setRange(0, 0)
        self.bar.setFormat("Training %v/%m")
        self.bar.show()
        self.job.start()
        doing = f"Remembering the captions of {data} for {model}" if memory_only else f"Fine-tuning {model} on {data}"
        self.notice.emit(f"{doing}; you can keep searching meanwhile", "info", None)
        return self.job

    @property
    def running(self) -> bool:
        return bool(self.job and self.job.running)

    def cancel(self) -> None:
        if self.running:
            self.job.cancel()

    def _progress(self, step: int, total: int) -> None:
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(step)

    def _finished(self, checkpoint: str, error: str) -> None:
        self.bar.hide()
        if error:
            return self.notice.emit(error, "error", None)
        self.notice.emit(finished_message(checkpoint, self.job.result), "success",
                         [("Switch to it", lambda: self.switch_requested.emit(checkpoint))])
