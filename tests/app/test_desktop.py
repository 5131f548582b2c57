"""`cots desktop install|uninstall|show`: the launcher entry and the icons, written into a temporary
$XDG_DATA_HOME through the real CLI, checked the way a desktop reads them, and removed again."""
from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cots_resources import APP_ICON_SIZES, resource_path
from PIL import Image

from app.cli import main
from app.cli.desktop import data_home, entry_text


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "share"
    monkeypatch.setenv("XDG_DATA_HOME", str(root))
    return root


def read_entry(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(path.read_text(encoding="utf-8"))
    return dict(parser["Desktop Entry"])


def validate(entry: Path) -> None:
    """desktop-file-validate (Debian: desktop-file-utils) on ``entry``; CI installs it (.ci/run), so there
    its absence fails the test instead of skipping it."""
    tool = shutil.which("desktop-file-validate")
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("desktop-file-validate is missing: install desktop-file-utils (.ci/run does)")
        pytest.skip("desktop-file-validate is not installed (Debian package desktop-file-utils)")
    done = subprocess.run([tool, str(entry)], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def icons(root: Path) -> list[Path]:
    hicolor = root / "icons" / "hicolor"
    return [*(hicolor / f"{s}x{s}" / "apps" / "cots.png" for s in APP_ICON_SIZES),
            hicolor / "scalable" / "apps" / "cots.svg"]


def test_install_writes_an_entry_that_starts_the_app_and_the_icons_at_their_sizes(data_dir, capsys):
    assert main(["desktop", "install"]) == 0
    entry = data_dir / "applications" / "cots.desktop"
    assert str(entry) in capsys.readouterr().out
    fields = read_entry(entry)
    program, *arguments = shlex.split(fields["Exec"])  # no backslashes or % here: shell quoting reads the same
    assert Path(program).is_absolute() and Path(program).is_file() and os.access(program, os.X_OK)
    assert Path(program).name == "cots" and arguments == ["gui"]
    assert fields["TryExec"] == program
    assert (fields["Name"], fields["Icon"], fields["StartupWMClass"], fields["Terminal"]) == (
        "cots", "cots", "cots", "false")
    assert fields["Categories"] == "Graphics;Photography;" and fields["GenericName"] == "Photo search"
    for size, png in zip(APP_ICON_SIZES, icons(data_dir)):
        with Image.open(png) as image:
            assert (image.format, image.size) == ("PNG", (size, size))
    assert icons(data_dir)[-1].read_bytes() == resource_path("desktop", "cots.svg").read_bytes()


def test_the_entry_passes_desktop_file_validate(data_dir):
    validate(resource_path("desktop", "cots.desktop"))  # as shipped, for packagers
    assert main(["desktop", "install"]) == 0
    validate(data_dir / "applications" / "cots.desktop")


def test_exec_quotes_a_path_with_reserved_characters_as_the_spec_says(tmp_path):
    text = entry_text(Path("/home/a b/$env\\x%/bin/cots"))
    lines = text.splitlines()
    # quoted for the space, `$` and `\` escaped inside the quotes, % doubled; then every `\` doubled again
    # by the string escaping applied before the quoting (so one literal backslash is four)
    assert 'Exec="/home/a b/\\\\$env\\\\\\\\x%%/bin/cots" gui' in lines
    assert "TryExec=/home/a b/$env\\\\x%/bin/cots" in lines
    (tmp_path / "cots.desktop").write_text(text, encoding="utf-8")
    validate(tmp_path / "cots.desktop")


def test_uninstall_removes_what_install_wrote_and_nothing_else(data_dir, capsys):
    others = [data_dir / "applications" / "other.desktop", data_dir / "icons" / "hicolor" / "48x48" / "apps" / "other.png"]
    for other in others:
        other.parent.mkdir(parents=True)
        other.write_text("someone else's")
    assert main(["desktop", "install"]) == 0
    assert main(["desktop", "uninstall"]) == 0
    assert not (data_dir / "applications" / "cots.desktop").exists()
    assert not any(path.exists() for path in icons(data_dir))
    assert all(other.read_text() == "someone else's" for other in others)
    assert main(["desktop", "uninstall"]) == 0  # twice is fine
    assert "nothing to remove" in capsys.readouterr().out


def test_an_entry_it_did_not_write_is_neither_replaced_nor_removed(data_dir, capsys):
    foreign = data_dir / "applications" / "cots.desktop"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("[Desktop Entry]\nType=Application\nName=another cots\nExec=cots-other\n")
    before = foreign.read_bytes()
    assert main(["desktop", "install"]) == 2
    assert main(["desktop", "uninstall"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and all(line.startswith("cots: error: ") for line in err.splitlines())
    assert foreign.read_bytes() == before and not any(path.exists() for path in icons(data_dir))


def test_a_folder_it_cannot_write_is_one_line(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
    assert main(["desktop", "install"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cots: error: cannot write ") and err.count("\n") == 1 and "Traceback" not in err


def test_a_relative_or_empty_xdg_data_home_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for value in ("relative/share", ""):
        monkeypatch.setenv("XDG_DATA_HOME", value)
        assert data_home() == tmp_path / ".local" / "share"


def test_show_prints_the_entry_and_loads_neither_qt_nor_torch(tmp_path):
    probe = ("import sys\nfrom app.cli import main\ncode = main(['desktop', 'show'])\n"
             "print(sorted(m for m in ('PySide6', 'torch') if m in sys.modules))\nsys.exit(code)")
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("[Desktop Entry]\n") and done.stdout.splitlines()[-1] == "[]"
    assert not any(tmp_path.iterdir())  # shown, not written


def test_a_cache_the_desktop_keeps_is_refreshed_and_none_is_created(data_dir, tmp_path, monkeypatch):
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("update-desktop-database", "gtk-update-icon-cache"):  # stand-ins that log their arguments
        (tools / tool).write_text(f'#!/bin/sh\necho {tool} "$@" >> "{tmp_path}/calls"\n')
        (tools / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    assert main(["desktop", "install"]) == 0
    assert not (tmp_path / "calls").exists()  # no cache there: nothing to refresh, and none is created
    (data_dir / "icons" / "hicolor" / "icon-theme.cache").write_bytes(b"")
    assert main(["desktop", "uninstall"]) == 0
    assert (tmp_path / "calls").read_text().split() == [
        "gtk-update-icon-cache", "-q", "-t", "-f", str(data_dir / "icons" / "hicolor")]


def _processes_with(variable: str) -> list[int]:
    """Pids of the processes whose environment holds ``variable`` (NAME=VALUE)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if variable.encode() in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


@pytest.mark.slow  # the app's start in a fresh process (~5 s)
def test_a_desktop_launcher_starts_the_app_from_the_installed_entry(data_dir, tmp_path):
    """`gio launch` (GLib's launcher, what GNOME's and many docks' menus use; Debian: libglib2.0-bin) reads
    the installed entry as a menu would and runs its Exec line: the app starts and opens its library."""
    import time

    tool = shutil.which("gio")
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("gio is missing: install libglib2.0-bin (.ci/run does)")
        pytest.skip("gio is not installed (Debian package libglib2.0-bin)")
    assert main(["desktop", "install"]) == 0
    marker = f"COTS_DATA_DIR={tmp_path / 'launched'}"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"),
               COTS_DATA_DIR=str(tmp_path / "launched"))
    errors = tmp_path / "launch.err"
    with open(errors, "w") as stream:  # not a pipe: the app inherits it and would hold it open
        done = subprocess.run([tool, "launch", str(data_dir / "applications" / "cots.desktop")], env=env,
                              stdout=subprocess.DEVNULL, stderr=stream, timeout=60)
    assert done.returncode == 0, errors.read_text()
    library = tmp_path / "launched" / "libraries" / "library.db"
    try:
        deadline = time.monotonic() + 90
        while not library.is_file() and time.monotonic() < deadline:  # the window opens its default library
            time.sleep(0.5)
        running = _processes_with(marker)
        assert library.is_file() and running, f"the launched app did not open its library: {errors.read_text()}"
        time.sleep(2)
        assert _processes_with(marker), "the launched app exited"
    finally:
        for pid in _processes_with(marker):
            try:
                os.kill(pid, 15)
            except OSError:
                pass
