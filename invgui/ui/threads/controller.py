"""The window's application controller: owns the run queue (``core.session.RunQueue``), the
worker thread and the autosave, and tells the views what happened through signals.

Views (the main window, the run list, the comparison view) never touch the worker or the
queue's states themselves: they call ``submit`` / ``stop`` / ``pause`` / ``rename`` / ``remove``
and draw what the signals say.  Autosave writes a snapshot of the session on a background
thread, so a session with many runs never stalls the event loop.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from ...core.autosave import AutosaveStore, autosave_dir, claim
from ...core.events import Result, Step
from ...core.images import check_source
from ...core.request import Reuse, RunRequest, batch_key, execute_batch, take_batch
from ...core.session import QueueError, Run, RunQueue, Session
from .jobs import Job, create_worker
from .worker import WorkerThread

AUTOSAVE_MS = 60_000


def _execute(requests: list[RunRequest], given: dict, reuse: Reuse, should_stop):
    """The worker's job: the requests' events (several: one optimisation batch, see
    ``core.request.execute_batch``), with images the window has already decoded; the others are
    decoded here, on the worker thread, and the representation built here once for the queue
    (``core.request.Reuse``)."""
    return execute_batch(requests, should_stop, **reuse.for_requests(requests, given))


def warm_up() -> None:
    """Import what the first runs would otherwise import on the worker thread: scikit-image's
    metrics load SciPy lazily (~400 modules), OpenCV draws the HOG glyphs and resizes."""
    import cv2  # noqa: F401

    from ...core import metrics

    a = np.zeros((16, 16, 3), np.float32)
    metrics.psnr(a + 0.5, a + 0.25)
    metrics.ssim(a + 0.5, a + 0.25)


class Controller(QObject):
    # every signal is delivered on the GUI thread
    runChanged = Signal(object)           # Run: state, name or result changed (also: added)
    runRemoved = Signal(str)              # run id
    runStarted = Signal(object)           # Run, now computing
    steps = Signal(object)                # list[Step] of the run (or probe) computing
    status = Signal(str)
    runFinished = Signal(object, object)  # Run (None for a probe), Result
    runFailed = Signal(object, str, str)  # Run (None for a probe), message, detail
    cannotStart = Signal(object, str)     # Run that failed before reaching the worker, message
    probeFinished = Signal(object)        # Result of a probe (not a run of the session)
    idle = Signal()                       # the worker is free (the queue then goes on)
    sessionReplaced = Signal()
    paused = Signal(bool)
    autosaveFailed = Signal(str)
    batchFailed = Signal(str, int, list)  # what ("sweep"), how many runs it had, "label: message" per failure

    def __init__(self, parent: QObject | None = None, *, device: Callable[[], str] = lambda: "cpu",
                 autosave: bool = True):
        super().__init__(parent)
        self.queue = RunQueue()
        self.queue.listeners.append(self.runChanged.emit)
        self.device = device
        self.autosave_enabled = autosave
        self.active: Run | None = None              # the run the worker computes (None: a probe or nothing)
        self.active_runs: list[Run] = []            # it and the runs computed in its batch (a sweep's)
        self._probe = False
        self._batch: dict | None = None             # a sweep's runs, whose failures are told together
        self.reuse = Reuse()                        # representations and images kept for the next runs
        self.window_images: dict[str, np.ndarray] = {}   # what the window has open (no second decode)
        self.worker = WorkerThread(self)
        w = self.worker.worker
        # Explicit connections: bound methods of this GUI-thread object are called on the GUI thread.
        w.step.connect(self._on_steps)
        w.status.connect(self.status)
        w.finished.connect(self._on_finished)
        w.failed.connect(self._on_failed)
        w.idle.connect(self._on_idle)
        # Each window autosaves to a folder it holds (core.autosave: slots with a lock file), so a
        # second window never overwrites the first one's index.  A scripted window takes none.
        self.autosave_note = ""
        self.autosave_store = AutosaveStore()       # remembers which results are written already
        if autosave:
            try:
                self.autosave_store = claim()
            except OSError as e:
                self.autosave_enabled, self.autosave_note = False, f"this window does not autosave: {e}"
            else:
                if self.autosave_store.folder != autosave_dir():
                    self.autosave_note = (f"another invgui window is autosaving to {autosave_dir()}; this window "
                                          f"autosaves to {self.autosave_store.folder}")
        self._autosave_job: Job | None = None
        self._autosave_lock = threading.Lock()
        self.timer = QTimer(self)
        self.timer.setInterval(AUTOSAVE_MS)
        self.timer.timeout.connect(self.autosave)
        self.timer.start()

    # -- state ---------------------------------------------------------------------------------
    @property
    def session(self) -> Session:
        return self.queue.session

    def running(self) -> bool:
        return self.worker.busy

    @property
    def is_paused(self) -> bool:
        return self.worker.worker.paused

    # -- runs ----------------------------------------------------------------------------------
    def submit(self, run: Run) -> Run:
        """Queue ``run``; it starts at once when the worker is free."""
        self.queue.submit(run)
        self.start_next()
        return run

    def submit_batch(self, runs: list[Run], what: str = "sweep") -> list[Run]:
        """Queue several runs whose failures are told once, together (``batchFailed``), when the
        last of them has ended — not one dialog per failed run.  Those that can share an
        optimisation batch are computed together (``_companions``)."""
        self._batch = {"what": what, "ids": {r.id for r in runs}, "failed": []}
        for r in runs:
            self.queue.submit(r)
        self.start_next()                 # after all are queued: the first can take the others into its batch
        self._check_batch()
        return runs

    def _batch_failure(self, run: Run | None, message: str) -> bool:
        """Keep a batch run's failure for the batch's summary (True), or not a batch run (False)."""
        b = self._batch
        if b is None or run is None or run.id not in b["ids"]:
            return False
        b["failed"].append(f"{run.label()}: {message}")
        return True

    def in_batch(self, run: Run | None) -> bool:
        """Whether ``run``'s failure is told with its batch's summary (views then say nothing)."""
        return self._batch is not None and run is not None and run.id in self._batch["ids"]

    def _check_batch(self) -> None:
        b = self._batch
        if b is None or any(r.state in ("queued", "running") for r in self.session.runs if r.id in b["ids"]):
            return
        self._batch = None
        if b["failed"]:
            self.batchFailed.emit(b["what"], len(b["ids"]), b["failed"])

    def rerun(self, run_id: str) -> Run:
        return self.submit(self.queue.get(run_id).copy())

    def rename(self, run_id: str, name: str) -> Run:
        return self.queue.rename(run_id, name)

    def remove(self, run_id: str) -> Run:
        run = self.queue.remove(run_id)               # QueueError for a running run
        self.runRemoved.emit(run_id)
        return run

    def offer_rep(self, rep, weights: str | None, random_weights: bool) -> None:
        """The window's own representation, for CPU runs that name the same one (``rep_key``)."""
        from ...core.params import to_dict
        from ...core.request import freeze_params

        request = RunRequest(model=rep.name, weights=weights, random_weights=random_weights, device="cpu",
                             rep_params=freeze_params(to_dict(rep.params) if rep.params is not None else None))
        self.reuse.offer(request, rep)

    def image_for(self, source: str) -> np.ndarray:
        if source in self.window_images:
            return self.window_images[source]
        return self.reuse.image(source)

    def start_next(self) -> None:
        """Start queued runs until one reaches the worker; a run that cannot start is marked
        failed (``cannotStart``) and the queue goes on."""
        from ...core.images import ImageError
        from ...core.representations import RepresentationError

        while not self.running():
            run = self.queue.start_next()
            if run is None:
                return
            try:
                check_source(run.image)               # a missing file fails here; decoding is the worker's
                request = run.request.replace(device=self.device())
            except (ImageError, ValueError, RepresentationError) as e:
                self._cannot_start(run, e)
                continue
            runs, requests = [run], [request]
            for other, req in self._companions(run, request):
                self.queue.join(other)
                runs.append(other)
                requests.append(req)
            given = {r.image: self.window_images[r.image] for r in runs if r.image in self.window_images}
            self.active, self.active_runs = run, runs
            self.worker.submit(functools.partial(_execute, requests, given, self.reuse))
            self.runStarted.emit(run)                 # busy from here on: views see a running worker
            return

    def _cannot_start(self, run: Run, e: Exception) -> None:
        self.queue.fail(run, str(e))
        if not self._batch_failure(run, str(e)):
            self.cannotStart.emit(run, str(e))

    def _companions(self, run: Run, request: RunRequest) -> list[tuple[Run, RunRequest]]:
        """Queued runs of ``run``'s sweep that can be computed in its batch (``core.request.take_batch``:
        optimisations at the same layer with the same parameters but for the image and the neuron
        subset, up to ``MAX_BATCH_ROWS`` rows); one whose file is gone fails here."""
        from ...core.images import ImageError
        from ...core.representations import RepresentationError

        if batch_key(request) is None or not self.in_batch(run):
            return []
        queued = [(other, other.request.replace(device=self.device())) for other in self.session.runs
                  if other.state == "queued" and self.in_batch(other)]
        out = []
        for other, req in (queued[i] for i in take_batch(request, [req for _, req in queued])):
            try:
                check_source(other.image)             # only the runs that join now: the others when their turn comes
            except (ImageError, ValueError, RepresentationError) as e:
                self._cannot_start(other, e)
                continue
            out.append((other, req))
        return out

    def submit_probe(self, request: RunRequest, images: dict) -> None:
        """A probe is not a run of the session: its result goes to ``probeFinished``."""
        if self.running():
            raise QueueError("a run is in progress")
        self._probe = True
        self.worker.submit(functools.partial(_execute, [request], images, self.reuse))

    def stop(self) -> None:
        if self.running():
            self.worker.request_stop()

    def pause(self, on: bool) -> None:
        if on and not self.running():
            return
        self.worker.worker.pause(on)
        self.paused.emit(on)

    # -- worker signals ------------------------------------------------------------------------
    def _on_steps(self, steps: list[Step]) -> None:
        # The live preview and curves follow the batch's first run (the others' arrive as results).
        mine = [s for s in steps if s.item == 0] if len(self.active_runs) > 1 else steps
        if mine:
            self.steps.emit(mine)

    def _on_finished(self, res: Result) -> None:
        if self._probe:
            self.probeFinished.emit(res)
            return
        run = self.active
        if len(self.active_runs) > 1:
            k = res.record.get("batch_index", 0)
            run = self.active_runs[k] if 0 <= k < len(self.active_runs) else None
        if run is not None and run.state == "running":
            self.queue.finish(run, res)
        self.runFinished.emit(run, res)
        self._check_batch()

    def _on_failed(self, message: str, detail: str) -> None:
        runs: list[Run | None] = [None] if self._probe else (
            [r for r in self.active_runs if r.state == "running"] or [self.active])
        for run in runs:
            if run is not None and run.state == "running":
                self.queue.fail(run, message)
            self._batch_failure(run, message)
            self.runFailed.emit(run, message, detail)
        self._check_batch()

    def _on_idle(self) -> None:
        if self.is_paused:
            self.pause(False)
        if self.running():
            # A job was submitted between the worker's idle (busy cleared, a slot of its own) and
            # this slot: it is the active one now; clearing it lost that run's result.
            return
        for run in self.active_runs:                 # a batch that ended without one of its results
            if run.state == "running":
                self.queue.fail(run, "the batch it ran in ended without its result")
                self._batch_failure(run, run.message)
        self.active, self.active_runs, self._probe = None, [], False
        self.idle.emit()
        self.start_next()                            # the queue goes on
        self._check_batch()

    # -- sessions ------------------------------------------------------------------------------
    def replace_session(self, session: Session) -> None:
        """Take an opened or restored session (running/queued runs become stopped)."""
        if self.running():
            raise QueueError("a run is in progress: stop it before opening another session")
        self.queue.replace(session)
        self.sessionReplaced.emit()

    def add_runs(self, runs: list[Run]) -> list[Run]:
        """Add finished runs read from a file to the session (see RunQueue.adopt)."""
        return self.queue.adopt(runs)

    def autosave(self, wait: bool = False) -> Path | None:
        """Autosave a snapshot of the session (core.autosave: the new results and the index) on a
        background thread when something changed since the last one (``wait``: finish writing
        before returning).  Returns the autosave's index when a write was started, else None."""
        if not self.autosave_enabled:
            return None
        if self.queue.changed:
            if self._autosave_job is not None and self._autosave_job.running():
                if not wait:
                    return None                      # the next tick writes what changed meanwhile
                self._autosave_job.wait()
            # A snapshot: copies of the runs (results are never changed after they arrive).
            snapshot = Session(runs=[dataclasses.replace(r) for r in self.session.runs])
            self.queue.changed = False
            self._autosave_job = create_worker(self._write_autosave, snapshot, _name="invgui-autosave")
            started = True
        else:
            started = False
        if wait and self._autosave_job is not None:
            self._autosave_job.wait()
        return self.autosave_store.index if started else None

    def _write_autosave(self, snapshot: Session) -> None:
        with self._autosave_lock:
            try:
                self.autosave_store.write(snapshot)
            except OSError as e:
                self.queue.changed = True            # try again at the next tick
                self.autosaveFailed.emit(str(e))

    def wait_autosave(self) -> None:
        if self._autosave_job is not None:
            self._autosave_job.wait()

    def shutdown(self) -> None:
        """Window closing: stop the run, join the worker, write the autosave and wait for it."""
        self.timer.stop()
        self.worker.shutdown()
        self.autosave(wait=True)
        self.autosave_store.release()
