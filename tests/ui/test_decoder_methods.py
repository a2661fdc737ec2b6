"""The decoder, hybrid and probe methods in the window, and training a decoder.

Each test drives the real window through the real worker thread, offscreen."""

import json

import pytest
from PySide6.QtCore import Qt
from ui_helpers import make_window, wait_run

pytestmark = pytest.mark.gui


def test_decoder_method_reconstructs_and_exports(qtbot, window, tiny_hog_decoder, tmp_path):
    window.set_model("hogb")
    window.set_method("decoder")
    assert window.method_stack.currentIndex() == 1
    n = len(window.errors)
    assert window.run() is False and "No decoder" in window.errors[n]          # none for hogb: a dialog
    window.set_model("hog")
    window.decoder_panel.add_file(str(tiny_hog_decoder))
    assert window.decoder_panel.current() == str(tiny_hog_decoder)
    assert "two-stream decoder" in window.decoder_panel.info.text()
    wait_run(qtbot, window, lambda: qtbot.mouseClick(window.run_button, Qt.MouseButton.LeftButton) or True)
    res = window.result
    assert res.record["method"] == "decoder" and res.images.shape == (1, 32, 32, 3)
    assert window.recon_pane.image.shape == (32, 32, 3) and "forward pass" in window.metrics_label.text()
    png, js = window.exports.export_to(tmp_path / "dec.png")
    assert json.loads(js.read_text())["method"] == "decoder" and (tmp_path / "dec-features.png").exists()
    # Another representation does not list this decoder.
    window.set_model("hogb")
    assert window.decoder_panel.current() is None


def test_the_decoder_box_lists_every_shipped_decoder_pixel_loss_first(qtbot, window, tmp_path, monkeypatch):
    from invgui.core.methods import decoder as D
    from invgui.core.methods.decoder import checkpoint as C

    loaded = D.load_checkpoint(D.shipped_decoders()["hog"])
    meta = {k: v for k, v in loaded.meta.items() if k != "file"}
    tp = {**meta["training"]["params"], "feature_weight": 0.1, "adversarial_weight": 0.001}
    (tmp_path / "decoders").mkdir()
    D.save_checkpoint(tmp_path / "decoders" / "hog-adversarial.pt", loaded.net,
                      {**meta, "training": {**meta["training"], "params": tp}}, half=True)
    said = "160 real photos (photos/, every 5th of 200 held out)"       # what train_default_decoders records
    D.save_checkpoint(tmp_path / "decoders" / "hog.pt", loaded.net,
                      {**meta, "training": {**meta["training"], "dataset": said}}, half=True)
    monkeypatch.setattr(C, "resource", lambda *parts: tmp_path.joinpath(*parts))
    window.set_model("hog")
    window.set_method("decoder")
    box = window.decoder_panel.box
    items = [box.itemText(i) for i in range(box.count())]
    assert items[:2] == ["shipped: hog.pt (pixel loss)", "shipped: hog-adversarial.pt (pixel+feature+adversarial loss)"]
    assert window.decoder_panel.current() == str(tmp_path / "decoders" / "hog.pt")          # the default
    card = window.decoder_panel.info.text()         # what it learned from, how long, the error's images
    assert f"on {said} (pixel loss, " in card and " min)" in card
    held = meta["training"]["held_out_images"]
    assert f"held-out normalised error {meta['held_out_normalised_error']:.3f} on {held} images" in card
    box.setCurrentIndex(1)
    box.activated.emit(1)                                  # as a click on the item does
    assert "pixel+feature+adversarial loss" in window.decoder_panel.info.text()
    wait_run(qtbot, window, lambda: qtbot.mouseClick(window.run_button, Qt.MouseButton.LeftButton) or True)
    assert window.result.record["decoder"] == str(tmp_path / "decoders" / "hog-adversarial.pt")


def test_hybrid_method_runs_from_the_decoder_output_in_the_window(qtbot, window, tiny_hog_decoder, tmp_path):
    window.set_model("hogb")
    window.set_method("hybrid")
    assert window.method_stack.currentIndex() == 0                    # the optimisation parameters
    assert "No decoder" in window.hybrid_label.text() and window.hybrid_label.isVisibleTo(window)
    n = len(window.errors)
    assert window.run() is False and "No decoder" in window.errors[n]
    window.set_model("hog")
    window.decoder_panel.add_file(str(tiny_hog_decoder))
    assert "hog-tiny.pt" in window.hybrid_label.text()
    window.form.set_value("iters", 5)
    window.form.set_value("restarts", 2)
    wait_run(qtbot, window, lambda: qtbot.mouseClick(window.run_button, Qt.MouseButton.LeftButton) or True)
    res = window.result
    assert res.record["method"] == "hybrid" and res.start is not None and len(res.images) == 2
    assert "hybrid" in window.metrics_label.text() and "decoder stage" in window.metrics_label.text()
    assert window.restarts_pane.isVisibleTo(window) and "decoder's reconstruction" in window.restarts_pane.title_text
    run = window.shown_run
    assert run.method == "hybrid" and "hybrid" in run.label() and run.decoder == str(tiny_hog_decoder)
    png, js = window.exports.export_to(tmp_path / "hyb.png")
    assert json.loads(js.read_text())["start_image"].endswith("hyb-start.png") and (tmp_path / "hyb-start.png").exists()
    # Back into the window: the method, the parameters and the decoder come back.
    window.set_method("optimize")
    window.form.set_value("iters", 7)
    assert window.run_actions.duplicate(run.id)
    assert window.method() == "hybrid" and window.form.values().iters == 5
    assert window.decoder_panel.current() == str(tiny_hog_decoder)


def test_probe_from_the_panel_shows_and_exports_a_strip(qtbot, window, tiny_hog_decoder, tmp_path):
    window.set_model("hog")
    window.set_method("decoder")
    window.decoder_panel.add_file(str(tiny_hog_decoder))
    form = window.decoder_panel.probe_form
    form.set_value("probe", "interpolate")
    form.set_value("other", "sample:coffee")
    form.set_value("steps", 3)
    wait_run(qtbot, window, lambda: qtbot.mouseClick(window.decoder_panel.probe_button,
                                                     Qt.MouseButton.LeftButton) or True)
    assert window.probe_result.record["labels"] == ["t = 0.00", "t = 0.50", "t = 1.00"]
    assert window.probe_pane.isVisible() and window.probe_pane.image.shape[1] > 3 * 32
    # Issue 27 §7: drawn in a small pane the strip was too small to read; it takes the large place.
    assert window.view.grid.top.indexOf(window.probe_pane) == 0
    qtbot.wait(50)
    assert window.probe_pane.width() >= window.recon_pane.width() - 2
    png, js = window.exports.export_probe_to(tmp_path / "strip.png")
    assert png.exists() and json.loads(js.read_text())["probe"] == "interpolate"
    # A probe that needs statistics explains what is missing.
    form.set_value("probe", "random-gaussian")
    wait_run(qtbot, window, window.probe)
    assert "statistics" in window.errors[-1]


def test_lbp_inverts_through_a_decoder_in_the_window(qtbot, window, photos, tmp_path):
    from invgui.core import representations as R
    from invgui.core.methods import decoder as D

    ckpt = tmp_path / "lbp.pt"
    for _ in D.train(R.get("lbp"), None, photos / "train", ckpt,
                     D.TrainParams(epochs=1, batch=4, size=32, crops_per_image=1, width=0.05)):
        pass
    window.set_model("lbp")
    assert window.nondiff_label.isVisible()
    window.set_method("decoder")
    assert not window.nondiff_label.isVisible()              # the decoder method is the right one here
    window.decoder_panel.add_file(str(ckpt))
    wait_run(qtbot, window, window.run)
    assert window.result.record["representation"] == "lbp" and window.result.images.shape == (1, 32, 32, 3)


def test_train_dialog_trains_and_offers_the_decoder(qtbot, window, photos, tmp_path):
    window.set_model("hog")
    dlg = window.open_train_dialog()
    dlg.data.setText(str(photos / "train"))
    dlg.out.setText(str(tmp_path / "trained.pt"))
    for name, value in (("epochs", 2), ("batch", 4), ("size", 32), ("crops_per_image", 2), ("width", 0.05),
                        ("preview_every", 1), ("adversarial_weight", 0.1)):
        dlg.form.set_value(name, value)
    with qtbot.waitSignal(dlg.trained, timeout=120_000):
        qtbot.mouseClick(dlg.start_button, Qt.MouseButton.LeftButton)
        assert dlg.running()
    qtbot.waitUntil(lambda: not dlg.running(), timeout=30_000)
    assert (tmp_path / "trained.pt").exists() and dlg.outcome.record["epochs"] == 2
    assert len(dlg.history["train"]) == dlg.outcome.metrics["steps"] and len(dlg.history["held_out"]) == 2
    assert "train" in dlg.plot.curves and "held_out" in dlg.plot.curves
    # The loss's terms, each a curve: the pixel term, the decoder's and the critic's adversarial ones.
    assert {"pixel", "adversarial", "discriminator"} <= set(dlg.plot.curves)
    assert dlg.plot.getAxis("left").labelText.startswith("loss")
    from invgui.core.methods import decoder as D

    assert D.load_checkpoint(tmp_path / "trained.pt").discriminator is not None
    assert dlg.preview.image is not None
    window.set_method("decoder")
    assert window.decoder_panel.current() == str(tmp_path / "trained.pt")
    # Fine-tune the decoder just trained ("Start from"): a new run from its weights.
    dlg.init.setText(str(tmp_path / "trained.pt"))
    dlg.out.setText(str(tmp_path / "tuned.pt"))
    dlg.form.set_value("epochs", 1)
    with qtbot.waitSignal(dlg.trained, timeout=120_000):
        assert dlg.start()
    qtbot.waitUntil(lambda: not dlg.running(), timeout=30_000)
    assert dlg.outcome.record["epochs"] == 1
    assert dlg.outcome.record["training"]["init"] == str(tmp_path / "trained.pt")
    # Bad input: no folder, or no decoder to start from → a dialog, nothing starts.
    dlg.init.setText(str(tmp_path / "nothing.pt"))
    assert dlg.start() is False and "No decoder to start from" in dlg.errors[-1]
    dlg.init.setText("")
    dlg.data.setText(str(tmp_path / "missing"))
    assert dlg.start() is False and "No training images" in dlg.errors[-1]


def test_closing_the_window_mid_training_ends_both_threads(qtbot, photos, tmp_path):
    w = make_window(qtbot)
    w.set_model("hog")
    dlg = w.open_train_dialog()
    dlg.data.setText(str(photos / "train"))
    dlg.out.setText(str(tmp_path / "t.pt"))
    for name, value in (("epochs", 1000), ("batch", 4), ("size", 32), ("width", 0.05)):
        dlg.form.set_value(name, value)
    assert dlg.start()
    qtbot.waitUntil(lambda: len(dlg.history["train"]) >= 2, timeout=60_000)
    w.close()
    assert not dlg.worker.qthread.isRunning() and not w.controller.worker.qthread.isRunning()
