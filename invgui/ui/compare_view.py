"""The comparison view: runs in a grid with shared zoom/pan, labels and metrics; sweeps; error vs depth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QSplitter, QVBoxLayout, QWidget)

from ..core import compare as C
from ..core.session import Run

METRICS = {"normalised reconstruction error": "nre", "representation error": "rep", "PSNR": "psnr"}


class CompareView(QWidget):
    """A window of its own; ``set_runs`` fills it, ``refresh`` redraws after runs finished."""

    sweepRequested = Signal(list)            # list[Run] to queue
    distanceReady = Signal(int, object)      # size, N (or None when it could not be computed): from a thread

    def __init__(self, window, parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.Window)
        self.window_ = window                    # the main window (session, image distance, layer tree)
        self.setWindowTitle("invgui — compare runs")
        self.resize(1400, 850)
        self.run_ids: list[str] = []
        self.grid: C.Grid | None = None
        self.views: list[pg.ViewBox] = []
        self.nre: dict[str, float] = {}
        self._distance_cache: dict[int, float | None] = {}
        self._distance_pending: set[int] = set()
        self.distanceReady.connect(self._on_distance)

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
        controls.addWidget(self.sheet_button)

        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setBackground("w")
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
        split.addWidget(self.canvas)
        split.addWidget(side)
        split.setSizes([950, 450])
        lay = QVBoxLayout(self)
        lay.addLayout(controls)
        lay.addWidget(split, 1)

    # -- contents ------------------------------------------------------------------------------
    def runs(self) -> list[Run]:
        ids = set(r.id for r in self.window_.session.runs)
        return [self.window_.session.get(i) for i in self.run_ids if i in ids]

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
        if not hasattr(self, "_refresh_timer"):
            from PySide6.QtCore import QTimer

            self._refresh_timer = QTimer(self)
            self._refresh_timer.setSingleShot(True)
            self._refresh_timer.timeout.connect(self.refresh)
        self._refresh_timer.start(delay_ms)

    def refresh(self) -> None:
        runs = [r for r in self.runs() if r.result is not None]
        try:
            self.grid = C.grid(runs, self._axis(self.rows_box), self._axis(self.cols_box))
        except ValueError as e:
            self.window_.show_error("Cannot arrange the runs", str(e))
            return
        self.nre = {}
        for r in runs:
            n = self._distance(r.result.images.shape[1])
            val = C.normalised_error(r, n) if n is not None else None
            if val is not None:
                self.nre[r.id] = val
        self._draw_grid()
        self._plot_depth()

    def _draw_grid(self) -> None:
        self.canvas.clear()
        self.views = []
        g = self.grid
        if g is None or not g.cells:
            self.canvas.addLabel("No finished runs to compare: select runs in the run list, or queue a sweep.",
                                 row=0, col=0, color="#444")
            return
        for ci, c in enumerate(g.cols):
            self.canvas.addLabel(c, row=0, col=ci + 1, color="#111", bold=True)
        for ri, rname in enumerate(g.rows):
            self.canvas.addLabel(rname, row=1 + 2 * ri, col=0, angle=-90, color="#111", bold=True)
            for ci in range(len(g.cols)):
                run = g.cells.get((ri, ci))
                vb = self.canvas.addViewBox(row=1 + 2 * ri, col=ci + 1, lockAspect=True, invertY=True)
                if run is not None:
                    img = run.result.images[0]
                    item = pg.ImageItem((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), axisOrder="row-major")
                    vb.addItem(item)
                    self.canvas.addLabel(C.caption(run, self.nre.get(run.id)), row=2 + 2 * ri, col=ci + 1,
                                         color="#333", size="8pt")
                if self.views:                      # shared zoom and pan
                    vb.setXLink(self.views[0])
                    vb.setYLink(self.views[0])
                self.views.append(vb)
        layout = self.canvas.ci.layout                 # label rows stay one line high; image rows share the rest
        layout.setRowFixedHeight(0, 22)
        for ri in range(len(g.rows)):
            layout.setRowFixedHeight(2 + 2 * ri, 20)
        layout.setColumnFixedWidth(0, 24)
        self.fit()

    def fit(self) -> None:
        """Show whole images (the views are linked: setting the first sets them all)."""
        if not self.views or self.grid is None:
            return
        run = next(iter(self.grid.cells.values()))
        h, w = run.result.images.shape[1:3]
        # Equal cells: linked views of different sizes would show different parts of the images.
        layout = self.canvas.ci.layout
        nr, nc = len(self.grid.rows), len(self.grid.cols)
        cell_h = max(40, (self.canvas.height() - 30 - nr * 26) // max(nr, 1))
        cell_w = max(40, (self.canvas.width() - 40) // max(nc, 1) - 8)
        side = min(cell_h, cell_w)
        for ri in range(nr):
            layout.setRowFixedHeight(1 + 2 * ri, side)
        for ci in range(nc):
            layout.setColumnFixedWidth(ci + 1, side)
        self.views[0].setRange(xRange=(0, w), yRange=(0, h), padding=0.02)

    def resizeEvent(self, e) -> None:
        super().resizeEvent(e)
        self.fit()

    def showEvent(self, e) -> None:
        super().showEvent(e)
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, self.fit)

    def _plot_depth(self) -> None:
        """Error against layer depth per method (paper 001, Fig. 7)."""
        self.depth_plot.clear()
        self.depth_plot.plotItem.legend.clear()
        key = METRICS[self.metric_box.currentText()]
        self.depth_plot.setLabel("left", self.metric_box.currentText())
        series: dict[str, list[tuple[float, float]]] = {}
        for r in self.runs():
            if r.result is None:
                continue
            depth = C.layer_depth(r)
            if depth is None:
                continue
            m = r.result.metrics
            val = {"nre": self.nre.get(r.id), "rep": m.get("representation_error"), "psnr": m.get("psnr")}[key]
            if val is None:
                continue
            series.setdefault(f"{C.METHOD_NAMES.get(r.method, r.method)} · {r.model}", []).append((depth, val))
        colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
        for i, (name, pts) in enumerate(sorted(series.items())):
            pts.sort()
            x, y = zip(*pts)
            self.depth_plot.plot(x, y, pen=pg.mkPen(colours[i % len(colours)], width=2), symbol="o",
                                 symbolBrush=colours[i % len(colours)], name=name)
        self.series = series

    # -- sweeps ----------------------------------------------------------------------------------
    def default_layers(self) -> list[str]:
        """Four layers spread over the current model (stages with a spatial map; see core.compare)."""
        w = self.window_
        return C.default_sweep_layers(w.rep, w._size())

    def queue_sweep(self) -> list[Run]:
        """Build the sweep's runs from the window's current settings and queue them."""
        from ..core.methods import decoder as D
        from ..core.params import coerce, from_dict

        w = self.window_
        template = w._request_template()
        if template is None:
            return []
        if self.sweep_kind.currentIndex() == 0:
            layers = [t.strip() for t in self.sweep_layers.text().split(",") if t.strip()] or self.default_layers()
            try:
                layers = [w.rep.resolve_layer(layer) for layer in layers]
            except Exception as e:
                w.show_error("Cannot sweep", str(e))
                return []
            methods = (["optimize"] if self.sweep_opt.isChecked() else []) + \
                      (["decoder"] if self.sweep_dec.isChecked() else [])
            decoders = {layer: str(p) for layer in layers if (p := D.find_shipped(template.model, layer)) is not None}
            if w.decoder_panel.current() and w.layer in layers:
                decoders.setdefault(w.layer, w.decoder_panel.current())
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
                w.show_error("Cannot sweep", f"{name}: {e}")
                return []
            runs = C.sweep_param(template, name, values)
            self.cols_box.setCurrentText(f"param:{name}")
        if not runs:
            w.show_error("Nothing to sweep", "No run fits these choices (a decoder sweep needs decoders for the "
                         "layers).")
            return []
        w.begin_batch(runs, "sweep")               # failures are told once, when the sweep is over
        for r in runs:
            w.enqueue(r)
        self.add_runs([r.id for r in runs])
        return runs

    # -- export ------------------------------------------------------------------------------------
    def export_sheet(self, path, tile: int = 512) -> Path | None:
        if self.grid is None or not self.grid.cells:
            return None
        from ..core.export import runs_sidecar, sidecar_path
        from ..core.images import FileSet, check_writable

        try:
            check_writable(path)                 # before the sheet is drawn
            check_writable(sidecar_path(path))
            sheet = C.contact_sheet(self.grid, tile, self.nre)
            with FileSet():                      # the sheet and its sidecar, or neither
                out = C.save_sheet(path, sheet)
                runs_sidecar(out, list(self.grid.cells.values()), contact_sheet=str(out), rows=self.grid.rows,
                             cols=self.grid.cols, rows_by=self.grid.rows_by, cols_by=self.grid.cols_by,
                             normalised_errors=self.nre)
            return out
        except OSError as e:
            self.window_.show_error("Cannot export the contact sheet", str(e))
            return None

    def _sheet_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export contact sheet", "comparison.png", "PNG (*.png)")
        if path:
            self.export_sheet(path)
