"""Issue 38 §3: every job off the GUI thread but runs goes through one vocabulary (ui/threads/jobs.py)."""

import gc
import re
import threading
import time
from pathlib import Path

import pytest

UI = Path(__file__).resolve().parents[2] / "invgui" / "ui"


def test_no_thread_of_its_own_is_started_in_the_ui_but_through_the_jobs_module():
    """Five ad-hoc threads (model load, autosave, Compare's distance and contact sheet, the
    background loop) each had their own start, join and error path."""
    found = []
    for path in UI.rglob("*.py"):
        if path.name in ("jobs.py", "worker.py"):        # the vocabulary, and the runs' one long-lived thread
            continue
        text = path.read_text(encoding="utf-8")
        found += [f"{path.relative_to(UI)}: {m.group(0)}" for m in re.finditer(r"threading\.Thread\(|QThread\(", text)]
    assert found == []


def test_a_job_returns_then_finishes_on_the_gui_thread_and_can_be_joined(qtbot):
    from invgui.ui.threads.jobs import create_worker

    seen = []
    job = create_worker(lambda a, b: (a + b, threading.current_thread().name), 2, 3, _name="invgui-test-job",
                        _connect={"returned": lambda v: seen.append(("returned", v, threading.current_thread().name)),
                                  "finished": lambda: seen.append(("finished", threading.current_thread().name))})
    assert job.wait(10) and not job.running()                  # joined right after it started
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=5_000)
    main = threading.current_thread().name
    assert seen == [("returned", (5, "invgui-test-job"), main), ("finished", main)]


def test_a_job_error_reaches_its_slot_or_else_the_gui_thread(qtbot):
    from invgui.ui.threads.jobs import create_worker

    def boom():
        raise ValueError("no such layer")

    errors = []
    create_worker(boom, _connect={"errored": errors.append})
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=5_000)
    assert isinstance(errors[0], ValueError) and str(errors[0]) == "no such layer"
    with qtbot.captureExceptions() as raised:                 # nobody listens: not lost, raised there
        job = create_worker(boom)
        job.wait(10)
        qtbot.waitUntil(lambda: len(raised) == 1, timeout=5_000)
    assert raised[0][0] is ValueError


def test_a_job_nobody_holds_still_delivers(qtbot):
    from invgui.ui.threads.jobs import create_worker

    got = []
    create_worker(lambda: time.sleep(0.1) or 42, _connect={"returned": got.append})
    gc.collect()
    qtbot.waitUntil(lambda: got == [42], timeout=5_000)


def test_a_job_starts_once():
    from invgui.ui.threads.jobs import create_worker

    job = create_worker(lambda: None)
    with pytest.raises(RuntimeError, match="started already"):
        job.start()
    job.wait(10)


def test_background_runs_one_job_at_a_time_and_only_the_latest_of_a_kind_is_delivered(qtbot):
    from invgui.ui.threads.background import Background

    bg = Background()
    gate, running, overlap, computed, delivered = threading.Event(), [0], [], [], []

    def job(name, wait=False):
        def fn():
            running[0] += 1
            overlap.append(running[0])
            if wait:
                gate.wait(10)
            computed.append(name)
            running[0] -= 1
            return name
        return fn

    bg.submit("fmap", job("first", wait=True), lambda v, e: delivered.append(v))
    bg.submit("visual", job("picture"), lambda v, e: delivered.append(v))
    bg.submit("fmap", job("second"), lambda v, e: delivered.append(v))    # waits behind "first"…
    bg.submit("fmap", job("third"), lambda v, e: delivered.append(v))     # …and is superseded: never computed
    assert not bg.idle()
    gate.set()
    qtbot.waitUntil(bg.idle, timeout=10_000)
    assert computed == ["first", "picture", "third"]           # "second": superseded before it started
    assert delivered == ["picture", "third"]                   # "first": a newer fmap was asked for
    assert max(overlap) == 1
    bg.close()
