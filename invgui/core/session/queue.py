"""The run queue: which run runs next, and the rules of a run's states (queued → running →
done / stopped / failed; a running run is never deleted or renamed away)."""

from __future__ import annotations

from ..errors import InvguiError
from ..events import Result
from .model import Session
from .runs import Run


class QueueError(InvguiError):
    """A state change the rules do not allow (deleting a running run, finishing a queued one, …)."""


class RunQueue:
    """The runs of a session and the rules of their states, without Qt.

    A run is ``queued`` when submitted, ``running`` while the worker computes it (one at a time,
    or several of a sweep together in one optimisation batch: :meth:`join`),
    then ``done``, ``stopped`` (the user stopped it; it keeps what was reached) or ``failed`` (it
    could not start or raised; the queue goes on).  A session restored from a file has no run in
    progress: ``running`` and ``queued`` runs come back as ``stopped`` (:meth:`restore`).
    ``listeners`` are called with each run whose state or contents changed."""

    def __init__(self, session: Session | None = None):
        self.session = session if session is not None else Session()
        self.listeners: list = []
        self.changed = False             # since the last autosave: set on every change

    # -- what is there ------------------------------------------------------------------------
    @property
    def runs(self) -> list[Run]:
        return self.session.runs

    @property
    def running(self) -> Run | None:
        return next((r for r in self.session.runs if r.state == "running"), None)

    def waiting(self) -> int:
        return sum(r.state == "queued" for r in self.session.runs)

    def get(self, run_id: str) -> Run:
        try:
            return self.session.get(run_id)
        except StopIteration:
            raise QueueError(f"no run {run_id!r} in this session") from None

    # -- transitions --------------------------------------------------------------------------
    def submit(self, run: Run) -> Run:
        run.state, run.message, run.result = "queued", "", None
        self.session.add(run)
        self._touch(run)
        return run

    def adopt(self, runs: list[Run]) -> list[Run]:
        """Add runs read from a file (another window's autosave) as they are, the restore rule
        applied; a run whose id the session has already is skipped (it was added before)."""
        have = {r.id for r in self.session.runs}
        added = [r for r in self.restore(Session(runs=list(runs))).runs if r.id not in have]
        for r in added:
            self.session.add(r)
            self._touch(r)
        return added

    def start_next(self) -> Run | None:
        """The next queued run, now ``running`` — or None when one is running or none waits."""
        if self.running is not None:
            return None
        run = self.session.next_queued()
        if run is not None:
            run.state = "running"
            self._touch(run)
        return run

    def join(self, run: Run) -> Run:
        """A queued run starts beside the running one: the worker computes them in one batch."""
        self._expect(run, "queued", "batch")
        if self.running is None:
            raise QueueError(f"{run.label()}: no run is computing, so there is no batch to join")
        run.state = "running"
        self._touch(run)
        return run

    def finish(self, run: Run, result: Result) -> Run:
        self._expect(run, "running", "finish")
        run.result = result
        run.state = "stopped" if result.stopped else "done"
        run.message = result.message
        self._touch(run)
        return run

    def fail(self, run: Run, message: str) -> Run:
        if run.state not in ("queued", "running"):
            raise QueueError(f"{run.label()}: a {run.state} run cannot fail")
        run.state, run.message = "failed", message
        self._touch(run)
        return run

    def rename(self, run_id: str, name: str) -> Run:
        run = self.get(run_id)
        run.name = name.strip()
        self._touch(run)
        return run

    def rerun(self, run_id: str) -> Run:
        """Queue the same request again (a new run; the old one keeps its result)."""
        return self.submit(self.get(run_id).copy())

    def remove(self, run_id: str) -> Run:
        run = self.get(run_id)
        if run.state == "running":
            raise QueueError(f"{run.label()} is running: stop it before deleting it")
        self.session.remove(run_id)
        self._touch(run)
        return run

    def replace(self, session: Session) -> None:
        """Take ``session`` (opened or restored) as the queue's, with the restore rule applied."""
        if self.running is not None:
            raise QueueError("a run is in progress: stop it before opening another session")
        self.restore(session)
        self.session = session
        self.changed = True

    @staticmethod
    def restore(session: Session) -> Session:
        """No run of a session read from a file is in progress: running/queued become stopped."""
        for r in session.runs:
            if r.state in ("running", "queued"):
                r.state, r.message = "stopped", r.message or "interrupted (the session was closed or crashed)"
        return session

    def _expect(self, run: Run, state: str, what: str) -> None:
        if run.state != state:
            raise QueueError(f"{run.label()}: cannot {what} a {run.state} run")

    def _touch(self, run: Run) -> None:
        self.session.dirty = self.changed = True
        for listener in list(self.listeners):
            listener(run)
