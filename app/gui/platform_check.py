"""Before Qt starts: can its X11 (xcb) platform plugin load? PySide6 6.5+ needs xcb helper libraries that
many desktops lack (libxcb-cursor0, libxcb-icccm4, ...); Qt then aborts with its own long text. This
module finds the missing libraries without importing Qt and says which packages provide them."""
from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

# soname -> (Debian/Ubuntu package, Fedora package), for the libraries libqxcb.so links against
XCB_PACKAGES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
}
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)


def qt_platform(environ: Mapping[str, str]) -> str:
    """The platform plugin Qt will try first: QT_QPA_PLATFORM, else wayland in a Wayland session, else xcb."""
    requested = environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if requested:
        return requested
    if environ.get("XDG_SESSION_TYPE") == "wayland" and environ.get("WAYLAND_DISPLAY"):
        return "wayland"
    return "xcb"


def xcb_plugin() -> Path | None:
    """PySide6's libqxcb.so, found without importing Qt (None if PySide6 ships none here)."""
    spec = importlib.util.find_spec("PySide6")
    for location in (spec.submodule_search_locations or []) if spec else []:
        plugin = Path(location) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if plugin.is_file():
            return plugin
    return None


def _ldd(plugin: Path) -> str | None:
    ldd = shutil.which("ldd")
    if not ldd:
        return None
    try:
        return subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def _cannot_load(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return True
    return False


def missing_libraries(plugin: Path, ldd: Callable[[Path], str | None] = _ldd,
                      cannot_load: Callable[[str], bool] = _cannot_load) -> list[str]:
    """Sonames the plugin needs that the system lacks: from `ldd` (every dependency, transitively), or,
    without ldd, by trying to load each library of XCB_PACKAGES."""
    report = ldd(plugin)
    if report is not None:
        return list(dict.fromkeys(_NOT_FOUND.findall(report)))
    return [soname for soname in XCB_PACKAGES if cannot_load(soname)]


def install_hint(missing: list[str]) -> str:
    """One line: what is missing and the install commands for Debian/Ubuntu and Fedora."""
    debian = sorted({XCB_PACKAGES[s][0] for s in missing if s in XCB_PACKAGES})
    fedora = sorted({XCB_PACKAGES[s][1] for s in missing if s in XCB_PACKAGES})
    unknown = [s for s in missing if s not in XCB_PACKAGES]
    hint = (f"Qt's X11 (xcb) platform cannot start: missing {', '.join(missing)}. Install them, "
            f"on Debian/Ubuntu: sudo apt install {' '.join(debian) or '(the packages providing them)'}; "
            f"on Fedora: sudo dnf install {' '.join(fedora) or '(the packages providing them)'}")
    if unknown:
        hint += f" (and whichever package provides {', '.join(unknown)})"
    return hint


def xcb_problem(environ: Mapping[str, str] | None = None, plugin: Path | None = None,
                ldd: Callable[[Path], str | None] = _ldd, cannot_load: Callable[[str], bool] = _cannot_load,
                platform: str = sys.platform) -> str | None:
    """The one-line message when Qt would start on xcb and its plugin cannot load; None otherwise."""
    environ = os.environ if environ is None else environ
    if not platform.startswith("linux") or qt_platform(environ) != "xcb":
        return None
    plugin = plugin or xcb_plugin()
    if plugin is None:
        return None
    missing = missing_libraries(plugin, ldd, cannot_load)
    return install_hint(missing) if missing else None
