"""What the window tests share: making a window, waiting for it, running."""

import json

import numpy as np
from PySide6.QtCore import QPointF, Qt

OUTPUT, STRIDE, RF = 4, 2, 3          # the layer tree's columns (ui.layer_tree.COLUMNS)


def make_window(qtbot):
    from invgui.ui.main.window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.form.set_value("size", 96)
    w.form.set_value("preview_every", 3)
    w.show()
    settle(qtbot, w)
    return w


def settle(qtbot, w):
    """Wait for what the window computes off the GUI thread (Φ0, feature picture, receptive field)."""
    qtbot.waitUntil(w.background.idle, timeout=30_000)


def run_and_wait(qtbot, w, iters):
    w.form.set_value("iters", iters)
    with qtbot.waitSignal(w.runEnded, timeout=120_000):
        qtbot.mouseClick(w.run_button, Qt.MouseButton.LeftButton)
        assert w.running()


def wait_run(qtbot, w, start):
    qtbot.waitUntil(lambda: not w.running(), timeout=30_000)      # the previous job's idle signal
    with qtbot.waitSignal(w.runEnded, timeout=120_000):
        assert start()


def finished_runs(n, layers):
    from invgui.core.events import Result
    from invgui.core.session import Run

    rng = np.random.default_rng(0)
    runs = []
    for i in range(n):
        res = Result(images=rng.random((1, 32, 32, 3), dtype=np.float32), target=None, history={"total": [1.0]},
                     metrics={"representation_error": 0.5, "seconds": 0.1},
                     record={"method": "optimize", "representation": "hog", "layer": layers[i % len(layers)],
                             "layer_shape": [31, 4, 4], "resolved": {"relative_depth": i / n}})
        runs.append(Run.of(method="optimize", model="hog", layer=layers[i % len(layers)], image="sample:chelsea",
                        params={"seed": i}, state="done", result=res))
    return runs


def zoom_and_check_shared(qtbot, view):
    """A wheel step on the first cell zooms it; every other cell in sight shows the same range."""
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QWheelEvent

    vb = view.views[0]
    before = vb.viewRange()
    centre = view.cell_grid.canvas.mapFromScene(vb.mapToScene(vb.boundingRect().center()))
    ev = QWheelEvent(QPointF(centre), QPointF(view.cell_grid.canvas.mapToGlobal(centre)), QPoint(0, 0),
                     QPoint(0, 120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                     Qt.ScrollPhase.NoScrollPhase, False)
    from PySide6.QtWidgets import QApplication

    QApplication.sendEvent(view.cell_grid.canvas.viewport(), ev)
    after = vb.viewRange()
    assert after[0][1] - after[0][0] < before[0][1] - before[0][0]           # zoomed in
    for other in view.views[1:]:
        assert np.allclose(other.viewRange(), after, atol=1e-6)


def orphan_lock(folder):
    import socket
    import subprocess
    import sys

    from invgui.core.autosave import LOCK

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (folder / LOCK).write_text(json.dumps({"pid": gone.pid, "host": socket.gethostname()}))


def fill(pane) -> float:
    """How much of its pane the drawn image fills along its limiting side (1 = edge to edge)."""
    vb = pane.view
    img = pane.item.mapRectToScene(pane.item.boundingRect())
    box = vb.sceneBoundingRect()
    return max(img.width() / box.width(), img.height() / box.height())
