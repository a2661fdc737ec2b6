"""One vocabulary for work off the GUI thread, in the shape of superqt's ``create_worker``.

Every job that is not a run — loading a model, Φ0 and the pictures of a new layer or image
(``Background``), the comparison's eval-set distance, contact sheets, autosaves — is a ``Job``:
``fn(*args)`` runs on a thread of a small pool; ``started``, then ``returned(value)`` or
``errored(exception)``, then ``finished`` arrive on the GUI thread (queued), in that order; a
job nobody holds stays alive until its ``finished`` is delivered; ``wait`` joins it (closing a
window: a thread still inside torch when the interpreter exits aborts the process, "terminate
called without an active exception"); an error nobody listens for is raised again on the GUI
thread, not lost.  Runs have the one long-lived worker thread (``worker.py``): it keeps a run's
pause, stop and streamed steps.

Written here rather than taken from superqt: its workers start on the global thread pool a timer
tick later (a ``wait`` right after ``start`` — a window closed at once — would wait for a job
the blocked event loop never starts), cannot be joined one by one, and a pool of
``idealThreadCount`` threads (two here) would queue a model load behind a contact sheet.  The
pool here has threads enough for every kind of job at once and keeps them: starting a thread per
job held the GUI thread ~3 ms each (it waits for the new thread to run; ~110 jobs in one
bench_gui --session).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from PySide6.QtCore import QObject, Signal

# Model load, background, autosave, Compare's distance and sheet: five kinds, at most one or two of
# each at once.  The threads idle between jobs and are joined at the interpreter's exit.
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="invgui-job")


class Job(QObject):
    started = Signal()
    returned = Signal(object)      # fn's value
    errored = Signal(object)       # the exception fn raised
    finished = Signal()            # after returned or errored, whatever happened

    _alive: ClassVar[set[Job]] = set()    # started and not yet finished on the GUI thread

    def __init__(self, fn: Callable[..., Any], *args: Any, name: str = "invgui-job", **kwargs: Any):
        super().__init__()
        self._call = (fn, args, kwargs)
        self.name = name
        self._done = threading.Event()
        self._started = False
        self.finished.connect(self._forget)

    def start(self) -> Job:
        if self._started:
            raise RuntimeError(f"the job {self.name} was started already")
        self._started = True
        Job._alive.add(self)
        _POOL.submit(self._run)
        return self

    def running(self) -> bool:
        """Started and not yet done (its signals may still be on their way to the GUI thread)."""
        return self._started and not self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Join the job (True: it is done, or was never started)."""
        return not self._started or self._done.wait(timeout)

    def _run(self) -> None:
        fn, args, kwargs = self._call
        thread = threading.current_thread()
        idle_name, thread.name = thread.name, self.name   # what the job is, in a stack dump or a test
        self.started.emit()
        try:
            value = fn(*args, **kwargs)
        except Exception as e:                  # delivered to whoever listens (see create_worker)
            self.errored.emit(e)
        else:
            self.returned.emit(value)
        finally:
            thread.name = idle_name
            self._done.set()
            self.finished.emit()

    def _forget(self) -> None:
        Job._alive.discard(self)


def create_worker(fn: Callable[..., Any], *args: Any, _start_thread: bool = True,
                  _connect: dict[str, Callable[..., Any]] | None = None, _name: str = "invgui-job",
                  **kwargs: Any) -> Job:
    """A ``Job`` computing ``fn(*args, **kwargs)``; ``_connect`` maps signal names ("returned",
    "errored", "finished", "started") to slots; ``_start_thread``: start it now.  Without an
    "errored" slot, an exception in ``fn`` is raised on the GUI thread."""
    job = Job(fn, *args, name=_name, **kwargs)
    connect = dict(_connect or {})
    for signal, slot in connect.items():
        getattr(job, signal).connect(slot)
    if "errored" not in connect:
        job.errored.connect(_reraise)
    if _start_thread:
        job.start()
    return job


def _reraise(error: BaseException) -> None:
    raise error
