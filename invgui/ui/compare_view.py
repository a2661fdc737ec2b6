"""The comparison view: runs in a grid with shared zoom/pan, labels and metrics; sweeps; error vs depth."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGraphicsGridLayout, QGroupBox,
                               QHBoxLayout, QLabel, QLineEdit, QPushButton, QScrollArea, QSplitter, QVBoxLayout,
                               QWidget)

from ..core import compare as C
from ..core.results import Metrics
from ..core.session import Run

METRICS = {"normalised reconstruction error": "nre", "representation error": "rep", "PSNR": "psnr"}
MIN_CELL = 150                      # px: below this the grid scrolls instead of shrinking the cells


@dataclass(frozen=True)
class SweepContext:
    """What a sweep starts from: the window's current settings."""

    template: Run                   # an optimisation run with the current settings
    rep: object                     # the representation (layers, resolve_layer)
    size: int                       # the input size
    layer: str                      # the chosen layer
    decoder: str | None             # the decoder chosen for that layer, if any


class CompareView(QWidget):
    """A window of its own; ``set_runs`` fills it, ``refresh`` redraws after runs finished."""

    sweepRequested = Signal(list)            # list[Run] to queue
    distanceReady = Signal(int, object)      # size, N (or None when it could not be computed): from a thread
    sheetWritten = Signal(object, str)       # path (None on failure), error message: from a thread

    def __init__(self, controller, sweep_context: Callable[[], SweepContext | None],
                 show_error: Callable[[str, str], None], parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.Window)
        self.controller = controller             # the session's runs; sweeps are submitted to it
        self.sweep_context = sweep_context
        self.show_error = show_error
        self.setWindowTitle("invgui — compare runs")
        self.resize(1400, 850)
        self.run_ids: list[str] = []
        self.grid: C.Grid | None = None
        self.views: list[pg.ViewBox] = []
        self.nre: dict[str, float] = {}
        self._distance_cache: dict[int, float | None] = {}
        self._distance_pending: set[int] = set()
        self.distanceReady.connect(self._on_distance)
        self.sheetWritten.connect(self._on_sheet_written)
        self._depth_items: dict[str, pg.PlotDataItem] = {}
        self._nre_cache: dict[tuple, float | None] = {}   # (run id, result, N) -> normalised error
        self.series: dict = {}

        controls = QHBoxLayout()
        self.rows_box, self.cols_box = QComboBox(), QComboBox()
        for box, default in ((self.rows_box, "method"), (self.cols_box, "auto")):
            box.addItems(["auto"] + list(C.AXES) + ["param:tv_weight", "param:lr", "param:seed", "param:iters"])
            box.setEditable(True)
            box.setCurrentText(default)
            box.currentTextChanged.connect(lambda _=None: self.refresh())
        self.metric_box = QComboBox()
        self.metric_box.addItems(list(METRICS))
        self.metric_box.currentTextChanged.connect(lambda _=None: self._plot_depth())
        self.sheet_button = QPushButton("Export contact sheet…")
        self.sheet_button.clicked.connect(self._sheet_dialog)
        for label, w in (("Rows", self.rows_box), ("Columns", self.cols_box), ("Plot", self.metric_box)):
            controls.addWidget(QLabel(label))
            controls.addWidget(w)
        controls.addStretch(1)
        self.sheet_status = QLabel("")
        controls.addWidget(self.sheet_status)
        controls.addWidget(self.sheet_button)

        # The grid: one graphics view whose size is the grid's (cells of at least MIN_CELL px),
        # in a scroll area; cells are kept per run and only moved when the grid changes.
        self.canvas = pg.GraphicsView(background="w")
        self.host = pg.GraphicsWidget()
        self.cell_layout = QGraphicsGridLayout()
        self.cell_layout.setContentsMargins(4, 4, 4, 4)
        self.cell_layout.setSpacing(4)
        self.host.setLayout(self.cell_layout)
        self.canvas.setCentralItem(self.host)
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.canvas)
        self.scroll.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.notes = QLabel("")
        self.notes.setWordWrap(True)
        self.notes.setStyleSheet("color: #8a5a00")
        self._cells: dict[str, tuple] = {}        # run id -> (view box, image item, caption label, caption text)
        self._labels: dict[tuple, pg.LabelItem] = {}   # (kind, text) -> header label
        self._drawn: tuple | None = None          # (rows, cols, cell ids) last laid out
        self._refresh_timer = QTimer(self, singleShot=True, timeout=self.refresh)
        self.depth_plot = pg.PlotWidget(background="w")
        self.depth_plot.showGrid(x=True, y=True, alpha=0.3)
        self.depth_plot.setLabel("bottom", "relative depth of the layer (0 = input, 1 = last module)")
        self.depth_plot.addLegend(offset=(-10, 10), labelTextColor="#202020")
        for axis in ("left", "bottom"):
            self.depth_plot.getAxis(axis).enableAutoSIPrefix(False)

        sweep = QGroupBox("Sweep (queued with the window's current settings as the template)")
        sf = QFormLayout(sweep)
        self.sweep_kind = QComboBox()
        self.sweep_kind.addItems(["methods × layers", "one parameter"])
        self.sweep_layers = QLineEdit()
        self.sweep_layers.setPlaceholderText("layers, comma-separated (empty: four spread over the network)")
        mrow = QHBoxLayout()
        self.sweep_opt, self.sweep_dec = QCheckBox("optimisation"), QCheckBox("decoder (where one fits)")
        self.sweep_opt.setChecked(True)
        self.sweep_dec.setChecked(True)
        mrow.addWidget(self.sweep_opt)
        mrow.addWidget(self.sweep_dec)
        self.sweep_param = QComboBox()
        from ..core.methods.optimize import OptimizeParams
        import dataclasses

        self.sweep_param.addItems([f.name for f in dataclasses.fields(OptimizeParams)])
        self.sweep_param.setCurrentText("tv_weight")
        self.sweep_values = QLineEdit("1, 10, 100")
        self.sweep_button = QPushButton("Queue sweep")
        self.sweep_button.clicked.connect(self.queue_sweep)
        sf.addRow("Kind", self.sweep_kind)
        sf.addRow("Layers", self.sweep_layers)
        sf.addRow("Methods", mrow)
        sf.addRow("Parameter", self.sweep_param)
        sf.addRow("Values", self.sweep_values)
        sf.addRow(self.sweep_button)

        side = QWidget()
        sl = QVBoxLayout(side)
        sl.addWidget(self.depth_plot, 1)
        sl.addWidget(sweep)
        split = QSplitter(Qt.Orientation.Horizontal)
        grid_side = QWidget()
        gl = QVBoxLayout(grid_side)
        gl.setContentsMargins(0, 0, 0, 0)
        gl.addWidget(self.notes)
        gl.addWidget(self.scroll, 1)
        split.addWidget(grid_side)
        split.addWidget(side)
        split.setSizes([950, 450])
        lay = QVBoxLayout(self)
        lay.addLayout(controls)
        lay.addWidget(split, 1)

    # -- contents ------------------------------------------------------------------------------
    def runs(self) -> list[Run]:
        session = self.controller.session
        ids = set(r.id for r in session.runs)
        return [session.get(i) for i in self.run_ids if i in ids]

    def run_finished(self, run: Run) -> None:
        """A run ended: redraw (once for a burst of runs: at most once a second) if it is one of this
        view's."""
        if self.isVisible() and run.id in self.run_ids and not self._refresh_timer.isActive():
            self.refresh_soon(1000)

    def set_runs(self, run_ids: list[str]) -> None:
        self.run_ids = list(dict.fromkeys(run_ids))
        self.refresh()

    def add_runs(self, run_ids: list[str]) -> None:
        self.set_runs(self.run_ids + list(run_ids))

    def _axis(self, box: QComboBox) -> str | None:
        t = box.currentText().strip()
        return None if t in ("", "auto") else t

    def _distance(self, size: int) -> float | None:
        """N of paper 001 at ``size`` (the mean distance between the bundled sample photos), or None
        while it is being computed: that takes ~1 s per size, so it runs on a thread and the grid
        is redrawn when it arrives."""
        if size in self._distance_cache:
            return self._distance_cache[size]
        if size not in self._distance_pending:
            import threading

            self._distance_pending.add(size)

            def compute() -> None:
                from ..core.metrics import eval_set_distance

                try:
                    value = eval_set_distance("samples", size)
                except Exception:                    # no N: the captions simply omit the error
                    value = None
                self.distanceReady.emit(size, value)

            threading.Thread(target=compute, name="invgui-compare-N", daemon=True).start()
        return None

    def _on_distance(self, size: int, value) -> None:
        self._distance_pending.discard(size)
        self._distance_cache[size] = value
        if self.isVisible() or self.grid is not None:
            self.refresh()

    def distances_pending(self) -> bool:
        return bool(self._distance_pending)

    def refresh_soon(self, delay_ms: int = 400) -> None:
        """Redraw once after ``delay_ms``, however many times this is called meanwhile."""
        self._refresh_timer.start(delay_ms)

    def refresh(self) -> None:
        runs = [r for r in self.runs() if r.result is not None]
        try:
            self.grid = C.grid(runs, self._axis(self.rows_box), self._axis(self.cols_box))
        except ValueError as e:
            self.show_error("Cannot arrange the runs", str(e))
            return
        self.nre = {}
        for r in runs:
            n = self._distance(r.result.images.shape[1])
            if n is None:
                continue
            key = (r.id, id(r.result), n)            # a result never changes once it arrived
            if key not in self._nre_cache:
                self._nre_cache[key] = C.normalised_error(r, n)
            val = self._nre_cache[key]
            if val is not None:
                self.nre[r.id] = val
        self._draw_grid()
        self._plot_depth()

    def _label(self, kind: str, text: str, **opts) -> pg.LabelItem:
        key = (kind, text)
        if key not in self._labels:
            self._labels[key] = pg.LabelItem(text, parent=self.host, **opts)
        return self._labels[key]

    def _cell(self, run: Run) -> tuple:
        """The view box, image and caption of ``run`` (made once; the caption follows the metrics)."""
        text = C.caption(run, self.nre.get(run.id))
        cell = self._cells.get(run.id)
        if cell is None:
            vb = pg.ViewBox(parent=self.host, lockAspect=True, invertY=True, enableMenu=False)
            item = pg.ImageItem((np.clip(run.result.images[0], 0, 1) * 255 + 0.5).astype(np.uint8),
                                axisOrder="row-major", autoDownsample=True, levels=(0, 255))   # uint8: no rescaling
            # One unit wide whatever its pixel size (decoders may reconstruct at another size than
            # optimisation): linked views then show the same part of every image.
            h, w = run.result.images.shape[1:3]
            item.setRect(QRectF(0, 0, 1.0, h / w))
            vb.addItem(item)
            cap = pg.LabelItem(text, parent=self.host, color="#333", size="8pt")
            cell = self._cells[run.id] = (vb, item, cap, text)
        elif cell[3] != text:
            cell[2].setText(text, color="#333", size="8pt")
            cell = self._cells[run.id] = (*cell[:3], text)
        return cell

    def _draw_grid(self) -> None:
        """Lay the cells out; only what changed is made or moved (a finished run adds one cell)."""
        g = self.grid
        self.notes.setText("\n".join(g.notes) if g is not None else "")
        self.notes.setVisible(bool(g is not None and g.notes))
        cells = {} if g is None else {pos: self._cell(run) for pos, run in g.cells.items()}
        shape = None if g is None else (tuple(g.rows), tuple(g.cols),
                                        tuple(sorted((pos, run.id) for pos, run in g.cells.items())))
        if shape == self._drawn:
            return                                 # captions were updated in place
        self._drawn = shape
        lay = self.cell_layout
        while lay.count():                         # (items staying are re-added below, not hidden)
            lay.removeAt(0)
        live = {run.id for run in g.cells.values()} if g is not None else set()
        for key in [k for k, lab in self._labels.items()
                    if g is None or k[1] not in (g.rows if k[0] == "row" else g.cols if k[0] == "col" else ())]:
            self._labels[key].hide()                 # headers no longer in the grid
        for rid in [r for r in self._cells if r not in live]:      # runs no longer compared
            vb, _item, cap, _t = self._cells.pop(rid)
            for it in (vb, cap):
                it.deleteLater()
        self.views = []
        if g is None or not g.cells:
            empty = self._label("empty", "No finished runs to compare: select runs in the run list, or queue a "
                                "sweep.", color="#444")
            lay.addItem(empty, 0, 0)
            empty.show()
            self.fit()
            return
        for ci, c in enumerate(g.cols):
            lab = self._label("col", c, color="#111", bold=True)
            lay.addItem(lab, 0, ci + 1)
            lab.show()
        for ri, rname in enumerate(g.rows):
            lab = self._label("row", rname, color="#111", bold=True, angle=-90)
            lay.addItem(lab, 1 + 2 * ri, 0)
            lab.show()
            for ci in range(len(g.cols)):
                cell = cells.get((ri, ci))
                if cell is None:
                    continue
                vb, _item, cap, _t = cell
                lay.addItem(vb, 1 + 2 * ri, ci + 1)
                lay.addItem(cap, 2 + 2 * ri, ci + 1)
                vb.show()
                cap.show()
                lead = self.views[0] if self.views else None     # shared zoom and pan
                if vb.linkedView(0) is not lead:                  # (re-linking re-ranges every view)
                    vb.setXLink(lead)
                    vb.setYLink(lead)
                self.views.append(vb)
        self.fit(force=True)                       # new cells need the whole-image range too

    def fit(self, force: bool = False) -> None:
        """Cells as large as the window allows (never under MIN_CELL px: the grid scrolls instead),
        and whole images in them (the views are linked: setting the first sets them all).  Nothing
        is done when neither the grid's shape nor the window's size changed (the user's zoom stays)."""
        g, lay = self.grid, self.cell_layout
        port = self.scroll.viewport().size()
        if g is None or not g.cells:
            self.canvas.resize(port)
            return
        nr, nc = len(g.rows), len(g.cols)
        geometry = (nr, nc, port.width(), port.height(), self.views[0] if self.views else None)
        if geometry == getattr(self, "_fitted", None) and not force:
            return
        self._fitted = geometry
        side = max(MIN_CELL, min((port.height() - 30 - nr * 26) // nr, (port.width() - 40) // nc - 8))
        for ri in range(nr):
            lay.setRowFixedHeight(1 + 2 * ri, side)
            lay.setRowFixedHeight(2 + 2 * ri, 20)
        lay.setRowFixedHeight(0, 22)
        lay.setColumnFixedWidth(0, 24)
        for ci in range(nc):
            lay.setColumnFixedWidth(ci + 1, side)
        self.canvas.resize(max(port.width(), 40 + nc * (side + 8)), max(port.height(), 30 + nr * (side + 26)))
        self._whole_images()
        QTimer.singleShot(0, self._whole_images)     # again once Qt has given the cells their size

    def _whole_images(self) -> None:
        """Every cell shows its whole image (each is drawn one unit wide, so one range fits all)."""
        if not self.views or self.grid is None:
            return
        self.cell_layout.activate()
        aspect = max(run.result.images.shape[1] / run.result.images.shape[2] for run in self.grid.cells.values())
        # The lead view only: the others follow through the link (setting each one as well makes
        # the links fight while cells still differ in size).
        self.views[0].setRange(xRange=(0, 1), yRange=(0, aspect), padding=0.02)
        for vb in self.views:                        # apply the ranges now (pyqtgraph defers it to a paint
            vb.updateMatrix()                        # that a scrolled-out or grabbed view may not get)

    def resizeEvent(self, e) -> None:
        super().resizeEvent(e)
        self.fit()

    def showEvent(self, e) -> None:
        super().showEvent(e)
        QTimer.singleShot(0, lambda: self.fit(force=True))    # the first open: the viewport has its size now

    def _plot_depth(self) -> None:
        """Error against layer depth (paper 001, Fig. 7); one curve per set of runs that differ only
        in their layer (core.compare.depth_series).  Curves are given new data, not re-made."""
        key = METRICS[self.metric_box.currentText()]
        self.depth_plot.setLabel("left", self.metric_box.currentText())

        def value(r: Run):
            m = Metrics.of(r.result)
            return {"nre": self.nre.get(r.id), "rep": m.representation_error, "psnr": m.psnr}[key]

        series = C.depth_series([r for r in self.runs() if r.result is not None], value)
        if series == self.series and key == getattr(self, "_series_key", None):
            return
        old = self.series if key == getattr(self, "_series_key", None) else {}
        self.series, self._series_key = series, key
        for name in [n for n in self._depth_items if n not in series]:
            item = self._depth_items.pop(name)
            self.depth_plot.removeItem(item)
            self.depth_plot.plotItem.legend.removeItem(item)
        colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"]
        for i, (name, pts) in enumerate(series.items()):
            x, y = zip(*pts)
            colour = colours[i % len(colours)]
            item = self._depth_items.get(name)
            if item is not None and old.get(name) == pts:
                continue                           # this curve did not change
            if item is None:
                self._depth_items[name] = self.depth_plot.plot(x, y, pen=pg.mkPen(colour, width=2), symbol="o",
                                                               symbolBrush=colour, name=name)
            else:
                item.setData(x, y, pen=pg.mkPen(colour, width=2), symbolBrush=colour)

    # -- sweeps ----------------------------------------------------------------------------------
    def default_layers(self) -> list[str]:
        """Four layers spread over the current model (stages with a spatial map; see core.compare)."""
        ctx = self.sweep_context()
        return [] if ctx is None else C.default_sweep_layers(ctx.rep, ctx.size)

    def queue_sweep(self) -> list[Run]:
        """Build the sweep's runs from the window's current settings and queue them."""
        from ..core.methods import decoder as D
        from ..core.params import coerce, from_dict

        ctx = self.sweep_context()
        if ctx is None:
            return []
        template = ctx.template
        if self.sweep_kind.currentIndex() == 0:
            layers = [t.strip() for t in self.sweep_layers.text().split(",") if t.strip()] or \
                C.default_sweep_layers(ctx.rep, ctx.size)
            try:
                layers = [ctx.rep.resolve_layer(layer) for layer in layers]
            except Exception as e:
                self.show_error("Cannot sweep", str(e))
                return []
            methods = (["optimize"] if self.sweep_opt.isChecked() else []) + \
                      (["decoder"] if self.sweep_dec.isChecked() else [])
            decoders = {layer: str(p) for layer in layers if (p := D.find_shipped(template.model, layer)) is not None}
            if ctx.decoder and ctx.layer in layers:
                decoders.setdefault(ctx.layer, ctx.decoder)
            runs = C.sweep_layers(template, methods, layers, decoders)
        else:
            from ..core.methods.optimize import OptimizeParams

            name = self.sweep_param.currentText()
            try:
                values = [coerce(OptimizeParams, name, v.strip()) for v in self.sweep_values.text().split(",")
                          if v.strip()]
                for v in values:                 # each value within the parameter's range, finite
                    from_dict(OptimizeParams, {**template.params, name: v})
            except (ValueError, TypeError) as e:
                self.show_error("Cannot sweep", f"{name}: {e}")
                return []
            runs = C.sweep_param(template, name, values)
            self.cols_box.setCurrentText(f"param:{name}")
        if not runs:
            self.show_error("Nothing to sweep", "No run fits these choices (a decoder sweep needs decoders for the "
                            "layers).")
            return []
        self.add_runs([r.id for r in runs])
        self.controller.submit_batch(runs, "sweep")     # failures are told once, when the sweep is over
        return runs

    # -- export ------------------------------------------------------------------------------------
    def export_sheet(self, path, tile: int = 512, background: bool = False) -> Path | None:
        """Write the grid as a contact sheet (PNG at 300 dpi) and its JSON sidecar.  With
        ``background`` (the dialog) it is drawn and written on a thread — a sheet of many 512 px
        tiles takes about a second — and ``sheetWritten`` tells when it is there."""
        if self.grid is None or not self.grid.cells:
            return None
        from ..core.export import sidecar_path
        from ..core.images import check_writable

        try:
            check_writable(path)                 # before the sheet is drawn
            check_writable(sidecar_path(path))
        except OSError as e:
            self.show_error("Cannot export the contact sheet", str(e))
            return None
        grid, nre = self.grid, dict(self.nre)
        if not background:
            try:
                return _write_sheet(path, grid, nre, tile)
            except OSError as e:
                self.show_error("Cannot export the contact sheet", str(e))
                return None
        import threading

        def work() -> None:
            try:
                self.sheetWritten.emit(_write_sheet(path, grid, nre, tile), "")
            except OSError as e:
                self.sheetWritten.emit(None, str(e))

        self.sheet_status.setText(f"writing {Path(path).name}…")
        threading.Thread(target=work, name="invgui-contact-sheet", daemon=True).start()
        return None

    def _on_sheet_written(self, path, error: str) -> None:
        if path is None:
            self.sheet_status.setText("")
            self.show_error("Cannot export the contact sheet", error)
        else:
            self.sheet_status.setText(f"wrote {path}")

    def _sheet_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export contact sheet", "comparison.png", "PNG (*.png)")
        if path:
            self.export_sheet(path, background=True)


def _write_sheet(path, grid: C.Grid, nre: dict, tile: int) -> Path:
    """Draw and write the sheet and its sidecar (any thread: it touches no widget)."""
    from ..core.export import runs_sidecar
    from ..core.images import FileSet

    sheet = C.contact_sheet(grid, tile, nre)
    with FileSet():                              # the sheet and its sidecar, or neither
        out = C.save_sheet(path, sheet)
        runs_sidecar(out, list(grid.cells.values()), contact_sheet=str(out), rows=grid.rows, cols=grid.cols,
                     rows_by=grid.rows_by, cols_by=grid.cols_by, normalised_errors=nre)
    return out
