"""The decoder method in the window: choosing a decoder and probing the feature space (training one:
``ui.training.dialog``)."""

from __future__ import annotations

import functools
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...core.methods.decoder import checkpoint as D
from ...core.methods.probe_params import PROBE_PRESETS
from ...core.state import subscribe
from ..widgets.param_form import ParamForm

OPEN_OTHER = "Open a decoder file…"


class DecoderPanel(QWidget):
    """Decoder file, reconstruction size, probe parameters.  Lists the decoders of ``state``'s
    representation and layer (subscribed) and writes the choice to ``state.decoder`` and the side
    to ``state.decoder_size``."""

    trainRequested = Signal()
    probeRequested = Signal()
    changed = Signal()

    def __init__(self, state, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.files: list[str] = []                 # decoder files the user opened this session
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        intro = QLabel("<b>Decoder</b> (Dosovitskiy &amp; Brox): one forward pass of a network trained to map "
                       "Φ back to images.")
        intro.setWordWrap(True)
        lay.addWidget(intro)
        self.box = QComboBox()
        self.box.setObjectName("decoder_box")
        # Long names (hog-adversarial.pt (pixel+feature+adversarial loss)) must not widen the dock:
        # the list that drops down shows them whole.
        self.box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.box.setMinimumContentsLength(16)
        self.box.setToolTip("Decoders for the current representation and layer: the shipped ones and files "
                            "you opened or trained")
        self.box.activated.connect(self._on_activated)
        lay.addWidget(self.box)
        row = QHBoxLayout()
        self.train_button = QPushButton("Train a decoder…")
        self.train_button.setToolTip("Train a decoder for the current representation and layer on a folder of images")
        self.train_button.clicked.connect(self.trainRequested)
        row.addWidget(self.train_button)
        lay.addLayout(row)
        form = QFormLayout()
        self.size_box = QSpinBox()
        self.size_box.setRange(0, 4096)
        self.size_box.setSingleStep(16)
        self.size_box.setSpecialValueText("decoder's own")
        self.size_box.setToolTip("Input and output side in pixels (0 = the size the decoder was trained at; the "
                             "fully connected decoder only works at that size)")
        form.addRow("Size", self.size_box)
        lay.addLayout(form)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.info)
        probe_title = QLabel("<b>Probe the feature space</b> (paper 001 §5)")
        probe_title.setWordWrap(True)
        lay.addWidget(probe_title)
        self.probe_form = ParamForm(PROBE_PRESETS)
        self.probe_form.setObjectName("probe_form")
        lay.addWidget(self.probe_form)
        self.probe_button = QPushButton("Run probe")
        self.probe_button.setToolTip("Manipulate Φ0 as set above and reconstruct every variant with the decoder")
        self.probe_button.clicked.connect(self.probeRequested)
        lay.addWidget(self.probe_button)
        lay.addStretch(1)
        self.rep_name, self.layer = "", ""
        subscribe(state, ("rep", "layer"), self._follow)
        self.box.currentIndexChanged.connect(lambda _i: setattr(state, "decoder", self.current()))
        self.size_box.valueChanged.connect(lambda v: setattr(state, "decoder_size", int(v)))

    def _follow(self) -> None:
        if self.state.rep is not None:
            self.refresh(self.state.rep.name, self.state.layer)

    def refresh(self, rep_name: str, layer: str) -> None:
        """List the decoders that fit ``rep_name`` at ``layer``."""
        self.rep_name, self.layer = rep_name, layer
        current = self.current()
        self.box.blockSignals(True)
        self.box.clear()
        for path, loss in D.shipped_for(rep_name, layer):        # the pixel-loss one first: the default
            self.box.addItem(f"shipped: {path.name} ({loss} loss)", str(path))
        for f in self.files:
            meta = _meta(f)
            if meta and meta.get("representation") == rep_name and meta.get("layer") == layer:
                self.box.addItem(Path(f).name, f)
        if self.box.count() == 0:
            self.box.addItem(f"(no decoder for {rep_name} {layer} yet)", None)
        self.box.addItem(OPEN_OTHER, OPEN_OTHER)
        idx = self.box.findData(current) if current else -1
        self.box.setCurrentIndex(idx if idx >= 0 else 0)
        self.box.blockSignals(False)
        self.state.decoder = self.current()
        self._show_info()

    def current(self) -> str | None:
        data = self.box.currentData()
        return data if data not in (None, OPEN_OTHER) else None

    def add_file(self, path: str) -> None:
        path = str(path)
        if path not in self.files:
            self.files.append(path)
        self.refresh(self.rep_name, self.layer)
        idx = self.box.findData(path)
        if idx >= 0:
            self.box.setCurrentIndex(idx)
        self._show_info()
        self.changed.emit()

    def _on_activated(self, _index: int) -> None:
        if self.box.currentData() == OPEN_OTHER:
            path, _ = QFileDialog.getOpenFileName(self, "Open a decoder", "", "Decoder (*.pt);;All files (*)")
            if path:
                self.add_file(path)
            else:
                self.refresh(self.rep_name, self.layer)
        self._show_info()
        self.changed.emit()

    def _show_info(self) -> None:
        path = self.current()
        meta = _meta(path) if path else None
        if not meta:
            self.info.setText("Pick or train a decoder to reconstruct with this method." if not path
                              else f"{Path(path).name}: not a readable decoder")
            return
        t = meta.get("training", {})
        err = meta.get("held_out_normalised_error")
        took = meta.get("training_seconds")
        data = t.get("dataset") or f"{t.get('images', '?')} images"      # what the shipped ones were trained on
        self.info.setText(
            f"{meta.get('architecture')} decoder, width {meta.get('width')}, trained at "
            f"{meta.get('input_size')} px for {meta.get('epochs')} epoch(s) on {data} "
            f"({D.training_loss(meta)} loss"
            + (f", {took / 60:.0f} min" if isinstance(took, (int, float)) else "") + ")"
            + (f"; held-out normalised error {err:.3f}"
               + (f" on {t['held_out_images']} images" if t.get("held_out_images") else "") if err is not None else "")
            + (" (autoencoder)" if meta.get("autoencoder") else ""))


@functools.lru_cache(maxsize=64)
def _meta_cached(path: str, mtime: float) -> dict | None:
    try:
        return D.load_checkpoint(path).meta
    except D.DecoderError:
        return None


def _meta(path: str | None) -> dict | None:
    if not path or not Path(path).is_file():
        return None
    return _meta_cached(str(path), Path(path).stat().st_mtime)
