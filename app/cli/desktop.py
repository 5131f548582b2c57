"""`cots desktop install|uninstall|show`: cots in the application launcher of a freedesktop.org desktop.

``install`` writes the shipped launcher entry (``resources/desktop/cots.desktop``) with ``Exec`` and ``TryExec``
pointing at this installation's ``cots`` command, and the icon at every shipped size, into the per-user data
folder ($XDG_DATA_HOME, else ~/.local/share); ``uninstall`` removes exactly those files. Nothing is rendered
here (the PNGs are committed), so the command never loads Qt.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from cots_resources import APP_ICON_SIZES, resource_path

from cots_core.errors import CotsError

APP_ID = "cots"  # the entry's and the icon's file name; app.gui.app_identity gives Qt the same name
# marks an entry this command wrote: uninstall removes no cots.desktop that lacks it
INSTALLED_MARK = "X-Cots-Installed-By=cots desktop install"
# the Desktop Entry spec's reserved characters: an Exec argument holding one is written in double quotes
EXEC_RESERVED = frozenset(' \t\n"\'\\><~|&;$*?#()`')
# the tools that refresh a desktop's caches of these folders (with their options), and the cache each keeps
# there; -t: a user's hicolor folder often has no index.theme; -f: the tool's own up-to-date check may miss a file
CACHE_TOOLS = ((("update-desktop-database", "-q"), "applications", "mimeinfo.cache"),
               (("gtk-update-icon-cache", "-q", "-t", "-f"), "icons/hicolor", "icon-theme.cache"))

EPILOG = """examples:
  cots desktop install      cots appears in the application launcher and starts the app
  cots desktop show         the launcher entry install would write, without writing it
  cots desktop uninstall    remove the entry and the icons install wrote"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("desktop", help="add cots to the application launcher (entry and icon)",
                              description="cots in your desktop's application launcher: a freedesktop.org entry "
                                          "and the icon, for your user only ($XDG_DATA_HOME, else ~/.local/share).",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(handler=cmd_status)
    actions = p.add_subparsers(dest="desktop_command", metavar="ACTION")
    actions.add_parser("install", help="write the launcher entry and the icons").set_defaults(handler=cmd_install)
    actions.add_parser("uninstall", help="remove what install wrote").set_defaults(handler=cmd_uninstall)
    actions.add_parser("show", help="print the launcher entry without writing it").set_defaults(handler=cmd_show)


# -- where the files go, and what they hold ---------------------------------------------------------
def data_home() -> Path:
    """$XDG_DATA_HOME, or ~/.local/share when it is unset, empty or relative (the XDG spec ignores those)."""
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if os.path.isabs(value) else Path.home() / ".local" / "share"


def entry_path(root: Path) -> Path:
    return root / "applications" / f"{APP_ID}.desktop"


def icon_files(root: Path) -> dict[Path, Path]:
    """Where each icon goes under ``root`` (the hicolor theme, which every desktop falls back to) -> the shipped file."""
    hicolor = root / "icons" / "hicolor"
    files = {hicolor / f"{size}x{size}" / "apps" / f"{APP_ID}.png": resource_path("desktop", f"cots-{size}.png")
             for size in APP_ICON_SIZES}
    files[hicolor / "scalable" / "apps" / f"{APP_ID}.svg"] = resource_path("desktop", "cots.svg")
    return files


def cots_command() -> Path:
    """The ``cots`` console script of this installation: beside this Python (a virtual environment's bin/),
    else the one on PATH. Not resolved: a venv's python is a link to the system's, its cots is not."""
    beside = Path(sys.executable).absolute().parent / "cots"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("cots")
    if found:
        return Path(found).absolute()
    raise CotsError(f"no cots command beside {sys.executable} or on PATH: install cots with pip "
                    "(`make install`), then run `.venv/bin/cots desktop install`")


def exec_argument(text: str) -> str:
    """One argument of an Exec line: in double quotes, with ``"`$\\`` escaped, when it holds a reserved
    character; ``%`` doubled (field codes)."""
    text = text.replace("%", "%%")
    if not EXEC_RESERVED.intersection(text):
        return text
    return '"' + "".join("\\" + c if c in '"`$\\' else c for c in text) + '"'


def string_value(text: str) -> str:
    """A desktop-entry string value: backslashes escaped (applied after the Exec quoting, as the spec says)."""
    return text.replace("\\", "\\\\")


def entry_text(command: Path) -> str:
    """The shipped entry with Exec and TryExec pointing at ``command``, marked as written by this command."""
    path = str(command)
    if any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in path):  # control characters, bytes not UTF-8
        raise CotsError(f"the cots command's path {path!r} cannot go into a launcher entry (it holds control "
                        "characters or bytes that are not UTF-8): install cots in a folder with a plain name")
    lines = []
    for line in resource_path("desktop", "cots.desktop").read_text(encoding="utf-8").splitlines():
        if line.startswith("Exec="):
            line = "Exec=" + string_value(exec_argument(path) + " gui")
        elif line.startswith("TryExec="):
            line = "TryExec=" + string_value(path)
        lines.append(line)
    return "\n".join([*lines, INSTALLED_MARK, ""])


# -- writing and removing ---------------------------------------------------------------------------
def _write(path: Path, data: bytes) -> None:
    """Write through a temporary file beside ``path``: an interrupted install leaves no half-written file."""
    part = path.with_name(f".{path.name}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(data)
        os.replace(part, path)
    except OSError as error:
        with contextlib.suppress(OSError):  # the folder may not exist, or be a file
            part.unlink()
        raise CotsError(f"cannot write {path}: {error.strerror or error} (set XDG_DATA_HOME to a folder "
                        "you can write)") from error


def _ours(entry: Path) -> bool:
    return INSTALLED_MARK in entry.read_text(encoding="utf-8", errors="replace").splitlines()


def install(root: Path, command: Path) -> list[Path]:
    """Write the entry that starts ``command`` and the icons under ``root``; the paths written, the entry first."""
    entry = entry_path(root)
    if entry.exists() and not _ours(entry):
        raise CotsError(f"{entry} exists and was not written by `cots desktop install`: move it away first")
    text = entry_text(command)
    written = []
    for target, source in icon_files(root).items():  # the icons first: the entry names them
        _write(target, source.read_bytes())
        written.append(target)
    _write(entry, text.encode("utf-8"))
    refresh_caches(root)
    return [entry, *written]


def uninstall(root: Path) -> list[Path]:
    """Remove what ``install`` wrote under ``root`` (not the folders, which may hold other apps' files)."""
    entry = entry_path(root)
    if entry.exists() and not _ours(entry):
        raise CotsError(f"{entry} was not written by `cots desktop install`: left as it is")
    removed = []
    for path in [entry, *icon_files(root)]:
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            pass
        except OSError as error:
            raise CotsError(f"cannot remove {path}: {error.strerror or error}") from error
    refresh_caches(root)
    return removed


def refresh_caches(root: Path) -> None:
    """Refresh the desktop's caches of these folders where one exists (an outdated cache can hide the
    change). None is created: uninstall then leaves the folders as install found them. Tools that are
    not installed, or fail, are skipped; desktops also watch these folders themselves."""
    for (tool, *options), folder, cache in CACHE_TOOLS:
        program = shutil.which(tool)
        if program and (root / folder / cache).is_file():
            try:
                subprocess.run([program, *options, str(root / folder)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=60, check=False)
            except (OSError, subprocess.SubprocessError):
                pass


# -- the commands -----------------------------------------------------------------------------------
def _check_platform() -> None:
    if sys.platform in ("win32", "darwin"):
        raise CotsError("launcher entries are for Linux and other freedesktop.org desktops; on this system "
                        "start the app with `cots gui`")


def cmd_install(args: argparse.Namespace) -> int:
    _check_platform()
    root, command = data_home(), cots_command()
    entry, *icons = install(root, command)
    print(f"installed cots in the application launcher: {entry}")
    print(f"  it starts: {command} gui")
    print(f"  {len(icons)} icons under {root / 'icons' / 'hicolor'}")
    print("`cots desktop uninstall` removes them")
    return 0


def cmd_uninstall(args: argparse.Namespace) -> int:
    removed = uninstall(data_home())
    if not removed:
        print("nothing to remove: cots is not in the application launcher")
    for path in removed:
        print(f"removed {path}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    print(entry_text(cots_command()), end="")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    entry = entry_path(data_home())
    if entry.exists():
        print(f"cots is in the application launcher: {entry}")
    else:
        print("cots is not in the application launcher: `cots desktop install` adds it")
    return 0
