"""The window's two docks, built here and wired by the window.

Left ("Layers"): the representation, its own parameters (hand-crafted ones), random weights,
the device, a filter and the layer tree; under it the run list ("Runs").  Right ("Parameters"):
the method, its parameters (optimisation form, or the decoder panel), Run / Pause / Stop and
the result panel.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ...core import representations as R
from ...core.methods import optimize_params as optimize
from ...core.methods.base import DECODER_PAGE
from ...core.methods.registry import method, window_methods
from ...core.state import subscribe
from ..widgets.layer_tree import LayerTree
from ..widgets.param_form import ParamForm
from .decoder_panel import DecoderPanel

OPEN_MODEL = "<open model file>"
OPEN_TIMM = "<timm model>"


def devices() -> list[str]:
    """``auto`` (the first GPU when torch sees one, else the CPU), then every device by name."""
    import torch

    return ["auto", "cpu"] + [f"cuda:{i}" if i else "cuda" for i in range(torch.cuda.device_count())]


def _scroll(widget: QWidget) -> QScrollArea:
    s = QScrollArea()
    s.setWidgetResizable(True)
    s.setWidget(widget)
    s.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return s


class RepresentationDock(QWidget):
    def __init__(self, device: str, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        self.model_box = QComboBox()
        for name in R.names():
            status = R.weights_status(name)
            title = R.REGISTRY[name].title + ("" if not status.startswith("missing") else " — weights missing")
            self.model_box.addItem(title, name)
            self.model_box.setItemData(self.model_box.count() - 1, f"weights: {status}", Qt.ItemDataRole.ToolTipRole)
        self.model_box.addItem("Open a model file (TorchScript, or state dict + architecture)…", OPEN_MODEL)
        self.model_box.addItem("timm model… (ViT, Swin, …)", OPEN_TIMM)
        self.model_box.setItemData(self.model_box.count() - 1, "Any architecture timm builds, with random weights or "
                                   "a weights file / checkpoint folder", Qt.ItemDataRole.ToolTipRole)
        self.model_box.setToolTip("Representation to invert")
        self.random_weights = QCheckBox("Random weights")
        self.random_weights.setToolTip("Use untrained (seeded) weights instead of pretrained ones")
        self.device_box = QComboBox()
        self.device_box.addItems(devices())
        self.device_box.setCurrentText(device)
        self.device_box.setToolTip("Where runs compute: auto = the first GPU when torch sees one, else the CPU "
                                   "(each run's line in the run list says which device ran it)")
        self.layer_tree = LayerTree()
        lay.addWidget(QLabel("Representation"))
        lay.addWidget(self.model_box)
        lay.addWidget(self.random_weights)
        # The hand-crafted representations' own parameters (cell size, bins, step, ...), rebuilt
        # from their dataclass whenever the representation changes.
        self.rep_form_holder = QVBoxLayout()
        lay.addLayout(self.rep_form_holder)
        lay.addWidget(QLabel("Device"))
        lay.addWidget(self.device_box)
        self.layer_filter = QLineEdit()
        self.layer_filter.setPlaceholderText("filter layers by name or kind")
        self.layer_filter.setClearButtonEnabled(True)
        self.layer_filter.textChanged.connect(self.layer_tree.filter)
        lay.addWidget(self.layer_filter)
        lay.addWidget(self.layer_tree, 1)
        self.rep_form: ParamForm | None = None

    def set_rep_form(self, rep) -> ParamForm | None:
        """The form of ``rep``'s own parameters (None for CNNs), replacing the previous one."""
        if self.rep_form is not None:
            self.rep_form.setParent(None)
            self.rep_form.deleteLater()
            self.rep_form = None
        entry = R.REGISTRY.get(rep.name)
        if entry is None or entry.presets is None:
            return None
        self.rep_form = ParamForm(entry.presets)
        self.rep_form.setObjectName("rep_form")
        self.rep_form.set_values(rep.params)
        self.rep_form_holder.addWidget(self.rep_form)
        self.rep_form.show()
        return self.rep_form


HYBRID_START = ("Not used by the hybrid method: restart 1 starts at the decoder's reconstruction, the other "
                "restarts at it plus small noise.")


def queue_label(runs) -> str:
    """The Run button while a run computes: it queues, and says what is there already."""
    running = sum(r.state == "running" for r in runs)
    queued = sum(r.state == "queued" for r in runs)
    return f"Queue ({running} running" + (f", {queued} queued)" if queued else ")")


class MethodDock(QWidget):
    """The method page: the chosen method is ``state.method`` (the box writes it, and shows it when
    it is set elsewhere), the notes under it follow the representation, the method and the decoder
    choice (subscribed here), and a new layer clears the form's *Window* (it belongs to one map)."""

    priorChosen = Signal(str)          # what choosing an image parameterisation changed, in words

    def __init__(self, state, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        rlay = QVBoxLayout(self)
        self.method_box = QComboBox()
        self.method_box.setObjectName("method_box")
        for key, title in ((m.name, m.title) for m in window_methods()):
            self.method_box.addItem(title, key)
        self.method_box.setToolTip("Reconstruct by optimisation from noise, with a trained decoder, or both: "
                                   "the decoder's reconstruction starts the optimisation (hybrid)")
        rlay.addWidget(self.method_box)
        self.hybrid_label = QLabel("")               # hybrid: which decoder starts the optimisation
        self.hybrid_label.setObjectName("hybrid_label")
        self.hybrid_label.setWordWrap(True)
        self.hybrid_label.hide()
        rlay.addWidget(self.hybrid_label)
        self.nondiff_label = QLabel("")
        self.nondiff_label.setWordWrap(True)
        self.nondiff_label.setStyleSheet("color: #c0392b")
        self.nondiff_label.hide()
        rlay.addWidget(self.nondiff_label)
        self.form = ParamForm(optimize.PRESETS)
        cast(QComboBox, self.form.widgets["parameterisation"]).currentTextChanged.connect(self._prior_chosen)
        scroll = _scroll(self.form)
        scroll.setMinimumWidth(self.form.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4)
        self.decoder_panel = DecoderPanel(state)
        self.decoder_panel.setMinimumWidth(200)
        self.decoder_panel.box.setMinimumContentsLength(12)
        self.decoder_panel.box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.method_stack = QStackedWidget()
        self.method_stack.addWidget(scroll)
        self.method_stack.addWidget(_scroll(self.decoder_panel))
        self.method_box.currentIndexChanged.connect(lambda _i: setattr(state, "method", self.method()))
        state.events.method.connect(self._show_method)
        subscribe(state, ("rep", "method", "decoder"), self.update_notes)
        state.events.layer.connect(lambda _layer: self.form.set_value("window", ""))
        self.form.changed.connect(self._form_changed)
        rlay.addWidget(self.method_stack, 1)
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.stop_button = QPushButton("Stop")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.setToolTip("Hold the run (at its next preview) and resume it later")
        for b in (self.run_button, self.pause_button, self.stop_button):
            buttons.addWidget(b)
        self.metrics_label = QLabel("")
        self.metrics_label.setWordWrap(True)
        self.metrics_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        rlay.addWidget(self.metrics_label)
        # The buttons last, under the result panel: they stay where they are whether a result is
        # shown or not, on every method page (above the panel they moved by ~50 px).
        rlay.addLayout(buttons)

    def method(self) -> str:
        return self.method_box.currentData()

    def _show_method(self, name: str) -> None:
        self.method_box.setCurrentIndex(self.method_box.findData(name))
        self.method_stack.setCurrentIndex(1 if method(name).page == DECODER_PAGE else 0)

    def _form_changed(self) -> None:
        """What the views draw from the form goes into the state: the input side, the Channels field."""
        w = self.form.widgets
        self.state.set(size=int(cast(QSpinBox, w["size"]).value()), channels=self.form.text("channels"))

    def _prior_chosen(self, name: str) -> None:
        """The user chose an image parameterisation: the form has taken the optimiser, schedule and
        prior weights made for it (``OptimizeParams.changed``, asked by the form): say which."""
        from ...core.methods.optimize_params import PRIOR_PRESETS, SCHEDULE

        try:
            values = self.form.values()
        except ValueError:
            return
        self.priorChosen.emit(f"parameterisation {name}: " + ", ".join(
            f"{k.replace('_', ' ')} {getattr(values, k)}" for k in SCHEDULE) + f" (the {PRIOR_PRESETS[name]} preset's)")

    def set_method(self, name: str) -> None:
        self.state.method = name

    def update_notes(self) -> None:
        """Say when optimisation cannot invert the representation, and (hybrid) which decoder starts
        it: the start settings, which the decoder's output replaces, are disabled and say so."""
        rep, decoder = self.state.rep, self.state.decoder
        spec = method(self.state.method)
        show = rep is not None and bool(spec.refuses(rep))
        self.nondiff_label.setText(f"{rep.name}: {rep.decoder_hint}." if show else "")
        self.nondiff_label.setVisible(show)
        own_start = not spec.from_decoder              # its start settings apply
        self.show_start_settings(own_start)
        if own_start:
            self.hybrid_label.hide()
            return
        self.hybrid_label.setText(
            f"Starts from the reconstruction of the decoder <b>{Path(decoder).name}</b> (chosen on the Decoder "
            "page), then optimises with the parameters below." if decoder else
            "No decoder for this layer: choose <i>Decoder</i> to open or train one, then come back.")
        self.hybrid_label.show()

    def show_start_settings(self, used: bool) -> None:
        """The start image's settings, enabled where the method uses them; the hybrid starts from the
        decoder's output, so there they are disabled and their tooltip says why."""
        for name in ("init", "init_scale"):
            w = self.form.widgets[name]
            w.setEnabled(used)
            w.setToolTip(optimize.OptimizeParams.__dataclass_fields__[name].metadata["tooltip"] if used
                         else HYBRID_START)
        for name in ("hybrid_colour", "hybrid_lr"):                   # the hybrid's alone
            self.form.widgets[name].setEnabled(not used)
