"""Issue 37 §5: names say what differs (the preset first), file names carry no ':', the View menu
shows and hides each panel, and Help has a quick start with the shortcuts."""

import dataclasses

import pytest

from invgui.core.methods.optimize import PRESETS
from invgui.core.session import Run, distinct_labels


def test_runs_of_different_presets_are_named_by_their_preset():
    """Before: runs of default, fourier-tv, lucent and dip were all listed as '(accumulator_decay …'."""
    runs = [Run.of(layer="blocks.3", params=dataclasses.replace(PRESETS.get(n), size=96))
            for n in ("default", "fourier-tv", "lucent", "dip")]
    labels = distinct_labels(runs)
    assert [labels[r.id].rsplit("(", 1)[1] for r in runs] == ["preset default)", "preset fourier-tv)",
                                                               "preset lucent)", "preset dip)"]
    # not presets: what differs, the most telling first
    a, b = (Run.of(layer="blocks.3", params={"lr": lr, "accumulator_decay": d}) for lr, d in ((0.1, 0.9), (0.2, 0.8)))
    assert distinct_labels([a, b])[a.id].endswith("(lr 0.1, accumulator_decay 0.9)")


def test_a_suggested_file_name_has_no_colon(invgui_home):
    from invgui.ui.widgets.folders import suggest

    name = suggest("exports", "chelsea timm:swin_tiny_patch4 layers.1.png").rsplit("/", 1)[1]
    assert name == "chelsea_timm_swin_tiny_patch4_layers.1.png"


@pytest.mark.gui
def test_the_view_menu_toggles_each_panel_and_help_lists_the_shortcuts(qtbot):
    from PySide6.QtWidgets import QDockWidget, QMessageBox
    from ui_helpers import make_window

    w = make_window(qtbot)
    try:
        assert set(w.acts.docks) == {"layers_dock", "runs_dock", "params_dock"}
        dock, act = w.findChild(QDockWidget, "params_dock"), w.acts.docks["params_dock"]
        act.trigger()
        assert not dock.isVisible()
        act.trigger()
        assert dock.isVisible()
        w.acts.quick_start.trigger()
        box = w.findChild(QMessageBox, "quick_start")
        text = box.text()
        assert "Quick start" in text and "Ctrl+R" in text and "Run" in text and "Ctrl+E" in text
        box.close()
    finally:
        w.close()


def test_sheet_captions_are_drawn_in_glyphs_the_font_has_and_fit_their_cell():
    """Before: the exported contact sheet printed '128?224 px' (OpenCV's font has no '→') and long
    captions ran into the next cell."""
    import cv2

    from invgui.core.compare import ascii_text, fitted_text

    assert ascii_text("128→224 px · rep 0.301 · 18.1 dB / 0.52 ± 0.01") == \
        "128->224 px | rep 0.301 | 18.1 dB / 0.52 +/- 0.01"
    long = "128→224 px · rep 0.301 · nre 0.512 · 18.1 dB / 0.52 · 1.2 s (batch of 16)"
    for width in (120, 200, 500):
        text, scale = fitted_text(long, width, 0.7, 1)
        assert text.isascii() and "?" not in text
        assert cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] <= width
    assert fitted_text("short", 500, 0.7, 1) == ("short", 0.7)                   # what fits is left alone


@pytest.mark.gui
def test_the_depth_plot_draws_each_method_in_its_own_colour_and_marker_with_the_legend_outside(qtbot):
    """Before: decoder and optimisation shared blue, HOG's optimisation and the hybrid purple, colours
    changed as runs arrived, and the legend sat over the data."""
    import pyqtgraph as pg

    from invgui.ui.widgets.figures import STYLES, curve_style, draw_depth, layer_ticks

    kinds = [k for k in STYLES if k != "optimize/pixel"]
    assert len({curve_style(k)[0] for k in kinds}) == len(kinds) == len({curve_style(k)[1] for k in kinds})
    rows = [{"method": m, "layer": layer, "depth": d, "n": 3, "nre_mean": v, "nre_std": 0.05}
            for m, v0 in (("optimize", 0.3), ("decoder", 0.2), ("hybrid", 0.25))
            for layer, d, v in (("blocks.1", 0.3, v0), ("blocks.5", 0.8, v0 + 0.4))]
    w = pg.PlotWidget(background="w")
    qtbot.addWidget(w)
    w.resize(900, 540)
    w.show()
    items = draw_depth(w.getPlotItem(), rows)
    reversed_items = draw_depth(w.getPlotItem(), rows[::-1])          # another order: the same styles
    style = [(i.opts["symbolBrush"], i.opts["symbol"]) for i in items]
    assert len(set(style)) == 3
    assert sorted(style) == sorted((i.opts["symbolBrush"], i.opts["symbol"]) for i in reversed_items)
    qtbot.wait(20)
    plot = w.getPlotItem()
    # outside the data: under the bottom axis (a pixel of the layout's rounding)
    assert plot.legend.sceneBoundingRect().top() >= plot.getAxis("bottom").sceneBoundingRect().bottom() - 1
    assert [t for _, t in plot.getAxis("bottom")._tickLevels[0]] == ["blocks.1", "blocks.5"]
    # close layers: one name, the others minor ticks
    assert layer_ticks({0.10: "blocks.1", 0.13: "blocks.2", 0.3: "blocks.3"}) == \
        [[(0.10, "blocks.1"), (0.3, "blocks.3")], [(0.13, "")]]


@pytest.mark.gui
def test_the_parameters_dock_says_what_a_preset_is_puts_the_prior_first_and_greys_what_does_not_apply(qtbot):
    from PySide6.QtWidgets import QGroupBox

    from invgui.ui.widgets.param_form import ParamForm

    form = ParamForm(PRESETS)
    qtbot.addWidget(form)
    form.preset_box.setCurrentText("dip")
    assert "Deep Image Prior" in form.preset_note.text()
    assert [b.title() for b in form.findChildren(QGroupBox)][:2] == ["Objective", "Prior"]
    assert form.widgets["dip_width"].isEnabled() and not form.widgets["decay"].isEnabled()
    form.preset_box.setCurrentText("lucent")                       # the Fourier prior
    assert form.widgets["decay"].isEnabled() and not form.widgets["dip_width"].isEnabled()
    form.widgets["parameterisation"].setCurrentText("pixel")        # changed by hand
    assert not form.widgets["decay"].isEnabled() and not form.widgets["dip_noise"].isEnabled()
    assert all(PRESETS.note(n) for n in PRESETS.names())            # every preset says what it is


@pytest.mark.gui
def test_a_prior_chosen_in_the_form_brings_its_schedule_and_a_preset_keeps_its_own(qtbot):
    """Issue 39 §2: the form asks the parameters what follows from a choice
    (``OptimizeParams.changed``) — no dock applies a prior's schedule itself — and a preset set as
    a whole (fourier-tv: the Fourier prior with the 2015 regularisers) keeps its own weights."""
    from invgui.ui.widgets.param_form import ParamForm

    form = ParamForm(PRESETS)
    qtbot.addWidget(form)
    form.preset_box.setCurrentText("fourier-tv")
    assert form.values() == PRESETS.get("fourier-tv")             # not lucent's zero TV and α-norm
    form.preset_box.setCurrentText("default")
    form.set_value("iters", 7)
    form.widgets["parameterisation"].setCurrentText("fourier")     # as the user picks it
    v = form.values()
    assert (v.optimizer, v.lr, v.tv_weight, v.alpha_weight, v.iters) == ("adam", 0.05, 0.0, 0.0, 7)
    form.set_value("tv_weight", 2.0)                               # a weight typed after the choice stays
    form.widgets["optimizer"].setCurrentText("sgd")                # another choice: no schedule follows
    assert (form.values().tv_weight, form.values().lr) == (2.0, 0.05)
    form.widgets["parameterisation"].setCurrentText("pixel")
    assert (form.values().optimizer, form.values().lr) == ("sgd", PRESETS.get("default").lr)


def test_the_closest_run_of_each_compare_column_is_marked():
    """Compare's captions had no key and no best cell: ★ marks the closest to its photo per column."""
    import numpy as np

    from invgui.core import compare as C
    from invgui.core.events import Result

    def run(layer, method, rep):
        r = Run.of(layer=layer, method=method, state="done")
        r.result = Result(images=np.zeros((1, 8, 8, 3), np.float32), target=None, history={},
                          metrics={"representation_error": rep}, record={"layer": layer})
        return r
    runs = [run("blocks.1", "optimize", 0.3), run("blocks.1", "decoder", 0.9), run("blocks.5", "optimize", 0.5),
            run("blocks.5", "decoder", 0.2)]
    g = C.grid(runs, "method", "layer")
    assert C.best_per_column(g, {}) == {runs[0].id, runs[3].id}                  # by representation error
    nre = {runs[0].id: 0.8, runs[1].id: 0.4, runs[2].id: 0.9, runs[3].id: 0.7}
    assert C.best_per_column(g, nre) == {runs[1].id, runs[3].id}                 # by nre where known
    assert "★" in C.CAPTION_KEY and "nre" in C.CAPTION_KEY


@pytest.mark.gui
def test_a_timm_transformer_opens_from_the_representation_box_and_random_weights_greys_for_hand_crafted(
        qtbot, monkeypatch):
    """Before: a ViT or Swin needed the command line; "Random weights" stayed enabled for HOG and LBP,
    which have no weights."""
    from PySide6.QtWidgets import QInputDialog, QMessageBox
    from ui_helpers import make_window

    from invgui.ui.main.docks import OPEN_TIMM

    w = make_window(qtbot)
    try:
        box = w.model_box
        assert box.findData(OPEN_TIMM) >= 0
        monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("vit_tiny_patch16_224", True))

        def answer(self):                             # the weights question: "Random weights"
            self.setProperty("_clicked", next(b for b in self.buttons() if "Random" in b.text()))
        monkeypatch.setattr(QMessageBox, "exec", lambda self: answer(self))
        monkeypatch.setattr(QMessageBox, "clickedButton", lambda self: self.property("_clicked"))
        w.models.on_chosen(box.findData(OPEN_TIMM))
        qtbot.waitUntil(lambda: w.rep is not None and w.rep.name == "timm:vit_tiny_patch16_224", timeout=60_000)
        assert w.random_weights.isChecked() and "random" in w.rep.weights_info
        assert box.currentData() == "timm:vit_tiny_patch16_224" and box.findData(OPEN_TIMM) == box.count() - 1
        assert w.random_weights.isEnabled()
        assert w.set_model("hog") and not w.random_weights.isEnabled()
        n = len(w.errors)
        assert not w.models.open_timm("vit*", None) and "not a pattern" in w.errors[n]
        assert box.findData("timm:vit*") < 0
    finally:
        w.close()
