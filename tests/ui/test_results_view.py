"""Issue 31 §4: Compare opens a results folder of `invgui evaluate` — its table, its depth plot, the
runs' images — and File › Export writes its figures; the folder is never changed by looking."""

import dataclasses
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from eval_helpers import COLLAPSE, GOOD
from eval_helpers import photos as sample_photos
from eval_helpers import plan as small_plan
from PySide6.QtCore import Qt
from ui_helpers import make_window

from invgui.core import evaluate as E
from invgui.core.methods.optimize import PRESETS

pytestmark = pytest.mark.gui


def plan(data) -> E.Plan:
    p = dataclasses.replace(PRESETS.get("fast"), iters=3)
    return E.Plan.of(model="efficientnet_lite0", layers=("blocks.1", "blocks.5"), methods=("optimize", "decoder"),
                  data=str(data), params=dataclasses.asdict(p), size=48, judge="efficientnet_lite0@blocks.3")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A finished evaluation of three photos: 2 layers × 2 methods, a judge, every image kept."""
    from invgui.core.files import save_png
    from invgui.core.images import load_image

    data = tmp_path_factory.mktemp("three")
    for name in ("astronaut", "coffee", "rocket"):
        save_png(data / f"{name}.png", load_image(f"sample:{name}")[::6, ::6])
    out = tmp_path_factory.mktemp("results")
    E.run(plan(data), out)
    return out


@pytest.fixture()
def window(qtbot):
    w = make_window(qtbot)
    yield w
    w.close()


def open_folder(window, monkeypatch, folder):
    """File › Open evaluation results…, the folder chosen in the dialog."""
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    window.acts.open_results.trigger()
    view = window.compare_view
    return view, view.current_evaluation()


def cell(table, row, col) -> str:
    """The text a table shows (a QTableWidget's item, or a view's model)."""
    item = getattr(table, "item", None)
    return item(row, col).text() if item is not None else table.model().index(row, col).data()


def test_compare_opens_a_results_folder_with_its_table_plot_and_images(qtbot, window, folder, monkeypatch):
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    view, panel = open_folder(window, monkeypatch, folder)
    assert panel is not None and view.tabs.currentWidget() is panel and view.tabs.count() == 2
    summary = E.read_summary(folder / "summary.csv")
    t = panel.summary_table
    headings = [t.horizontalHeaderItem(j).text() for j in range(t.columnCount())]
    assert headings == ["method", "layer", "n", "norm. rec. error", "rep. error", "PSNR dB", "SSIM", "judge dist."]
    assert t.rowCount() == 4
    for i, s in enumerate(summary):               # the table is summary.csv, in its order
        assert cell(t, i, 1) == s["layer"] and cell(t, i, 2) == s["n"] == "3"
        assert cell(t, i, 3) == E.mean_pm_std(s, "nre", ".3f")
        assert cell(t, i, 7) == E.mean_pm_std(s, "perceptual", ".3f")
    # The depth plot: one curve per method, at the layers' depths, the chosen measure's means.
    curves = panel.plot.getPlotItem().listDataItems()
    assert [c.name() for c in curves] == ["optimisation (n = 3)", "decoder (n = 3)"]
    x, y = curves[1].getData()
    dec = [s for s in summary if s["method"] == "decoder"]
    assert np.allclose(x, [float(s["depth"]) for s in dec]) and np.allclose(y, [float(s["nre_mean"]) for s in dec])
    panel.metric_box.setCurrentText("PSNR dB")
    x, y = panel.plot.getPlotItem().listDataItems()[1].getData()
    assert np.allclose(y, [float(s["psnr_mean"]) for s in dec])
    assert "PSNR" in panel.plot.getPlotItem().getAxis("left").labelText
    # A summary row lists its runs (the rec. error of each = its distance / N) and shows the layer's sheet.
    t.selectRow(3)                                  # decoder at blocks.5
    runs = [r for r in E.open_results(folder).rows if (r["method"], r["layer"]) == ("decoder", "blocks.5")]
    rt = panel.runs_table
    assert rt.model().rowCount() == 3
    n = float(summary[3]["set_distance"])
    assert [cell(rt, i, 0) for i in range(3)] == [r["index"] for r in runs]
    assert [cell(rt, i, 2) for i in range(3)] == [f"{float(r['distance']) / n:.3f}" for r in runs]
    assert np.mean([float(r["distance"]) / n for r in runs]) == pytest.approx(float(summary[3]["nre_mean"]))
    from invgui.core.images import load_image

    sheet = load_image(str(folder / "sheet_blocks.5.png"))
    assert panel.pane.image.shape == sheet.shape and "sheet_blocks.5.png" in panel.pane.title_text
    # A run: its photo beside each method's reconstruction of it at that layer.
    rt.selectRow(1)
    assert panel.pane.image.shape[1] > 3 * 128 and "coffee.png at blocks.5" in panel.pane.title_text
    # Sorting by a number sorts by value.
    rt.sortByColumn(3, Qt.SortOrder.DescendingOrder)
    vals = [float(cell(rt, i, 3)) for i in range(3)]
    assert vals == sorted(vals, reverse=True)
    # Opening the same folder again shows its tab, not a second one; the folder was never written.
    assert view.open_results(folder) is panel and view.tabs.count() == 2
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == before


def test_file_export_writes_the_evaluation_figures_or_says_why_not(qtbot, window, folder, monkeypatch, tmp_path):
    from invgui.ui.widgets import folders

    view, panel = open_folder(window, monkeypatch, folder)
    view.tabs.setCurrentIndex(0)                   # the session's tab in sight: the open folder is exported
    target = tmp_path / "paper" / "fig7.png"
    target.parent.mkdir()
    monkeypatch.setattr(folders, "save_dialog", lambda *a, **k: (str(target), "PNG (*.png)"))
    window.acts.export_evaluation.trigger()
    names = sorted(p.name for p in target.parent.iterdir())
    assert names == ["fig7.csv", "fig7.png", "fig7.svg", "fig7.tex", "fig7_sheet_blocks.1.png",
                     "fig7_sheet_blocks.5.png"]
    assert (target.parent / "fig7.csv").read_bytes() == (folder / "summary.csv").read_bytes()
    tex = (target.parent / "fig7.tex").read_text()
    assert r"\toprule" in tex and tex.count(r"\textbf{") == 2 * 5 and "judge dist." in tex   # best of 2 per layer
    # Names with LaTeX's special characters are escaped ("_" outside math stops pdflatex).
    assert r"\caption{efficientnet\_lite0: mean $\pm$ std over 3 images" in tex
    assert "efficientnet_lite0" not in tex
    assert "<svg" in (target.parent / "fig7.svg").read_text()
    from invgui.core.images import load_image
    from invgui.ui.widgets.figures import FIGURE_SCALE, FIGURE_SIZE

    assert load_image(str(target)).shape[:2] == (FIGURE_SIZE[1] * FIGURE_SCALE, FIGURE_SIZE[0] * FIGURE_SCALE)
    assert "wrote 6 files" in panel.said.text()
    # A folder that cannot be written: said, nothing written.
    n = len(window.errors)
    assert panel.export_figures(tmp_path / "missing" / "fig.png") is None
    assert len(window.errors) == n + 1 and "does not exist" in window.errors[-1]
    assert not (tmp_path / "missing").exists()


def test_an_unfinished_evaluation_shows_its_rows_so_far_and_reload_finishes_it(qtbot, window, folder, monkeypatch,
                                                                              tmp_path):
    out = tmp_path / "running"

    def stop_after_five(p):
        if p.done == 5:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        E.run(plan(E.open_results(folder).plan.data), out, tick=stop_after_five)
    with (out / "runs.csv").open("a") as f:         # a row being written now: left as it is
        f.write("5,/x.png,blocks.1,optim")
    cut = (out / "runs.csv").read_bytes()
    view, panel = open_folder(window, monkeypatch, out)
    assert "5 runs so far" in panel.header.text() and (out / "runs.csv").read_bytes() == cut
    t = panel.summary_table
    assert [cell(t, i, 2) for i in range(4)] == ["3", "2", "0", "0"] and cell(t, 0, 3) == "—"
    assert not panel.plot.getPlotItem().listDataItems() and panel.plot_note.isVisibleTo(panel)
    t.selectRow(0)
    assert panel.runs.rowCount() == 3 and cell(panel.runs_table, 0, 2) == "—"      # no N yet
    n = len(window.errors)
    assert panel.export_figures(tmp_path / "fig.png") is None and "no summary.csv yet" in window.errors[n]
    E.run(plan(E.open_results(folder).plan.data), out)
    panel.reload()
    assert "12 runs, complete" in panel.header.text() and cell(t, 0, 3) != "—"
    assert len(panel.plot.getPlotItem().listDataItems()) == 2


def test_a_folder_that_is_not_a_results_folder_is_said(qtbot, window, monkeypatch, tmp_path):
    window.open_compare([]).set_runs(["kept"])
    view, panel = open_folder(window, monkeypatch, tmp_path)
    assert panel is None and view.tabs.count() == 1
    assert view.run_ids == ["kept"]                 # opening a folder leaves the compared runs alone
    assert "not an invgui evaluate results folder" in window.errors[-1]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "plan.json").write_text("{not json")
    assert view.open_results(bad) is None and "not readable" in window.errors[-1]


def test_a_moved_photo_still_shows_the_reconstructions(qtbot, window, folder, monkeypatch, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    view = window.open_compare([])
    panel = view.open_results(copy)
    rows = panel.results.rows
    panel.results.rows = [{**r, "image": "/gone/" + Path(r["image"]).name} for r in rows]
    panel.show_run(int(rows[0]["index"]))
    assert panel.pane.image is not None and math.isfinite(float(panel.pane.image.mean()))


@pytest.mark.slow
def test_gui_results_opens_the_folder_headless(folder, tmp_path, invgui_home):
    """`invgui gui --results DIR --screenshot PNG`: the Compare window on the folder; a folder that is
    not one is said (exit 2)."""
    import os
    import subprocess
    import sys

    from invgui.core.images import load_image

    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    shot = tmp_path / "shot.png"
    out = subprocess.run([sys.executable, "-m", "invgui", "gui", "--results", str(folder), "--screenshot", str(shot)],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    assert load_image(str(shot)).shape[:2] == (950, 1600)
    out = subprocess.run([sys.executable, "-m", "invgui", "gui", "--results", str(tmp_path), "--screenshot",
                          str(tmp_path / "x.png")], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 2 and "not an invgui evaluate results folder" in out.stderr
    assert not (tmp_path / "x.png").exists()


def test_the_window_opens_damaged_results_folders_without_dying(qtbot, tmp_path):
    """Before: a non-number or non-integer index in runs.csv crashed the whole application (the runs
    table model) and the user's unsaved runs were gone."""
    data = sample_photos(tmp_path / "data", ("astronaut", "rocket", "camera"))
    out = tmp_path / "out"
    E.run(small_plan(data), out)
    text = (out / "runs.csv").read_bytes().split(b"\n")
    text[1] = b"x" + text[1]                                # a non-integer index
    text[2] = text[2].replace(b",0.", b",nope", 1)          # a non-number
    (out / "runs.csv").write_bytes(b"\n".join(text))
    (out / "summary.csv").write_text("method,layer\nbroken\n")
    window = make_window(qtbot)
    try:
        view = window.open_compare([])
        panel = view.open_results(out)
        assert panel is not None and "damaged" in panel.header.text()
        panel.summary_table.selectRow(0)
        for col in range(panel.runs_table.model().columnCount()):
            panel.runs_table.sortByColumn(col, panel.runs_table.horizontalHeader().sortIndicatorOrder())
        (out / "plan.json").write_text("[" * 100_000)
        view.open_results(out)                             # open already: read again, the problem said
        assert "nested too deeply" in window.errors[-1]
        view.tabs.removeTab(view.tabs.indexOf(panel))
        assert view.open_results(out) is None and "nested too deeply" in window.errors[-1]
    finally:
        window.close()


def test_the_run_list_marks_a_quiet_failure_and_never_with_a_tick(qtbot, collapsed):
    from invgui.core.session import Run
    from invgui.ui.widgets.run_list import RunList

    runs = RunList()
    qtbot.addWidget(runs)
    bad = Run.of(layer="blocks.1", params=COLLAPSE, state="done", result=collapsed)
    fine = Run.of(layer="blocks.1", params=GOOD, state="done",
                  result=dataclasses.replace(collapsed, record={**collapsed.record, "warnings": []}))
    for r in (bad, fine):
        runs.add(r)
    qtbot.waitUntil(lambda: bool(runs.item(1).text()))        # alike runs are labelled once, on the next turn
    first, second = (runs.item(i).text() for i in range(2))
    assert first.startswith("⚠ ") and "\n    done: ⚠ representation error rose" in first
    assert second.startswith("✓ ") and "⚠" not in second
