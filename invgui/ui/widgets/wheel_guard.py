"""Spin boxes and combo boxes take the mouse wheel only when they have focus.

Scrolling the long Parameters dock passed over a spin box changed *Feature weight C* from 1 to
0.7 without a click, and the next run used it.  The usual Qt cure, for every such widget the
application makes (forms are rebuilt when the method changes, so widgets are met as they are
polished, not listed once): the focus policy ``StrongFocus`` (a click or Tab gives focus, the
wheel does not) and an event filter that hands an unfocused widget's wheel event on to its parent
(the scroll area then scrolls).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QComboBox

_GUARDED = (QAbstractSpinBox, QComboBox)


class WheelGuard(QObject):
    def eventFilter(self, obj, event) -> bool:  # noqa: N802  (Qt's name)
        kind = event.type()
        if kind == QEvent.Type.Polish and isinstance(obj, _GUARDED):
            obj.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        elif kind == QEvent.Type.Wheel and isinstance(obj, _GUARDED) and not obj.hasFocus():
            event.ignore()          # not for this widget: Qt offers it to the parent (the dock scrolls)
            return True
        return False


def install(app: QApplication | None = None) -> WheelGuard:
    """The application's one guard (installed on first call)."""
    found = app or QApplication.instance()
    assert isinstance(found, QApplication), "the wheel guard needs a running QApplication"
    app = found
    guard = app.findChild(WheelGuard, "invgui-wheel-guard")
    if guard is None:
        guard = WheelGuard(app)
        guard.setObjectName("invgui-wheel-guard")
        app.installEventFilter(guard)
    return guard
