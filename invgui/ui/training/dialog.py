"""Training a decoder from the window: a dialog with a live loss curve and sample reconstructions,
on a worker thread of its own (the command line's ``train-decoder``)."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ...core.events import Result, Step
from ...core.methods import decoder as D
from ...core.methods.decoder_params import TRAIN_PRESETS
from ...core.results import Metrics
from ..threads.worker import WorkerThread, error_dialog
from ..widgets import folders
from ..widgets.image_pane import ImagePane
from ..widgets.param_form import ParamForm
from ..widgets.plots import LossPlot

TERMS = ("pixel", "feature_space", "adversarial", "discriminator")    # a training loss's terms, when it has several


class TrainDialog(QDialog):
    """Train a decoder with a live loss curve and sample reconstructions (the CLI's train-decoder)."""

    trained = Signal(str)          # the checkpoint written

    def __init__(self, state, parent: QWidget | None = None):
        """For the window ``state``'s representation, layer, weights and device as they are now
        (a layer chosen later in the window does not change what this dialog trains)."""
        super().__init__(parent)
        rep_name, layer = state.rep.name, state.layer
        self.setWindowTitle(f"Train a decoder — {rep_name} {layer}")
        self.resize(1100, 700)
        self.rep_name, self.layer, self.rep_params = rep_name, layer, state.rep.params
        self.weights, self.random_weights, self.device = state.weights_path, state.random_weights, state.device
        self.errors: list[str] = []
        self.outcome: Result | None = None
        self.history: dict[str, list[float]] = {"train": [], "held_out": []}
        self.held_steps: list[int] = []
        self.worker = WorkerThread(self)
        w = self.worker.worker                   # bound methods of this GUI-thread object run on the GUI thread
        w.step.connect(self._on_step)
        w.finished.connect(self._on_finished)
        w.failed.connect(self._on_failed)
        w.status.connect(self._on_status)
        w.idle.connect(self._on_idle)

        left = QWidget()
        ll = QVBoxLayout(left)
        paths = QFormLayout()
        self.data = QLineEdit()
        self.data.setPlaceholderText("folder of training images")
        self.held = QLineEdit()
        self.held.setPlaceholderText("optional: held-out folder (default: a random fraction)")
        self.out = QLineEdit(folders.suggest("decoders", f"{rep_name}-{layer}-decoder.pt"))
        self.init = QLineEdit()
        self.init.setPlaceholderText("optional: a trained decoder to fine-tune (--init)")
        self.init.setToolTip("Start from this decoder's weights (its width and crop size) with a new optimiser "
                             "and schedule, e.g. a shipped pixel-loss decoder with the feature and adversarial "
                             "terms of the Loss group.")
        for label, edit, mode in (("Training images", self.data, "folder"), ("Held-out images", self.held, "folder"),
                                  ("Start from", self.init, "open"), ("Write to", self.out, "save")):
            row = QHBoxLayout()
            row.addWidget(edit, 1)
            browse = QPushButton("…")
            browse.setMaximumWidth(30)
            browse.clicked.connect(functools.partial(self._browse, edit, mode))
            row.addWidget(browse)
            paths.addRow(label, row)
        ll.addLayout(paths)
        self.form = ParamForm(TRAIN_PRESETS)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.form)
        ll.addWidget(scroll, 1)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.close_button = QPushButton("Close")
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.close_button.clicked.connect(self.close)
        for b in (self.start_button, self.stop_button, self.close_button):
            buttons.addWidget(b)
        ll.addLayout(buttons)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        ll.addWidget(self.status)

        right = QSplitter(Qt.Orientation.Vertical)
        self.plot = LossPlot()
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "MSE")       # "loss" when the loss has more terms than the pixel one
        self.preview = ImagePane("Held-out images (top) and their reconstructions (bottom)")
        right.addWidget(self.preview)
        right.addWidget(self.plot)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([380, 720])
        lay = QVBoxLayout(self)
        lay.addWidget(split)
        self._latest_preview: np.ndarray | None = None
        self._last_draw = 0.0
        self._update_buttons()

    def _browse(self, edit: QLineEdit, mode: str) -> None:
        if mode == "folder":
            path = QFileDialog.getExistingDirectory(self, "Choose a folder", edit.text())
        elif mode == "open":
            path, _ = QFileDialog.getOpenFileName(self, "Start from the decoder", edit.text(), "Decoder (*.pt)")
        else:
            path, _ = QFileDialog.getSaveFileName(self, "Write the decoder to", edit.text(), "Decoder (*.pt)")
            if path:
                folders.remember("decoders", path)
        if path:
            edit.setText(path)

    def running(self) -> bool:
        return self.worker.busy

    def start(self) -> bool:
        if self.running():
            return False
        try:
            params = self.form.values()
        except ValueError as e:
            return self._error("Invalid parameters", str(e))
        data = self.data.text().strip()
        if not data or not Path(data).is_dir():
            return self._error("No training images", f"{data or '(empty)'}: choose a folder of images to train on")
        held = self.held.text().strip() or None
        if held and not Path(held).is_dir():
            return self._error("No held-out images", f"{held}: not a folder")
        out = self.out.text().strip()
        if not out:
            return self._error("No output file", "choose where to write the decoder")
        out = str(Path(out).expanduser().resolve())
        self.out.setText(out)
        init = self.init.text().strip() or None
        if init and not Path(init).is_file():
            return self._error("No decoder to start from", f"{init}: no such decoder file")
        self.history = {"train": [], "held_out": []}
        self.held_steps = []
        self.plot.clear_curves()
        pixel_only = params.feature_weight <= 0 and params.adversarial_weight <= 0
        self.plot.setLabel("left", "MSE" if pixel_only else "loss (held-out: MSE)")
        self.outcome = None
        job = functools.partial(_train_job, self.rep_name, self.layer, self.rep_params, self.weights,
                                self.random_weights, self.device, data, held, out, params, init)
        self.worker.submit(job)
        self._update_buttons()
        return True

    def stop(self) -> None:
        if self.running():
            self.worker.request_stop()
            self.status.setText("stopping after this step…")

    def _on_step(self, steps: list[Step]) -> None:
        for ev in steps:
            self.history["train"].append(ev.losses["train"])
            for k in TERMS:        # the loss's terms, when it has several
                if k in ev.losses:
                    self.history.setdefault(k, []).append(ev.losses[k])
            if "held_out" in ev.losses:
                self.history["held_out"].append(ev.losses["held_out"])
                self.held_steps.append(ev.i)
            if ev.preview is not None:
                self._latest_preview = ev.preview
        ev = steps[-1]
        now = time.perf_counter()
        if now - self._last_draw > 0.1 or ev.i == ev.total:        # throttled redraw
            self._last_draw = now
            self._draw()
            held = f", held-out {self.history['held_out'][-1]:.4f}" if self.history["held_out"] else ""
            self.status.setText(f"step {ev.i}/{ev.total} · loss {ev.losses['train']:.4f}{held} · "
                                f"{ev.elapsed:.0f} s")

    def _draw(self) -> None:
        self.plot.set_series("train", np.arange(1, len(self.history["train"]) + 1), self.history["train"])
        for k in TERMS:
            if self.history.get(k):
                self.plot.set_series(k, np.arange(1, len(self.history[k]) + 1), self.history[k])
        if self.held_steps:
            self.plot.set_series("held_out", np.asarray(self.held_steps), self.history["held_out"], symbol=True)
        if self._latest_preview is not None:
            self.preview.set_image(self._latest_preview)

    def _on_finished(self, res: Result) -> None:
        self.outcome = res
        self._draw()
        m = Metrics.of(res)
        err = m.held_out_normalised_error
        self.status.setText(f"{'stopped' if res.stopped else 'done'}: wrote {res.record['checkpoint']} — "
                            f"{res.record['epochs']} epoch(s), {m.images_per_second:.0f} images/s"
                            + (f", held-out normalised error {err:.3f}" if err is not None else ""))
        self.trained.emit(res.record["checkpoint"])

    def _on_status(self, message: str) -> None:
        self.status.setText(message)

    def _on_failed(self, message: str, detail: str) -> None:
        self._error("Training failed", message, detail)

    def _on_idle(self) -> None:
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self.running()
        self.start_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)

    def _error(self, title: str, text: str, detail: str = "") -> bool:
        error_dialog(self, self.errors, title, text, detail)
        return False

    def closeEvent(self, e) -> None:
        self.worker.shutdown()
        super().closeEvent(e)


def _train_job(model, layer, rep_params, weights, random_weights, device, data, held, out, params, init,
               should_stop):
    from ...core import representations as R
    from ...core.device import resolve_device

    rep = R.get(model, weights=weights, random_weights=random_weights, params=rep_params)
    return D.train(rep, layer, data, out, params, device=resolve_device(device), should_stop=should_stop,
                   held_out_data=held, init=init)
