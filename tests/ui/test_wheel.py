"""Issue 37 §5: the mouse wheel changes no parameter the user did not click."""

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication
from ui_helpers import make_window

pytestmark = pytest.mark.gui


def wheel(widget, steps: int = 1) -> None:
    """A real QWheelEvent over the middle of ``widget`` (one notch = 120), through the application."""
    centre = QPointF(widget.rect().center())
    ev = QWheelEvent(centre, QPointF(widget.mapToGlobal(centre.toPoint())), QPoint(0, 0), QPoint(0, 120 * steps),
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, ev)


def test_scrolling_over_a_spin_box_or_combo_box_changes_nothing_until_it_is_clicked(qtbot):
    """Before: scrolling the Parameters dock over *Feature weight C* changed it from 1 to 0.7 with no
    click, and the next run used it."""
    w = make_window(qtbot)
    try:
        spin = w.form.widgets["feature_weight"]
        combo = w.form.widgets["optimizer"]
        before = spin.value(), combo.currentIndex()
        assert spin.focusPolicy() == Qt.FocusPolicy.StrongFocus         # the wheel gives no focus
        for _ in range(3):
            wheel(spin, -1)
            wheel(combo, -1)
        assert (spin.value(), combo.currentIndex()) == before
        assert w.form.values().feature_weight == before[0]
        spin.setFocus()
        qtbot.waitUntil(spin.hasFocus)
        wheel(spin, 1)                                                    # clicked into: the wheel works
        assert spin.value() != before[0]
    finally:
        w.close()


def test_the_guard_sits_on_the_boxes_not_on_the_application_and_guards_compare_too(qtbot):
    """bench_gui --session: a filter written in Python on the application was called for every event
    of every widget (~44,000 calls, 0.6 s of the GUI thread, each taking the interpreter lock from
    the worker).  It sits on the spin and combo boxes only — the window's, its forms' and Compare's:
    a spin box that no window guards (made here, outside them) is not filtered."""
    from PySide6.QtWidgets import QSpinBox

    w = make_window(qtbot)
    try:
        cv = w.open_compare([])
        box = cv.sweep_kind
        assert box.focusPolicy() == Qt.FocusPolicy.StrongFocus
        before = box.currentIndex()
        wheel(box, -1)
        assert box.currentIndex() == before                     # Compare's boxes are guarded
        loose = QSpinBox()
        qtbot.addWidget(loose)
        loose.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        loose.show()
        wheel(loose, 1)
        assert loose.value() == 1                               # no application-wide filter saw it
    finally:
        w.close()
