"""Live loss curves: total and every term, on a log axis."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QGraphicsItem

COLOURS = {"total": "#222222", "feature": "#1f77b4", "alpha": "#2ca02c", "tv": "#d62728",
           "train": "#1f77b4", "held_out": "#d62728", "pixel": "#9467bd", "feature_space": "#ff7f0e",
           "adversarial": "#8c564b", "discriminator": "#7f7f7f"}
LABELS = {"total": "total", "feature": "feature ‖Φ(x)−Φ0‖²/‖Φ0‖²", "alpha": "α-norm", "tv": "TV^β",
          "train": "training loss", "held_out": "held-out MSE", "pixel": "pixel MSE",
          "feature_space": "feature-space ‖C(y)−C(x)‖²/‖C(x)‖²", "adversarial": "adversarial softplus(−D(y))",
          "discriminator": "discriminator (hinge)"}


def cache_axes(plot: pg.PlotWidget) -> None:
    """Let Qt keep each axis of ``plot`` as a pixmap, redrawn only when the axis changes.

    With a grid, an axis covers the whole plot, so every new point of a curve repainted both axes:
    pyqtgraph replays their tick labels and grid lines (a QPicture) on each paint, ~2 ms of the GUI
    thread per redraw of the live loss plot (measured: 4.7–5.3 → 3.0 ms per repaint).  pyqtgraph
    calls ``update()`` whenever an axis's range or size changes, which renews Qt's cached pixmap;
    a cached repaint differs from a direct one by at most 2 of 255 levels (rounding)."""
    for name in ("left", "bottom", "right", "top"):
        plot.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


class LossPlot(pg.PlotWidget):
    """Curves are made once per name and then only given new data: a new run empties them
    instead of removing and re-creating them with their legend entries (that cost ~10 ms of the
    GUI thread per run, and a full axis relayout)."""

    def __init__(self, parent=None):
        super().__init__(parent, background="w")
        self.setLogMode(y=True)
        self.showGrid(x=True, y=True, alpha=0.3)
        self.setLabel("bottom", "iteration")
        self.setLabel("left", "loss")
        for axis in ("left", "bottom"):
            self.getAxis(axis).enableAutoSIPrefix(False)
        # The left axis as wide as its widest label ("0.0001", "1e-05", "1e+12"): a width that
        # followed the labels re-laid out the whole plot — the bottom axis and the legend
        # regenerated too — whenever a y step changed them.
        left = self.getAxis("left")
        metrics = QFontMetrics(left.style.get("tickFont") or left.font())
        left.setWidth(metrics.horizontalAdvance("0.00001") + 2 * metrics.height() + 8)
        cache_axes(self)
        # The legend sits in a row of its own under the x axis, never over the curves.
        legend = pg.LegendItem(colCount=4, labelTextColor="#202020")
        self.plotItem.layout.addItem(legend, 4, 1)
        self.plotItem.legend = legend            # plot(name=…) adds each curve to it
        self.curves: dict[str, pg.PlotDataItem] = {}     # the curves that have data
        self._items: dict[str, pg.PlotDataItem] = {}     # every curve made (kept, emptied when unused)
        self._live: tuple[float, float] | None = None    # while a run computes: its y range (log10)
        self._listed: frozenset[str] = frozenset()       # the curves the legend lists
        # Without curves the plot says so instead of drawing axes over nothing (an empty log axis
        # over 0.1…0.9 drew its minor ticks' labels on top of each other).
        self.placeholder = pg.TextItem("the loss curves of a run appear here", color="#888", anchor=(0.5, 0.5))
        self.placeholder.setPos(0.5, 0.5)
        self.addItem(self.placeholder, ignoreBounds=True)
        self.empty = False
        self._set_empty(True)

    def _set_empty(self, empty: bool) -> None:
        if empty == self.empty:
            return
        self.empty = empty
        for axis in ("left", "bottom"):
            self.plotItem.showAxis(axis, not empty)
        self.placeholder.setVisible(empty)
        # The legend keeps its entries (re-making them costs ~10 ms a run) but is not shown over no
        # curves: a taken-down result left "total, feature, α-norm, TV^β" listed under nothing.
        self.plotItem.legend.setVisible(not empty)
        if empty:
            self.plotItem.enableAutoRange(x=False, y=False)
            self.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
        else:
            self.plotItem.enableAutoRange(x=True, y=True)

    def _empty_curves(self) -> None:
        for item in self.curves.values():
            item.setData([], [])
            item.hide()
        self.curves.clear()

    def clear_curves(self) -> None:
        """No curves: the plot says so (the axes go)."""
        self._empty_curves()
        self._live = None
        self._set_empty(True)

    def set_span(self, iterations: int) -> None:
        """A run starts: its curves replace the last ones, the x axis is fixed to its planned
        iterations and the y axis moves only in steps (``set_history``), so the axes are not re-laid
        out at every redraw — pyqtgraph regenerates an axis's ticks and labels (~5 ms each) whenever
        its range changes.  The axes stay up between two runs: taking them down and putting them up
        again re-laid out the whole plot, ~28 ms of the GUI thread per run start and again per run
        end (measured on the 2-core VM, the plot alone; two to three times that in a session)."""
        if iterations <= 1:
            self.clear_curves()
            return
        self._empty_curves()
        self._set_empty(False)
        self.setXRange(0, iterations, padding=0.01)
        self.plotItem.enableAutoRange(y=False)
        self._live = (np.inf, -np.inf)          # the y range shown, log10 (empty until data come)

    def show_history(self, history: dict[str, list[float]]) -> None:
        """A finished result's curves, fitted to the plot (the axes stay up when it has any)."""
        if not any(history.values()):
            self.clear_curves()
            return
        for name in [n for n in self.curves if not history.get(n)]:
            self.curves.pop(name).hide()
        self._live = None
        self._set_empty(False)
        self.plotItem.enableAutoRange(x=True, y=True)
        self.set_history(history)

    def _curve(self, name: str, **kw) -> pg.PlotDataItem:
        self._set_empty(False)
        item = self._items.get(name)
        if item is None:
            item = self._items[name] = self.plot([], [], pen=pg.mkPen(COLOURS.get(name, "#888"), width=1),
                                                 name=LABELS.get(name, name), connect="finite", **kw)
        item.show()
        self.curves[name] = item
        return item

    def set_history(self, history: dict[str, list[float]]) -> None:
        for name, values in history.items():
            if not values:
                continue
            y = np.asarray(values, dtype=float)
            y = np.where(np.isfinite(y) & (y > 0), y, np.nan)    # log axis: skip zeros
            # Width-1 (cosmetic) pens: Qt draws wider antialiased ones ~14× slower (measured 71 vs
            # 5 ms per redraw of four 200-point curves), which stalled the event loop and the worker.
            self._curve(name).setData(np.arange(1, len(y) + 1), y, connect="finite")
        if self._live is not None:
            if not self.curves:
                # A run just started, no iteration yet: its legend is the last one's until its
                # curves come (emptied and filled again, ~6 ms of the GUI thread per run start).
                return
            self._step_y_range(history)
        self._sync_legend()

    def _step_y_range(self, history: dict[str, list[float]]) -> None:
        """While a run computes: widen the y range only when a curve leaves it, by a decade more than
        needed below (losses fall: the range then changes about once per run; by half a decade it
        changed two or three times, each a regeneration of the axis, 15–30 ms of the GUI thread)."""
        ys = np.asarray([v for values in history.values() for v in values[-50:]], dtype=float)
        ys = np.log10(ys[np.isfinite(ys) & (ys > 0)])
        if ys.size == 0:
            return
        lo, hi = self._live if self._live is not None else (np.inf, -np.inf)
        if ys.max() > hi:
            hi = ys.max() + 0.25
        if ys.min() < lo:
            lo = ys.min() - 1.0
        lo = max(lo, hi - 12)                         # a diverging term: no more than 12 decades
        if (lo, hi) != self._live:
            self._live = (lo, hi)
            self.setYRange(lo, hi, padding=0)

    def _sync_legend(self) -> None:
        """The legend lists the curves that have data (changes only when a run of another kind shows)."""
        if frozenset(self.curves) == self._listed:
            return
        self._listed = frozenset(self.curves)
        legend = self.plotItem.legend
        listed = {id(sample.item) for sample, _label in legend.items}
        for name, item in self._items.items():
            if name in self.curves and id(item) not in listed:
                legend.addItem(item, LABELS.get(name, name))
            elif name not in self.curves and id(item) in listed:
                legend.removeItem(item)

    def set_series(self, name: str, x, y, symbol: bool = False) -> None:
        """One curve with its own x values (e.g. held-out error once per epoch, at its step)."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        y = np.where(np.isfinite(y) & (y > 0), y, np.nan)
        kw = dict(symbol="o", symbolSize=6, symbolBrush=COLOURS.get(name, "#888")) if symbol else {}
        self._curve(name, **kw).setData(x, y, connect="finite")
        self._sync_legend()
