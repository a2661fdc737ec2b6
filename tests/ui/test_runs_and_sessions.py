"""The run queue and list, sessions, the autosave and restarts.

Each test drives the real window through the real worker thread, offscreen."""

import json

import numpy as np
import pytest
from ui_helpers import orphan_lock, run_and_wait

pytestmark = pytest.mark.gui


def test_runs_queue_and_list(qtbot, window):
    window.form.set_value("iters", 3)
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    assert window.run() and window.running()
    window.form.set_value("seed", 7)
    assert window.run()                                             # queued behind the first
    assert [r.state for r in window.session.runs] == ["running", "queued"]
    assert window.run_button.text() == "Queue (1 running, 1 queued)"
    qtbot.waitUntil(lambda: all(r.state == "done" for r in window.session.runs) and not window.running(),
                    timeout=120_000)
    first, second = window.session.runs
    assert window.run_list.count() == 2 and second.params.seed == 7
    assert first.result.record["params"]["seed"] == 0 and second.result.record["params"]["seed"] == 7
    window.run_list.select(first.id)                               # selecting shows that run
    assert window.shown_run is first and window.result is first.result
    assert "seed 0" in window.metrics_label.text()
    window.controller.rename(first.id, "baseline")
    assert window.run_list.item(0).text().startswith("✓ baseline")
    # Duplicate: load its settings, change one, run.
    window.form.set_value("iters", 5)
    assert window.run_actions.duplicate(first.id)
    assert window.form.values().iters == 3 and window.form.values().seed == 0
    window.form.set_value("lr", 0.002)
    with qtbot.waitSignal(window.runEnded, timeout=120_000):
        window.run()
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    assert window.session.runs[-1].params.lr == 0.002
    with qtbot.waitSignal(window.runEnded, timeout=120_000):
        window.run_actions.rerun(second.id)
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    again = window.session.runs[-1]
    assert again.params == second.params and np.allclose(again.result.images, second.result.images)
    assert window.run_actions.delete(again.id) and again not in window.session.runs and window.run_list.count() == 3


def test_session_save_open_and_crash_recovery(qtbot, window, tmp_path, invgui_home):
    window.form.set_value("iters", 3)
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    with qtbot.waitSignal(window.runEnded, timeout=120_000):
        window.run()
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    window.controller.rename(window.session.runs[0].id, "kept")
    path = window.files.save_session(tmp_path / "mine")
    assert path.suffix == ".invgui" and path.exists() and str(path) in window.files.recent("sessions")
    assert window.autosave_timer.interval() <= 60_000
    # Reopen in a fresh window (no autosave restore): the run, its images and curves are back.
    from invgui.ui.main.window import MainWindow

    other = MainWindow(restore=False)
    qtbot.addWidget(other)
    assert other.files.open_session(path)
    run = other.session.runs[0]
    assert run.name == "kept" and run.state == "done"
    assert np.allclose(run.result.images, window.session.runs[0].result.images, atol=2e-3)
    assert other.recon_pane.image is not None and "total" in other.plot.curves
    other.close()
    # A crash: the process dies after an autosave; the next window brings the runs back.  (The
    # window lives on in this process: its lock is made to name a process that is gone.)
    assert window.controller.autosave(wait=True) is not None and (invgui_home / "autosave" / "session.json").exists()
    orphan_lock(invgui_home / "autosave")
    revived = MainWindow()
    qtbot.addWidget(revived)
    assert [r.name for r in revived.session.runs] == ["kept"]
    assert "restored 1 run" in revived.statusBar().currentMessage()
    revived.close()
    bad = tmp_path / "bad.invgui"
    bad.write_bytes(b"not a session")
    n = len(window.errors)
    assert window.files.open_session(bad) is False and "not an invgui session" in window.errors[n]


def test_a_failing_run_is_marked_and_the_queue_goes_on(qtbot, window, tmp_path):
    from invgui.core.session import Run

    window.form.set_value("iters", 2)
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    bad = Run.of(method="optimize", model="efficientnet_lite0", layer="blocks.3", image=str(tmp_path / "gone.png"),
              params=window.session.runs[0].params if window.session.runs else {"iters": 2, "size": 96})
    window.enqueue(bad)
    assert bad.state == "failed" and "gone.png" in bad.message
    with qtbot.waitSignal(window.runEnded, timeout=120_000):
        assert window.run()
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    assert window.session.runs[-1].state == "done"


def test_a_bad_autosave_never_stops_the_window_and_is_kept_aside(qtbot, invgui_home):
    """Issue 10 §2: the window starts, the user is told where the unreadable autosave went."""
    from invgui.ui.main.window import MainWindow

    (invgui_home / "autosave").mkdir(parents=True)
    (invgui_home / "autosave" / "session.json").write_bytes(b'{"invgui_session": 1, "runs": [{"method": 3')
    w = MainWindow()
    qtbot.addWidget(w)
    assert w.rep is not None and w.session.runs == []
    assert any("could not be read" in e and "moved aside" in e for e in w.errors), w.errors
    kept = list((invgui_home / "autosave").glob("session-broken-*.json"))
    assert len(kept) == 1 and kept[0].read_bytes().startswith(b'{"invgui_session": 1, "runs"')
    w.close()


def test_opening_a_bad_session_leaves_the_current_one_untouched(qtbot, window, tmp_path):
    window.form.set_value("iters", 2)
    with qtbot.waitSignal(window.runEnded, timeout=120_000):
        window.run()
    qtbot.waitUntil(lambda: not window.running(), timeout=30_000)
    before = list(window.session.runs)
    good = window.files.save_session(tmp_path / "good")
    import zipfile

    bad = tmp_path / "bad.invgui"
    with zipfile.ZipFile(good) as z, zipfile.ZipFile(bad, "w") as out:
        out.writestr("session.json", z.read("session.json").replace(b'"method"', b'"methods"', 1))
        out.writestr("arrays.npz", z.read("arrays.npz"))
    n = len(window.errors)
    assert window.files.open_session(bad) is False
    assert "run 0" in window.errors[n] and "'method' is missing" in window.errors[n]
    assert window.session.runs == before and window.run_list.count() == len(before)
    assert window.result is not None


def test_two_windows_autosave_apart_and_the_next_start_brings_both_back(qtbot, invgui_home):
    """Issue 26 §4: two windows of one INVGUI_HOME each keep their runs; the next start restores its
    own slot and offers the other window's, which then joins the session."""
    from invgui.core.autosave import autosave_path, slot_folder
    from invgui.core.events import Result
    from invgui.core.session import Run
    from invgui.ui.main.window import MainWindow

    def done(name):
        r = Run.of(method="optimize", model="hog", layer="hog", image="sample:coffee", params={"iters": 3}, name=name)
        r.result = Result(images=np.full((1, 16, 16, 3), 0.5, np.float32), target=np.zeros((16, 16, 3), np.float32),
                          history={"total": [1.0]},
                          record={"representation": "hog", "layer": "hog", "layer_shape": [31, 1, 1]},
                          metrics={"start_representation_error": 1.0, "representation_error": 0.5,
                                   "iterations": 3, "iterations_per_second": 2.0, "seconds": 1.5})
        r.state = "done"
        return r

    first = MainWindow()
    qtbot.addWidget(first)
    second = MainWindow()
    qtbot.addWidget(second)
    assert second.controller.autosave_store.folder == slot_folder(2)
    assert "another invgui window is autosaving" in second.controller.autosave_note
    assert second.autosave_label.text() == "autosave: autosave-2"           # in the status bar while open
    assert "another invgui window" in second.autosave_label.toolTip()
    first.controller.add_runs([done("first's")])
    second.controller.add_runs([done("second's")])
    first.controller.autosave(wait=True)
    second.controller.autosave(wait=True)
    first.close()
    second.close()
    names = lambda index: [r["name"] for r in json.loads(index.read_text())["runs"]]  # noqa: E731
    assert names(autosave_path()) == ["first's"] and names(slot_folder(2) / "session.json") == ["second's"]
    # The next start: its own slot back, the other one offered in the File menu.
    again = MainWindow()
    qtbot.addWidget(again)
    assert [r.name for r in again.session.runs] == ["first's"]
    offered = again.acts.other_autosaves.actions()
    assert again.acts.other_autosaves.isEnabled() and len(offered) == 1 and "1 run(s)" in offered[0].text()
    offered[0].trigger()
    assert [r.name for r in again.session.runs] == ["first's", "second's"]
    assert all(r.result is not None for r in again.session.runs) and again.run_list.count() == 2 and not again.errors
    assert names(autosave_path()) == ["first's", "second's"] and not slot_folder(2).exists()
    assert not again.acts.other_autosaves.isEnabled()
    again.close()


def test_a_scripted_window_never_writes_the_users_autosave(qtbot, invgui_home):
    """`invgui gui --screenshot` opens the window with restore=False: the user's autosave is untouched."""
    from invgui.core.session import Run
    from invgui.ui.main.window import MainWindow

    w = MainWindow(restore=False)
    qtbot.addWidget(w)
    w.enqueue(Run.of(method="optimize", model="hog", layer="hog", image=str(invgui_home / "missing.png")))
    assert w.controller.queue.changed and w.controller.autosave() is None
    w.files.add_recent("images", "/somewhere/photo.png")
    w.close()
    assert not (invgui_home / "autosave").exists() and not (invgui_home / "settings.ini").exists()


def test_a_restored_run_stays_shown_when_the_deferred_model_arrives(qtbot, invgui_home, held_model_load):
    """The app restores the last session while the default model still loads; adopting the model
    (default layer blocks.3) took down the restored run of another layer.  It stays, and the
    window moves to its layer."""
    from invgui.core.autosave import AutosaveStore
    from invgui.core.request import execute, final_result
    from invgui.core.session import Run, Session
    from invgui.ui.main.window import MainWindow

    run = Run.of(method="optimize", model="efficientnet_lite0", layer="blocks.1", image="sample:chelsea",
              params={"iters": 2, "size": 64}, state="done")
    run.result = final_result(execute(run.request.replace(device="cpu")))
    AutosaveStore().write(Session(runs=[run]))
    w = MainWindow(defer_model=True)
    qtbot.addWidget(w)
    w.show()
    assert w.result is not None and w.recon_pane.image is not None        # restored before the model
    held_model_load.set()
    qtbot.waitUntil(lambda: w.rep is not None, timeout=60_000)
    assert w.result is not None and w.recon_pane.image is not None and w.shown_run is not None
    assert w.layer == "blocks.1"
    qtbot.waitUntil(lambda: w.layer_tree.current_layer() == "blocks.1", timeout=30_000)   # the tree fills on a thread
    w.close()


def test_the_weights_are_hashed_behind_the_window_once_a_run_ends(qtbot, window, monkeypatch):
    """Exports record the weight file's SHA-256: it is computed on the background thread when the
    result arrives, so the export itself (GUI thread) finds it cached."""
    from invgui.core import export

    monkeypatch.setattr(export, "_HASHES", {})
    run_and_wait(qtbot, window, 2)
    weights = window.result.record["weights_file"]
    assert weights
    qtbot.waitUntil(window.background.idle, timeout=30_000)
    assert [k[0] for k in export._HASHES] == [weights]


@pytest.mark.parametrize("deferred", [False, True])
def test_a_restart_restores_the_shown_runs_representation_layer_and_method(qtbot, invgui_home, held_model_load,
                                                                            deferred):
    """Issue 27 §7: after a restart the runs came back but the window reset to EfficientNet-Lite0,
    so a restored HOG run was shown beside a Lite0 Φ0."""
    from invgui.core.autosave import AutosaveStore
    from invgui.core.request import execute, final_result
    from invgui.core.session import Run, Session
    from invgui.ui.main.window import MainWindow

    run = Run.of(method="optimize", model="hog", layer="hog", image="sample:chelsea",
              params={"iters": 2, "size": 64}, rep_params={"cell": 4, "orientations": 9}, state="done")
    run.result = final_result(execute(run.request.replace(device="cpu")))
    AutosaveStore().write(Session(runs=[run]))
    if not deferred:
        held_model_load.set()
    w = MainWindow(defer_model=deferred)
    qtbot.addWidget(w)
    w.show()
    if deferred:
        held_model_load.set()
    qtbot.waitUntil(lambda: w.rep is not None and w.rep.name == "hog", timeout=60_000)
    qtbot.wait(50)
    assert w.layer == "hog" and w.method() == "optimize"
    assert w.rep.describe()["representation_params"]["cell"] == 4
    assert w.shown_run is not None and w.shown_run.id == run.id and w.recon_pane.image is not None
    w.close()


def test_another_windows_autosave_stays_until_this_window_has_saved_its_runs(qtbot, invgui_home, monkeypatch):
    """Its folder is removed only once this window's own autosave names the added runs: with the
    autosave failing (a full disk), the runs are added and the other folder is kept."""
    from invgui.core.autosave import AutosaveStore, slot_folder
    from invgui.core.session import Run, Session
    from invgui.ui.main.window import MainWindow

    other = AutosaveStore(slot_folder(2))
    other.write(Session(runs=[Run.of(method="optimize", model="hog", layer="hog", image="sample:coffee",
                                  name="left behind", state="stopped")]))
    w = MainWindow()
    qtbot.addWidget(w)
    assert len(w.acts.other_autosaves.actions()) == 1
    w.controller.add_runs([Run.of(method="optimize", model="hog", layer="hog", image="sample:chelsea", name="mine",
                               state="stopped")])
    assert w.controller.autosave(wait=True) is not None and w.controller.autosave_store.index.is_file()

    def full(self, session):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(AutosaveStore, "write", full)
    w.acts.other_autosaves.actions()[0].trigger()
    assert [r.name for r in w.session.runs] == ["mine", "left behind"]
    assert (slot_folder(2) / "session.json").is_file()                # kept: nothing can be lost
    monkeypatch.undo()
    w.close()
