"""The layer tree of the current representation: name, kind, output shape, stride and receptive
field of every module, with a name filter."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem

from ...core.representations import LayerInfo, Representation

COLUMNS = ("Layer", "Kind", "Stride", "RF", "Output")
STRIDE, RF, OUTPUT = 2, 3, 4

class LayerTree(QTreeWidget):
    layerChosen = Signal(str)
    rowsInView = Signal()          # the rows in view changed (scrolled, expanded, filtered, filled); settled


    def __init__(self, parent=None):
        super().__init__(parent)
        self.shapes_size = 0                          # the input size the shapes are for (0: none yet)
        self.rep_name = ""                            # the representation whose layers are shown
        self.rep: Representation | None = None        # and the object itself (a HOG with other cells is another)
        self.setColumnCount(len(COLUMNS))
        # Output last: a transformer's "1 class + 4 registers + 37×37 patches × 384" runs on to the
        # right without hiding the stride and receptive field (the dock is narrow).
        self.setHeaderLabels(list(COLUMNS))
        self.headerItem().setToolTip(STRIDE, "Input pixels per output cell")
        self.headerItem().setToolTip(RF, "Receptive field in pixels of one output cell: the input pixels the "
                                        "centre cell's gradient reaches (computed in the background for the "
                                        "rows in view)")
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self._items: dict[str, QTreeWidgetItem] = {}
        self.itemClicked.connect(self._clicked)
        self.currentItemChanged.connect(lambda cur, _prev: cur is not None and self._clicked(cur))
        self._current = ""
        # Receptive fields cost a backward pass each (~25 ms at 96 px): they are computed for the
        # rows in view, once the view has settled for a moment, not for all ~270 rows at once.
        self._settle = QTimer(self, singleShot=True, interval=150)
        self._settle.timeout.connect(self.rowsInView)
        self.verticalScrollBar().valueChanged.connect(self._settle.start)
        self.itemExpanded.connect(self._settle.start)
        self.itemCollapsed.connect(self._settle.start)

    def show_pending(self, title: str, size: int) -> None:
        """Another representation's layers are not left up while this one's shapes are computed."""
        self.clear()
        self._items.clear()
        self.rep_name, self.rep = "", None
        self.addTopLevelItem(QTreeWidgetItem([f"{title}: computing the layer shapes at {size} px…"]))

    def populate(self, rep: Representation, size: int, current: str) -> None:
        self.shapes_size = size                       # the input size the shapes are for
        self.rep_name, self.rep = rep.name, rep
        self.blockSignals(True)
        self.clear()
        self._items.clear()
        for root in rep.layer_tree(size):
            self.addTopLevelItem(self._make(root))
        self.blockSignals(False)
        for c in range(len(COLUMNS)):
            self.resizeColumnToContents(c)
        self.select(current)
        self._settle.start()

    def rows_in_view(self) -> list[str]:
        """The layers whose rows are on screen now (not filtered out, not inside a collapsed
        parent, inside the viewport), top to bottom."""
        area = self.viewport().rect()
        return [name for name, item in self._items.items()
                if not item.isHidden() and self.visualItemRect(item).intersects(area)]

    def resizeEvent(self, e) -> None:
        super().resizeEvent(e)
        self._settle.start()

    def set_receptive_field(self, name: str, rf: int | None) -> None:
        item = self._items.get(name)
        if item is not None:
            text = "" if rf is None else str(rf)
            item.setText(RF, text)
            if self.fontMetrics().horizontalAdvance(text) + 16 > self.columnWidth(RF):
                self.resizeColumnToContents(RF)          # filled after the tree was sized: "224", not "2…"

    def filter(self, text: str) -> int:
        """Show only layers whose name, alias or kind contains ``text`` (and their ancestors); returns
        the number of matches."""
        text = text.strip().lower()
        matches = 0

        def visit(item: QTreeWidgetItem) -> bool:
            nonlocal matches
            own = not text or any(text in (item.text(c) or "").lower() for c in (0, 1)) or \
                text in str(item.data(0, Qt.ItemDataRole.UserRole)).lower()
            shown_child = False
            for child in (item.child(i) for i in range(item.childCount())):
                shown_child |= child is not None and visit(child)
            if own and text:
                matches += 1
            item.setHidden(not (own or shown_child))
            if text and shown_child:
                item.setExpanded(True)
            return own or shown_child

        for top in (self.topLevelItem(i) for i in range(self.topLevelItemCount())):
            if top is not None:
                visit(top)
        self._settle.start()
        return matches

    def _make(self, info: LayerInfo) -> QTreeWidgetItem:
        label = info.name.rpartition(".")[2] if info.depth else info.name
        if info.aliases:
            label += f"  ({', '.join(info.aliases)})"
        item = QTreeWidgetItem([label, info.kind, str(info.stride or ""), "", info.shape_text()])
        item.setData(0, Qt.ItemDataRole.UserRole, info.name)
        item.setToolTip(0, info.name)
        item.setToolTip(OUTPUT, info.shape_text())
        if not info.fits:
            item.setForeground(OUTPUT, QBrush(QColor("#c0392b")))
            item.setToolTip(OUTPUT, info.error or "this module does not run in the forward pass")
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
