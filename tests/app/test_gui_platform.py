"""`cots gui` where Qt's xcb platform plugin cannot load: one line naming the packages, before Qt starts."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app.gui.platform_check import XCB_PACKAGES, _ldd, missing_libraries, xcb_plugin, xcb_problem

ROOT = Path(__file__).resolve().parents[2]
LDD_MISSING = ("\tlibxcb-cursor.so.0 => /lib/libxcb-cursor.so.0 (0x1)\n\tlibxcb-icccm.so.4 => not found\n"
               "\tlibxcb-keysyms.so.1 => not found\n\tlibxcb-icccm.so.4 => not found\n")


def test_missing_libraries_name_debian_and_fedora_packages():
    message = xcb_problem({"DISPLAY": ":0"}, plugin=Path("libqxcb.so"), ldd=lambda _: LDD_MISSING, platform="linux")
    assert message is not None and "\n" not in message
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in message  # each once
    assert "apt install libxcb-icccm4 libxcb-keysyms1" in message
    assert "dnf install xcb-util-keysyms xcb-util-wm" in message


def test_without_ldd_each_library_is_tried():
    missing = missing_libraries(Path("libqxcb.so"), ldd=lambda _: None,
                                cannot_load=lambda soname: soname == "libxcb-cursor.so.0")
    assert missing == ["libxcb-cursor.so.0"]
    assert "libxcb-cursor0" in xcb_problem({}, Path("x"), lambda _: None, lambda s: s == "libxcb-cursor.so.0",
                                           platform="linux")


def test_offscreen_wayland_complete_systems_and_other_oses_are_not_stopped():
    def missing(_):
        return LDD_MISSING

    plugin = Path("libqxcb.so")
    assert xcb_problem({"QT_QPA_PLATFORM": "offscreen"}, plugin, missing, platform="linux") is None
    assert xcb_problem({"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}, plugin, missing,
                       platform="linux") is None
    assert xcb_problem({}, plugin, missing, platform="darwin") is None
    assert xcb_problem({}, plugin, lambda _: "\tlibxcb.so.1 => /lib/libxcb.so.1 (0x1)\n", platform="linux") is None
    assert xcb_problem({"QT_QPA_PLATFORM": "xcb"}, plugin, missing, platform="linux") is not None


def test_the_real_plugin_check_agrees_with_loading_each_library():
    plugin = xcb_plugin()
    assert plugin is not None and plugin.name == "libqxcb.so"
    by_ldd = set(missing_libraries(plugin)) & set(XCB_PACKAGES)
    by_loading = set(missing_libraries(plugin, ldd=lambda _: None))
    assert by_ldd == by_loading if _ldd(plugin) is not None else True


def test_cots_gui_prints_one_line_and_exits_nonzero_before_qt(tmp_path):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "ldd").write_text(f"#!/bin/sh\nprintf '{LDD_MISSING}'\n")
    (fake_bin / "ldd").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env.update(PATH=f"{fake_bin}{os.pathsep}{env.get('PATH', '')}", DISPLAY=":99", COTS_DATA_DIR=str(tmp_path / "d"))
    result = subprocess.run([sys.executable, "-m", "app", "gui", "--db", str(tmp_path / "lib.db")], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cots: error: Qt's X11 (xcb) platform cannot start"), result.stderr
    assert "libxcb-icccm4" in lines[0] and "xcb-util-wm" in lines[0]
    assert not (tmp_path / "lib.db").exists()  # nothing was started
