"""Spin boxes and combo boxes take the mouse wheel only when they have focus.

Scrolling the long Parameters dock passed over a spin box changed *Feature weight C* from 1 to
0.7 without a click, and the next run used it.  The usual Qt cure: the focus policy
``StrongFocus`` (a click or Tab gives focus, the wheel does not) and an event filter that hands
an unfocused widget's wheel event on to its parent (the scroll area then scrolls).

The filter is installed on each such widget (``guard(root)`` when a window, form or panel has
made its widgets), not on the application: a filter written in Python on the application is
called for every event of every widget — ~44,000 calls and 0.6 s of the GUI thread in one
bench_gui --session, each one taking the interpreter lock from the worker thread.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QComboBox, QWidget

_GUARDED = (QAbstractSpinBox, QComboBox)


class WheelGuard(QObject):
    def eventFilter(self, obj, event) -> bool:  # noqa: N802  (Qt's name)
        if event.type() == QEvent.Type.Wheel and isinstance(obj, _GUARDED) and not obj.hasFocus():
            event.ignore()          # not for this widget: Qt offers it to the parent (the dock scrolls)
            return True
        return False


def _the_guard() -> WheelGuard:
    """The application's one guard object (made on first call)."""
    app = QApplication.instance()
    assert isinstance(app, QApplication), "the wheel guard needs a running QApplication"
    guard = app.findChild(WheelGuard, "invgui-wheel-guard")
    if guard is None:
        guard = WheelGuard(app)
        guard.setObjectName("invgui-wheel-guard")
    return guard


def guard(root: QWidget) -> None:
    """Guard every spin box and combo box under ``root`` (and ``root`` itself); again is harmless."""
    the = _the_guard()
    found: list[QWidget] = [root] if isinstance(root, _GUARDED) else []
    for kind in _GUARDED:
        found += root.findChildren(kind)
    for w in found:
        # QObject's own property calls: pyqtgraph's SpinBox takes setProperty for its options.
        if not QObject.property(w, "invgui_wheel_guarded"):
            QObject.setProperty(w, "invgui_wheel_guarded", True)
            w.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            w.installEventFilter(the)
