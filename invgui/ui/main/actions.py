"""Every menu entry and toolbar button of the main window, declared once in ``TABLE``.

An entry's slot is a callable of the window (``lambda w: w.exports.export_dialog()``); ``attr``
names the QAction (or submenu) in the window's typed map :class:`Actions` (``window.acts.run``:
tests and ``_update_buttons`` use them); ``toolbar`` puts it on the main toolbar too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu

from ...core.images import SAMPLES
from ..widgets import theme

Key = QKeySequence.StandardKey


@dataclass(frozen=True)
class Act:
    menu: str
    text: str
    slot: Callable
    attr: str | None = None
    icon: str | None = None
    shortcut: object = None
    toolbar: bool = False
    checkable: bool = False


@dataclass(frozen=True)
class Sub:
    """A submenu the window fills (``attr`` keeps it), or the samples (``fill="samples"``)."""

    menu: str
    text: str
    attr: str | None = None
    fill: str | None = None


SEP = "-"
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp);;All files (*)"


def open_image_dialog(window) -> None:
    from PySide6.QtWidgets import QFileDialog

    path, _ = QFileDialog.getOpenFileName(window, "Open image", "", IMAGE_FILTER)
    if path:
        window.open_image(path)


def set_framing(window, fit: bool) -> None:
    """File › Fit whole images: non-square images are padded to a square instead of cropped."""
    window.state.framing = "fit" if fit else "crop"       # the panes and the menu item follow the state
    window.settings.setValue("framing", window.state.framing)


def _compare(window):
    """The Compare window, shown as it is (a new one on the default runs)."""
    view = window.compare_view
    if view is None:
        return window.open_compare()
    view.show()
    view.raise_()
    return view


def open_results_dialog(window) -> None:
    """File › Open evaluation results: a results folder of `invgui evaluate` in the Compare window
    (the runs it compares are left as they are)."""
    _compare(window).open_results_dialog()


def export_evaluation_dialog(window) -> None:
    """File › Export evaluation figures: those of the results folder open in Compare (one is asked
    for when none is)."""
    view = window.compare_view
    panel = view.current_evaluation() if view is not None else None
    if panel is None:
        view = _compare(window)
        view.open_results_dialog()
        panel = view.current_evaluation()
    if panel is not None:
        view.tabs.setCurrentWidget(panel)
        panel.export_dialog()


TABLE: list = [
    Act("&File", "&Open image…", open_image_dialog, "open", "open", Key.Open, toolbar=True),
    Sub("&File", "Open &sample", fill="samples"),
    Act("&File", "&Export reconstruction…", lambda w: w.exports.export_dialog(), "export", "export", "Ctrl+E",
        toolbar=True),   # toolbar order: as in this table
    Act("&File", "Export probe &strip…", lambda w: w.exports.export_probe_dialog(), "export_probe"),
    Act("&File", "Export loss &curves (PNG/SVG + CSV)…", lambda w: w.exports.export_curves_dialog()),
    Act("&File", "Export &metrics of the runs (CSV)…", lambda w: w.exports.export_metrics_dialog()),
    Act("&File", "Export evaluation fi&gures (PNG/SVG, CSV, LaTeX)…", export_evaluation_dialog,
        "export_evaluation"),
    ("&File", SEP),
    Sub("&File", "Recent &images", "recent_images"),
    Act("&File", "&Fit whole images (pad to a square, no crop)",
        lambda w: set_framing(w, w.acts.fit.isChecked()), "fit", checkable=True),
    ("&File", SEP),
    Act("&File", "Open &session…", lambda w: w.files.open_session_dialog(), shortcut="Ctrl+Shift+O"),
    Act("&File", "&Save session", lambda w: w.files.save_session_now(), shortcut=Key.Save),
    Act("&File", "Save session &as…", lambda w: w.files.save_session_as(), shortcut="Ctrl+Shift+S"),
    Act("&File", "Open evaluation res&ults…", open_results_dialog, "open_results"),
    Sub("&File", "Recent s&essions", "recent_sessions"),
    Sub("&File", "Autosaves of other &windows", "other_autosaves"),
    ("&File", SEP),
    Act("&File", "&Quit", lambda w: w.close(), shortcut=Key.Quit),
    Act("&Run", "&Run", lambda w: w.run(), "run", "run", "Ctrl+R", toolbar=True),
    Act("&Run", "&Pause / resume", lambda w: w.pause(not w.controller.is_paused), "pause", "pause", "Ctrl+P",
        toolbar=True),
    Act("&Run", "&Stop", lambda w: w.stop(), "stop", "stop", "Ctrl+.", toolbar=True),
    Act("&Run", "&Next layer", lambda w: w.step_layer(1), "next_layer", shortcut="Ctrl+]"),
    Act("&Run", "Pre&vious layer", lambda w: w.step_layer(-1), "prev_layer", shortcut="Ctrl+["),
    ("&Run", SEP),
    Act("&Run", "&Train a decoder…", lambda w: w.open_train_dialog(), "train"),
    Act("&Run", "&Compare selected runs…", lambda w: w.open_compare(), "compare", "compare", "Ctrl+Shift+C",
        toolbar=True),
    *(Act("&View", f"{m.capitalize()} theme", lambda w, m=m: w.set_theme(m)) for m in theme.MODES),
    ("&View", SEP),
    Act("&View", "&Reset the pane layout", lambda w: w.view.grid.reset()),
    Act("&Help", "&Quick start and shortcuts", lambda w: quick_start(w), "quick_start", shortcut="F1"),
    Act("&Help", "&About invgui", lambda w: w.show_about()),
]


class Actions:
    """The window's actions and submenus that code refers to, by the names ``TABLE`` gives them —
    typed, so every use is checked (they were attributes set on the window by name)."""

    open: QAction
    export: QAction
    export_probe: QAction
    export_evaluation: QAction
    fit: QAction
    open_results: QAction
    run: QAction
    pause: QAction
    stop: QAction
    next_layer: QAction
    prev_layer: QAction
    train: QAction
    compare: QAction
    quick_start: QAction
    recent_images: QMenu
    recent_sessions: QMenu
    other_autosaves: QMenu
    theme: dict[str, QAction]              # light, dark, system
    docks: dict[str, QAction]              # each dock's show/hide action, by the dock's object name

    def __init__(self) -> None:
        self.theme, self.docks = {}, {}

    def check(self) -> Actions:
        """Every name declared above was made by ``TABLE`` (a renamed entry fails here, at start-up)."""
        missing = [name for name in type(self).__annotations__ if name not in vars(self)]
        if missing:
            raise RuntimeError(f"actions.TABLE makes no {', '.join(missing)}")
        return self


def _slot(window, slot: Callable) -> Callable[[], object]:
    return lambda *_: slot(window)


def build(window) -> Actions:
    """Menus, actions and the toolbar of ``window`` from ``TABLE``; the named ones, typed."""
    menus: dict[str, QMenu] = {}
    toolbar = []
    acts = Actions()
    for entry in TABLE:
        name = entry[0] if isinstance(entry, tuple) else entry.menu
        menu = menus.get(name) or menus.setdefault(name, window.menuBar().addMenu(name))
        if isinstance(entry, tuple):
            menu.addSeparator()
        elif isinstance(entry, Sub):
            sub = menu.addMenu(entry.text)
            if entry.fill == "samples":
                for sample in SAMPLES:
                    sub.addAction(sample, functools.partial(window.open_image, f"sample:{sample}"))
            if entry.attr:
                setattr(acts, entry.attr, sub)
        else:
            act = QAction(entry.text, window)
            if entry.icon:
                act.setIcon(theme.icon(entry.icon))
            if entry.shortcut is not None:
                act.setShortcut(QKeySequence(entry.shortcut))
            act.setCheckable(entry.checkable)
            act.triggered.connect(_slot(window, entry.slot))
            menu.addAction(act)
            if entry.attr:
                setattr(acts, entry.attr, act)
            if entry.toolbar:
                toolbar.append(act)
            if name == "&View" and entry.text.endswith(" theme"):
                act.setCheckable(True)
                acts.theme[entry.text.split()[0].lower()] = act
    tb = window.addToolBar("Main")
    tb.setObjectName("main_toolbar")
    for act in toolbar:
        tb.addAction(act)
    # The docks' own show/hide actions at the top of View (a closed dock came back only through
    # "Reset the pane layout", which also reset the panes).
    from PySide6.QtWidgets import QDockWidget

    view = menus["&View"]
    first = view.actions()[0] if view.actions() else None
    for dock in window.findChildren(QDockWidget):
        act = dock.toggleViewAction()
        act.setText(f"{dock.windowTitle()} panel")
        if first is not None:
            view.insertAction(first, act)
        else:
            view.addAction(act)
        acts.docks[dock.objectName()] = act
    if first is not None:
        view.insertSeparator(first)
    return acts.check()


QUICK_START = """<h3>Quick start</h3>
<ol>
<li><b>Open an image</b> (File › Open image, a sample, or drop a file on the window).</li>
<li><b>Pick a representation and a layer</b>: the Representation box and the layer tree on the left.</li>
<li><b>Pick a method</b> on the right — <i>optimisation</i> (gradient descent from noise, Mahendran &amp;
Vedaldi), <i>decoder</i> (one forward pass of a trained up-convolutional network, Dosovitskiy &amp; Brox), or
<i>hybrid</i> (the decoder's image refined by optimisation) — and a preset.</li>
<li><b>Run</b> (Ctrl+R): the reconstruction and the loss curves update live; Stop (Ctrl+.) keeps what it reached.</li>
<li>Every run goes to the <b>Runs</b> list; a run marked ⚠ ended without an error but failed quietly (its
line says why). Select several and <b>Compare</b> (Ctrl+Shift+C) to see them side by side, or sweep methods ×
layers there.</li>
<li><b>Export</b> (Ctrl+E) writes the reconstruction and a JSON record that reproduces it.</li>
</ol>
<p>Everything here is also a command: <code>invgui invert</code>, <code>invgui evaluate</code>, … (see the
pages in docs/: docs/cli.md).</p>"""


def quick_start(window):
    """Help › Quick start: the steps of a first reconstruction, and every shortcut of the menus."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox

    keys = []
    for menu_action in window.menuBar().actions():
        menu = menu_action.menu()
        for act in menu.actions() if menu is not None else []:
            if not act.shortcut().isEmpty():
                keys.append((act.shortcut().toString(QKeySequence.SequenceFormat.NativeText),
                             act.text().replace("&", "")))
    rows = "".join(f"<tr><td><b>{k}</b></td><td>&nbsp;{t}</td></tr>" for k, t in keys)
    box = QMessageBox(QMessageBox.Icon.Information, "Quick start — invgui",
                      QUICK_START + f"<h3>Shortcuts</h3><table>{rows}</table>", QMessageBox.StandardButton.Ok, window)
    box.setObjectName("quick_start")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def about_box(parent):
    """Help › About: what invgui is, and the versions of everything it runs on."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox

    from ...core.export import library_versions

    v = library_versions()
    text = (f"<h3>invgui {v.get('invgui', '')}</h3><p>See what an image representation keeps: invert CNN "
            "layers and hand-crafted features by optimisation (Mahendran &amp; Vedaldi, CVPR 2015 / IJCV "
            "2016) and with trained decoders (Dosovitskiy &amp; Brox, CVPR 2016).</p><p>"
            + "<br>".join(f"{k} {val}" for k, val in v.items() if k != "invgui") + "</p>")
    box = QMessageBox(QMessageBox.Icon.Information, "About invgui", text, QMessageBox.StandardButton.Ok, parent)
    box.setIconPixmap(theme.icon("invgui").pixmap(64, 64))
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
