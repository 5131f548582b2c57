"""The GUI's settings, declared once with their types and defaults, with versioned upgrades (after
Picard's ``options.py``). Stored with QSettings (an INI file in tests)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QSettings

VERSION = 1


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any


SETTINGS = {s.name: s for s in (
    Setting("model", str, "cots-lite"),
    Setting("db_path", str, ""),
    Setting("show_weaker", bool, False),
    Setting("sort", str, "relevance"),
    Setting("first_run_done", bool, False),
    Setting("geometry", bytes, b""),
)}


def _upgrade_to_1(store: QSettings) -> None:
    """Version 0 had no stored settings worth keeping."""


UPGRADES = {1: _upgrade_to_1}


class Settings:
    def __init__(self, store: QSettings | None = None):
        self.store = store or QSettings("cots", "cots")
        version = int(self.store.value("version", 0))
        for target in range(version + 1, VERSION + 1):
            UPGRADES[target](self.store)
        self.store.setValue("version", VERSION)

    def __getitem__(self, name: str) -> Any:
        setting = SETTINGS[name]
        value = self.store.value(name, setting.default)
        if setting.type is bool and isinstance(value, str):
            return value.lower() in ("true", "1")
        if setting.type is bytes:
            return bytes(value) if value else b""
        return setting.type(value)

    def __setitem__(self, name: str, value: Any) -> None:
        SETTINGS[name]  # unknown names are a programming error
        self.store.setValue(name, value)

    def sync(self) -> None:
        self.store.sync()
