"""The run list: every run of the session, its state and headline metrics, with a context menu."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QMenu

from ..core.session import Run, distinct_labels

MARKS = {"queued": "⏳", "running": "▶", "done": "✓", "stopped": "■", "failed": "✗"}


class RunList(QListWidget):
    runSelected = Signal(str)            # run id
    renameRequested = Signal(str)
    duplicateRequested = Signal(str)
    rerunRequested = Signal(str)
    deleteRequested = Signal(str)
    exportRequested = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("run_list")
        self.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.currentItemChanged.connect(self._on_current)
        self.setToolTip("Every run of this session. Select one to show it; right-click to rename, duplicate "
                        "with other parameters, re-run, export or delete; select several to compare them.")

    def _item(self, run_id: str) -> QListWidgetItem | None:
        for i in range(self.count()):
            if self.item(i).data(Qt.ItemDataRole.UserRole) == run_id:
                return self.item(i)
        return None

    def has(self, run_id: str) -> bool:
        return self._item(run_id) is not None

    def add(self, run: Run) -> None:
        item = QListWidgetItem()
        item.setData(Qt.ItemDataRole.UserRole, run.id)
        self.addItem(item)
        self.update_run(run)

    def update_run(self, run: Run) -> None:
        item = self._item(run.id)
        if item is None:
            return
        item.setText(f"{MARKS.get(run.state, '?')} {run.label()}\n    {run.summary()}")
        item.setToolTip(run.message or run.summary())

    def remove(self, run_id: str) -> None:
        item = self._item(run_id)
        if item is not None:
            self.takeItem(self.row(item))

    def select(self, run_id: str) -> None:
        """Make ``run_id`` the current and only selected run (a new run replaces the selection)."""
        item = self._item(run_id)
        if item is not None:
            self.clearSelection()
            self.setCurrentItem(item)
            item.setSelected(True)

    def relabel(self, runs: list[Run]) -> None:
        """Every item's text, with what differs appended to labels that would otherwise be equal."""
        labels = distinct_labels(runs)
        for run in runs:
            item = self._item(run.id)
            if item is not None:
                item.setText(f"{MARKS.get(run.state, '?')} {labels[run.id]}\n    {run.summary()}")
                item.setToolTip(run.message or run.summary())

    def selected_ids(self) -> list[str]:
        return [it.data(Qt.ItemDataRole.UserRole) for it in self.selectedItems()]

    def current_id(self) -> str | None:
        item = self.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _on_current(self, item, _previous) -> None:
        if item is not None:
            self.runSelected.emit(item.data(Qt.ItemDataRole.UserRole))

    def _menu(self, pos) -> None:
        item = self.itemAt(pos)
        if item is None:
            return
        run_id = item.data(Qt.ItemDataRole.UserRole)
        menu = QMenu(self)
        for text, signal in (("Rename…", self.renameRequested), ("Duplicate with these parameters",
                                                                  self.duplicateRequested),
                             ("Re-run", self.rerunRequested), ("Export…", self.exportRequested),
                             ("Delete", self.deleteRequested)):
            act = QAction(text, menu)
            act.triggered.connect(lambda _=False, s=signal: s.emit(run_id))
            menu.addAction(act)
        menu.popup(self.viewport().mapToGlobal(pos))
