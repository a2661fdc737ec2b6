"""Choosing the representation in the window: the embedded default loaded behind a visible
"loading" state, a registered one picked in the chooser, a model file opened (TorchScript only
after the user trusts it), and the hand-crafted representations' own parameters.  A model that
cannot be loaded leaves the current one in place and says why."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from ..core import representations as R
from ..core.device import resolve_device
from ..core.methods import optimize
from ..core.methods.registry import method
from .docks import OPEN_MODEL


class ModelChoice:
    def __init__(self, window):
        self.w = window
        self.weights: dict[str, str] = window.state.weights   # explicit state-dict file per model (else its own)
        self.loader: threading.Thread | None = None

    def show_loading(self, name: str) -> None:
        """The visible "loading" state (the chooser disabled, the status bar saying what loads)."""
        w = self.w
        w.model_box.setEnabled(False)
        w.statusBar().showMessage(f"loading {R.REGISTRY[name].title}…")
        w.progress.setText("loading the model")

    def load_in_background(self, name: str) -> None:
        """Build representation ``name`` and its layer shapes on a thread; ``modelLoaded`` brings it back."""
        w = self.w
        self.show_loading(name)

        def load() -> None:
            try:
                rep = R.get(name, weights=self.weights.get(name))
                rep.layers(rep.input_size)           # the tree's shapes: one forward pass, cached
                w.modelLoaded.emit(rep, None)
            except Exception as e:                   # shown on the GUI thread
                w.modelLoaded.emit(None, f"{type(e).__name__}: {e}" if not isinstance(e, ValueError) else str(e))

        self.loader = threading.Thread(target=load, name="invgui-model-load", daemon=True)
        self.loader.start()

    def join(self, timeout: float = 30.0) -> None:
        """Wait for a model still loading (closing the window then): a process that exits while
        the thread is inside torch aborts ("terminate called without an active exception")."""
        if self.loader is not None:
            self.loader.join(timeout)

    def on_loaded(self, rep, error) -> None:
        w = self.w
        w.model_box.setEnabled(True)
        w.progress.setText("idle")
        if rep is None:
            w.show_error("Cannot load the model", error)
        elif w.rep is None:                          # the user has not picked another one meanwhile
            self.adopt(rep, keep_shown=True)
            w._update_buttons()

    def set_model(self, name: str, rep_params=None, keep_shown: bool = False) -> bool:
        """Load representation ``name`` (with its own ``rep_params``); on failure keep the current one."""
        w = self.w
        try:
            rep = R.get(name, weights=self.weights.get(name), random_weights=w.random_weights.isChecked(),
                        params=rep_params)
        except R.RepresentationError as e:
            w.show_error("Cannot load the model", str(e))
            if w.rep is not None:
                w.model_box.setCurrentIndex(w.model_box.findData(w.rep.name))
            return False
        self.adopt(rep, keep_shown=keep_shown)
        return True

    def take_run_settings(self, run) -> None:
        """The window on a restored run's representation, layer and method, so the run is not shown
        beside another representation's Φ0 (after a restart everything reset to the default model)."""
        w = self.w
        if run.model not in R.names():
            return                                   # a model file: the user opens it again
        other = w.rep is None or w.rep.name != run.model or (run.rep_params or None) != (
            w.rep.describe().get("representation_params") or None)
        if other and not self.set_model(run.model, run.rep_params, keep_shown=True):
            return
        if w.method_box.findData(run.method) >= 0:
            w.set_method(run.method)

    def load_run(self, run) -> bool:
        """Put a run's request into the window (model, layer, image, method, parameters, decoder), to
        change and run again (the run list's *Duplicate into the window*)."""
        w = self.w
        if (w.rep is None or w.rep.name != run.model or w.rep.describe().get("representation_params")
                != run.rep_params or w.random_weights.isChecked() != run.random_weights):
            w.random_weights.blockSignals(True)
            w.random_weights.setChecked(run.random_weights)
            w.random_weights.blockSignals(False)
            if not w.set_model(run.model, run.rep_params):
                return False
        w.set_layer(run.layer)
        if run.image != w.image_source:
            w.open_image(run.image)
        w.set_method(run.method)
        spec = method(run.method)
        if run.params is not None:
            w.form.set_values(run.params)
        if spec.uses_decoder and run.decoder:
            w.decoder_panel.add_file(run.decoder)
        if spec.one_pass and run.decoder:
            w.decoder_panel.size.setValue(run.size)
        w.statusBar().showMessage(f"loaded the settings of {run.label()}: change them and Run", 8000)
        return True

    def adopt(self, rep, keep_shown: bool = False) -> None:
        """Make ``rep`` the window's representation.  ``keep_shown`` (the default model arriving
        after start-up): a run already shown — restored from the autosave meanwhile — stays, and
        the window takes its layer when it is of this representation."""
        w = self.w
        changed = w.rep is None or w.rep.name != rep.name
        w.rep = rep
        w.model_box.setCurrentIndex(w.model_box.findData(rep.name))
        w.layer = rep.default_layer
        shown = w.shown_run if keep_shown and w.result is not None else None
        if shown is not None and shown.model == rep.name:
            with contextlib.suppress(ValueError):    # a layer this build does not have: the default
                w.layer = rep.resolve_layer(shown.layer)
        elif shown is not None and shown.model in R.names():
            # The default model arrived after a run of another representation was restored: the
            # window goes to that run's representation instead (once this one is in place).
            QTimer.singleShot(0, lambda: self.take_run_settings(shown) if w.shown_run is shown else None)
        if changed:
            form = w.left.set_rep_form(rep)
            if form is not None:
                form.changed.connect(self.on_rep_params_changed)
        w._update_labels()
        w.decoder_panel.refresh(rep.name, w.layer)
        w.features.invalidate()
        self.refresh_tree()
        w.features.update()
        note = self.fit_preset()
        if shown is None:
            w.display.clear_stale()
        w.display.show_original()
        w.statusBar().showMessage(f"{rep.title}: weights {rep.weights_info}" + note, 8000)
        if resolve_device(w.device) == "cpu":   # runs on the CPU use this one instead of building their own
            w.controller.offer_rep(rep, self.weights.get(rep.name), w.random_weights.isChecked())

    def fit_preset(self) -> str:
        """A preset made for another kind of representation is not carried over silently: the
        paper's counterpart for this one is chosen instead, and the status bar says so."""
        form = self.w.form
        current = form.preset_box.currentText()
        handcrafted = self.w.rep.params is not None
        fitting = optimize.preset_for(current, handcrafted)
        if fitting == current:
            return ""
        form.preset_box.setCurrentText(fitting)
        return f" · preset {current} → {fitting} (made for {'hand-crafted features' if handcrafted else 'CNNs'})"

    def on_rep_params_changed(self) -> None:
        w = self.w
        try:
            values = w.left.rep_form.values()
        except ValueError as e:
            w.statusBar().showMessage(f"representation parameters: {e}", 8000)
            return
        if values != w.rep.params:
            self.set_model(w.rep.name, values)

    def on_chosen(self, index: int) -> None:
        w = self.w
        name = w.model_box.itemData(index)
        if name != OPEN_MODEL:
            self.set_model(name)
            return
        w.model_box.setCurrentIndex(w.model_box.findData(w.rep.name) if w.rep else 0)
        path, _ = QFileDialog.getOpenFileName(w, "Open a model", "", "TorchScript or state dict (*.pt *.pth *.ts);;"
                                              "All files (*)")
        if not path:
            return
        arch, ok = QInputDialog.getText(w, "Architecture", "For a state-dict file, the architecture "
                                        "(torchvision:resnet18, timm:convnext_tiny, …); empty for a TorchScript file:")
        if ok:
            self.open_model_file(path, arch.strip() or None)

    def open_model_file(self, path: str, arch: str | None = None) -> bool:
        """Use a TorchScript file, or a state dict for ``arch`` (``torchvision:NAME`` / ``timm:NAME``)."""
        w = self.w
        if arch:
            if not arch.startswith(("torchvision:", "timm:")):
                arch = f"torchvision:{arch}"
            name, weights = arch, str(path)
        else:
            name, weights = f"torchscript:{path}", None
            if not R.is_trusted(path):
                if not self.confirm_torchscript(str(path)):
                    w.statusBar().showMessage(f"did not load {path}: not trusted", 8000)
                    return False
                R.trust(path)
        if weights:
            self.weights[name] = weights
        if w.model_box.findData(name) < 0:
            w.model_box.insertItem(w.model_box.count() - 1, f"{Path(path).name} ({arch or 'TorchScript'})", name)
        if not self.set_model(name):
            self.weights.pop(name, None)
            w.model_box.removeItem(w.model_box.findData(name))
            return False
        return True

    def confirm_torchscript(self, path: str) -> bool:
        """Ask before loading a TorchScript file: it is a program and can run code when loaded."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Trust this TorchScript file?",
                          f"{path}\n\nA TorchScript file is a program: loading it can run arbitrary code "
                          "with your permissions. Load it only if you trust where it came from.\n\n"
                          "(A torchvision/timm architecture with a state-dict file is loaded safely, "
                          "with weights_only=True, and needs no such trust.)",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self.w)
        box.button(QMessageBox.StandardButton.Yes).setText("Load it, I trust it")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        return box.exec() == QMessageBox.StandardButton.Yes

    def refresh_tree(self) -> None:
        """The layer tree at the current input size.  Shapes at a new size take a forward pass
        (~0.1 s for EfficientNet-Lite0 on this CPU): computed on the background thread, the tree
        is filled when they are there (a size typed meanwhile supersedes them)."""
        w = self.w
        if w.rep is None:
            return
        rep, size = w.rep, w._size()
        w.layer_tree.shapes_size = size
        w.display.show_original()

        def fill(_value=None, error: BaseException | None = None) -> None:
            if w.rep is not rep or w._size() != size:
                return                                 # another model or size was chosen meanwhile
            if error is not None:
                w.show_error("Cannot compute the layer shapes", str(error))
                return
            w.layer_tree.populate(rep, size, w.layer)
            w.layer_tree.filter(w.layer_filter.text())
            w.features.receptive_field()

        if rep.layers_ready(size):
            fill()
            return
        if w.layer_tree.rep_name != rep.name:
            w.layer_tree.show_pending(rep.title, size)
        w.background.submit("tree", lambda: rep.layers(size), fill)
