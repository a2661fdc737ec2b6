"""The main window: image panes, layer tree, parameter dock, live loss curves."""

from __future__ import annotations

import functools
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDockWidget, QFileDialog, QLabel, QMainWindow,
                               QInputDialog, QLineEdit, QMessageBox, QPushButton, QScrollArea, QSplitter,
                               QStackedWidget,
                               QVBoxLayout, QWidget, QHBoxLayout)

from ..core import representations as R
from ..core.events import Result, Step
from ..core.export import export_result, image_strip, run_record, write_json
from ..core.images import SAMPLES, ImageError, image_batch, load_image, resize_center_crop
from ..core.methods import optimize
from ..core.params import from_dict, to_dict
from ..core.session import SUFFIX, QueueError, Run, Session, SessionError, autosave_path, recover_autosave
from .controller import Controller
from .compare_view import CompareView
from .decoder_panel import DecoderPanel, TrainDialog
from .image_pane import FeatureMapPane, ImagePane, colourise, mosaic
from .layer_tree import LayerTree
from .param_form import ParamForm
from .plots import LossPlot
from .run_list import RunList
from . import theme
from .worker import error_dialog

OPEN_MODEL = "<open model file>"
METHODS = {"optimize": "Optimisation (Mahendran & Vedaldi)", "decoder": "Decoder (Dosovitskiy & Brox)"}
SESSION_FILTER = f"invgui session (*{SUFFIX});;All files (*)"
MAX_RECENT = 10
DRAW_INTERVAL_MS = 100          # previews and curves are redrawn at most ~10 times a second
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp);;All files (*)"


class MainWindow(QMainWindow):
    runEnded = Signal()            # on the GUI thread, after a run's result or error was shown
    modelLoaded = Signal(object, object)   # (representation or None, error message): from the loading thread

    def __init__(self, image: str | None = None, device: str | None = None, restore: bool = True,
                 defer_model: bool = False):
        """``defer_model``: show the window first and build the default representation (timm,
        weights, layer tree: seconds on a laptop) on a background thread; the app starts this way."""
        super().__init__()
        self.setWindowTitle("invgui — what does a representation keep?")
        self.setWindowIcon(theme.icon("invgui"))
        self.resize(1600, 900)
        self.setAcceptDrops(True)
        self.device = device or _devices()[min(1, len(_devices()) - 1)]   # the first GPU, if any
        self.rep: R.Representation | None = None
        self.model_weights: dict[str, str] = {}       # explicit state-dict file per model (else its own)
        self.image_source = ""
        self.image: np.ndarray | None = None
        self.result: Result | None = None
        self.probe_result: Result | None = None
        self.train_dialog: TrainDialog | None = None
        self.shown_run: Run | None = None           # the run whose result the panes show
        self._batch: dict | None = None             # a sweep's runs, whose failures are told together
        self.compare_view: CompareView | None = None
        self._rf_cache: dict[tuple, int | None] = {}      # receptive field per (model, weights, layer, size)
        # A scripted window (restore=False: screenshots, benchmarks) keeps its settings in a scratch
        # folder, so it never changes the user's layout, recent files or theme.
        self._scratch = None if restore else tempfile.TemporaryDirectory(prefix="invgui-scratch-")
        settings_dir = autosave_path().parent if restore else Path(self._scratch.name)
        self.settings = QSettings(str(settings_dir / "settings.ini"), QSettings.Format.IniFormat)
        self.history: dict[str, list[float]] = {}
        self.latest_preview: np.ndarray | None = None
        self.last_step: Step | None = None
        self.errors: list[str] = []                 # every error shown (tests read it)
        self._dirty = False
        self._run_started = 0.0
        self._rate = (0, 0.0)                       # (iteration, time) at the last status update

        # The controller owns the run queue, the worker thread and the autosave; a scripted window
        # (restore=False: screenshots, benchmarks) never writes the user's autosave.
        self.controller = Controller(self, device=lambda: self.device, autosave=restore)
        c = self.controller
        c.runChanged.connect(self._on_run_changed)
        c.runRemoved.connect(self._on_run_removed)
        c.runStarted.connect(self._on_run_started)
        c.steps.connect(self._on_step)
        c.status.connect(self._on_status)
        c.runFinished.connect(self._on_finished)
        c.runFailed.connect(self._on_failed)
        c.cannotStart.connect(self._on_cannot_start)
        c.probeFinished.connect(self._on_probe_finished)
        c.idle.connect(self._on_idle)
        c.sessionReplaced.connect(self._on_session_replaced)
        c.autosaveFailed.connect(lambda msg: self.statusBar().showMessage(f"autosave failed: {msg}", 8000))

        self._build_panes()
        self._build_docks()
        self._build_actions()
        self.pixel_label = QLabel("")
        self.statusBar().addPermanentWidget(self.pixel_label)
        self.progress = QLabel("idle")
        self.statusBar().addPermanentWidget(self.progress)

        self.timer = QTimer(self)
        self.timer.setInterval(DRAW_INTERVAL_MS)
        self.timer.timeout.connect(self._redraw)
        self.timer.start()

        self.modelLoaded.connect(self._on_model_loaded)
        if defer_model:
            self._load_model_in_background(R.DEFAULT)
        else:
            self.set_model(R.DEFAULT)
        self.open_image(image or "sample:chelsea")
        self.autosave_timer = c.timer
        self.theme = "system"
        self.set_theme(self.settings.value("theme", "system") if restore else "light")
        try:
            from PySide6.QtWidgets import QApplication

            QApplication.instance().styleHints().colorSchemeChanged.connect(
                lambda *_: self.theme == "system" and self.set_theme("system"))
        except AttributeError:
            pass
        if restore:                         # restore=False: a fresh, deterministic window (screenshots)
            self._restore_layout()
            self.restore_autosave()
        else:
            self._fill_recent_menus()
        self._update_buttons()

    # -- construction ------------------------------------------------------------------------
    def _build_panes(self) -> None:
        self.original_pane = ImagePane("Original", unit=True)
        self.recon_pane = ImagePane("Reconstruction", unit=True)
        self.feature_pane = FeatureMapPane()
        self.feature_pane.windowPicked.connect(lambda spec: self.form.set_value("window", spec))
        self.restarts_pane = ImagePane("Restarts and deviation")
        self.restarts_pane.hide()
        self.diff_pane = ImagePane("Difference", unit=True)          # |reconstruction − original|
        self.diff_pane.hide()
        # Original, reconstruction and difference have the same size: one zoom and pan for all three.
        self.recon_pane.link(self.original_pane)
        self.diff_pane.link(self.original_pane)
        self.probe_pane = ImagePane("Probe")             # image strip of a feature-space probe
        self.probe_pane.hide()
        self.visual_pane = ImagePane("Features")        # HOG glyphs, SIFT keypoints, LBP map
        self.visual_pane.hide()
        self.visual: np.ndarray | None = None
        self._visual_key: tuple | None = None
        self._fmap_key: tuple | None = None
        self.plot = LossPlot()
        top = QSplitter(Qt.Orientation.Horizontal)
        for pane in (self.original_pane, self.recon_pane, self.diff_pane, self.restarts_pane, self.probe_pane,
                     self.visual_pane, self.feature_pane):
            top.addWidget(pane)
            pane.pixelHovered.connect(self._on_pixel)
        top.setSizes([420, 420, 420, 420, 600, 420, 300])
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(top)
        self.splitter.addWidget(self.plot)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.setCentralWidget(self.splitter)

    def _build_docks(self) -> None:
        # Left: representation and its layer tree.
        left = QWidget()
        lay = QVBoxLayout(left)
        self.model_box = QComboBox()
        for name in R.names():
            status = R.weights_status(name)
            title = R.REGISTRY[name].title + ("" if not status.startswith("missing") else " — weights missing")
            self.model_box.addItem(title, name)
            self.model_box.setItemData(self.model_box.count() - 1, f"weights: {status}", Qt.ItemDataRole.ToolTipRole)
        self.model_box.addItem("Open a model file (TorchScript, or state dict + architecture)…", OPEN_MODEL)
        self.model_box.setToolTip("Representation to invert")
        self.random_weights = QCheckBox("Random weights")
        self.random_weights.setToolTip("Use untrained (seeded) weights instead of pretrained ones")
        self.device_box = QComboBox()
        self.device_box.addItems(_devices())
        self.device_box.setCurrentText(self.device)
        self.device_box.setToolTip("Where runs compute (CUDA when torch sees a GPU)")
        self.device_box.currentTextChanged.connect(lambda d: setattr(self, "device", d))
        self.layer_tree = LayerTree()
        lay.addWidget(QLabel("Representation"))
        lay.addWidget(self.model_box)
        lay.addWidget(self.random_weights)
        # The hand-crafted representations' own parameters (cell size, bins, step, ...), rebuilt
        # from their dataclass whenever the representation changes.
        self.rep_form_holder = QVBoxLayout()
        self.rep_form: ParamForm | None = None
        lay.addLayout(self.rep_form_holder)
        lay.addWidget(QLabel("Device"))
        lay.addWidget(self.device_box)
        self.layer_filter = QLineEdit()
        self.layer_filter.setPlaceholderText("filter layers by name or kind")
        self.layer_filter.setClearButtonEnabled(True)
        self.layer_filter.textChanged.connect(self.layer_tree.filter)
        lay.addWidget(self.layer_filter)
        lay.addWidget(self.layer_tree, 1)
        self.run_list = RunList()
        self.run_list.runSelected.connect(lambda rid: self.show_run(self.session.get(rid)))
        self.run_list.renameRequested.connect(self._rename_dialog)
        self.run_list.duplicateRequested.connect(lambda rid: self.duplicate_run(rid))
        self.run_list.rerunRequested.connect(lambda rid: self.rerun(rid))
        self.run_list.deleteRequested.connect(lambda rid: self.delete_run(rid))
        self.run_list.exportRequested.connect(lambda rid: (self.show_run(self.session.get(rid)), self._export_dialog()))
        self.model_box.activated.connect(self._on_model_chosen)
        self.random_weights.toggled.connect(lambda _: self.set_model(self.model_box.currentData()))
        self.layer_tree.layerChosen.connect(self.set_layer)
        dock = QDockWidget("Layers", self)
        dock.setObjectName("layers_dock")
        dock.setWidget(left)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        runs_dock = QDockWidget("Runs", self)
        runs_dock.setObjectName("runs_dock")
        runs_dock.setWidget(self.run_list)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, runs_dock)
        self.splitDockWidget(dock, runs_dock, Qt.Orientation.Vertical)
        self.resizeDocks([dock, runs_dock], [620, 220], Qt.Orientation.Vertical)

        # Right: method parameters, run/stop, metrics.
        right = QWidget()
        rlay = QVBoxLayout(right)
        self.method_box = QComboBox()
        self.method_box.setObjectName("method_box")
        for key, title in METHODS.items():
            self.method_box.addItem(title, key)
        self.method_box.setToolTip("Reconstruct by optimisation from noise, or with a trained decoder")
        rlay.addWidget(self.method_box)
        self.nondiff_label = QLabel("")
        self.nondiff_label.setWordWrap(True)
        self.nondiff_label.setStyleSheet("color: #c0392b")
        self.nondiff_label.hide()
        rlay.addWidget(self.nondiff_label)
        self.form = ParamForm(optimize.PRESETS)
        self._tree_size = 0
        self.form.changed.connect(self._on_params_changed)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.form)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.form.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4)
        self.decoder_panel = DecoderPanel()
        self.decoder_panel.trainRequested.connect(self.open_train_dialog)
        self.decoder_panel.probeRequested.connect(self.run_probe)
        dscroll = QScrollArea()
        dscroll.setWidgetResizable(True)
        dscroll.setWidget(self.decoder_panel)
        dscroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.decoder_panel.setMinimumWidth(200)
        self.decoder_panel.box.setMinimumContentsLength(12)
        self.decoder_panel.box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.method_stack = QStackedWidget()
        self.method_stack.addWidget(scroll)
        self.method_stack.addWidget(dscroll)
        self.method_box.currentIndexChanged.connect(self._on_method_changed)
        rlay.addWidget(self.method_stack, 1)
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.stop_button = QPushButton("Stop")
        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(self.stop)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.setToolTip("Hold the run (at its next preview) and resume it later")
        self.pause_button.toggled.connect(self.pause)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.stop_button)
        rlay.addLayout(buttons)
        self.metrics_label = QLabel("")
        self.metrics_label.setWordWrap(True)
        self.metrics_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        rlay.addWidget(self.metrics_label)
        pdock = QDockWidget("Parameters", self)
        pdock.setObjectName("params_dock")
        pdock.setWidget(right)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, pdock)
        self.resizeDocks([dock, pdock], [300, 330], Qt.Orientation.Horizontal)

    def _build_actions(self) -> None:
        m = self.menuBar().addMenu("&File")
        self.open_action = QAction(theme.icon("open"), "&Open image…", self, shortcut=QKeySequence.StandardKey.Open,
                                   triggered=self._open_dialog)
        m.addAction(self.open_action)
        samples = m.addMenu("Open &sample")
        for name in SAMPLES:
            samples.addAction(name, functools.partial(self.open_image, f"sample:{name}"))
        self.export_action = QAction(theme.icon("export"), "&Export reconstruction…", self, shortcut="Ctrl+E",
                                     triggered=self._export_dialog)
        m.addAction(self.export_action)
        self.export_probe_action = QAction("Export probe &strip…", self, triggered=self._export_probe_dialog)
        m.addAction(self.export_probe_action)
        m.addAction(QAction("Export loss &curves (PNG/SVG + CSV)…", self, triggered=self._export_curves_dialog))
        m.addAction(QAction("Export &metrics of the runs (CSV)…", self, triggered=self._export_metrics_dialog))
        m.addSeparator()
        self.recent_images_menu = m.addMenu("Recent &images")
        m.addSeparator()
        m.addAction(QAction("Open &session…", self, shortcut="Ctrl+Shift+O", triggered=self._open_session_dialog))
        m.addAction(QAction("&Save session", self, shortcut=QKeySequence.StandardKey.Save,
                            triggered=self._save_session))
        m.addAction(QAction("Save session &as…", self, shortcut="Ctrl+Shift+S", triggered=self._save_session_as))
        self.recent_sessions_menu = m.addMenu("Recent s&essions")
        m.addSeparator()
        m.addAction(QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit, triggered=self.close))
        r = self.menuBar().addMenu("&Run")
        self.run_action = QAction(theme.icon("run"), "&Run", self, shortcut="Ctrl+R", triggered=self.run)
        self.stop_action = QAction(theme.icon("stop"), "&Stop", self, shortcut="Ctrl+.", triggered=self.stop)
        self.pause_action = QAction(theme.icon("pause"), "&Pause / resume", self, shortcut="Ctrl+P",
                                    triggered=lambda: self.pause(not self.controller.is_paused))
        self.next_layer_action = QAction("&Next layer", self, shortcut="Ctrl+]",
                                         triggered=lambda: self.step_layer(1))
        self.prev_layer_action = QAction("Pre&vious layer", self, shortcut="Ctrl+[",
                                         triggered=lambda: self.step_layer(-1))
        r.addAction(self.run_action)
        r.addAction(self.pause_action)
        r.addAction(self.stop_action)
        r.addAction(self.next_layer_action)
        r.addAction(self.prev_layer_action)
        r.addSeparator()
        self.train_action = QAction("&Train a decoder…", self, triggered=self.open_train_dialog)
        r.addAction(self.train_action)
        self.compare_action = QAction(theme.icon("compare"), "&Compare selected runs…", self, shortcut="Ctrl+Shift+C",
                                      triggered=lambda: self.open_compare())
        r.addAction(self.compare_action)
        v = self.menuBar().addMenu("&View")
        self.theme_actions = {}
        for mode in theme.MODES:
            act = QAction(f"{mode.capitalize()} theme", self, checkable=True)
            # triggered(bool) passes `checked`: bind the mode so it is not taken as set_theme's argument
            act.triggered.connect(lambda _checked=False, m=mode: self.set_theme(m))
            v.addAction(act)
            self.theme_actions[mode] = act
        h = self.menuBar().addMenu("&Help")
        h.addAction(QAction("&About invgui", self, triggered=self.show_about))
        tb = self.addToolBar("Main")
        tb.setObjectName("main_toolbar")
        for a in (self.open_action, self.run_action, self.pause_action, self.stop_action, self.export_action,
                  self.compare_action):
            tb.addAction(a)

    # -- model, layer, image -----------------------------------------------------------------
    def _load_model_in_background(self, name: str) -> None:
        """Build representation ``name`` and its layer shapes on a thread; ``modelLoaded`` brings it back."""
        import threading

        self.model_box.setEnabled(False)
        self.statusBar().showMessage(f"loading {R.REGISTRY[name].title}…")
        self.progress.setText("loading the model")

        def load() -> None:
            try:
                rep = R.get(name, weights=self.model_weights.get(name))
                rep.layers(rep.input_size)           # the tree's shapes: one forward pass, cached
                self.modelLoaded.emit(rep, None)
            except Exception as e:                   # shown on the GUI thread
                self.modelLoaded.emit(None, f"{type(e).__name__}: {e}" if not isinstance(e, ValueError) else str(e))

        threading.Thread(target=load, name="invgui-model-load", daemon=True).start()

    def _on_model_loaded(self, rep, error) -> None:
        self.model_box.setEnabled(True)
        self.progress.setText("idle")
        if rep is None:
            self.show_error("Cannot load the model", error)
            return
        if self.rep is None:                         # the user has not picked another one meanwhile
            self._adopt_model(rep)
            self._update_buttons()

    def set_model(self, name: str, rep_params=None) -> bool:
        """Load representation ``name`` (with its own ``rep_params``); on failure keep the current one."""
        try:
            rep = R.get(name, weights=self.model_weights.get(name), random_weights=self.random_weights.isChecked(),
                        params=rep_params)
        except R.RepresentationError as e:
            self.show_error("Cannot load the model", str(e))
            if self.rep is not None:
                self.model_box.setCurrentIndex(self.model_box.findData(self.rep.name))
            return False
        self._adopt_model(rep)
        return True

    def _adopt_model(self, rep) -> None:
        name = rep.name
        changed = self.rep is None or self.rep.name != rep.name
        self.rep = rep
        self.model_box.setCurrentIndex(self.model_box.findData(name))
        self.layer = rep.default_layer
        if changed:
            self._build_rep_form()
        self._update_nondiff_label()
        self.decoder_panel.refresh(rep.name, self.layer)
        self._refresh_tree()
        self._fmap_key = None
        self._update_feature_map()
        note = self._fit_preset()
        self._clear_stale()
        self._show_original()
        self.statusBar().showMessage(f"{rep.title}: weights {rep.weights_info}" + note, 8000)

    def _fit_preset(self) -> str:
        """A preset made for another kind of representation is not carried over silently: the
        paper's counterpart for this one is chosen instead, and the status bar says so."""
        current = self.form.preset_box.currentText()
        handcrafted = self.rep.params is not None
        fitting = optimize.preset_for(current, handcrafted)
        if fitting == current:
            return ""
        self.form.preset_box.setCurrentText(fitting)
        return f" · preset {current} → {fitting} (made for {'hand-crafted features' if handcrafted else 'CNNs'})"

    def _on_model_chosen(self, index: int) -> None:
        name = self.model_box.itemData(index)
        if name != OPEN_MODEL:
            self.set_model(name)
            return
        self.model_box.setCurrentIndex(self.model_box.findData(self.rep.name) if self.rep else 0)
        path, _ = QFileDialog.getOpenFileName(self, "Open a model", "", "TorchScript or state dict (*.pt *.pth *.ts);;"
                                              "All files (*)")
        if not path:
            return
        arch, ok = QInputDialog.getText(self, "Architecture", "For a state-dict file, the architecture "
                                        "(torchvision:resnet18, timm:convnext_tiny, …); empty for a TorchScript file:")
        if ok:
            self.open_model_file(path, arch.strip() or None)

    def open_model_file(self, path: str, arch: str | None = None) -> bool:
        """Use a TorchScript file, or a state dict for ``arch`` (``torchvision:NAME`` / ``timm:NAME``)."""
        if arch:
            if not arch.startswith(("torchvision:", "timm:")):
                arch = f"torchvision:{arch}"
            name, weights = arch, str(path)
        else:
            name, weights = f"torchscript:{path}", None
            if not R.is_trusted(path):
                if not self.confirm_torchscript(str(path)):
                    self.statusBar().showMessage(f"did not load {path}: not trusted", 8000)
                    return False
                R.trust(path)
        if weights:
            self.model_weights[name] = weights
        if self.model_box.findData(name) < 0:
            self.model_box.insertItem(self.model_box.count() - 1, f"{Path(path).name} ({arch or 'TorchScript'})", name)
        if not self.set_model(name):
            self.model_weights.pop(name, None)
            self.model_box.removeItem(self.model_box.findData(name))
            return False
        return True

    def confirm_torchscript(self, path: str) -> bool:
        """Ask before loading a TorchScript file: it is a program and can run code when loaded."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Trust this TorchScript file?",
                          f"{path}\n\nA TorchScript file is a program: loading it can run arbitrary code "
                          "with your permissions. Load it only if you trust where it came from.\n\n"
                          "(A torchvision/timm architecture with a state-dict file is loaded safely, "
                          "with weights_only=True, and needs no such trust.)",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.button(QMessageBox.StandardButton.Yes).setText("Load it, I trust it")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        return box.exec() == QMessageBox.StandardButton.Yes

    @property
    def weights_path(self) -> str | None:
        """The explicit weight file of the current model (None: its own weights)."""
        return self.model_weights.get(self.rep.name) if self.rep is not None else None

    def set_theme(self, mode: str) -> bool:
        """Light, dark, or following the system; returns True when dark."""
        from PySide6.QtWidgets import QApplication

        mode = mode if mode in theme.MODES else "system"
        self.theme = mode
        dark = theme.apply(QApplication.instance(), mode)
        bg = theme.plot_background(dark)
        self.plot.setBackground(bg)
        for act_mode, act in self.theme_actions.items():
            act.setChecked(act_mode == mode)
        self.settings.setValue("theme", mode)
        self.dark = dark
        return dark

    def show_about(self) -> QMessageBox:
        from ..core.export import library_versions

        v = library_versions()
        text = (f"<h3>invgui {v.get('invgui', '')}</h3><p>See what an image representation keeps: invert CNN "
                "layers and hand-crafted features by optimisation (Mahendran &amp; Vedaldi, CVPR 2015 / IJCV "
                "2016) and with trained decoders (Dosovitskiy &amp; Brox, CVPR 2016).</p><p>"
                + "<br>".join(f"{k} {val}" for k, val in v.items() if k != "invgui") + "</p>")
        box = QMessageBox(QMessageBox.Icon.Information, "About invgui", text, QMessageBox.StandardButton.Ok, self)
        box.setIconPixmap(theme.icon("invgui").pixmap(64, 64))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.about_box = box
        return box

    def method(self) -> str:
        return self.method_box.currentData()

    def set_method(self, key: str) -> None:
        self.method_box.setCurrentIndex(self.method_box.findData(key))

    def _on_method_changed(self, _index: int) -> None:
        self.method_stack.setCurrentIndex(0 if self.method() == "optimize" else 1)
        self._update_nondiff_label()

    def _update_nondiff_label(self) -> None:
        show = self.rep is not None and not self.rep.differentiable and self.method() == "optimize"
        self.nondiff_label.setText(f"{self.rep.name}: {self.rep.decoder_hint}." if show else "")
        self.nondiff_label.setVisible(show)

    def _build_rep_form(self) -> None:
        """The dock form of the representation's own parameters (none for CNNs)."""
        if self.rep_form is not None:
            self.rep_form.setParent(None)
            self.rep_form.deleteLater()
            self.rep_form = None
        entry = R.REGISTRY.get(self.rep.name)
        presets = entry.presets if entry is not None else None
        if presets is None:
            return
        self.rep_form = ParamForm(presets)
        self.rep_form.setObjectName("rep_form")
        self.rep_form.set_values(self.rep.params)
        self.rep_form.changed.connect(self._on_rep_params_changed)
        self.rep_form_holder.addWidget(self.rep_form)
        self.rep_form.show()

    def _on_rep_params_changed(self) -> None:
        try:
            values = self.rep_form.values()
        except ValueError as e:
            self.statusBar().showMessage(f"representation parameters: {e}", 8000)
            return
        if values != self.rep.params:
            self.set_model(self.rep.name, values)

    def _size(self) -> int:
        size = int(self.form.widgets["size"].value())
        return size or (self.rep.input_size if self.rep else 224)

    def _on_params_changed(self) -> None:
        if self.rep is not None and self._size() != self._tree_size:
            self._refresh_tree()           # output shapes depend on the input size
        self._update_feature_map()
        self.feature_pane.set_window(self.form.widgets["window"].text())

    def _refresh_tree(self) -> None:
        if self.rep is not None:
            self._tree_size = self._size()
            self.layer_tree.populate(self.rep, self._size(), self.layer)
            self.layer_tree.filter(self.layer_filter.text())
            self._show_receptive_field()
            self._show_original()

    def _clear_stale(self) -> None:
        """Take down what belongs to other settings: a reconstruction, difference or probe strip of
        another representation, layer or image is not left up as if it were this one's."""
        if self.probe_result is not None:
            rec = self.probe_result.record
            if (rec.get("representation"), rec.get("layer")) != (self.rep.name, self.layer):
                self.probe_result = None
                self.probe_pane.hide()
        if self.result is None or self.running():
            return
        rec = self.result.record
        image = self.shown_run.image if self.shown_run is not None else self.image_source
        if (rec.get("representation"), rec.get("layer"), image) != (self.rep.name, self.layer, self.image_source):
            self.shown_run = None
            self._show_result(None)
            self.recon_pane.set_title(f"Reconstruction — {self.rep.name} {self.layer}")
            self.progress.setText("idle")

    def set_layer(self, name: str) -> None:
        self.layer = self.rep.resolve_layer(name)
        self.layer_tree.select(self.layer)
        self._show_receptive_field()
        self.recon_pane.set_title(f"Reconstruction — {self.rep.name} {self.layer}")
        self.form.set_value("window", "")          # a window belongs to one layer's map
        self.decoder_panel.refresh(self.rep.name, self.layer)
        self._update_feature_map()
        self._clear_stale()

    def step_layer(self, delta: int) -> str:
        """Select the next (or previous) layer that fits, in the tree's order."""
        names = [i.name for i in self.rep.layers(self._size()) if i.fits]
        if self.layer in names:
            idx = min(max(names.index(self.layer) + delta, 0), len(names) - 1)
            self.set_layer(names[idx])
        return self.layer

    def _show_receptive_field(self) -> None:
        """Compute the receptive field of the chosen layer (one backward pass, cached) for the tree."""
        key = (self.rep.name, self.rep.weights_info, self.layer, self._size())
        cache = self._rf_cache
        if key not in cache:
            try:
                cache[key] = self.rep.receptive_field(self.layer, self._size())
            except Exception:           # a layer that does not fit, a model that cannot backpropagate
                cache[key] = None
        self.layer_tree.set_receptive_field(self.layer, cache[key])

    def _shown_channel(self) -> int:
        """The first channel the Channels field selects at the current layer (0 if none/invalid)."""
        from ..core.subsets import SubsetError, parse_channels

        info = self.rep.layer_info(self.layer, self._size())
        if not info.shape:
            return 0
        try:
            return parse_channels(self.form.widgets["channels"].text(), info.shape[0])[0]
        except SubsetError:
            return 0

    def _update_visual(self) -> None:
        """The representation's own picture of Φ0 (hand-crafted ones), in the Features pane."""
        key = (self.rep.name, repr(self.rep.params), self._size(), self.image_source, id(self.image))
        if key == self._visual_key:
            return
        self._visual_key = key
        try:
            self.visual = R.feature_picture(self.rep, self.image, self._size())
        except R.RepresentationError as e:
            self.visual = None
            self.visual_pane.set_title(f"Features — {e}")
        if self.visual is not None:
            self.visual_pane.set_image(self.visual)
            self.visual_pane.set_title(f"Features — {self.rep.title}")
        self.visual_pane.setVisible(self.visual is not None)

    def _update_feature_map(self) -> None:
        """Show one channel of Φ0 at the current layer (the first selected channel)."""
        if self.rep is None or self.image is None:
            return
        self._update_visual()
        key = (self.rep.name, self.rep.weights_info, self.layer, self._size(), self.image_source,
               id(self.image), self._shown_channel())
        if key == self._fmap_key:
            return
        self._fmap_key = key
        import torch

        x = image_batch(self.image, self._size())
        try:
            with torch.no_grad():
                phi = self.rep.features(x, self.layer)[0]
        except R.RepresentationError as e:
            self.feature_pane.set_map(None, f"Feature map — {e}")
            return
        if phi.dim() != 3:
            self.feature_pane.set_map(None, f"Feature map — {self.layer} has no spatial map ({phi.shape[0]} values)")
            return
        c = key[-1]
        self.feature_pane.set_map(phi[c].numpy(), f"Φ0 — {self.layer} channel {c}/{phi.shape[0]} "
                                                  f"({phi.shape[2]}×{phi.shape[1]})")

    def open_image(self, source: str) -> bool:
        """Load an image (path or sample:NAME); on failure show why and keep the current one."""
        try:
            img = load_image(source)
        except ImageError as e:
            self.show_error("Cannot open the image", str(e))
            return False
        self.image, self.image_source = img, str(source)
        self.controller.window_images = {self.image_source: img}     # queued runs reuse it, no second decode
        self._show_original()
        self._update_feature_map()
        if self.rep is not None:
            self._clear_stale()
        if not str(source).startswith("sample:"):
            self._add_recent("images", str(Path(source).resolve()))
        return True

    def _show_original(self) -> None:
        if self.image is None:
            return
        self.original_pane.set_image(resize_center_crop(self.image, self._size()))
        name = Path(self.image_source).name if not self.image_source.startswith("sample:") else self.image_source
        self.original_pane.set_title(f"Original — {name} ({self.image.shape[1]}×{self.image.shape[0]})")

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "", IMAGE_FILTER)
        if path:
            self.open_image(path)

    def dragEnterEvent(self, e) -> None:
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dropEvent(self, e) -> None:
        urls = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_image(urls[0])
            e.acceptProposedAction()

    # -- running -----------------------------------------------------------------------------
    def running(self) -> bool:
        return self.controller.running()

    @property
    def session(self) -> Session:
        return self.controller.session

    @property
    def active_run(self) -> Run | None:
        """The run the worker is computing (None: a probe, or nothing)."""
        return self.controller.active

    @property
    def _autosave_dirty(self) -> bool:
        return self.controller.queue.changed

    @property
    def autosave_enabled(self) -> bool:
        return self.controller.autosave_enabled

    def run(self) -> bool:
        """Queue a run with the current settings; it starts at once when nothing else is running."""
        if self.image is None or self.rep is None:
            return False
        run = self._request()
        if run is None:
            return False
        self.enqueue(run)
        return True

    def _request(self) -> Run | None:
        """A Run from the current settings, or None (with a dialog saying why)."""
        base = self._request_base()
        if self.method() == "decoder":
            path = self._decoder_or_error()
            if path is None:
                return None
            return Run(method="decoder", decoder=path, size=int(self.decoder_panel.size.value()), **base)
        if not self.rep.differentiable:
            self.show_error("Optimisation cannot invert this representation",
                            f"{self.rep.title}: {self.rep.decoder_hint}. Choose *Decoder* as the method.")
            return None
        try:
            params = self.form.values()
        except ValueError as e:
            self.show_error("Invalid parameters", str(e))
            return None
        return Run(method="optimize", params=to_dict(params), **base)

    def _request_template(self) -> Run | None:
        """The current settings as an optimisation request (a sweep's template), or None."""
        try:
            params = self.form.values()
        except ValueError as e:
            self.show_error("Invalid parameters", str(e))
            return None
        return Run(method="optimize", params=to_dict(params), size=int(self.decoder_panel.size.value()),
                   **self._request_base())

    def _request_base(self) -> dict:
        """What every request takes from the window: representation, layer, image, weights."""
        return dict(model=self.rep.name, layer=self.layer, image=self.image_source,
                    rep_params=to_dict(self.rep.params) if self.rep.params is not None else None,
                    weights=self.weights_path, random_weights=self.random_weights.isChecked())

    def open_compare(self, run_ids: list[str] | None = None) -> CompareView:
        """The comparison view of the given runs (default: the selected ones, or every finished run)."""
        ids = run_ids if run_ids is not None else (self.run_list.selected_ids()
                                                   if len(self.run_list.selected_ids()) > 1 else
                                                   [r.id for r in self.session.runs if r.result is not None])
        if self.compare_view is None:
            self.compare_view = CompareView(self)
        self.compare_view.set_runs(ids)
        self.compare_view.show()
        self.compare_view.raise_()
        return self.compare_view

    def enqueue(self, run: Run) -> Run:
        self.controller.submit(run)
        if run.state == "queued":
            self.statusBar().showMessage(f"queued: {run.label()} ({self.controller.queue.waiting()} waiting)", 5000)
        return run

    def _image_for(self, source: str) -> np.ndarray:
        return self.controller.image_for(source)

    def _on_run_changed(self, run: Run) -> None:
        if not self.run_list.has(run.id) and any(r is run for r in self.session.runs):
            self.run_list.add(run)
        # Identical labels say what differs: relabel the runs that share this one's label (not all,
        # so queueing a sweep of N runs costs N item updates, not N²).
        label = run.label()
        self.run_list.relabel([r for r in self.session.runs if r is run or r.label() == label])

    def _on_run_removed(self, run_id: str) -> None:
        self.run_list.remove(run_id)

    def _on_run_started(self, run: Run) -> None:
        self.run_list.select(run.id)
        self.run_params = from_dict(optimize.OptimizeParams, run.params) if run.method == "optimize" else None
        self._start(f"Reconstruction — {run.model} {run.layer} (running)")

    def _decoder_or_error(self) -> str | None:
        path = self.decoder_panel.current()
        if path is None:
            self.show_error("No decoder", f"There is no decoder for {self.rep.name} {self.layer} yet: open a decoder "
                            "file, or train one (Run › Train a decoder…).")
        return path

    def _start(self, title: str) -> None:
        optimizing = self.active_run is not None and self.active_run.method == "optimize"
        self.history = {k: [] for k in optimize.TERMS} if optimizing else {}
        self.result = None
        self.latest_preview = None
        self.last_step = None
        self.plot.clear_curves()
        self.metrics_label.setText("")
        self._run_started = time.perf_counter()
        self._rate = (0, self._run_started)
        self.run_layer = self.layer
        self.recon_pane.set_title(title)
        self._update_buttons()

    def run_probe(self) -> bool:
        """Manipulate Φ0 as the probe form says and reconstruct every variant with the decoder."""
        if self.running() or self.image is None or self.rep is None:
            return False
        path = self._decoder_or_error()
        if path is None:
            return False
        try:
            pp = self.decoder_panel.probe_form.values()
        except ValueError as e:
            self.show_error("Invalid probe parameters", str(e))
            return False
        base = self._request_base()
        req = Run(method="decoder", decoder=path, size=int(self.decoder_panel.size.value()), **base) \
            .request(self.device).replace(method="probe", probe=pp, params=optimize.PRESETS.get("fast"))
        self.probe_pane.set_title(f"Probe — {pp.probe} (running)")
        self.probe_pane.show()
        self.controller.submit_probe(req, {self.image_source: self.image})
        self._update_buttons()
        return True

    def open_train_dialog(self) -> TrainDialog | None:
        if self.rep is None:
            return None
        if self.train_dialog is not None and self.train_dialog.running():
            self.train_dialog.raise_()
            return self.train_dialog
        if self.train_dialog is not None:
            self.train_dialog.close()
        self.train_dialog = TrainDialog(self.rep.name, self.layer, self.rep.params, self.weights_path,
                                        self.random_weights.isChecked(), self.device, self)
        self.train_dialog.trained.connect(self.decoder_panel.add_file)
        self.train_dialog.show()
        return self.train_dialog

    def pause(self, on: bool) -> None:
        """Pause or resume the running job."""
        if not self.running():
            on = False
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

    def _on_pixel(self, text: str) -> None:
        self.pixel_label.setText(text)

    def _on_step(self, steps: list[Step]) -> None:
        if self.last_step is None:
            self.statusBar().clearMessage()          # "preparing …" is over once iterations arrive
        for ev in steps:
            for k, v in ev.losses.items():
                self.history.setdefault(k, []).append(v)
            if ev.preview is not None:
                self.latest_preview = ev.preview
        self.last_step = steps[-1]
        self._dirty = True

    def _redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        if self.latest_preview is not None:
            self.recon_pane.set_image(self.latest_preview)
        self.plot.set_history(self.history)
        ev = self.last_step
        if ev is not None:
            now = time.perf_counter()
            i0, t0 = self._rate
            rate = (ev.i - i0) / (now - t0) if now > t0 and ev.i > i0 else 0.0
            if now - t0 > 1.0:
                self._rate = (ev.i, now)
            if self.controller.is_paused:
                return
            eta = (ev.total - ev.i) / rate if rate > 0 else float("nan")
            eta_text = (f"{eta:.0f} s left" if eta < 120 else f"{eta / 60:.1f} min left") if eta == eta else ""
            loss = ev.losses.get("total", next(iter(ev.losses.values()), float("nan")))
            self.progress.setText(f"iteration {ev.i}/{ev.total} · {rate:.1f} it/s · {eta_text} · loss {loss:.4g}")

    def _on_finished(self, run: Run | None, res: Result) -> None:
        self.last_step = None                        # no stale "iteration n/N · s left" after the end
        if self._batch is not None:
            QTimer.singleShot(0, self._check_batch)
        self.shown_run = run
        self.statusBar().clearMessage()
        self._show_result(res)
        if self.compare_view is not None and self.compare_view.isVisible() and run is not None \
                and run.id in self.compare_view.run_ids:
            self.compare_view.refresh_soon()             # runs finishing in a burst redraw the grid once
        if res.message and "diverged" in res.message:
            self.show_error("The run diverged", res.message)
        elif res.message:
            self.statusBar().showMessage(res.message, 8000)
        self.runEnded.emit()

    def _show_result(self, res: Result | None, run: Run | None = None) -> None:
        """Show a result in the panes, the curves and the metrics text."""
        self.result = res
        if res is None:
            self.recon_pane.set_image(None)
            self.restarts_pane.hide()
            self.diff_pane.hide()
            self.plot.clear_curves()
            state = run.state if run else ""
            self.metrics_label.setText(f"<b>{run.label()}</b><br>{state}" + (f": {run.message}" if run and run.message
                                                                              else "") if run else "")
            self._update_buttons()
            return
        rec, m = res.record, res.metrics
        self.latest_preview = (np.clip(res.image, 0, 1) * 255 + 0.5).astype(np.uint8)
        self.recon_pane.set_image(self.latest_preview)
        if res.target is not None and res.target.shape == res.image.shape:
            diff = np.abs(np.clip(res.image, 0, 1) - res.target)
            self.diff_pane.set_image(np.clip(diff * 2, 0, 1))
            self.diff_pane.set_title(f"|reconstruction − original| ×2 (mean {diff.mean():.3f})")
            self.diff_pane.show()
        else:
            self.diff_pane.hide()
        self.plot.clear_curves()
        self.history = {k: list(v) for k, v in res.history.items()}
        self.plot.set_history(self.history)
        if len(res.images) > 1 and res.deviation is not None:
            tiles = [(np.clip(im, 0, 1) * 255 + 0.5).astype(np.uint8) for im in res.images]
            tiles.append(colourise(res.deviation, "inferno"))
            self.restarts_pane.set_image(mosaic(tiles))
            self.restarts_pane.set_title(f"{len(res.images)} restarts + per-pixel deviation (max "
                                         f"{res.deviation.max():.3f}; bright = varies across restarts)")
            self.restarts_pane.show()
        else:
            self.restarts_pane.hide()
        where = f"<b>{rec['representation']} {rec['layer']}</b> ({'×'.join(map(str, rec['layer_shape']))})"
        if rec.get("method") == "decoder":
            meta = rec.get("decoder_meta", {})
            self.metrics_label.setText(
                f"{where} — decoder ({meta.get('architecture')}, {Path(rec['decoder']).name})<br>"
                f"representation error of the reconstruction <b>{m['representation_error']:.3f}</b><br>"
                + (f"PSNR {m['psnr']:.2f} dB · SSIM {m['ssim']:.3f}<br>" if "psnr" in m else "")
                + f"one forward pass: {m['seconds'] * 1000:.1f} ms")
            self.progress.setText(f"done: decoder in {m['seconds'] * 1000:.1f} ms")
            state = "decoder"
        else:
            p = rec.get("params", {})
            self.metrics_label.setText(
                f"{where}<br>"
                f"representation error {m['start_representation_error']:.3f} → "
                f"<b>{m['representation_error']:.3f}</b><br>"
                + (f"PSNR {m['psnr']:.2f} dB · SSIM {m['ssim']:.3f}<br>" if "psnr" in m else "")
                + f"{m['iterations']} iterations in {m['seconds']:.1f} s ({m['iterations_per_second']:.1f} it/s)<br>"
                f"<small>{p.get('optimizer')} lr {p.get('lr')}, λV {rec.get('resolved', {}).get('tv_weight')}, "
                f"α {p.get('alpha')}, β {p.get('beta')}, seed {p.get('seed')}, restarts {p.get('restarts')}</small>")
            self.progress.setText(f"done: {m['iterations']} it · {m['iterations_per_second']:.1f} it/s")
            state = "stopped" if res.stopped else "done"
        self.recon_pane.set_title(f"Reconstruction — {rec['representation']} {rec['layer']} ({state})")
        self._update_buttons()

    # -- the run list ------------------------------------------------------------------------
    def show_run(self, run: Run) -> None:
        """Show a run of the list: its images, curves, metrics and parameters."""
        if run is self.active_run and run.result is None:
            return                                   # running: the live preview is already shown
        self.shown_run = run
        self._show_result(run.result, run)

    def rename_run(self, run_id: str, name: str) -> None:
        self.controller.rename(run_id, name)

    def _rename_dialog(self, run_id: str) -> None:
        run = self.session.get(run_id)
        name, ok = QInputDialog.getText(self, "Rename run", "Name", text=run.label())
        if ok:
            self.rename_run(run_id, name)

    def rerun(self, run_id: str) -> Run:
        """Queue the same request again."""
        return self.controller.rerun(run_id)

    def duplicate_run(self, run_id: str) -> bool:
        """Load a run's request into the window (model, layer, image, method, parameters), to change and run."""
        run = self.session.get(run_id)
        if (self.rep is None or self.rep.name != run.model or self.rep.describe().get("representation_params")
                != run.rep_params or self.random_weights.isChecked() != run.random_weights):
            self.random_weights.blockSignals(True)
            self.random_weights.setChecked(run.random_weights)
            self.random_weights.blockSignals(False)
            if not self.set_model(run.model, run.rep_params):
                return False
        self.set_layer(run.layer)
        if run.image != self.image_source:
            self.open_image(run.image)
        self.set_method(run.method)
        if run.method == "optimize":
            self.form.set_values(from_dict(optimize.OptimizeParams, run.params))
        elif run.decoder:
            self.decoder_panel.add_file(run.decoder)
            self.decoder_panel.size.setValue(run.size)
        self.statusBar().showMessage(f"loaded the settings of {run.label()}: change them and Run", 8000)
        return True

    def delete_run(self, run_id: str) -> bool:
        try:
            run = self.controller.remove(run_id)
        except QueueError as e:
            self.show_error("The run is running", str(e))
            return False
        if self.shown_run is run:
            self.shown_run = None
            self._show_result(None)
        return True

    # -- sessions ----------------------------------------------------------------------------
    def save_session(self, path: str | os.PathLike) -> Path | None:
        path = Path(path)
        if path.suffix != SUFFIX:
            path = path.with_suffix(SUFFIX)
        try:
            out = self.session.save(path)
        except OSError as e:
            self.show_error("Cannot save the session", str(e))
            return None
        self._add_recent("sessions", str(out))
        self.setWindowTitle(f"invgui — {out.name}")
        self.statusBar().showMessage(f"saved {len(self.session.runs)} runs to {out}", 8000)
        return out

    def open_session(self, path: str | os.PathLike, *, replace: bool = True) -> bool:
        if self.running():
            self.show_error("Busy", "Stop the current run before opening a session.")
            return False
        try:
            session = Session.load(path)
        except SessionError as e:
            self.show_error("Cannot open the session", str(e))
            return False
        if not self._replace_session(session, f"{path}"):
            return False
        if session.path is not None and replace:
            self._add_recent("sessions", str(session.path))
            self.setWindowTitle(f"invgui — {session.path.name}")
        return True

    def _replace_session(self, session: Session, source: str) -> bool:
        """Show ``session`` instead of the current one; if showing it fails, the current one stays."""
        import traceback

        old = self.session
        try:
            self.controller.replace_session(session)
            return True
        except QueueError as e:
            self.show_error("Busy", str(e))
            return False
        except Exception as e:                        # a validated file should never get here
            detail = traceback.format_exc()
            self.controller.replace_session(old)
            self.show_error("Cannot show the session", f"{source}: {type(e).__name__}: {e}", detail)
            return False

    def _on_session_replaced(self) -> None:
        session = self.session
        self.run_list.clear()
        for r in session.runs:
            self.run_list.add(r)
        last = next((r for r in reversed(session.runs) if r.result is not None), None)
        if last is not None:
            self.run_list.select(last.id)
            self.show_run(last)

    def autosave(self, wait: bool = False) -> Path | None:
        """Autosave now (on the controller's background thread) when something changed; the file it
        replaces is kept as the previous autosave.  A window opened with ``restore=False``
        (screenshots, scripted runs) never touches the user's autosave."""
        return self.controller.autosave(wait=wait)

    def restore_autosave(self) -> bool:
        """Bring back the runs of the last session (after a crash, or simply the last time).  An
        unreadable autosave is moved aside (the message says where) and the window starts empty."""
        found = recover_autosave()
        if found.message:
            self.show_error("The autosaved session could not be read", found.message[:1].upper() + found.message[1:])
        if found.session is None:
            return False
        if not self._replace_session(found.session, str(autosave_path())):
            return False
        self.statusBar().showMessage(f"restored {len(found.session.runs)} run(s) from the autosave "
                                     f"({autosave_path()})", 10000)
        return True

    def _open_session_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open session", "", SESSION_FILTER)
        if path:
            self.open_session(path)

    def _save_session(self) -> None:
        if self.session.path is not None:
            self.save_session(self.session.path)
        else:
            self._save_session_as()

    def _save_session_as(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save session", f"session{SUFFIX}", SESSION_FILTER)
        if path:
            self.save_session(path)

    def _add_recent(self, kind: str, value: str) -> None:
        items = [v for v in (self.settings.value(f"recent/{kind}", []) or []) if v != value]
        items = [value] + (items if isinstance(items, list) else [items])
        self.settings.setValue(f"recent/{kind}", items[:MAX_RECENT])
        self._fill_recent_menus()

    def recent(self, kind: str) -> list[str]:
        v = self.settings.value(f"recent/{kind}", []) or []
        return v if isinstance(v, list) else [v]

    def _fill_recent_menus(self) -> None:
        for menu, kind, action in ((self.recent_images_menu, "images", self.open_image),
                                   (self.recent_sessions_menu, "sessions", self.open_session)):
            menu.clear()
            for v in self.recent(kind):
                menu.addAction(v, functools.partial(action, v))
            menu.setEnabled(bool(self.recent(kind)))

    def _restore_layout(self) -> None:
        geometry, state = self.settings.value("window/geometry"), self.settings.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        self._fill_recent_menus()

    def _on_probe_finished(self, res: Result) -> None:
        self.probe_result = res
        rec = res.record
        per_row = len(rec["labels"]) // rec["rows"]
        lines = rec["rows"] * (2 if per_row > 4 else 1)          # long strips wrap to fit the pane
        self.probe_strip = image_strip(list(res.images), rec["labels"], rows=lines)
        self.probe_pane.set_image(self.probe_strip)
        self.probe_pane.set_title(f"Probe — {rec['probe']} on {rec['representation']} {rec['layer']} "
                                  f"({len(rec['labels'])} reconstructions)")
        self.probe_pane.show()
        self.statusBar().showMessage(f"probe {rec['probe']} done in {res.metrics['seconds'] * 1000:.0f} ms", 8000)
        self.runEnded.emit()

    def _export_probe_dialog(self) -> None:
        if self.probe_result is None:
            return
        default = f"probe_{self.probe_result.record['probe']}_{self.probe_result.record['representation']}.png"
        path, _ = QFileDialog.getSaveFileName(self, "Export probe strip", default, "PNG image (*.png)")
        if path:
            self.export_probe_to(path)

    def export_probe_to(self, path: str | os.PathLike) -> tuple[Path, Path] | None:
        """Write the probe strip PNG and its JSON record; errors become a dialog."""
        from ..core.images import FileSet, save_png

        if self.probe_result is None:
            return None
        path = Path(path).with_suffix(".png")
        try:
            with FileSet():                      # the strip and its record, or neither
                png = save_png(path, self.probe_strip)
                js = write_json(path.with_suffix(".json"), run_record(self.probe_result, image=self.image_source,
                                                                      source="gui"))
        except OSError as e:
            self.show_error("Cannot export", str(e))
            return None
        self.statusBar().showMessage(f"exported {png} and {js}", 8000)
        return png, js

    def _on_status(self, message: str) -> None:
        self.statusBar().showMessage(message, 15000)

    def _on_failed(self, run: Run | None, message: str, detail: str) -> None:
        self.last_step = None
        self.progress.setText("failed")
        self.statusBar().clearMessage()
        if not self._batch_failure(run, message):
            self.show_error("The run failed", message, detail)
        self.runEnded.emit()

    def _on_cannot_start(self, run: Run, message: str) -> None:
        if not self._batch_failure(run, message):
            self.show_error("The run cannot start", f"{run.label()}: {message}")

    # A batch (a sweep) tells its failures once, in one dialog, when its last run has ended.
    def begin_batch(self, runs: list[Run], what: str = "sweep") -> None:
        self._batch = {"what": what, "ids": {r.id for r in runs}, "failed": []}

    def _batch_failure(self, run: Run | None, message: str) -> bool:
        b = self._batch
        if b is None or run is None or run.id not in b["ids"]:
            return False
        b["failed"].append(f"{run.label()}: {message}")
        QTimer.singleShot(0, self._check_batch)
        return True

    def _check_batch(self) -> None:
        b = self._batch
        if b is None:
            return
        states = {r.id: r.state for r in self.session.runs if r.id in b["ids"]}
        if any(st in ("queued", "running") for st in states.values()):
            return
        self._batch = None
        if b["failed"]:
            n = len(b["failed"])
            self.show_error(f"{n} of {len(b['ids'])} runs of the {b['what']} failed",
                            "\n".join(b["failed"][:12]) + (f"\n… and {n - 12} more" if n > 12 else ""))

    def _on_idle(self) -> None:
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self.running()
        for w in (self.run_button, self.run_action, self.compare_action):
            w.setEnabled(self.rep is not None)  # while busy, Run queues; before the model is loaded, nothing
        self.run_button.setText("Queue" if busy else "Run")
        for w in (self.stop_button, self.stop_action, self.pause_button, self.pause_action):
            w.setEnabled(busy)
        if not busy and self.pause_button.isChecked():
            self.pause(False)
        self.export_action.setEnabled(self.result is not None)
        self.export_probe_action.setEnabled(self.probe_result is not None)
        for w in (self.decoder_panel.probe_button, self.method_box):
            w.setEnabled(not busy)
        # Model, image and parameters stay editable while a run computes: Run then queues the next one.

    # -- export ------------------------------------------------------------------------------
    def _export_dialog(self) -> None:
        if self.result is None:
            return
        rec = self.result.record
        default = f"{Path(self.image_source.replace('sample:', '')).stem}_{rec['representation']}_{rec['layer']}.png"
        path, chosen = QFileDialog.getSaveFileName(self, "Export reconstruction", default,
                                                   "PNG, 8-bit (*.png);;PNG + 16-bit TIFF (*.tif)")
        if path:
            self.export_to(path, tiff=path.lower().endswith((".tif", ".tiff")) or "TIFF" in chosen)

    def export_to(self, path: str | os.PathLike, tiff: bool = False) -> tuple[Path, Path] | None:
        """Write the shown reconstruction (PNG, optionally 16-bit TIFF), its loss CSV and JSON record;
        errors become a dialog."""
        if self.result is None:
            return None
        path = Path(path)
        if path.suffix.lower() in (".tif", ".tiff"):
            tiff = True
        if path.suffix.lower() != ".png":
            path = path.with_suffix(".png")
        run = self.shown_run
        source = run.image if run is not None else self.image_source
        try:
            visual = None
            rec = self.result.record
            if (self.rep is not None and self.rep.name == rec["representation"]
                    and self.rep.describe().get("representation_params") == rec.get("representation_params")):
                visual = R.feature_picture(self.rep, self._image_for(source), rec["input_size"])
            files = export_result(self.result, path, visual=visual, tiff=tiff, image=source, source="gui",
                                  run_name=run.label() if run else None)
        except OSError as e:
            self.show_error("Cannot export",
                            f"{path}: {e.strerror or e}" if not str(e).startswith(str(path)) else str(e))
            return None
        self.statusBar().showMessage(f"exported {files[0]} and {files[1]}", 8000)
        return files

    def export_curves(self, path: str | os.PathLike) -> Path | None:
        """The loss plot as PNG or SVG (by suffix) plus its CSV."""
        import pyqtgraph.exporters as ex

        from ..core.export import write_losses_csv
        from ..core.images import FileSet, atomic_write, check_writable

        path = Path(path)
        if path.suffix.lower() != ".svg":
            path = path.with_suffix(".png")
        try:
            check_writable(path)
            with FileSet():                      # the picture, its CSV and its sidecar, or none of them
                if path.suffix.lower() == ".svg":
                    atomic_write(path, self._write_plot_svg)
                else:
                    exporter = ex.ImageExporter(self.plot.plotItem)
                    exporter.parameters()["width"] = 1600
                    atomic_write(path, lambda tmp: _nonempty(exporter.export(tmp), tmp))
                if self.history and any(self.history.values()):
                    write_losses_csv(path.with_suffix(".csv"), self.history)
                if self.shown_run is not None:
                    from ..core.export import runs_sidecar

                    runs_sidecar(path, [self.shown_run], curves=str(path))
        except Exception as e:          # pyqtgraph's exporters raise plain Exceptions on write errors
            self.show_error("Cannot export the curves", f"{path}: {e}" if str(path) not in str(e) else str(e))
            return None
        self.statusBar().showMessage(f"exported {path}", 8000)
        return path

    def _write_plot_svg(self, tmp: str) -> None:
        # pyqtgraph's SVGExporter fails on this Qt's path syntax ("not enough values to unpack");
        # Qt's own SVG generator renders the widget as vector graphics instead.
        from PySide6.QtCore import QRect
        from PySide6.QtGui import QPainter
        from PySide6.QtSvg import QSvgGenerator

        gen = QSvgGenerator()
        gen.setFileName(tmp)
        gen.setSize(self.plot.size())
        gen.setViewBox(QRect(0, 0, self.plot.width(), self.plot.height()))
        gen.setTitle("invgui loss curves")
        painter = QPainter(gen)
        self.plot.render(painter)
        if not painter.end() or Path(tmp).stat().st_size == 0:
            raise OSError("Qt could not write the SVG")

    def export_metrics(self, path: str | os.PathLike, run_ids: list[str] | None = None) -> Path | None:
        """A CSV with one row per run (the selected ones, or all) and its metrics."""
        from ..core.export import METRIC_COLUMNS, write_metrics_csv

        runs = [self.session.get(i) for i in run_ids] if run_ids else list(self.session.runs)
        rows = []
        for r in runs:
            row = {"name": r.label(), "state": r.state, "method": r.method, "model": r.model, "layer": r.layer,
                   "image": r.image, "seed": r.params.get("seed", ""), "decoder": r.decoder or ""}
            if r.result is not None:
                row.update({k: r.result.metrics.get(k, "") for k in METRIC_COLUMNS})
            rows.append(row)
        from ..core.export import runs_sidecar
        from ..core.images import FileSet

        try:
            with FileSet():                      # the CSV and its sidecar, or neither
                out = write_metrics_csv(path, rows)
                runs_sidecar(out, runs, metrics_csv=str(out))
        except OSError as e:
            self.show_error("Cannot export the metrics", str(e))
            return None
        self.statusBar().showMessage(f"exported {out}", 8000)
        return out

    def _export_curves_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export loss curves", "losses.png", "PNG (*.png);;SVG (*.svg)")
        if path:
            self.export_curves(path)

    def _export_metrics_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export metrics", "metrics.csv", "CSV (*.csv)")
        if path:
            self.export_metrics(path, self.run_list.selected_ids() or None)

    # -- errors, closing ---------------------------------------------------------------------
    def show_error(self, title: str, text: str, detail: str = "") -> None:
        """A readable, non-blocking dialog; the traceback goes under 'Show Details'."""
        error_dialog(self, self.errors, title, text, detail)

    def closeEvent(self, e) -> None:
        self.timer.stop()
        if self.train_dialog is not None:
            self.train_dialog.close()          # stops its training run and joins its thread
        if self.compare_view is not None:
            self.compare_view.close()
        self.controller.shutdown()             # stops the run, joins the worker, writes the autosave
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()
        super().closeEvent(e)


def _nonempty(_ret, tmp: str) -> None:
    """pyqtgraph's exporters ignore a failed save; an empty file says it failed."""
    if os.path.getsize(tmp) == 0:
        raise OSError("the picture could not be written")


def _devices() -> list[str]:
    import torch

    return ["cpu"] + [f"cuda:{i}" if i else "cuda" for i in range(torch.cuda.device_count())]

