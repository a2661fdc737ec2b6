"""Runs and sessions (Qt-free): round trip, states, bad files."""

import zipfile
from pathlib import Path

import numpy as np
import pytest

from invgui.core.autosave import autosave_path
from invgui.core.events import Result
from invgui.core.session import Run, Session, SessionError

METRICS = {"start_representation_error": 1.0, "iterations": 3, "iterations_per_second": 2.0, "seconds": 1.5}


def result(seed=0, n=1):
    rng = np.random.default_rng(seed)
    return Result(images=rng.random((n, 8, 8, 3)).astype(np.float32), target=rng.random((8, 8, 3)).astype(np.float32),
                  history={"total": [3.0, 2.0, 1.0]}, metrics={"representation_error": 0.25, "psnr": 20.0,
                                                               "seconds": 1.5, **METRICS},
                  record={"representation": "hog", "layer": "hog", "layer_shape": [31, 1, 1]}, stopped=False,
                  message="",
                  deviation=rng.random((8, 8)).astype(np.float32) if n > 1 else None)


def test_round_trip_keeps_requests_results_and_states(tmp_path):
    s = Session()
    a = s.add(Run.of(method="optimize", model="hog", layer="hog", image="sample:coffee", params={"iters": 3},
                  rep_params={"cell": 8, "orientations": 9}, name="first"))
    a.result, a.state = result(0, n=2), "done"
    b = s.add(Run.of(method="decoder", model="lbp", layer="lbp", image="/x/y.png", decoder="/d/lbp.pt", size=64))
    b.state = "running"
    c = s.add(Run.of(method="optimize", model="hog", layer="hog", image="sample:chelsea"))
    c.state, c.message = "failed", "boom"
    path = s.save(tmp_path / "s.invgui")
    assert not s.dirty and s.path == path
    t = Session.load(path)
    assert [r.id for r in t.runs] == [a.id, b.id, c.id]
    ra, rb, rc = t.runs
    assert ra.name == "first" and ra.params.iters == 3 and ra.rep_params["cell"] == 8
    assert ra.request == a.request and rb.request == b.request and rc.request == c.request     # whole requests
    assert np.allclose(ra.result.images, a.result.images, atol=1e-3) and ra.result.images.dtype == np.float32
    assert ra.result.deviation.shape == (8, 8) and ra.result.history["total"] == [3.0, 2.0, 1.0]
    assert ra.result.metrics["psnr"] == 20.0 and ra.result.record["layer"] == "hog"
    assert rb.state == "stopped" and "in progress" in rb.message and rb.decoder == "/d/lbp.pt" and rb.size == 64
    assert rc.state == "failed" and rc.message == "boom" and rc.result is None


def test_copy_makes_a_fresh_queued_request():
    r = Run.of(method="optimize", model="hog", layer="hog", image="sample:coffee", params={"iters": 3}, name="x")
    r.state, r.result = "done", result()
    c = r.copy(params={"iters": 9})
    assert c.id != r.id and c.state == "queued" and c.result is None and c.params.iters == 9
    assert c.request == r.request.replace(params=r.params.__class__(iters=9))
    d = r.copy(method="decoder", decoder="d.pt", image="sample:chelsea")         # a decoder takes no parameters
    assert d.params is None and d.image == "sample:chelsea" and d.request.images == ("sample:chelsea",)
    assert d.copy(method="optimize").params == r.params.__class__()             # and back: the defaults
    assert c.name == "" and c.label().startswith("hog · ") and "hog hog" not in c.label() and "coffee" in c.label()


def test_bad_session_files_are_clear_errors(tmp_path):
    with pytest.raises(SessionError, match="no such session"):
        Session.load(tmp_path / "missing.invgui")
    (tmp_path / "junk.invgui").write_bytes(b"junk")
    with pytest.raises(SessionError, match="not an invgui session"):
        Session.load(tmp_path / "junk.invgui")
    with zipfile.ZipFile(tmp_path / "pickle.invgui", "w") as z:            # arrays that need pickle: refused
        z.writestr("session.json", '{"invgui_session": 1, "runs": []}')
        import io
        buf = io.BytesIO()
        np.save(buf, np.array([object()], dtype=object), allow_pickle=True)
        z.writestr("arrays.npz", buf.getvalue())
    with pytest.raises(SessionError):
        Session.load(tmp_path / "pickle.invgui")
    with pytest.raises(OSError):
        Session().save(tmp_path / "no" / "such" / "dir" / "s.invgui")


def test_autosave_path_follows_invgui_home(invgui_home):
    assert autosave_path().parent.parent == invgui_home


def test_run_queue_state_rules():
    from invgui.core.session import QueueError, RunQueue

    q = RunQueue()
    seen = []
    q.listeners.append(lambda r: seen.append((r.name, r.state)))
    a = q.submit(Run.of(method="optimize", model="hog", layer="hog", image="sample:coffee", name="a"))
    b = q.submit(Run.of(method="optimize", model="hog", layer="hog", image="sample:coffee", name="b"))
    assert a.state == b.state == "queued" and q.waiting() == 2 and q.changed
    assert q.start_next() is a and a.state == "running" and q.running is a
    assert q.start_next() is None                                   # one at a time
    with pytest.raises(QueueError, match="stop it"):
        q.remove(a.id)
    with pytest.raises(QueueError, match="cannot finish a queued"):
        q.finish(b, result())
    q.finish(a, result())
    assert a.state == "done" and a.result is not None and q.running is None
    assert q.start_next() is b
    q.fail(b, "boom")
    assert b.state == "failed" and b.message == "boom"
    with pytest.raises(QueueError):
        q.fail(a, "late")                                           # a finished run cannot fail
    stopped = Result(images=np.zeros((1, 8, 8, 3), np.float32), target=None, history={}, metrics={}, stopped=True,
                     message="stopped by the user")
    c = q.rerun(a.id)
    assert c.id != a.id and c.state == "queued" and c.result is None and a.result is not None
    q.start_next()
    q.finish(c, stopped)
    assert c.state == "stopped" and c.message == "stopped by the user"
    q.rename(c.id, "  kept ")
    assert c.label() == "kept"
    q.remove(b.id)
    assert [r.name for r in q.runs] == ["a", "kept"]
    assert ("a", "running") in seen and ("b", "failed") in seen
    # The restore rule: nothing read from a file is in progress.
    s = Session()
    s.add(Run.of(method="optimize", model="hog", layer="hog", image="x")).state = "running"
    s.add(Run.of(method="optimize", model="hog", layer="hog", image="x"))
    q.replace(s)
    assert [r.state for r in q.runs] == ["stopped", "stopped"] and "interrupted" in q.runs[0].message
    q.start_next()
    with pytest.raises(QueueError):
        q.get("nope")


def test_runs_that_look_alike_say_what_differs():
    from invgui.core.session import distinct_labels

    a = Run.of(method="optimize", model="hog", layer="hog", image="sample:coffee", params={"lr": 0.01, "iters": 5})
    b = Run.of(method="optimize", model="hog", layer="hog", image="sample:coffee", params={"lr": 0.02, "iters": 5})
    c = Run.of(method="optimize", model="hog", layer="hog", image="sample:chelsea", params={"lr": 0.02, "iters": 5})
    d = Run.of(method="optimize", model="hog", layer="hog", image="sample:chelsea", params={"lr": 0.02, "iters": 5})
    labels = distinct_labels([a, b, c, d])
    assert labels[a.id].endswith("(lr 0.01)") and labels[b.id].endswith("(lr 0.02)")
    assert labels[c.id] == labels[d.id] == c.label()          # the same request: nothing to tell apart


FORMAT1 = Path(__file__).parents[1] / "data" / "format1"


def test_format_1_sessions_and_autosaves_written_by_earlier_invgui_still_open(tmp_path):
    """Issue 28 §2: sessions are format 2 now (a run holds its request); files written in format 1
    by the code before (tests/data/format1/make.py says which commit) open with the same runs."""
    import json
    import shutil

    from invgui.core.autosave import AutosaveStore
    from invgui.core.request import execute, final_result

    assert json.loads(zipfile.ZipFile(FORMAT1 / "session.invgui").read("session.json"))["invgui_session"] == 1
    shutil.copytree(FORMAT1 / "autosave", tmp_path / "autosave")
    from_file = Session.load(FORMAT1 / "session.invgui").runs
    from_autosave, notes = AutosaveStore(folder=tmp_path / "autosave").read(tmp_path / "autosave" / "session.json")
    assert notes == []
    for runs in (from_file, from_autosave.runs):
        opt, dec, hyb, bad = runs
        assert [r.id for r in runs] == ["0000opt00001", "0000dec00002", "0000hyb00003", "0000bad00004"]
        assert (opt.method, opt.model, opt.layer, opt.image, opt.name) == ("optimize", "hog", "hog", "sample:coffee",
                                                                          "coffee from HOG")
        assert opt.params.iters == 2 and opt.params.restarts == 2 and opt.rep_params == {"cell": 8, "orientations": 9}
        assert opt.state == "done" and abs(opt.result.metrics["representation_error"] - 0.8918) < 1e-3
        assert opt.result.images.shape == (2, 48, 48, 3)
        assert (dec.method, dec.decoder, dec.size, dec.framing, dec.params) == ("decoder", "hog", 64, "fit", None)
        assert dec.result.record["input_region"]["framing"] == "fit"
        assert (hyb.method, hyb.state, hyb.result, hyb.params.iters) == ("hybrid", "queued", None, 2)
        assert (bad.state, bad.message, bad.params.optimizer) == ("failed", "cannot read /nowhere/cat.png", "rmsprop")
    # What was read runs again as it ran, and saves as format 2.
    again = final_result(execute(from_file[0].request.replace(device="cpu")))
    assert abs(again.metrics["representation_error"] - opt.result.metrics["representation_error"]) < 1e-3
    out = Session(runs=from_file).save(tmp_path / "now.invgui")
    doc = json.loads(zipfile.ZipFile(out).read("session.json"))
    assert doc["invgui_session"] == 2 and doc["runs"][0]["request"]["images"] == ["sample:coffee"]
    assert [r.request for r in Session.load(out).runs] == [r.request for r in from_file]


def test_the_window_state_is_qt_free_observable_and_says_what_run_it_would_queue():
    """Issue 28 §3: what the Run button queues is computed from a Qt-free WindowState (as napari's
    ViewerModel is to its QtViewer), tested here without a window; a setting that makes no run is
    a CannotRun with the dialog's title."""
    import subprocess
    import sys

    from invgui.core import representations as R
    from invgui.core.methods.optimize import OptimizeParams
    from invgui.core.state import CannotRun, WindowState

    seen = []
    state = WindowState()
    state.events.connect(lambda info: seen.append(info.signal.name))     # every field's change, in order
    state.rep, state.layer, state.image_source = R.get("hog"), "hog", "sample:coffee"
    state.framing = "fit"
    state.framing = "fit"                                                # no change, no event
    assert seen == ["rep", "layer", "image_source", "framing"]
    p = OptimizeParams(iters=7)
    run = state.run("optimize", p, size=96, random_weights=False, decoder=None, decoder_size=64)
    assert (run.method, run.model, run.layer, run.image, run.framing, run.eval_size, run.params.iters) == \
        ("optimize", "hog", "hog", "sample:coffee", "fit", 96, 7)
    hyb = state.run("hybrid", lambda: OptimizeParams(size=48), size=96, random_weights=False, decoder="d.pt",
                    decoder_size=64)
    assert (hyb.decoder, hyb.size) == ("d.pt", 48)                   # the hybrid works at its own size
    dec = state.run("decoder", lambda: 1 / 0, size=96, random_weights=False, decoder="d.pt", decoder_size=64)
    assert (dec.params, dec.size) == (None, 64)                      # the form is not even read
    with pytest.raises(CannotRun, match="no decoder for hog hog") as e:
        state.run("decoder", p, size=96, random_weights=False, decoder=None, decoder_size=64)
    assert e.value.title == "No decoder"
    state.rep = R.get("lbp")
    with pytest.raises(CannotRun, match="Choose \\*Decoder\\*") as e:
        state.run("optimize", p, size=96, random_weights=False, decoder=None, decoder_size=64)
    template = state.run("hybrid", p, size=96, random_weights=False, decoder=None, decoder_size=64, sweep=True)
    # a sweep's template, whatever the method; an optimisation carries no decoder side (the sweep
    # takes the decoder page's from SweepContext.decoder_size)
    assert (template.method, template.size) == ("optimize", 0)
    code = ("import sys, invgui.core.state\n"
            "print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
