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
from .docks import OPEN_MODEL, OPEN_TIMM


class ModelChoice:
    """Acts on the representation dock ``reps`` (chooser, random-weights box, layer tree) and the
    method dock ``methods`` (method, form, decoder page); keeps the representation, layer and
    weight files in ``state``; hands a built representation to the controller.  The window's own
    reactions come in as callables (``set_layer``, ``open_image``, ``update_labels``,
    ``update_buttons``; ``loaded(rep, error)`` brings a background load back to the GUI thread)."""

    def __init__(self, controller, state, *, reps, methods, display, features, background, parent, status_bar,
                 progress, show_error, size, set_layer, open_image, update_labels, update_buttons, loaded):
        self.c, self.state, self.reps, self.methods = controller, state, reps, methods
        self.display, self.features, self.background, self.parent = display, features, background, parent
        self.status_bar, self.progress, self.show_error, self.size = status_bar, progress, show_error, size
        self.set_layer, self.open_image, self.loaded = set_layer, open_image, loaded
        self.update_labels, self.update_buttons = update_labels, update_buttons
        self.weights: dict[str, str] = state.weights   # explicit state-dict file per model (else its own)
        self.loader: threading.Thread | None = None

    def show_loading(self, name: str) -> None:
        """The visible "loading" state (the chooser disabled, the status bar saying what loads)."""
        self.reps.model_box.setEnabled(False)
        self.status_bar.showMessage(f"loading {R.REGISTRY[name].title}…")
        self.progress.setText("loading the model")

    def load_in_background(self, name: str) -> None:
        """Build representation ``name`` and its layer shapes on a thread; ``loaded`` brings it back."""
        self.show_loading(name)

        def load() -> None:
            try:
                rep = R.get(name, weights=self.weights.get(name))
                rep.layers(rep.input_size)           # the tree's shapes: one forward pass, cached
                self.loaded(rep, None)
            except Exception as e:                   # shown on the GUI thread
                self.loaded(None, f"{type(e).__name__}: {e}" if not isinstance(e, ValueError) else str(e))

        self.loader = threading.Thread(target=load, name="invgui-model-load", daemon=True)
        self.loader.start()

    def join(self, timeout: float = 30.0) -> None:
        """Wait for a model still loading (closing the window then): a process that exits while
        the thread is inside torch aborts ("terminate called without an active exception")."""
        if self.loader is not None:
            self.loader.join(timeout)

    def on_loaded(self, rep, error) -> None:
        st = self.state
        self.reps.model_box.setEnabled(True)
        self.progress.setText("idle")
        if rep is None:
            self.show_error("Cannot load the model", error)
        elif st.rep is None:                          # the user has not picked another one meanwhile
            self.adopt(rep, keep_shown=True)
            self.update_buttons()

    def set_model(self, name: str, rep_params=None, keep_shown: bool = False) -> bool:
        """Load representation ``name`` (with its own ``rep_params``); on failure keep the current one."""
        st = self.state
        try:
            rep = R.get(name, weights=self.weights.get(name), random_weights=self.reps.random_weights.isChecked(),
                        params=rep_params)
        except R.RepresentationError as e:
            self.show_error("Cannot load the model", str(e))
            if st.rep is not None:
                self.reps.model_box.setCurrentIndex(self.reps.model_box.findData(st.rep.name))
            return False
        self.adopt(rep, keep_shown=keep_shown)
        return True

    def take_run_settings(self, run) -> None:
        """The window on a restored run's representation, layer and method, so the run is not shown
        beside another representation's Φ0 (after a restart everything reset to the default model)."""
        st = self.state
        if run.model not in R.names():
            return                                   # a model file: the user opens it again
        other = st.rep is None or st.rep.name != run.model or (run.rep_params or None) != (
            st.rep.describe().get("representation_params") or None)
        if other and not self.set_model(run.model, run.rep_params, keep_shown=True):
            return
        if self.methods.method_box.findData(run.method) >= 0:
            self.methods.set_method(run.method)

    def load_run(self, run) -> bool:
        """Put a run's request into the window (model, layer, image, method, parameters, decoder), to
        change and run again (the run list's *Duplicate into the window*)."""
        st = self.state
        if (st.rep is None or st.rep.name != run.model or st.rep.describe().get("representation_params")
                != run.rep_params or self.reps.random_weights.isChecked() != run.random_weights):
            self.reps.random_weights.blockSignals(True)
            self.reps.random_weights.setChecked(run.random_weights)
            self.reps.random_weights.blockSignals(False)
            if not self.set_model(run.model, run.rep_params):
                return False
        self.set_layer(run.layer)
        if run.image != st.image_source:
            self.open_image(run.image)
        self.methods.set_method(run.method)
        spec = method(run.method)
        if run.params is not None:
            self.methods.form.set_values(run.params)
        if spec.uses_decoder and run.decoder:
            self.methods.decoder_panel.add_file(run.decoder)
        if spec.one_pass and run.decoder:
            self.methods.decoder_panel.size.setValue(run.size)
        self.status_bar.showMessage(f"loaded the settings of {run.label()}: change them and Run", 8000)
        return True

    def adopt(self, rep, keep_shown: bool = False) -> None:
        """Make ``rep`` the window's representation.  ``keep_shown`` (the default model arriving
        after start-up): a run already shown — restored from the autosave meanwhile — stays, and
        the window takes its layer when it is of this representation."""
        st = self.state
        changed = st.rep is None or st.rep.name != rep.name
        st.rep = rep
        box = self.reps.model_box
        if box.findData(rep.name) < 0:               # torchvision:/timm:ARCH from `invgui gui --model`, Python
            box.insertItem(box.count() - 1, rep.title, rep.name)
        box.setCurrentIndex(box.findData(rep.name))
        st.layer = rep.default_layer
        shown = st.shown_run if keep_shown and st.result is not None else None
        if shown is not None and shown.model == rep.name:
            with contextlib.suppress(ValueError):    # a layer this build does not have: the default
                st.layer = rep.resolve_layer(shown.layer)
        elif shown is not None and shown.model in R.names():
            # The default model arrived after a run of another representation was restored: the
            # window goes to that run's representation instead (once this one is in place).
            QTimer.singleShot(0, lambda: self.take_run_settings(shown) if st.shown_run is shown else None)
        # Hand-crafted features (HOG, LBP, SIFT) have no weights: "Random weights" does not apply to them.
        self.reps.random_weights.setEnabled(rep.params is None)
        if changed:
            form = self.reps.set_rep_form(rep)
            if form is not None:
                form.changed.connect(self.on_rep_params_changed)
        self.update_labels()
        self.methods.decoder_panel.refresh(rep.name, st.layer)
        self.features.invalidate()
        self.refresh_tree()
        self.features.update()
        note = self.fit_preset()
        if shown is None:
            self.display.clear_stale()
        self.display.show_original()
        self.status_bar.showMessage(f"{rep.title}: weights {rep.weights_info}" + note, 8000)
        if resolve_device(st.device) == "cpu":   # runs on the CPU use this one instead of building their own
            self.c.offer_rep(rep, self.weights.get(rep.name), self.reps.random_weights.isChecked())

    def fit_preset(self) -> str:
        """A preset made for another kind of representation is not carried over silently: the
        paper's counterpart for this one is chosen instead, and the status bar says so."""
        form = self.methods.form
        current = form.preset_box.currentText()
        handcrafted = self.state.rep.params is not None
        fitting = optimize.preset_for(current, handcrafted)
        if fitting == current:
            return ""
        form.preset_box.setCurrentText(fitting)
        return f" · preset {current} → {fitting} (made for {'hand-crafted features' if handcrafted else 'CNNs'})"

    def on_rep_params_changed(self) -> None:
        st = self.state
        try:
            values = self.reps.rep_form.values()
        except ValueError as e:
            self.status_bar.showMessage(f"representation parameters: {e}", 8000)
            return
        if values != st.rep.params:
            self.set_model(st.rep.name, values)

    def on_chosen(self, index: int) -> None:
        st = self.state
        name = self.reps.model_box.itemData(index)
        if name not in (OPEN_MODEL, OPEN_TIMM):
            self.set_model(name)
            return
        self.reps.model_box.setCurrentIndex(self.reps.model_box.findData(st.rep.name) if st.rep else 0)
        if name == OPEN_TIMM:
            self.timm_dialog()
            return
        path, _ = QFileDialog.getOpenFileName(self.parent, "Open a model", "",
                                              "TorchScript, state dict or safetensors (*.pt *.pth *.ts *.safetensors);;"
                                              "All files (*)")
        if not path:
            return
        arch, ok = QInputDialog.getText(self.parent, "Architecture", "For a state-dict or safetensors file, the "
                                        "architecture (torchvision:resnet18, timm:vit_small_patch14_dinov2, …); "
                                        "empty for a TorchScript file:")
        if ok:
            self.open_model_file(path, arch.strip() or None)

    def timm_dialog(self) -> bool:
        """Representation › timm model…: an architecture by name, then random weights or a weights
        file (state dict, safetensors) — a ViT or Swin without the command line."""
        arch, ok = QInputDialog.getText(self.parent, "timm model", "timm architecture (e.g. vit_small_patch16_224, "
                                        "swin_tiny_patch4_window7_224, convnext_tiny, vit_small_patch14_dinov2):")
        if not ok or not arch.strip():
            return False
        box = QMessageBox(QMessageBox.Icon.Question, "Weights", f"Weights for {arch.strip()}:",
                          QMessageBox.StandardButton.Cancel, self.parent)
        pick = box.addButton("Choose a weights file…", QMessageBox.ButtonRole.AcceptRole)
        rand = box.addButton("Random weights (seed 0)", QMessageBox.ButtonRole.AcceptRole)
        box.exec()
        if box.clickedButton() is pick:
            path, _ = QFileDialog.getOpenFileName(self.parent, "Weights", "", "State dict or safetensors "
                                                  "(*.pt *.pth *.bin *.safetensors);;All files (*)")
            return bool(path) and self.open_timm(arch.strip(), path)
        return box.clickedButton() is rand and self.open_timm(arch.strip(), None)

    def open_timm(self, arch: str, weights: str | None) -> bool:
        """Use timm's ``arch`` with ``weights`` (a file or checkpoint folder), or random weights when None."""
        arch = arch.removeprefix("timm:")
        if weights is not None:
            return self.open_model_file(weights, f"timm:{arch}")
        name = f"timm:{arch}"
        self.reps.random_weights.blockSignals(True)       # its toggle would rebuild the current model first
        self.reps.random_weights.setChecked(True)
        self.reps.random_weights.blockSignals(False)
        box = self.reps.model_box
        if box.findData(name) < 0:
            box.insertItem(box.findData(OPEN_MODEL), f"{arch} (timm, random weights)", name)
        if not self.set_model(name):
            box.removeItem(box.findData(name))
            return False
        return True

    def open_model_file(self, path: str, arch: str | None = None) -> bool:
        """Use a TorchScript file, or a state dict / safetensors file for ``arch`` (``torchvision:NAME``
        / ``timm:NAME``)."""
        if not arch and str(path).endswith(".safetensors"):
            self.show_error("Cannot load the model", f"{path} holds weights only: give its architecture "
                            "(e.g. timm:vit_small_patch14_dinov2)")
            return False
        if arch:
            if not arch.startswith(("torchvision:", "timm:")):
                arch = f"torchvision:{arch}"
            name, weights = arch, str(path)
        else:
            name, weights = f"torchscript:{path}", None
            if not R.is_trusted(path):
                if not self.confirm_torchscript(str(path)):
                    self.status_bar.showMessage(f"did not load {path}: not trusted", 8000)
                    return False
                R.trust(path)
        if weights:
            self.weights[name] = weights
        box = self.reps.model_box
        if box.findData(name) < 0:             # before the "Open…" entries
            box.insertItem(box.findData(OPEN_MODEL), f"{Path(path).name} ({arch or 'TorchScript'})", name)
        if not self.set_model(name):
            self.weights.pop(name, None)
            self.reps.model_box.removeItem(self.reps.model_box.findData(name))
            return False
        return True

    def confirm_torchscript(self, path: str) -> bool:
        """Ask before loading a TorchScript file: it is a program and can run code when loaded."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Trust this TorchScript file?",
                          f"{path}\n\nA TorchScript file is a program: loading it can run arbitrary code "
                          "with your permissions. Load it only if you trust where it came from.\n\n"
                          "(A torchvision/timm architecture with a state-dict file is loaded safely, "
                          "with weights_only=True, and needs no such trust.)",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self.parent)
        box.button(QMessageBox.StandardButton.Yes).setText("Load it, I trust it")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        return box.exec() == QMessageBox.StandardButton.Yes

    def refresh_tree(self) -> None:
        """The layer tree at the current input size.  Shapes at a new size take a forward pass
        (~0.1 s for EfficientNet-Lite0 on this CPU): computed on the background thread, the tree
        is filled when they are there (a size typed meanwhile supersedes them)."""
        st = self.state
        if st.rep is None:
            return
        rep, size = st.rep, self.size()
        self.reps.layer_tree.shapes_size = size
        self.display.show_original()

        def fill(_value=None, error: BaseException | None = None) -> None:
            if st.rep is not rep or self.size() != size:
                return                                 # another model or size was chosen meanwhile
            if error is not None:
                self.show_error("Cannot compute the layer shapes", str(error))
                return
            self.reps.layer_tree.populate(rep, size, st.layer)
            self.reps.layer_tree.filter(self.reps.layer_filter.text())
            self.features.receptive_field()

        if rep.layers_ready(size):
            fill()
            return
        if self.reps.layer_tree.rep_name != rep.name:
            self.reps.layer_tree.show_pending(rep.title, size)
        self.background.submit("tree", lambda: rep.layers(size), fill)
