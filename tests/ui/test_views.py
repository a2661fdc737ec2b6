"""Issue 38: the window's views are drawn from one observed state, so no pane shows what is no
longer true.  Each test here is one of the stale panes found by walking the window (they failed
on the code before the views subscribed), driven through the real widgets and worker."""

import pytest
from PySide6.QtCore import Qt

pytestmark = pytest.mark.gui


def _window(qtbot, restore=False):
    from invgui.ui.main.window import MainWindow

    w = MainWindow(restore=restore)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(w.background.idle, timeout=30_000)
    return w


def _run(qtbot, w):
    with qtbot.waitSignal(w.runEnded, timeout=120_000):
        qtbot.mouseClick(w.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.running(), timeout=30_000)
    qtbot.waitUntil(w.background.idle, timeout=30_000)
    return w.shown_run


def _grid(w, layer, size):
    h, wd = w.rep.layer_info(layer, size).layout.grid
    return (h, wd)


def test_the_feature_map_pane_shows_the_selected_runs_layer_and_side(qtbot):
    """Defect 1: selecting a blocks.1 run showed its reconstruction beside Φ0 of the tree's layer
    (blocks.5), and a decoder run at another side beside the window's side's map."""
    w = _window(qtbot)
    try:
        w.form.set_value("size", 96)
        w.form.set_value("iters", 2)
        w.set_layer("blocks.1")
        opt = _run(qtbot, w)
        w.set_method("decoder")                       # the shipped blocks.1 decoder, at 64 px
        w.decoder_panel.size_box.setValue(64)
        dec = _run(qtbot, w)
        assert dec.result.record["input_size"] == 64
        w.set_layer("blocks.5")                       # the tree moves on; its Φ0 is drawn
        qtbot.waitUntil(w.background.idle, timeout=30_000)
        pane = w.feature_pane
        assert "blocks.5" in pane.title_text and "window's choice" in pane.title_text
        w.run_list.select(opt.id)                     # the user clicks the blocks.1 run
        w.show_run(opt)
        qtbot.waitUntil(w.background.idle, timeout=30_000)
        assert w.recon_pane.image is not None and "blocks.1" in w.recon_pane.title_text
        assert "blocks.1" in pane.title_text and "shown run" in pane.title_text, pane.title_text
        assert pane.shape == _grid(w, "blocks.1", 96)
        w.show_run(dec)
        qtbot.waitUntil(w.background.idle, timeout=30_000)
        assert "blocks.1" in pane.title_text and pane.shape == _grid(w, "blocks.1", 64)
        assert w.layer == "blocks.5" and w.layer_tree.current_layer() == "blocks.5"   # the choice stays
    finally:
        w.close()


def test_the_hybrid_page_names_the_decoder_of_the_representation_now_chosen(qtbot):
    """Defect 2: after switching from EfficientNet-Lite0 blocks.5 to HOG, the Hybrid page still
    named efficientnet_lite0-blocks.5.pt while the run would use hog.pt."""
    w = _window(qtbot)
    try:
        w.set_layer("blocks.5")
        w.set_method("hybrid")
        assert "efficientnet_lite0-blocks.5.pt" in w.hybrid_label.text()
        w.set_model("hog")
        assert w.state.decoder.endswith("hog.pt")
        assert "hog.pt" in w.hybrid_label.text() and "efficientnet" not in w.hybrid_label.text()
        assert w.requests.request().decoder == w.state.decoder       # what it says is what runs
        w.set_model("efficientnet_lite0")            # back: the default layer has its own (issue 40)
        assert w.layer == "blocks.3" and "efficientnet_lite0-blocks.3.pt" in w.hybrid_label.text()
        w.set_layer("blocks.4")                      # a layer without one
        assert "No decoder" in w.hybrid_label.text()
    finally:
        w.close()


def test_a_restart_brings_back_the_shown_runs_timm_model_and_layer(qtbot, invgui_home):
    """Defect 3: after a restart the window sat on EfficientNet blocks.3 while it showed a run of
    a timm transformer (the docs promise the shown run's representation, layer and method)."""
    w = _window(qtbot, restore=True)
    try:
        assert w.models.open_timm("vit_tiny_patch16_224", None)
        w.form.set_value("size", 64)
        w.form.set_value("iters", 2)
        w.set_layer("blocks.2")
        run = _run(qtbot, w)
        assert (run.model, run.layer, run.random_weights) == ("timm:vit_tiny_patch16_224", "blocks.2", True)
        w.set_model("efficientnet_lite0", random_weights=False)   # the user moves on, then quits
        w.show_run(run)
        assert w.controller.autosave(wait=True) is not None or not w.controller.queue.changed
    finally:
        w.close()
    again = _window(qtbot, restore=True)
    try:
        qtbot.waitUntil(lambda: again.rep is not None and again.rep.name == run.model, timeout=60_000)
        assert again.shown_run is not None and again.shown_run.id == run.id
        assert again.layer == "blocks.2" and again.state.random_weights and again.random_weights.isChecked()
        assert again.model_box.currentData() == run.model
        qtbot.waitUntil(again.background.idle, timeout=30_000)
        assert "blocks.2" in again.feature_pane.title_text and "shown run" in again.feature_pane.title_text
    finally:
        again.close()


def _ui_sources():
    from pathlib import Path

    import invgui.ui

    return sorted(Path(invgui.ui.__file__).parent.rglob("*.py"))


def test_compare_says_what_a_sweep_starts_from_as_the_window_changes(qtbot):
    """Compare subscribes to the state too: its sweep's "From" line follows a layer, size and method
    changed in the window, with no call from the window (a sweep queued after such a change used
    the new settings without a word in Compare)."""
    w = _window(qtbot)
    try:
        cv = w.open_compare([])
        said = cv.sweep_template.text()
        assert w.state.layer in said and f"{w.state.input_side} px" in said
        w.state.layer = "blocks.1"
        w.form.set_value("size", 96)
        assert "blocks.1" in cv.sweep_template.text() and "96 px" in cv.sweep_template.text()
        from invgui.core.methods.registry import method

        w.state.method = "decoder"
        assert method("decoder").word in cv.sweep_template.text().split(" · ")
    finally:
        w.close()


def test_no_constructor_in_the_ui_takes_more_than_six_parameters():
    """Issue 38 §2: a helper takes the shared context and the widgets it draws on, not a dozen
    window callbacks (ModelChoice took 17, RunDisplay 14)."""
    import ast

    over = []
    for path in _ui_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            for f in node.body:
                if isinstance(f, ast.FunctionDef) and f.name == "__init__":
                    a = f.args
                    n = len(a.posonlyargs) + len(a.args) - 1 + len(a.kwonlyargs) + bool(a.vararg) + bool(a.kwarg)
                    if n > 6:
                        over.append(f"{path.name}: {node.name} takes {n}")
    assert not over, over


def test_no_view_is_refreshed_by_a_call_from_elsewhere():
    """Issue 38: the views subscribe to the state; the old fan-out (set_layer calling five refresh
    functions, and each forgotten call a stale pane) is gone."""
    import re

    fan_out = re.compile(r"\.(features\.update|display\.clear_stale|display\.show_original|_update_labels|"
                         r"decoder_panel\.refresh|models\.refresh_tree|features\.receptive_field|"
                         r"features\.invalidate)\(")
    found = [f"{p.name}:{i}: {line.strip()}" for p in _ui_sources()
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if fan_out.search(line)]
    assert not found, found


def test_the_command_line_and_the_window_offer_the_registrys_methods(qtbot):
    from invgui.cli import build_parser
    from invgui.core.methods.registry import window_methods

    parser = build_parser()
    invert = next(a for a in parser._subparsers._group_actions[0].choices["invert"]._actions
                  if a.dest == "method")
    assert list(invert.choices) == [m.name for m in window_methods()]
    assert all(m.title in invert.help for m in window_methods())


HELPERS = {"RunDisplay": "run_display", "ModelChoice": "model_choice", "Requests": "requests",
           "Exporters": "exporters", "SessionFiles": "session_files", "RunActions": "run_actions",
           "FeatureDisplay": "feature_display"}


def test_the_window_helpers_take_narrow_inputs_not_the_window():
    """Issue 28 §3 (and 38): each helper takes the shared context and the widgets it draws on —
    never the whole MainWindow to reach into (``self`` in the window, ``w`` where views are made)."""
    import ast
    from pathlib import Path

    import invgui.ui

    root = Path(invgui.ui.__file__).parent / "main"
    for maker in ("window.py", "views.py"):
        tree = ast.parse((root / maker).read_text(encoding="utf-8"))
        whole = [f"{node.func.id} (line {node.lineno})" for node in ast.walk(tree)
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in HELPERS
                 and any(isinstance(a, ast.Name) and a.id in ("self", "w") for a in node.args)]
        assert whole == [], f"{maker}: helpers given the whole window: " + ", ".join(whole)
    for module in HELPERS.values():
        source = (root / f"{module}.py").read_text(encoding="utf-8")
        uses = [n.lineno for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Name) and n.value.id == "self" and n.attr == "w"]
        assert uses == [], f"ui/main/{module}.py reaches into the window (self.w) at lines {uses}"
