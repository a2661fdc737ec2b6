"""The main window: panes, runs, the live view, what each pane says.

Each test drives the real window through the real worker thread, offscreen."""

import json

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from ui_helpers import fill, finished_runs, make_window, run_and_wait, settle

pytestmark = pytest.mark.gui


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
    assert not w.controller.worker.qthread.isRunning()


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


def test_themes_about_box_and_icons(window):
    assert window.set_theme("dark") is True
    from PySide6.QtWidgets import QApplication

    assert QApplication.instance().palette().color(QApplication.instance().palette().ColorRole.Window).lightness() < 128
    assert window.acts.theme["dark"].isChecked() and window.settings.value("theme") == "dark"
    assert window.set_theme("light") is False
    window.acts.theme["dark"].trigger()                   # the menu, as a user picks it
    assert window.theme == "dark" and window.dark and window.acts.theme["dark"].isChecked()
    assert not window.acts.theme["light"].isChecked()
    window.acts.theme["light"].trigger()
    assert window.theme == "light" and not window.dark
    window.set_theme("system")
    box = window.show_about()
    assert "invgui" in box.text() and "torch" in box.text()
    box.close()
    for act in (window.acts.run, window.acts.stop, window.acts.pause, window.acts.open,
                window.acts.export, window.acts.compare):
        assert not act.icon().isNull()
    assert not window.windowIcon().isNull()


def test_no_stale_panes_status_or_selection_and_presets_follow_the_representation(qtbot, window):
    """Issue 11 §6: what a new user hit."""
    run_and_wait(qtbot, window, 3)
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    first = window.session.runs[-1]
    window.display.redraw()                               # the preview and the curves take turns:
    window.display.redraw()                               # both drawn
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


def test_the_live_loss_plot_moves_its_y_axis_only_in_steps(qtbot):
    """Issue 11 §4: while a run computes, the y range changes only when a curve leaves it (every
    range change regenerates the axis); a shown result fits its curves again."""
    from invgui.ui.widgets.plots import LossPlot

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


def test_the_loss_plot_keeps_its_axes_up_from_one_run_to_the_next(qtbot, window):
    """Issue 38 §5: a run's start took the axes down (the plot emptied) and put them up again, and
    its end did the same: each a re-layout of the whole plot, ~28 ms of the GUI thread (bench_gui
    --session); its first redraw, before any iteration, emptied the legend (refilled at the next);
    the difference pane was hidden at the start and shown at the end (every pane re-laid out, twice
    per run, and the panes jumped).  From a shown result to the next run's live curves and its result, the axes stay."""
    run_and_wait(qtbot, window, 3)
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    plot = window.plot
    assert not plot.empty and plot.plotItem.getAxis("left").isVisible()
    shown: list[bool] = []
    real = plot.plotItem.showAxis
    plot.plotItem.showAxis = lambda axis, show=True: (shown.append(show), real(axis, show))
    legend = plot.plotItem.legend
    removed: list = []
    real_remove = legend.removeItem
    legend.removeItem = lambda item: (removed.append(item), real_remove(item))
    diff = window.diff_pane
    assert diff.isVisible()
    hidden: list[bool] = []
    real_hide = diff.hide
    diff.hide = lambda: (hidden.append(True), real_hide())
    window.form.set_value("iters", 3)
    with qtbot.waitSignal(window.runEnded, timeout=120_000):
        qtbot.mouseClick(window.run_button, Qt.MouseButton.LeftButton)
        assert window.running() and diff.image is None                    # the last run's is not left up…
        assert diff.isVisible() and "with the run's result" in diff.title_text   # …and the pane keeps its place
    assert False not in shown and plot.plotItem.getAxis("left").isVisible()
    assert removed == []                           # nor its legend emptied and filled again (same terms)
    assert hidden == [] and diff.image is not None and "mean" in diff.title_text
    assert set(plot.curves) >= {"total", "feature"}              # the second run's curves, fitted
    assert plot.plotItem.vb.autoRangeEnabled()[1]


def test_run_list_keeps_what_tells_alike_runs_apart_when_their_state_changes(qtbot):
    from invgui.core.session import Run
    from invgui.ui.widgets.run_list import RunList

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
    run = finished_runs(1, ["hog"])[0]
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


def test_the_default_window_size_fits_a_smaller_screen(monkeypatch):
    from PySide6.QtCore import QRect

    from invgui.ui.main import window as mw

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
    from invgui.ui.widgets.image_pane import ImagePane

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
        return [round(fill(p), 2) for p in panes if p.isVisible() and p.image is not None]

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
    assert fill(pane) > 1.2 and pane.view.user_region
    zoomed = pane.view.viewRange()
    window.resize(1300, 900)
    settle(qtbot, window)
    qtbot.wait(100)
    # Not re-fitted: the region the user chose stays (pyqtgraph widens the other axis to the new
    # aspect, keeping the longer extent, here the height).
    assert pane.view.user_region and pane.view.autoRangeEnabled() == [False, False]
    assert np.allclose(pane.view.viewRange()[1], zoomed[1], atol=1e-6) and fill(pane) > 1.0
    rx, ry = window.recon_pane.view.viewRange()
    (ox0, ox1), (oy0, oy1) = pane.view.viewRange()
    assert rx[0] <= ox0 + 1e-6 and rx[1] >= ox1 - 1e-6 and ry[0] <= oy0 + 1e-6 and ry[1] >= oy1 - 1e-6


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
    assert plot.plotItem.legend.isVisible()
    plot.clear_curves()
    assert plot.empty and not plot.getAxis("bottom").isVisible()
    assert not plot.plotItem.legend.isVisible()          # no legend of curves that are not there
    plot.set_history({"total": [1.0, 0.5]})
    assert not plot.empty and plot.plotItem.vb.autoRangeEnabled()[1] and plot.plotItem.legend.isVisible()


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


def test_the_original_pane_says_a_non_square_image_is_cropped(window):
    """Issue 27 §8: sample:chelsea is 451×300; the methods see its centre 300×300."""
    assert "451×300; its centre 300×300 is used" in window.original_pane.title_text


def test_fit_pads_a_non_square_image_in_the_pane_the_run_and_its_record(qtbot, window):
    """Issue 27 §8: besides the centre crop, offer *fit*: all of the image, padded to a square.
    File › Fit whole images changes the Original pane (grey bars above and below the 451×300 cat),
    its title, and what the next run computes from (its target and record)."""
    from invgui.core.images import PAD_GREY

    cropped = window.original_pane.image.copy()
    window.acts.fit.trigger()
    assert window.acts.fit.isChecked() and window.framing == "fit"
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
    window.acts.fit.trigger()
    assert window.framing == "crop" and "padded to a square (this run's" in window.original_pane.title_text


def test_every_method_is_measured_at_the_windows_size_and_says_its_own(qtbot, window, tiny_hog_decoder):
    """Issue 27 §5: the shipped HOG decoder works at its training size, optimisation at the
    window's; the run list compared PSNR/SSIM/NRE computed at different sizes without a word."""
    from invgui.core import compare as C
    from invgui.core import metrics
    from invgui.core.images import load_image, resize_center_crop

    window.set_model("hog")
    window.form.set_value("iters", 3)
    window.decoder_panel.size_box.setValue(0)                            # no decoder size chosen
    # (the sweep takes the shipped HOG decoder, trained at 128 px)
    view = window.open_compare([])
    view.sweep_kind.setCurrentIndex(0)
    runs = view.queue_sweep()
    qtbot.waitUntil(lambda: all(r.state == "done" for r in runs) and not window.running(), timeout=120_000)
    opt, dec = runs                                  # issue 37 §4: like for like, both at the window's side
    assert (opt.result.record["input_size"], opt.result.record["eval_size"]) == (96, 96)
    assert (dec.result.record["input_size"], dec.result.record["eval_size"]) == (96, 96)
    window.decoder_panel.size_box.setValue(128)                          # a decoder size chosen: kept, and said
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
