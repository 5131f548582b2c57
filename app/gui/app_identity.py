"""What the desktop knows the app by: its name, the launcher entry it belongs to, and its icon.

The names match the launcher entry that ``cots desktop install`` writes (``resources/desktop/cots.desktop``):
Qt's X11 window class is the application name (the entry's StartupWMClass) and its Wayland app id is the
desktop file name, so the taskbar groups the window under the launcher's icon.
"""
from __future__ import annotations

from cots_resources import APP_ICON_SIZES, resource_path
from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

APP_NAME = "cots"


def app_icon() -> QIcon:
    """The app's icon from the shipped PNGs, one per size: no SVG plugin is needed to show it."""
    icon = QIcon()
    for size in APP_ICON_SIZES:
        icon.addFile(str(resource_path("desktop", f"cots-{size}.png")), QSize(size, size))
    return icon


def set_app_identity(app: QApplication) -> None:
    """Name the application after its launcher entry and give every window its icon."""
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setDesktopFileName(APP_NAME)
    app.setWindowIcon(app_icon())
