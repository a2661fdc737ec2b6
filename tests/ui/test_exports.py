"""Exports from the window, and the dialogs' folders.

Each test drives the real window through the real worker thread, offscreen."""

import json

import numpy as np
import pytest
from ui_helpers import run_and_wait

pytestmark = pytest.mark.gui


def test_export_to_unwritable_place_is_an_error(qtbot, window, tmp_path):
    run_and_wait(qtbot, window, 2)
    assert window.exports.export_to(tmp_path / "missing-folder" / "r.png") is None
    assert "does not exist" in window.errors[-1]
    assert not (tmp_path / "missing-folder").exists()


def test_exports_png_tiff_curves_metrics_with_sidecars(qtbot, window, tmp_path):
    import cv2

    window.form.set_value("iters", 4)
    with qtbot.waitSignal(window.runEnded, timeout=120_000):
        window.run()
    png, js = window.exports.export_to(tmp_path / "r.tif")
    assert png.suffix == ".png" and png.exists()
    tif = cv2.imread(str(tmp_path / "r.tif"), cv2.IMREAD_UNCHANGED)
    assert tif.dtype == np.uint16 and tif.shape == (96, 96, 3)
    back = tif[..., ::-1].astype(np.float32) / 65535
    assert np.abs(back - window.result.images[0]).max() < 1e-4          # 16-bit keeps the precision
    rec = json.loads(js.read_text())
    assert len(rec["weights_sha256"]) == 64 and rec["params"]["seed"] == 0 and "torch" in rec["versions"]
    lines = (tmp_path / "r-losses.csv").read_text().splitlines()
    assert lines[0] == "iteration,total,feature,alpha,tv" and len(lines) == 5
    assert window.exports.export_curves(tmp_path / "curves.svg").exists() and (tmp_path / "curves.csv").exists()
    side = json.loads((tmp_path / "curves.json").read_text())
    assert side["runs"][0]["record"]["params"]["seed"] == 0 and len(side["runs"][0]["record"]["weights_sha256"]) == 64
    assert window.exports.export_curves(tmp_path / "curves.png").exists()
    out = window.exports.export_metrics(tmp_path / "m.csv")
    rows = out.read_text().splitlines()
    assert rows[0].startswith("name,state,method,model,layer") and "representation_error" in rows[0]
    assert len(rows) == 2 and json.loads((tmp_path / "m.json").read_text())["runs"][0]["method"] == "optimize"
    n = len(window.errors)
    assert window.exports.export_metrics(tmp_path / "nope" / "m.csv") is None and "Cannot export" in window.errors[n]
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []                                              # atomic writes leave nothing behind


def test_dialogs_open_in_invgui_folders_and_remember_the_last_one(qtbot, window, tmp_path, monkeypatch):
    """Issue 27 §7: trained decoders and the save dialogs defaulted to the process's working
    directory (a source checkout); they start in a folder of invgui's and remember, per kind."""
    import os

    from PySide6.QtWidgets import QFileDialog

    data = tmp_path / "invgui-data"
    window.open_train_dialog()
    dlg = window.train_dialog
    assert os.path.dirname(dlg.out.text()) == str(data / "decoders") and (data / "decoders").is_dir()
    dlg.close()
    run_and_wait(qtbot, window, 2)
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    offered = []
    elsewhere = tmp_path / "paper-figures"
    elsewhere.mkdir()

    def save(parent, title, start, filters):
        offered.append(start)
        return str(elsewhere / os.path.basename(start)), filters.split(";;")[0]

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(save))
    window.exports.export_dialog()
    assert os.path.dirname(offered[0]) == str(data / "exports")
    assert any(p.suffix == ".png" for p in elsewhere.iterdir())               # written where chosen
    window.exports.export_metrics_dialog()                                     # the same kind: remembered
    assert os.path.dirname(offered[1]) == str(elsewhere)
    window.files.save_session_as()                                            # another kind: its own folder
    assert os.path.dirname(offered[2]) == str(data / "sessions")
