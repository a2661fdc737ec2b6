"""Figures of an evaluation's results, drawn with pyqtgraph (offscreen when there is no display):
paper 001's Fig. 7 — the normalised reconstruction error against layer depth, one curve per
method, error bars of one standard deviation over the images."""

from __future__ import annotations

import csv
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


def error_vs_layer(summary_csv: str | Path, png: str | Path, svg: str | Path) -> tuple[Path, Path]:
    """Draw ``summary.csv`` (core.evaluate) as PNG and SVG."""
    import pyqtgraph as pg
    import pyqtgraph.exporters as ex
    from PySide6.QtWidgets import QApplication

    _app = QApplication.instance() or QApplication(["invgui"])     # kept alive while drawing
    with Path(summary_csv).open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    widget = pg.PlotWidget(background="w")
    widget.resize(900, 560)
    plot = widget.getPlotItem()
    plot.addLegend(offset=(10, 10))
    plot.setLabel("left", "reconstruction error ‖x − x̂‖/N")
    plot.setLabel("bottom", "layer, at its relative depth")
    for side in ("left", "bottom"):
        plot.getAxis(side).enableAutoSIPrefix(False)
    plot.showGrid(x=True, y=True, alpha=0.2)
    ticks = {}
    for i, name in enumerate(dict.fromkeys(r["method"] for r in rows)):
        mine = sorted((r for r in rows if r["method"] == name), key=lambda r: float(r["depth"]))
        x = [float(r["depth"]) for r in mine]
        y = [float(r["nre_mean"]) for r in mine]
        sd = [float(r["nre_std"]) for r in mine]
        colour = PENS[i % len(PENS)]
        plot.plot(x, y, pen=pg.mkPen(colour, width=2), symbol="o", symbolBrush=colour, symbolPen=colour,
                  name=f"{method_word(name)} (n = {mine[0]['n']})")
        plot.addItem(pg.ErrorBarItem(x=np.array(x), y=np.array(y), height=2 * np.array(sd), beam=0.01,
                                     pen=pg.mkPen(colour)))
        ticks.update({float(r["depth"]): r["layer"] for r in mine})
    plot.getAxis("bottom").setTicks([sorted(ticks.items())])
    png, svg = Path(png), Path(svg)
    exporter = ex.ImageExporter(plot)
    exporter.parameters()["width"] = 1600
    atomic_write(png, lambda tmp: exporter.export(tmp))

    atomic_write(svg, lambda tmp: widget_svg(widget, tmp, "invgui: reconstruction error against layer depth"))
    widget.deleteLater()
    return png, svg
