"""The Compare window: grids, sweeps, depth plots.

Each test drives the real window through the real worker thread, offscreen."""

import json

import numpy as np
import pytest
from ui_helpers import finished_runs, zoom_and_check_shared

pytestmark = pytest.mark.gui


def test_compare_view_grid_sweep_depth_plot_and_contact_sheet(qtbot, window, tiny_hog_decoder, tmp_path):
    import cv2
    from PIL import Image

    window.set_model("hog")
    window.form.set_value("iters", 3)
    window.decoder_panel.add_file(str(tiny_hog_decoder))
    window.decoder_panel.size_box.setValue(96)
    view = window.open_compare([])
    view.sweep_kind.setCurrentIndex(0)
    runs = view.queue_sweep()                                    # hog has one layer: optimisation + decoder
    assert [r.method for r in runs] == ["optimize", "decoder"]
    qtbot.waitUntil(lambda: all(r.state == "done" for r in runs) and not window.running(), timeout=120_000)
    view.refresh()
    g = view.grid
    assert g.rows == ["optimisation", "decoder"] and len(g.cells) == 2
    assert len(view.views) == 2
    zoom_and_check_shared(qtbot, view)
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


def test_compare_view_scrolls_redraws_only_what_changed_and_merges_nothing(qtbot, window):
    """Issue 11 §4/§5: many columns scroll instead of shrinking to nothing, and only the cells in
    sight exist; a run finishing keeps every other cell; runs sharing a cell each get their own
    column, and it says so."""
    runs = finished_runs(12, [f"l{i}" for i in range(12)])
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
    zoom_and_check_shared(qtbot, view)
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
    runs = finished_runs(301, [f"l{i}" for i in range(100)])
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


def test_compare_captions_stay_inside_their_cells(qtbot, window):
    """Issue 27 §3: at ~150 px a cell's metrics line ran into its neighbours'; each caption is
    elided to its cell, the whole line in its tooltip."""
    runs = finished_runs(8, [f"l{i}" for i in range(8)])
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
    assert {"blocks.1", "blocks.3", "blocks.5"} <= set(layers) and len(layers) == 4
    dec = [r for r in runs if r.method == "decoder"]
    assert sorted(r.layer for r in dec) == ["blocks.1", "blocks.3", "blocks.5"] and {r.size for r in dec} == {96}
    said = view.sweep_said.text()
    assert "every method at 96 px" in said and "not queued: decoder at" in said and "no decoder for" in said
    qtbot.waitUntil(lambda: not window.running(), timeout=120_000)
    assert {r.result.record["input_size"] for r in runs} == {96}


def test_the_depth_plot_draws_a_one_layer_representation_as_a_point(qtbot, window):
    """Issue 27 §4: one curve per representation and method, in words; HOG (no depth) is a point."""

    runs = finished_runs(3, ["blocks.1", "blocks.3", "blocks.5"])
    for r in runs:
        r.request = r.request.replace(model="efficientnet_lite0")
    hog = finished_runs(1, ["hog"])[0]
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


@pytest.mark.gui
@pytest.mark.slow
def test_the_window_offers_the_priors_and_compare_draws_one_depth_curve_each(qtbot):
    from invgui.ui.main.window import MainWindow

    w = MainWindow(restore=False)
    qtbot.addWidget(w)
    w.form.set_value("size", 64)
    w.form.set_value("iters", 3)
    w.show()
    qtbot.waitUntil(w.background.idle, timeout=30_000)
    from invgui.core.methods.optimize_params import PARAMETERISATIONS

    box = w.form.widgets["parameterisation"]
    assert [box.itemText(i) for i in range(box.count())] == list(PARAMETERISATIONS)
    box.setCurrentText("fourier")                                  # as the user picks it
    v = w.form.values()
    assert (v.optimizer, v.lr, v.tv_weight, v.iters, v.size) == ("adam", 0.05, 0.0, 3, 64)
    assert "lucent preset" in w.statusBar().currentMessage()
    box.setCurrentText("pixel")
    view = w.open_compare([])
    view.sweep_kind.setCurrentIndex(1)
    view.sweep_param.setCurrentText("parameterisation")
    view.sweep_values.setText("pixel, fourier, dip")
    runs = []
    for layer in ("blocks.1", "blocks.2"):
        w.set_layer(layer)
        runs += view.queue_sweep()
    qtbot.waitUntil(lambda: all(r.state in ("done", "failed") for r in runs) and not w.running(), timeout=180_000)
    assert [r.state for r in runs] == ["done"] * 6, [r.message for r in runs] + w.errors
    view.rows_box.setCurrentText("layer")
    view.set_runs([r.id for r in runs])
    assert view.grid.cols_by == "param:parameterisation" and view.grid.cols == ["pixel", "fourier", "dip"]
    assert view.grid.rows == ["blocks.1", "blocks.2"]
    qtbot.waitUntil(lambda: not view.distances_pending(), timeout=60_000)
    curves = sorted(view.series)
    assert curves == [f"optimisation · efficientnet_lite0 · parameterisation {p}" for p in ("dip", "fourier", "pixel")]
    assert all(len(view.series[c]) == 2 for c in curves), view.series        # a point per layer
    w.close()
