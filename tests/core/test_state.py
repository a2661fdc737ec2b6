"""Issue 38: the window's state is observed per field, and what a pane shows — and what a change
of choice takes down — is derived from it, Qt-free (no window here)."""

from __future__ import annotations

import numpy as np
import pytest

from invgui.core import representations as R
from invgui.core.events import Result
from invgui.core.methods.optimize import OptimizeParams
from invgui.core.session import Run
from invgui.core.state import OBSERVED, WindowState


@pytest.fixture(scope="module")
def hog():
    return R.get("hog")


def _result(model: str, layer: str, size: int, image: str = "sample:coffee") -> Result:
    target = np.zeros((size, size, 3), np.float32)
    return Result(images=target[None], target=target, history={}, metrics={},
                  record={"representation": model, "layer": layer, "input_size": size, "image": image})


def test_each_field_has_its_own_event_with_new_and_old_values(hog):
    state = WindowState()
    got = []
    state.events.layer.connect(lambda new, old: got.append((new, old)))
    state.layer = "a"
    state.layer = "a"                        # equal: no event
    state.layer = "b"
    assert got == [("a", ""), ("b", "a")]
    image = np.zeros((4, 4, 3), np.float32)
    seen = []
    state.events.image.connect(lambda new: seen.append(new))
    state.image = image
    state.image = image                       # the same array: no event, and no pixel comparison
    state.image = image.copy()                # another array with the same pixels: news
    assert len(seen) == 2
    for name in ("rep", "layer", "image", "framing", "size", "channels", "method", "decoder", "shown_run",
                 "result", "probe_result", "random_weights", "device", "decoder_size"):
        assert name in OBSERVED and hasattr(state.events, name)


def test_setting_several_fields_tells_the_listeners_after_all_are_set(hog):
    """A new representation and its layer arrive together: no listener sees the new model with the
    old model's layer (the half-made state that drew an error in the Φ0 pane)."""
    state = WindowState(layer="blocks.5")
    seen = []
    state.events.rep.connect(lambda _new: seen.append(("rep", state.rep.name, state.layer)))
    state.events.layer.connect(lambda _new: seen.append(("layer", state.rep.name, state.layer)))
    state.set(rep=hog, layer="hog")
    assert seen == [("rep", "hog", "hog"), ("layer", "hog", "hog")]
    seen.clear()
    state.set(rep=hog, layer="hog")            # nothing changed
    assert seen == []


def _shown_state(hog) -> WindowState:
    state = WindowState()
    state.set(rep=hog, layer="hog", image_source="sample:coffee", size=64)
    return state


def test_the_panes_draw_from_the_shown_run_when_there_is_one(hog):
    """Defect 1 of issue 38, on the state: a decoder run at 96 px of another layer is shown while the
    window's choice is 64 px — what the panes draw is the run's layer, side and decoder."""
    state = _shown_state(hog)
    mine = state.shown()
    assert (mine.model, mine.layer, mine.size, mine.of_run, mine.decoder) == ("hog", "hog", 64, False, None)
    run = Run.of(method="decoder", model="hog", layer="hog", image="sample:astronaut", decoder="d.pt", size=0)
    state.shown_run = run                                          # live: the side is not known yet
    live = state.shown()
    assert (live.of_run, live.image, live.decoder, live.size) == (True, "sample:astronaut", "d.pt", 0)
    state.result = _result("hog", "hog", 96, "sample:astronaut")
    done = state.shown()
    assert (done.size, done.of_run, done.target.shape) == (96, True, (96, 96, 3))
    assert "run" in done.whose and "window" in mine.whose
    state.shown_run = None
    state.result = None
    opt = Run.of(method="optimize", model="hog", layer="hog", image="sample:coffee",
                 params=OptimizeParams(size=48))
    state.shown_run = opt
    assert state.shown().size == 48                                # a live optimisation: its own side


def test_what_a_change_of_choice_takes_down(hog):
    state = _shown_state(hog)
    run = Run.of(method="decoder", model="hog", layer="hog", image="sample:coffee", decoder="d.pt", size=0)
    state.set(shown_run=run, result=_result("hog", "hog", 64))
    assert state.stale() == (False, False)
    state.image_source = "sample:astronaut"
    assert state.stale() == (True, False)                          # the shown result is of another image
    state.image_source = "sample:coffee"
    state.probe_result = _result("lbp", "lbp", 64)
    assert state.stale() == (False, True)
    state.image_source = "sample:astronaut"
    with state.keeping_shown():                                    # a restore follows the run: nothing taken down
        assert state.stale() == (False, False)
    assert state.stale() == (True, True)


def test_a_value_no_view_can_draw_is_refused_before_anyone_is_told():
    """A script's `win.state.method = "nope"` failed inside a view's redraw (a psygnal
    EmitLoopError around the registry's error); now the state refuses it and nothing is emitted."""
    from invgui.core.errors import InvguiError

    state = WindowState()
    seen = []
    state.events.connect(lambda info: seen.append(info.signal.name))
    with pytest.raises(InvguiError, match="the window offers optimize, decoder, hybrid"):
        state.method = "nope"
    with pytest.raises(InvguiError, match="crop or fit"):
        state.framing = "stretch"
    with pytest.raises(InvguiError):
        state.set(layer="blocks.1", method="probe")   # a method, but not a page of the window's: all or nothing
    assert (state.method, state.framing, state.layer, seen) == ("optimize", "crop", "", [])
    state.method = "hybrid"
    assert seen == ["method"]
