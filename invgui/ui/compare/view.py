"""The comparison view: runs in a grid with shared zoom/pan, labels and metrics; sweeps; error vs depth."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTabBar,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ...core import compare as C
from ...core.evaluate import EvaluateError
from ...core.images import source_label
from ...core.methods.registry import method as method_spec
from ...core.methods.registry import window_methods
from ...core.results import Metrics
from ...core.session import Run
from ...core.state import SweepContext, WindowState, subscribe
from ..threads.jobs import Job, create_worker
from ..widgets import folders, wheel_guard
from ..widgets.figures import DEPTH_PADDING, curve_pen, curve_style, layer_ticks, legend_outside
from ..widgets.plots import cache_axes
from .grid import CellGrid
from .results import EvaluationPanel

METRICS = {"normalised reconstruction error": "nre", "representation error": "rep", "PSNR": "psnr"}
MAX_CURVES = 12                     # more curves (and legend rows) are neither readable nor cheap to paint


class CompareView(QWidget):
    """A window of its own; ``set_runs`` fills it, ``refresh`` redraws after runs finished."""

    sheetWritten = Signal(object, str)       # path (None on failure), error message

    def __init__(self, controller, state: WindowState, sweep_context: Callable[[], SweepContext | None],
                 show_error: Callable[[str, str], None], parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.Window)
        self._jobs: list[Job] = []               # its computing jobs, joined when it closes
        self.controller = controller             # the session's runs; sweeps are submitted to it
        self.sweep_context = sweep_context
        self.show_error = show_error
        controller.runFinished.connect(self._finished)
        self.setWindowTitle("invgui — compare runs")
        self.resize(1400, 850)
        self.run_ids: list[str] = []
        self.grid: C.Grid | None = None
        self.nre: dict[str, float] = {}
        self._distance_cache: dict[int, float | None] = {}
        self._distance_pending: set[int] = set()
        self.sheetWritten.connect(self._on_sheet_written)
        self._depth_items: dict[str, tuple] = {}   # name -> (curve, error bars)
        self._nre_cache: dict[tuple, float | None] = {}   # (run id, result, N) -> normalised error
        self.series: dict = {}

        controls = QHBoxLayout()
        self.rows_box, self.cols_box = QComboBox(), QComboBox()
        for box, default in ((self.rows_box, "method"), (self.cols_box, "auto")):
            box.addItems(["auto"] + list(C.AXES) + ["param:parameterisation", "param:tv_weight", "param:lr",
                                                    "param:seed", "param:iters"])
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

        self.cell_grid = CellGrid()               # only the cells in sight exist (compare_grid)
        self.notes = QLabel("")
        self.notes.setWordWrap(True)
        self.notes.setStyleSheet("color: #8a5a00")
        self._refresh_timer = QTimer(self, singleShot=True)
        self._refresh_timer.timeout.connect(self._refresh_in_two)
        self.depth_plot = pg.PlotWidget(background="w")
        self.depth_plot.showGrid(x=True, y=True, alpha=0.3)
        self.depth_plot.setLabel("bottom", "layer, at its relative depth (0 = input, 1 = last module)")
        legend_outside(self.depth_plot.getPlotItem(), labelTextColor="#202020")
        self.depth_plot.getViewBox().setDefaultPadding(DEPTH_PADDING)
        cache_axes(self.depth_plot)
        for axis in ("left", "bottom"):
            self.depth_plot.getAxis(axis).enableAutoSIPrefix(False)
        self.depth_note = QLabel("")
        self.depth_note.setStyleSheet("color: #8a5a00")
        self.depth_note.hide()

        sweep = QGroupBox("Sweep (queued with the window's current settings as the template)")
        sf = QFormLayout(sweep)
        self.sweep_kind = QComboBox()
        self.sweep_kind.addItems(["methods × layers", "one parameter", "methods × images"])
        self.sweep_layers = QLineEdit()
        self.sweep_layers.setPlaceholderText("layers, comma-separated (empty: four spread over the network)")
        mrow = QHBoxLayout()
        # One box per method the window offers (the registry's), as the method says (Method.sweep_choice).
        self.sweep_boxes: dict[str, QCheckBox] = {}
        for m in window_methods():
            label, tip, ticked = m.sweep_choice()
            tick = self.sweep_boxes[m.name] = QCheckBox(label)
            tick.setToolTip(tip)
            tick.setChecked(ticked)
            mrow.addWidget(tick)
        self.sweep_param = QComboBox()
        import dataclasses

        from ...core.methods.optimize_params import OptimizeParams

        self.sweep_param.addItems([f.name for f in dataclasses.fields(OptimizeParams)])
        self.sweep_param.setCurrentText("tv_weight")
        self.sweep_values = QLineEdit("1, 10, 100")
        irow = QHBoxLayout()
        self.sweep_images = QLineEdit()
        self.sweep_images.setPlaceholderText("files or sample:NAME, comma-separated (empty: the open image "
                                             "and three samples)")
        self.sweep_images.setToolTip("Images reconstructed at the window's layer with its settings; the "
                                     "optimisation runs share one batch (all their restarts together).")
        browse = self.sweep_browse = QPushButton("Add files…")
        browse.clicked.connect(self._browse_images)
        irow.addWidget(self.sweep_images, 1)
        irow.addWidget(browse)
        self.sweep_button = QPushButton("Queue sweep")
        self.sweep_button.clicked.connect(self.queue_sweep)
        self.sweep_again = QCheckBox("also runs the session has already")
        self.sweep_again.setToolTip("A sweep skips the runs the session has already (same request, queued, "
                                    "running or done) unless this is ticked")
        self.sweep_said = QLabel("")                # what the last sweep queued and skipped
        self.sweep_said.setWordWrap(True)
        # What a sweep would start from, drawn from the window's state as it changes (a sweep queued
        # after a layer or model change in the window used the new one without a word here).
        self.sweep_template = QLabel("")
        self.sweep_template.setWordWrap(True)
        self.state = state
        subscribe(state, ("rep", "layer", "size", "image_source", "method", "decoder", "random_weights"),
                  self._show_template)
        self._show_template()
        sf.addRow("From", self.sweep_template)
        sf.addRow("Kind", self.sweep_kind)
        sf.addRow("Layers", self.sweep_layers)
        sf.addRow("Methods", mrow)
        sf.addRow("Parameter", self.sweep_param)
        sf.addRow("Values", self.sweep_values)
        sf.addRow("Images", irow)
        sf.addRow(self.sweep_again)
        sf.addRow(self.sweep_button)
        sf.addRow(self.sweep_said)
        self.sweep_kind.currentIndexChanged.connect(self._kind_changed)
        self._kind_changed(self.sweep_kind.currentIndex())

        side = QWidget()
        sl = QVBoxLayout(side)
        sl.addWidget(self.depth_plot, 1)
        sl.addWidget(self.depth_note)
        sl.addWidget(sweep)
        split = QSplitter(Qt.Orientation.Horizontal)
        grid_side = QWidget()
        gl = QVBoxLayout(grid_side)
        gl.setContentsMargins(0, 0, 0, 0)
        gl.addWidget(self.notes)
        gl.addWidget(self.cell_grid, 1)
        self.caption_key = QLabel(C.CAPTION_KEY)
        self.caption_key.setWordWrap(True)
        self.caption_key.setObjectName("caption_key")
        self.caption_key.setStyleSheet("color: palette(mid); font-size: small;")
        gl.addWidget(self.caption_key)
        split.addWidget(grid_side)
        split.addWidget(side)
        split.setSizes([950, 450])
        session_tab = QWidget()
        tl = QVBoxLayout(session_tab)
        tl.addLayout(controls)
        tl.addWidget(split, 1)
        # The session's runs in the first tab; each results folder of `invgui evaluate` opened here
        # in a tab of its own (results_view), closable.
        self.tabs = QTabWidget()
        self.tabs.addTab(session_tab, "Session runs")
        self.tabs.setTabsClosable(True)
        bar = self.tabs.tabBar()
        for position in (QTabBar.ButtonPosition.RightSide, QTabBar.ButtonPosition.LeftSide):
            bar.setTabButton(0, position, None)       # the session's tab stays
        self.tabs.tabCloseRequested.connect(self._close_tab)
        self.open_results_button = QPushButton("Open results folder…")
        self.open_results_button.setToolTip("A results folder of `invgui evaluate`: its table, plot and images")
        self.open_results_button.clicked.connect(self.open_results_dialog)
        self.tabs.setCornerWidget(self.open_results_button)
        lay = QVBoxLayout(self)
        lay.addWidget(self.tabs)
        wheel_guard.guard(self)                     # its boxes take the wheel only once clicked

    # -- contents ------------------------------------------------------------------------------
    def runs(self) -> list[Run]:
        by_id = {r.id: r for r in self.controller.session.runs}     # session.get per id was O(runs²)
        return [by_id[i] for i in self.run_ids if i in by_id]

    def _finished(self, run: Run | None, _res) -> None:
        if run is not None:
            self.run_finished(run)

    def run_finished(self, run: Run) -> None:
        """A run ended: redraw (once for a burst of runs: at most once a second) if it is one of this
        view's."""
        if self.isVisible() and run.id in self.run_ids and not self._refresh_timer.isActive():
            self.refresh_soon(1000)

    def _start(self, job: Job) -> None:
        self._jobs = [j for j in self._jobs if j.running()] + [job]
        job.start()

    def closeEvent(self, e) -> None:
        # A job still computing when the interpreter exited aborted the process ("terminate called
        # without an active exception"): they finish first.
        for job in self._jobs:
            job.wait(timeout=30)
        self._jobs.clear()
        super().closeEvent(e)

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
            self._distance_pending.add(size)

            def compute() -> float | None:
                from ...core.metrics import eval_set_distance

                try:
                    return eval_set_distance("samples", size)
                except Exception:                    # no N: the captions simply omit the error
                    return None

            self._start(create_worker(compute, _start_thread=False, _name="invgui-compare-N",
                                      _connect={"returned": lambda value: self._on_distance(size, value)}))
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

    def _refresh_in_two(self) -> None:
        """The redraw after runs finished: the grid now, the depth plot at the next turn of the event
        loop, so each is painted apart (together ~40 ms of the GUI thread per finished run with
        Compare open while runs computed; bench_gui --session)."""
        self.refresh(depth=False)
        QTimer.singleShot(0, self._plot_depth)

    def refresh(self, depth: bool = True) -> None:
        runs = [r for r in self.runs() if r.result is not None]
        try:
            self.grid = C.grid(runs, self._axis(self.rows_box), self._axis(self.cols_box))
        except ValueError as e:
            self.show_error("Cannot arrange the runs", str(e))
            return
        self.nre = {}
        for r in runs:
            if r.result is None:
                continue
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
        if depth:
            self._plot_depth(runs)

    def _draw_grid(self) -> None:
        g = self.grid
        self.notes.setText("\n".join(g.notes) if g is not None else "")
        self.notes.setVisible(bool(g is not None and g.notes))
        self.cell_grid.set_grid(g, self.nre)

    @property
    def views(self) -> list[pg.ViewBox]:
        """The view boxes of the cells in sight, in grid order."""
        return self.cell_grid.views

    def fit(self, force: bool = False) -> None:
        self.cell_grid.fit(force)

    def showEvent(self, e) -> None:
        super().showEvent(e)
        QTimer.singleShot(0, lambda: self.fit(force=True))    # the first open: the viewport has its size now

    def _plot_depth(self, runs: list[Run] | None = None) -> None:
        """Error against layer depth (paper 001, Fig. 7); one curve per set of runs that differ only
        in their layer or seed (core.compare.depth_series: the mean, with a bar from the lowest to
        the highest seed).  Curves are given new data, not re-made; at most MAX_CURVES are drawn."""
        key = METRICS[self.metric_box.currentText()]
        if self.depth_plot.getAxis("left").labelText != self.metric_box.currentText():
            self.depth_plot.setLabel("left", self.metric_box.currentText())   # re-lays out the axis

        def value(r: Run):
            m = Metrics.of(r.result if r.result is not None else {})
            return {"nre": self.nre.get(r.id), "rep": m.representation_error, "psnr": m.psnr}[key]

        finished = runs if runs is not None else [r for r in self.runs() if r.result is not None]
        kinds: dict[str, str] = {}
        every = C.depth_series(finished, value, kinds)
        ticks: dict[float, set[str]] = {}
        for r in finished:
            if (depth := C.layer_depth(r)) is not None:
                ticks.setdefault(round(depth, 4), set()).add(r.layer)
        # a name needs ~75 px: in a plot of w px showing ~1.25 of depth, that much depth apart
        width = max(self.depth_plot.getViewBox().width(), 200)
        self.depth_plot.getAxis("bottom").setTicks(layer_ticks({d: " / ".join(sorted(names))
                                                                for d, names in ticks.items()},
                                                               spacing=max(0.1, 75 / width * 1.25)))
        series = dict(list(every.items())[:MAX_CURVES])
        self.depth_note.setText(f"{len(series)} of {len(every)} curves drawn: compare fewer runs to see the "
                                "others" if len(every) > len(series) else "")
        self.depth_note.setVisible(len(every) > len(series))
        if series == self.series and key == getattr(self, "_series_key", None):
            return
        old = self.series if key == getattr(self, "_series_key", None) else {}
        self.series, self._series_key = series, key
        for name in [n for n in self._depth_items if n not in series]:
            item, bars = self._depth_items.pop(name)
            for it in (item, bars):
                self.depth_plot.removeItem(it)
            self.depth_plot.plotItem.legend.removeItem(item)
        nth: dict[str, list[str]] = {}             # curves of one kind, by name: solid, dashed, …
        for name in sorted(series):
            nth.setdefault(kinds.get(name, ""), []).append(name)
        for name, pts in series.items():
            if name in self._depth_items and old.get(name) == pts:
                continue                           # this curve did not change
            x, y, lo, hi = (np.asarray(v, dtype=float) for v in zip(*pts, strict=True))
            kind = kinds.get(name, "")
            colour, symbol = curve_style(kind)
            if name not in self._depth_items:
                item = self.depth_plot.plot(name=name)
                bars = pg.ErrorBarItem(x=x, y=y, beam=0.015, pen=pg.mkPen(colour, width=1))
                self.depth_plot.addItem(bars)
                self._depth_items[name] = (item, bars)
            item, bars = self._depth_items[name]
            # One depth only (a representation of one layer, HOG): a point, not part of a line.
            pen = curve_pen(colour, nth[kind].index(name)) if len(x) > 1 else None
            item.setData(x, y, pen=pen, symbol=symbol, symbolSize=9, symbolBrush=colour, symbolPen=colour)
            bars.setData(x=x, y=y, top=hi - y, bottom=y - lo, pen=pg.mkPen(colour, width=1))

    # -- results folders of `invgui evaluate` ----------------------------------------------------
    def open_results_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a results folder of invgui evaluate",
                                                str(folders.folder("results")))
        if path:
            folders.remember("results", path)          # the next dialog opens beside this folder
            self.open_results(path)

    def open_results(self, folder) -> EvaluationPanel | None:
        """Show a results folder in a tab (the one it has, read again, if it is open already)."""
        folder = Path(folder).resolve()
        for panel in self.evaluations():
            if panel.folder.resolve() == folder:
                panel.reload()
                self.tabs.setCurrentWidget(panel)
                return panel
        try:
            panel = EvaluationPanel(folder, self.show_error)
        except EvaluateError as e:
            self.show_error("Cannot open the results folder", str(e))
            return None
        self.tabs.addTab(panel, f"Evaluation: {folder.name}")
        self.tabs.setTabToolTip(self.tabs.count() - 1, str(folder))
        self.tabs.setCurrentWidget(panel)
        return panel

    def evaluations(self) -> list[EvaluationPanel]:
        return [w for i in range(self.tabs.count()) if isinstance(w := self.tabs.widget(i), EvaluationPanel)]

    def current_evaluation(self) -> EvaluationPanel | None:
        """The results folder in sight, else the last one opened."""
        w = self.tabs.currentWidget()
        if isinstance(w, EvaluationPanel):
            return w
        panels = self.evaluations()
        return panels[-1] if panels else None

    def _close_tab(self, index: int) -> None:
        w = self.tabs.widget(index)
        if isinstance(w, EvaluationPanel):
            self.tabs.removeTab(index)
            w.deleteLater()

    # -- sweeps ----------------------------------------------------------------------------------
    def _show_template(self) -> None:
        """The window's settings a sweep starts from: representation, layer, side, image, method."""
        st = self.state
        if st.rep is None:
            self.sweep_template.setText("the window's model is loading")
            return
        parts = [st.rep.title + (" (random weights)" if st.random_weights else ""), st.layer,
                 f"{st.input_side} px", source_label(st.image_source), method_spec(st.method).word]
        if st.decoder and method_spec(st.method).uses_decoder:
            parts.append(f"decoder {Path(st.decoder).name}")
        self.sweep_template.setText(" · ".join(p for p in parts if p))

    def default_layers(self) -> list[str]:
        """Four layers spread over the current model (stages with a spatial map; see core.compare)."""
        ctx = self.sweep_context()
        return [] if ctx is None else C.default_sweep_layers(ctx.rep, ctx.size)

    def queue_sweep(self) -> list[Run]:
        """Build the sweep's runs from the window's current settings and queue them."""
        from ...core.methods.decoder import checkpoint as D
        from ...core.params import coerce, from_dict

        ctx = self.sweep_context()
        if ctx is None:
            return []
        template = ctx.template
        # Like for like: the decoders at the window's side too — unless a decoder size was chosen in
        # the decoder panel, which is then kept, and said.
        one_side = ctx.decoder_size or ctx.size
        skipped_said: list[str] = []
        if self.sweep_kind.currentIndex() == 0:
            methods = self.sweep_methods()
            given = [t.strip() for t in self.sweep_layers.text().split(",") if t.strip()]
            if given:
                layers = given
            else:                      # with a decoder method ticked: layers that have decoders first
                wants = any(method_spec(m).uses_decoder for m in methods)
                shipped = D.shipped_layers(template.model) if wants else []
                layers = C.sweep_default_layers(ctx.rep, ctx.size, shipped + ([ctx.layer] if wants and ctx.decoder
                                                                               else []))
            try:
                layers = [ctx.rep.resolve_layer(layer) for layer in layers]
            except Exception as e:
                self.show_error("Cannot sweep", str(e))
                return []
            decoders = {layer: str(p) for layer in layers if (p := D.find_shipped(template.model, layer)) is not None}
            if ctx.decoder and ctx.layer in layers:
                decoders.setdefault(ctx.layer, ctx.decoder)
            runs = C.sweep_layers(template, methods, layers, decoders, size=one_side, skipped=skipped_said)
        elif self.sweep_kind.currentIndex() == 2:
            from ...core.images import ImageError, check_source

            images = self.sweep_image_list(template.image)
            try:
                for source in images:
                    check_source(source)          # a missing file or unknown sample: said now, not per run
            except ImageError as e:
                self.show_error("Cannot sweep", str(e))
                return []
            methods = self.sweep_methods()
            decoder = ctx.decoder or (str(p) if (p := D.find_shipped(template.model, ctx.layer)) else None)
            runs = C.sweep_images(template, methods, images, decoder, size=one_side)
            self.cols_box.setCurrentText("image")
        else:
            from ...core.methods.optimize_params import OptimizeParams

            name = self.sweep_param.currentText()
            try:
                values = [coerce(OptimizeParams, name, v.strip()) for v in self.sweep_values.text().split(",")
                          if v.strip()]
                for v in values:                 # each value within the parameter's range, finite
                    from_dict(OptimizeParams, {**template.param_values(), name: v})
            except (ValueError, TypeError) as e:
                self.show_error("Cannot sweep", f"{name}: {e}")
                return []
            runs = C.sweep_param(template, name, values)
            self.cols_box.setCurrentText(f"param:{name}")
        if not runs:
            self.show_error("Nothing to sweep", "No run fits these choices (a decoder sweep needs decoders for the "
                            "layers).")
            return []
        planned = len(runs)
        skipped = 0
        if not self.sweep_again.isChecked():
            runs, skipped = C.new_runs(runs, self.controller.session.runs)
        said = (f"queued {len(runs)} of the sweep's {planned} runs; {skipped} the session has already "
                "were skipped (tick the box above to queue them again)" if skipped else f"queued {len(runs)} runs")
        said += (f", every method at {ctx.size} px" if not ctx.decoder_size else
                 f", the decoders at {ctx.decoder_size} px (the decoder panel's size), the others at {ctx.size} px")
        if skipped_said:
            said += (f"; not queued: {', '.join(skipped_said)} — no decoder for "
                     f"{'that layer' if len(skipped_said) == 1 else 'those layers'} (train one, or pick layers that "
                     "have one)")
        self.sweep_said.setText(said)
        if not runs:
            self.sweep_said.setText(f"nothing queued: the session has all {planned} runs of this sweep already "
                                    "(tick the box above to queue them again)")
            return []
        self.add_runs([r.id for r in runs])
        self.controller.submit_batch(runs, "sweep")     # failures are told once, when the sweep is over
        return runs

    def _kind_changed(self, kind: int) -> None:
        """Only the fields the chosen kind of sweep reads can be edited."""
        for widgets, kinds in (((self.sweep_layers,), (0,)), (tuple(self.sweep_boxes.values()), (0, 2)),
                               ((self.sweep_param, self.sweep_values), (1,)),
                               ((self.sweep_images, self.sweep_browse), (2,))):
            for w in widgets:
                w.setEnabled(kind in kinds)

    def sweep_methods(self) -> list[str]:
        """The methods ticked for a layers or images sweep, in the grid's order."""
        return [name for name, box in self.sweep_boxes.items() if box.isChecked()]

    def sweep_image_list(self, current: str) -> list[str]:
        """The images of a methods × images sweep: the field's, or the open image and three samples."""
        given = [t.strip() for t in self.sweep_images.text().split(",") if t.strip()]
        if given:
            return list(dict.fromkeys(given))
        samples = [f"sample:{n}" for n in ("chelsea", "coffee", "astronaut", "rocket")]
        return list(dict.fromkeys([current] + samples))[:4]

    def _browse_images(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Images to sweep over", "",
                                                "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.webp);;All files (*)")
        if paths:
            have = [t.strip() for t in self.sweep_images.text().split(",") if t.strip()]
            self.sweep_images.setText(", ".join(dict.fromkeys(have + paths)))
            self.sweep_kind.setCurrentIndex(2)

    # -- export ------------------------------------------------------------------------------------
    def export_sheet(self, path, tile: int = 512, background: bool = False) -> Path | None:
        """Write the grid as a contact sheet (PNG at 300 dpi) and its JSON sidecar.  With
        ``background`` (the dialog) it is drawn and written on a thread — a sheet of many 512 px
        tiles takes about a second — and ``sheetWritten`` tells when it is there."""
        if self.grid is None or not self.grid.cells:
            return None
        from ...core.export import sidecar_path
        from ...core.files import check_writable

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
        self.sheet_status.setText(f"writing {Path(path).name}…")
        self._start(create_worker(_write_sheet, path, grid, nre, tile, _start_thread=False,
                                  _name="invgui-contact-sheet",
                                  _connect={"returned": lambda out: self.sheetWritten.emit(out, ""),
                                            "errored": self._sheet_failed}))
        return None

    def _sheet_failed(self, error: BaseException) -> None:
        if not isinstance(error, OSError):
            raise error
        self.sheetWritten.emit(None, str(error))

    def _on_sheet_written(self, path, error: str) -> None:
        if path is None:
            self.sheet_status.setText("")
            self.show_error("Cannot export the contact sheet", error)
        else:
            self.sheet_status.setText(f"wrote {path}")

    def _sheet_dialog(self) -> None:
        path, _ = folders.save_dialog(self, "Export contact sheet", "sheets", "comparison.png", "PNG (*.png)")
        if path:
            self.export_sheet(path, background=True)


def _write_sheet(path, grid: C.Grid, nre: dict, tile: int) -> Path:
    """Draw and write the sheet and its sidecar (any thread: it touches no widget)."""
    from ...core.export import runs_sidecar
    from ...core.files import FileSet

    sheet = C.contact_sheet(grid, tile, nre)
    with FileSet():                              # the sheet and its sidecar, or neither
        out = C.save_sheet(path, sheet)
        runs_sidecar(out, list(grid.cells.values()), contact_sheet=str(out), rows=grid.rows, cols=grid.cols,
                     rows_by=grid.rows_by, cols_by=grid.cols_by, normalised_errors=nre)
    return out
