"""Where the window's file dialogs open: a folder per kind of file (exports, sessions, decoders,
contact sheets), remembered from the last one chosen, and at first a folder of invgui's under the
user's documents — never the process's working directory (a source checkout, often), which is
where relative names landed before.  ``INVGUI_DATA`` moves that first folder."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths
from PySide6.QtWidgets import QFileDialog

from ...core.resources import state_dir

KINDS = ("exports", "sessions", "decoders", "sheets", "results")


def _settings() -> QSettings:
    return QSettings(str(state_dir() / "settings.ini"), QSettings.Format.IniFormat)


def data_root() -> Path:
    """``$INVGUI_DATA``, or ``Documents/invgui`` in the user's home."""
    given = os.environ.get("INVGUI_DATA")
    if given:
        return Path(given)
    docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    return Path(docs or Path.home()) / "invgui"


def folder(kind: str) -> Path:
    """The folder a dialog for ``kind`` opens in: the last one chosen, else invgui's own (made)."""
    last = _settings().value(f"folders/{kind}")
    if last and Path(str(last)).is_dir():
        return Path(str(last))
    path = data_root() / kind
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return Path.home()
    return path


def suggest(kind: str, name: str) -> str:
    """The path a save dialog proposes: ``name`` in the folder of ``kind``, without the characters
    file systems refuse or shells trip on (``timm:swin…`` gave a ':' that Windows and SMB shares refuse)."""
    import re

    return str(folder(kind) / re.sub(r'[\\/:*?"<>|\s]+', "_", name))


def remember(kind: str, path: str | os.PathLike) -> None:
    """The folder of a path the user chose, for the next dialog of ``kind``."""
    s = _settings()
    s.setValue(f"folders/{kind}", str(Path(path).parent))
    s.sync()


def save_dialog(parent, title: str, kind: str, name: str, filters: str) -> tuple[str, str]:
    """A save dialog proposing ``name`` in the folder of ``kind``; the folder chosen is remembered.
    (path, chosen filter); path "" when cancelled."""
    path, chosen = QFileDialog.getSaveFileName(parent, title, suggest(kind, name), filters)
    if path:
        remember(kind, path)
    return path, chosen


def open_dialog(parent, title: str, kind: str, filters: str) -> str:
    """An open dialog in the folder of ``kind``; the folder chosen is remembered ("" when cancelled)."""
    path, _ = QFileDialog.getOpenFileName(parent, title, str(folder(kind)), filters)
    if path:
        remember(kind, path)
    return path
