"""Figures of an evaluation's results, drawn with pyqtgraph (offscreen when there is no display):
paper 001's Fig. 7 — the normalised reconstruction error against layer depth, one curve per
method, error bars of one standard deviation over the images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.compare import method_word
from ...core.files import atomic_write

PENS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
INK = "#202020"
# The y label of the error figure, in glyphs every font has: "x̂" (x + a combining hat) lost its hat.
NRE_LABEL = "normalised reconstruction error  ‖x − y‖ / N  (y: the reconstruction)"

# One colour and marker per method — and, for optimisation, per image prior — the same in every
# plot and whatever order runs arrive in (decoder and optimisation shared blue, HOG's optimisation
# and the hybrid purple, and colours moved as curves came).  Curves of one kind (the same method at
# two learning rates) differ by their dash.
def _styles() -> dict[str, tuple[str, str]]:
    from ...core.methods.registry import DECODER, HYBRID, OPTIMIZE, PROBE

    opt = OPTIMIZE.name
    return {opt: ("#1f77b4", "o"), f"{opt}/pixel": ("#1f77b4", "o"), f"{opt}/fourier": ("#9467bd", "d"),
            f"{opt}/dip": ("#8c564b", "star"), DECODER.name: ("#d62728", "s"), HYBRID.name: ("#2ca02c", "t"),
            PROBE.name: ("#ff7f0e", "p")}


STYLES = _styles()
_OTHER_COLOURS = ("#e377c2", "#17becf", "#bcbd22", "#7f7f7f")
_OTHER_SYMBOLS = ("h", "+", "x", "t1")


def style_key(method: str, prior: str | None = None) -> str:
    from ...core.methods.registry import OPTIMIZE

    return f"{method}/{prior}" if prior and method == OPTIMIZE.name else method


def curve_style(key: str) -> tuple[str, str]:
    """(colour, marker) of a kind of curve (``style_key``): fixed for the known ones, a stable pick
    by name for any other (a method registered later)."""
    if key in STYLES:
        return STYLES[key]
    import zlib

    h = zlib.crc32(key.encode())
    return _OTHER_COLOURS[h % len(_OTHER_COLOURS)], _OTHER_SYMBOLS[(h // 7) % len(_OTHER_SYMBOLS)]


def curve_pen(colour: str, nth: int, width: float = 2):
    """The pen of the ``nth`` curve of one kind: solid, then dashed, dotted, dash-dotted."""
    import pyqtgraph as pg
    from PySide6.QtCore import Qt

    dashes = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine, Qt.PenStyle.DashDotLine)
    return pg.mkPen(colour, width=width, style=dashes[nth % len(dashes)])


def legend_outside(plot_item, **kw):
    """A legend under the plot's bottom axis, left-aligned — never over the data, and not taking
    the width of a narrow plot (Compare's side panel)."""
    import pyqtgraph as pg
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QGraphicsItem, QSizePolicy

    if getattr(plot_item, "legend", None) is not None:
        return plot_item.legend
    # One column, spanning the axis and the plot: a legend wider than the plot's column widened the
    # column past the widget and cut the plot's right side off.
    legend = pg.LegendItem(**kw)
    # pyqtgraph's legend ignores the view's transformations (it floats over the data at a fixed
    # size): rendered at 2× for a PNG it stayed at 1×, a tiny legend under large axes.
    legend.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, False)
    plot_item.layout.addItem(legend, 4, 0, 1, 3)
    plot_item.layout.setAlignment(legend, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    legend.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Maximum)
    plot_item.legend = legend                    # PlotItem.plot(name=…) adds its curves to it
    return legend


# Room around a depth plot's points: the names of the first and last layers are centred on them, and
# pyqtgraph drops a tick label that would cross the axis's end (conv_stem and blocks.5 went unnamed).
DEPTH_PADDING = 0.12


def layer_ticks(ticks: dict[float, str], spacing: float = 0.1) -> list[list[tuple[float, str]]]:
    """The x ticks of a depth plot: layer names at their relative depth, a name only where it keeps
    ``spacing`` (of the 0…1 depth) from the last one named — close layers overlapped into one smear —
    and the others as unnamed minor ticks."""
    named, minor, last = [], [], None
    for d, name in sorted(ticks.items()):
        if last is None or d - last >= spacing:
            named.append((d, name))
            last = d
        else:
            minor.append((d, ""))
    return [named, minor]


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


def draw_depth(plot, rows: list[dict], key: str = "nre", label: str = NRE_LABEL,
               prior: str | None = None) -> list:
    """Draw summary rows (core.evaluate) into a pyqtgraph PlotItem: the mean of measure ``key``
    against the layer's relative depth, one curve per method, error bars of one standard deviation;
    the layers' names as the x ticks; each method in its own colour and marker (``prior``: the
    optimisation's image prior).  The items drawn, in method order.  The default label is plain
    text: "x̂" is a combining character that the figure's font drew without its hat."""
    import pyqtgraph as pg

    plot.clear()
    legend_outside(plot, labelTextColor=INK, labelTextSize="10pt")
    plot.getViewBox().setDefaultPadding(DEPTH_PADDING)
    plot.setLabel("left", label, color=INK)
    plot.setLabel("bottom", "layer, at its relative depth", color=INK)
    for side in ("left", "bottom"):
        axis = plot.getAxis(side)
        axis.enableAutoSIPrefix(False)
        axis.setTextPen(INK)                     # dark on the white background (a figure for a paper)
        axis.setPen("#606060")
    plot.showGrid(x=True, y=True, alpha=0.2)
    ticks, items = {}, []
    for name in dict.fromkeys(r["method"] for r in rows):
        mine = sorted((r for r in rows if r["method"] == name), key=lambda r: float(r["depth"]))
        x = np.array([float(r["depth"]) for r in mine])
        y = np.array([float(r[key + "_mean"]) for r in mine])
        sd = np.array([float(r[key + "_std"]) for r in mine])
        colour, symbol = curve_style(style_key(name, prior))
        # One layer only: a point, not part of a line.
        items.append(plot.plot(x, y, pen=pg.mkPen(colour, width=2) if len(x) > 1 else None, symbol=symbol,
                               symbolSize=9, symbolBrush=colour, symbolPen=colour,
                               name=f"{method_word(name)} (n = {mine[0]['n']})"))
        plot.addItem(pg.ErrorBarItem(x=x, y=y, height=2 * sd, beam=0.01, pen=pg.mkPen(colour)))
        ticks.update({float(r["depth"]): r["layer"] for r in mine})
    plot.getAxis("bottom").setTicks(layer_ticks(ticks))
    return items


FIGURE_SIZE = (900, 540)          # logical pixels of a figure: its fonts and marks keep their proportions
FIGURE_SCALE = 2                  # PNG pixels per logical pixel (1800 × 1080)


def widget_png(widget, path: str, scale: int = FIGURE_SCALE) -> None:
    """Render ``widget`` into a PNG at ``scale``× its size.  pyqtgraph's ImageExporter enlarges the
    plot but not its legend, and draws axes, marks and text at sizes that depend on how large the
    widget was on screen; rendering the widget as laid out keeps the PNG what the SVG and the
    screen show."""
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QImage, QPainter

    img = QImage(widget.width() * scale, widget.height() * scale, QImage.Format.Format_ARGB32)
    img.fill(Qt.GlobalColor.white)
    painter = QPainter(img)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    # The scene, not the widget: QWidget.render clips a scaled painter to the widget's own size.
    widget.scene().render(painter, QRectF(0, 0, img.width(), img.height()), QRectF(widget.rect()))
    painter.end()
    # PySide6's stub types the format as bytes; the binding refuses bytes and takes str.
    saved = img.save(str(path), "PNG")  # type: ignore[call-overload]
    if not saved or Path(path).stat().st_size == 0:
        raise OSError("the picture could not be written")


def export_plot(widget, png: str | Path | None, svg: str | Path | None, title: str) -> list[Path]:
    """A plot widget as PNG (2× its size) and SVG (either may be None); each file written whole or
    not at all."""
    written = []
    if png is not None:
        written.append(atomic_write(png, lambda tmp: widget_png(widget, tmp)))
    if svg is not None:
        written.append(atomic_write(svg, lambda tmp: widget_svg(widget, tmp, title)))
    return written


def depth_figure(rows: list[dict], png: str | Path | None, svg: str | Path | None, key: str = "nre",
                 label: str = NRE_LABEL, title: str = "invgui: error against layer depth"
                 ) -> list[Path]:
    """Summary rows as a figure of its own size (FIGURE_SIZE, whatever the window's plot measures):
    PNG and SVG."""
    import pyqtgraph as pg
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["invgui"])
    widget = pg.PlotWidget(background="w")
    widget.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen)
    widget.resize(*FIGURE_SIZE)
    widget.show()                                  # laid out at its size, never on screen
    draw_depth(widget.getPlotItem(), rows, key, label)
    app.processEvents()
    try:
        return export_plot(widget, png, svg, title)
    finally:
        widget.close()
        widget.deleteLater()


def error_vs_layer(summary_csv: str | Path, png: str | Path, svg: str | Path) -> tuple[Path, Path]:
    """Draw ``summary.csv`` (core.evaluate) as PNG and SVG."""
    from ...core.evaluate import read_summary

    png, svg = depth_figure(read_summary(Path(summary_csv)), png, svg,
                            title="invgui: reconstruction error against layer depth")
    return png, svg
