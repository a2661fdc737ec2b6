"""Drive the real main window through the real worker thread (offscreen)."""

import json

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

pytestmark = pytest.mark.gui
OUTPUT, STRIDE, RF = 4, 2, 3          # the layer tree's columns (ui.layer_tree.COLUMNS)


def make_window(qtbot):
    from invgui.ui.main_window import MainWindow

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


@pytest.fixture()
def window(qtbot):
    w = make_window(qtbot)
    yield w
    w.close()
    assert not w.controller.worker.thread.isRunning()


def run_and_wait(qtbot, w, iters):
    w.form.set_value("iters", iters)
    with qtbot.waitSignal(w.runEnded, timeout=120_000):
        qtbot.mouseClick(w.run_button, Qt.MouseButton.LeftButton)
        assert w.running()


def test_window_has_panes_tree_dock_and_plot(window):
    assert window.original_pane.image is not None and window.original_pane.image.shape == (96, 96, 3)
    assert window.layer_tree.current_layer() == "blocks.3"
    assert {"iters", "lr", "alpha", "beta", "alpha_weight", "tv_weight", "seed"} <= set(window.form.widgets)
    assert window.stop_button.isEnabled() is False


def test_run_updates_preview_and_curve_then_exports(qtbot, window, tmp_path):
    run_and_wait(qtbot, window, 9)
    res = window.result
    assert res is not None and not res.stopped
    assert window.recon_pane.image is not None and window.recon_pane.image.shape == (96, 96, 3)
    xs, ys = window.plot.curves["total"].getData()
    assert len(xs) == 9
    assert set(window.plot.curves) == {"total", "feature", "alpha", "tv"}
    assert "iteration" in window.progress.text() or "done" in window.progress.text()
    assert "representation error" in window.metrics_label.text()
    png, js = window.exports.export_to(tmp_path / "recon.png")
    assert png.exists()
    rec = json.loads(js.read_text())
    assert rec["params"]["iters"] == 9 and len(rec["losses"]["total"]) == 9
    assert rec["image"] == "sample:chelsea"


def test_stop_mid_run_keeps_a_result(qtbot, window):
    window.form.set_value("iters", 100000)
    qtbot.mouseClick(window.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.recon_pane.image is not None and len(window.history["total"]) >= 6,
                    timeout=60_000)
    with qtbot.waitSignal(window.runEnded, timeout=60_000):
        qtbot.mouseClick(window.stop_button, Qt.MouseButton.LeftButton)
    assert window.result.stopped
    assert len(window.result.history["total"]) < 100000
    qtbot.waitUntil(lambda: window.run_button.isEnabled(), timeout=10_000)


def test_close_mid_run_ends_the_thread(qtbot):
    w = make_window(qtbot)
    w.form.set_value("iters", 100000)
    w.run()
    qtbot.waitUntil(lambda: len(w.history["total"]) >= 3, timeout=60_000)
    w.close()
    assert not w.controller.worker.thread.isRunning()


def test_choose_layer_in_tree_and_run_it(qtbot, window):
    item = window.layer_tree._items["blocks.1"]
    window.layer_tree.setCurrentItem(item)
    assert window.layer == "blocks.1"
    run_and_wait(qtbot, window, 3)
    assert window.result.record["layer"] == "blocks.1"
    assert window.result.record["layer_shape"] == [24, 24, 24]


def test_bad_image_shows_error_and_keeps_current(window, tmp_path):
    before = window.image
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnope")
    assert window.open_image(str(bad)) is False
    assert window.image is before
    assert "broken.png" in window.errors[-1]


def test_drop_an_image_file(window, tmp_path):
    from PIL import Image

    p = tmp_path / "drop.png"
    Image.fromarray(np.full((40, 50, 3), 200, np.uint8)).save(p)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p))])
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                    Qt.KeyboardModifier.NoModifier)
    window.dropEvent(ev)
    assert window.image_source == str(p) and window.image.shape == (40, 50, 3)


def test_missing_weights_and_bad_params_are_dialogs(qtbot, window, no_hub):
    assert window.set_model("alexnet") is False
    assert "alexnet-owt-7be5be79.pth" in window.errors[-1]
    assert window.rep.name == "efficientnet_lite0"
    window.random_weights.setChecked(True)
    window.set_model("alexnet")
    assert window.layer_tree.rep_name != "efficientnet_lite0"      # not the old model's layers meanwhile
    settle(qtbot, window)                                         # the shapes at 96 px: from the thread
    assert window.rep.name == "alexnet" and window.layer_tree.current_layer() == "features.6"
    window.form.widgets["lr_milestones"].setText("0.5, x")
    assert window.run() is False
    assert "LR milestones" in window.errors[-1]


def test_export_to_unwritable_place_is_an_error(qtbot, window, tmp_path):
    run_and_wait(qtbot, window, 2)
    assert window.exports.export_to(tmp_path / "missing-folder" / "r.png") is None
    assert "does not exist" in window.errors[-1]
    assert not (tmp_path / "missing-folder").exists()


def test_preset_selector_fills_the_dock(window):
    window.form.preset_box.setCurrentText("mv2016")
    p = window.form.values()
    assert (p.optimizer, p.iters, p.stage2_iters, p.clamp) == ("rmsprop", 300, 50, 2.0)
    window.form.widgets["iters"].setValue(7)
    window.form.reset_button.click()
    assert window.form.values().iters == 300


def test_restarts_grid_and_deviation_map(qtbot, window):
    window.form.set_value("restarts", 3)
    run_and_wait(qtbot, window, 4)
    assert window.result.images.shape[0] == 3
    assert window.restarts_pane.isVisible()
    grid = window.restarts_pane.image
    assert grid.shape[0] > 96 * 2 and grid.shape[1] > 96 * 2      # 2×2 tiles: 3 restarts + deviation


def test_picking_a_window_on_the_feature_map(qtbot, window):
    pane = window.feature_pane
    assert pane.shape == (6, 6)                                    # blocks.3 at 96 px
    pane.roi.setPos((1, 2))
    pane.roi.setSize((3, 2))                                       # emits sigRegionChangeFinished
    assert window.form.values().window == "1,2,4,4"
    window.form.widgets["channels"].setText("5-9")
    settle(qtbot, window)
    assert "channel 5/80" in pane.title_text
    run_and_wait(qtbot, window, 3)
    assert window.result.record["params"]["window"] == "1,2,4,4"
    assert window.result.record["params"]["channels"] == "5-9"


def test_maximise_objective_from_the_dock(qtbot, window):
    window.form.widgets["objective"].setCurrentText("maximise")
    window.form.widgets["channels"].setText("3")
    window.form.widgets["feature_weight"].setValue(100.0)
    run_and_wait(qtbot, window, 6)
    m = window.result.metrics
    assert m["activation"] > m["start_activation"]
    # Issue 13 §5: the window starts on "auto" (no GPU here: the CPU), and the run says where it ran.
    assert window.device_box.currentText() == "auto" and window.device_box.itemText(1) == "cpu"
    assert window.result.record["device"] == "cpu" and window.result.record["device_name"].startswith("CPU")
    run = window.controller.queue.session.runs[-1]
    assert run.summary().endswith(" on cpu, 96 px")              # where, and at which size


def test_hog_from_the_model_chooser(qtbot, window):
    assert window.set_model("hog") is True
    assert window.layer_tree.current_layer() == "hog"
    settle(qtbot, window)
    assert window.feature_pane.shape == (12, 12)                  # 96 px / cell 8
    run_and_wait(qtbot, window, 3)
    img = window.result.images[0]
    assert np.allclose(img[..., 0], img[..., 2])                  # gray: HOG sees luminance only


def test_hand_crafted_params_in_the_dock_and_the_features_pane(qtbot, window, tmp_path):
    assert window.left.rep_form is None and not window.visual_pane.isVisible()     # a CNN: no own params
    assert window.set_model("hog")
    settle(qtbot, window)
    assert window.left.rep_form is not None and window.left.rep_form.isVisible()
    assert window.visual_pane.isVisible() and window.visual_pane.image is not None
    window.left.rep_form.widgets["cell"].setValue(4)                             # the real spin box
    assert window.rep.params.cell == 4
    assert window.layer_tree.topLevelItem(0).text(OUTPUT) == "31×24×24"        # 96 px / cell 4
    run_and_wait(qtbot, window, 3)
    assert window.result.record["representation_params"] == {"cell": 4, "orientations": 9}
    png, js = window.exports.export_to(tmp_path / "hog.png")
    assert (tmp_path / "hog-features.png").exists()
    assert json.loads(js.read_text())["features_picture"].endswith("hog-features.png")
    window.set_model("efficientnet_lite0")
    settle(qtbot, window)
    assert window.left.rep_form is None and not window.visual_pane.isVisible()


def test_non_differentiable_representation_says_use_a_decoder(qtbot, window):
    for name in ("lbp", "sift"):
        assert window.set_model(name)
        settle(qtbot, window)
        assert window.nondiff_label.isVisible() and "decoder" in window.nondiff_label.text()
        assert window.visual_pane.isVisible()
        n = len(window.errors)
        qtbot.mouseClick(window.run_button, Qt.MouseButton.LeftButton)
        assert not window.running()
        assert len(window.errors) == n + 1 and "decoder" in window.errors[-1]
    window.set_model("hogb")
    assert not window.nondiff_label.isVisible()


def wait_run(qtbot, w, start):
    qtbot.waitUntil(lambda: not w.running(), timeout=30_000)      # the previous job's idle signal
    with qtbot.waitSignal(w.runEnded, timeout=120_000):
        assert start()


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
    D.save_checkpoint(tmp_path / "decoders" / "hog.pt", loaded.net, meta, half=True)
    monkeypatch.setattr(C, "resource", lambda *parts: tmp_path.joinpath(*parts))
    window.set_model("hog")
    window.set_method("decoder")
    box = window.decoder_panel.box
    items = [box.itemText(i) for i in range(box.count())]
    assert items[:2] == ["shipped: hog.pt (pixel loss)", "shipped: hog-adversarial.pt (pixel+feature+adversarial loss)"]
    assert window.decoder_panel.current() == str(tmp_path / "decoders" / "hog.pt")          # the default
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
    assert (tmp_path / "trained.pt").exists() and dlg.result.record["epochs"] == 2
    assert len(dlg.history["train"]) == dlg.result.metrics["steps"] and len(dlg.history["held_out"]) == 2
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
    assert dlg.result.record["epochs"] == 1
    assert dlg.result.record["training"]["init"] == str(tmp_path / "trained.pt")
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
    assert not dlg.worker.thread.isRunning() and not w.controller.worker.thread.isRunning()


def test_runs_queue_and_list(qtbot, window):
    window.form.set_value("iters", 3)
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    assert window.run() and window.running()
    window.form.set_value("seed", 7)
    assert window.run()                                             # queued behind the first
    assert [r.state for r in window.session.runs] == ["running", "queued"]
    assert window.run_button.text() == "Queue (1 running, 1 queued)"
    qtbot.waitUntil(lambda: all(r.state == "done" for r in window.session.runs) and not window.running(),
                    timeout=120_000)
    first, second = window.session.runs
    assert window.run_list.count() == 2 and second.params.seed == 7
    assert first.result.record["params"]["seed"] == 0 and second.result.record["params"]["seed"] == 7
    window.run_list.select(first.id)                               # selecting shows that run
    assert window.shown_run is first and window.result is first.result
    assert "seed 0" in window.metrics_label.text()
    window.controller.rename(first.id, "baseline")
    assert window.run_list.item(0).text().startswith("✓ baseline")
    # Duplicate: load its settings, change one, run.
    window.form.set_value("iters", 5)
    assert window.run_actions.duplicate(first.id)
    assert window.form.values().iters == 3 and window.form.values().seed == 0
    window.form.set_value("lr", 0.002)
    with qtbot.waitSignal(window.runEnded, timeout=120_000):
        window.run()
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    assert window.session.runs[-1].params.lr == 0.002
    with qtbot.waitSignal(window.runEnded, timeout=120_000):
        window.run_actions.rerun(second.id)
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    again = window.session.runs[-1]
    assert again.params == second.params and np.allclose(again.result.images, second.result.images)
    assert window.run_actions.delete(again.id) and again not in window.session.runs and window.run_list.count() == 3


def test_session_save_open_and_crash_recovery(qtbot, window, tmp_path, invgui_home):
    window.form.set_value("iters", 3)
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    with qtbot.waitSignal(window.runEnded, timeout=120_000):
        window.run()
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    window.controller.rename(window.session.runs[0].id, "kept")
    path = window.files.save_session(tmp_path / "mine")
    assert path.suffix == ".invgui" and path.exists() and str(path) in window.files.recent("sessions")
    assert window.autosave_timer.interval() <= 60_000
    # Reopen in a fresh window (no autosave restore): the run, its images and curves are back.
    from invgui.ui.main_window import MainWindow

    other = MainWindow(restore=False)
    qtbot.addWidget(other)
    assert other.files.open_session(path)
    run = other.session.runs[0]
    assert run.name == "kept" and run.state == "done"
    assert np.allclose(run.result.images, window.session.runs[0].result.images, atol=2e-3)
    assert other.recon_pane.image is not None and "total" in other.plot.curves
    other.close()
    # A crash: the process dies after an autosave; the next window brings the runs back.  (The
    # window lives on in this process: its lock is made to name a process that is gone.)
    assert window.controller.autosave(wait=True) is not None and (invgui_home / "autosave" / "session.json").exists()
    _orphan_lock(invgui_home / "autosave")
    revived = MainWindow()
    qtbot.addWidget(revived)
    assert [r.name for r in revived.session.runs] == ["kept"]
    assert "restored 1 run" in revived.statusBar().currentMessage()
    revived.close()
    bad = tmp_path / "bad.invgui"
    bad.write_bytes(b"not a session")
    n = len(window.errors)
    assert window.files.open_session(bad) is False and "not an invgui session" in window.errors[n]


def test_a_failing_run_is_marked_and_the_queue_goes_on(qtbot, window, tmp_path):
    from invgui.core.session import Run

    window.form.set_value("iters", 2)
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    bad = Run.of(method="optimize", model="efficientnet_lite0", layer="blocks.3", image=str(tmp_path / "gone.png"),
              params=window.session.runs[0].params if window.session.runs else {"iters": 2, "size": 96})
    window.enqueue(bad)
    assert bad.state == "failed" and "gone.png" in bad.message
    with qtbot.waitSignal(window.runEnded, timeout=120_000):
        assert window.run()
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    assert window.session.runs[-1].state == "done"


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


def test_compare_view_grid_sweep_depth_plot_and_contact_sheet(qtbot, window, tiny_hog_decoder, tmp_path):
    import cv2
    from PIL import Image

    window.set_model("hog")
    window.form.set_value("iters", 3)
    window.decoder_panel.add_file(str(tiny_hog_decoder))
    window.decoder_panel.size.setValue(96)
    view = window.open_compare([])
    view.sweep_kind.setCurrentIndex(0)
    runs = view.queue_sweep()                                    # hog has one layer: optimisation + decoder
    assert [r.method for r in runs] == ["optimize", "decoder"]
    qtbot.waitUntil(lambda: all(r.state == "done" for r in runs) and not window.running(), timeout=120_000)
    view.refresh()
    g = view.grid
    assert g.rows == ["optimisation", "decoder"] and len(g.cells) == 2
    assert len(view.views) == 2
    _zoom_and_check_shared(qtbot, view)
    qtbot.waitUntil(lambda: not view.distances_pending(), timeout=60_000)      # N comes from a thread
    assert all(r.id in view.nre for r in runs)
    assert "optimisation · hog" in view.series and "decoder · hog" in view.series
    # A parameter sweep: one column per value.
    view.sweep_kind.setCurrentIndex(1)
    view.sweep_param.setCurrentText("tv_weight")
    view.sweep_values.setText("1, 5")
    more = view.queue_sweep()
    assert [r.params.tv_weight for r in more] == [1.0, 5.0]
    qtbot.waitUntil(lambda: all(r.state in ("done", "failed", "stopped") for r in more) and not window.running(),
                    timeout=120_000)
    assert [r.state for r in more] == ["done", "done"], [r.message for r in more] + window.errors
    view.set_runs([r.id for r in more])
    assert view.grid.cols == ["1.0", "5.0"] and view.grid.cols_by == "param:tv_weight"
    sheet = view.export_sheet(tmp_path / "sheet.png", tile=128)
    img = cv2.imread(str(sheet))
    assert img.shape[0] > 128 and img.shape[1] > 2 * 128
    assert Image.open(sheet).info["dpi"][0] == pytest.approx(300, abs=1)
    side = json.loads(sheet.with_suffix(".json").read_text())
    assert side["cols"] == ["1.0", "5.0"] and len(side["runs"]) == 2 and "versions" in side


def test_compare_view_sweeps_over_images_in_one_batch(qtbot, window, tiny_hog_decoder):
    """methods × images: the optimisation runs of the sweep are computed as one batch (each with
    its own result and record), the decoder row beside them; the grid has one column per image."""
    window.set_model("hog")
    window.form.set_value("iters", 3)
    window.form.set_value("restarts", 2)
    window.decoder_panel.add_file(str(tiny_hog_decoder))
    view = window.open_compare([])
    view.sweep_kind.setCurrentIndex(2)
    assert view.sweep_images.isEnabled() and not view.sweep_layers.isEnabled() and not view.sweep_values.isEnabled()
    view.sweep_images.setText("sample:coffee, sample:astronaut, sample:nope")
    assert view.queue_sweep() == [] and "sample:nope" in window.errors[-1]          # said before anything ran
    view.sweep_images.setText("sample:coffee, sample:astronaut")
    shown = []
    window.runEnded.connect(lambda: shown.append(window.shown_run))
    runs = view.queue_sweep()
    assert [(r.method, r.image) for r in runs] == [("optimize", "sample:coffee"), ("optimize", "sample:astronaut"),
                                                   ("decoder", "sample:coffee"), ("decoder", "sample:astronaut")]
    qtbot.waitUntil(lambda: all(r.state in ("done", "failed", "stopped") for r in runs) and not window.running(),
                    timeout=120_000)
    assert [r.state for r in runs] == ["done"] * 4, [r.message for r in runs] + window.errors
    opt = runs[:2]
    assert [r.result.record["batch_index"] for r in opt] == [0, 1] and opt[0].result.images.shape[0] == 2
    # The panes keep the batch's first run (the one whose live preview was shown), not the last result.
    assert shown == [opt[0], opt[0], runs[2], runs[3]]
    view.refresh()
    assert view.grid.cols_by == "image" and view.grid.cols == ["coffee", "astronaut"]
    assert view.grid.rows == ["optimisation", "decoder"]
    view.sweep_images.setText("")
    assert view.sweep_image_list(window.image_source)[0] == window.image_source
    # Selecting a run of another image shows that image as the original (the difference is against it).
    assert window.image_source not in ("sample:coffee", "sample:astronaut")
    window.show_run(opt[1])
    assert np.abs(window.original_pane.image / 255.0 - opt[1].result.target).max() <= 1 / 255
    assert "sample:astronaut" in window.original_pane.title_text
    window.show_run(opt[0])
    assert "sample:coffee" in window.original_pane.title_text


def _finished_runs(n, layers):
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


def _zoom_and_check_shared(qtbot, view):
    """A wheel step on the first cell zooms it; every other cell in sight shows the same range."""
    from PySide6.QtCore import QPoint, QPointF
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


def test_compare_view_scrolls_redraws_only_what_changed_and_merges_nothing(qtbot, window):
    """Issue 11 §4/§5: many columns scroll instead of shrinking to nothing, and only the cells in
    sight exist; a run finishing keeps every other cell; runs sharing a cell each get their own
    column, and it says so."""
    runs = _finished_runs(12, [f"l{i}" for i in range(12)])
    for r in runs:
        window.session.add(r)
    view = window.open_compare([r.id for r in runs[:11]])
    qtbot.waitUntil(lambda: view.isVisible())
    qtbot.wait(50)
    cg = view.cell_grid
    assert cg.canvas.width() > cg.viewport().width()                       # 11 columns: it scrolls
    shown = len(view.views)
    assert 2 <= shown < 11 and set(cg.cells) == {r.id for r in runs[:shown]}   # only the cells in sight
    first = {rid: cell.vb for rid, cell in cg.cells.items()}
    view.add_runs([runs[11].id])
    assert all(cg.cells[rid].vb is vb for rid, vb in first.items())         # cells in sight kept
    _zoom_and_check_shared(qtbot, view)
    zoomed = view.views[0].viewRange()
    cg.horizontalScrollBar().setValue(cg.horizontalScrollBar().maximum())   # scroll to the last column
    assert runs[11].id in cg.cells and runs[0].id not in cg.cells
    assert np.allclose(cg.cells[runs[11].id].vb.viewRange(), zoomed, atol=1e-6)   # the zoom follows
    twin = runs[0].copy()
    twin.state, twin.result = "done", runs[0].result
    window.session.add(twin)
    view.add_runs([twin.id])
    assert twin.id in {r.id for r in view.grid.cells.values()} and runs[0].id in {r.id for r in
                                                                                   view.grid.cells.values()}
    assert view.notes.isVisible() and "2 runs share" in view.notes.text()
    view.set_runs([runs[0].id])                                             # cells of runs no longer shown go
    assert set(cg.cells) == {runs[0].id}


def test_compare_view_of_300_runs_makes_only_the_cells_in_sight(qtbot, window):
    """Issue 11 §4: a grid of 300 runs (3 rows × 100 columns) costs what is in sight, not 300
    view boxes; a finished run added keeps the cells in sight and makes no more than it shows."""
    runs = _finished_runs(301, [f"l{i}" for i in range(100)])
    for i, r in enumerate(runs):
        r.request = r.request.replace(params=r.params.__class__(seed=i % 3))
    runs[300].request = runs[300].request.replace(layer="l_last")
    runs[300].result.record["layer"] = "l_last"      # the deepest: a column at the end
    for r in runs:
        window.session.add(r)
    view = window.open_compare([r.id for r in runs[:300]])
    view.rows_box.setCurrentText("param:seed")
    qtbot.waitUntil(lambda: view.isVisible())
    qtbot.wait(50)
    g, cg = view.grid, view.cell_grid
    assert (len(g.rows), len(g.cols)) == (3, 100) and len(g.cells) == 300
    assert 3 <= len(view.views) <= 3 * 12 and len(cg.cells) == len(view.views)
    before = {rid: cell.vb for rid, cell in cg.cells.items()}
    view.add_runs([runs[300].id])
    assert len(view.grid.cells) == 301 and {rid: c.vb for rid, c in cg.cells.items()} == before
    cg.verticalScrollBar().setValue(cg.verticalScrollBar().maximum())
    cg.horizontalScrollBar().setValue(cg.horizontalScrollBar().maximum() // 2)
    assert 3 <= len(view.views) <= 3 * 12 and len(cg._pool) + len(cg.cells) <= 3 * 12 + 64
    mid = {r.id for (ri, ci), r in view.grid.cells.items() if abs(ci - 50) <= 2}
    assert mid & set(cg.cells)                                              # the middle columns are shown
    shown_col = view.grid.cols[next(ci for (ri, ci), r in view.grid.cells.items() if r.id in cg.cells)]
    for lab in (cg._labels[("col", shown_col)], cg._labels[("row", view.grid.rows[-1])]):
        top = cg.canvas.scene().items(lab.sceneBoundingRect().center())[0]   # names stay in sight, on top
        assert lab.isVisible() and (top is lab or lab.isAncestorOf(top))


def test_panes_sit_in_a_grid_and_a_small_one_can_take_the_large_place(qtbot, window):
    """Issue 11 §5: at 1600×900 the reconstruction gets ≥ 300 px; a double-click swaps a small pane in."""
    window.resize(1600, 900)
    qtbot.wait(50)
    run_and_wait(qtbot, window, 2)
    qtbot.wait(50)
    vw = window.recon_pane.view_widget
    assert min(vw.width(), vw.height()) >= 300, (vw.width(), vw.height())
    grid = window.view.grid
    assert grid.top.indexOf(window.recon_pane) >= 0 and grid.bottom.indexOf(window.feature_pane) >= 0
    qtbot.mouseDClick(window.feature_pane.title, Qt.MouseButton.LeftButton)
    assert grid.top.indexOf(window.feature_pane) == 0 and grid.bottom.indexOf(window.original_pane) >= 0
    grid.reset()
    assert grid.top.indexOf(window.original_pane) == 0 and grid.bottom.indexOf(window.feature_pane) >= 0


def test_difference_pane_linked_zoom_pixel_readout_pause_and_layer_keys(qtbot, window):
    window.form.set_value("iters", 60)
    window.form.set_value("preview_every", 2)
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    assert window.run()
    qtbot.waitUntil(lambda: len(window.history.get("total", [])) >= 2, timeout=60_000)
    window.pause(True)
    assert window.controller.worker.worker.paused and window.pause_button.text() == "Resume"
    qtbot.wait(300)
    n = len(window.history["total"])
    qtbot.wait(700)
    assert len(window.history["total"]) <= n + 2                    # held (at most the burst in flight)
    with qtbot.waitSignal(window.runEnded, timeout=120_000):
        window.pause(False)
    assert not window.controller.worker.worker.paused and window.result.metrics["iterations"] == 60
    assert window.diff_pane.isVisible() and window.diff_pane.image.shape == (96, 96, 3)
    assert window.recon_pane.view.linkedView(0) is window.original_pane.view     # one zoom for both
    u = window.original_pane.scale                                   # view units per pixel
    text = window.original_pane.readout(10.5 * u, 20.2 * u)
    r, g, b = window.original_pane.image[20, 10] / 255
    assert text.endswith(f"x 10, y 20: R {r:.3f} G {g:.3f} B {b:.3f}")
    assert window.original_pane.readout(-1 * u, 5 * u) == ""
    # A reconstruction of another size (a run made at 48 px) covers the same view as the original:
    # the shared zoom does not crop one of them.
    window.recon_pane.set_image(np.zeros((48, 48, 3), np.uint8))
    rect, orig = window.recon_pane.item.mapRectToView(window.recon_pane.item.boundingRect()), \
        window.original_pane.item.mapRectToView(window.original_pane.item.boundingRect())
    assert rect.width() == pytest.approx(orig.width()) and rect.height() == pytest.approx(orig.height())
    names = [i.name for i in window.rep.layers(96) if i.fits]
    i = names.index("blocks.3")
    assert window.step_layer(1) == names[i + 1] and window.layer_tree.current_layer() == names[i + 1]
    window.set_layer("blocks.3")
    assert window.step_layer(-1) == names[i - 1]


def test_model_chooser_opens_a_torchscript_file_and_a_state_dict(qtbot, window, tmp_path):
    import torch
    import torch.nn as nn
    import torchvision

    seq = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, stride=2, padding=1)).eval()
    path = tmp_path / "seq.pt"
    torch.jit.script(seq).save(str(path))
    asked = []
    window.models.confirm_torchscript = lambda p: asked.append(p) or False       # the user says no: nothing loads
    assert window.models.open_model_file(str(path)) is False and asked == [str(path)]
    assert window.rep.name == "efficientnet_lite0"
    window.models.confirm_torchscript = lambda p: asked.append(p) or True        # the user trusts it
    assert window.models.open_model_file(str(path)) and len(asked) == 2
    assert window.rep.name == f"torchscript:{path}" and window.model_box.currentData() == window.rep.name
    settle(qtbot, window)                                       # the layer shapes come from a thread
    assert window.layer_tree.topLevelItemCount() == 3
    window.set_layer("1")
    window.form.set_value("iters", 3)
    with qtbot.waitSignal(window.runEnded, timeout=120_000):
        window.run()
    assert window.result.record["representation"] == f"torchscript:{path}" and window.result.record["layer"] == "1"
    sd = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), sd)
    assert window.models.open_model_file(str(sd), "resnet18")
    assert window.rep.name == "torchvision:resnet18" and window.state.weights_path == str(sd)
    window.set_model("efficientnet_lite0")                      # a state dict belongs to its own model
    assert window.state.weights_path is None and window.rep.weights_info.startswith("ImageNet")
    n = len(window.errors)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert window.models.open_model_file(str(tmp_path / "junk.pt")) is False and "TorchScript" in window.errors[n]
    assert len(asked) == 3
    # A safetensors file (issue 29) loads for its architecture, asking no trust; without one it is refused.
    from safetensors.torch import save_file

    save_file(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.safetensors")
    assert window.models.open_model_file(str(tmp_path / "r18.safetensors")) is False
    assert "weights only" in window.errors[-1] and len(asked) == 3
    assert window.models.open_model_file(str(tmp_path / "r18.safetensors"), "resnet18") and len(asked) == 3
    assert window.rep.name == "torchvision:resnet18"
    window.set_model("efficientnet_lite0")
    assert window.rep.name == "efficientnet_lite0"
    tips = [window.model_box.itemData(i, Qt.ItemDataRole.ToolTipRole) for i in range(window.model_box.count())]
    assert "weights: embedded" in tips


def test_layer_tree_filter_stride_and_receptive_field(qtbot, window):
    assert window.layer_tree.topLevelItem(0).text(STRIDE) != ""                   # stride column filled
    window.set_layer("blocks.1")
    settle(qtbot, window)
    item = window.layer_tree._items["blocks.1"]
    assert item.text(RF).isdigit() and int(item.text(RF)) > 3                  # receptive field of the choice
    window.layer_filter.setText("conv_head")
    visible = [n for n, it in window.layer_tree._items.items() if not it.isHidden()]
    assert visible == ["conv_head"]
    window.layer_filter.setText("")
    assert not window.layer_tree._items["blocks.3"].isHidden()


def test_receptive_fields_fill_every_row_in_view_and_follow_the_scrolling(qtbot, window):
    """Issue 27 §9: the RF column was filled only for layers the user had clicked.  Every row in
    view (with a spatial map) gets its receptive field in the background; scrolled-to rows too."""
    tree = window.layer_tree
    window.layer_tree.expandAll()
    spatial = {i.name for i in window.rep.layers(window._size()) if i.fits and i.shape and len(i.shape) == 3}

    def in_view() -> list[str]:          # what the user sees, measured here, not asked of the tree
        area = tree.viewport().rect()
        return [n for n, it in tree._items.items() if not it.isHidden() and tree.visualItemRect(it).intersects(area)]

    def all_filled() -> bool:
        rows = [n for n in in_view() if n in spatial]
        return len(rows) >= 8 and all(tree._items[n].text(RF).isdigit() for n in rows)

    qtbot.waitUntil(all_filled, timeout=20_000)
    assert tree.rows_in_view() == in_view()
    first = set(in_view())
    tree.scrollToBottom()
    assert set(in_view()) - first, "scrolling shows other rows"
    qtbot.waitUntil(all_filled, timeout=20_000)
    deep = [n for n in in_view() if n in spatial]
    assert max(int(tree._items[n].text(RF)) for n in deep) > 40          # deep layers see far
    assert "rows in view" in tree.headerItem().toolTip(RF)


def test_themes_about_box_and_icons(window):
    assert window.set_theme("dark") is True
    from PySide6.QtWidgets import QApplication

    assert QApplication.instance().palette().color(QApplication.instance().palette().ColorRole.Window).lightness() < 128
    assert window.theme_actions["dark"].isChecked() and window.settings.value("theme") == "dark"
    assert window.set_theme("light") is False
    window.theme_actions["dark"].trigger()                   # the menu, as a user picks it
    assert window.theme == "dark" and window.dark and window.theme_actions["dark"].isChecked()
    assert not window.theme_actions["light"].isChecked()
    window.theme_actions["light"].trigger()
    assert window.theme == "light" and not window.dark
    window.set_theme("system")
    box = window.show_about()
    assert "invgui" in box.text() and "torch" in box.text()
    box.close()
    for act in (window.run_action, window.stop_action, window.pause_action, window.open_action,
                window.export_action, window.compare_action):
        assert not act.icon().isNull()
    assert not window.windowIcon().isNull()


def test_a_bad_autosave_never_stops_the_window_and_is_kept_aside(qtbot, invgui_home):
    """Issue 10 §2: the window starts, the user is told where the unreadable autosave went."""
    from invgui.ui.main_window import MainWindow

    (invgui_home / "autosave").mkdir(parents=True)
    (invgui_home / "autosave" / "session.json").write_bytes(b'{"invgui_session": 1, "runs": [{"method": 3')
    w = MainWindow()
    qtbot.addWidget(w)
    assert w.rep is not None and w.session.runs == []
    assert any("could not be read" in e and "moved aside" in e for e in w.errors), w.errors
    kept = list((invgui_home / "autosave").glob("session-broken-*.json"))
    assert len(kept) == 1 and kept[0].read_bytes().startswith(b'{"invgui_session": 1, "runs"')
    w.close()


def test_opening_a_bad_session_leaves_the_current_one_untouched(qtbot, window, tmp_path):
    window.form.set_value("iters", 2)
    with qtbot.waitSignal(window.runEnded, timeout=120_000):
        window.run()
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    before = list(window.session.runs)
    good = window.files.save_session(tmp_path / "good")
    import zipfile

    bad = tmp_path / "bad.invgui"
    with zipfile.ZipFile(good) as z, zipfile.ZipFile(bad, "w") as out:
        out.writestr("session.json", z.read("session.json").replace(b'"method"', b'"methods"', 1))
        out.writestr("arrays.npz", z.read("arrays.npz"))
    n = len(window.errors)
    assert window.files.open_session(bad) is False
    assert "run 0" in window.errors[n] and "'method' is missing" in window.errors[n]
    assert window.session.runs == before and window.run_list.count() == len(before)
    assert window.result is not None


def _orphan_lock(folder):
    import socket
    import subprocess
    import sys

    from invgui.core.autosave import LOCK

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (folder / LOCK).write_text(json.dumps({"pid": gone.pid, "host": socket.gethostname()}))


def test_two_windows_autosave_apart_and_the_next_start_brings_both_back(qtbot, invgui_home):
    """Issue 26 §4: two windows of one INVGUI_HOME each keep their runs; the next start restores its
    own slot and offers the other window's, which then joins the session."""
    from invgui.core.autosave import autosave_path, slot_folder
    from invgui.core.events import Result
    from invgui.core.session import Run
    from invgui.ui.main_window import MainWindow

    def done(name):
        r = Run.of(method="optimize", model="hog", layer="hog", image="sample:coffee", params={"iters": 3}, name=name)
        r.result = Result(images=np.full((1, 16, 16, 3), 0.5, np.float32), target=np.zeros((16, 16, 3), np.float32),
                          history={"total": [1.0]},
                          record={"representation": "hog", "layer": "hog", "layer_shape": [31, 1, 1]},
                          metrics={"start_representation_error": 1.0, "representation_error": 0.5,
                                   "iterations": 3, "iterations_per_second": 2.0, "seconds": 1.5})
        r.state = "done"
        return r

    first = MainWindow()
    qtbot.addWidget(first)
    second = MainWindow()
    qtbot.addWidget(second)
    assert second.controller.autosave_store.folder == slot_folder(2)
    assert "another invgui window is autosaving" in second.controller.autosave_note
    assert second.autosave_label.text() == "autosave: autosave-2"           # in the status bar while open
    assert "another invgui window" in second.autosave_label.toolTip()
    first.controller.add_runs([done("first's")])
    second.controller.add_runs([done("second's")])
    first.controller.autosave(wait=True)
    second.controller.autosave(wait=True)
    first.close()
    second.close()
    names = lambda index: [r["name"] for r in json.loads(index.read_text())["runs"]]  # noqa: E731
    assert names(autosave_path()) == ["first's"] and names(slot_folder(2) / "session.json") == ["second's"]
    # The next start: its own slot back, the other one offered in the File menu.
    again = MainWindow()
    qtbot.addWidget(again)
    assert [r.name for r in again.session.runs] == ["first's"]
    offered = again.other_autosaves_menu.actions()
    assert again.other_autosaves_menu.isEnabled() and len(offered) == 1 and "1 run(s)" in offered[0].text()
    offered[0].trigger()
    assert [r.name for r in again.session.runs] == ["first's", "second's"]
    assert all(r.result is not None for r in again.session.runs) and again.run_list.count() == 2 and not again.errors
    assert names(autosave_path()) == ["first's", "second's"] and not slot_folder(2).exists()
    assert not again.other_autosaves_menu.isEnabled()
    again.close()


def test_a_scripted_window_never_writes_the_users_autosave(qtbot, invgui_home):
    """`invgui gui --screenshot` opens the window with restore=False: the user's autosave is untouched."""
    from invgui.core.session import Run
    from invgui.ui.main_window import MainWindow

    w = MainWindow(restore=False)
    qtbot.addWidget(w)
    w.enqueue(Run.of(method="optimize", model="hog", layer="hog", image=str(invgui_home / "missing.png")))
    assert w.controller.queue.changed and w.controller.autosave() is None
    w.files.add_recent("images", "/somewhere/photo.png")
    w.close()
    assert not (invgui_home / "autosave").exists() and not (invgui_home / "settings.ini").exists()


def test_no_stale_panes_status_or_selection_and_presets_follow_the_representation(qtbot, window):
    """Issue 11 §6: what a new user hit."""
    run_and_wait(qtbot, window, 3)
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    first = window.session.runs[-1]
    window.display.redraw()
    assert window.progress.text().startswith("done") and "left" not in window.progress.text()
    assert "preparing" not in window.statusBar().currentMessage()
    # Another layer: the reconstruction of blocks.3 is not left up as if it were blocks.1's.
    window.set_layer("blocks.1")
    assert window.result is None and window.recon_pane.image is None and "blocks.1" in window.recon_pane.title_text
    run_and_wait(qtbot, window, 3)
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    second = window.session.runs[-1]
    assert window.run_list.selected_ids() == [second.id] and first.id != second.id
    # A CNN preset does not silently carry over to HOG, nor HOG's to a CNN.
    window.form.preset_box.setCurrentText("mv2015")
    assert window.set_model("hog") and window.form.preset_box.currentText() == "mv2015-shallow"
    assert "mv2015 → mv2015-shallow" in window.statusBar().currentMessage()
    assert window.set_model("efficientnet_lite0") and window.form.preset_box.currentText() == "mv2015"


def test_a_sweep_tells_its_failures_once_and_picks_spatial_stages(qtbot, window, tmp_path):
    from invgui.core.compare import default_sweep_layers
    from invgui.core.session import Run

    view = window.open_compare([])
    assert view.default_layers() == default_sweep_layers(window.rep, window._size())
    assert view.default_layers() == ["conv_stem", "blocks.2", "blocks.4", "conv_head"]     # no classifier
    runs = [Run.of(method="optimize", model="hog", layer="hog", image=str(tmp_path / f"gone{i}.png"),
                params={"iters": 2}) for i in range(3)]
    n = len(window.errors)
    window.controller.submit_batch(runs)                   # through the controller, as the compare view's sweeps
    qtbot.waitUntil(lambda: len(window.errors) > n, timeout=10_000)
    qtbot.wait(100)
    assert len(window.errors) == n + 1 and window.errors[n].startswith("3 of 3 runs of the sweep failed")
    assert all(f"gone{i}.png" in window.errors[n] for i in range(3))


@pytest.fixture()
def held_model_load(monkeypatch):
    """The window's model-loading thread waits in ``R.get`` until the test sets the returned event."""
    import threading

    from invgui.core import representations as R

    release, real_get = threading.Event(), R.get

    def slow_get(*a, **k):
        if threading.current_thread().name == "invgui-model-load":
            release.wait(30)
        return real_get(*a, **k)

    monkeypatch.setattr(R, "get", slow_get)
    return release


def test_the_window_shows_before_the_model_is_loaded(qtbot, held_model_load):
    """Issue 11 §6: start-up paints the window first; the default model arrives from a thread."""
    from invgui.ui.main_window import MainWindow

    w = MainWindow(restore=False, defer_model=True)
    qtbot.addWidget(w)
    w.show()
    assert w.rep is None and not w.run_button.isEnabled() and not w.model_box.isEnabled()
    assert w.run() is False and w.original_pane.image is not None          # the image is there already
    held_model_load.set()
    qtbot.waitUntil(lambda: w.rep is not None, timeout=60_000)
    assert w.rep.name == "efficientnet_lite0" and w.layer_tree.topLevelItemCount() > 3
    assert w.run_button.isEnabled() and w.model_box.isEnabled() and w.original_pane.image is not None
    w.close()


def test_the_model_loads_after_the_first_paint_and_closing_meanwhile_waits_for_it(qtbot, held_model_load):
    """Issue 13: nothing competes with the window's first paint (the load starts after it), and a
    window closed while the model loads waits for the loading thread: a process that exits while
    that thread is inside torch aborts ("terminate called without an active exception")."""
    import threading

    from invgui.ui.main_window import MainWindow

    w = MainWindow(restore=False, defer_model=True)
    qtbot.addWidget(w)
    qtbot.wait(50)
    assert w.models.loader is None and w.progress.text() == "loading the model"     # not shown: not started
    w.show()
    qtbot.waitUntil(lambda: w.models.loader is not None, timeout=10_000)
    assert w.models.loader.is_alive()
    threading.Timer(0.3, held_model_load.set).start()
    w.close()
    assert not w.models.loader.is_alive()


def test_runs_on_the_cpu_reuse_the_windows_representation(window):
    """The worker does not rebuild the network the window already has (same rep_key)."""
    from invgui.core.request import rep_key

    for model in ("efficientnet_lite0", "hog"):
        assert window.set_model(model)
        key = rep_key(window.requests.request().request.replace(device="cpu"))
        assert window.controller.reuse.reps.get(key) is window.rep


def test_the_live_loss_plot_moves_its_y_axis_only_in_steps(qtbot):
    """Issue 11 §4: while a run computes, the y range changes only when a curve leaves it (every
    range change regenerates the axis); a shown result fits its curves again."""
    from invgui.ui.plots import LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.set_span(100)
    plot.set_history({"total": [10.0, 5.0], "tv": [0.1, 0.1]})
    first = plot.plotItem.vb.viewRange()[1]
    assert first[0] <= -1 and first[1] >= 1                     # log10: 0.1 … 10 inside
    changes = 0
    for i in range(3, 60):                                      # a falling loss, redrawn 57 times
        before = plot.plotItem.vb.viewRange()[1]
        plot.set_history({"total": list(np.geomspace(10, 10 / i, i)), "tv": [0.1] * i})
        plot.plotItem.vb.prepareForPaint()                      # what a paint does first (auto-range)
        changes += plot.plotItem.vb.viewRange()[1] != before
    lo, hi = plot.plotItem.vb.viewRange()[1]
    assert changes <= 3 and lo <= np.log10(10 / 59) and hi >= 1
    plot.clear_curves()                                         # a finished result: fitted again
    plot.set_history({"total": [1.0, 0.9]})
    assert plot.plotItem.vb.autoRangeEnabled()[1]


def test_run_list_keeps_what_tells_alike_runs_apart_when_their_state_changes(qtbot):
    from invgui.core.session import Run
    from invgui.ui.run_list import RunList

    rl = RunList()
    qtbot.addWidget(rl)
    a, b = (Run.of(method="optimize", model="hog", layer="hog", image="sample:coffee", params={"lr": lr})
            for lr in (0.01, 0.02))
    rl.add(a)
    assert rl.item(0).text().startswith("⏳ hog · invert · coffee\n")     # alone: no suffix
    rl.add(b)
    qtbot.waitUntil(lambda: "(lr 0.02)" in rl.item(1).text())
    assert "(lr 0.01)" in rl.item(0).text()
    a.state = "running"
    rl.update_run(a)                                    # a state change: its line at once, suffix kept
    assert rl.item(0).text().startswith("▶ hog · invert · coffee (lr 0.01)")
    a.name = "mine"
    rl.update_run(a)                                    # a new label: b is alone again
    qtbot.waitUntil(lambda: "(lr" not in rl.item(1).text())
    assert rl.item(0).text().startswith("▶ mine\n")


def test_the_original_stays_in_view_when_the_reconstruction_is_taken_down(qtbot, window):
    """Switching the layer takes the reconstruction down; its pane, emptied, must not drag the
    linked original off its image (it was left showing a corner, centred on the origin)."""
    run = _finished_runs(1, ["hog"])[0]
    run.result.metrics.update(start_representation_error=1.0, iterations=1, iterations_per_second=10.0)
    run.result.target = np.full((32, 32, 3), 0.5, np.float32)
    window.resize(1200, 800)
    window.show()
    qtbot.waitExposed(window)
    window.controller.queue.session.runs.append(run)
    layers = [i.name for i in window.rep.layers(64) if i.fits]
    window.show_run(run)                                      # a result of another size: the pane re-fits
    window.set_layer(next(n for n in layers if n != window.layer))
    settle(qtbot, window)
    qtbot.wait(100)
    assert window.recon_pane.image is None                    # taken down: another layer now
    (x0, x1), (y0, y1) = window.original_pane.view.viewRange()
    h, w = window.original_pane.image.shape[:2]
    assert x0 <= 0.0 and x1 >= 1.0 and y0 <= 0.0 and y1 >= h / w    # the whole original in sight
    assert x1 - x0 < 1.5                                      # and not lost in a large margin


def test_a_restored_run_stays_shown_when_the_deferred_model_arrives(qtbot, invgui_home, held_model_load):
    """The app restores the last session while the default model still loads; adopting the model
    (default layer blocks.3) took down the restored run of another layer.  It stays, and the
    window moves to its layer."""
    from invgui.core.autosave import AutosaveStore
    from invgui.core.request import execute, final_result
    from invgui.core.session import Run, Session
    from invgui.ui.main_window import MainWindow

    run = Run.of(method="optimize", model="efficientnet_lite0", layer="blocks.1", image="sample:chelsea",
              params={"iters": 2, "size": 64}, state="done")
    run.result = final_result(execute(run.request.replace(device="cpu")))
    AutosaveStore().write(Session(runs=[run]))
    w = MainWindow(defer_model=True)
    qtbot.addWidget(w)
    w.show()
    assert w.result is not None and w.recon_pane.image is not None        # restored before the model
    held_model_load.set()
    qtbot.waitUntil(lambda: w.rep is not None, timeout=60_000)
    assert w.result is not None and w.recon_pane.image is not None and w.shown_run is not None
    assert w.layer == "blocks.1"
    qtbot.waitUntil(lambda: w.layer_tree.current_layer() == "blocks.1", timeout=30_000)   # the tree fills on a thread
    w.close()


def test_the_weights_are_hashed_behind_the_window_once_a_run_ends(qtbot, window, monkeypatch):
    """Exports record the weight file's SHA-256: it is computed on the background thread when the
    result arrives, so the export itself (GUI thread) finds it cached."""
    from invgui.core import export

    monkeypatch.setattr(export, "_HASHES", {})
    run_and_wait(qtbot, window, 2)
    weights = window.result.record["weights_file"]
    assert weights
    qtbot.waitUntil(window.background.idle, timeout=30_000)
    assert [k[0] for k in export._HASHES] == [weights]


def test_the_default_window_size_fits_a_smaller_screen(monkeypatch):
    from PySide6.QtCore import QRect

    from invgui.ui import main_window as mw

    assert mw.default_size() == (1600, 900)                   # offscreen: the screenshots' size

    class Screen:
        def availableGeometry(self):
            return QRect(0, 0, 1400, 860)

    class App:
        platformName = staticmethod(lambda: "xcb")
        primaryScreen = staticmethod(lambda: Screen())

    monkeypatch.setattr(mw, "QGuiApplication", App)
    assert mw.default_size() == (1400, 860)


def test_linked_image_panes_show_the_same_region_wherever_they_are(qtbot):
    """pyqtgraph lines up linked views whose screen rectangles overlap by their screen offset; a
    restored dock layout so left the original half out of its pane.  Linked panes replicate."""
    from invgui.ui.image_pane import ImagePane

    a, b = ImagePane("Original", unit=True), ImagePane("Reconstruction", unit=True)
    for pane, x in ((a, 0), (b, 120)):                 # overlapping on the screen, as mid-layout
        qtbot.addWidget(pane)
        pane.setGeometry(x, 0, 300, 300)
        pane.show()
        qtbot.waitExposed(pane)
    b.link(a)
    img = np.full((32, 32, 3), 128, np.uint8)
    a.set_image(img)
    b.set_image(img)
    b.view.setRange(xRange=(0.0, 1.0), yRange=(0.0, 1.0), padding=0)
    qtbot.wait(50)
    (x0, x1), (y0, y1) = a.view.viewRange()
    assert x0 <= 0.0 + 1e-6 and x1 >= 1.0 - 1e-6 and y0 <= 0.0 + 1e-6 and y1 >= 1.0 - 1e-6   # all of it
    assert abs((x0 + x1) / 2 - 0.5) < 1e-6 and abs((y0 + y1) / 2 - 0.5) < 1e-6              # not shifted


def test_gui_start_options_open_the_window_on_a_layer(qtbot, window):
    """`invgui gui --model M --layer L --method …`: the same start options as the CLI's, refused clearly."""
    from invgui.app import configure

    assert configure(window, model="efficientnet_lite0", layer="blocks.1", method="decoder", iters=7) is None
    assert (window.rep.name, window.layer) == ("efficientnet_lite0", "blocks.1")
    assert window.layer_tree.current_layer() == "blocks.1"                            # selected in the tree
    assert window.decoder_panel.current().endswith("efficientnet_lite0-blocks.1.pt")   # its shipped decoder
    assert window.form.values().iters == 7
    err = configure(window, layer="no.such.layer")
    assert err and "no.such.layer" in err and window.layer == "blocks.1"              # refused, nothing lost


def _fill(pane) -> float:
    """How much of its pane the drawn image fills along its limiting side (1 = edge to edge)."""
    vb = pane.view
    img = pane.item.mapRectToScene(pane.item.boundingRect())
    box = vb.sceneBoundingRect()
    return max(img.width() / box.width(), img.height() / box.height())


def test_images_fill_their_panes_after_every_change(qtbot, window):
    """Issue 27 §1: after a run finished (the grid becomes 2×2 or 2×3) or another layer was
    clicked, the original and the reconstruction were drawn at a third of their panes' width.
    Every pane the user did not zoom fits its whole image."""
    window.resize(1400, 850)
    qtbot.waitExposed(window)

    # A fitted image fills ≥ 1/1.2 of its pane: pyqtgraph pads each side by 1/√(pane px), clipped
    # to 2…10 %.  The bug drew images at 0.40–0.48.
    def fitted(*panes):
        qtbot.wait(100)
        window.grab()            # paint: pyqtgraph applies a queued auto-range when it paints
        return [round(_fill(p), 2) for p in panes if p.isVisible() and p.image is not None]

    run_and_wait(qtbot, window, 3)                                     # the grid grows: 2×2
    settle(qtbot, window)
    shown = (window.original_pane, window.recon_pane, window.diff_pane)
    assert all(f >= 0.83 for f in fitted(*shown)), fitted(*shown)
    window.set_layer("blocks.1")                                       # another layer
    settle(qtbot, window)
    assert all(f >= 0.83 for f in fitted(window.original_pane)), fitted(window.original_pane)
    window.resize(1100, 950)                                           # the dock and panes resized
    settle(qtbot, window)
    assert all(f >= 0.83 for f in fitted(*shown)), fitted(*shown)
    window.show_run(window.session.runs[0])                            # the finished run again
    window.restoreState(window.saveState())                            # a layout restored
    window.view.grid.reset()
    settle(qtbot, window)
    assert all(f >= 0.83 for f in fitted(*shown)), fitted(*shown)
    assert window.set_model("hog")                                     # another representation
    settle(qtbot, window)
    assert all(f >= 0.83 for f in fitted(window.original_pane)), fitted(window.original_pane)
    window.show_run(window.session.runs[0])
    settle(qtbot, window)
    assert all(f >= 0.83 for f in fitted(*shown)), fitted(*shown)
    # A pane the user zoomed (the mouse wheel) keeps the zoom through a resize, and its partner
    # shows the same region.
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    pane = window.original_pane
    centre = pane.view_widget.mapFromScene(pane.view.mapToScene(pane.view.boundingRect().center()))
    for _ in range(3):
        QApplication.sendEvent(pane.view_widget.viewport(), QWheelEvent(
            QPointF(centre), QPointF(pane.view_widget.mapToGlobal(centre)), QPoint(0, 0), QPoint(0, 120),
            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False))
    qtbot.wait(50)
    assert _fill(pane) > 1.2 and pane.view.user_region
    zoomed = pane.view.viewRange()
    window.resize(1300, 900)
    settle(qtbot, window)
    qtbot.wait(100)
    # Not re-fitted: the region the user chose stays (pyqtgraph widens the other axis to the new
    # aspect, keeping the longer extent, here the height).
    assert pane.view.user_region and pane.view.autoRangeEnabled() == [False, False]
    assert np.allclose(pane.view.viewRange()[1], zoomed[1], atol=1e-6) and _fill(pane) > 1.0
    rx, ry = window.recon_pane.view.viewRange()
    (ox0, ox1), (oy0, oy1) = pane.view.viewRange()
    assert rx[0] <= ox0 + 1e-6 and rx[1] >= ox1 - 1e-6 and ry[0] <= oy0 + 1e-6 and ry[1] >= oy1 - 1e-6


def test_compare_captions_stay_inside_their_cells(qtbot, window):
    """Issue 27 §3: at ~150 px a cell's metrics line ran into its neighbours'; each caption is
    elided to its cell, the whole line in its tooltip."""
    runs = _finished_runs(8, [f"l{i}" for i in range(8)])
    for r in runs:
        r.result.metrics.update(psnr=27.61, ssim=0.74, seconds=3.2)
        r.result.record["batch"] = 12
        window.session.add(r)
    view = window.open_compare([r.id for r in runs])
    view.resize(900, 500)
    qtbot.waitUntil(lambda: view.isVisible())
    qtbot.wait(100)
    cg = view.cell_grid
    assert len(cg.cells) >= 3
    boxes = []
    for cell in cg.cells.values():
        text = cell.cap.item.mapRectToScene(cell.cap.item.boundingRect())
        box = cell.vb.mapRectToScene(cell.vb.boundingRect())
        assert text.width() <= box.width() + 1, (cell.text, text.width(), box.width())
        assert "27.6 dB" in cell.text and cell.cap.toolTip() == cell.text
        boxes.append((box.left(), box.right(), text.left(), text.right()))
    for left, right, tl, tr in boxes:                 # inside its own column, so never in a neighbour's
        assert left - 1 <= tl and tr <= right + 1


def test_pane_titles_take_one_line_and_say_the_rest_in_their_tooltip(qtbot, window):
    """Issue 27 §9: in the four-pane layout titles wrapped to 2–3 lines and moved their images down."""
    window.resize(1000, 700)
    run_and_wait(qtbot, window, 3)
    settle(qtbot, window)
    qtbot.wait(100)
    panes = [p for p in (window.original_pane, window.recon_pane, window.diff_pane, window.feature_pane)
             if p.isVisible()]
    assert len(panes) >= 3
    line = panes[0].title.fontMetrics().height()
    for p in panes:
        assert p.title.height() < 2 * line, (p.title_text, p.title.height(), line)
        assert p.title.toolTip() == p.title_text
        assert p.title.fontMetrics().horizontalAdvance(p.title.text()) <= p.title.width()
    long = next(p for p in panes if p.title.text() != p.title_text)          # at least one had to be elided
    assert long.title.text().endswith("…")


def test_the_loss_plot_without_curves_shows_an_empty_state(qtbot, window):
    """Issue 27 §9: before any run the log axis over 0.1…0.9 drew its tick labels (9 8 7 6 …) on
    top of each other; without curves the plot hides its axes and says what will appear."""
    plot = window.plot
    assert plot.empty and not plot.getAxis("left").isVisible() and plot.placeholder.isVisible()
    run_and_wait(qtbot, window, 3)
    assert not plot.empty and plot.getAxis("left").isVisible() and not plot.placeholder.isVisible()
    assert "total" in plot.curves
    plot.clear_curves()
    assert plot.empty and not plot.getAxis("bottom").isVisible()
    plot.set_history({"total": [1.0, 0.5]})
    assert not plot.empty and plot.plotItem.vb.autoRangeEnabled()[1]


@pytest.mark.slow
def test_the_run_row_stays_put_and_says_what_it_queues(qtbot, window):
    """Issue 27 §6: the Run button moved by ~50 px with the result panel and the method page, and
    silently became "Queue"; the hybrid page offered start settings that do not apply."""
    from PySide6.QtCore import QPoint

    window.resize(1400, 850)
    qtbot.waitExposed(window)
    qtbot.wait(50)

    def y():
        qtbot.wait(50)
        return window.run_button.mapTo(window, QPoint(0, 0)).y()

    before = y()
    window.form.set_value("iters", 200)
    qtbot.mouseClick(window.run_button, Qt.MouseButton.LeftButton)
    assert window.running() and window.run_button.text() == "Queue (1 running)"
    qtbot.mouseClick(window.run_button, Qt.MouseButton.LeftButton)         # queue a second one
    assert window.run_button.text() == "Queue (1 running, 1 queued)"
    window.stop()
    qtbot.waitUntil(lambda: not window.running(), timeout=60_000)
    window.stop()
    qtbot.waitUntil(lambda: not window.running() and window.run_button.text() == "Run", timeout=60_000)
    assert window.metrics_label.text()                                      # a result panel is shown
    assert y() == before
    for method in ("decoder", "hybrid", "optimize"):
        window.set_method(method)
        assert y() == before, method
    window.set_method("hybrid")
    for name in ("init", "init_scale"):
        w = window.form.widgets[name]
        assert not w.isEnabled() and "decoder's reconstruction" in w.toolTip()
    window.set_method("optimize")
    assert window.form.widgets["init"].isEnabled() and "Start image" in window.form.widgets["init"].toolTip()


def test_the_panes_show_the_selected_run_and_the_list_says_which(qtbot, window):
    """Issue 27 §2: with one run computing and another queued and selected, the reconstruction
    pane was titled after the queued run while it showed the running one's live image and curves;
    a layer switch blanked the panes while a finished run stayed selected in the list."""
    window.form.set_value("iters", 3)
    run_and_wait(qtbot, window, 3)
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    finished = window.session.runs[0]
    # Order 1: a long run, then a run of another layer queued and selected.
    window.form.set_value("iters", 100000)
    assert window.run()
    live = window.active_run
    qtbot.waitUntil(lambda: window.recon_pane.image is not None and bool(window.plot.curves), timeout=60_000)
    window.set_layer("blocks.1")
    # Another layer chosen while following the live run (seen in the Xvfb walk): the pane still
    # shows blocks.3's live image, so its title still says blocks.3.
    assert "blocks.3 (running)" in window.recon_pane.title_text and window.shown_run is live
    window.form.set_value("iters", 3)
    assert window.run()
    queued = window.session.runs[-1]
    assert queued.state == "queued"
    window.run_list.select(queued.id)
    qtbot.wait(400)                                                   # several redraw ticks
    assert window.shown_run is queued and "blocks.1 (queued)" in window.recon_pane.title_text
    assert window.recon_pane.image is None and window.plot.empty      # not the live run's image
    # Back to the running one: its live image and curves again, and it is followed.
    window.run_list.select(live.id)
    qtbot.waitUntil(lambda: window.recon_pane.image is not None and not window.plot.empty, timeout=10_000)
    assert "blocks.3 (running)" in window.recon_pane.title_text and window.run_list.selected_ids() == [live.id]
    window.controller.remove(queued.id)
    window.stop()
    qtbot.waitUntil(lambda: not window.running(), timeout=60_000)
    # Order 2: a finished run selected, then another layer: the panes clear and so does the selection.
    window.run_list.select(finished.id)
    assert window.result is finished.result and window.run_list.selected_ids() == [finished.id]
    window.set_layer("blocks.2")
    settle(qtbot, window)
    assert window.result is None and window.recon_pane.image is None
    assert window.run_list.selected_ids() == [] and window.shown_run is None


@pytest.mark.parametrize("deferred", [False, True])
def test_a_restart_restores_the_shown_runs_representation_layer_and_method(qtbot, invgui_home, held_model_load,
                                                                            deferred):
    """Issue 27 §7: after a restart the runs came back but the window reset to EfficientNet-Lite0,
    so a restored HOG run was shown beside a Lite0 Φ0."""
    from invgui.core.autosave import AutosaveStore
    from invgui.core.request import execute, final_result
    from invgui.core.session import Run, Session
    from invgui.ui.main_window import MainWindow

    run = Run.of(method="optimize", model="hog", layer="hog", image="sample:chelsea",
              params={"iters": 2, "size": 64}, rep_params={"cell": 4, "orientations": 9}, state="done")
    run.result = final_result(execute(run.request.replace(device="cpu")))
    AutosaveStore().write(Session(runs=[run]))
    if not deferred:
        held_model_load.set()
    w = MainWindow(defer_model=deferred)
    qtbot.addWidget(w)
    w.show()
    if deferred:
        held_model_load.set()
    qtbot.waitUntil(lambda: w.rep is not None and w.rep.name == "hog", timeout=60_000)
    qtbot.wait(50)
    assert w.layer == "hog" and w.method() == "optimize"
    assert w.rep.describe()["representation_params"]["cell"] == 4
    assert w.shown_run is not None and w.shown_run.id == run.id and w.recon_pane.image is not None
    w.close()


def test_a_sweep_says_what_it_queues_and_skips_runs_the_session_has(qtbot, window):
    """Issue 27 §7: a methods × layers sweep on HOG (one layer) queued exact duplicates, silently."""
    assert window.set_model("hog")
    window.form.set_value("iters", 2)
    view = window.open_compare([])
    view.sweep_kind.setCurrentIndex(0)
    view.sweep_boxes["decoder"].setChecked(False)
    first = view.queue_sweep()
    assert len(first) == 1 and view.sweep_said.text().startswith("queued 1 runs, every method at")
    qtbot.waitUntil(lambda: not window.running(), timeout=60_000)
    n = len(window.session.runs)
    assert view.queue_sweep() == [] and len(window.session.runs) == n
    assert "nothing queued: the session has all 1 runs of this sweep already" in view.sweep_said.text()
    view.sweep_again.setChecked(True)                                 # asked for: queued again
    again = view.queue_sweep()
    assert len(again) == 1 and len(window.session.runs) == n + 1
    qtbot.waitUntil(lambda: not window.running(), timeout=60_000)


def test_a_default_sweep_with_decoders_picks_layers_that_have_them_at_one_side(qtbot, window):
    """Issue 37 §4/§5: with decoder and hybrid ticked the default sweep picked four layers none of which
    had a decoder and said only "queued 4 runs"; the decoders ran at their own 128 px beside
    optimisation at the window's side."""
    window.form.set_value("iters", 2)
    view = window.open_compare([])
    view.sweep_kind.setCurrentIndex(0)
    for name, box in view.sweep_boxes.items():
        box.setChecked(name in ("optimize", "decoder"))
    runs = view.queue_sweep()
    layers = sorted({r.layer for r in runs})
    assert {"blocks.1", "blocks.5"} <= set(layers) and len(layers) == 4
    dec = [r for r in runs if r.method == "decoder"]
    assert sorted(r.layer for r in dec) == ["blocks.1", "blocks.5"] and {r.size for r in dec} == {96}
    said = view.sweep_said.text()
    assert "every method at 96 px" in said and "not queued: decoder at" in said and "no decoder for" in said
    qtbot.waitUntil(lambda: not window.running(), timeout=120_000)
    assert {r.result.record["input_size"] for r in runs} == {96}


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


def test_the_depth_plot_draws_a_one_layer_representation_as_a_point(qtbot, window):
    """Issue 27 §4: one curve per representation and method, in words; HOG (no depth) is a point."""

    runs = _finished_runs(3, ["blocks.1", "blocks.3", "blocks.5"])
    for r in runs:
        r.request = r.request.replace(model="efficientnet_lite0")
    hog = _finished_runs(1, ["hog"])[0]
    hog.request = hog.request.replace(rep_params={"cell": 8, "orientations": 9})
    for r in runs + [hog]:
        window.session.add(r)
    view = window.open_compare([r.id for r in runs + [hog]])
    qtbot.waitUntil(lambda: view.isVisible())
    view.metric_box.setCurrentText("representation error")
    items = view._depth_items
    assert set(items) == {"optimisation · efficientnet_lite0", "optimisation · hog (cell 8, orientations 9)"}
    line, _ = items["optimisation · efficientnet_lite0"]
    point, _ = items["optimisation · hog (cell 8, orientations 9)"]
    assert line.opts["pen"] is not None and point.opts["pen"] is None and point.opts["symbol"] == "o"


def test_the_original_pane_says_a_non_square_image_is_cropped(window):
    """Issue 27 §8: sample:chelsea is 451×300; the methods see its centre 300×300."""
    assert "451×300; its centre 300×300 is used" in window.original_pane.title_text


def test_fit_pads_a_non_square_image_in_the_pane_the_run_and_its_record(qtbot, window):
    """Issue 27 §8: besides the centre crop, offer *fit*: all of the image, padded to a square.
    File › Fit whole images changes the Original pane (grey bars above and below the 451×300 cat),
    its title, and what the next run computes from (its target and record)."""
    from invgui.core.images import PAD_GREY

    cropped = window.original_pane.image.copy()
    window.fit_action.trigger()
    assert window.fit_action.isChecked() and window.framing == "fit"
    shown = window.original_pane.image
    assert shown.shape == (96, 96, 3) and "padded to 451×451 with grey bars" in window.original_pane.title_text
    # 300/451 of 96 px rows hold the cat; the ~16 rows above and below are the grey bars.
    bar = round(96 * (451 - 300) / 2 / 451)
    assert np.abs(shown[:bar - 1].astype(float) / 255 - PAD_GREY).max() <= 1 / 255
    assert np.abs(shown[-(bar - 1):].astype(float) / 255 - PAD_GREY).max() <= 1 / 255
    assert np.abs(cropped[:bar].astype(float) / 255 - PAD_GREY).max() > 0.1      # the crop had no bars
    window.form.set_value("restarts", 1)
    run_and_wait(qtbot, window, 2)
    run = window.shown_run
    assert run.framing == "fit" and run.request.framing == "fit" and run.label().endswith("chelsea (fit)")
    region = window.result.record["input_region"]
    assert region["framing"] == "fit" and region["padding"] == [0, 75, 0, 76] and region["image_size"] == [451, 300]
    assert np.abs(window.result.target[:bar - 1] - PAD_GREY).max() <= 1 / 255
    # Back to crop: the finished run keeps showing what it was computed from, and says so.
    window.fit_action.trigger()
    assert window.framing == "crop" and "padded to a square (this run's" in window.original_pane.title_text


def test_every_method_is_measured_at_the_windows_size_and_says_its_own(qtbot, window, tiny_hog_decoder):
    """Issue 27 §5: the shipped HOG decoder works at its training size, optimisation at the
    window's; the run list compared PSNR/SSIM/NRE computed at different sizes without a word."""
    from invgui.core import compare as C
    from invgui.core import metrics
    from invgui.core.images import load_image, resize_center_crop

    window.set_model("hog")
    window.form.set_value("iters", 3)
    window.decoder_panel.size.setValue(0)                            # no decoder size chosen
    # (the sweep takes the shipped HOG decoder, trained at 128 px)
    view = window.open_compare([])
    view.sweep_kind.setCurrentIndex(0)
    runs = view.queue_sweep()
    qtbot.waitUntil(lambda: all(r.state == "done" for r in runs) and not window.running(), timeout=120_000)
    opt, dec = runs                                  # issue 37 §4: like for like, both at the window's side
    assert (opt.result.record["input_size"], opt.result.record["eval_size"]) == (96, 96)
    assert (dec.result.record["input_size"], dec.result.record["eval_size"]) == (96, 96)
    window.decoder_panel.size.setValue(128)                          # a decoder size chosen: kept, and said
    view.sweep_again.setChecked(True)
    runs = view.queue_sweep()
    assert "the decoders at 128 px (the decoder panel's size), the others at 96 px" in view.sweep_said.text()
    qtbot.waitUntil(lambda: all(r.state == "done" for r in runs) and not window.running(), timeout=120_000)
    opt, dec = runs
    assert (dec.result.record["input_size"], dec.result.record["eval_size"]) == (128, 96)
    assert "128→96 px" in C.caption(dec)
    # The decoder's PSNR is its reconstruction, brought to 96 px, against the original at 96 px.
    chelsea = load_image("sample:chelsea")
    expect = metrics.psnr(resize_center_crop(dec.result.images[0], 96), resize_center_crop(chelsea, 96))
    assert dec.result.metrics["psnr"] == pytest.approx(expect, abs=1e-6)
    assert dec.summary().endswith("128 px (metrics at 96 px)") and opt.summary().endswith("96 px")
    view.refresh()
    captions = {rid: cell.text for rid, cell in view.cell_grid.cells.items()}
    assert captions[dec.id].startswith("128→96 px · ") and "px" not in captions[opt.id]
    window.run_list.select(dec.id)
    assert "at 128 px (metrics at 96 px)" in window.metrics_label.text()


def test_another_windows_autosave_stays_until_this_window_has_saved_its_runs(qtbot, invgui_home, monkeypatch):
    """Its folder is removed only once this window's own autosave names the added runs: with the
    autosave failing (a full disk), the runs are added and the other folder is kept."""
    from invgui.core.autosave import AutosaveStore, slot_folder
    from invgui.core.session import Run, Session
    from invgui.ui.main_window import MainWindow

    other = AutosaveStore(slot_folder(2))
    other.write(Session(runs=[Run.of(method="optimize", model="hog", layer="hog", image="sample:coffee",
                                  name="left behind", state="stopped")]))
    w = MainWindow()
    qtbot.addWidget(w)
    assert len(w.other_autosaves_menu.actions()) == 1
    w.controller.add_runs([Run.of(method="optimize", model="hog", layer="hog", image="sample:chelsea", name="mine",
                               state="stopped")])
    assert w.controller.autosave(wait=True) is not None and w.controller.autosave_store.index.is_file()

    def full(self, session):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(AutosaveStore, "write", full)
    w.other_autosaves_menu.actions()[0].trigger()
    assert [r.name for r in w.session.runs] == ["mine", "left behind"]
    assert (slot_folder(2) / "session.json").is_file()                # kept: nothing can be lost
    monkeypatch.undo()
    w.close()
