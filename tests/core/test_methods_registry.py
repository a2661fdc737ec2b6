"""Issue 39 §1: a method is a strategy, not a set of flags.  It prepares what it reads, makes its
own requests and says how its results read; a method added here (in the test, registered for its
duration) runs through the request layer, the command line, sessions and sweeps with no other
module touched; outside ``core/methods`` the capability fields are read in fewer than ten places
and no request is made but by ``Method.request``."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from invgui.core.events import Result
from invgui.core.methods.base import Method, Prepared, RunRequest
from invgui.core.methods.captions import Caption
from invgui.core.methods.registry import METHODS

ROOT = Path(__file__).resolve().parents[2] / "invgui"
FLAGS = {"one_pass", "uses_decoder", "from_decoder", "optimises", "one_image", "needs_probe", "batchable",
         "in_window"}
# What makes a request of a method: its name, its decoder and the decoder's side, a probe's
# parameters.  A template may hold optimisation parameters every method that takes them shares
# (an evaluation plan's): Method.request keeps them for a method of their class, drops them otherwise.
REQUEST_FIELDS = {"method", "decoder", "size", "probe"}


def _outside_methods():
    for f in sorted(ROOT.rglob("*.py")):
        path = f.relative_to(ROOT).as_posix()
        if not path.startswith("core/methods/"):
            yield path, f.read_text(encoding="utf-8")


def flag_reads(source: str, path: str) -> list[str]:
    return [f"{path}:{n.lineno}: .{n.attr}" for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.Attribute) and n.attr in FLAGS]


def hand_made_requests(source: str, path: str) -> list[str]:
    """``RunRequest(...)`` given a method's fields (a template gives none), and ``x.replace(...)``
    or ``x.copy(...)`` changing the method."""
    found = []
    for n in ast.walk(ast.parse(source)):
        if not isinstance(n, ast.Call):
            continue
        name = n.func.id if isinstance(n.func, ast.Name) else n.func.attr if isinstance(n.func, ast.Attribute) else ""
        words = {k.arg for k in n.keywords}
        if (name == "RunRequest" and words & REQUEST_FIELDS) or (name in ("replace", "copy") and "method" in words):
            found.append(f"{path}:{n.lineno}: {name}({', '.join(sorted(w for w in words if w))})")
    return found


def test_capability_flags_are_read_in_fewer_than_ten_places_outside_the_methods():
    found = [hit for path, text in _outside_methods() for hit in flag_reads(text, path)]
    assert len(found) < 10, "ask the method (Method.request/prepare/refuses/side/chunks/tell):\n" + "\n".join(found)
    # the count sees a read (on the code before this issue it found 43)
    assert flag_reads("if spec.one_pass and m.uses_decoder: pass", "x.py") == ["x.py:1: .one_pass",
                                                                               "x.py:1: .uses_decoder"]


def test_no_request_is_made_outside_method_request():
    found = [hit for path, text in _outside_methods() for hit in hand_made_requests(text, path)]
    assert found == [], "make it with Method.request(template, ...):\n" + "\n".join(found)
    # the check finds what it guards against (the window's probe request was made this way)
    assert hand_made_requests("run.request.replace(device=d, method=PROBE.name, probe=pp)", "x.py") == [
        "x.py:1: replace(device, method, probe)"]
    assert hand_made_requests("RunRequest(method=m, model='hog')", "x.py") == ["x.py:1: RunRequest(method, model)"]
    assert hand_made_requests("RunRequest(model='hog', images=('a',))", "x.py") == []


# -- a fifth method, defined here -----------------------------------------------------------------

class _GreyCaption(Caption):
    def head(self, result, m, word, spread):
        return [f"{word}: representation error of mid-grey {m.representation_error:.4f}"]

    def cost(self, result, m):
        return "nothing computed"

    def html(self, result, m, word, where, image, spread):
        return f"{where} — {word}<br>representation error <b>{m.representation_error:.3f}</b><br>{image}"

    def progress(self, result, m):
        return "done: mid-grey"


def _grey(prep: Prepared, should_stop=None):
    """The baseline every inversion should beat: a mid-grey image, and how far its features are."""
    import torch

    from invgui.core import metrics
    from invgui.core.images import resize_center_crop

    rep, layer, size = prep.rep, prep.layer, prep.size
    target = resize_center_crop(prep.images[0], size)
    x = torch.full((1, 3, size, size), 0.5)
    with torch.no_grad():
        phi0 = rep.features(torch.from_numpy(np.ascontiguousarray(target[None])).permute(0, 3, 1, 2), layer)
        err = float(metrics.representation_error(rep.features(x, layer), phi0).mean())
    yield Result(images=x.permute(0, 2, 3, 1).numpy(), target=target, history={},
                 metrics={"representation_error": err, "seconds": 0.0},
                 record={"method": "grey", "representation": rep.name, "layer": layer,
                         "layer_shape": list(rep.layer_info(layer, size).shape or ()), "input_size": size,
                         "eval_size": prep.eval_size})


GREY = Method("grey", "Mid-grey (a baseline)", "grey baseline", _grey, caption=_GreyCaption(),
              metric_keys=("representation_error",), help="a mid-grey image: the floor every method should beat")


@pytest.fixture
def grey(monkeypatch):
    monkeypatch.setitem(METHODS, GREY.name, GREY)
    return GREY


def test_a_method_defined_in_a_test_runs_everywhere_without_another_module_touched(grey, tmp_path, capsys):
    from invgui.cli import main
    from invgui.core import compare
    from invgui.core import representations as R
    from invgui.core.request import execute, final_result
    from invgui.core.results import ended, progress, summary
    from invgui.core.session import Run, Session
    from invgui.core.state import WindowState

    # its request, made by itself: no decoder or decoder side rides along
    template = RunRequest(model="hog", images=("sample:coffee",), decoder="d.pt", size=64)
    req = grey.request(template)
    assert (req.method, req.decoder, req.size, req.params) == ("grey", None, 0, None)
    res = final_result(execute(req))
    assert res.images.shape == (1, 224, 224, 3) and np.allclose(res.images, 0.5)
    assert res.record["device"] == "cpu"
    assert res.record["warnings"] == ["image is flat: one colour, nothing of the photo"]
    # told in its own words everywhere
    assert summary(res).startswith("grey baseline: representation error of mid-grey ")
    assert "nothing computed" in summary(res) and "grey baseline" in summary(res, "html")
    assert (ended(res), progress(res)) == ("done", "done: mid-grey")
    # the command line offers it
    out = tmp_path / "g.png"
    assert main(["invert", "--method", "grey", "--model", "hog", "--out", str(out), "sample:coffee"]) == 0
    assert out.exists() and "grey baseline: representation error of mid-grey" in capsys.readouterr().out
    # a session keeps it
    session = Session([Run(request=req, state="done", result=res)])
    path = session.save(tmp_path / "s.invgui", remember=False)
    (back,) = Session.load(path).runs
    assert back.method == "grey" and back.result.metrics["representation_error"] == pytest.approx(
        res.metrics["representation_error"], rel=1e-6)
    # the window's state and a methods × images sweep make its runs
    state = WindowState()
    state.rep, state.layer, state.image_source = R.get("hog"), "hog", "sample:coffee"
    run = state.run("grey", lambda: 1 / 0, decoder="d.pt")          # takes no parameters: the form is not read
    assert (run.method, run.decoder, run.params) == ("grey", None, None)
    runs = compare.sweep_images(run, ["grey"], ["sample:coffee", "sample:chelsea"], decoder="d.pt", size=64)
    assert [(r.method, r.image, r.decoder) for r in runs] == [("grey", "sample:coffee", None),
                                                             ("grey", "sample:chelsea", None)]
