"""The run list: every run of the session, its state and headline metrics, with a context menu."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QMenu

from ...core.results import warnings
from ...core.session import Run, distinct_labels

MARKS = {"queued": "⏳", "running": "▶", "done": "✓", "stopped": "■", "failed": "✗"}
WARNED = "⚠"            # done, but the run failed quietly (core.results.assess): never a ✓


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
        # Every line is two lines of text: with uniform sizes Qt lays the list out from one item, not
        # by measuring every item on each change (250 runs: 12 → 4 ms per changed line, in C++ on the
        # GUI thread, invisible to Python profilers).
        self.setUniformItemSizes(True)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.currentItemChanged.connect(self._on_current)
        self._items: dict[str, QListWidgetItem] = {}    # run id -> its line
        self._runs: dict[str, Run] = {}
        self._base: dict[str, str] = {}                 # run id -> its plain label
        self._shown: dict[str, str] = {}                # run id -> the label its line shows
        self._dirty: set[str] = set()                   # labels whose runs need relabelling
        self._relabel_timer = QTimer(self, singleShot=True, timeout=self._flush)
        self.setToolTip("Every run of this session. Select one to show it; right-click to rename, duplicate "
                        "with other parameters, re-run, export or delete; select several to compare them.")

    def _item(self, run_id: str) -> QListWidgetItem | None:
        return self._items.get(run_id)

    def has(self, run_id: str) -> bool:
        return run_id in self._items

    def add(self, run: Run) -> None:
        item = QListWidgetItem()
        item.setData(Qt.ItemDataRole.UserRole, run.id)
        self.addItem(item)
        self._items[run.id] = item
        self.update_run(run)

    def show_runs(self, runs: list[Run]) -> None:
        """Exactly ``runs`` (a session opened or restored), labelled in one pass."""
        self.clear()
        for run in runs:
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, run.id)
            self.addItem(item)
            self._items[run.id] = item
            self._runs[run.id], self._base[run.id] = run, run.label()
        self._dirty.update(self._base.values())
        self._flush()

    def update_run(self, run: Run) -> None:
        """``run`` was added or changed: its line now; the runs sharing its label (before or after
        the change) get what differs appended — at once when no other run shares it, otherwise
        once for a burst of changes (queueing a sweep of N alike runs is N updates, not N²)."""
        if run.id not in self._items:
            return
        old, label = self._base.get(run.id), run.label()
        self._runs[run.id], self._base[run.id] = run, label
        if old == label and run.id in self._shown and label not in self._dirty:
            # Its state or result changed, not its request: what tells it from its twins is unchanged
            # (relabelling the whole group here cost ~8 ms per state change with 50 alike runs).
            self._set_text(run, self._shown[run.id])
            return
        if old is not None and old != label:
            self._dirty.add(old)                    # its former twins may no longer need the suffix
        if sum(1 for v in self._base.values() if v == label) == 1:
            self._set_text(run, label)
        else:
            self._dirty.add(label)
        if self._dirty and not self._relabel_timer.isActive():
            self._relabel_timer.start(0)

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, set()
        if not dirty:
            return
        group = [r for rid, r in self._runs.items() if self._base[rid] in dirty]
        labels = distinct_labels(group)
        for run in group:
            self._set_text(run, labels[run.id])

    def _set_text(self, run: Run, label: str) -> None:
        item = self._items.get(run.id)
        if item is not None:
            self._shown[run.id] = label
            warned = run.state == "done" and run.result is not None and bool(warnings(run.result))
            item.setText(f"{WARNED if warned else MARKS.get(run.state, '?')} {label}\n    {run.summary()}")
            item.setToolTip(run.message or run.summary())

    def remove(self, run_id: str) -> None:
        item = self._items.pop(run_id, None)
        if item is not None:
            self.takeItem(self.row(item))
        self._runs.pop(run_id, None)
        self._shown.pop(run_id, None)
        label = self._base.pop(run_id, None)
        if label is not None:
            self._dirty.add(label)
            self._relabel_timer.start(0)

    def clear(self) -> None:
        super().clear()
        self._items.clear()
        self._runs.clear()
        self._base.clear()
        self._shown.clear()
        self._dirty.clear()

    def select(self, run_id: str) -> None:
        """Make ``run_id`` the current and only selected run (a new run replaces the selection)."""
        item = self._item(run_id)
        if item is not None:
            self.clearSelection()
            self.setCurrentItem(item)
            item.setSelected(True)

    def selected_ids(self) -> list[str]:
        return [it.data(Qt.ItemDataRole.UserRole) for it in self.selectedItems()]

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
