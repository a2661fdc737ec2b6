"""A dock form generated from a parameter dataclass, with a preset selector (docs/developer/
architecture.md, "Parameters are declared once")."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, cast

import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...core.params import Presets, field_type, parse_floats, validate
from . import wheel_guard


class ParamForm(QWidget):
    """One widget per dataclass field; ``values()`` returns a new frozen instance."""

    changed = Signal()

    def __init__(self, presets: Presets, parent: QWidget | None = None):
        super().__init__(parent)
        self.presets = presets
        self.cls = presets.cls
        self.widgets: dict[str, QWidget] = {}
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.preset_box = QComboBox()
        self.preset_box.addItems(presets.names())
        self.preset_box.setToolTip("Named parameter sets; every value can still be changed below.")
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Reset every value to the selected preset.")
        row.addWidget(self.preset_box, 1)
        row.addWidget(self.reset_button)
        outer.addLayout(row)
        # What the chosen preset is for, in one line under its box.
        self.preset_note = QLabel()
        self.preset_note.setWordWrap(True)
        self.preset_note.setObjectName("preset_note")
        self.preset_note.setStyleSheet("color: palette(mid); font-size: small;")
        outer.addWidget(self.preset_note)
        groups: dict[str, QFormLayout] = {}
        fields = dataclasses.fields(self.cls)
        order = list(dict.fromkeys(f.metadata.get("group") or "Parameters" for f in fields))
        # The image prior decides what every other setting means: its group second, after the
        # objective, not under twenty fields of schedule and loss.
        if "Prior" in order:
            order.remove("Prior")
            order.insert(min(1, len(order)), "Prior")
        for g in order:
            box = QGroupBox(g)
            groups[g] = QFormLayout(box)
            outer.addWidget(box)
        self._applies: dict[str, tuple[str, tuple]] = {}
        for f in fields:
            g = f.metadata.get("group") or "Parameters"
            if f.metadata.get("applies"):
                self._applies[f.name] = f.metadata["applies"]
            w = self._make_widget(f)
            w.setToolTip(f.metadata.get("tooltip") or "")
            w.setObjectName(f"param_{f.name}")
            self.widgets[f.name] = w
            groups[g].addRow(f.metadata.get("label") or f.name, w)
        outer.addStretch(1)
        self.preset_box.currentTextChanged.connect(lambda name: self.set_values(self.presets.get(name)))
        self.preset_box.currentTextChanged.connect(self._say_preset)
        self._settled: Any = None                   # the values before the user's latest choice (_chosen)
        self.changed.connect(self._settle)
        self.changed.connect(self._enable_applicable)
        self.reset_button.clicked.connect(lambda: self.set_values(self.presets.get(self.preset_box.currentText())))
        self.set_values(presets.get(presets.names()[0]))
        self._say_preset(self.preset_box.currentText())
        wheel_guard.guard(self)                     # its boxes take the wheel only once clicked

    def _chosen(self, name: str) -> None:
        """The user chose a value of field ``name``: what follows from it, as the parameter class
        says (``changed(**{name: value})`` from the values before the choice — a prior brings its
        own schedule), is put into the form with it.  A class without ``changed``: the value alone."""
        before, follow, now = self._settled, None, None
        if before is not None and hasattr(before, "changed"):
            with contextlib.suppress(ValueError):        # another field being typed: the choice alone
                now = self.values()
                follow = before.changed(**{name: getattr(now, name)})
        if follow is not None and follow != now:
            self.set_values(follow)              # (emits changed)
        else:
            self.changed.emit()

    def _settle(self) -> None:
        with contextlib.suppress(ValueError):    # a field being typed: the last values that read stay
            self._settled = self.values()

    def _say_preset(self, name: str) -> None:
        note = self.presets.note(name)
        self.preset_note.setText(note)
        self.preset_note.setVisible(bool(note))

    def _enable_applicable(self) -> None:
        """Fields that act only for some value of another (DIP width under the Fourier prior) are
        greyed out otherwise, their tooltip saying when they apply."""
        for name, (other, values) in self._applies.items():
            w, src = self.widgets[name], self.widgets.get(other)
            if src is None:
                continue
            now = src.currentText() if isinstance(src, QComboBox) else str(getattr(self.values(), other))
            w.setEnabled(now in {str(v) for v in values})

    def _make_widget(self, f: dataclasses.Field) -> QWidget:
        tp = field_type(self.cls, f)
        md = f.metadata
        if md.get("choices"):
            combo = QComboBox()
            combo.addItems([str(c) for c in md["choices"]])
            combo.currentTextChanged.connect(lambda _text, name=f.name: self._chosen(name))
            # A long choice ("efficientnet_lite0:blocks.1") must not set the form's minimum width (the
            # training dialog scrolled sideways): the list that drops down shows it whole.
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
            return combo
        if tp is bool:
            check = QCheckBox()
            check.toggled.connect(self.changed)
            return check
        if tp is int:
            spin = QSpinBox()
            lo, hi = md.get("min"), md.get("max")
            spin.setRange(int(lo) if lo is not None else -2**31, int(hi) if hi is not None else 2**31 - 1)
            spin.setSingleStep(int(md.get("step") or 1))
            if md.get("special"):
                spin.setSpecialValueText(md["special"])
            spin.valueChanged.connect(self.changed)
            return spin
        if tp is float:
            # pyqtgraph's SpinBox steps by decades (dec=True): right for weights spanning 1e-6..1e3.
            fspin = pg.SpinBox(value=float(cast(float, f.default)), bounds=(md.get("min"), md.get("max")), dec=True,
                               step=0.5, minStep=1e-9, decimals=4, compactHeight=False)
            fspin.sigValueChanged.connect(lambda *_: self.changed.emit())
            return fspin
        edit = QLineEdit()                     # tuples of floats, free text
        edit.textChanged.connect(self.changed)
        return edit

    def set_values(self, p: Any) -> None:
        for name, w in self.widgets.items():
            v = getattr(p, name)
            w.blockSignals(True)
            if isinstance(w, QComboBox):
                w.setCurrentText(str(v))
            elif isinstance(w, QCheckBox):
                w.setChecked(bool(v))
            elif isinstance(w, (QSpinBox, pg.SpinBox)):
                w.setValue(v)
            elif isinstance(w, QLineEdit):
                w.setText(", ".join(f"{x:g}" for x in v) if isinstance(v, tuple) else str(v))
            w.blockSignals(False)
        self.changed.emit()

    def text(self, name: str) -> str:
        """A field's text as it stands, even while it does not parse (a line edit being typed)."""
        w = self.widgets[name]
        if isinstance(w, QLineEdit):
            return w.text()
        if isinstance(w, QComboBox):
            return w.currentText()
        if isinstance(w, (QSpinBox, pg.SpinBox)):
            return str(w.value())
        return str(cast(QCheckBox, w).isChecked())

    def set_value(self, name: str, value: Any) -> None:
        self.set_values(dataclasses.replace(self.values(), **{name: value}))

    def values(self) -> Any:
        """The current values as a parameter instance; raises ValueError naming a bad field."""
        kw = {}
        for f in dataclasses.fields(self.cls):
            w = self.widgets[f.name]
            tp = field_type(self.cls, f)
            if isinstance(w, QComboBox):
                # A choice of numbers (an int field with choices) reads back as its default's type.
                kind: type = type(f.default) if f.default is not dataclasses.MISSING else str
                kw[f.name] = kind(w.currentText())
            elif isinstance(w, QCheckBox):
                kw[f.name] = w.isChecked()
            elif isinstance(w, QSpinBox):
                kw[f.name] = int(w.value())
            elif isinstance(w, pg.SpinBox):
                kw[f.name] = float(w.value())
            else:
                text = cast(QLineEdit, w).text()
                try:
                    kw[f.name] = parse_floats(text) if tp is not str else text
                except ValueError:
                    label = f.metadata.get("label") or f.name
                    raise ValueError(f"{label}: {text!r} is not a comma-separated list of numbers") from None
        p = self.cls(**kw)
        problems = validate(p)
        if problems:
            raise ValueError("; ".join(problems))
        return p
