"""Application start-up: ``run_gui`` opens the window (the ``invgui`` command is ``invgui.cli.main``)."""

from __future__ import annotations

import os
import sys


def run_gui(image: str | None = None, screenshot: str | None = None, iters: int | None = None,
            model: str | None = None, preset: str | None = None, method: str | None = None,
            probe: str | None = None, other: str | None = None, view: str = "main",
            layer: str | None = None, weights: str | None = None, random_weights: bool = False,
            rep_params: list[str] | None = None, window: str | None = None, channels: str | None = None,
            results: str | None = None) -> int:
    """Open the main window (on ``model`` at ``layer``, when given).  With ``screenshot``: run
    (``iters`` iterations, or the decoder with ``method="decoder"``, then the ``probe`` if given)
    through the real worker, save a PNG of the whole window and exit (0 on success).
    ``view="compare"`` screenshots the comparison view of a methods × layers sweep instead,
    ``view="train"`` the decoder training dialog after a short training on the bundled photos.
    ``results``: a results folder of ``invgui evaluate`` opened in the comparison view (with
    ``screenshot``: a PNG of that view)."""
    import os

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    if screenshot and sys.platform.startswith("linux") and not any(
            os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"    # a screenshot needs no screen (Qt aborts without one)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("invgui")
    app.setOrganizationName("invgui")
    splash = None if screenshot else _splash(app)     # something on screen while torch is imported
    # pyqtgraph before torch (measured: the window paints 0.5 s sooner; importing torch on a
    # thread meanwhile gained nothing, the imports share the interpreter).
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=True, useOpenGL=False)
    import torch

    # Leave one core to the event loop (intra-op threads are process-wide).
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    from .ui.main.window import MainWindow

    # Interactive start: the window first, the default model loads on a thread.  A screenshot run
    # loads it at once (it runs straight away).
    win = MainWindow(image=image, restore=not screenshot, defer_model=not (screenshot or model or layer),
                     model_later=bool(model))
    try:
        error = configure(win, model=model, layer=layer, preset=preset, iters=iters, method=method, probe=probe,
                          other=other, weights=weights, random_weights=random_weights, rep_params=rep_params,
                          window=window, channels=channels)
    except BaseException:
        # Whatever escapes the set-up (a timm name timm cannot build, a damaged checkpoint folder):
        # the window's worker thread is stopped first, or Qt aborts the process (SIGABRT) as it goes.
        win.close()
        raise
    if error:
        print(f"invgui: error: {error}", file=sys.stderr)
        win.close()
        return 2
    win.show()
    if splash is not None:       # not QSplashScreen.finish: it blocks up to 1 s waiting for the exposure
        QTimer.singleShot(0, splash.close)
    if os.environ.get("INVGUI_STARTUP_PROBE"):       # benchmarks/bench_startup.py: time to the first paint
        _exit_after_first_paint(app, win)
    if results:
        panel = win.open_compare([]).open_results(results)
        if panel is None:
            print(f"invgui: error: {win.errors[-1]}", file=sys.stderr)
            win.close()
            return 2
        if screenshot:
            return _screenshot_results(app, win, panel, screenshot)
    if not screenshot:
        return app.exec()

    outcome = {"code": 1}
    if view in ("compare", "train"):
        return _screenshot_view(app, win, view, screenshot, iters)

    def save() -> None:
        if win.result is None or win.errors:
            print(f"invgui: error: no result to screenshot ({'; '.join(win.errors) or 'run did not finish'})",
                  file=sys.stderr)
        elif win.grab().save(screenshot):
            print(f"wrote {screenshot}")
            outcome["code"] = 0
        else:
            print(f"invgui: error: cannot write {screenshot}", file=sys.stderr)
        win.close()
        app.quit()

    steps = [win.probe] if probe else []

    def save_when_settled() -> None:     # Φ0, feature picture, receptive fields: drawn before the shot
        QTimer.singleShot(400, save if win.background.idle() else save_when_settled)

    def next_step() -> None:
        if steps and not win.errors:
            QTimer.singleShot(100, steps.pop(0))
        else:                  # wait a moment so the final preview and curves draw
            save_when_settled()

    win.runEnded.connect(next_step)
    QTimer.singleShot(200, win.run)
    app.exec()
    return outcome["code"]


def _exit_after_first_paint(app, win) -> None:
    """Print the wall-clock time (``time.time()``) when the window first paints, then quit."""
    import time

    from PySide6.QtCore import QEvent, QObject, QTimer

    class Probe(QObject):
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Paint:
                print(f"first paint at {time.time():.3f}", flush=True)
                obj.removeEventFilter(self)
                QTimer.singleShot(0, win.close)          # stops the model loading, then the app ends
            return False

    win._startup_probe = Probe(win)
    win.installEventFilter(win._startup_probe)


def _splash(app):
    """A start-up card with the icon and name, painted before the heavy imports.

    A frameless label, not a ``QSplashScreen``: its ``show()`` blocks for a second (measured on
    offscreen and X11 alike: 1.01 s) before anything else can start."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QPainter, QPixmap
    from PySide6.QtWidgets import QLabel

    from .ui.widgets import theme

    pix = QPixmap(420, 160)
    pix.fill(QColor("#20242c"))
    p = QPainter(pix)
    theme.icon("invgui").paint(p, 24, 40, 80, 80)
    p.setPen(QColor("#e8e8e8"))
    font = p.font()
    font.setPointSize(20)
    p.setFont(font)
    p.drawText(124, 78, "invgui")
    font.setPointSize(10)
    p.setFont(font)
    p.drawText(124, 104, "what does a representation keep?  loading…")
    p.end()
    splash = QLabel()
    splash.setPixmap(pix)
    splash.setWindowFlags(Qt.WindowType.SplashScreen | Qt.WindowType.FramelessWindowHint
                          | Qt.WindowType.WindowStaysOnTopHint)
    splash.show()
    app.processEvents()
    return splash


def configure(win, *, model: str | None = None, layer: str | None = None, preset: str | None = None,
              iters: int | None = None, method: str | None = None, probe: str | None = None,
              other: str | None = None, weights: str | None = None, random_weights: bool = False,
              rep_params: list[str] | None = None, window: str | None = None,
              channels: str | None = None) -> str | None:
    """Apply ``invgui gui``'s start options to the window (the model as ``invert`` takes it: a
    registered name, torchvision:/timm:ARCH with ``weights``, random weights, a hand-crafted
    representation's parameters); the error, if one is refused."""
    if weights or random_weights or rep_params:
        from .core.representations import RepresentationError, parse_params

        if weights:
            win.state.weights[model or win.model_box.currentData()] = str(weights)
        try:
            params = parse_params(rep_params) or None
        except RepresentationError as e:
            return str(e)
        if not win.set_model(model or win.model_box.currentData(), params, random_weights=random_weights):
            return "; ".join(win.errors)
    elif model and not win.set_model(model):
        return "; ".join(win.errors)
    if layer:
        from .core.representations import RepresentationError

        try:
            win.set_layer(layer)
        except RepresentationError as e:
            return str(e)
    if preset:
        win.form.preset_box.setCurrentText(preset)
    if iters is not None:
        win.form.set_value("iters", iters)
    for name, value in (("channels", channels), ("window", window)):
        if value is not None:
            win.form.set_value(name, value)
    if method:
        win.state.method = method
    if probe:
        win.decoder_panel.probe_form.set_value("probe", probe)
        if other:
            win.decoder_panel.probe_form.set_value("other", other)
    return None


def _grab(widget, path: str, outcome: dict) -> None:
    if widget.grab().save(path):
        print(f"wrote {path}")
        outcome["code"] = 0
    else:
        print(f"invgui: error: cannot write {path}", file=sys.stderr)


def _screenshot_results(app, win, panel, path: str) -> int:
    """The comparison view on a results folder: the one-pass method's row (a decoder; else the
    first) of the deepest layer, and its second run beside the other methods' reconstructions."""
    from PySide6.QtCore import QTimer

    from .core.methods.base import DECODER_PAGE
    from .core.methods.registry import method

    outcome = {"code": 1}
    view = win.compare_view
    view.resize(1600, 950)
    pairs = panel.pairs()
    deepest = [i for i, (_, layer) in enumerate(pairs) if layer == pairs[-1][1]]
    pick = next((i for i in deepest if method(pairs[i][0]).page == DECODER_PAGE), deepest[0])

    def shoot() -> None:
        panel.summary_table.selectRow(pick)
        if panel.runs.rowCount() > 1:
            panel.runs_table.selectRow(1)
        def finish() -> None:
            _grab(view, path, outcome)
            win.close()
            app.quit()

        QTimer.singleShot(500, finish)

    QTimer.singleShot(300, shoot)
    app.exec()
    return outcome["code"]


def _screenshot_view(app, win, view: str, path: str, iters: int | None) -> int:
    """Screenshot the comparison view (after a sweep) or the training dialog (after training)."""
    import tempfile

    from PySide6.QtCore import QTimer

    outcome = {"code": 1}

    def finish(widget) -> None:
        if win.errors:
            print(f"invgui: error: {'; '.join(win.errors)}", file=sys.stderr)
        else:
            _grab(widget, path, outcome)
        win.close()
        app.quit()

    if view == "compare":
        win.form.set_value("iters", iters or 100)
        win.form.set_value("size", 128)
        win.decoder_panel.size_box.setValue(128)
        cv = win.open_compare([])
        cv.resize(1500, 800)

        def start() -> None:
            cv.sweep_layers.setText("blocks.1, blocks.3, blocks.5")
            runs = cv.queue_sweep()
            hog: list = []

            def check() -> None:
                if all(r.state in ("done", "stopped", "failed") for r in runs + hog) and not win.running() \
                        and not cv.distances_pending():
                    if not hog:
                        # Then HOG at 160 px, its shipped decoder at its own 128 px: one representation
                        # of one depth (a point in the depth plot) whose decoder cell is marked
                        # 128→160 px, beside the CNN's layers.
                        win.set_model("hog")
                        win.form.set_value("size", 160)
                        win.decoder_panel.size_box.setValue(0)
                        cv.sweep_layers.setText("")
                        hog.extend(cv.queue_sweep())
                        cv.set_runs([r.id for r in runs + hog])
                        QTimer.singleShot(200, check)
                        return
                    cv.refresh()
                    QTimer.singleShot(300, cv.fit)
                    QTimer.singleShot(700, lambda: finish(cv))
                else:
                    QTimer.singleShot(200, check)

            check()

        QTimer.singleShot(200, start)
    else:
        from .core.files import save_png
        from .core.images import SAMPLE_SET, load_image

        folder = tempfile.mkdtemp(prefix="invgui-train-shot-")
        for name in SAMPLE_SET[:8]:
            save_png(os.path.join(folder, f"{name}.png"), load_image(f"sample:{name}"))
        dlg = win.open_train_dialog()
        dlg.data.setText(folder)
        dlg.out.setText(os.path.join(folder, "decoder.pt"))
        for name, value in (("epochs", iters or 12), ("size", 64), ("width", 0.1), ("crops_per_image", 8),
                            ("batch", 16), ("preview_every", 5)):
            dlg.form.set_value(name, value)
        dlg.trained.connect(lambda _p: QTimer.singleShot(500, lambda: finish(dlg)))
        QTimer.singleShot(200, dlg.start)
    app.exec()
    return outcome["code"]
