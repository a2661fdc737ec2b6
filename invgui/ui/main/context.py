"""What every helper of the main window shares, handed over as one object instead of a dozen
callbacks: the controller (runs, queue, worker), the observed state (``core.state.WindowState``:
views subscribe to its fields), the background thread for short jobs, and the window itself for
what only it does — the parent of dialogs, its status bar, its error dialog, opening an image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...core.state import WindowState


@dataclass(frozen=True)
class Context:
    controller: Any                         # ui.controller.Controller
    state: WindowState
    background: Any                         # ui.background.Background
    window: Any                             # ui.main_window.MainWindow

    def say(self, text: str, ms: int = 8000) -> None:
        """A message in the status bar for ``ms`` milliseconds."""
        self.window.statusBar().showMessage(text, ms)

    def hush(self) -> None:
        self.window.statusBar().clearMessage()

    def progress(self, text: str) -> None:
        """The status bar's progress field ("idle", "iteration n/N · s left", "failed", …)."""
        self.window.progress.setText(text)

    def show_error(self, title: str, text: str, detail: str = "") -> None:
        self.window.show_error(title, text, detail)

    def open_image(self, source: str) -> bool:
        return self.window.open_image(source)
