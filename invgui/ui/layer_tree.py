"""The layer tree of the current representation: name, kind and output shape of every module."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem

from ..core.representations import LayerInfo, Representation


class LayerTree(QTreeWidget):
    layerChosen = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setColumnCount(3)
        self.setHeaderLabels(["Layer", "Kind", "Output"])
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self._items: dict[str, QTreeWidgetItem] = {}
        self.itemClicked.connect(self._clicked)
        self.currentItemChanged.connect(lambda cur, _prev: cur is not None and self._clicked(cur))
        self._current = ""

    def populate(self, rep: Representation, size: int, current: str) -> None:
        self.blockSignals(True)
        self.clear()
        self._items.clear()
        for root in rep.layer_tree(size):
            self.addTopLevelItem(self._make(root))
        self.blockSignals(False)
        for c in range(3):
            self.resizeColumnToContents(c)
        self.select(current)

    def _make(self, info: LayerInfo) -> QTreeWidgetItem:
        label = info.name.rpartition(".")[2] if info.depth else info.name
        if info.aliases:
            label += f"  ({', '.join(info.aliases)})"
        item = QTreeWidgetItem([label, info.kind, info.shape_text()])
        item.setData(0, Qt.ItemDataRole.UserRole, info.name)
        item.setToolTip(0, info.name)
        if not info.fits:
            item.setForeground(2, QBrush(QColor("#c0392b")))
            item.setToolTip(2, info.error or "this module does not run in the forward pass")
        self._items[info.name] = item
        for child in info.children:
            item.addChild(self._make(child))
        return item

    def _clicked(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        name = item.data(0, Qt.ItemDataRole.UserRole)
        if name and name != self._current:
            self._current = name
            self.layerChosen.emit(name)

    def select(self, name: str) -> None:
        item = self._items.get(name)
        if item is None:
            return
        self._current = name
        self.blockSignals(True)
        parent = item.parent()
        while parent is not None:
            parent.setExpanded(True)
            parent = parent.parent()
        self.setCurrentItem(item)
        self.scrollToItem(item)
        self.blockSignals(False)

    def current_layer(self) -> str:
        return self._current
