"""The window's controller alone (no window): queue, worker thread and background autosave."""

import pytest

from invgui.core.autosave import AutosaveStore, autosave_path
from invgui.core.session import QueueError, Run, Session

pytestmark = pytest.mark.gui


def _run(iters=2, image="sample:coffee"):
    return Run(method="optimize", model="hog", layer="hog", image=image, params={"iters": iters, "size": 48})


def test_controller_runs_the_queue_through_the_worker_and_autosaves(qtbot, invgui_home):
    from invgui.ui.controller import Controller

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
    assert not c.worker.thread.isRunning()


def test_a_scripted_controller_never_autosaves(qtbot, invgui_home):
    from invgui.ui.controller import Controller

    c = Controller(autosave=False)
    c.queue.submit(_run())
    assert c.autosave(wait=True) is None
    c.shutdown()
    assert not autosave_path().exists()


def test_a_run_submitted_as_the_worker_goes_idle_keeps_its_result(qtbot, invgui_home):
    """The worker's idle reaches the GUI thread as two queued slots (busy cleared, then the
    controller's): a run submitted between them (a script waiting on running()) lost its result."""
    from invgui.ui.controller import Controller

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
