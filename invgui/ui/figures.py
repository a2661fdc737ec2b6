"""Figures of an evaluation's results, drawn with pyqtgraph (offscreen when there is no display):
paper 001's Fig. 7 — the normalised reconstruction error against layer depth, one curve per
method, error bars of one standard deviation over the images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.compare import method_word
from ..core.images import atomic_write

PENS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


def widget_svg(widget, path: str, title: str) -> None:
    """Render ``widget`` as vector graphics into ``path``: pyqtgraph's SVGExporter fails on this
    Qt's path syntax ("not enough values to unpack"), so Qt's own SVG generator draws it."""
    from PySide6.QtCore import QRect
    from PySide6.QtGui import QPainter
    from PySide6.QtSvg import QSvgGenerator

    gen = QSvgGenerator()
    gen.setFileName(path)
    gen.setSize(widget.size())
    gen.setViewBox(QRect(0, 0, widget.width(), widget.height()))
    gen.setTitle(title)
    painter = QPainter(gen)
    widget.render(painter)
    if not painter.end() or Path(path).stat().st_size == 0:
        raise OSError("Qt could not write the SVG")


def draw_depth(plot, rows: list[dict], key: str = "nre", label: str = "reconstruction error ‖x − x̂‖/N") -> list:
    """Draw summary rows (core.evaluate) into a pyqtgraph PlotItem: the mean of measure ``key``
    against the layer's relative depth, one curve per method, error bars of one standard deviation;
    the layers' names as the x ticks.  The items drawn, in method order."""
    import pyqtgraph as pg

    plot.clear()
    if plot.legend is None:
        plot.addLegend(offset=(10, 10), labelTextColor="#202020")   # readable on the white background
    plot.setLabel("left", label)
    plot.setLabel("bottom", "layer, at its relative depth")
    for side in ("left", "bottom"):
        plot.getAxis(side).enableAutoSIPrefix(False)
    plot.showGrid(x=True, y=True, alpha=0.2)
    ticks, items = {}, []
    for i, name in enumerate(dict.fromkeys(r["method"] for r in rows)):
        mine = sorted((r for r in rows if r["method"] == name), key=lambda r: float(r["depth"]))
        x = np.array([float(r["depth"]) for r in mine])
        y = np.array([float(r[key + "_mean"]) for r in mine])
        sd = np.array([float(r[key + "_std"]) for r in mine])
        colour = PENS[i % len(PENS)]
        # One layer only: a point, not part of a line.
        items.append(plot.plot(x, y, pen=pg.mkPen(colour, width=2) if len(x) > 1 else None, symbol="o",
                               symbolBrush=colour, symbolPen=colour, name=f"{method_word(name)} (n = {mine[0]['n']})"))
        plot.addItem(pg.ErrorBarItem(x=x, y=y, height=2 * sd, beam=0.01, pen=pg.mkPen(colour)))
        ticks.update({float(r["depth"]): r["layer"] for r in mine})
    plot.getAxis("bottom").setTicks([sorted(ticks.items())])
    return items


def export_plot(widget, png: str | Path | None, svg: str | Path | None, title: str) -> list[Path]:
    """The plot of a PlotWidget as a 1600 px wide PNG and as SVG (either may be None); each file
    written whole or not at all."""
    import pyqtgraph.exporters as ex

    written = []
    if png is not None:
        exporter = ex.ImageExporter(widget.getPlotItem())
        exporter.parameters()["width"] = 1600
        written.append(atomic_write(png, lambda tmp: _nonempty(exporter.export(tmp), tmp)))
    if svg is not None:
        written.append(atomic_write(svg, lambda tmp: widget_svg(widget, tmp, title)))
    return written


def error_vs_layer(summary_csv: str | Path, png: str | Path, svg: str | Path) -> tuple[Path, Path]:
    """Draw ``summary.csv`` (core.evaluate) as PNG and SVG."""
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from ..core.evaluate import read_summary

    _app = QApplication.instance() or QApplication(["invgui"])     # kept alive while drawing
    widget = pg.PlotWidget(background="w")
    widget.resize(900, 560)
    draw_depth(widget.getPlotItem(), read_summary(Path(summary_csv)))
    png, svg = export_plot(widget, png, svg, "invgui: reconstruction error against layer depth")
    widget.deleteLater()
    return png, svg


def _nonempty(_ret, tmp: str) -> None:
    """pyqtgraph's exporters ignore a failed save; an empty file says it failed."""
    if Path(tmp).stat().st_size == 0:
        raise OSError("the picture could not be written")
