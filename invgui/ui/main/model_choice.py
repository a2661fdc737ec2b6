"""Choosing the representation in the window: the embedded default loaded behind a visible
"loading" state, a registered one picked in the chooser, a model file opened (TorchScript only
after the user trusts it), and the hand-crafted representations' own parameters.  A model that
cannot be loaded leaves the current one in place and says why."""

from __future__ import annotations

import contextlib
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from ...core import representations as R
from ...core.device import resolve_device
from ...core.methods import optimize_params as optimize
from ...core.methods.base import DECODER_PAGE
from ...core.methods.registry import method
from ...core.state import subscribe
from ..threads.jobs import Job, create_worker
from .docks import OPEN_MODEL, OPEN_TIMM


class ModelChoice(QObject):
    """The representation dock's view: acts on ``reps`` (chooser, random-weights box, layer tree)
    and on the method dock ``methods`` (its preset, a run's settings put back); keeps the
    representation, layer, random weights and weight files in the state and hands a built
    representation to the controller.  The layer tree follows ``state.layer`` and is refilled when
    the representation or the input side changes (subscribed here)."""

    loaded = Signal(object, object)   # (representation or None, error message): from the loading thread

    def __init__(self, ctx, reps, methods):
        super().__init__(ctx.window)
        self.ctx, self.c, self.state, self.reps, self.methods = ctx, ctx.controller, ctx.state, reps, methods
        self.weights: dict[str, str] = ctx.state.weights   # explicit state-dict file per model (else its own)
        self.loader: Job | None = None
        self.loaded.connect(self.on_loaded)
        st = self.state
        subscribe(st, ("rep", "size"), self.refresh_tree)
        st.events.layer.connect(reps.layer_tree.select)
        st.events.random_weights.connect(self._show_random_weights)
        reps.random_weights.toggled.connect(lambda on: self.set_model(reps.model_box.currentData(), random_weights=on))
        reps.model_box.activated.connect(self.on_chosen)

    def _show_random_weights(self, on: bool) -> None:
        box = self.reps.random_weights
        box.blockSignals(True)                  # showing the state is not a user's toggle
        box.setChecked(on)
        box.blockSignals(False)

    def show_loading(self, name: str) -> None:
        """The visible "loading" state (the chooser disabled, the status bar saying what loads)."""
        self.reps.model_box.setEnabled(False)
        self.ctx.say(f"loading {R.REGISTRY[name].title}…", 0)
        self.ctx.progress("loading the model")

    def load_in_background(self, name: str) -> None:
        """Build representation ``name`` and its layer shapes on a thread; ``loaded`` brings it back."""
        self.show_loading(name)

        def load():
            rep = R.get(name, weights=self.weights.get(name))
            rep.layers(rep.input_size)               # the tree's shapes: one forward pass, cached
            return rep

        def failed(e: BaseException) -> None:
            self.loaded.emit(None, f"{type(e).__name__}: {e}" if not isinstance(e, ValueError) else str(e))

        self.loader = create_worker(load, _name="invgui-model-load",
                                    _connect={"returned": lambda rep: self.loaded.emit(rep, None), "errored": failed})

    def join(self, timeout: float = 30.0) -> None:
        """Wait for a model still loading (closing the window then): a process that exits while
        the thread is inside torch aborts ("terminate called without an active exception")."""
        if self.loader is not None:
            self.loader.wait(timeout)

    def on_loaded(self, rep, error) -> None:
        st = self.state
        self.reps.model_box.setEnabled(True)
        self.ctx.progress("idle")
        if rep is None:
            self.ctx.show_error("Cannot load the model", error)
        elif st.rep is None:                          # the user has not picked another one meanwhile
            self.adopt(rep, keep_shown=True)

    def set_model(self, name: str, rep_params=None, keep_shown: bool = False, random_weights: bool | None = None
                  ) -> bool:
        """Load representation ``name`` (with its own ``rep_params``; ``random_weights``: default the
        state's); on failure keep the current one (and its random-weights setting)."""
        st = self.state
        rand = st.random_weights if random_weights is None else random_weights
        try:
            rep = R.get(name, weights=self.weights.get(name), random_weights=rand, params=rep_params)
        except R.RepresentationError as e:
            self.ctx.show_error("Cannot load the model", str(e))
            if st.rep is not None:
                self.reps.model_box.setCurrentIndex(self.reps.model_box.findData(st.rep.name))
            self._show_random_weights(st.random_weights)
            return False
        self.adopt(rep, keep_shown=keep_shown, random_weights=rand)
        return True

    def take_run_settings(self, run) -> None:
        """The window on a restored run's representation, layer and method, so the run is not shown
        beside another representation's Φ0 (after a restart everything reset to the default model).
        A timm or torchvision architecture comes back with its weight file (or random weights); a
        TorchScript file only when it was trusted; a module built in Python cannot."""
        st = self.state
        name = run.model
        if name not in R.names():
            if name.startswith("torchscript:") and not R.is_trusted(name.removeprefix("torchscript:")):
                return
            if not name.startswith(("timm:", "torchvision:", "torchscript:")):
                return                                # python:CLASS@HASH: only the session that built it has it
            if run.weights and not Path(run.weights).exists():
                self.ctx.say(f"the shown run's weights {run.weights} are gone: the window keeps {st.rep.name}", 15000)
                return
            if run.weights:
                self.weights[name] = run.weights
        other = st.rep is None or st.rep.name != name or (run.rep_params or None) != (
            st.rep.describe().get("representation_params") or None) or st.random_weights != run.random_weights
        if other and not self.set_model(name, run.rep_params, keep_shown=True, random_weights=run.random_weights):
            return
        with contextlib.suppress(ValueError, R.RepresentationError):   # a layer this build lacks: the default
            st.layer = st.rep.resolve_layer(run.layer)
        if self.methods.method_box.findData(run.method) >= 0:
            st.method = run.method

    def load_run(self, run) -> bool:
        """Put a run's request into the window (model, layer, image, method, parameters, decoder), to
        change and run again (the run list's *Duplicate into the window*)."""
        st = self.state
        other = (st.rep is None or st.rep.name != run.model or st.rep.describe().get("representation_params")
                 != run.rep_params or st.random_weights != run.random_weights)
        if other and not self.set_model(run.model, run.rep_params, random_weights=run.random_weights):
            return False
        st.layer = st.rep.resolve_layer(run.layer)
        if run.image != st.image_source:
            self.ctx.open_image(run.image)
        st.method = run.method
        if run.params is not None:
            self.methods.form.set_values(run.params)
        if run.decoder:                               # a request carries one only for a method that reads it
            self.methods.decoder_panel.add_file(run.decoder)
            if method(run.method).page == DECODER_PAGE:   # its side is the decoder page's
                self.methods.decoder_panel.size_box.setValue(run.size)
        self.ctx.say(f"loaded the settings of {run.label()}: change them and Run")
        return True

    def adopt(self, rep, keep_shown: bool = False, random_weights: bool | None = None) -> None:
        """Make ``rep`` the window's representation (and its default layer, together: no view sees
        the new model with the old one's layer).  ``keep_shown`` (the default model arriving after
        start-up, a restored run's model): a run already shown stays, and the window takes its
        layer when it is of this representation."""
        st = self.state
        changed = st.rep is None or st.rep.name != rep.name
        box = self.reps.model_box
        if box.findData(rep.name) < 0:               # torchvision:/timm:ARCH from `invgui gui --model`, Python
            box.insertItem(box.count() - 1, rep.title, rep.name)
        box.setCurrentIndex(box.findData(rep.name))
        layer = rep.default_layer
        shown = st.shown_run if keep_shown and st.result is not None else None
        if shown is not None and shown.model == rep.name:
            with contextlib.suppress(ValueError, R.RepresentationError):   # a layer this build lacks: the default
                layer = rep.resolve_layer(shown.layer)
        elif shown is not None and shown.model != rep.name:
            # The default model arrived after a run of another representation was restored: the
            # window goes to that run's representation instead (once this one is in place).
            QTimer.singleShot(0, lambda: self.take_run_settings(shown) if st.shown_run is shown else None)
        rand = st.random_weights if random_weights is None else random_weights
        with st.keeping_shown() if shown is not None else contextlib.nullcontext():
            st.set(rep=rep, layer=layer, random_weights=rand and rep.params is None)
        # Hand-crafted features (HOG, LBP, SIFT) have no weights: "Random weights" does not apply to them.
        self.reps.random_weights.setEnabled(rep.params is None)
        if changed:
            form = self.reps.set_rep_form(rep)
            if form is not None:
                form.changed.connect(self.on_rep_params_changed)
        note = self.fit_preset()
        self.ctx.say(f"{rep.title}: weights {rep.weights_info}" + note)
        if resolve_device(st.device) == "cpu":   # runs on the CPU use this one instead of building their own
            self.c.offer_rep(rep, self.weights.get(rep.name), rand)

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
            self.ctx.say(f"representation parameters: {e}")
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
        path, _ = QFileDialog.getOpenFileName(self.ctx.window, "Open a model", "",
                                              "TorchScript, state dict or safetensors (*.pt *.pth *.ts *.safetensors);;"
                                              "All files (*)")
        if not path:
            return
        arch, ok = QInputDialog.getText(self.ctx.window, "Architecture", "For a state-dict or safetensors file, the "
                                        "architecture (torchvision:resnet18, timm:vit_small_patch14_dinov2, …); "
                                        "empty for a TorchScript file:")
        if ok:
            self.open_model_file(path, arch.strip() or None)

    def timm_dialog(self) -> bool:
        """Representation › timm model…: an architecture by name, then random weights or a weights
        file (state dict, safetensors) — a ViT or Swin without the command line."""
        arch, ok = QInputDialog.getText(self.ctx.window, "timm model", "timm architecture (e.g. vit_small_patch16_224, "
                                        "swin_tiny_patch4_window7_224, convnext_tiny, vit_small_patch14_dinov2):")
        if not ok or not arch.strip():
            return False
        box = QMessageBox(QMessageBox.Icon.Question, "Weights", f"Weights for {arch.strip()}:",
                          QMessageBox.StandardButton.Cancel, self.ctx.window)
        pick = box.addButton("Choose a weights file…", QMessageBox.ButtonRole.AcceptRole)
        rand = box.addButton("Random weights (seed 0)", QMessageBox.ButtonRole.AcceptRole)
        box.exec()
        if box.clickedButton() is pick:
            path, _ = QFileDialog.getOpenFileName(self.ctx.window, "Weights", "", "State dict or safetensors "
                                                  "(*.pt *.pth *.bin *.safetensors);;All files (*)")
            return bool(path) and self.open_timm(arch.strip(), path)
        return box.clickedButton() is rand and self.open_timm(arch.strip(), None)

    def open_timm(self, arch: str, weights: str | None) -> bool:
        """Use timm's ``arch`` with ``weights`` (a file or checkpoint folder), or random weights when None."""
        arch = arch.removeprefix("timm:")
        if weights is not None:
            return self.open_model_file(weights, f"timm:{arch}")
        name = f"timm:{arch}"
        box = self.reps.model_box
        if box.findData(name) < 0:
            box.insertItem(box.findData(OPEN_MODEL), f"{arch} (timm, random weights)", name)
        if not self.set_model(name, random_weights=True):
            box.removeItem(box.findData(name))
            return False
        return True

    def open_model_file(self, path: str, arch: str | None = None) -> bool:
        """Use a TorchScript file, or a state dict / safetensors file for ``arch`` (``torchvision:NAME``
        / ``timm:NAME``)."""
        if not arch and str(path).endswith(".safetensors"):
            self.ctx.show_error("Cannot load the model", f"{path} holds weights only: give its architecture "
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
                    self.ctx.say(f"did not load {path}: not trusted")
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
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self.ctx.window)
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
        rep, size, tree = st.rep, st.input_side, self.reps.layer_tree
        if tree.rep_name == rep.name and tree.shapes_size == size and tree.rep is rep:
            return                                     # the same representation at the same side: filled
        tree.shapes_size = size

        def fill(_value=None, error: BaseException | None = None) -> None:
            if st.rep is not rep or st.input_side != size:
                return                                 # another model or size was chosen meanwhile
            if error is not None:
                self.ctx.show_error("Cannot compute the layer shapes", str(error))
                return
            tree.populate(rep, size, st.layer)
            tree.filter(self.reps.layer_filter.text())

        if rep.layers_ready(size):
            fill()
            return
        if tree.rep_name != rep.name:
            tree.show_pending(rep.title, size)
        self.ctx.background.submit("tree", lambda: rep.layers(size), fill)
