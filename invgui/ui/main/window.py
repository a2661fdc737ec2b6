"""The main window: the shell — docks, menus and toolbar, the central result view, closing.

Everything it shows is drawn by views subscribed to its state (``core.state.WindowState``):
the run display, Φ0 and the feature picture, the model chooser and layer tree, the method
page and decoder panel; they and the helpers that write (exports, session files, requests,
the run list's menu) are made in ``views``.  Runs, the queue, the worker thread and the
autosave belong to the ``Controller`` (``ui.threads``).  The window's own methods only set state
(``set_layer`` is ``state.layer = …``) or ask the controller.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QMessageBox

from ...core import representations as R
from ...core.images import ImageError, load_image
from ...core.resources import state_dir
from ...core.session import Run, Session
from ...core.state import WindowState
from ..compare.view import CompareView
from ..threads.background import Background
from ..threads.controller import Controller, warm_up
from ..threads.worker import error_dialog
from ..training.dialog import TrainDialog
from ..widgets import theme, wheel_guard
from ..widgets.run_list import RunList
from . import actions
from .context import Context
from .docks import MethodDock, RepresentationDock, queue_label
from .result_view import LiveRun, ResultView
from .views import Views


def default_size() -> tuple[int, int]:
    """1600×900, or less where the screen is smaller (a laptop, a 1400-px X display: without a
    window manager nothing else keeps the right dock on the screen).  Offscreen (tests,
    --screenshot) keeps 1600×900, the size of the screenshots in docs/images."""
    w, h = 1600, 900
    screen = QGuiApplication.primaryScreen()
    if screen is not None and QGuiApplication.platformName() != "offscreen":
        avail = screen.availableGeometry()
        w, h = min(w, avail.width()), min(h, avail.height())
    return w, h


def _state(name: str) -> property:
    """A window attribute kept in its WindowState (core.state), so it has one place and is observed."""
    return property(lambda w: getattr(w.state, name), lambda w, value: setattr(w.state, name, value))


class MainWindow(QMainWindow):
    # Made in _build (declared here so they are typed where __init__ uses them first).
    left: RepresentationDock
    right: MethodDock
    run_list: RunList

    rep, layer, image, image_source = _state("rep"), _state("layer"), _state("image"), _state("image_source")
    framing, device, shown_run, result = _state("framing"), _state("device"), _state("shown_run"), _state("result")
    probe_result = _state("probe_result")
    runEnded = Signal()            # on the GUI thread, after a run's result or error was shown

    def __init__(self, image: str | None = None, device: str | None = None, restore: bool = True,
                 defer_model: bool = False, model_later: bool = False):
        """``defer_model``: show the window first (in its "loading" state) and, once it has painted,
        build the default representation (weights, layer tree) on a background thread; the app
        starts this way.  ``model_later``: the caller sets a model at once (``app.configure``), so
        the default is not built — it was, and its layer trace went on in the background while the
        chosen model was set up."""
        super().__init__()
        self.setWindowTitle("invgui — what does a representation keep?")
        self.setWindowIcon(theme.icon("invgui"))
        self.resize(*default_size())
        self.setAcceptDrops(True)
        # The window's own state, Qt-free (core.state): rep, layer, image, framing, device, the
        # shown run and result are read and written through it (the properties below).
        self.state = WindowState(device=device or "auto")     # "auto": the first GPU, if any
        self.train_dialog: TrainDialog | None = None
        self.compare_view: CompareView | None = None
        # A scripted window (restore=False: screenshots, benchmarks) keeps its settings in a scratch
        # folder, so it never changes the user's layout, recent files or theme.
        self._scratch = None if restore else tempfile.TemporaryDirectory(prefix="invgui-scratch-")
        folder = Path(self._scratch.name) if self._scratch is not None else state_dir()
        self.settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
        self.state.framing = "fit" if restore and self.settings.value("framing") == "fit" else "crop"
        self.live = LiveRun()                       # the run computing: curves, preview, rate
        self.errors: list[str] = []                 # every error shown (tests read it)

        # The controller owns the run queue, the worker thread and the autosave; a scripted window
        # (restore=False) never writes the user's autosave.
        self.controller = c = Controller(self, device=lambda: self.device, autosave=restore)
        self.background = Background(self)
        self._behind: list = []               # started once the window has painted (paintEvent)
        # The first run's metrics import scikit-image and SciPy (~400 modules: seconds that hold the
        # interpreter and stall the event loop): done behind the painted window, not before it.
        self._behind.append(lambda: self.background.submit("warm-up", warm_up, lambda *_: None))
        self._closed = False
        self._build()
        # The helpers: each takes the shared context (controller, state, background thread, the
        # window's status bar and dialogs) and the widgets it draws on, and subscribes to the
        # state's fields it draws from — nothing below tells a view to redraw.
        ctx = self.ctx = Context(c, self.state, self.background, self)
        views = Views(ctx, self.view, self.left, self.right, self.run_list, self.live)
        self.display, self.features, self.models = views.display, views.features, views.models
        self.files, self.exports, self.requests, self.run_actions = (views.files, views.exports, views.requests,
                                                                      views.run_actions)
        self.display.ended.connect(self.runEnded)
        wheel_guard.guard(self)                      # the wheel changes no value the user did not click
        self.right.decoder_panel.probeRequested.connect(self.probe)
        self.run_list.exportRequested.connect(self._export_run)
        self.acts = actions.build(self)
        self.acts.fit.setChecked(self.framing == "fit")
        self.state.events.framing.connect(lambda framing: self.acts.fit.setChecked(framing == "fit"))
        # The buttons follow the state and the queue.
        for signal in (self.state.events.rep, self.state.events.result, self.state.events.probe_result):
            signal.connect(self._update_buttons)
        for qsignal in (c.idle, c.runStarted, c.runChanged, self.display.ended):
            qsignal.connect(self._update_buttons)
        if model_later:
            pass
        elif defer_model:                   # "loading" shows now; the thread starts after the first paint
            self.models.show_loading(R.DEFAULT)
            self._behind.insert(0, lambda: self.models.load_in_background(R.DEFAULT))
        else:
            self.set_model(R.DEFAULT)
        self.open_image(image or "sample:chelsea")
        self.autosave_timer = c.timer
        self.theme = "system"
        self.set_theme(str(self.settings.value("theme", "system")) if restore else "light")
        theme.follow_system(self)
        if restore:                         # restore=False: a fresh, deterministic window (screenshots)
            self.files.restore_layout()
            self.files.restore_autosave()
        else:
            self.files.fill_recent_menus()
        self._update_buttons()

    def paintEvent(self, e) -> None:
        super().paintEvent(e)
        if self._behind:
            # After the first paint: threads that import or build while holding the interpreter
            # would otherwise delay it (issue 13: the window paints within 3 s of the start).
            jobs, self._behind = self._behind, []
            QTimer.singleShot(0, self, lambda: self._closed or [job() for job in jobs])

    # -- construction ------------------------------------------------------------------------
    def _build(self) -> None:
        """The widgets and docks, and the signals handled by the window itself."""
        self.pixel_label, self.progress = QLabel(""), QLabel("idle")
        self.statusBar().addPermanentWidget(self.pixel_label)
        self.statusBar().addPermanentWidget(self.progress)
        self.view = v = ResultView()
        self.setCentralWidget(v)
        v.pixelHovered.connect(lambda text: self.pixel_label.setText(text))
        # The widgets the window's wiring and its helpers use, named here once.
        self.original_pane, self.recon_pane, self.diff_pane = v.original_pane, v.recon_pane, v.diff_pane
        self.restarts_pane, self.probe_pane, self.visual_pane = v.restarts_pane, v.probe_pane, v.visual_pane
        self.feature_pane, self.plot = v.feature_pane, v.plot
        self.feature_pane.windowPicked.connect(lambda spec: self.right.form.set_value("window", spec))
        self.left = left = RepresentationDock(self.device)
        self.right = right = MethodDock(self.state)
        self.model_box, self.random_weights, self.device_box = left.model_box, left.random_weights, left.device_box
        self.layer_tree, self.layer_filter = left.layer_tree, left.layer_filter
        self.method_box, self.method_stack, self.form = right.method_box, right.method_stack, right.form
        self.nondiff_label, self.hybrid_label, self.decoder_panel = right.nondiff_label, right.hybrid_label, \
            right.decoder_panel
        self.run_button, self.stop_button, self.pause_button = right.run_button, right.stop_button, right.pause_button
        self.metrics_label = right.metrics_label
        self.device_box.currentTextChanged.connect(lambda name: setattr(self.state, "device", name))
        self.layer_tree.layerChosen.connect(self.set_layer)
        self.form.changed.connect(lambda: self.feature_pane.set_window(self.form.text("window")))
        right.priorChosen.connect(lambda text: self.statusBar().showMessage(text, 10000))
        self.decoder_panel.trainRequested.connect(self.open_train_dialog)
        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(self.stop)
        self.pause_button.toggled.connect(self.pause)
        self.run_list = rl = RunList()
        rl.runSelected.connect(lambda rid: self.show_run(self.session.get(rid)))
        docks = {}
        for key, title, widget, area in (("layers", "Layers", left, Qt.DockWidgetArea.LeftDockWidgetArea),
                                         ("runs", "Runs", rl, Qt.DockWidgetArea.LeftDockWidgetArea),
                                         ("params", "Parameters", right, Qt.DockWidgetArea.RightDockWidgetArea)):
            docks[key] = QDockWidget(title, self)
            docks[key].setObjectName(f"{key}_dock")
            docks[key].setWidget(widget)
            self.addDockWidget(area, docks[key])
        self.splitDockWidget(docks["layers"], docks["runs"], Qt.Orientation.Vertical)
        self.resizeDocks([docks["layers"], docks["runs"]], [620, 220], Qt.Orientation.Vertical)
        self.resizeDocks([docks["layers"], docks["params"]], [280, 310], Qt.Orientation.Horizontal)

    def _export_run(self, run_id: str) -> None:
        """The run list's *Export…*: show that run, then the export dialog."""
        self.show_run(self.session.get(run_id))
        self.exports.export_dialog()

    def set_model(self, name: str, params=None, **kw) -> bool:
        """Switch the representation (``ModelChoice.set_model``); False (and why, shown) if it cannot."""
        return self.models.set_model(name, params, **kw)

    def show_run(self, run: Run) -> None:
        self.display.show_run(run)

    def set_theme(self, mode: str) -> bool:
        """Light, dark, or following the system; returns True when dark."""
        return theme.set_window_theme(self, mode)

    def show_about(self) -> QMessageBox:
        self.about_box = actions.about_box(self)
        return self.about_box

    # -- model, layer, image: each sets the state, the views follow ----------------------------
    def method(self) -> str:
        return self.state.method

    def set_method(self, key: str) -> None:
        self.state.method = key

    def _size(self) -> int:
        return self.state.input_side

    def set_layer(self, name: str) -> None:
        self.layer = self.rep.resolve_layer(name)

    def step_layer(self, delta: int) -> str:
        """Select the next (or previous) layer that fits, in the tree's order."""
        names = [i.name for i in self.rep.layers(self._size()) if i.fits]
        if self.layer in names:
            self.set_layer(names[min(max(names.index(self.layer) + delta, 0), len(names) - 1)])
        return self.layer

    def open_image(self, source: str) -> bool:
        """Load an image (path or sample:NAME); on failure show why and keep the current one."""
        try:
            img = load_image(source)
        except ImageError as e:
            self.show_error("Cannot open the image", str(e))
            return False
        self.controller.window_images = {str(source): img}     # queued runs reuse it, no second decode
        self.state.set(image=img, image_source=str(source))
        if not str(source).startswith("sample:"):
            self.files.add_recent("images", str(Path(source).resolve()))
        return True

    def probe(self) -> bool:
        """The decoder page's *Run probe*: its pane says it runs."""
        title = self.requests.probe()
        if title is not None:
            self.display.probe_started(title)
            self._update_buttons()
        return title is not None

    def dragEnterEvent(self, e) -> None:
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dropEvent(self, e) -> None:
        urls = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_image(urls[0])
            e.acceptProposedAction()

    # -- requests ----------------------------------------------------------------------------
    def running(self) -> bool:
        return self.controller.running()

    @property
    def session(self) -> Session:
        return self.controller.session

    @property
    def active_run(self) -> Run | None:
        return self.controller.active

    def run(self) -> bool:
        """Queue a run with the current settings; it starts at once when nothing else is running."""
        run = self.requests.request() if self.image is not None and self.rep is not None else None
        if run is not None:
            self.enqueue(run)
        return run is not None

    def enqueue(self, run: Run) -> Run:
        self.controller.submit(run)
        if run.state == "queued":
            self.statusBar().showMessage(f"queued: {run.label()} ({self.controller.queue.waiting()} waiting)", 5000)
        return run

    def open_compare(self, run_ids: list[str] | None = None) -> CompareView:
        """The comparison view of the given runs (default: the selected ones, or every finished run)."""
        selected = self.run_list.selected_ids()
        ids = run_ids if run_ids is not None else (selected if len(selected) > 1 else
                                                   [r.id for r in self.session.runs if r.result is not None])
        if self.compare_view is None:
            self.compare_view = CompareView(self.controller, self.state, self.requests.sweep_context,
                                            self.show_error)
        self.compare_view.set_runs(ids)
        self.compare_view.show()
        self.compare_view.raise_()
        return self.compare_view

    def open_train_dialog(self) -> TrainDialog | None:
        if self.rep is None:
            return None
        if self.train_dialog is not None and self.train_dialog.running():
            self.train_dialog.raise_()
            return self.train_dialog
        if self.train_dialog is not None:
            self.train_dialog.close()
        self.train_dialog = TrainDialog(self.state, self)
        self.train_dialog.trained.connect(self.decoder_panel.add_file)
        self.train_dialog.show()
        return self.train_dialog

    def pause(self, on: bool) -> None:
        """Pause or resume the running job."""
        on = on and self.running()
        self.controller.pause(on)
        self.pause_button.blockSignals(True)
        self.pause_button.setChecked(on)
        self.pause_button.setText("Resume" if on else "Pause")
        self.pause_button.blockSignals(False)
        if on:
            self.progress.setText("paused")

    def stop(self) -> None:
        self.pause(False)
        if self.running():
            self.controller.stop()
            self.statusBar().showMessage("stopping…")

    @property
    def history(self) -> dict[str, list[float]]:
        """The curves shown: the running run's so far, or the shown result's."""
        return self.live.history

    def _update_buttons(self) -> None:
        busy = self.running()
        for act in (self.run_button, self.acts.run, self.acts.compare):
            act.setEnabled(self.rep is not None)  # while busy, Run queues; before the model is loaded, nothing
        self.run_button.setText(queue_label(self.session.runs) if busy else "Run")
        for act in (self.stop_button, self.acts.stop, self.pause_button, self.acts.pause):
            act.setEnabled(busy)
        if not busy and self.pause_button.isChecked():
            self.pause(False)
        self.acts.export.setEnabled(self.result is not None)
        self.acts.export_probe.setEnabled(self.probe_result is not None)
        for w in (self.decoder_panel.probe_button, self.method_box):
            w.setEnabled(not busy)
        # Model, image and parameters stay editable while a run computes: Run then queues the next one.

    # -- errors, closing ---------------------------------------------------------------------
    def show_error(self, title: str, text: str, detail: str = "") -> None:
        """A readable, non-blocking dialog; the traceback goes under 'Show Details'."""
        error_dialog(self, self.errors, title, text, detail)

    def closeEvent(self, e) -> None:
        self._closed, self._behind = True, []     # nothing starts behind a closed window
        self.display.timer.stop()
        if self.train_dialog is not None:
            self.train_dialog.close()          # stops its training run and joins its thread
        if self.compare_view is not None:
            self.compare_view.close()
        self.controller.shutdown()             # stops the run, joins the worker, writes the autosave
        self.background.close()
        self.models.join()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()
        super().closeEvent(e)
