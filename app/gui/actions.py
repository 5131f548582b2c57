"""Handing files to the desktop: system viewer, file manager, clipboard."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PySide6.QtCore import QProcess, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication


def open_file(path: str, timestamp: float | None = None) -> bool:
    """Open with the system viewer; a video starts at ``timestamp`` when a player that takes one is
    installed (mpv, VLC), otherwise at the start through the default application."""
    if timestamp:
        for player, args in (("mpv", [f"--start={timestamp:.1f}", path]),
                             ("vlc", [f"--start-time={timestamp:.1f}", path])):
            if shutil.which(player) and QProcess.startDetached(player, args)[0]:
                return True
    return QDesktopServices.openUrl(QUrl.fromLocalFile(path))


def show_in_folder(path: str) -> bool:
    """Reveal the file in the platform's file manager (selected where the platform allows)."""
    if sys.platform == "darwin":
        return QProcess.startDetached("open", ["-R", path])[0]
    if sys.platform.startswith("win"):
        return QProcess.startDetached("explorer", [f"/select,{Path(path)}"])[0]
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(path).parent)))


def copy_path(path: str) -> None:
    QGuiApplication.clipboard().setText(path)
