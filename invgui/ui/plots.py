"""Live loss curves: total and every term, on a log axis."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

COLOURS = {"total": "#222222", "feature": "#1f77b4", "alpha": "#2ca02c", "tv": "#d62728",
           "train": "#1f77b4", "held_out": "#d62728"}
LABELS = {"total": "total", "feature": "feature ‖Φ(x)−Φ0‖²/‖Φ0‖²", "alpha": "α-norm", "tv": "TV^β",
          "train": "training loss", "held_out": "held-out MSE"}


class LossPlot(pg.PlotWidget):
    def __init__(self, parent=None):
        super().__init__(parent, background="w")
        self.setLogMode(y=True)
        self.showGrid(x=True, y=True, alpha=0.3)
        self.setLabel("bottom", "iteration")
        self.setLabel("left", "loss")
        for axis in ("left", "bottom"):
            self.getAxis(axis).enableAutoSIPrefix(False)
        # The legend sits in a row of its own under the x axis, never over the curves.
        legend = pg.LegendItem(colCount=4, labelTextColor="#202020")
        self.plotItem.layout.addItem(legend, 4, 1)
        self.plotItem.legend = legend            # plot(name=…) adds each curve to it
        self.curves: dict[str, pg.PlotDataItem] = {}

    def clear_curves(self) -> None:
        for c in self.curves.values():
            self.removeItem(c)
        self.curves.clear()
        self.plotItem.legend.clear()

    def set_history(self, history: dict[str, list[float]]) -> None:
        for name, values in history.items():
            if not values:
                continue
            y = np.asarray(values, dtype=float)
            y = np.where(np.isfinite(y) & (y > 0), y, np.nan)    # log axis: skip zeros
            x = np.arange(1, len(y) + 1)
            if name not in self.curves:
                # Width-1 (cosmetic) pens: Qt draws wider antialiased ones ~14× slower (measured 71 vs
                # 5 ms per redraw of four 200-point curves), which stalled the event loop and the worker.
                self.curves[name] = self.plot(x, y, pen=pg.mkPen(COLOURS.get(name, "#888"), width=1),
                                              name=LABELS.get(name, name), connect="finite")
            else:
                self.curves[name].setData(x, y, connect="finite")

    def set_series(self, name: str, x, y, symbol: bool = False) -> None:
        """One curve with its own x values (e.g. held-out error once per epoch, at its step)."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        y = np.where(np.isfinite(y) & (y > 0), y, np.nan)
        if name not in self.curves:
            kw = dict(symbol="o", symbolSize=6, symbolBrush=COLOURS.get(name, "#888")) if symbol else {}
            self.curves[name] = self.plot(x, y, pen=pg.mkPen(COLOURS.get(name, "#888"), width=1),
                                          name=LABELS.get(name, name), connect="finite", **kw)
        else:
            self.curves[name].setData(x, y, connect="finite")
