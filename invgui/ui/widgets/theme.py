"""Light and dark themes (following the system by default) and the icons in resources/icons."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication

from ...core.resources import resource

ICONS = resource("icons")
MODES = ("system", "light", "dark")


def icon(name: str) -> QIcon:
    """An SVG icon from resources/icons (sharp at any DPI); an empty icon when it is missing."""
    path = ICONS / f"{name}.svg"
    return QIcon(str(path)) if path.is_file() else QIcon()


def system_is_dark(app: QApplication) -> bool:
    try:
        return app.styleHints().colorScheme() == Qt.ColorScheme.Dark
    except AttributeError:                      # Qt < 6.5: judge by the window colour
        return app.palette().color(QPalette.ColorRole.Window).lightness() < 128


def dark_palette() -> QPalette:
    p = QPalette()
    base, alt, text, accent = QColor(37, 40, 44), QColor(48, 52, 57), QColor(225, 228, 232), QColor(66, 133, 244)
    for role, colour in ((QPalette.ColorRole.Window, alt), (QPalette.ColorRole.WindowText, text),
                         (QPalette.ColorRole.Base, base), (QPalette.ColorRole.AlternateBase, alt),
                         (QPalette.ColorRole.ToolTipBase, base), (QPalette.ColorRole.ToolTipText, text),
                         (QPalette.ColorRole.Text, text), (QPalette.ColorRole.Button, alt),
                         (QPalette.ColorRole.ButtonText, text), (QPalette.ColorRole.Highlight, accent),
                         (QPalette.ColorRole.HighlightedText, QColor(255, 255, 255)),
                         (QPalette.ColorRole.Link, accent)):
        p.setColor(role, colour)
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor(128, 128, 128))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor(128, 128, 128))
    return p


def apply(app: QApplication, mode: str = "system") -> bool:
    """Apply ``mode``; returns True when the result is dark.  Uses the Fusion style so both palettes
    look the same on every platform."""
    dark = system_is_dark(app) if mode == "system" else mode == "dark"
    app.setStyle("Fusion")
    app.setPalette(dark_palette() if dark else app.style().standardPalette())
    return dark


def plot_background(dark: bool) -> str:
    return "#1e2124" if dark else "w"


def _app() -> QApplication:
    app = QApplication.instance()
    assert isinstance(app, QApplication), "themes need a running QApplication"
    return app


def set_window_theme(window, mode: str) -> bool:
    """Apply ``mode`` to the application and ``window``'s plot, tick its View › Theme entry and
    remember it; returns True when dark."""
    window.theme = mode if mode in MODES else "system"
    window.dark = apply(_app(), window.theme)
    window.plot.setBackground(plot_background(window.dark))
    for act_mode, act in window.acts.theme.items():
        act.setChecked(act_mode == window.theme)
    window.settings.setValue("theme", window.theme)
    return window.dark


def follow_system(window) -> None:
    """With the "system" theme, follow the desktop when it switches between light and dark."""
    hints = _app().styleHints()
    if hasattr(hints, "colorSchemeChanged"):
        hints.colorSchemeChanged.connect(lambda *_: window.theme == "system" and window.set_theme("system"))
