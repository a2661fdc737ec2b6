"""Runs and sessions (Qt-free): round trip, states, bad files."""

import zipfile

import numpy as np
import pytest

from invgui.core.events import Result
from invgui.core.autosave import autosave_path
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
    a = s.add(Run(method="optimize", model="hog", layer="hog", image="sample:coffee", params={"iters": 3},
                  rep_params={"cell": 8, "orientations": 9}, name="first"))
    a.result, a.state = result(0, n=2), "done"
    b = s.add(Run(method="decoder", model="lbp", layer="lbp", image="/x/y.png", decoder="/d/lbp.pt", size=64))
    b.state = "running"
    c = s.add(Run(method="optimize", model="hog", layer="hog", image="sample:chelsea"))
    c.state, c.message = "failed", "boom"
    path = s.save(tmp_path / "s.invgui")
    assert not s.dirty and s.path == path
    t = Session.load(path)
    assert [r.id for r in t.runs] == [a.id, b.id, c.id]
    ra, rb, rc = t.runs
    assert ra.name == "first" and ra.params == {"iters": 3} and ra.rep_params["cell"] == 8
    assert np.allclose(ra.result.images, a.result.images, atol=1e-3) and ra.result.images.dtype == np.float32
    assert ra.result.deviation.shape == (8, 8) and ra.result.history["total"] == [3.0, 2.0, 1.0]
    assert ra.result.metrics["psnr"] == 20.0 and ra.result.record["layer"] == "hog"
    assert rb.state == "stopped" and "in progress" in rb.message and rb.decoder == "/d/lbp.pt" and rb.size == 64
    assert rc.state == "failed" and rc.message == "boom" and rc.result is None


def test_copy_makes_a_fresh_queued_request():
    r = Run(method="optimize", model="hog", layer="hog", image="sample:coffee", params={"iters": 3}, name="x")
    r.state, r.result = "done", result()
    c = r.copy(params={"iters": 9})
    assert c.id != r.id and c.state == "queued" and c.result is None and c.params == {"iters": 9}
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
    a = q.submit(Run(method="optimize", model="hog", layer="hog", image="sample:coffee", name="a"))
    b = q.submit(Run(method="optimize", model="hog", layer="hog", image="sample:coffee", name="b"))
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
    s.add(Run(method="optimize", model="hog", layer="hog", image="x")).state = "running"
    s.add(Run(method="optimize", model="hog", layer="hog", image="x"))
    q.replace(s)
    assert [r.state for r in q.runs] == ["stopped", "stopped"] and "interrupted" in q.runs[0].message
    q.start_next()
    with pytest.raises(QueueError):
        q.get("nope")


def test_runs_that_look_alike_say_what_differs():
    from invgui.core.session import distinct_labels

    a = Run(method="optimize", model="hog", layer="hog", image="sample:coffee", params={"lr": 0.01, "iters": 5})
    b = Run(method="optimize", model="hog", layer="hog", image="sample:coffee", params={"lr": 0.02, "iters": 5})
    c = Run(method="optimize", model="hog", layer="hog", image="sample:chelsea", params={"lr": 0.02, "iters": 5})
    d = Run(method="optimize", model="hog", layer="hog", image="sample:chelsea", params={"lr": 0.02, "iters": 5})
    labels = distinct_labels([a, b, c, d])
    assert labels[a.id].endswith("(lr 0.01)") and labels[b.id].endswith("(lr 0.02)")
    assert labels[c.id] == labels[d.id] == c.label()          # the same request: nothing to tell apart
