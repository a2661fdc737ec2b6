"""The window's controller alone (no window): queue, worker thread and background autosave."""

import pytest

from invgui.core.autosave import AutosaveStore, autosave_path
from invgui.core.session import QueueError, Run, Session

pytestmark = pytest.mark.gui


def _run(iters=2, image="sample:coffee"):
    return Run.of(method="optimize", model="hog", layer="hog", image=image, params={"iters": iters, "size": 48})


def test_controller_runs_the_queue_through_the_worker_and_autosaves(qtbot, invgui_home):
    from invgui.ui.threads.controller import Controller

    c = Controller()
    events = []
    c.runStarted.connect(lambda r: events.append(("started", r.id)))
    c.runFinished.connect(lambda r, res: events.append(("finished", r.id)))
    c.cannotStart.connect(lambda r, m: events.append(("cannot", r.id)))
    a, b = c.submit(_run()), c.submit(_run(3))
    assert a.state == "running" and b.state == "queued" and c.running()
    with pytest.raises(QueueError):
        c.remove(a.id)
    with pytest.raises(QueueError):
        c.replace_session(Session())
    bad = c.submit(_run(image=str(invgui_home / "gone.png")))
    qtbot.waitUntil(lambda: not c.running() and bad.state == "failed", timeout=120_000)
    assert a.state == b.state == "done" and len(b.result.history["total"]) == 3
    assert events[:4] == [("started", a.id), ("finished", a.id), ("started", b.id), ("finished", b.id)]
    assert ("cannot", bad.id) in events and "gone.png" in bad.message
    assert c.queue.changed and c.autosave(wait=True) == autosave_path() and autosave_path().exists()
    assert not c.queue.changed and c.autosave() is None                # nothing changed since
    assert len(AutosaveStore().recover().session.runs) == 3
    c.shutdown()
    assert not c.worker.qthread.isRunning()


def test_a_scripted_controller_never_autosaves(qtbot, invgui_home):
    from invgui.ui.threads.controller import Controller

    c = Controller(autosave=False)
    c.queue.submit(_run())
    assert c.autosave(wait=True) is None
    c.shutdown()
    assert not autosave_path().exists()


def test_a_run_submitted_as_the_worker_goes_idle_keeps_its_result(qtbot, invgui_home):
    """The worker's idle reaches the GUI thread as two queued slots (busy cleared, then the
    controller's): a run submitted between them (a script waiting on running()) lost its result."""
    from invgui.ui.threads.controller import Controller

    c = Controller(autosave=False)
    w = c.worker.worker
    late = []
    w.idle.disconnect(c._on_idle)
    w.idle.connect(lambda: late or late.append(c.submit(_run(3))))   # between the two slots, once
    w.idle.connect(c._on_idle)
    first = c.submit(_run(2))
    qtbot.waitUntil(lambda: bool(late) and late[0].state in ("done", "failed", "stopped") and not c.running(),
                    timeout=120_000)
    assert first.state == "done" and late[0].state == "done", late[0].message
    assert late[0].result is not None and len(late[0].result.history["total"]) == 3
    c.shutdown()


def test_a_sweeps_runs_that_differ_in_image_or_subset_run_as_one_batch(qtbot, invgui_home):
    """Runs of one sweep with the same layer and parameters but for the image and the neuron
    subset are computed together (one job, one batch); each gets its own result; runs that differ
    in more run after them, each alone; a run whose image is gone fails alone."""
    from invgui.ui.threads.controller import Controller

    c = Controller(autosave=False)
    started, finished, steps = [], [], []
    c.runStarted.connect(lambda r: started.append(r.id))
    c.runFinished.connect(lambda r, res: finished.append((r.id, res.record.get("batch_index"))))
    c.steps.connect(lambda s: steps.extend(s))
    a, b = _run(3), _run(3, image="sample:chelsea")
    sub = Run.of(method="optimize", model="hog", layer="hog", image="sample:astronaut",
              params={"iters": 3, "size": 48, "channels": "0-9"})
    gone = _run(3, image=str(invgui_home / "gone.png"))
    other = _run(4)
    runs = c.submit_batch([a, b, gone, sub, other])
    assert [r.state for r in runs] == ["running", "running", "failed", "running", "queued"]
    assert c.active_runs == [a, b, sub]
    qtbot.waitUntil(lambda: not c.running() and other.state == "done", timeout=120_000)
    assert [r.state for r in (a, b, sub)] == ["done"] * 3
    assert started == [a.id, other.id]
    assert finished[:3] == [(a.id, 0), (b.id, 1), (sub.id, 2)]
    assert {s.item for s in steps} == {0}              # the live view follows the batch's first run
    assert sub.result.record["params"]["channels"] == "0-9" and a.result.record["params"]["channels"] == ""
    assert len(other.result.history["total"]) == 4 and "batch" not in other.result.record
    assert a.result.images.shape == (1, 48, 48, 3) and not (a.result.images == b.result.images).all()
    c.shutdown()


def test_stopping_a_batch_stops_each_of_its_runs_with_what_it_reached(qtbot, invgui_home):
    from invgui.ui.threads.controller import Controller

    c = Controller(autosave=False)
    runs = c.submit_batch([_run(100000), _run(100000, image="sample:chelsea")])
    c.steps.connect(lambda s: c.stop())
    qtbot.waitUntil(lambda: not c.running(), timeout=120_000)
    assert [r.state for r in runs] == ["stopped", "stopped"]
    assert all(r.result is not None and 0 < len(r.result.history["total"]) < 100000 for r in runs)
    c.shutdown()


def test_a_failing_batch_fails_each_of_its_runs_once(qtbot, invgui_home, monkeypatch):
    from invgui.core.methods import optimize
    from invgui.ui.threads.controller import Controller

    def broken(*a, **k):
        raise RuntimeError("out of memory (simulated)")
        yield

    monkeypatch.setattr(optimize, "run_batch", broken)
    c = Controller(autosave=False)
    told = []
    c.batchFailed.connect(lambda what, n, failed: told.append((what, n, failed)))
    runs = c.submit_batch([_run(), _run(image="sample:chelsea")])
    qtbot.waitUntil(lambda: not c.running() and bool(told), timeout=120_000)
    assert [r.state for r in runs] == ["failed", "failed"]
    assert told[0][1] == 2 and len(told[0][2]) == 2 and all("out of memory" in f for f in told[0][2])
    c.shutdown()
