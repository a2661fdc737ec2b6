"""The compare view's grid of reconstructions: only the cells in sight exist.

A session of a few hundred runs makes a grid of a few hundred cells.  One pyqtgraph ViewBox per
run, all laid out by a QGraphicsGridLayout and linked for a shared zoom, made every change cost
O(runs): adding one run to a 200-cell grid took ~120 ms plus ~90 ms of painting, and one zoom
step propagated through 200 linked views.  Here the grid is a scrolled canvas of the grid's full
size in which only the cells that intersect the viewport (and one row/column around it) have a
ViewBox; scrolling hands cells that leave the view to those that enter it (a small pool), so work
per change, scroll or zoom step is O(cells in sight).  pyqtgraph offers no virtualised layout
(GraphicsLayout and QGraphicsGridLayout place every item), hence this module.  The shared zoom is
one range kept here and given to every cell in sight when the user zooms or pans any of them.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QScrollArea

from ...core import compare as C
from ...core.session import Run

MIN_CELL = 150                      # px: below this the grid scrolls instead of shrinking the cells
PAD, HEAD_H, HEAD_W, CAP_H, GAP, ROW_GAP = 4, 22, 24, 20, 8, 6
MARGIN = 1                          # rows/columns beyond the viewport that get cells (smooth scrolling)


_METRICS: list[QFontMetricsF] = []


def _elide(text: str, width: float) -> str:
    """``text`` shortened with "…" to fit ``width`` px in the captions' font (8 pt)."""
    if not _METRICS:                               # made once, after the QApplication exists
        font = QFont()
        font.setPointSizeF(8)
        _METRICS.append(QFontMetricsF(font))
    return _METRICS[0].elidedText(text, Qt.TextElideMode.ElideRight, max(0.0, width))


class _Cell:
    """A view box showing one run's first reconstruction, and its caption."""

    def __init__(self, host, zoomed):
        self.vb = pg.ViewBox(parent=host, lockAspect=True, invertY=True, enableMenu=False)
        self.item = pg.ImageItem(axisOrder="row-major", autoDownsample=True)
        self.vb.addItem(self.item)
        self.cap = pg.LabelItem("", parent=host, color="#333", size="8pt")
        self.vb.sigRangeChangedManually.connect(lambda _mask: zoomed(self))
        self.run_id: str | None = None
        self.result_id = 0
        self.text = ""                     # the whole caption (the tooltip)
        self.shown = ("", 0.0)             # what the cell draws: the caption elided to a width
        self.ranged = -1                   # the grid's range version this cell shows

    def show_run(self, run: Run, text: str) -> None:
        if run.id != self.run_id or id(run.result) != self.result_id:
            img = _images(run)[0]
            # uint8 with fixed levels: pyqtgraph does not rescale it on every paint.
            self.item.setImage((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), levels=(0, 255))
            # One unit wide whatever its pixel size (decoders may reconstruct at another size than
            # optimisation): one range then shows the same part of every image.
            h, w = img.shape[:2]
            self.item.setRect(QRectF(0, 0, 1.0, h / w))
            self.run_id, self.result_id = run.id, id(run.result)
        if text != self.text:
            self.text = text
            self.cap.setToolTip(text)

    def place(self, x: float, y: float, side: float) -> None:
        self.vb.setGeometry(QRectF(x, y, side, side))
        self.cap.setGeometry(QRectF(x, y + side, side, CAP_H))
        if self.shown != (self.text, side):
            # Elided to the cell: a ~150 px cell's caption ran into its neighbours' (the full
            # text is the tooltip).  The label's margins take a few pixels of the width.
            self.cap.setText(_elide(self.text, side - 2 * PAD - 4), color="#333", size="8pt")
            self.shown = (self.text, side)
        self.vb.show()
        self.cap.show()

    def hide(self) -> None:
        self.vb.hide()
        self.cap.hide()


class CellGrid(QScrollArea):
    """``set_grid(grid, nre)`` shows a :class:`core.compare.Grid`; ``views`` are the cells in sight."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.canvas = pg.GraphicsView(background="w")
        # The canvas is as large as the whole grid (thousands of pixels for a few hundred runs):
        # pyqtgraph's background cache is a pixmap of its full size, refilled whenever the grid
        # changes shape (~65 ms of the GUI thread per added row with 200 runs); a white fill of
        # the exposed part is cheap without it.
        self.canvas.setCacheMode(pg.GraphicsView.CacheModeFlag.CacheNone)
        self.host = pg.GraphicsWidget()
        self.canvas.setCentralItem(self.host)
        self.setWidget(self.canvas)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.grid: C.Grid | None = None
        self.nre: dict[str, float] = {}
        self.best: set[str] = set()                  # run ids marked ★: the closest of their column
        self.cells: dict[str, _Cell] = {}          # run id -> its cell, for the runs in sight
        self.views: list[pg.ViewBox] = []          # the view boxes in sight, in grid order
        self._pool: list[_Cell] = []
        self._labels: dict[tuple, pg.LabelItem] = {}
        self._side = MIN_CELL
        self._shape: tuple | None = None           # (rows, cols, port size) the geometry was made for
        self._range: tuple | None = None           # the user's zoom: (x range, y range); None: whole images
        self._aspect = 1.0
        self._range_version = 0                    # bumped when the range or the cells' size changes
        bands = []
        for _ in range(2):                         # behind the headers, which stay in sight
            band = QGraphicsRectItem(self.host)     # a sibling of the cells: above them, under the names
            band.setBrush(QBrush(QColor("white")))
            band.setPen(QPen(Qt.PenStyle.NoPen))
            band.setZValue(5)
            bands.append(band)
        self._top_band, self._left_band = bands
        for bar in (self.horizontalScrollBar(), self.verticalScrollBar()):
            bar.valueChanged.connect(lambda _v: self._place())

    # -- contents -------------------------------------------------------------------------------
    def set_grid(self, grid: C.Grid | None, nre: dict[str, float]) -> None:
        self.grid, self.nre = grid, nre
        self.best = C.best_per_column(grid, nre) if grid is not None else set()
        self.fit()

    def fit(self, force: bool = False) -> None:
        """Cells as large as the viewport allows (never under MIN_CELL px: the grid scrolls
        instead).  The user's zoom is kept unless the cells change size, or ``force``."""
        g, port = self.grid, self.viewport().size()
        if g is None or not g.cells:
            self.canvas.resize(port)
            self._shape = None
            self._place()
            return
        nr, nc = len(g.rows), len(g.cols)
        shape = (nr, nc, port.width(), port.height())
        aspect = max(_images(run).shape[1] / _images(run).shape[2] for run in g.cells.values())
        side = max(MIN_CELL, min((port.height() - 30 - nr * 26) // nr, (port.width() - 40) // nc - GAP))
        if force or side != self._side or aspect != self._aspect:
            self._range = None                     # whole images again
            self._range_version += 1
        self._side, self._aspect = side, aspect
        if shape != self._shape or force:
            self._shape = shape
            w, h = self._extent()
            self.canvas.resize(max(port.width(), w), max(port.height(), h))
        self._place()

    def _shown(self) -> C.Grid:
        """The grid drawn (what follows runs only while there is one)."""
        assert self.grid is not None
        return self.grid

    def _extent(self) -> tuple[int, int]:
        g = self._shown()
        return (2 * PAD + HEAD_W + len(g.cols) * (self._side + GAP),
                2 * PAD + HEAD_H + len(g.rows) * (self._side + CAP_H + ROW_GAP))

    def _origin(self, ri: int, ci: int) -> tuple[int, int]:
        return (PAD + HEAD_W + ci * (self._side + GAP), PAD + HEAD_H + ri * (self._side + CAP_H + ROW_GAP))

    def _in_sight(self) -> tuple[range, range]:
        g, port = self._shown(), self.viewport().size()
        vx, vy = self.horizontalScrollBar().value(), self.verticalScrollBar().value()
        cw, rh = self._side + GAP, self._side + CAP_H + ROW_GAP
        c0 = max(0, (vx - PAD - HEAD_W) // cw - MARGIN)
        c1 = min(len(g.cols) - 1, (vx + port.width() - PAD - HEAD_W) // cw + MARGIN)
        r0 = max(0, (vy - PAD - HEAD_H) // rh - MARGIN)
        r1 = min(len(g.rows) - 1, (vy + port.height() - PAD - HEAD_H) // rh + MARGIN)
        return range(r0, r1 + 1), range(c0, c1 + 1)

    def _place(self) -> None:
        """Give the cells in sight their runs and places; hand the others back to the pool."""
        g = self.grid
        for lab in self._labels.values():
            lab.hide()
        if g is None or not g.cells:
            for rid in list(self.cells):
                self._release(rid)
            self.views = []
            self._top_band.hide()
            self._left_band.hide()
            empty = self._label("empty", "No finished runs to compare: select runs in the run list, or queue a "
                                "sweep.", color="#444")
            empty.setGeometry(QRectF(PAD, PAD, max(200, self.viewport().width() - 2 * PAD), 30))
            empty.show()
            return
        rows, cols = self._in_sight()
        wanted = {(ri, ci): g.cells[(ri, ci)] for ri in rows for ci in cols if (ri, ci) in g.cells}
        ids = {run.id for run in wanted.values()}
        for rid in [r for r in self.cells if r not in ids]:
            self._release(rid)
        self.views = []
        for (ri, ci), run in sorted(wanted.items()):
            cell = self.cells.get(run.id)
            if cell is None:
                cell = self.cells[run.id] = self._pool.pop() if self._pool else _Cell(self.host, self._zoomed)
            cell.show_run(run, ("★ " if run.id in self.best else "") + C.caption(run, self.nre.get(run.id)))
            x, y = self._origin(ri, ci)
            cell.place(x, y, self._side)
            self.views.append(cell.vb)
        self._headers(rows, cols)
        for cell in self.cells.values():           # cells new in sight, or all after a resize / re-fit
            if cell.ranged != self._range_version:
                self._apply_range(cell)

    def _release(self, run_id: str) -> None:
        cell = self.cells.pop(run_id)
        cell.hide()
        if len(self._pool) < 64:
            self._pool.append(cell)
        else:
            for it in (cell.vb, cell.cap):
                it.deleteLater()

    def _label(self, kind: str, text: str, **opts) -> pg.LabelItem:
        key = (kind, text)
        if key not in self._labels:
            self._labels[key] = lab = pg.LabelItem(text, parent=self.host, **opts)
            lab.setZValue(6)
        return self._labels[key]

    def _headers(self, rows: range, cols: range) -> None:
        """Column names on top and row names on the left, kept in sight while the grid scrolls."""
        g, port = self._shown(), self.viewport().size()
        vx, vy = self.horizontalScrollBar().value(), self.verticalScrollBar().value()
        self._top_band.setRect(QRectF(vx, vy, port.width(), PAD + HEAD_H))
        self._left_band.setRect(QRectF(vx, vy, PAD + HEAD_W, port.height()))
        self._top_band.show()
        self._left_band.show()
        for ci in cols:
            lab = self._label("col", g.cols[ci], color="#111", bold=True)
            lab.setGeometry(QRectF(self._origin(0, ci)[0], vy + PAD, self._side, HEAD_H))
            lab.show()
        for ri in rows:
            lab = self._label("row", g.rows[ri], color="#111", bold=True, angle=-90)
            lab.setGeometry(QRectF(vx + PAD, self._origin(ri, 0)[1], HEAD_W, self._side))
            lab.show()

    # -- shared zoom ------------------------------------------------------------------------------
    def _apply_range(self, cell: _Cell) -> None:
        vb, cell.ranged = cell.vb, self._range_version
        if self._range is None:
            vb.setRange(xRange=(0, 1), yRange=(0, self._aspect), padding=0.02)
        else:
            vb.setRange(xRange=self._range[0], yRange=self._range[1], padding=0)
        vb.updateMatrix()          # now: pyqtgraph defers it to a paint a grabbed view may not get

    def _zoomed(self, cell: _Cell) -> None:
        """The user zoomed or panned one cell: every cell in sight (and every later one) follows."""
        self._range = tuple(tuple(r) for r in cell.vb.viewRange())
        self._range_version += 1
        cell.ranged = self._range_version
        for other in self.cells.values():
            if other is not cell:
                self._apply_range(other)

    def resizeEvent(self, e) -> None:
        super().resizeEvent(e)
        self.fit()


def _images(run: Run) -> np.ndarray:
    """A cell's run's images (a grid holds finished runs only)."""
    assert run.result is not None, f"run {run.id} in the grid has no result"
    return run.result.images
