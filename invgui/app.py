"""Application start-up: ``main()`` is the ``invgui`` command; ``run_gui`` opens the window."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    from .cli import main as cli_main

    return cli_main(argv)


def run_gui(image: str | None = None, screenshot: str | None = None, iters: int | None = None,
            model: str | None = None, preset: str | None = None, method: str | None = None,
            probe: str | None = None, other: str | None = None) -> int:
    """Open the main window.  With ``screenshot``: run (``iters`` iterations, or the decoder with
    ``method="decoder"``, then the ``probe`` if given) through the real worker, save a PNG of the
    whole window and exit (0 on success)."""
    import torch

    # Leave one core to the event loop (intra-op threads are process-wide).
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    import pyqtgraph as pg
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    pg.setConfigOptions(antialias=True, useOpenGL=False)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("invgui")
    app.setOrganizationName("invgui")
    from .ui.main_window import MainWindow

    win = MainWindow(image=image)
    if model and not win.set_model(model):
        print(f"invgui: error: {'; '.join(win.errors)}", file=sys.stderr)
        return 2
    if preset:
        win.form.preset_box.setCurrentText(preset)
    if iters is not None:
        win.form.set_value("iters", iters)
    if method:
        win.set_method(method)
    if probe:
        win.decoder_panel.probe_form.set_value("probe", probe)
        if other:
            win.decoder_panel.probe_form.set_value("other", other)
    win.show()
    if not screenshot:
        return app.exec()

    outcome = {"code": 1}

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

    steps = [win.run_probe] if probe else []

    def next_step() -> None:
        if steps and not win.errors:
            QTimer.singleShot(100, steps.pop(0))
        else:                  # wait a moment so the final preview and curves draw
            QTimer.singleShot(400, save)

    win.runEnded.connect(next_step)
    QTimer.singleShot(200, win.run)
    app.exec()
    return outcome["code"]
